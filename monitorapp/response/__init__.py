"""From alert to resolution (issue 21): response protocols, the alert's timeline and its context.

Qt-free. ``protocols`` reads and validates a centre's protocol file; ``timeline`` turns an
alert's acknowledgement-log entries into the checklist and the timeline a console and the
supervisor's review show; ``contacts`` gathers whom an operator calls; ``context`` computes what
the record's fixes say about an alert (last known position, time inside a zone, nearest
approach); ``recordcmd`` records a centre's protocol file in a store. It may import the engine's
alert, caseload and geometry modules and the feed's time helpers, and ``recordcmd`` opens a
store (``centraldb.open_store``); never the MQTT client, the service or the UI.
"""
