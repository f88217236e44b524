"""The role views beside the console: the supervisors' review and KPIs, the police
analysts' crime view and evidential report, playback, and the trainer's view. They may import
the core, ``localdb``, the map and the console's widgets; never the session or the application shell.
"""
