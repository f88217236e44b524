"""The monitoring engine: decoded feed messages in, alerts out (spec §4).

One ``Engine`` holds a caseload, the per-tag state and every alert. It is driven by two calls:
``submit`` (a message arrives) and ``advance`` (the processing clock moves). The processing clock
is injected: a replay drives it from each message's ``rx``, the live monitor from the wall
clock, tests from whatever they like. Timers (signal lost, feed lost, curfew grace and window
edges, appointment end) fire at their due time on that clock, in due order, even when the
clock jumps from one ``rx`` to the next.

Rules (breach confirmation is in ``monitorapp.engine.rules``):

* ``exclusion_entered`` (critical): confirmed inside an exclusion zone while its schedule is
  active. Cleared when confirmed outside again or the schedule ends.
* ``curfew_absent`` (high): confirmed outside the curfew zone while the curfew is active; the
  absence starts at the first outside fix of the confirming run, or at the window start if the
  tag was already out; raised when the absence has lasted ``grace_s`` (a timer). Cleared when
  confirmed home or the window ends.
* ``appointment_missed`` (medium): at ``end + grace_s``, no fix with ``t`` in [start, end]
  plausibly inside the zone (signed depth ≥ −acc). It is a fact about the past, not an ongoing
  condition, so it is raised and cleared at once; the operator still acknowledges and closes it.
* ``strap_tamper`` (critical): a ``strap_tamper``/``case_tamper`` event; cleared by
  ``strap_restored``.
* ``signal_lost`` (high): no message from a tag for ``max(300, 3 × fix_interval_s)``; start is
  the measurement time of its last message (or the engine's start for a tag never heard).
  Cleared by the next message. While ``feed_lost`` is active no tag raises it, and after the
  feed returns every tag's count starts again from the recovery.
* ``battery_low`` (low): an event, or ``batt`` < 0.15; once per discharge, re-armed (and
  cleared) above 0.30 or when charging starts.
* ``feed_lost`` (critical): no message at all for 60 s; one system alert; cleared by the next.
* ``system_fault`` (critical): raised and cleared by the engine's host (``raise_system_fault``,
  ``clear_system_fault``) when a part of the centre cannot do its job; one per (component, kind).

Quarantine, not crash (spec §2 "never stops the feed"): ``submit`` and ``submit_message`` never
raise. Whatever fails while one message is processed (the decoder, a rule, a timer fired by the
message's clock advance, a listener such as the store) makes that message a ``processing_error``
rejection with its raw bytes and the error text, counted as rejected (not as a fix or event) and
handed to the rejection listeners; the next message is processed as usual. Every listener is
called even when an earlier one raises. A timer that raises never stops the other timers; one
fired by ``advance`` outside any message is kept in ``errors`` (``take_errors``) for the host to
annunciate. A message whose processing clock lies outside 2000-2100 is quarantined before it
can move the clock, so no message can push the engine's clock into the far future.

One cause, one alert: at most one active alert per (type, offender, requirement). If the
same cause comes back within ``REACTIVATE_WITHIN_S`` of clearing, the cleared alert is
re-activated (its count goes up) rather than a new one raised, so a tag lingering on a
boundary does not flood the queue. Alert ids are derived from (type, offender, requirement,
start), so a replay gives the same ids on every run.

An alert is ``late`` when the message that decided it reached us more than ``LATE_AFTER_S``
after it was measured (a buffered upload after a coverage gap).

Out-of-order fixes of a tag are inserted into its evidence in measurement order and the
decision is re-taken; a fix older than the tag's last four informative fixes for a zone is
kept (and stored) but cannot change a decision that newer fixes have made.

A fix its device marked not valid (an adapter's ``AdaptedFix`` with ``valid`` False, spec §6) is
never evidence: it goes to no rule and is kept as an ``invalid_fix`` rejection with the bytes as
received, but it is the tag talking (no ``signal_lost``). Any message received, a rejected one
too, is traffic for ``feed_lost`` (spec §4).

Events ``gps_jamming``, ``device_fault``, ``power_off`` and ``charging_stopped`` raise no alert
of their own (the spec names none); they are kept in the tag's state and shown to operators.

Zones and requirements edited while it runs (``update_zone``, ``attach_zone``, ``remove_zone``,
``set_requirements``, ``edits``) are ``monitorapp.engine.zoneedits``.
"""
from __future__ import annotations

