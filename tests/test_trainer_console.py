"""The trainer's view works as the console does, driven as a trainee drives it: the trainee
signs in with their own account (typed, Enter), the queue's rows are clicked, A, C, S and U are
pressed, the dialogs filled with the keyboard; the same map page and details panel; scoring and
escalation in real seconds at an accelerated clock; readable rows in the dark theme."""
from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from monitorapp.engine.alerts import PRIORITY, Alert, alert_id
from tests.fixtures_map import NO_GPU_MESSAGES
from tests.fixtures_roles import PASSWORD
from tests.fixtures_ui import T0
from ui.console.ackdialog import AckDialog
from ui.console.alertmodel import COL_TTA, AlertTableModel, Handling
from ui.console.details import DetailsPanel
from ui.console.shelvedialog import ShelveDialog
from ui.settings import Settings
from ui.theme import DARK, LIGHT
from ui.views.trainer import TraineeReportModel, TrainerPanel

# the offscreen platform cannot size a dialog's window from its hints: not ours
pytestmark = pytest.mark.qt_log_ignore(*NO_GPU_MESSAGES, r"This plugin does not support propagateSizeHints\(\)")


def _placeholder_map(theme):
    from PySide6.QtWidgets import QLabel
    return QLabel("no map in this test")


class _Accounts:
    """A store with an account for every role (tests.fixtures_roles), nothing else in it."""

    def __init__(self, tmp_path):
        from localdb.store import Store
        from tests.fixtures_roles import accounts_for_every_role
        self.store = Store(tmp_path / "accounts.sqlite", mode="training")
        self.accounts, self.sessions = accounts_for_every_role(self.store)


@pytest.fixture
def handled_store(tmp_path):
    a = _Accounts(tmp_path)
    yield a
    a.store.close()


def _panel(own, handled_store, tmp_path, **kw):
    from ui.session.signin import SignInDialog          # as ui.session.wiring passes it
    kw.setdefault("sign_in_dialog", SignInDialog)
    panel = own(TrainerPanel(handled_store.sessions["trainer"], store_dir=tmp_path / "training",
                             accounts=handled_store.accounts, **kw))
    panel.resize(1500, 950)
    panel.show()
    panel.activateWindow()
    return panel


def _when_modal(qtbot, kind, fill):
    """Run ``fill(dialog)`` once the modal dialog of ``kind`` is up (the key press opened it)."""
    seen = []

    def check():
        dlg = QApplication.activeModalWidget()
        if isinstance(dlg, kind):
            seen.append(dlg)
            fill(dlg)
        else:
            QTimer.singleShot(50, check)
    QTimer.singleShot(50, check)
    return seen


def _activate(qtbot, w):
    """The trainee's window has the focus again (a dialog just closed)."""
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=5000)


def _click_row(queue, alert_id):
    """Click the alert's row in the queue table with the mouse."""
    ctl = queue.ctl
    src = ctl.model.source_row(alert_id)
    idx = ctl.proxy.mapFromSource(ctl.model.index(src, 3))
    queue.table.scrollTo(idx)
    QTest.mouseClick(queue.table.viewport(), Qt.MouseButton.LeftButton, pos=queue.table.visualRect(idx).center())
    assert queue.selected_alert() == alert_id


def _sign_in_trainee(qtbot, panel, user="op.jones"):
    from ui.session.signin import SignInDialog

    def fill(dlg):
        QTest.keyClicks(dlg.user, user)
        QTest.keyClick(dlg.user, Qt.Key.Key_Return)            # Enter moves to the password
        QTest.keyClicks(dlg.password, PASSWORD)
        QTest.keyClick(dlg.password, Qt.Key.Key_Return)
    seen = _when_modal(qtbot, SignInDialog, fill)
    QTest.mouseClick(panel.trainee_button, Qt.MouseButton.LeftButton)
    assert seen
    return panel.trainee_session


