"""The running centre: the headless commands that wire feed, engine and store together.

``monitor`` (the live decider on an MQTT broker), ``replay`` (a replay file, headless) with its
store adapter, and the workstations' shared handling state on the broker. It is the top of the
Qt-free flow: it may import the feed, the engine, crime mapping, ``localdb`` and ``centraldb``
(stores are opened with ``centraldb.open_store``: a file or a ``postgresql://`` record); never
the simulator or the UI.
"""