import collections
import heapq
import itertools
import json
import math
import time

from monitorapp.engine import rules
from monitorapp.engine.alerts import PRIORITY, Alert, alert_id
from monitorapp.engine.caseload import Caseload, Offender, Requirement, Zone
from monitorapp.feed.decoder import DUPLICATE, RESET, FixDecoder, SequenceTracker
from monitorapp.gcpause import paused_gc
from monitorapp.engine.geo import Projector, ZoneShape
from monitorapp.feed.messages import Event, FeedCounters, Fix, Heartbeat, Rejection
from monitorapp.engine.schedule import Schedule
from monitorapp.feed.timeutil import fmt_time
from monitorapp.engine.zonerules import AppointmentRule, CurfewRule, ExclusionRule
from monitorapp.engine.zoneedits import ZoneEdits

FEED_LOST_S = 60.0
SIGNAL_MIN_S = 300.0
LATE_AFTER_S = 60.0
LATE_HOLD_S = 2.0
REACTIVATE_WITHIN_S = 600.0
BATT_LOW, BATT_REARM = 0.15, 0.30
CLOCK_MIN, CLOCK_MAX = 946684800.0, 4102444800.0    # 2000-01-01, 2100-01-01 UTC (spec §2)
ERRORS_KEPT = 100


class TagState:
    """What the engine knows of one tag."""

    __slots__ = ("device", "offender", "threshold", "last_rx", "last_msg_t", "last_fix", "last_t",
                 "batt", "batt_armed", "timer_pending", "events", "rules", "late_buf", "late_token", "signal_alert")

    def __init__(self, device: str, offender: Offender):
        self.device = device
        self.offender = offender
        self.threshold = max(SIGNAL_MIN_S, 3.0 * offender.fix_interval_s)
        self.last_rx: float | None = None       # processing time of its last message
        self.last_msg_t: float | None = None    # measurement time of its last message
        self.last_fix: Fix | None = None        # latest by t
        self.last_t = -math.inf
        self.batt: float | None = None
        self.batt_armed = True
        self.timer_pending = False
        self.events: list[tuple[float, str]] = []   # recent events (t, type)
        self.rules: list = []
        self.late_buf: list[Fix] = []   # late fixes held briefly to be put in measurement order
        self.late_token = 0
        self.signal_alert: Alert | None = None


