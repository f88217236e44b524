"""Signing in and out: the sign-in dialog (with the first-run administrator), the idle lock and
the shift handover.

``SignInDialog(accounts)`` asks for a user name and password and returns a
``localdb.accounts.Session``; on a store with no account yet it asks for the first
administrator instead. After a sign-in it shows the handover summary the previous person left.
A role that may not use the console's mode (a trainer in live mode) is refused in the dialog,
which stays open for the next person. The handover is shown only to the roles that take over
the queue (operators and supervisors: ``takes_handover``).
``IdleLock`` locks the screen after a period without keyboard or mouse input, or at once
(Ctrl+L), every time it is asked. ``LockScreen`` is an opaque, application-modal cover over the
whole screen that Escape, a close button and Alt+F4 do not dismiss: only the signed-in user's
password opens it, or someone else signs in over it (switch user); failures count towards the
account's lockout, and a lockout keeps the console locked and monitoring, it never signs
anyone out. After a sign-out the same cover (with no one signed in) waits for the next person.
``handover_summary(store, notes)`` collects the open and shelved alerts and the notes;
``SignOutDialog`` shows it, takes the notes and saves it at sign-out.

Return in the password field is one attempt: the dialogs' buttons are not default or
auto-default buttons (a default button would be clicked by the same Return key that emits
``returnPressed``, and every wrong password would count twice towards the lockout). Return in
the user-name field moves to the password field. Return or Enter on a focused button clicks it.

``sign_in_for_console`` opens the accounts' store with the mode of the console (a live store
for live mode, a training store for training: ``localdb.schema``), and ``builtin_trainer`` is the
passwordless trainer that exists only in a training store without accounts.
"""
from __future__ import annotations

import datetime as dt

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QCursor, QFontDatabase
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPlainTextEdit, QPushButton, QStackedWidget,
                               QVBoxLayout, QWidget)

from localdb.accounts import AccountError, Session, SignInError
from monitorapp.engine.alerts import PRIORITY_RANK
from monitorapp.feed.timeutil import fmt_time
from ui.console.alertmodel import TYPE_TEXT
from ui.text import plain_label, rich, rich_label
from ui.theme import PRIORITY_TEXT

IDLE_LOCK_S = 10 * 60


def handover_summary(store, notes: str = "") -> dict:
    """Open (not closed, not shelved) and shelved alerts now, and the notes, for the next person."""
    open_, shelved = [], []
    for a in store.alerts():
        if a["handling"] == "closed":
            continue
        item = {"alert_id": a["alert_id"], "type": a["type"], "priority": a["priority"],
                "offender": a["offender_id"], "handling": a["handling"], "state": a["state"]}
        if a["handling"] == "shelved":
            item.update(until=a["shelved_until"], reason=a["shelved_reason"])
            shelved.append(item)
        else:
            open_.append(item)
    # what needs doing first: by priority, unacknowledged before acknowledged
    open_.sort(key=lambda a: (PRIORITY_RANK.get(a["priority"], 9), a["handling"] != "unacknowledged"))
    return {"open": open_, "shelved": shelved, "notes": notes.strip()}


def handover_text(h: dict | None, limit: int = 12) -> str:
    if not h:
        return "No handover has been left yet."
    lines = [f"Handover from {h.get('by', '?')} at {fmt_time(h['at']) if h.get('at') else '?'}",
             f"{len(h.get('open', []))} open alerts, {len(h.get('shelved', []))} shelved."]
    if h.get("notes"):
        lines += ["", "Notes:", h["notes"]]
    for title, key in (("Open", "open"), ("Shelved", "shelved")):
        items = h.get(key) or []
        if items:
            lines += ["", f"{title}:"]
            for a in items[:limit]:
                extra = f" — until {fmt_time(a['until'])}: {a.get('reason')}" if a.get("until") else ""
                lines.append(f"  {PRIORITY_TEXT.get(a['priority'], a['priority'])}  "
                             f"{TYPE_TEXT.get(a['type'], a['type'])}  {a.get('offender') or ''}  "
                             f"({a['handling']}){extra}")
            if len(items) > limit:
                lines.append(f"  … and {len(items) - limit} more")
    return "\n".join(lines)


def _no_default_buttons(dialog: QDialog) -> None:
    """Return must not click a button as well as trigger the field's ``returnPressed``."""
    for button in dialog.findChildren(QPushButton):
        button.setAutoDefault(False)
        button.setDefault(False)