def test_trainee_signs_in_and_handles_the_flood_with_the_keyboard(qtbot, handled_store, own, tmp_path):
    panel = _panel(own, handled_store, tmp_path, map_factory=_placeholder_map)
    session = _sign_in_trainee(qtbot, panel)
    assert session is not None and session.username == "op.jones"
    assert "op.jones" in panel.trainee.text()
    panel.scenario.setCurrentIndex(panel.scenario.findData("strap_cut"))
    panel.speed.setCurrentIndex(panel.speed.findData(600))
    QTest.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    run, console = panel.run, panel.console
    assert run is not None and run.controller.operator == "op.jones"
    assert isinstance(console.details, DetailsPanel) and console.caseload_dock is not None
    _activate(qtbot, panel)
    model = run.controller.model
    qtbot.waitUntil(lambda: any(r.alert.type == "strap_tamper" for r in model.rows()), timeout=30_000)
    aid = next(r for r in model.rows() if r.alert.type == "strap_tamper").alert.alert_id
    q = console.queue
    _click_row(q, aid)

    def ack(dlg):
        QTest.keyClick(dlg.action, Qt.Key.Key_1)                 # "1  Contacted the subject"
        dlg.note.setFocus()
        QTest.keyClicks(dlg.note, "called the subject, strap cut")
        QTest.mouseClick(dlg.buttons.button(dlg.buttons.StandardButton.Ok), Qt.MouseButton.LeftButton)
    seen = _when_modal(qtbot, AckDialog, ack)
    QTest.keyClick(q.table, Qt.Key.Key_A)                        # the A shortcut
    assert seen and model.row(aid).handling.state == "acknowledged"
    qtbot.waitUntil(lambda: model.row(aid).alert.state == "cleared", timeout=30_000)   # strap restored
    _activate(qtbot, panel)
    _click_row(q, aid)
    QTest.keyClick(q.table, Qt.Key.Key_C)                        # restored and acknowledged: C closes
    assert model.row(aid).handling.state == "closed"
    run.store.flush()
    log = [(r["alert_id"], r["action"], r["operator"]) for r in run.store.ack_log()]
    assert (aid, "acknowledge", "op.jones") in log and (aid, "close", "op.jones") in log
    QTest.mouseClick(panel.report_button, Qt.MouseButton.LeftButton)
    rows = {r["alert_id"]: r for r in panel.report.rows()}
    assert rows[aid]["by"] == "op.jones" and rows[aid]["action"] == "contacted_subject"

    panel.scenario.setCurrentIndex(panel.scenario.findData("alert_flood"))
    QTest.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)      # a new run replaces it
    assert not run.worker.running
    run, console, q = panel.run, panel.console, panel.console.queue
    model = run.controller.model
    qtbot.waitUntil(lambda: any(r.alert.type == "battery_low" for r in model.rows()), timeout=30_000)
    QTest.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)     # the scenario holds still
    batt = next(r for r in model.rows() if r.alert.type == "battery_low").alert.alert_id
    _activate(qtbot, panel)
    _click_row(q, batt)

    def shelve(dlg):
        QTest.keyClicks(dlg.reason, "charging tonight, confirmed with the subject")
        QTest.mouseClick(dlg.buttons.button(dlg.buttons.StandardButton.Ok), Qt.MouseButton.LeftButton)
    seen = _when_modal(qtbot, ShelveDialog, shelve)
    QTest.keyClick(q.table, Qt.Key.Key_S)                        # the S shortcut
    assert seen and model.row(batt).handling.state == "shelved"
    _activate(qtbot, panel)
    assert q.unshelve_btn.isEnabled()
    first = q.shelved_list.model().index(0, 0)
    QTest.mouseClick(q.shelved_list.viewport(), Qt.MouseButton.LeftButton,
                     pos=q.shelved_list.visualRect(first).center())
    QTest.mouseClick(q.unshelve_btn, Qt.MouseButton.LeftButton)  # the Unshelve button
    assert model.row(batt).handling.state == "unacknowledged"
    _activate(qtbot, panel)
    _click_row(q, batt)
    seen = _when_modal(qtbot, ShelveDialog, shelve)
    QTest.keyClick(q.table, Qt.Key.Key_S)
    assert model.row(batt).handling.state == "shelved"
    _activate(qtbot, panel)
    QTest.keyClick(q.table, Qt.Key.Key_U)                        # U unshelves the first shelved
    assert model.row(batt).handling.state == "unacknowledged"

    run.store.flush()
    log = [(r["alert_id"], r["action"], r["operator"]) for r in run.store.ack_log()]
    assert (batt, "shelve", "op.jones") in log and (batt, "unshelve", "op.jones") in log
    QTest.mouseClick(panel.reset_button, Qt.MouseButton.LeftButton)
    assert panel.run is None and panel.console is None and not run.worker.running


