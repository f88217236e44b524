"""Puts the signed-in role's views into an existing main window: one call,
``install_role_views(window, store, engine_or_worker, map_view, session)``.

It adds a "Views" menu with the views the role may open (``ui.roles.views_for``): the
supervisors' acknowledgement review and KPI dashboard, the police analyst's crime mapping and
trail playback, the trainer's scenarios; plus "Lock screen", "Accounts…" (administrators) and
"Sign out…" (the handover). Each view opens in its own window, owned by the main window. The
crime-mapping and playback windows get a map page of their own (the console's map keeps its
zones and markers); ``map_view`` only lends its theme. It also applies the role to the console:
alert handling the role may not do is disabled and refused (a police analyst cannot
acknowledge), the alert queue is hidden from roles that do not see it, and the idle lock starts.
Returns the actions by name.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QVBoxLayout, QWidget

from localdb.accounts import Accounts
from ui.roles import RoleRefused, can, require, views_for

TITLES = {"review": "Acknowledgement &review", "kpi": "&KPI dashboard", "crime": "&Crime mapping",
          "playback": "Trail &playback", "trainer": "&Training scenarios"}
SHORTCUTS = {"review": "Ctrl+Shift+1", "kpi": "Ctrl+Shift+2", "crime": "Ctrl+Shift+3",
             "playback": "Ctrl+Shift+4", "trainer": "Ctrl+Shift+5"}
REFRESH_MS = 5000
GUARDED = {"acknowledge": "acknowledge", "close": "close", "shelve": "shelve", "unshelve": "shelve"}


class RoleViews(QObject):
    """What ``install_role_views`` builds; kept on the window as ``window.role_views``."""

    def __init__(self, window, store, engine_or_worker, map_view, session, idle_s: float | None,
                 accounts: Accounts | None = None):
        super().__init__(window)
        self.window, self.store, self.worker, self.session = window, store, engine_or_worker, session
        self.theme = getattr(map_view, "_theme", "light")
        self.accounts = accounts or Accounts(store)
        self.views: dict[str, QWidget] = {}
        self.actions: dict[str, QAction] = {}
        self._refresh = QTimer(self)
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(REFRESH_MS)
        self._refresh.timeout.connect(self.refresh_open_views)
        if hasattr(engine_or_worker, "alertBatch"):
            # a method of this QObject: queued to the GUI thread (a lambda would run in the worker's)
            engine_or_worker.alertBatch.connect(self._alerts_changed)
        self.idle_lock = None
        if idle_s:
            from ui.session.signin import IdleLock
            self.idle_lock = IdleLock(self.accounts, session, idle_s=idle_s, parent_widget=window)

    def _alerts_changed(self, *_) -> None:
        if not self._refresh.isActive():
            self._refresh.start()

    # ---- views ----------------------------------------------------------------------------------
    def _make_map(self):
        try:
            from ui.map.view import MapView
            return MapView(theme=self.theme)
        except Exception:      # noqa: BLE001 - no web engine: the view works without its map
            return None

    def build(self, name: str) -> QWidget:
        s, store = self.session, self.store
        settings = getattr(self.window, "settings", None)
        limits = settings.escalation_limits() if settings is not None else None
        if name == "review":
            from ui.views.review import ReviewPanel
            return ReviewPanel(store, s, limits=limits)
        if name == "kpi":
            from ui.views.kpi import KpiDashboard
            kw = {}
            if settings is not None:
                kw = {"flood_count": settings.get("alarm/flood_count"),
                      "flood_window_s": settings.get("alarm/flood_window_s")}
            return KpiDashboard(store, s, limits=limits, **kw)
        if name == "crime":
            from ui.views.crime import CrimePanel
            return CrimePanel(store, s, map_view=self._make_map())
        if name == "playback":
            from ui.views.playback import PlaybackPanel
            return PlaybackPanel(store, s, map_view=self._make_map())
        if name == "trainer":
            from ui.views.trainer import TrainerPanel
            live = settings.get("store/db_path") if settings is not None else None
            return TrainerPanel(s, live_store=live or str(store.path))
        raise KeyError(name)

    def open(self, name: str) -> QWidget:
        if name not in views_for(self.session.role):
            raise RoleRefused(f"the {self.session.role_text} role has no {name} view")
        view = self.views.get(name)
        if view is None:
            view = self.build(name)
            frame = QWidget(self.window, Qt.WindowType.Window)
            frame.setObjectName(f"{name}Window")
            frame.setWindowTitle(f"{view.windowTitle()} — {self.session.username} ({self.session.role_text})")
            lay = QVBoxLayout(frame)
            lay.setContentsMargins(4, 4, 4, 4)
            lay.addWidget(view)
            frame.resize(1500, 950)
            self.views[name] = view
            if self.idle_lock is not None:
                self.idle_lock.watch(frame)
        frame = view.parentWidget()
        frame.show()
        frame.raise_()
        frame.activateWindow()
        return view

    def refresh_open_views(self) -> None:
        for name in ("review", "kpi"):
            v = self.views.get(name)
            if v is not None and v.isVisible():
                v.refresh()

    # ---- sign-out and accounts -----------------------------------------------------------------
    def sign_out(self) -> bool:
        from ui.session.signin import SignOutDialog
        dlg = SignOutDialog(self.accounts, self.store, self.session, self.window)
        if dlg.exec():
            self.shutdown()
            self.window.close()
            return True
        return False

    def manage_accounts(self) -> None:
        from ui.session.signin import AccountsDialog
        AccountsDialog(self.accounts, self.session, self.window).exec()

    def shutdown(self) -> None:
        if self.idle_lock is not None:
            self.idle_lock.stop()
        for v in self.views.values():
            if hasattr(v, "shutdown"):
                v.shutdown()


def _guard_console(window, role: str) -> None:
    """Disable and refuse the alert handling this role may not do."""
    from ui.console.alertqueue import HandlingRefused
    ctl = getattr(window, "ctl", None)
    if ctl is not None:
        for method, action in GUARDED.items():
            if not can(role, action) and hasattr(ctl, method):
                def refused(*_a, _action=action, **_k):
                    try:
                        require(role, _action)
                    except RoleRefused as e:
                        raise HandlingRefused(str(e)) from None
                setattr(ctl, method, refused)
    for attr, action in (("act_ack", "acknowledge"), ("act_close", "close"), ("act_shelve", "shelve")):
        a = getattr(window, attr, None)
        if a is not None and not can(role, action):
            a.setEnabled(False)
    queue = getattr(window, "queue", None)
    for attr, action in (("ack_btn", "acknowledge"), ("close_btn", "close"), ("shelve_btn", "shelve")):
        b = getattr(queue, attr, None)
        if b is not None and not can(role, action):
            b.setVisible(False)
    dock = getattr(window, "queue_dock", None)
    if dock is not None and not can(role, "view_queue"):
        dock.hide()
        dock.toggleViewAction().setEnabled(False)


def install_role_views(window, store, engine_or_worker, map_view, session, *,
                       idle_s: float | None = None, accounts: Accounts | None = None) -> dict[str, QAction]:
    """Add the "Views" menu for ``session``'s role to ``window``; see the module docstring.
    ``idle_s``: seconds without input before the screen locks (default ``ui.session.signin.IDLE_LOCK_S``;
    0 turns the idle lock off). ``accounts``: where the session signed in (default: ``store``'s),
    used by the lock screen, sign-out and account management."""
    from ui.session.signin import IDLE_LOCK_S
    rv = RoleViews(window, store, engine_or_worker, map_view, session,
                   IDLE_LOCK_S if idle_s is None else idle_s, accounts)
    window.role_views = rv
    menu = window.menuBar().addMenu("&Views")
    for name in views_for(session.role):
        act = QAction(TITLES[name], window)
        act.setShortcut(QKeySequence(SHORTCUTS[name]))
        act.triggered.connect(lambda _=False, n=name: rv.open(n))
        menu.addAction(act)
        window.addAction(act)
        rv.actions[name] = act
    menu.addSeparator()
    if can(session.role, "manage_accounts"):
        act = QAction("&Accounts…", window)
        act.triggered.connect(rv.manage_accounts)
        menu.addAction(act)
        rv.actions["accounts"] = act
    if rv.idle_lock is not None:
        act = QAction("&Lock screen", window)
        act.setShortcut(QKeySequence("Ctrl+L"))
        act.triggered.connect(rv.idle_lock.lock_now)
        menu.addAction(act)
        window.addAction(act)
        rv.actions["lock"] = act
    act = QAction(f"Sign &out {session.username}…", window)
    act.triggered.connect(rv.sign_out)
    menu.addAction(act)
    rv.actions["sign_out"] = act
    _guard_console(window, session.role)
    if rv.idle_lock is not None:
        rv.idle_lock.watch(window)
    return rv.actions