class Button(QPushButton):
    """A push button that Return or Enter clicks when it has the focus (the dialogs' buttons are
    not auto-default, so Qt would ignore the key). Only a key pressed on the button itself: the
    Return that a text field turned into an attempt never reaches a button as well."""

    def keyPressEvent(self, event):  # noqa: N802 (Qt API)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.isEnabled():
            event.accept()
            self.click()
            return
        super().keyPressEvent(event)


def _mode_refusal(role: str, training: bool | None) -> str | None:
    """Why ``role`` may not use this console's mode, or None (``training`` None: not checked)."""
    if training is None:
        return None
    from ui.roles import RoleRefused, check_mode
    try:
        check_mode(role, training)
    except RoleRefused as e:
        return f"{e}. This console is in {'training' if training else 'live'} mode."
    return None


def takes_handover(role: str | None) -> bool:
    """The roles that take over the queue (operators, supervisors) read and leave the handover."""
    from ui.roles import can
    return can(role, "handover")


class SignInDialog(QDialog):
    """Sign in (or, on a new store, create the first administrator); ``session`` after accept.

    ``training``: the console's mode (True training, False live); a role that may not use it is
    refused here, in the dialog, which stays open for the next person (None: not checked).
    The handover page is shown only to roles that take over the queue (``takes_handover``)."""

    signedIn = Signal(object)        # Session

    def __init__(self, accounts, parent=None, *, title: str = "Monitoring centre — sign in",
                 training: bool | None = None):
        super().__init__(parent)
        self.accounts = accounts
        self.training = training
        self.session: Session | None = None
        self.setWindowTitle(title)
        self.setObjectName("signInDialog")
        self.setMinimumWidth(520)
        self.pages = QStackedWidget()
        lay = QVBoxLayout(self)
        lay.addWidget(self.pages)
        self.error = plain_label()
        self.error.setObjectName("signInError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("font-weight: bold;")
        lay.addWidget(self.error)

        # page 0: sign in
        p0 = QWidget()
        f0 = QFormLayout(p0)
        f0.addRow(QLabel("<b>Sign in to start your shift</b>"))
        self.user, self.password = QLineEdit(), QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        f0.addRow("User name", self.user)
        f0.addRow("Password", self.password)
        self.sign_in_button = Button("Sign in")
        f0.addRow(self.sign_in_button)
        # page 1: first run
        p1 = QWidget()
        f1 = QFormLayout(p1)
        f1.addRow(QLabel("<b>First run: create the administrator account</b><br>"
                         "The administrator creates everyone else's accounts."))
        self.admin_user, self.admin_pw, self.admin_pw2 = QLineEdit(), QLineEdit(), QLineEdit()
        for w in (self.admin_pw, self.admin_pw2):
            w.setEchoMode(QLineEdit.EchoMode.Password)
        f1.addRow("User name", self.admin_user)
        f1.addRow("Password", self.admin_pw)
        f1.addRow("Password again", self.admin_pw2)
        self.create_button = Button("Create administrator and sign in")
        f1.addRow(self.create_button)
        # page 2: the handover left by the previous person
        p2 = QWidget()
        l2 = QVBoxLayout(p2)
        self.handover = QPlainTextEdit()
        self.handover.setReadOnly(True)
        self.handover.setObjectName("handoverText")
        self.continue_button = Button("I have read the handover — continue")
        l2.addWidget(QLabel("<b>Shift handover</b>"))
        l2.addWidget(self.handover)
        l2.addWidget(self.continue_button)
        for p in (p0, p1, p2):
            self.pages.addWidget(p)
        first = accounts.needs_first_admin()
        self.pages.setCurrentIndex(1 if first else 0)
        _no_default_buttons(self)
        # the first field has the focus, whichever page opens (typing starts at once)
        (self.admin_user if first else self.user).setFocus(Qt.FocusReason.OtherFocusReason)

        self.sign_in_button.clicked.connect(self.try_sign_in)
        self.user.returnPressed.connect(self.password.setFocus)
        self.password.returnPressed.connect(self.try_sign_in)
        self.create_button.clicked.connect(self.try_create_admin)
        self.admin_user.returnPressed.connect(self.admin_pw.setFocus)
        self.admin_pw.returnPressed.connect(self.admin_pw2.setFocus)
        self.admin_pw2.returnPressed.connect(self.try_create_admin)
        self.continue_button.clicked.connect(self.accept)

    @property
    def first_run(self) -> bool:
        return self.pages.currentIndex() == 1

    def try_sign_in(self) -> Session | None:
        try:
            session = self.accounts.sign_in(self.user.text(), self.password.text())
        except SignInError as e:
            self.password.clear()
            self.error.setText(str(e))
            self.password.setFocus()
            return None
        finally:
            self.password.clear()
        return self._signed_in(session)

    def try_create_admin(self) -> Session | None:
        if not self.admin_pw.text() and not self.admin_pw2.text():
            self.error.setText("Type the administrator's password twice.")
            self.admin_pw.setFocus()
            return None
        if self.admin_pw.text() != self.admin_pw2.text():
            self.error.setText("The two passwords differ.")
            self.admin_pw.clear()
            self.admin_pw2.clear()
            self.admin_pw.setFocus()
            return None
        try:
            session = self.accounts.create_first_admin(self.admin_user.text(), self.admin_pw.text())
        except AccountError as e:
            self.error.setText(str(e))
            return None
        finally:
            self.admin_pw.clear()
            self.admin_pw2.clear()
        return self._signed_in(session)

    def _signed_in(self, session: Session) -> Session | None:
        refusal = _mode_refusal(session.role, self.training)
        if refusal:          # said here, to this person; the dialog stays open for the next
            self.accounts.store.audit(session.username, "sign_in_refused",
                                      {"reason": "mode", "training": bool(self.training)})
            self.error.setText(refusal)
            self.user.clear()
            self.pages.setCurrentIndex(0)
            self.user.setFocus()
            return None
        self.session = session
        self.error.clear()
        self.signedIn.emit(session)
        last = self.accounts.last_handover() if takes_handover(session.role) else None
        if last:
            self.handover.setPlainText(handover_text(last))
            self.pages.setCurrentIndex(2)
            self.continue_button.setFocus()
        else:
            self.accept()
        return session


class HandoverDialog(QDialog):
    """The handover shown to someone who takes over the queue at a locked console."""

    def __init__(self, handover: dict, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Shift handover")
        self.setObjectName("handoverDialog")
        self.setMinimumSize(600, 420)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("<b>Shift handover</b>"))
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setObjectName("handoverText")
        self.text.setPlainText(handover_text(handover))
        lay.addWidget(self.text)
        self.continue_button = Button("I have read the handover — continue")
        lay.addWidget(self.continue_button)
        self.continue_button.clicked.connect(self.accept)
        self.continue_button.setFocus()


LOCK_TEXT = {"idle": "Locked after {m} minutes without input.",
             "manual": "Locked.",
             "signed_out": "Signed out."}


class LockScreen(QDialog):
    """The lock: an opaque, modal cover over the whole screen (and every other screen) that
    only a password removes.

    ``session``: who is signed in (only their password unlocks); None after a sign-out (the
    console is signed out and keeps monitoring; the next person signs in here). Anyone with an
    account may sign in over the locked console (*Someone else taking over*): ``switched``
    gives their session. It is not dismissed by Escape, by a close button or by the window
    manager (Alt+F4): ``reject`` and ``closeEvent`` are refused until someone signs in. A
    lockout of the signed-in account (too many wrong passwords) keeps the console locked and
    monitoring (``accountLocked``); it never signs anyone out."""

    unlocked = Signal()              # the signed-in person, again
    switched = Signal(object)        # someone else signed in over the lock: their Session
    accountLocked = Signal(str)      # the signed-in account locked itself: the reason

    def __init__(self, accounts, session: Session | None, parent=None, *, reason: str = "idle",
                 training: bool | None = None, idle_s: float = IDLE_LOCK_S):
        super().__init__(parent)
        self.accounts, self.session, self.training = accounts, session, training
        self._releasing = False
        self._covers: list[QWidget] = []
        self.setWindowTitle("Locked — monitoring console")
        self.setObjectName("lockScreen")
        self.setWindowFlags(Qt.WindowType.Window | Qt.WindowType.FramelessWindowHint
                            | Qt.WindowType.WindowStaysOnTopHint)
        self.setWindowModality(Qt.WindowModality.ApplicationModal)
        self.setModal(True)
        self.setStyleSheet(LOCK_STYLE)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        panel = QWidget()
        panel.setObjectName("lockPanel")
        panel.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        panel.setMaximumWidth(760)
        lay = QVBoxLayout(panel)
        lay.setSpacing(10)
        head = LOCK_TEXT.get(reason, "Locked.").format(m=max(1, round(idle_s / 60)))
        self.title = plain_label("SIGNED OUT" if session is None else "LOCKED")
        self.title.setObjectName("lockTitle")
        lay.addWidget(self.title)
        note = plain_label(f"{head} The console keeps monitoring behind this screen: alerts "
                           "still arrive and sound.")
        note.setWordWrap(True)
        lay.addWidget(note)
        self.error = plain_label()
        self.error.setObjectName("lockError")
        self.error.setWordWrap(True)
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("Password")
        self.unlock_button = Button("Unlock")
        if session is not None:
            self.who = plain_label(f"Signed in: {session.username} ({session.role_text}). "
                                   f"Only {session.username}'s password unlocks it.")
            self.who.setWordWrap(True)
            lay.addWidget(self.who)
            lay.addWidget(self.password)
            lay.addWidget(self.unlock_button)
            lay.addWidget(self.error)
            lay.addSpacing(18)
            lay.addWidget(plain_label("Someone else taking over this console:"))
        else:
            self.password.hide()
            self.unlock_button.hide()
            lay.addWidget(plain_label("Sign in to take over this console:"))
        form = QFormLayout()
        self.other_user, self.other_password = QLineEdit(), QLineEdit()
        self.other_user.setObjectName("lockOtherUser")
        self.other_password.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("User name", self.other_user)
        form.addRow("Password", self.other_password)
        lay.addLayout(form)
        self.switch_button = Button("Sign in" if session is None else "Sign in as this user")
        lay.addWidget(self.switch_button)
        self.switch_error = plain_label()
        self.switch_error.setObjectName("lockSwitchError")
        self.switch_error.setWordWrap(True)
        lay.addWidget(self.switch_error)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(panel, 4)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)
        _no_default_buttons(self)
        self.unlock_button.clicked.connect(self.try_unlock)
        self.password.returnPressed.connect(self.try_unlock)
        self.switch_button.clicked.connect(self.try_switch)
        self.other_user.returnPressed.connect(self.other_password.setFocus)
        self.other_password.returnPressed.connect(self.try_switch)

    # ---- showing: the whole of every screen ---------------------------------------------------
    def cover(self) -> None:
        """Show the lock full screen on the console's screen, and a plain cover on the others."""
        from PySide6.QtGui import QGuiApplication
        parent = self.parentWidget()
        screen = (parent.screen() if parent is not None else None) or QGuiApplication.primaryScreen()
        if screen is not None:
            self.setGeometry(screen.geometry())
        self.showFullScreen()
        for other in QGuiApplication.screens():
            if other is screen:
                continue
            w = QWidget(None, Qt.WindowType.Window | Qt.WindowType.FramelessWindowHint
                        | Qt.WindowType.WindowStaysOnTopHint)
            w.setObjectName("lockCover")
            w.setStyleSheet(LOCK_STYLE)
            w.setWindowModality(Qt.WindowModality.ApplicationModal)
            QVBoxLayout(w).addWidget(plain_label("LOCKED — sign in on the console's screen"))
            w.setGeometry(other.geometry())
            w.showFullScreen()
            self._covers.append(w)
        self.bring_to_front()
        (self.password if self.session is not None else self.other_user).setFocus()

    def bring_to_front(self) -> None:
        from PySide6.QtGui import QGuiApplication
        if QGuiApplication.platformName() not in ("offscreen", "minimal"):   # no window stacking there
            self.raise_()
        self.activateWindow()

    # ---- not dismissed but by a password ------------------------------------------------------
    def reject(self) -> None:            # Escape: a lock is not dismissed
        return

    def keyPressEvent(self, event):  # noqa: N802 (Qt API)
        if event.key() == Qt.Key.Key_Escape:
            event.accept()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event):  # noqa: N802 (Qt API) - the title bar's ×, Alt+F4
        if self._releasing:
            super().closeEvent(event)
        else:
            event.ignore()

    def _release(self) -> None:
        self._releasing = True
        for w in self._covers:
            w.close()
            w.deleteLater()
        self._covers = []
        self.accept()

    @property
    def released(self) -> bool:
        return self._releasing

    # ---- the passwords ------------------------------------------------------------------------
    def try_unlock(self) -> bool:
        if self.session is None:
            return False
        try:
            self.accounts.sign_in(self.session.username, self.password.text())
        except SignInError as e:
            if e.locked:
                self.error.setText(f"{e}. The console stays locked and keeps monitoring; another "
                                   "person can sign in below.")
                self.accountLocked.emit(str(e))
                self.other_user.setFocus()
            else:
                self.error.setText(str(e))
            return False
        finally:
            self.password.clear()
        self._release()
        self.unlocked.emit()
        return True

    def try_switch(self) -> Session | None:
        """Someone signs in over the lock (their own password; their failures count on their
        own account). The signed-in person signing in here simply unlocks."""
        try:
            session = self.accounts.sign_in(self.other_user.text(), self.other_password.text())
        except SignInError as e:
            self.switch_error.setText(str(e))
            self.other_password.setFocus()
            return None
        finally:
            self.other_password.clear()
        refusal = _mode_refusal(session.role, self.training)
        if refusal:
            self.accounts.store.audit(session.username, "sign_in_refused",
                                      {"reason": "mode", "training": bool(self.training)})
            self.switch_error.setText(refusal)
            return None
        self._release()
        if self.session is not None and session.username == self.session.username:
            self.unlocked.emit()
        else:
            self.switched.emit(session)
        return session


