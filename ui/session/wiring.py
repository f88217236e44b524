"""Puts the signed-in person's views into an existing main window, and changes them when
someone else takes over: ``install_role_views(window, store, engine_or_worker, map_view, session)``.

It adds a "Views" menu with the views the role may open (``ui.roles.views_for``): the
supervisors' acknowledgement review and KPI dashboard, the police analyst's crime mapping and
trail playback, the trainer's scenarios; plus "Compliance report…" (supervisors and
administrators: ``ui.views.compliance``), "Lock screen" (Ctrl+L), "Accounts…"
(administrators) and "Sign out…". Each view opens in its own window, owned by the main window.
The crime-mapping and playback windows get a map page of their own (the console's map keeps its
zones and markers); ``map_view`` only lends its theme. It also applies the role to the console:
alert handling the role may not do is disabled and refused (a police analyst cannot
acknowledge), the alert queue is hidden from roles that do not see it, the live map, caseload
and details are hidden from a police analyst unless ``privacy/analyst_live_map`` grants them
(``ui.roles.sees_live_map``), and the idle lock starts.

Shift continuity: the console never stops monitoring for a change of person. *Sign out* records
the sign-out (with the handover, for the roles that take over the queue) and leaves the console
locked, monitoring, with no one signed in; the next person signs in over it. Someone may also
sign in over a console locked by another (switch user): the previous person's sign-out is
recorded with an automatic handover (what was open and shelved), and the new person, if they
take over the queue, reads it. Each change of person changes the Views menu, the role's guards,
the name written to the acknowledgement log and the dock layout (``MainWindow.use_account_layout``).

A police analyst plays back only the people a crime-mapping query of this session placed at or
near the scene (verdict present or possible): *Play back the selected person* in the
crime-mapping window opens the playback over the query's window.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from localdb.accounts import Accounts
from ui.roles import POLICE, RoleRefused, can, require, sees_live_map, views_for
from ui.text import plain_label

TITLES = {"review": "Acknowledgement &review", "kpi": "&KPI dashboard", "crime": "&Crime mapping",
          "playback": "Trail &playback", "trainer": "&Training scenarios"}
SHORTCUTS = {"review": "Ctrl+Shift+1", "kpi": "Ctrl+Shift+2", "crime": "Ctrl+Shift+3",
             "playback": "Ctrl+Shift+4", "trainer": "Ctrl+Shift+5"}
REFRESH_MS = 5000
GUARDED = {"acknowledge": "acknowledge", "close": "close", "shelve": "shelve", "unshelve": "shelve"}
# menus whose every action is alert handling or zone editing (by title, as built by MainWindow)
MENU_NEEDS = {"&Alert": "view_queue", "&Zones": "edit_zones"}
PLAYBACK_VERDICTS = ("present", "possible")
PLAYBACK_MARGIN_S = 3600.0      # the playback opened from a query: its window, an hour either side


class RoleViews(QObject):
    """What ``install_role_views`` builds; kept on the window as ``window.role_views``. One per
    window; ``begin(session)`` and ``end()`` change the person."""

    def __init__(self, window, store, engine_or_worker, map_view, idle_s: float | None,
                 accounts: Accounts | None = None, training: bool | None = None):
        super().__init__(window)
        self.window, self.store, self.worker = window, store, engine_or_worker
        self.map_view = map_view
        self.theme = getattr(map_view, "_theme", "light")
        self.accounts = accounts or Accounts(store)
        self.idle_s = idle_s
        self.training = training if training is not None else getattr(window, "training", None)
        self.session = None
        self.views: dict[str, QWidget] = {}
        self.compliance = None             # the compliance report dialog (supervisors, administrators)
        self.actions: dict[str, QAction] = {}
        self.menu = None
        self.idle_lock = None
        self.cover = None                  # the signed-out lock screen
        self.returned: dict[str, dict] = {}   # police analyst: offender -> the query that returned them
        self._disabled: list[QAction] = []
        self._hidden_buttons: list[QWidget] = []
        self._patched: list[str] = []
        self._home = None
        self._refresh = QTimer(self)
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(REFRESH_MS)
        self._refresh.timeout.connect(self.refresh_open_views)
        if hasattr(engine_or_worker, "alertBatch"):
            # a method of this QObject: queued to the GUI thread (a lambda would run in the worker's)
            engine_or_worker.alertBatch.connect(self._alerts_changed)

    def _alerts_changed(self, *_) -> None:
        if not self._refresh.isActive():
            self._refresh.start()

    @property
    def is_locked(self) -> bool:
        """The console is locked or signed out (it refuses to quit meanwhile)."""
        return self.cover is not None or (self.idle_lock is not None and self.idle_lock.is_locked)

    # ---- a person begins and ends ----------------------------------------------------------------
    def begin(self, session) -> None:
        self.session = session
        w = self.window
        self._set_operator(session.username)
        if hasattr(w, "use_account_layout"):
            w.use_account_layout(session.username)
        self._build_menu()
        self._guard_console()
        if self.idle_s is not None:     # 0: no idle timer, but Ctrl+L still locks
            from ui.session.signin import IdleLock
            self.idle_lock = IdleLock(self.accounts, session, idle_s=self.idle_s, parent_widget=w,
                                      training=self.training)
            self.idle_lock.switched.connect(self._taken_over)
            self.idle_lock.watch(w)
            for v in self.views.values():
                self.idle_lock.watch(v.parentWidget())

    def end(self) -> None:
        """The person's views, menu, guards and idle lock go; the console itself keeps running."""
        if self.idle_lock is not None:
            self.idle_lock.stop()
            self.idle_lock.deleteLater()
            self.idle_lock = None
        for v in self.views.values():
            if hasattr(v, "shutdown"):
                v.shutdown()
            frame = v.parentWidget()
            frame.close()
            frame.deleteLater()
        self.views.clear()
        if self.compliance is not None:
            self.compliance.shutdown()
            self.compliance.close()
            self.compliance.deleteLater()
            self.compliance = None
        self.returned.clear()
        for act in self.actions.values():
            self.window.removeAction(act)
            act.deleteLater()
        self.actions.clear()
        if self.menu is not None:
            self.window.menuBar().removeAction(self.menu.menuAction())
            self.menu.deleteLater()
            self.menu = None
        self._unguard_console()
        self.session = None

    def _set_operator(self, name: str) -> None:
        """The name the acknowledgement log, the events and the status bar carry."""
        w = self.window
        w.operator = name
        ctl = getattr(w, "ctl", None)
        if ctl is not None:
            ctl.operator = name
        status = getattr(w, "status", None)
        if hasattr(status, "set_operator"):
            status.set_operator(name)
        elif hasattr(getattr(status, "operator", None), "setText"):
            status.operator.setText(f"Operator: {name}")

    def _build_menu(self) -> None:
        w, session = self.window, self.session
        self.menu = menu = w.menuBar().addMenu("Vie&ws")      # Alt+W: Alt+V is the View menu
        for name in views_for(session.role):
            act = QAction(TITLES[name], w)
            act.setShortcut(QKeySequence(SHORTCUTS[name]))
            act.triggered.connect(lambda _=False, n=name: self.open(n))
            menu.addAction(act)
            w.addAction(act)
            self.actions[name] = act
        if can(session.role, "compliance_report"):
            act = QAction("Co&mpliance report…", w)
            act.triggered.connect(lambda _=False: self.open_compliance())
            menu.addAction(act)
            self.actions["compliance"] = act
        menu.addSeparator()
        if can(session.role, "manage_accounts"):
            act = QAction("&Accounts…", w)
            act.triggered.connect(self.manage_accounts)
            menu.addAction(act)
            self.actions["accounts"] = act
        if self.idle_s is not None:
            act = QAction("&Lock screen", w)
            act.setShortcut(QKeySequence("Ctrl+L"))
            act.triggered.connect(lambda _=False: self.lock_now())
            menu.addAction(act)
            w.addAction(act)
            self.actions["lock"] = act
        act = QAction(f"Sign &out {session.username}…", w)
        act.triggered.connect(self.sign_out)
        menu.addAction(act)
        self.actions["sign_out"] = act

    def lock_now(self) -> None:
        if self.idle_lock is not None:
            self.idle_lock.lock_now("manual")

    # ---- the role applied to the console ---------------------------------------------------------
    def _guard_console(self) -> None:
        """Disable and refuse the alert handling this role may not do; hide what it may not see."""
        from ui.console.alertqueue import HandlingRefused
        w, role = self.window, self.session.role
        ctl = getattr(w, "ctl", None)
        if ctl is not None:
            for method, action in GUARDED.items():
                if not can(role, action) and hasattr(ctl, method):
                    def refused(*_a, _action=action, **_k):
                        try:
                            require(role, _action)
                        except RoleRefused as e:
                            raise HandlingRefused(str(e)) from None
                    setattr(ctl, method, refused)
                    self._patched.append(method)
        for attr, action in (("act_ack", "acknowledge"), ("act_close", "close"), ("act_shelve", "shelve")):
            self._disable(getattr(w, attr, None), action)
        for title, action in MENU_NEEDS.items():
            for menu_action in w.menuBar().actions():
                if menu_action.text() == title and menu_action.menu() is not None:
                    for a in menu_action.menu().actions():
                        self._disable(a, action)
        queue = getattr(w, "queue", None)
        for attr, action in (("ack_btn", "acknowledge"), ("close_btn", "close"), ("shelve_btn", "shelve")):
            b = getattr(queue, attr, None)
            if b is not None and not can(role, action) and b.isVisible():
                b.setVisible(False)
                self._hidden_buttons.append(b)
        if hasattr(self.map_view, "set_zone_tools"):      # no drawing tools for who may not edit
            self.map_view.set_zone_tools(can(role, "edit_zones"))
        live_map = sees_live_map(role, self._analyst_live_map())
        shown = {"queue_dock": can(role, "view_queue"), "caseload_dock": live_map,
                 "details_dock": live_map}
        for attr, allowed in shown.items():
            dock = getattr(w, attr, None)
            if dock is None:
                continue
            if allowed:
                dock.toggleViewAction().setEnabled(True)
                if attr == "queue_dock":
                    dock.show()     # the queue is on screen at every sign-in, whatever the layout
            else:
                dock.hide()
                dock.toggleViewAction().setEnabled(False)
        if any(not ok for ok in shown.values()):
            hidden = {getattr(w, a) for a, ok in shown.items() if not ok and getattr(w, a, None) is not None}

            def focus_dock(dock, widget, _orig=type(w).focus_dock.__get__(w), _hidden=hidden):
                if dock in _hidden:
                    w.statusBar().showMessage(f"The {dock.windowTitle().lower()} is not shown to a "
                                              f"{self.session.role_text}", 4000)
                    return
                _orig(dock, widget)
            if hasattr(type(w), "focus_dock"):
                w.focus_dock = focus_dock
                self._patched_window = True
        self._show_live_map(live_map)

    def _disable(self, action, needs: str) -> None:
        if action is not None and not can(self.session.role, needs) and action.isEnabled():
            action.setEnabled(False)
            self._disabled.append(action)

    def _unguard_console(self) -> None:
        w = self.window
        ctl = getattr(w, "ctl", None)
        for method in self._patched:
            ctl.__dict__.pop(method, None)
        self._patched.clear()
        for a in self._disabled:
            a.setEnabled(True)
        self._disabled.clear()
        for b in self._hidden_buttons:
            b.setVisible(True)
        self._hidden_buttons.clear()
        w.__dict__.pop("focus_dock", None)

    def _analyst_live_map(self) -> bool:
        settings = getattr(self.window, "settings", None)
        try:
            return bool(settings.get("privacy/analyst_live_map")) if settings is not None else False
        except Exception:          # noqa: BLE001 - a settings object without the key: not granted
            return False

    def _show_live_map(self, visible: bool) -> None:
        """The live map in the centre, or (a police analyst without the grant) a page that
        leads to the analyst's views and says why there is no map."""
        w = self.window
        live = getattr(w, "map", None)
        if live is not None:
            live.setVisible(visible)
        watermark = getattr(w, "watermark", None)
        if watermark is not None and getattr(w, "training", False):
            watermark.setVisible(visible)
        if visible:
            if self._home is not None:
                self._home.hide()
            return
        if self._home is None:
            self._home = self._analyst_home()
            lay = w.centralWidget().layout() if w.centralWidget() is not None else None
            if lay is not None:
                lay.addWidget(self._home, 1)
        self._home.show()

    def _analyst_home(self) -> QWidget:
        from ui.session.signin import Button
        home = QWidget()
        home.setObjectName("analystHome")
        lay = QVBoxLayout(home)
        lay.addStretch(1)
        title = plain_label("Police analyst")
        title.setStyleSheet("font-size: 22pt; font-weight: bold;")
        lay.addWidget(title, 0, Qt.AlignmentFlag.AlignHCenter)
        row = QHBoxLayout()
        row.addStretch(1)
        self.home_buttons = {}
        for name, text in (("crime", "Crime mapping  (Ctrl+Shift+3)"),
                           ("playback", "Trail playback  (Ctrl+Shift+4)")):
            b = Button(text)            # Return on the focused button opens it, as Space does
            b.setObjectName(f"home_{name}")
            b.setMinimumHeight(48)
            b.clicked.connect(lambda _=False, n=name: self.open(n))
            row.addWidget(b)
            self.home_buttons[name] = b
        row.addStretch(1)
        lay.addLayout(row)
        note = plain_label("The live map, the caseload and the details of every tag are not shown to "
                           "police analysts at this centre (data minimisation; the centre may grant it "
                           "with the setting privacy/analyst_live_map). Crime mapping asks for a reference "
                           "and a reason, recorded in the audit log; playback shows the people a query "
                           "placed at or near the scene.")
        note.setWordWrap(True)
        note.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        note.setContentsMargins(120, 12, 120, 0)
        lay.addWidget(note)
        lay.addStretch(2)
        return home

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
            panel = PlaybackPanel(store, s, map_view=self._make_map())
            if s.role == POLICE:
                self._restrict_playback(panel)
            return panel
        if name == "trainer":
            from ui.views.trainer import TrainerPanel
            live = settings.get("store/db_path") if settings is not None else None
            # trainees sign in with their own accounts, where the trainer signed in
            from ui.session.signin import SignInDialog
            return TrainerPanel(s, live_store=live or str(store.path), accounts=self.accounts,
                                settings=settings, sign_in_dialog=SignInDialog)
        raise KeyError(name)

    def open(self, name: str) -> QWidget:
        if self.session is None or name not in views_for(self.session.role):
            role = self.session.role_text if self.session is not None else "signed-out"
            raise RoleRefused(f"the {role} role has no {name} view")
        view = self.views.get(name)
        if view is None:
            view = self.build(name)
            frame = QWidget(self.window, Qt.WindowType.Window)
            frame.setObjectName(f"{name}Window")
            frame.setWindowTitle(f"{view.windowTitle()} — {self.session.username} ({self.session.role_text})")
            lay = QVBoxLayout(frame)
            lay.setContentsMargins(4, 4, 4, 4)
            lay.addWidget(view)
            if name == "crime" and can(self.session.role, "playback"):
                lay.addLayout(self._playback_row(view))
            # 1500×950 where it fits; on a smaller screen (1366×768) maximised, never past its edges
            avail = (self.window.screen() or QGuiApplication.primaryScreen()).availableGeometry()
            frame.resize(min(1500, avail.width()), min(950, avail.height()))
            if avail.width() < 1540 or avail.height() < 1000:
                frame.setWindowState(frame.windowState() | Qt.WindowState.WindowMaximized)
            self.views[name] = view
            if self.idle_lock is not None:
                self.idle_lock.watch(frame)
        frame = view.parentWidget()
        frame.show()
        frame.raise_()
        frame.activateWindow()
        return view

    def open_compliance(self):
        """The compliance report dialog (ui.views.compliance), a small window of its own."""
        from ui.views.compliance import ComplianceDialog
        if self.compliance is None:
            self.compliance = ComplianceDialog(self.store, self.session, parent=self.window,
                                               caseload=getattr(self.window, "caseload", None))
            if self.idle_lock is not None:
                self.idle_lock.watch(self.compliance)
        self.compliance.show()
        self.compliance.raise_()
        self.compliance.activateWindow()
        return self.compliance

    # ---- playback of the people a query returned ------------------------------------------------
    def _playback_row(self, crime) -> QHBoxLayout:
        row = QHBoxLayout()
        self.play_selected = QPushButton("Play back the selected person…")
        self.play_selected.setObjectName("playSelected")
        self.play_selected.setEnabled(False)
        hint = plain_label("Select a person the query placed at or near the scene (present or possible).")
        row.addWidget(self.play_selected)
        row.addWidget(hint, 1)

        def selected():
            rows = crime.table.selectionModel().selectedRows() if crime.table.selectionModel() else []
            if not rows or crime.answer is None:
                return None
            r = crime.model.result(rows[0].row())
            return r if r.get("verdict") in PLAYBACK_VERDICTS and r.get("offender") else None

        def update(*_):
            self.play_selected.setEnabled(selected() is not None)

        def play():
            r = selected()
            if r is not None:
                self.play_back(r["offender"], crime.answer)
        crime.table.selectionModel().selectionChanged.connect(update)
        crime.answered.connect(self._query_answered)
        crime.answered.connect(update)
        crime.table.doubleClicked.connect(lambda *_: play())
        self.play_selected.clicked.connect(play)
        return row

    def _query_answered(self, answer: dict) -> None:
        from monitorapp.feed.timeutil import parse_time
        q = answer["query"]
        for r in answer["results"]:
            if r.get("verdict") in PLAYBACK_VERDICTS and r.get("offender"):
                self.returned[r["offender"]] = {"ref": q.get("ref"), "reason": q.get("reason"),
                                                "from": parse_time(q["from"]),
                                                "to": parse_time(q["to"])}
        panel = self.views.get("playback")
        if panel is not None and self.session is not None and self.session.role == POLICE:
            self._restrict_playback(panel)

    def play_back(self, offender: str, answer: dict | None = None) -> QWidget:
        """Open the playback on ``offender`` over the query's window (an hour either side)."""
        from monitorapp.feed.timeutil import parse_time
        if answer is not None:
            self._query_answered(answer)
        panel = self.open("playback")
        if self.session.role == POLICE:
            self._restrict_playback(panel)
        span = self.returned.get(offender)
        if answer is not None:
            t0, t1 = parse_time(answer["query"]["from"]), parse_time(answer["query"]["to"])
        elif span is not None:
            t0, t1 = span["from"], span["to"]
        else:
            t0 = t1 = None
        if t0 is not None:
            panel.load(offender, t0 - PLAYBACK_MARGIN_S, t1 + PLAYBACK_MARGIN_S)
        else:
            panel.load(offender)
        return panel

    def _restrict_playback(self, panel) -> None:
        """A police analyst's playback lists only the people a query of this session returned."""
        combo = panel.who
        if not hasattr(panel, "_all_subjects"):
            panel._all_subjects = [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())]
            original = panel.load

            def load(who=None, t_from=None, t_to=None):
                who = who or combo.currentData()
                if who not in self.returned:
                    panel.position.setText("A police analyst plays back only the people a crime-mapping "
                                           "query placed at or near the scene: run the query first.")
                    return 0
                if not panel.ref.text().strip():      # the query's own ref and reason
                    panel.ref.setText(self.returned[who].get("ref") or "")
                    panel.reason.setText(self.returned[who].get("reason") or "")
                return original(who, t_from, t_to)
            panel.load = load
        keep = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        for text, oid in panel._all_subjects:
            if oid in self.returned:
                combo.addItem(f"{text} — ref {self.returned[oid]['ref']}", oid)
        if (k := combo.findData(keep)) >= 0:
            combo.setCurrentIndex(k)
        combo.blockSignals(False)
        panel.load_button.setEnabled(combo.count() > 0)
        if combo.count() == 0:
            panel.position.setText("Run a crime-mapping query first: a police analyst plays back only "
                                   "the people a query placed at or near the scene.")

    def refresh_open_views(self) -> None:
        for name in ("review", "kpi"):
            v = self.views.get(name)
            if v is not None and v.isVisible():
                v.refresh()

    # ---- sign-out, taking over, accounts ---------------------------------------------------------
    def sign_out(self) -> bool:
        """Sign out (the handover, for the roles that take over the queue); the console stays
        on, locked and monitoring, until the next person signs in over it."""
        from ui.session.signin import SignOutDialog
        dlg = SignOutDialog(self.accounts, self.store, self.session, self.window)
        if not dlg.exec():
            return False
        self.end()
        self._set_operator("")
        self.show_signed_out()
        return True

    def show_signed_out(self) -> None:
        from ui.session.signin import LockScreen
        self.cover = LockScreen(self.accounts, None, self.window, reason="signed_out",
                                training=self.training)
        self.cover.switched.connect(self._signed_in_over_cover)
        self.cover.cover()

    def _signed_in_over_cover(self, session) -> None:
        self.cover.deleteLater()
        self.cover = None
        self.begin(session)
        self._show_handover(session)

    def _taken_over(self, session) -> None:
        """Someone signed in over the lock of the signed-in person: that person's sign-out is
        recorded with an automatic handover (what is open and shelved now, no notes)."""
        from ui.session.signin import handover_summary, takes_handover
        old = self.session
        h = handover_summary(self.store) if takes_handover(old.role) else {}
        if h:
            h["automatic"] = True
        self.accounts.sign_out(old, h)
        self.end()
        self.begin(session)
        self._show_handover(session)

    def _show_handover(self, session) -> None:
        from ui.session.signin import HandoverDialog, takes_handover
        if not takes_handover(session.role):
            return
        last = self.accounts.last_handover()
        if last:
            self.handover_dialog = HandoverDialog(last, self.window)
            self.handover_dialog.open()

    def manage_accounts(self) -> None:
        from ui.session.signin import AccountsDialog
        AccountsDialog(self.accounts, self.session, self.window).exec()

    def shutdown(self) -> None:
        if self.idle_lock is not None:
            self.idle_lock.stop()
        for v in self.views.values():
            if hasattr(v, "shutdown"):
                v.shutdown()
        if self.compliance is not None:
            self.compliance.shutdown()


def install_role_views(window, store, engine_or_worker, map_view, session, *,
                       idle_s: float | None = None, accounts: Accounts | None = None,
                       training: bool | None = None) -> dict[str, QAction]:
    """Add the "Views" menu for ``session``'s role to ``window``; see the module docstring.
    ``idle_s``: seconds without input before the screen locks (default ``ui.session.signin.IDLE_LOCK_S``;
    0 turns the idle lock off). ``accounts``: where the session signed in (default: ``store``'s),
    used by the lock screen, sign-out and account management. ``training``: the console's mode
    (default: the window's), checked when someone signs in over the lock."""
    from ui.session.signin import IDLE_LOCK_S
    rv = RoleViews(window, store, engine_or_worker, map_view,
                   IDLE_LOCK_S if idle_s is None else idle_s, accounts, training)
    window.role_views = rv
    rv.begin(session)
    return rv.actions
