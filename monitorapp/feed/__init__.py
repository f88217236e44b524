"""The feed: what arrives from the gateways, decoded (spec §2, §6).

Bytes in, typed messages out: the v1 decoder and its compiled fast path, the message types,
RFC 3339 time parsing, the Traccar and OwnTracks adapters, and the MQTT feed client with its
configuration. It is the bottom of the flow: it imports nothing of ours but ``monitorapp.gcpause``.
"""