LOCK_STYLE = ("QDialog#lockScreen, QWidget#lockCover { background-color: #121212; }"
              " QWidget#lockPanel { background-color: #202020; border: 2px solid #5a5a5a; }"
              " QDialog#lockScreen QLabel, QWidget#lockCover QLabel { color: #e6e6e6; font-size: 14pt;"
              " background: transparent; border: none; }"
              " QDialog#lockScreen QLabel#lockTitle { font-size: 28pt; font-weight: bold; }"
              " QDialog#lockScreen QLabel#lockError, QDialog#lockScreen QLabel#lockSwitchError"
              " { font-weight: bold; color: #ffd27f; }"
              " QDialog#lockScreen QLineEdit { font-size: 14pt; padding: 4px; }"
              " QDialog#lockScreen QPushButton { font-size: 13pt; padding: 6px; }")


class IdleLock(QObject):
    """Locks the screen (``LockScreen``) after ``idle_s`` without input, or at once
    (``lock_now``, Ctrl+L), as often as it is asked in a session.

    Input is seen without an application-wide Python event filter (under PySide6 6.12 one
    crashed the console with the map page open): the mouse pointer is polled every
    ``poll_ms``, and ``touch()`` is called by whatever the user triggers (``watch`` connects
    every action of a window: menu items and their shortcuts, the queue's buttons).
    """

    locked = Signal()
    unlocked = Signal()
    switched = Signal(object)        # someone else signed in over the lock
    accountLocked = Signal(str)

    def __init__(self, accounts, session: Session, *, idle_s: float = IDLE_LOCK_S, parent_widget=None,
                 poll_ms: int = 1000, training: bool | None = None):
        super().__init__(parent_widget)
        self.accounts, self.session, self.parent_widget = accounts, session, parent_widget
        self.idle_s, self.training = idle_s, training
        self.screen: LockScreen | None = None
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(int(idle_s * 1000))
        self.timer.timeout.connect(lambda: self.lock_now("idle"))
        self._cursor = QCursor.pos()
        self.poll = QTimer(self)
        self.poll.setInterval(poll_ms)
        self.poll.timeout.connect(self._poll_pointer)
        if idle_s > 0:         # 0: no idle lock, only lock_now (Ctrl+L)
            self.timer.start()
        self.poll.start()

    def watch(self, widget) -> None:
        """Count every action of ``widget`` (and its children) as input."""
        from PySide6.QtGui import QAction
        for action in widget.findChildren(QAction):
            action.triggered.connect(self.touch)
        for button in widget.findChildren(QPushButton):
            button.pressed.connect(self.touch)

    def touch(self, *_) -> None:
        if self.screen is None and self.poll.isActive() and self.idle_s > 0:
            self.timer.start()

    def _poll_pointer(self) -> None:
        pos = QCursor.pos()
        if pos != self._cursor:
            self._cursor = pos
            self.touch()

    @property
    def is_locked(self) -> bool:
        return self.screen is not None

    def lock_now(self, reason: str = "manual") -> None:
        if not isinstance(reason, str):      # QAction.triggered's checked flag
            reason = "manual"
        if self.screen is not None:
            self.screen.bring_to_front()
            return
        self.timer.stop()
        self.accounts.record_lock(self.session, reason)
        self.screen = LockScreen(self.accounts, self.session, self.parent_widget, reason=reason,
                                 training=self.training, idle_s=self.idle_s)
        self.screen.unlocked.connect(self._unlocked)
        self.screen.switched.connect(self._switched)
        self.screen.accountLocked.connect(self.accountLocked)
        self.screen.cover()
        self.locked.emit()

    def _done(self) -> None:
        if self.screen is not None:
            self.screen.deleteLater()
        self.screen = None

    def _unlocked(self) -> None:
        self._done()
        if self.idle_s > 0:
            self.timer.start()
        self.unlocked.emit()

    def _switched(self, session: Session) -> None:
        self._done()
        self.switched.emit(session)

    def stop(self) -> None:
        self.timer.stop()
        self.poll.stop()


