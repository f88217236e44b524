"""The workstation's cache of the centre's picture (client mode, issue 15): the last known
alerts with their handling, tag positions, the caseload and the zones, in a small SQLite file
of this workstation (0600, in the application's data directory).

A console that is a client of the centre shows what the decider publishes; it writes here what
it was shown, so that a restart while the centre cannot be reached still shows the last picture,
marked stale with its age (``saved_at``). Nothing here is a record: it is never sent anywhere,
and nothing an operator does is queued in it (actions while cut off are refused at once).

``ConsoleCache(path)`` opens (and creates) the file; ``put_alerts``, ``put_positions``,
``put_zones`` and ``put_caseload`` replace rows by key in one transaction each; ``load()``
returns everything with the time of the last write. Qt-free; the console calls it from one
thread (its cache writer), readers open their own connection.
"""
from __future__ import annotations

import json
import os
import pathlib
import sqlite3
import time

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (alert_id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions (device TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS zones (zone_id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class CacheError(RuntimeError):
    """The cache file cannot be used (the message names it)."""


def _private_file(path: pathlib.Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    os.chmod(path, 0o600)


class ConsoleCache:
    """Last known picture of the centre; see the module docstring."""

    def __init__(self, path, clock=time.time):
        self.path = pathlib.Path(path)
        self.clock = clock
        try:
            _private_file(self.path)
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            for side in ("-wal", "-shm"):          # WAL files hold the same personal data
                p = self.path.with_name(self.path.name + side)
                if p.exists():
                    os.chmod(p, 0o600)
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise CacheError(f"{self.path}: cache schema {version} is newer than this console")
            self._conn.executescript(SCHEMA)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._conn.commit()
        except (OSError, sqlite3.Error) as e:
            raise CacheError(f"{self.path}: the workstation cache cannot be opened: {e}") from None

    def close(self) -> None:
        self._conn.close()

    # ---- writes -----------------------------------------------------------------------------
    def _put(self, table: str, key: str, rows) -> int:
        rows = [(str(k), json.dumps(v, default=str)) for k, v in rows]
        if not rows:
            return 0
        with self._conn:
            self._conn.executemany(f"INSERT INTO {table} ({key}, record) VALUES (?, ?) ON CONFLICT"
                                   f" ({key}) DO UPDATE SET record=excluded.record", rows)
            self._touch()
        return len(rows)

    def _touch(self) -> None:
        self._conn.execute("INSERT INTO meta VALUES ('saved_at', ?) ON CONFLICT (key) DO UPDATE"
                           " SET value=excluded.value", (repr(float(self.clock())),))

    def put_alerts(self, records: list[dict]) -> int:
        """Alert records as the decider publishes them (``to_record()`` plus ``handling``)."""
        return self._put("alerts", "alert_id", ((r["alert_id"], r) for r in records))

    def put_positions(self, positions: list[dict]) -> int:
        return self._put("positions", "device", ((p["device"], p) for p in positions))

    def put_zones(self, zones: list[dict]) -> int:
        """Zone states ``{"zone_id", "version", "feature", "removed", ...}``."""
        return self._put("zones", "zone_id", ((z["zone_id"], z) for z in zones))

    def put_caseload(self, doc: dict) -> None:
        with self._conn:
            self._conn.execute("INSERT INTO meta VALUES ('caseload', ?) ON CONFLICT (key) DO"
                               " UPDATE SET value=excluded.value", (json.dumps(doc),))
            self._touch()

    def drop_alerts(self, alert_ids) -> None:
        with self._conn:
            self._conn.executemany("DELETE FROM alerts WHERE alert_id=?", [(a,) for a in alert_ids])

    # ---- reads ------------------------------------------------------------------------------
    def load(self) -> dict:
        """``{"saved_at": float | None, "alerts": [...], "positions": [...], "zones": [...],
        "caseload": dict | None}``; rows that cannot be read are left out."""
        def rows(table):
            out = []
            for (text,) in self._conn.execute(f"SELECT record FROM {table}"):
                try:
                    out.append(json.loads(text))
                except ValueError:
                    continue
            return out
        meta = dict(self._conn.execute("SELECT key, value FROM meta"))
        try:
            saved = float(meta["saved_at"]) if "saved_at" in meta else None
        except ValueError:
            saved = None
        try:
            caseload = json.loads(meta["caseload"]) if "caseload" in meta else None
        except ValueError:
            caseload = None
        return {"saved_at": saved, "alerts": rows("alerts"), "positions": rows("positions"),
                "zones": rows("zones"), "caseload": caseload}
