"""The engine: the rules of spec §4 over decoded messages.

The caseload (offenders, zones, requirements and their schedules), the metric geometry of
zones, the per-requirement rules, alerts and the ``Engine`` with its checkpointed state. It
imports the feed's decoding modules (decoder, messages, timeutil) and nothing else of ours: never
the MQTT client, the store, the simulator, the service or the console.
"""
