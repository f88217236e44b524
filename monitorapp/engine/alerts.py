"""Alerts (spec §4): types, priorities, deterministic ids and the replay line.

The engine owns the *condition* of an alert (``active`` → ``cleared``, possibly re-activated);
the *handling* (unacknowledged → acknowledged → closed, shelving) belongs to the operators and is
kept by the store's acknowledgement log.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from monitorapp.feed.timeutil import fmt_time

CRITICAL, HIGH, MEDIUM, LOW = "critical", "high", "medium", "low"
PRIORITY_RANK = {CRITICAL: 0, HIGH: 1, MEDIUM: 2, LOW: 3}

PRIORITY = {
    "strap_tamper": CRITICAL,
    "exclusion_entered": CRITICAL,
    "feed_lost": CRITICAL,
    "system_fault": CRITICAL,
    "curfew_absent": HIGH,
    "signal_lost": HIGH,
    "appointment_missed": MEDIUM,
    "battery_low": LOW,
}
ALERT_TYPES = tuple(PRIORITY)


class OpenAlerts:
    """The open alerts of each key (an offender, a zone) and the worst priority among them: what
    colours a caseload row, a marker or a zone."""

    def __init__(self):
        self._by_key: dict[str, dict[str, str]] = {}   # key -> {alert_id: priority}

    def set(self, key: str | None, alert_id: str, priority: str, open_: bool) -> None:
        if not key:
            return
        d = self._by_key.setdefault(key, {})
        if open_:
            d[alert_id] = priority
        else:
            d.pop(alert_id, None)

    def worst(self, key: str) -> str | None:
        d = self._by_key.get(key)
        return min(d.values(), key=PRIORITY_RANK.__getitem__) if d else None

    def worst_by_key(self) -> dict[str, str]:
        return {k: min(d.values(), key=PRIORITY_RANK.__getitem__) for k, d in self._by_key.items() if d}


def alert_id(type_: str, offender: str | None, requirement: str | None, start: float) -> str:
    """Deterministic id from (type, offender, requirement, start), start at 1 ms."""
    key = "|".join((type_, offender or "-", requirement or "-", fmt_time(start)))
    return "A-" + hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(slots=True)
class Alert:
    alert_id: str
    type: str
    priority: str
    offender: str | None
    device: str | None
    requirement: str | None
    zone: str | None
    start: float           # when the breach began, event time
    raised_at: float       # when the engine knew, processing time
    late: bool = False
    evidence: dict = field(default_factory=dict)
    state: str = "active"  # active | cleared
    cleared_at: float | None = None
    reactivations: int = 0
    zone_version: int | None = None

    def to_json(self) -> dict:
        """The replay output line of spec §4."""
        return {
            "alert_id": self.alert_id, "type": self.type, "priority": self.priority,
            "offender": self.offender, "device": self.device,
            "requirement": self.requirement, "zone": self.zone,
            "start": fmt_time(self.start), "raised_at": fmt_time(self.raised_at),
            "late": self.late, "evidence": self.evidence,
        }

    def to_record(self) -> dict:
        """Everything, for the store and the broker (``em/v1/alert/{id}``)."""
        d = self.to_json()
        d.update(state=self.state,
                 cleared_at=fmt_time(self.cleared_at) if self.cleared_at is not None else None,
                 reactivations=self.reactivations, zone_version=self.zone_version)
        return d
