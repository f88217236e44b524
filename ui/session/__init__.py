"""Who is signed in and what they see: sign-in, the idle lock and sign-out (``signin``),
and the wiring that installs each role's views into the console (``wiring``). It may import
everything in ``ui`` but the application shell (``ui.app``, ``ui.selfcheck``).
"""
