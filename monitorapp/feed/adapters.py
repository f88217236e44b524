"""Other feed formats (spec §6): the Traccar and OwnTracks adapters, in one place.

``traccar_to_v1`` (``monitorapp.feed.traccar``) and ``owntracks_to_v1``
(``monitorapp.feed.owntracks``) map what those gateways really send onto protocol v1 dicts;
what they share (derived sequence numbers, accuracy defaults, charging state, device ids from
any UTF-8 name, ``AdapterError``) is in ``monitorapp.feed.adaptbase``, whose docstring says
what an adapted dict carries beyond v1.
"""
from __future__ import annotations

from monitorapp.feed.adaptbase import (ADAPTED_EVENT_TYPES, DEVICE_ALARM, GATEWAY_EVENT, HDOP_UERE_M,
                                       AccuracyDefaults, AdapterError, AdapterState, SeqCounter,
                                       derived_seq, device_from_id, device_from_levels)
from monitorapp.feed.owntracks import owntracks_to_v1
from monitorapp.feed.traccar import traccar_to_v1

__all__ = ["ADAPTED_EVENT_TYPES", "DEVICE_ALARM", "GATEWAY_EVENT", "HDOP_UERE_M", "AccuracyDefaults",
           "AdapterError", "AdapterState", "SeqCounter", "derived_seq", "device_from_id",
           "device_from_levels", "owntracks_to_v1", "traccar_to_v1"]
