"""The live map: the Leaflet page in QtWebEngine (``page``), its one QWebChannel bridge
(``view``), the local URL scheme serving the offline assets (``scheme``) and the built-in
basemap (``basemap``). It may import the core's types and ``ui.theme``; nothing of the console,
the views or the session.
"""