class SignOutDialog(QDialog):
    """Sign-out. For the roles that take over the queue: the handover summary to leave, with
    notes; for the others (police analysts, administrators, trainers) only a confirmation.
    ``sign_out()`` records it. The console keeps monitoring after a sign-out."""

    def __init__(self, accounts, store, session: Session, parent=None):
        super().__init__(parent)
        self.accounts, self.store, self.session = accounts, store, session
        self.takes_handover = takes_handover(session.role)
        self.setWindowTitle("Sign out — shift handover" if self.takes_handover else "Sign out")
        self.setObjectName("signOutDialog")
        lay = QVBoxLayout(self)
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.notes = QPlainTextEdit()
        self.notes.setPlaceholderText("Notes for the next person (what to watch, calls to return…)")
        if self.takes_handover:
            self.setMinimumSize(640, 480)
            lay.addWidget(rich_label(rich("<b>{user}</b>, signing out at {at}. This is what you hand over:",
                                          user=session.username, at=dt.datetime.now().strftime("%H:%M"))))
            lay.addWidget(self.summary, 2)
            lay.addWidget(self.notes, 1)
        else:
            self.summary.hide()
            self.notes.hide()
            lay.addWidget(rich_label(rich("<b>{user}</b>, sign out at {at}?",
                                          user=session.username, at=dt.datetime.now().strftime("%H:%M"))))
        lay.addWidget(plain_label("The console stays on and keeps monitoring; the next person "
                                  "signs in over the locked screen."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText(
            "Save handover and sign out" if self.takes_handover else "Sign out")
        buttons.accepted.connect(self.sign_out)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.refresh()

    def refresh(self) -> None:
        if not self.takes_handover:
            return
        h = handover_summary(self.store)
        h.update(by=self.session.username, at=self.store.clock())
        self.summary.setPlainText(handover_text(h))

    def sign_out(self) -> dict:
        h = handover_summary(self.store, self.notes.toPlainText()) if self.takes_handover else {}
        rec = self.accounts.sign_out(self.session, h)
        self.accept()
        return rec



class AccountsDialog(QDialog):
    """Administrators: the accounts, a new account (user, role, first password), unlock."""

    def __init__(self, accounts, admin: Session, parent=None):
        super().__init__(parent)
        from localdb.accounts import ROLE_TEXT, ROLES
        from ui.roles import require
        require(admin.role, "manage_accounts")
        self.accounts, self.admin = accounts, admin
        self.setWindowTitle("Accounts")
        self.setObjectName("accountsDialog")
        self.setMinimumSize(620, 420)
        lay = QVBoxLayout(self)
        self.listing = QPlainTextEdit()
        self.listing.setReadOnly(True)
        self.listing.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))   # columns line up
        self.listing.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        lay.addWidget(self.listing, 1)
        form = QFormLayout()
        self.user, self.password = QLineEdit(), QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.role = QComboBox()
        for r in ROLES:
            self.role.addItem(ROLE_TEXT[r], r)
        form.addRow("User name", self.user)
        form.addRow("Role", self.role)
        form.addRow("First password", self.password)
        self.create_button = QPushButton("Create account")
        self.unlock_button = QPushButton("Unlock this user name")
        form.addRow(self.create_button)
        form.addRow(self.unlock_button)
        lay.addLayout(form)
        self.message = plain_label()
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        self.create_button.clicked.connect(self.create)
        self.unlock_button.clicked.connect(self.unlock)
        self.refresh()

    def refresh(self) -> None:
        from localdb.accounts import ROLE_TEXT
        lines = [f"{'User name':<20} {'Role':<15} {'State':<8} Last sign-in"]
        for a in self.accounts.list():
            state = "LOCKED" if a["locked"] else ("disabled" if a["disabled"] else "active")
            if a["locked"] and a.get("locked_until"):
                state = f"LOCKED until {fmt_time(a['locked_until'])}"
            last = fmt_time(a["last_sign_in"]) if a["last_sign_in"] else "never"
            lines.append(f"{a['username']:<20} {ROLE_TEXT.get(a['role'], a['role']):<15} {state:<8} {last}")
        self.listing.setPlainText("\n".join(lines))

    def create(self) -> bool:
        try:
            self.accounts.create(self.admin, self.user.text(), self.role.currentData(), self.password.text())
        except AccountError as e:
            self.message.setText(str(e))
            return False
        finally:
            self.password.clear()
        self.message.setText(f"Account {self.user.text().strip()} created.")
        self.refresh()
        return True

    def unlock(self) -> bool:
        try:
            self.accounts.unlock(self.admin, self.user.text().strip())
        except AccountError as e:
            self.message.setText(str(e))
            return False
        self.message.setText(f"{self.user.text().strip()} unlocked.")
        self.refresh()
        return True