class Engine(ZoneEdits):
    def __init__(self, caseload: Caseload, start: float | None = None, state: dict | None = None):
        self.caseload = caseload
        self.counters = FeedCounters()
        self.alerts: dict[str, Alert] = {}
        self._active: dict[tuple, Alert] = {}
        self._last_cleared: dict[tuple, Alert] = {}
        self._on_alert: list = []
        self._on_fix: list = []
        self._on_event: list = []
        self._on_rejected: list = []
        self._on_position: list = []
        self._feed_alert: Alert | None = None
        self._heap: list = []
        self._tiebreak = itertools.count()
        self.now: float | None = None
        self.origin: float | None = None
        self.last_rx_any: float | None = None
        self.feed_recovered_at: float | None = None
        self._feed_timer = False
        self.seqs = SequenceTracker()
        self.tags: dict[str, TagState] = {}
        self.zone_versions: dict[str, int] = {}
        self.zone_shapes: dict[str, ZoneShape] = {}
        self._edited_zones: dict[str, dict] = {}
        self._edited_reqs: dict[str, list] = {}
        self.decoder = FixDecoder(self.tags)
        self._failures: list | None = None   # what failed while the current message was processed
        self.errors: collections.deque = collections.deque(maxlen=ERRORS_KEPT)  # failures outside a message
        self.error_count = 0
        with paused_gc():       # tens of thousands of small objects: see monitorapp.gcpause
            pts = []
            for z in caseload.zones.values():
                pts.extend(_zone_points(z.geometry))
            self.projector = Projector(pts)
            for z in caseload.zones.values():
                self._install_zone(z)
            for off in caseload.offenders.values():
                self._install_offender(off)
            if state is not None:
                from monitorapp.engine.state import restore
                restore(self, state)
            elif start is not None:
                self._start_clock(start)

    # ------------------------------------------------------------------ set-up
    def _install_zone(self, z: Zone) -> None:
        self.zone_versions[z.id] = max(self.zone_versions.get(z.id, 0), z.version)
        self.zone_shapes[z.id] = ZoneShape(z.id, z.geometry, z.radius_m, self.projector)

    def _install_offender(self, off: Offender) -> None:
        tag = self.tags.get(off.device)
        if tag is None:
            tag = self.tags[off.device] = TagState(off.device, off)
        tag.offender = off
        tag.rules = []
        tz = self.caseload.tz
        for req in off.requirements:
            shape = self.zone_shapes.get(req.zone)
            if shape is None:
                continue
            if req.type == "exclusion":
                sched = Schedule(req.schedule, tz) if req.schedule else None
                tag.rules.append(ExclusionRule(self, off, req, shape, sched))
            elif req.type == "curfew":
                tag.rules.append(CurfewRule(self, off, req, shape, Schedule(req.schedule, tz)))
            elif req.type == "appointment":
                tag.rules.append(AppointmentRule(self, off, req, shape))

    def _start_clock(self, t: float) -> None:
        self.origin = self.now = t
        for tag in self.tags.values():
            self._arm_signal(tag)
        for tag in self.tags.values():
            for r in tag.rules:
                r.start(t)

    def add_listener(self, on_alert=None, on_fix=None, on_event=None, on_rejected=None, on_position=None):
        for lst, cb in ((self._on_alert, on_alert), (self._on_fix, on_fix), (self._on_event, on_event),
                        (self._on_rejected, on_rejected), (self._on_position, on_position)):
            if cb is not None:
                lst.append(cb)

    # ------------------------------------------------------------------ timers
    def schedule(self, due: float, target, token=None) -> None:
        """Call ``target.on_timer(due, token)`` when the processing clock reaches ``due``."""
        heapq.heappush(self._heap, (due, next(self._tiebreak), target, token))

    def advance(self, now: float) -> None:
        """Move the processing clock to ``now`` (never backwards), firing due timers in order."""
        if self.now is None:
            self._start_clock(now)
            return
        if now < self.now:
            return
        heap = self._heap
        self.advancing_to = now          # rules that recur may skip what a jump leaves behind
        while heap and heap[0][0] <= now:
            due, _, target, token = heapq.heappop(heap)
            if due > self.now:
                self.now = due
            if getattr(target, "retired", False):
                continue            # a rule replaced by a zone or requirement edit
            try:
                target.on_timer(due, token)
            except Exception as e:  # noqa: BLE001 - one timer that raises never stops the others
                self._failed(f"timer {type(target).__name__.lstrip('_')} due {due!r}", e)
        self.now = now

    def _arm_signal(self, tag: TagState) -> None:
        if not tag.timer_pending:
            tag.timer_pending = True
            self.schedule(self._signal_due(tag), _SignalTimer(self, tag))

    def _signal_due(self, tag: TagState) -> float:
        base = tag.last_rx if tag.last_rx is not None else self.origin
        if self.feed_recovered_at is not None and self.feed_recovered_at > base:
            base = self.feed_recovered_at
        return base + tag.threshold

    def on_timer(self, due: float, token) -> None:      # the feed timer
        self._feed_timer = False
        actual = self.last_rx_any + FEED_LOST_S
        if actual > due:
            self._feed_timer = True
            self.schedule(actual, self)
            return
        if self._feed_alert is None:
            self._feed_alert = self.raise_alert(
                "feed_lost", None, None, None, self.last_rx_any, due, False,
                {"last_message_rx": fmt_time(self.last_rx_any), "silence_s": FEED_LOST_S})

    def feed_is_lost(self) -> bool:
        return self._feed_alert is not None

    # ------------------------------------------------------------------ input
    def submit(self, raw: bytes | str, rx: float | None = None, topic: str | None = None):
        """Decode and process one v1 message. ``rx`` is the arrival time live (the processing
        clock); in a replay leave it None and the message's own ``rx`` is used. Never raises:
        whatever fails while the message is processed makes it a ``processing_error``
        rejection (see ``_quarantine``)."""
        try:
            msg = self.decoder.decode(raw, rx, topic)
        except Exception as e:      # noqa: BLE001 - the decoder's own failure is quarantined too
            return self._quarantine(None, raw, topic, rx, e, None)
        return self._submit(msg, rx, raw, topic)

    def submit_message(self, msg, now: float | None = None, raw: bytes | None = None, topic: str | None = None):
        """Process one decoded message (``now``: the processing clock, default its ``rx``).
        ``raw`` and ``topic``: the bytes and topic as received (an adapted message's gateway
        payload), kept if the message is quarantined or is a fix its device marked not valid.
        Never raises, as ``submit``."""
        self._raw = raw, topic
        try:
            return self._submit(msg, now, raw, topic)
        finally:
            self._raw = None, None

    _raw = (None, None)

    def _submit(self, msg, now, raw, topic):
        c = self.counters
        before = (c.messages, c.fixes, c.events, c.heartbeats, c.duplicates,
                  getattr(c, "seq_resets", 0))
        self._failures = failures = []
        try:
            out = self._process(msg, now)
        except Exception as e:      # noqa: BLE001 - quarantine, not crash (spec §2)
            self._failures = None
            return self._quarantine(msg, raw, topic, now, e, before)
        self._failures = None
        if failures:
            if msg.kind != "rejected":
                return self._quarantine(msg, raw, topic, now, failures[0], before)
            for f in failures:           # a rejection that could not be kept: the host hears it
                self.error_count += 1
                self.errors.append(str(f)[:500])
        return out

    def _process(self, msg, now: float | None):
        if now is None:
            now = msg.rx
        if now != now:  # a rejection without any time: process at the current clock
            now = self.now if self.now is not None else 0.0
        elif not CLOCK_MIN <= now < CLOCK_MAX:
            raise ValueError(f"processing clock {now!r} is outside 2000-01-01..2100-01-01 (spec §2)")
        if self.now is None or (self._heap and self._heap[0][0] <= now):
            self.advance(now)
            if self._failures:
                raise self._failures[0]
        elif now > self.now:
            self.now = now
        now = self.now
        c = self.counters
        c.messages += 1
        kind = msg.kind
        if kind == "rejected":
            c.rejected += 1
            c.rejected_by_reason[msg.reason] = c.rejected_by_reason.get(msg.reason, 0) + 1
            self._tell(self._on_rejected, msg)
            if msg.rx == msg.rx:        # any message received is traffic, a rejected one too (§4)
                self._feed_alive(now)
            return msg
        self._feed_alive(now)
        if kind == "heartbeat":
            c.heartbeats += 1
            return msg
        tag = self.tags[msg.device]
        seen = self.seqs.see(msg.device, msg.seq, msg.t)
        if seen == DUPLICATE:       # same seq and t: a retransmission (spec §2)
            c.duplicates += 1
            if kind == "fix":
                self._tell(self._on_fix, msg, False)
            return msg
        if seen == RESET:           # same seq, another t: the tag's counter restarted
            c.seq_resets += 1
        self._tag_heard(tag, msg, now)
        if kind == "fix":
            if not msg.valid:
                # the device does not trust it (spec §6): kept as received, never evidence
                c.rejected += 1
                c.rejected_by_reason["invalid_fix"] = c.rejected_by_reason.get("invalid_fix", 0) + 1
                raw, topic = self._raw
                self._tell(self._on_rejected, Rejection(
                    "invalid_fix", "the device marked this fix not valid: kept, never used as evidence",
                    raw if raw is not None else _message_bytes(msg), msg.rx, topic, msg.device))
                return msg
            c.fixes += 1
            if now - msg.t > LATE_AFTER_S:
                self._hold_late(tag, msg)
            else:
                if tag.late_buf:
                    self._flush_late(tag)
                self._use_fix(tag, msg)
        else:
            c.events += 1
            self._event(tag, msg)
        return msg

    def _feed_alive(self, now: float) -> None:
        self.last_rx_any = now
        if self._feed_alert is not None:
            self._feed_recovered(now)
        if not self._feed_timer:
            self._feed_timer = True
            self.schedule(now + FEED_LOST_S, self)

    def _tag_heard(self, tag: TagState, msg, now: float) -> None:
        tag.last_rx = now
        if tag.last_msg_t is None or msg.t > tag.last_msg_t:
            tag.last_msg_t = msg.t
        if tag.signal_alert is not None:
            self.clear_alert(tag.signal_alert, now)
            tag.signal_alert = None
        if not tag.timer_pending:
            self._arm_signal(tag)

    # ------------------------------------------------------------------ quarantine
    def _tell(self, listeners: list, *args) -> None:
        """Call every listener; one that raises is recorded and never stops the others (the
        store failing must not keep an alert from the operators' queue)."""
        for cb in listeners:
            try:
                cb(*args)
            except Exception as e:  # noqa: BLE001 - recorded: the message is quarantined
                self._failed(f"listener {getattr(cb, '__qualname__', cb)!s}", e)

    def _failed(self, where: str, e: BaseException) -> None:
        if self._failures is not None:           # inside a message: it is quarantined
            self._failures.append(_StageError(where, e))
        else:                                    # a timer or listener outside any message
            self.error_count += 1
            self.errors.append(f"{where}: {e.__class__.__name__}: {e}"[:500])

    def take_errors(self) -> list[str]:
        """Failures outside any message (a timer fired by ``advance``, a listener of it) since
        the last call, for the host to annunciate as ``system_fault``."""
        out = list(self.errors)
        self.errors.clear()
        return out

    def _quarantine(self, msg, raw, topic, now, error: BaseException, before) -> Rejection:
        """The message made a stage fail: it becomes a ``processing_error`` rejection, with
        its raw bytes (or its decoded fields, for a message submitted decoded) and the error,
        counted, and handed to the rejection listeners (the store keeps it). What the message
        did to the engine before the failure stays (an alert it raised stays raised)."""
        c = self.counters
        if before is not None:         # it counts as rejected, not as what it would have been
            c.messages, c.fixes, c.events, c.heartbeats, c.duplicates = before[:5]
            if hasattr(c, "seq_resets"):
                c.seq_resets = before[5]
        c.messages += 1
        c.rejected += 1
        c.rejected_by_reason["processing_error"] = c.rejected_by_reason.get("processing_error", 0) + 1
        if raw is None:
            raw = _message_bytes(msg)
        elif isinstance(raw, str):
            raw = raw.encode("utf-8", "replace")
        rx = now if isinstance(now, (int, float)) else getattr(msg, "rx", None)
        if not isinstance(rx, (int, float)) or rx != rx:
            rx = self.now if self.now is not None else float("nan")
        rej = Rejection("processing_error", f"processing error: {_error_text(error)}"[:1000], raw, rx,
                        topic or getattr(msg, "topic", None), getattr(msg, "device", None))
        self._tell(self._on_rejected, rej)
        return rej

    # ------------------------------------------------------------------ system faults
    def raise_system_fault(self, component: str, kind: str, error: str, at: float | None = None) -> Alert:
        """``system_fault`` (spec §4): a part of the centre cannot do its job. One alert per
        (component, kind) while it lasts, its id derived like every other (type, no offender,
        ``component:kind`` as the requirement, start); the error is in its evidence."""
        at = self._fault_time(at)
        part = _SystemPart(f"{component}:{kind}")
        return self.raise_alert("system_fault", None, None, part, at, at, False,
                                {"component": component, "kind": kind, "error": str(error)[:1000],
                                 "since": fmt_time(at)})

    def clear_system_fault(self, component: str, kind: str, at: float | None = None) -> bool:
        """The part works again: clear its ``system_fault``; False when none was active."""
        a = self._active.get(("system_fault", None, f"{component}:{kind}"))
        if a is None:
            return False
        self.clear_alert(a, self._fault_time(at))
        return True

    def system_faults(self) -> list[Alert]:
        return [a for a in self._active.values() if a.type == "system_fault"]

    def _fault_time(self, at: float | None) -> float:
        if at is None:
            at = self.now if self.now is not None else time.time()
        return max(at, self.now) if self.now is not None else at

    def _feed_recovered(self, now: float) -> None:
        self.clear_alert(self._feed_alert, now)
        self.feed_recovered_at = now
        for tag in self.tags.values():
            self._arm_signal(tag)

    def _hold_late(self, tag: TagState, fix: Fix) -> None:
        """Late fixes (a buffered upload after a coverage gap) come in bursts, in any order: they
        are held for ``LATE_HOLD_S`` of processing time after the last of the burst, then taken in
        measurement order. A fix on time first flushes whatever of its tag is held."""
        tag.late_buf.append(fix)
        tag.late_token += 1
        self.schedule(self.now + LATE_HOLD_S, _LateFlush(self, tag), tag.late_token)

    def _flush_late(self, tag: TagState) -> None:
        buf = sorted(tag.late_buf, key=lambda f: (f.t, f.seq))
        tag.late_buf = []
        for f in buf:
            self._use_fix(tag, f)

    def flush(self) -> None:
        """Take every held late fix now (the end of a replay file)."""
        for tag in self.tags.values():
            if tag.late_buf:
                self._flush_late(tag)

    def _use_fix(self, tag: TagState, fix: Fix) -> None:
        in_order = fix.t >= tag.last_t
        if in_order:
            tag.last_t = fix.t
            tag.last_fix = fix
        for r in tag.rules:
            r.on_fix(fix)
        if in_order and fix.batt is not None:
            self._battery(tag, fix.batt, fix.t, fix)
        self._tell(self._on_fix, fix, True)
        if in_order:
            self._tell(self._on_position, tag.device, fix)

    def _battery(self, tag: TagState, batt: float | None, t: float, source, low_event=False) -> None:
        """``source`` is the Fix that reported ``batt``, or the evidence dict of an event."""
        if batt is not None:
            tag.batt = batt
        if (low_event or (batt is not None and batt < BATT_LOW)) and tag.batt_armed:
            tag.batt_armed = False
            evidence = dict(source) if isinstance(source, dict) else {"fix": _fix_evidence(source)}
            evidence["batt"] = batt
            self.raise_alert("battery_low", tag.offender, tag.device, None, t, self.now,
                             self.now - t > LATE_AFTER_S, evidence)
        elif batt is not None and batt > BATT_REARM and not tag.batt_armed:
            self._rearm_battery(tag)

    def _rearm_battery(self, tag: TagState) -> None:
        tag.batt_armed = True
        a = self._active.get(("battery_low", tag.offender.id, None))
        if a is not None:
            self.clear_alert(a, self.now)

    def _event(self, tag: TagState, ev: Event) -> None:
        tag.events.append((ev.t, ev.type))
        del tag.events[:-20]
        et = ev.type
        evidence = {"event": {"type": et, "t": fmt_time(ev.t), "rx": fmt_time(ev.rx), "seq": ev.seq,
                              "detail": ev.detail}}
        late = self.now - ev.t > LATE_AFTER_S
        if et in ("strap_tamper", "case_tamper"):
            self.raise_alert("strap_tamper", tag.offender, tag.device, None, ev.t, self.now, late, evidence)
        elif et == "strap_restored":
            a = self._active.get(("strap_tamper", tag.offender.id, None))
            if a is not None:
                self.clear_alert(a, self.now)
        elif et in ("battery_low", "battery_critical"):
            self._battery(tag, None, ev.t, evidence, low_event=True)
        elif et == "charging_started":
            self._rearm_battery(tag)
        self._tell(self._on_event, ev)

    # ------------------------------------------------------------------ alerts
    def raise_alert(self, type_: str, offender: Offender | None, device: str | None,
                    req: Requirement | None, start: float, raised_at: float, late: bool,
                    evidence: dict) -> Alert:
        oid = offender.id if offender else None
        rid = req.id if req else None
        key = (type_, oid, rid)
        a = self._active.get(key)
        if a is not None:
            return a
        prev = self._last_cleared.get(key)
        aid = alert_id(type_, oid, rid, start)
        existing = self.alerts.get(aid)
        if existing is None and prev is not None and raised_at - prev.cleared_at <= REACTIVATE_WITHIN_S:
            existing = prev
        if existing is not None:
            existing.state = "active"
            existing.cleared_at = None
            existing.reactivations += 1
            self._active[key] = existing
            self._emit(existing, "reactivated")
            return existing
        zone = req.zone if req else None
        a = Alert(aid, type_, PRIORITY[type_], oid, device, rid, zone, start, raised_at, late, evidence,
                  zone_version=self.zone_versions.get(zone) if zone else None)
        self.alerts[aid] = a
        self._active[key] = a
        self.counters.alerts += 1
        self._emit(a, "raised")
        return a

    def clear_alert(self, a: Alert, at: float) -> None:
        key = (a.type, a.offender, a.requirement)
        if self._active.get(key) is a:
            del self._active[key]
        if a is self._feed_alert:
            self._feed_alert = None
        a.state = "cleared"
        a.cleared_at = at
        self._last_cleared[key] = a
        self._emit(a, "cleared")

    def forget_cleared(self, before: float) -> int:
        """Drop from ``alerts`` the alerts cleared before ``before``, for a host that runs for
        weeks (the console: its queue and the store keep what operators still need). Active
        alerts stay, and so does the last cleared alert of each cause (it may be re-activated).
        Returns how many were dropped."""
        last = {id(a) for a in self._last_cleared.values()}
        old = [aid for aid, a in self.alerts.items()
               if a.state == "cleared" and a.cleared_at is not None and a.cleared_at < before
               and id(a) not in last]
        for aid in old:
            del self.alerts[aid]
        return len(old)

    def active_alert(self, type_: str, offender_id: str | None, requirement_id: str | None) -> Alert | None:
        return self._active.get((type_, offender_id, requirement_id))

    def open_alerts(self) -> list[Alert]:
        return list(self._active.values())

    def _emit(self, a: Alert, change: str) -> None:
        self._tell(self._on_alert, a, change)

    # ------------------------------------------------------------------ state
    def rearm_timers(self) -> None:
        """After a restore: arm every timer the restored state implies (signal lost, late-fix
        flushes, rule timers, the feed-lost watch) on the restored processing clock."""
        for tag in self.tags.values():
            self._arm_signal(tag)
            if tag.late_buf:
                tag.late_token += 1
                self.schedule(self.now + LATE_HOLD_S, _LateFlush(self, tag), tag.late_token)
            for r in tag.rules:
                r.start(self.now)
        if self.last_rx_any is not None and not self.feed_is_lost():
            self._feed_timer = True
            self.schedule(self.last_rx_any + 60.0, self)

    def snapshot(self) -> dict:
        from monitorapp.engine.state import snapshot
        return snapshot(self)


