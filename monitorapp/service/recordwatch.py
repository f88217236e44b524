"""What the decider learns from the record (spec v2 §8, issue 15): handling and zone versions.

Operators act through the centre's record (the server's handling functions, zone versions saved
as their own login); the decider never takes handling or a zone from a message a workstation
published. ``RecordWatch`` reads what changed:

* on PostgreSQL, a thread LISTENs on a connection of its own for ``monitorapp_handling`` (an
  ``ack_log`` insert) and ``monitorapp_zone`` (a zone version), the triggers of migration 6; the
  main thread then reads what is new. A poll every 2 s reads the same whether or not a
  notification came (a notification lost with a dropped connection is caught by it).
* on a SQLite store (a single workstation) there is no notification: the poll every 2 s of the
  ack log's highest ``seq`` and each zone's highest version picks up what another process on
  this machine wrote into the same file.

``poll()`` returns the new ack-log entries (after the last ``seq`` seen) and the zone versions
newer than those applied; ``handling_of(entries, now)`` is the handling a console shows,
computed from an alert's entries as the record's ``effective_handling`` does (a shelving whose
time is up has ended by itself), with the alert's ``timeline`` (issue 21: every step, skip and
note, ``monitorapp.response.timeline``), which the consoles show in the details panel.
"""
from __future__ import annotations

import logging
import threading
import time

import orjson

from monitorapp.response.timeline import timeline

log = logging.getLogger("monitorapp.service.recordwatch")
POLL_S = 2.0
ZONES_PER_READ = 500          # (zone id, version) pairs a query reads: 1,000 parameters
CHANNELS = ("monitorapp_handling", "monitorapp_zone")
_ENTRY = ("seq", "alert_id", "at", "operator", "action", "action_code", "note", "reason", "until")


def handling_of(entries: list[dict], now: float) -> dict:
    """The record's handling of one alert from its ack-log entries (in ``seq`` order)."""
    state, acked = "unacknowledged", None
    shelved = None
    closed = None
    for e in entries:
        step = e.get("action") or e.get("step")
        if step == "acknowledge" and acked is None and state != "closed":
            acked, state, shelved = e, "acknowledged", None
        elif step == "close" and state != "closed":
            state, closed, shelved = "closed", e, None
        elif step == "shelve" and state != "closed":
            state, shelved = "shelved", e
        elif step == "unshelve" and state == "shelved":
            state, shelved = ("acknowledged" if acked else "unacknowledged"), None
    if state == "shelved" and shelved is not None and (shelved.get("until") or 0) <= now:
        state, shelved = ("acknowledged" if acked else "unacknowledged"), None
    return {
        "state": state,
        "owner": acked["operator"] if acked else None,
        "acknowledged_at": acked["at"] if acked else None,
        "action_code": acked.get("action_code") if acked else None,
        "note": acked.get("note") if acked else None,
        "shelved_until": shelved.get("until") if shelved else None,
        "shelved_reason": shelved.get("reason") if shelved else None,
        "closed_by": closed["operator"] if closed else None,
        "closed_at": closed["at"] if closed else None,
        "entries": [{"seq": e["seq"], "step": e.get("action") or e.get("step"),
                     "operator": e["operator"], "at": e["at"], "action_code": e.get("action_code"),
                     "note": e.get("note"), "reason": e.get("reason"), "until": e.get("until")}
                    for e in entries],
        "timeline": timeline(entries),
    }