def sign_in_at_start(accounts, *, training: bool, parent=None) -> Session | None:
    """The start-of-shift sign-in (modal). Returns the session, or None if the user cancelled.
    Raises ``ui.roles.RoleRefused`` if the role may not use this mode (a trainer in live mode)."""
    from ui.roles import check_mode
    dlg = SignInDialog(accounts, parent, training=training)   # a refused role is told in the dialog
    if not dlg.exec() or dlg.session is None:
        return None
    check_mode(dlg.session.role, training)
    return dlg.session


def _store_dir(path) -> None:
    """The store's directory: the application's data directory is made 0700 (personal data);
    a directory the user chose with --db is only created if missing."""
    from ui.settings import data_dir, private_dir
    if path.parent == data_dir():
        private_dir(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)


def builtin_trainer(training_db, operator: str | None = None) -> Session | None:
    """The built-in trainer (no password) of a training store that has no account yet, or None
    when the store has accounts (then everyone signs in). Opening the store as a training store
    refuses a live one (StoreModeError, the file untouched) and marks a new file as training, so
    the built-in trainer exists only in a training store."""
    import pathlib
    import time
    from localdb.accounts import Accounts
    from localdb.store import Store
    path = pathlib.Path(training_db)
    _store_dir(path)
    store = Store(path, mode="training")
    try:
        if Accounts(store).count():
            return None
    finally:
        store.close()
    return Session(operator or "trainer", "trainer", time.time())


