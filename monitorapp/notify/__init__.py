"""Notifications of breaches to responsible officers and the police (spec v2 §9, issue 20).

* ``policy``: whom to notify of which alert type and step, and how soon (``DEFAULT_POLICY``,
  a centre's file laid over it), the contacts and the working day;
* ``plan``: the notifications of an alert's step, with deterministic ids;
* ``message``: the e-mail (plain text and HTML, escaped; headers data cannot break);
* ``relay``: the SMTP relay's settings and a two-phase send (STARTTLS, AUTH);
* ``service``: the decider's ``Notifier``: engine listener, sender thread, retries, the
  ``system_fault`` of a relay that stays down.

The outbox itself lives in the record: ``localdb.outbox`` (SQLite) and ``centraldb.outbox``
(PostgreSQL).

May import: ``monitorapp.engine.alerts`` (the alert types), ``monitorapp.feed.timeutil``,
``monitorapp.places`` (the street of a position), the outboxes of ``localdb`` and ``centraldb``
and the standard library's ``smtplib``/``email``; never the engine's state, the MQTT client,
the simulator or ``ui`` (Qt-free, like the rest of ``monitorapp``).
"""
