"""The centre's record on PostgreSQL: ``PgStore(dsn)``, with the public interface of
``localdb.store.Store``.

``PgStore(dsn, mode="live")`` connects, migrates (``centraldb.schema``), checks or sets the
store's mode (a training database is refused live and the other way round, with
:class:`StoreModeError`, before anything is written) and starts the single writer thread
(``centraldb.writer``). The engine feeds it through ``attach(engine)``; only one process may
feed a record at a time (a session advisory lock on the writer's connection, released by the
server when that process dies). Handling goes through the server's functions (``ack_alert``,
``close_alert``, ``shelve_alert``, ``unshelve_alert``), which enforce the rules; a refusal is a
:class:`HandlingError` (:class:`AlreadyAcknowledged`, with ``by`` and ``at``, when another
operator was first). Readers use ``reader()``: a read-only autocommit connection per thread.

Identity: the store is signed in as one PostgreSQL login (the DSN's user, or ``credentials=(user,
password)`` kept out of the DSN); ``login`` and ``roles`` are what the server says it is. Every
name the record writes is that login's (handling, audit, zone versions, purges: the server takes
``session_user``), and every time of a handling or audit record is the server's clock; the names
the store interface takes are never sent (a handling step naming someone else is refused here, so
a caller finds out). What the login may do is the server's decision (``centraldb.roles``); a
police analyst's ``crime_reader`` goes through the audited ``crime_window``.

Anchored logs: after every committed step the heads in ``chain_heads`` are appended to an anchor
file on this machine (``localdb.anchor.default_anchor_path(dsn)`` unless ``anchor=`` names one;
``anchor=False`` for none), outside the database's reach: a rewrite of the log together with
``chain_heads`` by the database's owner is caught by ``monitorapp verify-log --anchor``. The
decider checkpoints every few seconds, so its anchor also follows workstations' steps.

Crash safety is localdb's: ``checkpoint`` commits the engine's snapshot and the feed position in
the same transaction as everything queued before it, with the sequences' high-water marks;
``load_checkpoint()`` removes what was stored after it (the restarted engine reports it again).
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg

from localdb.anchor import AnchorFile, default_anchor_path
from localdb.handling import ACTION_CODES, AlreadyAcknowledged, HandlingError  # noqa: F401
from localdb.schema import MODES, StoreError, StoreModeError
from localdb.store import DEFAULT_RETENTION_DAYS, _alert_row, _state_json, _state_loads
from centraldb import records
from centraldb.schema import ERR_ALREADY_ACKED, ERR_REFUSED, migrate
from centraldb.writer import ALERT, EVENT, FIX, REJECTED, PgWriter

FEED_LOCK = 0x454D5346           # "EMSF": the advisory lock of the one process feeding the record


def redact(dsn: str) -> str:
    """The DSN without its password, for messages and logs."""
    try:
        u = urlsplit(dsn)
        if u.password is not None:
            host = u.hostname or ""
            netloc = f"{u.username}:***@{host}" + (f":{u.port}" if u.port else "")
            return urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))
    except ValueError:
        pass
    return dsn


def _handling_error(e: psycopg.Error) -> HandlingError | None:
    state = getattr(e, "sqlstate", None)
    msg = e.diag.message_primary if e.diag else str(e)
    if state == ERR_ALREADY_ACKED:
        try:
            detail = json.loads(e.diag.message_detail or "{}")
        except ValueError:
            detail = {}
        return AlreadyAcknowledged(msg, detail.get("by"), detail.get("at"))
    if state == ERR_REFUSED:
        return HandlingError(msg)
    return None


class PgStore:
    """One database, one writer thread, a reader connection per thread."""

    def __init__(self, dsn: str, *, create: bool = True,
                 retention_days: float = DEFAULT_RETENTION_DAYS, clock=time.time,
                 mode: str = "live", busy_timeout_s: float = 5.0, anchor=None,
                 credentials: tuple[str, str] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"a store mode is one of {', '.join(MODES)}, not {mode!r}")
        self.dsn = dsn
        self.anchor = None if anchor is False else AnchorFile(
            default_anchor_path(dsn) if anchor is None else anchor)
        self.anchor_error: str | None = None
        self.path = redact(dsn)          # what messages name (localdb names its file)
        self.retention_days = retention_days
        self.clock = clock
        self.mode = mode
        self._busy = busy_timeout_s
        # (user, password) of the person signing in, kept out of the DSN (and so out of
        # messages); None: the DSN's own user, or libpq's PGPASSFILE / PGPASSWORD
        self._credentials = ({"user": credentials[0], "password": credentials[1]}
                             if credentials else {})
        conn = self._connect()
        try:
            found = _stored_mode(conn)
            if found is not None and found != mode:
                raise StoreModeError(self.path, found, mode)
            if not create and found is None and not _has_schema(conn):
                raise StoreError(f"{self.path}: no monitorapp record in this database")
            _migrate_if_needed(conn, self.path)
            with conn.transaction():
                if found is None:        # only the record's owner or its decider marks it
                    conn.execute("INSERT INTO meta (key, value) VALUES ('mode', %s)"
                                 " ON CONFLICT (key) DO NOTHING", (mode,))
                found = conn.execute("SELECT value FROM meta WHERE key='mode'").fetchone()[0]
                # who the server says this connection is: every name the record writes
                self.login, self.roles = _identity(conn)
            if found != mode:            # another process marked the fresh record first
                raise StoreModeError(self.path, found, mode)
        except BaseException:
            conn.close()
            raise
        self._writer = PgWriter(conn, self.path)
        self._local = threading.local()
        self._readers: list = []
        self._readers_lock = threading.Lock()
        self._fed = False
        self._engine = None

    def _connect(self, **kw) -> psycopg.Connection:
        try:
            conn = psycopg.connect(self.dsn, application_name="monitorapp",
                                   **self._credentials, **kw)
        except psycopg.Error as e:
            raise StoreError(f"{self.path}: cannot connect to the record: "
                             f"{str(e).strip().splitlines()[0] if str(e).strip() else e}") from None
        conn.execute(f"SET lock_timeout = {int(self._busy * 1000)}")
        conn.execute("SET statement_timeout = 0")
        if not kw.get("autocommit"):
            conn.commit()
        return conn

    # ---- life cycle -------------------------------------------------------------------------
    def close(self, alert_id: str | None = None, operator: str | None = None,
              note: str | None = None):
        """``close()`` closes the store; ``close(alert_id, operator)`` closes an alert."""
        if alert_id is not None:
            return self.close_alert(alert_id, operator, note)
        try:
            with self._readers_lock:
                for conn in self._readers:
                    conn.close()
                self._readers.clear()
        finally:
            self._writer.close()

    def __enter__(self) -> "PgStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reader(self) -> psycopg.Connection:
        """This thread's read-only connection (autocommit, read-only transactions)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._connect(autocommit=True)
            conn.execute("SET default_transaction_read_only = on")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _call(self, fn):
        """``fn(conn)`` in the writer's transaction; once committed, the chains' heads go to
        the anchor file (a failure to anchor is logged and kept in ``anchor_error``: the step
        itself is committed)."""
        if self.anchor is None:
            return self._committed(fn)

        def with_heads(conn):
            return fn(conn), {r[0]: (r[1], r[2]) for r in conn.execute(
                "SELECT chain, seq, hash FROM chain_heads")}
        result, heads = self._committed(with_heads)
        try:
            self.anchor.record(heads, self.clock())
            self.anchor_error = None
        except OSError as e:
            self.anchor_error = f"{self.anchor.path}: the logs' anchor cannot be written: {e}"
            logging.getLogger("monitorapp.store").error(self.anchor_error)
        return result

    def _committed(self, fn):
        def guarded(conn):
            try:
                return fn(conn)
            except psycopg.Error as e:
                mapped = _handling_error(e)
                if mapped is not None:
                    raise mapped from None
                raise
        try:
            return self._writer.call(guarded)
        except (HandlingError, StoreError):
            raise
        except psycopg.Error as e:
            raise StoreError(f"{self.path}: the store cannot be written: {e}") from e

    def flush(self) -> None:
        self._call(lambda conn: None)

    @property
    def writer(self):
        """The single writer, for the host's watchdog: ``health()``, ``error``, ``restart()``."""
        return self._writer

    # ---- the engine -------------------------------------------------------------------------
    def attach(self, engine) -> None:
        """Store every fix, event, rejection and alert change the engine reports. Only one
        process may feed a record: a second gets a StoreError."""
        if not self._fed:
            got = self._call(lambda c: c.execute("SELECT pg_try_advisory_lock(%s)",
                                                 (FEED_LOCK,)).fetchone()[0])
            if not got:
                raise StoreError(f"{self.path}: the record is already being fed by another "
                                 f"process (only one engine may write a record)")
            self._fed = True
        self._engine = engine
        engine.add_listener(on_alert=self.on_alert, on_fix=self.on_fix,
                            on_event=self.on_event, on_rejected=self.on_rejected)

    def on_fix(self, fix, used: bool) -> None:
        self._writer.put((FIX, fix, used))

    def on_event(self, event) -> None:
        self._writer.put((EVENT, event))

    def on_rejected(self, rejection) -> None:
        self._writer.put((REJECTED, rejection))

    def on_alert(self, alert, change: str) -> None:
        now = self._engine_now()
        if change == "raised":
            at = alert.raised_at
        elif change == "cleared" and alert.cleared_at is not None:
            at = alert.cleared_at
        else:
            at = now
        row = list(_alert_row(alert, now))
        row[10] = bool(row[10])                     # late
        self._writer.put((ALERT, tuple(row),
                          (alert.alert_id, change,
                           0 if change == "raised" else alert.reactivations, at, alert.state)))

    def _engine_now(self) -> float:
        now = getattr(self._engine, "now", None)
        if callable(now):
            now = now()
        return float(now) if isinstance(now, (int, float)) and math.isfinite(now) else self.clock()

    _HIGH_WATER = ("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {}")

    def checkpoint(self, engine, position, feed: str = "default") -> None:
        """Durably record the engine's state and the feed position, after all queued writes."""
        snapshot = _state_json(engine.snapshot())
        pos = json.dumps(position)
        at = self.clock()

        def write(conn):
            # only the writer assigns ids: every stored row has an id <= the sequence's last
            # value, and every row queued after this checkpoint gets a larger one
            ids = [conn.execute(self._HIGH_WATER.format(seq)).fetchone()[0]
                   for seq in ("fixes_fix_id_seq", "events_event_id_seq",
                               "rejected_rejected_id_seq")]
            conn.execute("INSERT INTO checkpoints (feed, at, position, snapshot, max_fix_id,"
                         " max_event_id, max_rejected_id) VALUES (%s,%s,%s,%s,%s,%s,%s)"
                         " ON CONFLICT (feed) DO UPDATE SET at=excluded.at,"
                         " position=excluded.position, snapshot=excluded.snapshot,"
                         " max_fix_id=excluded.max_fix_id, max_event_id=excluded.max_event_id,"
                         " max_rejected_id=excluded.max_rejected_id",
                         (feed, at, pos, snapshot, *ids))
        self._call(write)

    def load_checkpoint(self, feed: str = "default", *, discard_after: bool = True):
        """(snapshot, position) of the last checkpoint, or (None, None); with ``discard_after``
        the fixes, events and rejections stored after it are removed (see localdb)."""
        def read(conn):
            row = conn.execute("SELECT position, snapshot, max_fix_id, max_event_id,"
                               " max_rejected_id FROM checkpoints WHERE feed=%s",
                               (feed,)).fetchone()
            if row is None:
                return None
            if discard_after:
                conn.execute("DELETE FROM fixes WHERE fix_id > %s", (row[2],))
                conn.execute("DELETE FROM events WHERE event_id > %s", (row[3],))
                conn.execute("DELETE FROM rejected WHERE rejected_id > %s", (row[4],))
            return row
        row = self._call(read)
        if row is None:
            return None, None
        try:
            return _state_loads(row[1]), json.loads(row[0])
        except ValueError as e:
            raise StoreError(f"{self.path}: the checkpoint of feed {feed!r} is unreadable: {e}")

    # ---- the decider's feed journal (migration 6), its session connections ------------------
    def journal_append(self, rows: list[tuple]) -> int | None:
        """Append (arrival, adapter, topic, payload) rows to ``feed_journal`` in the writer's
        transaction (after everything queued before); returns the last id once committed."""
        if not rows:
            return None

        def write(conn):
            with conn.cursor().copy("COPY feed_journal (arrival, adapter, topic, payload)"
                                    " FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
            return conn.execute("SELECT max(journal_id) FROM feed_journal").fetchone()[0]
        return self._committed(write)          # not a logged step: no anchor line

    def journal_after(self, after_id: int, chunk: int = 5000):
        """Yield (id, arrival, adapter, topic, payload) of the journal after ``after_id``."""
        conn = self.reader()
        while True:
            rows = conn.execute("SELECT journal_id, arrival, adapter, topic, payload FROM"
                                " feed_journal WHERE journal_id > %s ORDER BY journal_id"
                                " LIMIT %s", (after_id, chunk)).fetchall()
            yield from rows
            if len(rows) < chunk:
                return
            after_id = rows[-1][0]

    def journal_release(self, upto_id: int) -> None:
        """A checkpoint at ``upto_id`` is committed: the journal up to it goes."""
        self._committed(lambda conn: conn.execute(
            "DELETE FROM feed_journal WHERE journal_id <= %s", (upto_id,)))

    def session_connection(self) -> psycopg.Connection:
        """A new autocommit connection as this store's login, for a session-level use of its
        own: the decider's leader lock, its LISTEN for the record's notifications."""
        return self._connect(autocommit=True)

    # ---- caseload, zones --------------------------------------------------------------------
    def record_caseload(self, caseload, who: str = "system") -> dict:
        doc = getattr(caseload, "raw", caseload)
        if not isinstance(doc, dict):
            raise StoreError("record_caseload needs a Caseload or its JSON object")
        at = self.clock()
        return self._call(lambda conn: records.record_caseload(conn, doc, who, at))

    def record_zone_edit(self, feature: dict, who: str, version: int | None = None,
                         removed: bool = False, *, base_version: int | None = None) -> int:
        at = self.clock()
        return self._call(lambda conn: records.record_zone(conn, feature, who, at, version,
                                                           removed, audit_it=True,
                                                           base_version=base_version))

    # ---- handling: the server decides -------------------------------------------------------
    def _handle(self, sql: str, args: tuple) -> dict:
        def run(conn):
            cur = conn.execute(sql, args)
            return dict(zip([c.name for c in cur.description], cur.fetchone()))
        return self._call(run)

    # Who acts is this connection's login (``self.login``) and when is the server's clock: the
    # ``operator`` argument of the store interface is never sent. A name that is not the login
    # is refused here, so a caller that meant someone else finds out instead of acting for them.
    def _as_login(self, operator) -> None:
        if not isinstance(operator, str) or not operator.strip():
            raise HandlingError("operator is required")
        if operator.strip() != self.login:
            raise HandlingError(f"this record is signed in as {self.login}: it cannot act as "
                                f"{operator.strip()[:64]}")

    def acknowledge(self, alert_id: str, operator: str, action_code: str,
                    note: str | None = None) -> dict:
        if note is not None and not isinstance(note, str):
            raise HandlingError("note must be text")
        self._as_login(operator)
        return self._handle("SELECT * FROM ack_alert(%s, %s, %s)", (alert_id, action_code, note))

    def close_alert(self, alert_id: str, operator: str, note: str | None = None,
                    skipped: dict | None = None) -> dict:
        """``skipped``: {step id: reason} for the protocol's mandatory steps not completed."""
        self._as_login(operator)
        if skipped is not None and not isinstance(skipped, dict):
            raise HandlingError("skipped steps must be given as {step id: reason}")
        return self._handle("SELECT * FROM close_alert_skipping(%s, %s, %s::jsonb)",
                            (alert_id, note, json.dumps(skipped or {})))

    def record_step(self, alert_id: str, operator: str, step: str, outcome: str,
                    reference: str | None = None, note: str | None = None) -> dict:
        """A step of the alert's response (issue 21): the server's ``record_step``."""
        for value, what in ((reference, "reference"), (note, "note")):
            if value is not None and not isinstance(value, str):
                raise HandlingError(f"{what} must be text")
        self._as_login(operator)
        return self._handle("SELECT * FROM record_step(%s, %s, %s, %s, %s)",
                            (alert_id, step, outcome, reference, note))

    def record_protocols(self, doc: dict, who: str | None = None) -> int:
        """Record the centre's response protocols as this login (checked here first)."""
        from monitorapp.response.protocols import canonical, checked
        text = canonical(checked(doc))
        return self._call(lambda c: c.execute("SELECT record_protocols(%s)", (text,)).fetchone()[0])

    def protocol_steps(self, alert_id: str) -> list[dict]:
        """The ordered steps of one alert's protocol (the server's ``protocol_steps_of``)."""
        row = self.reader().execute("SELECT protocol_steps_of(%s)", (alert_id,)).fetchone()
        if row is None or row[0] is None:
            raise HandlingError(f"no such alert: {alert_id}")
        return list(row[0])

    def response_protocols(self) -> dict | None:
        """The newest recorded protocols (normalised), None when the record has none."""
        row = self.reader().execute("SELECT doc FROM response_protocols ORDER BY version DESC"
                                    " LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def shelve(self, alert_id: str, operator: str, reason: str, until: float) -> dict:
        if not isinstance(until, (int, float)) or isinstance(until, bool):
            raise HandlingError("a shelving needs an expiry time in the future")
        self._as_login(operator)
        return self._handle("SELECT * FROM shelve_alert(%s, %s, %s)",
                            (alert_id, reason if isinstance(reason, str) else None, float(until)))

    def unshelve(self, alert_id: str, operator: str) -> dict:
        self._as_login(operator)
        return self._handle("SELECT * FROM unshelve_alert(%s)", (alert_id,))

    # ---- audit ------------------------------------------------------------------------------
    def audit(self, who: str, action: str, detail: dict | None = None) -> dict:
        if not isinstance(who, str) or not who.strip():
            raise StoreError("an audit record needs who did it")
        text = json.dumps(detail or {}, sort_keys=True, default=str)
        at = self.clock()
        return self._call(lambda c: records.audit(c, at, who.strip(), action, text))

    def sign_in(self, operator: str | None = None) -> dict:
        """Record this login's sign-in (the server's ``sign_in()``: refused for a login without
        an account or with a disabled or locked one). ``operator``, if given, must be the login."""
        if operator is not None and operator != self.login:
            raise StoreError(f"this record is signed in as {self.login}, not {operator}")

        def run(conn):
            cur = conn.execute("SELECT * FROM sign_in()")
            row = dict(zip([c.name for c in cur.description], cur.fetchone()))
            row["detail"] = json.loads(row["detail"])
            return row
        return self._call(run)

    # ---- retention: whole partitions --------------------------------------------------------
    def purge_fixes(self, who: str = "system", now: float | None = None,
                    retention_days: float | None = None) -> int:
        """Drop every monthly partition of fixes measured wholly before now - retention;
        audited. Returns how many fixes went. (A partition straddling the cutoff is kept
        until it is wholly older: retention is at least, never less than, the setting.)"""
        days = self.retention_days if retention_days is None else retention_days
        if not isinstance(days, (int, float)) or not days > 0:
            raise StoreError(f"retention must be a positive number of days, not {days!r}")
        now = self.clock() if now is None else now
        cutoff = now - days * 86400.0

        def purge(conn):
            n = conn.execute("SELECT drop_fix_partitions(%s, %s)",      # audited as the login
                             (cutoff, float(days))).fetchone()[0]
            self._writer._months.clear()             # dropped months are made again if needed
            return n
        return self._call(purge)

    # ---- reads ------------------------------------------------------------------------------
    def alerts(self, *, handling_state: str | None = None, limit: int | None = None) -> list[dict]:
        return records.read_alerts(self.reader(), self.clock(), handling_state, limit)

    def crime_reader(self, lo: float, hi: float, *, ref: str | None = None,
                     reason: str | None = None, place: dict | None = None):
        """What crime mapping and trail playback read for the window [lo, hi], as an in-memory
        SQLite database shaped like a store (``centraldb.crime.crime_slice``), so their code
        runs unchanged on this record. A login that may not read fixes (a police analyst, a
        supervisor) reads through the server's audited ``crime_window``, which records who,
        ``ref``, ``reason`` and ``place`` before it returns a row, and refuses without them."""
        from centraldb.crime import audited_crime_slice, crime_slice
        if self.reads_fixes:
            return crime_slice(self.reader(), lo, hi)
        try:
            return self._call(lambda conn: audited_crime_slice(conn, lo, hi, ref, reason, place))
        except HandlingError as e:           # the server's refusal of the read itself
            raise StoreError(f"{self.path}: {e}") from None

    @property
    def reads_fixes(self) -> bool:
        """Whether this login may read fixes directly (the decider, the owner)."""
        return bool(self.reader().execute(
            "SELECT has_table_privilege('fixes', 'SELECT')").fetchone()[0])

    def ack_log(self, alert_id: str | None = None) -> list[dict]:
        return records.read_chain(self.reader(), "ack_log", alert_id)

    def audit_log(self) -> list[dict]:
        return records.read_chain(self.reader(), "audit_log", None)

    def counts(self) -> dict:
        conn = self.reader()
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("fixes", "events", "rejected", "alerts", "alert_changes",
                          "ack_log", "audit_log", "offenders", "zones")}


def _migrate_if_needed(conn, where: str) -> None:
    """Migrate a record that lacks a migration (only its owner or a superuser can); a person's
    connection to a current record migrates nothing."""
    from centraldb.schema import MIGRATIONS, applied_versions
    done = applied_versions(conn) if _has_schema(conn) else []
    conn.rollback()
    if set(MIGRATIONS) <= set(done) and all(v in MIGRATIONS for v in done):
        return
    try:
        migrate(conn)
    except psycopg.errors.InsufficientPrivilege as e:
        conn.rollback()
        raise StoreError(f"{where}: the record needs migrating by its owner: "
                         f"{e.diag.message_primary or e}") from None


def _identity(conn) -> tuple[str, frozenset]:
    """(login, the monitorapp roles it is a member of), as the server establishes them."""
    from centraldb.roles import ROLES, group
    login = conn.execute("SELECT session_user::text").fetchone()[0]
    held = conn.execute("SELECT r FROM unnest(%s::text[]) AS r"
                        " WHERE pg_has_role(session_user, 'monitorapp_' || r, 'MEMBER')",
                        (list(ROLES),)).fetchall()
    return login, frozenset(r[0] for r in held if group(r[0]))


def _has_schema(conn) -> bool:
    return conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is not None


def _stored_mode(conn) -> str | None:
    """The record's mode, read without writing anything (None: not marked yet)."""
    try:
        if conn.execute("SELECT to_regclass('meta')").fetchone()[0] is None:
            return None
        row = conn.execute("SELECT value FROM meta WHERE key='mode'").fetchone()
        return row[0] if row else None
    finally:
        conn.rollback()
