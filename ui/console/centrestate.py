"""What the decider publishes, read the way the console shows it (client mode, issue 15).

Qt-free helpers of ``ui.console.centreclient``: an alert record (``em/v1/alert/{id}``: the
alert's ``to_record()`` plus ``handling``, or a row of the record's ``alerts()`` read) becomes an
``Alert`` and the queue's ``Handling``; a position message becomes the marker dictionary the
map and the caseload list take; ``DeciderHealth`` judges from the decider's status messages
whether the centre is deciding (spec v2 §8: no "active" word for 10 s, a lost or stopped
decider, a record it cannot reach, or the broker out of reach are each a critical
``system_fault`` on every console).
"""
from __future__ import annotations

import hashlib
import math
import time

from monitorapp.engine.alerts import PRIORITY, Alert
from monitorapp.feed.timeutil import fmt_time, parse_time
from ui.console.alertmodel import Handling

DECIDER_SILENT_S = 10.0          # no "active" word from the decider for longer: unreachable
HANDLING_STATES = ("unacknowledged", "acknowledged", "shelved", "closed")


def _t(v) -> float | None:
    """A time from a record: epoch seconds or the feed's ISO text; None when absent."""
    if v is None or v == "":
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v) if math.isfinite(v) else None
    try:
        return parse_time(v)
    except (ValueError, TypeError):
        return None


def alert_from_record(rec: dict) -> Alert:
    """An ``Alert`` from a published record or a row of ``store.alerts()``; ValueError when it
    is not an alert the queue can show."""
    if not isinstance(rec, dict):
        raise ValueError("an alert record is a JSON object")
    aid, typ = rec.get("alert_id"), rec.get("type")
    if not isinstance(aid, str) or not aid or typ not in PRIORITY:
        raise ValueError(f"not an alert record: {str(aid)[:40]!r} {str(typ)[:40]!r}")
    priority = rec.get("priority") if rec.get("priority") in ("critical", "high", "medium", "low") \
        else PRIORITY[typ]
    start = _t(rec.get("start"))
    raised = _t(rec.get("raised_at"))
    if start is None or raised is None:
        raise ValueError(f"alert {aid}: no start or raised_at time")
    evidence = rec.get("evidence")
    return Alert(alert_id=aid, type=typ, priority=priority,
                 offender=rec.get("offender", rec.get("offender_id")),
                 device=rec.get("device"),
                 requirement=rec.get("requirement", rec.get("requirement_id")),
                 zone=rec.get("zone", rec.get("zone_id")), start=start, raised_at=raised,
                 late=bool(rec.get("late")), evidence=evidence if isinstance(evidence, dict) else {},
                 state="cleared" if rec.get("state") == "cleared" else "active",
                 cleared_at=_t(rec.get("cleared_at")),
                 reactivations=int(rec.get("reactivations") or 0),
                 zone_version=rec.get("zone_version"))


def handling_from_published(h) -> Handling:
    """The queue's ``Handling`` from the decider's ``handling`` object (the record's, with its
    ack-log entries)."""
    if not isinstance(h, dict):
        return Handling()
    state = h.get("state") if h.get("state") in HANDLING_STATES else "unacknowledged"
    entries = [e for e in (h.get("entries") or []) if isinstance(e, dict)]
    shelve = next((e for e in reversed(entries) if e.get("step") == "shelve"), {})
    owner = h.get("owner")
    if isinstance(owner, dict):
        owner = owner.get("operator")
    return Handling(state=state, acked_at=_t(h.get("acknowledged_at")), acked_by=owner,
                    action=h.get("action_code"), note=h.get("note"),
                    closed_at=_t(h.get("closed_at")), closed_by=h.get("closed_by"),
                    shelved_until=_t(h.get("shelved_until")) if state == "shelved" else None,
                    shelved_by=shelve.get("operator") if state == "shelved" else None,
                    shelve_reason=(h.get("shelved_reason") or shelve.get("reason") or shelve.get("note"))
                    if state == "shelved" else None,
                    state_before_shelve=("acknowledged" if owner else "unacknowledged")
                    if state == "shelved" else None,
                    steps=len(h.get("timeline") or []) if isinstance(h.get("timeline"), list) else 0)


def handling_from_row(d: dict) -> Handling:
    """The queue's ``Handling`` from a row of ``store.alerts()`` (the record read at start)."""
    state = d.get("handling") if d.get("handling") in HANDLING_STATES else "unacknowledged"
    if state == "unacknowledged":
        return Handling()
    who, at = d.get("handled_by"), _t(d.get("handled_at"))
    return Handling(state=state, acked_at=at, acked_by=who, action=d.get("action_code"),
                    closed_at=at if state == "closed" else None,
                    closed_by=who if state == "closed" else None,
                    shelved_until=_t(d.get("shelved_until")), shelved_by=who if state == "shelved" else None,
                    shelve_reason=d.get("shelved_reason"),
                    state_before_shelve=("acknowledged" if d.get("action_code") else "unacknowledged")
                    if state == "shelved" else None)


def published_handling(h: Handling) -> dict:
    """A ``Handling`` as the published ``handling`` object (what the cache keeps)."""
    return {"state": h.state, "owner": h.acked_by, "acknowledged_at": h.acked_at,
            "action_code": h.action, "note": h.note, "shelved_until": h.shelved_until,
            "closed_by": h.closed_by, "closed_at": h.closed_at,
            "entries": ([{"step": "shelve", "operator": h.shelved_by, "note": h.shelve_reason}]
                        if h.state == "shelved" else [])}


