"""Fixtures for the console-as-a-client tests (issue 15): the centre running for real — the
locked Mosquitto of ``monitorapp broker-config`` (``locked_broker``), a PostgreSQL record
(``pg_dsn``) with per-person logins (``people``), ``monitorapp monitor`` as the decider — and
consoles built in this process exactly as ``main.py --db postgresql://…`` builds them, each
signed in as its own person.

``centre`` gives a :class:`Centre`: ``start_monitor()``, ``console(name, role)`` (signed in
through ``sign_in_to_centre`` with that person's password file; shown offscreen), ``publish``
(as the gateway identity) and ``close()`` (every console shut down in order).
"""
from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication


class TcpProxy:
    """A TCP forwarder to the record's server on a port of its own: ``cut()`` closes the port
    and every connection through it (the centre out of reach, as a cable pulled would make
    it); ``restore()`` opens the same port again."""

    def __init__(self, target_port: int):
        import socket
        import threading
        self.target = target_port
        self._socket, self._threading = socket, threading
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self._conns: list = []
        self._server = None
        self.restore()

    def restore(self) -> None:
        socket = self._socket
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(32)
        self._server = srv
        self._threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def _accept(self, srv) -> None:
        while True:
            try:
                a, _ = srv.accept()
            except OSError:
                return
            try:
                b = self._socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                a.close()
                continue
            self._conns += [a, b]
            for x, y in ((a, b), (b, a)):
                self._threading.Thread(target=self._pipe, args=(x, y), daemon=True).start()

    @staticmethod
    def _pipe(x, y) -> None:
        try:
            while data := x.recv(65536):
                y.sendall(data)
        except OSError:
            pass
        finally:
            for s in (x, y):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self) -> None:
        if self._server is not None:
            try:
                self._server.shutdown(self._socket.SHUT_RDWR)     # wakes the blocked accept()
            except OSError:
                pass
            self._server.close()
            self._server = None
        for c in self._conns:
            try:
                c.shutdown(self._socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass
        self._conns.clear()

    def dsn(self, dsn: str) -> str:
        """``dsn`` through this proxy."""
        from urllib.parse import urlsplit
        u = urlsplit(dsn)
        return u._replace(netloc=u.netloc.replace(f":{u.port}", f":{self.port}")).geturl()


def answer_ack(seen: list, *, note: str, action_steps: int = 3) -> None:
    """When the acknowledgement dialog opens: an action code chosen with the keyboard, the
    note typed, OK clicked (real key and mouse events on the dialog's widgets)."""
    from ui.console.ackdialog import AckDialog

    def run():
        dlg = QApplication.activeModalWidget()
        if not isinstance(dlg, AckDialog):
            QTimer.singleShot(50, run)
            return
        seen.append(dlg)
        for _ in range(action_steps):
            QTest.keyClick(dlg.action, Qt.Key.Key_Down)
        QTest.keyClicks(dlg.note, note)
        QTest.mouseClick(dlg.buttons.button(dlg.buttons.StandardButton.Ok), Qt.MouseButton.LeftButton)
    QTimer.singleShot(100, run)


class Centre:
    def __init__(self, tmp_path, broker, people, monitor_factory, qtbot):
        self.tmp, self.broker, self.people = tmp_path, broker, people
        self.monitor_factory, self.qtbot = monitor_factory, qtbot
        from tests.fixtures_ui import ui_caseload_doc
        self.caseload = tmp_path / "caseload.json"
        self.caseload.write_text(json.dumps(ui_caseload_doc(3)))
        self.consoles: list = []
        self.monitor = None

    @property
    def dsn(self) -> str:
        return self.people.dsn

    def start_monitor(self, name: str = "decider-a"):
        self.monitor = self.monitor_factory([
            "--broker", self.broker.url, "--username", "monitor",
            "--password-file", self.broker.password_file("monitor"),
            "--caseload", self.caseload, "--db", self.dsn, "--client-id", "centre-monitor",
            "--stats-interval", "1", "--instance", name])
        self.wait_record()
        return self.monitor

    def wait_record(self, timeout: float = 60) -> None:
        """Until the decider has opened (and marked) the record: a centre already running."""
        import psycopg
        from tests.fixtures_mqtt import wait_until

        def marked():
            if self.monitor.proc.poll() is not None:
                raise AssertionError(f"monitor exited: {self.monitor.logs[-5:]} {self.monitor.raw_err[-10:]}")
            with psycopg.connect(self.dsn) as conn:
                return conn.execute("SELECT 1 FROM meta WHERE key='mode'").fetchone()
        wait_until(marked, timeout, "the decider to open the record", interval=0.2)

    def password_file(self, name: str, role: str):
        pw = self.tmp / f"{name}.pw"
        pw.write_text(self.people.login(name, role) + "\n")
        pw.chmod(0o600)
        return pw

    def options(self, name: str, role: str = "operator", *, db: str | None = None, **kw):
        from ui.app import Options
        opts = Options(broker=self.broker.url, db=db or self.dsn, user=name,
                       password_file=str(self.password_file(name, role)), **kw)
        opts.broker_username = "console"
        opts.broker_password_file = str(self.broker.password_file("console"))
        return opts

    def console(self, name: str, role: str = "operator", *, show: bool = True, db: str | None = None, **kw):
        """A console signed in as ``name``, built as ``ui.app.run`` builds it (``_sign_in``; a
        record out of reach: the cached picture with nobody signed in)."""
        from ui.app import Console, _sign_in, _sign_in_when_the_centre_answers
        from ui.session.wiring import install_role_views
        opts = self.options(name, role, db=db, **kw)
        signed = _sign_in(opts)
        assert not isinstance(signed, int), f"sign-in ended with status {signed}"
        session, accounts = signed
        if session is not None:
            opts.operator = session.username
        c = Console(opts, accounts=accounts)
        c.session = session
        c.events = []
        c.window.event.connect(lambda n, f, c=c: c.events.append((n, f)))
        if session is not None:
            install_role_views(c.window, c.store, c.worker, c.map, session, accounts=accounts, idle_s=0)
        else:
            _sign_in_when_the_centre_answers(c, accounts)
        self.consoles.append(c)
        if show:
            c.start()
        return c

    def publish(self, lines) -> dict:
        from monitorapp.sim.publish import publish_feed
        return publish_feed(lines, self.broker.url_for("gateway"), speed=1000.0, drain_timeout=20)

    def close(self) -> None:
        for c in self.consoles:
            rv = getattr(c.window, "role_views", None)
            if rv is not None:
                rv.shutdown()
                if rv.cover is not None:          # the signed-out cover: released, not dismissed
                    rv.cover._release()            # noqa: SLF001
                    rv.cover.close()
            c.window.close_without_asking()
            c.shutdown()
        self.consoles.clear()


@pytest.fixture
def centre(tmp_path, locked_broker, people, monitor_factory, qtbot):
    c = Centre(tmp_path, locked_broker, people, monitor_factory, qtbot)
    yield c
    c.close()
    if c.monitor is not None and c.monitor.proc.poll() is None:
        c.monitor.terminate()