def test_a_wrong_role_or_password_does_not_make_a_trainee(qtbot, handled_store, own, tmp_path):
    from ui.session.signin import SignInDialog
    panel = _panel(own, handled_store, tmp_path, map_factory=_placeholder_map)
    errors = []

    def wrong(dlg):
        QTest.keyClicks(dlg.user, "op.jones")
        QTest.keyClick(dlg.user, Qt.Key.Key_Return)
        QTest.keyClicks(dlg.password, "not the password")
        QTest.keyClick(dlg.password, Qt.Key.Key_Return)
        errors.append(dlg.error.text())
        dlg.reject()
    _when_modal(qtbot, SignInDialog, wrong)
    QTest.mouseClick(panel.trainee_button, Qt.MouseButton.LeftButton)
    assert errors and errors[0] and panel.trainee_session is None
    assert "demonstration by tr.lee" in panel.trainee.text()
    assert handled_store.accounts.get("op.jones")["failures"] == 1      # counted once, not twice


def test_the_trainee_gets_the_consoles_map_and_details(qtbot, handled_store, own, tmp_path):
    from ui.map.view import MapView
    panel = _panel(own, handled_store, tmp_path)
    panel.speed.setCurrentIndex(panel.speed.findData(600))
    run = panel.start("strap_cut")
    console = panel.console
    assert isinstance(console.map, MapView)
    qtbot.waitUntil(lambda: console.map.is_ready, timeout=30_000)
    qtbot.waitUntil(lambda: any(r.alert.type == "strap_tamper" for r in run.controller.model.rows()),
                    timeout=30_000)
    aid = next(r for r in run.controller.model.rows() if r.alert.type == "strap_tamper").alert.alert_id
    _click_row(console.queue, aid)                       # selecting the alert shows its offender
    off = run.controller.model.row(aid).alert.offender
    qtbot.waitUntil(lambda: console.details.offender == off, timeout=10_000)
    qtbot.waitUntil(lambda: console.map.marker_count > 0, timeout=10_000)


def test_escalation_and_scoring_run_on_real_seconds(qtbot, handled_store, own, tmp_path):
    Settings().set("alarm/escalate_critical_s", 5)        # the shortest limit, so the test can wait it out
    panel = _panel(own, handled_store, tmp_path, map_factory=_placeholder_map)
    panel.set_trainee(handled_store.sessions["operator"])
    panel.speed.setCurrentIndex(panel.speed.findData(60))
    run = panel.start("strap_cut")                         # the strap is cut 5 simulated min in
    model = run.controller.model
    qtbot.waitUntil(lambda: any(r.alert.type == "strap_tamper" for r in model.rows()), timeout=30_000)
    row = next(r for r in model.rows() if r.alert.type == "strap_tamper")
    aid = row.alert.alert_id
    raised_real = time.monotonic()
    qtbot.waitUntil(lambda: model.now - row.alert.raised_at > 90, timeout=10_000)   # 90 simulated s
    assert not model.is_escalated(row)                     # ... but under 5 real seconds
    assert "‼" not in model.data(model.index(model.source_row(aid), COL_TTA))
    qtbot.waitUntil(lambda: model.is_escalated(row), timeout=10_000)
    assert time.monotonic() - raised_real >= 4.0
    # the trainer pauses: the trainee's clock stops with the scenario's
    QTest.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: run.feed.speed == 0.0, timeout=5000)
    qtbot.wait(1500)
    QTest.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: run.feed.speed == 60.0, timeout=5000)
    qtbot.wait(500)
    panel.console.queue.select_alert(aid)

    def ack(dlg):
        QTest.keyClick(dlg.action, Qt.Key.Key_1)
        dlg.note.setFocus()
        QTest.keyClicks(dlg.note, "called")
        QTest.mouseClick(dlg.buttons.button(dlg.buttons.StandardButton.Ok), Qt.MouseButton.LeftButton)
    _when_modal(qtbot, AckDialog, ack)
    _activate(qtbot, panel)
    QTest.keyClick(panel.console.queue.table, Qt.Key.Key_A)
    acked_real = time.monotonic()
    assert model.row(aid).handling.state == "acknowledged"
    rows = panel.show_report()
    r = next(x for x in rows if x["alert_id"] == aid)
    wall = acked_real - raised_real
    # real seconds without the pause (1.5 s): well under the wall time, far under the simulated
    assert wall - 1.5 - 1.0 <= r["tta_s"] <= wall - 1.0
    sim = model.row(aid).handling.acked_at - row.alert.raised_at
    assert sim > 30 * r["tta_s"]
    shown = panel.report.data(panel.report.index(rows.index(r), 6))
    assert shown == f"0:{int(r['tta_s']):02d}"


