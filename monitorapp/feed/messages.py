"""Decoded feed messages (spec §2): what the decoder gives the engine.

Times are epoch seconds (floats, UTC); see ``monitorapp.feed.timeutil``. ``rx`` is the processing
clock: the recorded arrival time from a replay file's message, or the arrival time live (a
live payload's own ``rx`` is the gateway's claim and is not read; see ``monitorapp.feed.decoder``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

EVENT_TYPES = frozenset({
    "strap_tamper", "strap_restored", "case_tamper", "battery_low", "battery_critical",
    "charging_started", "charging_stopped", "gps_jamming", "device_fault", "power_off",
})
FIX_SOURCES = frozenset({"gps", "wifi", "cell"})
# Sequence numbers at or above this are derived by an adapter from the message itself (spec §6;
# ``monitorapp.feed.adapters.derived_seq``): they identify a message, they do not count messages,
# so a jump between two of them is no gap.
DERIVED_SEQ_BASE = 2**52


@dataclass(slots=True)
class Fix:
    device: str
    seq: int
    t: float
    rx: float
    lat: float
    lon: float
    acc: float
    src: str
    spd: float | None = None
    hdg: float | None = None
    sats: int | None = None
    batt: float | None = None
    kind = "fix"
    valid = True            # see AdaptedFix
    acc_derived = None


@dataclass(slots=True)
class AdaptedFix(Fix):
    """A fix from an adapter (spec §6): ``valid`` False when the device does not trust it (kept,
    never evidence); ``acc_derived`` how ``acc`` was obtained when the source gave none
    (``"hdop"`` or ``"default"``), None when the device reported it."""
    valid: bool = True
    acc_derived: str | None = None


@dataclass(slots=True)
class Event:
    device: str
    seq: int
    t: float
    rx: float
    type: str
    detail: str | None = None
    kind = "event"


@dataclass(slots=True)
class Heartbeat:
    gateway: str
    t: float
    rx: float
    kind = "heartbeat"


@dataclass(slots=True)
class Rejection:
    """A message that is bad input: why, and the raw bytes kept for inspection."""
    reason: str          # a code, e.g. "bad_json", "missing_field", "unknown_device"
    text: str            # a sentence for a person
    raw: bytes
    rx: float
    topic: str | None = None
    device: str | None = None
    kind = "rejected"


Message = Fix | Event | Heartbeat


@dataclass(slots=True)
class FeedCounters:
    """What the feed has seen; the replay summary and the monitor's stats line print these."""
    messages: int = 0
    fixes: int = 0
    events: int = 0
    heartbeats: int = 0
    rejected: int = 0
    duplicates: int = 0
    alerts: int = 0
    seq_resets: int = 0     # counter restarts (spec §2): same seq, another t; processed, not dropped
    gaps: dict[str, int] = field(default_factory=dict)   # device -> messages missing by seq
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict:
        """The replay summary line's counts (spec §7: exactly these keys)."""
        return {"messages": self.messages, "fixes": self.fixes, "events": self.events,
                "heartbeats": self.heartbeats, "rejected": self.rejected,
                "duplicates": self.duplicates, "alerts": self.alerts}