class _LateFlush:
    __slots__ = ("engine", "tag")

    def __init__(self, engine: Engine, tag: TagState):
        self.engine, self.tag = engine, tag

    def on_timer(self, due: float, token) -> None:
        if token == self.tag.late_token and self.tag.late_buf:
            self.engine._flush_late(self.tag)


class _SignalTimer:
    __slots__ = ("engine", "tag")

    def __init__(self, engine: Engine, tag: TagState):
        self.engine, self.tag = engine, tag

    def on_timer(self, due: float, token) -> None:
        eng, tag = self.engine, self.tag
        tag.timer_pending = False
        actual = eng._signal_due(tag)
        if actual > due:
            tag.timer_pending = True
            eng.schedule(actual, self)
            return
        if eng.feed_is_lost():
            return  # re-armed for every tag when the feed comes back
        key = ("signal_lost", tag.offender.id, None)
        if key in eng._active:
            return
        start = tag.last_msg_t if tag.last_msg_t is not None else eng.origin
        ev = {"silence_s": tag.threshold, "last_rx": fmt_time(tag.last_rx) if tag.last_rx is not None else None}
        if tag.last_fix is not None:
            ev["last_fix"] = _fix_evidence(tag.last_fix)
        tag.signal_alert = eng.raise_alert("signal_lost", tag.offender, tag.device, None, start, due, False, ev)