def sign_in_for_console(accounts_db, *, training: bool, user: str | None = None,
                        password_file: str | None = None, parent=None):
    """Sign in against the accounts of ``accounts_db`` before the console starts: the live store
    in live mode, the training store in training mode (opened with that mode, so the other kind
    of store is refused with a StoreModeError).

    Interactive (the dialog) unless ``user`` and ``password_file`` are given (end-to-end tests,
    kiosk scripts: the file's first line is the password). Returns ``(session, accounts)``, or
    None when the user cancels; ``accounts.store`` stays open for the idle lock and sign-out
    (close it at shutdown). Raises ``SignInError`` (non-interactive) or ``ui.roles.RoleRefused``
    (a role that may not use this mode, e.g. a trainer in live mode)."""
    import pathlib
    from localdb.accounts import Accounts
    from localdb.store import Store
    from ui.roles import check_mode
    path = pathlib.Path(accounts_db)
    _store_dir(path)
    store = Store(path, mode="training" if training else "live")
    try:
        accounts = Accounts(store)
        if user and password_file:
            text = pathlib.Path(password_file).read_text(encoding="utf-8").splitlines()
            session = accounts.sign_in(user, text[0] if text else "")
        else:
            session = sign_in_at_start(accounts, training=training, parent=parent)
            if session is None:
                store.close()
                return None
        check_mode(session.role, training)
    except BaseException:
        store.close()
        raise
    return session, accounts
