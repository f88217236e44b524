"""Crime mapping (spec §5): who was near a place at a time, and the evidence of it.

Queries over the store (``query``), tracks with single-fix jumps marked (``trail``) and the
evidential exports (``evidence``: GeoJSON, CSV; the PDF by ``evidencepdf`` on the Qt-free
``pdfcanvas``, its maps by ``scenemap``; the digest in ``answer``), and places as typed
(``place``: lat/lon, grid references, streets). It reads the store (``localdb``, or the
PostgreSQL record through ``centraldb``: ``open_store`` and a window's ``crime_reader``) and the
feed's time helpers; it never imports the engine's live parts, the simulator, the service or the UI.
"""