def position_from_published(p: dict) -> dict | None:
    """The marker dictionary (device, lat, lon, acc, t, batt, address) of a position message."""
    if not isinstance(p, dict) or not isinstance(p.get("device"), str):
        return None
    try:
        lat, lon = float(p["lat"]), float(p["lon"])
    except (KeyError, TypeError, ValueError):
        return None
    t = _t(p.get("t"))
    if t is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    out = {"device": p["device"], "lat": lat, "lon": lon, "acc": float(p.get("acc") or 0.0), "t": t,
           "batt": p.get("battery", p.get("batt"))}
    where = address_of(p)
    if where is not None:
        out["address"], out["address_text"] = where
    return out


def address_of(rec: dict) -> tuple[str, str] | None:
    """("Kentish Town Road, Camden", what is read out: "near Kentish Town Road, Camden (80 m)")
    from a published ``address`` (``monitorapp.service.placenames``), or from a position as
    the workstation cache keeps it (``address`` and ``address_text``); None when it names no
    place."""
    a = rec.get("address")
    if isinstance(a, str) and a:          # as the cache keeps a shown position
        text = rec.get("address_text")
        return a, text if isinstance(text, str) and text else a
    if not isinstance(a, dict):
        return None
    short = ", ".join(str(x) for x in (a.get("street"), a.get("borough")) if isinstance(x, str) and x)
    text = a.get("text") if isinstance(a.get("text"), str) and a.get("text") else short
    return (short or text, text) if (short or text) else None


class Freshness:
    """How long what the decider published took to reach this console's screen: the time from
    a message's ``published_at`` to the moment the queue had applied it (``alert``) or the map's
    page had drawn it (``position``), over each interval. Retained messages (old by nature) are not
    counted. ``summary()`` gives the interval's count, p50/p95/p99/max in seconds and a
    histogram (``EDGES_MS``, upper bounds; the last bucket is everything above) that a reader
    can add up over many intervals, then starts the next interval. The clocks of the decider and
    the console are compared, so on two machines it holds only as well as their NTP does."""

    EDGES_MS = (10, 20, 50, 100, 150, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1250, 1500,
                2000, 3000, 5000, 10000)

    def __init__(self):
        # map_batch: how long the map's page took to apply and draw each batch of markers
        self.samples: dict[str, list[float]] = {"alert": [], "position": [], "map_batch": []}

    def add(self, kind: str, lags: list[float]) -> None:
        self.samples[kind].extend(lags)

    def summary(self) -> dict:
        import bisect
        out = {}
        for kind, xs in self.samples.items():
            xs.sort()
            n = len(xs)
            hist = [0] * (len(self.EDGES_MS) + 1)
            for x in xs:
                hist[bisect.bisect_left(self.EDGES_MS, x * 1000.0)] += 1
            out[kind] = {"n": n, "hist": hist, **({"p50": round(xs[n // 2], 3), "p95": round(xs[int(n * 0.95)], 3),
                                                 "p99": round(xs[int(n * 0.99)], 3), "max": round(xs[-1], 3)}
                                                if n else {})}
        self.samples = {k: [] for k in self.samples}
        return out


def console_fault_alert(kind: str, text: str, at: float) -> Alert:
    """This console's own critical ``system_fault`` (the decider or the record out of reach);
    its id is derived from the kind and start, like the engine's."""
    key = f"system_fault|console|{kind}|{fmt_time(at)}"
    return Alert(alert_id="A-console-" + hashlib.sha256(key.encode()).hexdigest()[:12],
                 type="system_fault", priority="critical", offender=None, device=None,
                 requirement=f"console:{kind}", zone=None, start=at, raised_at=at,
                 evidence={"component": "centre", "kind": kind, "error": text, "since": fmt_time(at)})


class DeciderHealth:
    """Whether the centre is deciding, from the decider's status topic and the broker link.

    ``seen(msg, retained)`` takes each ``em/v1/state/decider`` message; ``problem(connected)``
    returns ``(kind, text)`` of what is wrong now (``None`` when all is well). A retained message
    is judged by its own ``at`` (it may be a dead decider's last word); a live one by when it
    arrived."""

    def __init__(self, silent_s: float = DECIDER_SILENT_S, clock=time.time, mono=time.monotonic):
        self.silent_s, self.clock, self.mono = silent_s, clock, mono
        self.last: dict | None = None
        self._active_at: float | None = None        # monotonic: the last "active" word
        self._started = mono()

    def seen(self, msg: dict, retained: bool = False) -> None:
        if not isinstance(msg, dict):
            return
        self.last = msg
        if msg.get("state") == "active":
            at = _t(msg.get("at"))
            age = max(0.0, self.clock() - at) if (retained and at is not None) else 0.0
            self._active_at = self.mono() - age

    def problem(self, connected: bool) -> tuple[str, str] | None:
        if not connected:
            return "broker", "decider unreachable — this console cannot reach the broker"
        last = self.last or {}
        name = last.get("monitor") or "the decider"
        state = last.get("state")
        if state in ("lost", "stopped"):
            return "decider", f"decider unreachable — {name} {'was lost' if state == 'lost' else 'stopped'}"
        quiet = self.mono() - (self._active_at if self._active_at is not None else self._started)
        if self._active_at is None and quiet <= self.silent_s:
            return None                      # just started: the retained word is on its way
        if quiet > self.silent_s:
            return "decider", f"decider unreachable — no word from the decider for {quiet:.0f} s"
        if last.get("record") == "unreachable":
            return "record", f"record unreachable — {name} cannot reach the centre's record"
        return None

    def describe(self) -> str:
        last = self.last or {}
        return f"decider {last.get('monitor') or ''} active".replace("  ", " ")
