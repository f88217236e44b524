"""The operator console: the main window, the alert queue and its model, the caseload
list, the details panel, the handling dialogs, the status bar, training mode and the engine
worker that runs the core off the GUI thread. It may import the core, the map, and the shell's
base modules (``ui.theme``, ``ui.settings``, ``ui.roles``, ``ui.text``); never the role views or the
session.
"""