class RecordWatch:
    """New handling entries and zone versions in the record; see the module docstring."""

    def __init__(self, store, pg: bool, ack_seq: int | None, zone_versions: dict[str, int],
                 poll_s: float = POLL_S):
        self.store, self.pg, self.poll_s = store, pg, poll_s
        self._p = "%s" if pg else "?"
        self.ack_seq = self._max_seq() if ack_seq is None else int(ack_seq)
        self.zone_versions = dict(zone_versions)
        self._poke = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_poll = 0.0
        self.listening = False
        self.error: str | None = None          # the last failure to read the record
        self.notifications = 0

    # --- the LISTEN thread (PostgreSQL) --------------------------------------------------------
    def start(self) -> None:
        if self.pg and self._thread is None:
            self._thread = threading.Thread(target=self._listen, name="record-listen", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _listen(self) -> None:
        while not self._stop.is_set():
            conn = None
            try:
                conn = self.store.session_connection()
                for ch in CHANNELS:
                    conn.execute(f"LISTEN {ch}")
                self.listening = True
                self._poke.set()                  # what happened while not listening: read it
                while not self._stop.is_set():
                    for _n in conn.notifies(timeout=0.5, stop_after=1000):
                        self.notifications += 1
                        self._poke.set()
                    conn.execute("SELECT 1")      # a dead connection shows here
            except Exception as e:                # noqa: BLE001 - retried; the poll goes on
                if self.listening or self.error is None:
                    log.warning("record listen failed", extra={"fields": {"error": str(e)[:300]}})
                self.error = f"LISTEN: {e}"[:300]
                self.listening = False
                self._stop.wait(1.0)
            finally:
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:             # noqa: BLE001
                        pass

    # --- the main thread's reads ---------------------------------------------------------------
    def _rows(self, sql: str, args: tuple = ()) -> list:
        return self.store.reader().execute(sql.replace("?", self._p), args).fetchall()

    def _max_seq(self) -> int:
        return int(self._rows("SELECT coalesce(max(seq), 0) FROM ack_log")[0][0])

    def due(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self._poke.is_set() or now >= self._next_poll

    def poll(self, now: float | None = None, force: bool = False):
        """(new ack-log entries, newer zone versions) when notified or the poll is due, else
        ``None``. Raises what the store raises when the record cannot be read."""
        now = time.monotonic() if now is None else now
        if not force and not self.due(now):
            return None
        self._poke.clear()
        self._next_poll = now + self.poll_s
        entries = [dict(zip(_ENTRY, r)) for r in self._rows(
            "SELECT seq, alert_id, at, operator, action, action_code, note, reason, until"
            " FROM ack_log WHERE seq > ? ORDER BY seq LIMIT 10000", (self.ack_seq,))]
        if entries:
            self.ack_seq = entries[-1]["seq"]
        newer = [(zid, int(version)) for zid, version in self._rows(
            "SELECT zone_id, max(version) FROM zones GROUP BY zone_id")
            if version > self.zone_versions.get(zid, 0)]
        zones = self._zone_versions(newer)
        self.error = None if self.listening or not self.pg else self.error
        return entries, zones

    def _zone_versions(self, wanted: list[tuple[str, int]]) -> list[dict]:
        """The record's rows of these (zone id, version)s, in that order, read ``ZONES_PER_READ``
        at a time (a first start reads every zone of the caseload: one query each was 20,000
        round trips)."""
        got: dict[tuple[str, int], tuple] = {}
        for k in range(0, len(wanted), ZONES_PER_READ):
            part = wanted[k:k + ZONES_PER_READ]
            pairs = ", ".join(["(?, ?)"] * len(part))
            for zid, version, feature, removed, by, at in self._rows(
                    "SELECT zone_id, version, feature, removed, created_by, created_at FROM zones"
                    f" WHERE (zone_id, version) IN (VALUES {pairs})",
                    tuple(x for pair in part for x in pair)):
                got[(zid, int(version))] = (feature, removed, by, at)
        zones = []
        for zid, version in wanted:
            row = got.get((zid, version))
            if row is not None:
                feature, removed, by, at = row
                zones.append({"zone_id": zid, "version": version, "feature": orjson.loads(feature),
                              "removed": bool(removed), "saved_by": by, "at": at})
        return zones

    def entries_of(self, alert_id: str) -> list[dict]:
        """Every ack-log entry of one alert, in order (for an alert first published)."""
        return [dict(zip(_ENTRY, r)) for r in self._rows(
            "SELECT seq, alert_id, at, operator, action, action_code, note, reason, until"
            " FROM ack_log WHERE alert_id=? AND seq <= ? ORDER BY seq", (alert_id, self.ack_seq))]
