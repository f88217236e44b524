"""Signing in and out: the sign-in dialog (with the first-run administrator), the idle lock and
the shift handover.

``SignInDialog(accounts)`` asks for a user name and password and returns a
``localdb.accounts.Session``; on a store with no account yet it asks for the first
administrator instead. After a sign-in it shows the handover summary the previous person left.
``IdleLock`` locks the screen after a period without keyboard or mouse input (``LockScreen``:
only the signed-in user's password opens it; failures count towards the account's lockout, and
a lockout signs the user out). ``handover_summary(store, notes)`` collects the open and shelved
alerts and the notes; ``SignOutDialog`` shows it, takes the notes and saves it at sign-out.

Return in the password field is one attempt: the dialogs' buttons are not default or
auto-default buttons (a default button would be clicked by the same Return key that emits
``returnPressed``, and every wrong password would count twice towards the lockout). Return in
the user-name field moves to the password field.

``sign_in_for_console`` opens the accounts' store with the mode of the console (a live store
for live mode, a training store for training: ``localdb.schema``), and ``builtin_trainer`` is the
passwordless trainer that exists only in a training store without accounts.
"""
from __future__ import annotations

import datetime as dt

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel,
                               QLineEdit, QPlainTextEdit, QPushButton, QStackedWidget,
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


class SignInDialog(QDialog):
    """Sign in (or, on a new store, create the first administrator); ``session`` after accept."""

    signedIn = Signal(object)        # Session

    def __init__(self, accounts, parent=None, *, title: str = "Monitoring centre — sign in"):
        super().__init__(parent)
        self.accounts = accounts
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
        self.sign_in_button = QPushButton("Sign in")
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
        self.create_button = QPushButton("Create administrator and sign in")
        f1.addRow(self.create_button)
        # page 2: the handover left by the previous person
        p2 = QWidget()
        l2 = QVBoxLayout(p2)
        self.handover = QPlainTextEdit()
        self.handover.setReadOnly(True)
        self.handover.setObjectName("handoverText")
        self.continue_button = QPushButton("I have read the handover — continue")
        l2.addWidget(QLabel("<b>Shift handover</b>"))
        l2.addWidget(self.handover)
        l2.addWidget(self.continue_button)
        for p in (p0, p1, p2):
            self.pages.addWidget(p)
        self.pages.setCurrentIndex(1 if accounts.needs_first_admin() else 0)
        _no_default_buttons(self)

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
            return None
        finally:
            self.password.clear()
        return self._signed_in(session)

    def try_create_admin(self) -> Session | None:
        if self.admin_pw.text() != self.admin_pw2.text():
            self.error.setText("The two passwords differ.")
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

    def _signed_in(self, session: Session) -> Session:
        self.session = session
        self.error.clear()
        self.signedIn.emit(session)
        last = self.accounts.last_handover()
        if last:
            self.handover.setPlainText(handover_text(last))
            self.pages.setCurrentIndex(2)
        else:
            self.accept()
        return session


