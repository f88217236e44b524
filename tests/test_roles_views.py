"""install_role_views on the real console window: each role gets its own Views menu; a police
analyst cannot acknowledge from the console; a supervisor opens the review and the KPIs; the
administrator manages accounts; sign-out leaves the handover."""
from __future__ import annotations

import pytest
from PySide6.QtWidgets import QWidget

from localdb.accounts import Accounts
from tests.fixtures_roles import PASSWORD, ROLE_USERS
from tests.fixtures_ui import breach_script
from ui.session.wiring import install_role_views
from ui.settings import Settings

# the offscreen platform cannot size shown top-level windows; not our code
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support (propagateSizeHints|raise)\(\)")


@pytest.fixture
def console(ui_rig, qtbot, own):
    """The real MainWindow over the real engine thread and store (map: a plain widget)."""
    from ui.console.mainwindow import MainWindow
    rig = ui_rig(breach_script(), start=False, speed=120)
    w = MainWindow(controller=rig.controller, worker=rig.worker, caseload=rig.caseload, store=rig.store,
                   settings=Settings(), map_widget=QWidget(), clock=rig.feed.now, operator="op.jones")
    own(w)
    accounts = Accounts(rig.store)
    admin = accounts.create_first_admin(ROLE_USERS["administrator"], PASSWORD)
    for role, user in ROLE_USERS.items():
        if role != "administrator":
            accounts.create(admin, user, role, PASSWORD)
    rig.start(feed_controller=False)
    w.show()
    return w, rig, accounts


def _menu(window, title="Vie&ws"):
    return next(a.menu() for a in window.menuBar().actions() if a.text() == title)


def test_police_analyst_views_and_no_acknowledging(qtbot, console):
    w, rig, accounts = console
    session = accounts.sign_in("pc.smith", PASSWORD)
    actions = install_role_views(w, rig.store, rig.worker, None, session, idle_s=0)
    assert set(actions) == {"crime", "playback", "lock", "sign_out"}
    assert [a.text() for a in _menu(w).actions() if a.text()][:2] == ["&Crime mapping", "Trail &playback"]
    assert not w.act_ack.isEnabled() and not w.queue_dock.isVisible()
    qtbot.waitUntil(lambda: bool(rig.alerts("exclusion_entered")), timeout=20_000)
    aid = rig.alerts("exclusion_entered")[0].alert.alert_id
    from ui.console.alertqueue import HandlingRefused
    with pytest.raises(HandlingRefused, match="Police analyst may not acknowledge"):
        w.ctl.acknowledge(aid, "police_informed", "x")
    assert rig.store.ack_log() == []
    actions["crime"].trigger()
    crime = w.role_views.views["crime"]
    assert crime.isVisible() and crime.run_button.isEnabled()
    w.role_views.shutdown()


def test_supervisor_opens_review_and_kpi(qtbot, console):
    w, rig, accounts = console
    session = accounts.sign_in("sup.khan", PASSWORD)
    actions = install_role_views(w, rig.store, rig.worker, None, session, idle_s=0)
    assert {"review", "kpi", "crime", "playback"} <= set(actions)
    qtbot.waitUntil(lambda: bool(rig.alerts("exclusion_entered")), timeout=20_000)
    aid = rig.alerts("exclusion_entered")[0].alert.alert_id
    w.ctl.acknowledge(aid, "police_informed", "999 called")      # a supervisor may
    actions["review"].trigger()
    review = w.role_views.views["review"]
    assert review.isVisible() and "intact" in review.chain.text()
    # the acknowledgement log names who is signed in, not who started the console
    assert any(r["alert_id"] == aid and r["acked_by"] == "sup.khan" for r in review.model.records())
    actions["kpi"].trigger()
    assert w.role_views.views["kpi"].isVisible()
    w.role_views.shutdown()


def test_trainer_menu_and_admin_accounts(qtbot, console, own):
    w, rig, accounts = console
    trainer = accounts.sign_in("tr.lee", PASSWORD)
    actions = install_role_views(w, rig.store, rig.worker, None, trainer, idle_s=0)
    assert set(actions) == {"kpi", "trainer", "lock", "sign_out"}
    from ui.session.signin import AccountsDialog
    from ui.roles import RoleRefused
    with pytest.raises(RoleRefused):
        AccountsDialog(accounts, trainer)
    admin = accounts.sign_in("admin.ann", PASSWORD)
    dlg = own(AccountsDialog(accounts, admin))
    dlg.user.setText("op.new")
    dlg.role.setCurrentIndex(dlg.role.findData("operator"))
    dlg.password.setText(PASSWORD)
    assert dlg.create() and "op.new" in dlg.listing.toPlainText()
    assert accounts.sign_in("op.new", PASSWORD).role == "operator"
    w.role_views.shutdown()