def _contrast(fg: str, bg: str) -> float:
    from PySide6.QtGui import QColor

    def lum(c):
        c = QColor(c)
        ch = [v / 255 for v in (c.red(), c.green(), c.blue())]
        ch = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in ch]
        return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2]
    a, b = sorted((lum(fg), lum(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def _every_cell(model, p):
    """(foreground, background) of every cell, the style's text and base where the model says none."""
    for r in range(model.rowCount()):
        for c in range(model.columnCount()):
            idx = model.index(r, c)
            fg = model.data(idx, Qt.ItemDataRole.ForegroundRole)
            bg = model.data(idx, Qt.ItemDataRole.BackgroundRole)
            yield (fg.name() if fg is not None else p.text), (bg.name() if bg is not None else p.base), (r, c)


@pytest.mark.parametrize("p", [DARK], ids=["dark"])
def test_queue_and_report_rows_are_readable_in_the_dark_theme(p):
    model = AlertTableModel(escalation={"critical": 60, "high": 180, "medium": 900})
    changes = []
    for k, t in enumerate(("strap_tamper", "exclusion_entered", "signal_lost", "battery_low", "feed_lost")):
        a = Alert(alert_id(t, f"OFF-{k}", None, T0), t, PRIORITY[t], f"OFF-{k}", f"TAG-{k}", None, None, T0, T0)
        changes.append(("raised", a))
    model.apply_changes(changes, T0)
    ids = [a.alert_id for _c, a in changes]
    model.set_handling(ids[1], Handling(state="acknowledged", acked_at=T0 + 10, acked_by="op", action="x"))
    model.set_handling(ids[2], Handling(state="closed", acked_at=T0 + 10, closed_at=T0 + 20))
    model.set_handling(ids[3], Handling(state="shelved", shelved_until=T0 + 900))
    model.set_palette(p)
    worst = []
    for now, flash in ((T0 + 1, False), (T0 + 1, True), (T0 + 5000, False), (T0 + 5000, True)):
        model.tick(now, flash)                     # new, flashing, escalated
        worst += [(_contrast(fg, bg), fg, bg, at) for fg, bg, at in _every_cell(model, p)]
    assert min(worst)[0] >= 4.5, min(worst)

    from monitorapp.sim.script import Incident
    report = TraineeReportModel()
    report.set_palette(p)
    base = {"incident": "strap_tamper", "incident_at": T0, "alert_id": "a", "type": "strap_tamper",
            "priority": "critical", "offender": "OFF-1", "raised_at": T0, "tta_s": 12.0, "waited_s": None,
            "action": "x", "note": "", "by": "op", "start": T0}
    report.set_rows([base, {**base, "alert_id": None, "type": None, "tta_s": None},
                     {**base, "alert_id": "b", "tta_s": None, "waited_s": 40.0},
                     {**base, "alert_id": "c", "incident": None}])
    assert Incident and report.data(report.index(2, 6)) == "waiting 0:40"
    cells = [(_contrast(fg, bg), fg, bg, at) for fg, bg, at in _every_cell(report, p)]
    assert min(cells)[0] >= 4.5, min(cells)
    assert LIGHT.text != p.text