class _SystemPart:
    """What stands in for a requirement in a ``system_fault``: ``component:kind``."""
    __slots__ = ("id", "zone")

    def __init__(self, id_: str):
        self.id, self.zone = id_, None


class _StageError(Exception):
    """A failure recorded while a message was processed (a listener or a timer)."""

    def __init__(self, where: str, error: BaseException):
        super().__init__(f"{where}: {_error_text(error)}")


def _error_text(e: BaseException) -> str:
    return str(e) if isinstance(e, _StageError) else f"{e.__class__.__name__}: {e}"


def _message_bytes(msg) -> bytes:
    """A decoded message's fields as JSON, for a quarantined message that has no raw bytes."""
    fields = getattr(msg, "__slots__", ())
    try:
        return json.dumps({"kind": getattr(msg, "kind", None), **{k: getattr(msg, k, None) for k in fields}},
                          default=repr).encode()
    except Exception:  # noqa: BLE001 - whatever it is, keep something
        return repr(msg).encode("utf-8", "replace")


def _fix_evidence(f: Fix, depth: float | None = None) -> dict:
    d = {"t": fmt_time(f.t), "rx": fmt_time(f.rx), "seq": f.seq, "lat": f.lat, "lon": f.lon, "acc": f.acc}
    if depth is not None:
        d["depth_m"] = round(depth, 1)
    return d


def _zone_points(g: dict) -> list[tuple[float, float]]:
    t = g.get("type")
    c = g.get("coordinates")
    if t == "Point":
        return [(c[0], c[1])]
    if t == "Polygon":
        return [(p[0], p[1]) for ring in c for p in ring]
    if t == "MultiPolygon":
        return [(p[0], p[1]) for poly in c for ring in poly for p in ring]
    return []