class LockScreen(QDialog):
    """The idle lock: only the signed-in user's password opens it."""

    unlocked = Signal()
    signedOut = Signal(str)          # the account locked itself: the reason

    def __init__(self, accounts, session: Session, parent=None):
        super().__init__(parent)
        self.accounts, self.session = accounts, session
        self.setWindowTitle("Locked")
        self.setObjectName("lockScreen")
        self.setModal(True)
        lay = QVBoxLayout(self)
        lay.addWidget(rich_label(rich("<b>Locked after {m} minutes without input.</b><br>Signed in: {user} ({role})",
                                      m=IDLE_LOCK_S // 60, user=session.username, role=session.role_text)))
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("Password")
        self.error = plain_label()
        self.error.setWordWrap(True)
        self.unlock_button = QPushButton("Unlock")
        lay.addWidget(self.password)
        lay.addWidget(self.unlock_button)
        lay.addWidget(self.error)
        _no_default_buttons(self)
        self.unlock_button.clicked.connect(self.try_unlock)
        self.password.returnPressed.connect(self.try_unlock)

    def try_unlock(self) -> bool:
        try:
            self.accounts.sign_in(self.session.username, self.password.text())
        except SignInError as e:
            self.error.setText(str(e))
            if e.locked:
                self.signedOut.emit(str(e))
                self.reject()
            return False
        finally:
            self.password.clear()
        self.unlocked.emit()
        self.accept()
        return True


class IdleLock(QObject):
    """Locks the screen (``LockScreen``) after ``idle_s`` without input.

    Input is seen without an application-wide Python event filter (under PySide6 6.12 one
    crashed the console with the map page open): the mouse pointer is polled every
    ``poll_ms``, and ``touch()`` is called by whatever the user triggers (``watch`` connects
    every action of a window: menu items and their shortcuts, the queue's buttons).
    """

    locked = Signal()
    unlocked = Signal()
    signedOut = Signal(str)

    def __init__(self, accounts, session: Session, *, idle_s: float = IDLE_LOCK_S, parent_widget=None,
                 poll_ms: int = 1000):
        super().__init__(parent_widget)
        self.accounts, self.session, self.parent_widget = accounts, session, parent_widget
        self.screen: LockScreen | None = None
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(int(idle_s * 1000))
        self.timer.timeout.connect(self.lock_now)
        self._cursor = QCursor.pos()
        self.poll = QTimer(self)
        self.poll.setInterval(poll_ms)
        self.poll.timeout.connect(self._poll_pointer)
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
        if self.screen is None:
            self.timer.start()

    def _poll_pointer(self) -> None:
        pos = QCursor.pos()
        if pos != self._cursor:
            self._cursor = pos
            self.touch()

    @property
    def is_locked(self) -> bool:
        return self.screen is not None

    def lock_now(self) -> None:
        if self.screen is not None:
            return
        self.accounts.record_lock(self.session, "idle")
        self.screen = LockScreen(self.accounts, self.session, self.parent_widget)
        self.screen.unlocked.connect(self._unlocked)
        self.screen.signedOut.connect(self.signedOut)
        self.screen.open()
        self.locked.emit()

    def _unlocked(self) -> None:
        self.screen.deleteLater()
        self.screen = None
        self.timer.start()
        self.unlocked.emit()

    def stop(self) -> None:
        self.timer.stop()
        self.poll.stop()


class SignOutDialog(QDialog):
    """Sign-out: the handover summary to leave, with notes; ``sign_out()`` saves it."""

    def __init__(self, accounts, store, session: Session, parent=None):
        super().__init__(parent)
        self.accounts, self.store, self.session = accounts, store, session
        self.setWindowTitle("Sign out — shift handover")
        self.setObjectName("signOutDialog")
        self.setMinimumSize(640, 480)
        lay = QVBoxLayout(self)
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.notes = QPlainTextEdit()
        self.notes.setPlaceholderText("Notes for the next person (what to watch, calls to return…)")
        lay.addWidget(rich_label(rich("<b>{user}</b>, signing out at {at}. This is what you hand over:",
                                      user=session.username, at=dt.datetime.now().strftime("%H:%M"))))
        lay.addWidget(self.summary, 2)
        lay.addWidget(self.notes, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Save handover and sign out")
        buttons.accepted.connect(self.sign_out)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.refresh()

    def refresh(self) -> None:
        h = handover_summary(self.store)
        h.update(by=self.session.username, at=self.store.clock())
        self.summary.setPlainText(handover_text(h))

    def sign_out(self) -> dict:
        h = handover_summary(self.store, self.notes.toPlainText())
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
        lines = []
        for a in self.accounts.list():
            state = "LOCKED" if a["locked"] else ("disabled" if a["disabled"] else "active")
            if a["locked"] and a.get("locked_until"):
                state = f"LOCKED until {fmt_time(a['locked_until'])}"
            last = fmt_time(a["last_sign_in"]) if a["last_sign_in"] else "never"
            lines.append(f"{a['username']:<20} {a['role']:<16} {state:<8} last sign-in {last}")
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
    dlg = SignInDialog(accounts, parent)
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
