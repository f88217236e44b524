"""Flood handling as the operator meets it (EEMUA 191), driven with the real mouse and keys on
the real console window, engine thread and store: the pointer over the queue holds the rows
(an alert that arrives meanwhile does not push the aimed-at row away), the dialog names the
alert it acknowledges, one acknowledgement takes an offender's group (one log entry each), the
counts per priority are always on screen, the shelved pane appears only when something is
shelved and folds with a click, Shelve is disabled for alerts that are never shelved, and the
shelved countdown moves every second."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from monitorapp.engine.alerts import PRIORITY, Alert, alert_id
from tests.fixtures_ui import T0, battery_script, breach_script, event, heartbeats, tamper_flood
from ui.console.ackdialog import AckDialog
from ui.console.shelvedialog import ShelveDialog
from ui.settings import Settings

pytestmark = pytest.mark.qt_log_ignore(r"propagateSizeHints")


def make_window(qtbot, rig):
    from ui.console.mainwindow import MainWindow
    w = MainWindow(controller=rig.controller, worker=rig.worker, caseload=rig.caseload, store=rig.store,
                   settings=Settings(), map_widget=QWidget(), clock=rig.feed.now, operator="op.jones")
    qtbot.addWidget(w)
    rig.start(feed_controller=False)
    w.resize(1600, 1000)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    return w


def row_ids(w):
    p = w.ctl.proxy
    return [p.alert_id_at(r) for r in range(p.rowCount())]


def centre_of(w, proxy_row: int) -> QPoint:
    return w.queue.table.visualRect(w.ctl.proxy.index(proxy_row, 3)).center()


def answer_dialog(qtbot, kind, seen: list, *, note: str, action_steps: int = 3, ok: bool = True):
    """When the modal dialog opens: choose an action code with the keyboard, type the note,
    click OK (real key and mouse events on the dialog's widgets)."""
    def run():
        dlg = QApplication.activeModalWidget()
        if not isinstance(dlg, kind):
            QTimer.singleShot(50, run)
            return
        seen.append(dlg)
        if kind is AckDialog:
            dlg.seen_heading = " ".join(lab.text() for lab in dlg.findChildren(type(dlg.problem)))
            for _ in range(action_steps):
                QTest.keyClick(dlg.action, Qt.Key.Key_Down)
            QTest.keyClicks(dlg.note, note)
        else:
            QTest.keyClicks(dlg.reason, note)
        button = dlg.buttons.button(dlg.buttons.StandardButton.Ok if ok else dlg.buttons.StandardButton.Cancel)
        QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    QTimer.singleShot(100, run)


def test_pointer_holds_the_rows_and_the_dialog_names_the_alert(qtbot, ui_rig):
    rig = ui_rig(tamper_flood(n=5), start=False)
    w = make_window(qtbot, rig)
    qtbot.waitUntil(lambda: len(rig.alerts("strap_tamper")) == 5, timeout=20000)
    table = w.queue.table
    before = row_ids(w)
    aimed = before[2]
    QTest.mouseMove(table.viewport(), centre_of(w, 2))
    qtbot.waitUntil(lambda: w.ctl.proxy.frozen, timeout=3000)
    assert w.queue.held.isVisible()
    # an alert arrives that sorts on top: while the pointer is there, nothing moves
    new = Alert(alert_id("strap_tamper", "OFF-15", None, T0 - 50), "strap_tamper", PRIORITY["strap_tamper"],
                "OFF-15", "TAG-15", None, None, T0 - 50, T0 - 40)
    w.ctl.on_alert_batch([("raised", new)], rig.feed.now())
    assert row_ids(w)[:len(before)] == before and row_ids(w)[-1] == new.alert_id
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=centre_of(w, 2))
    assert w.queue.selected_alert() == aimed
    seen: list = []
    answer_dialog(qtbot, AckDialog, seen, note="Called the subject, strap checked")
    QTest.keyClick(table, Qt.Key.Key_A)          # the A shortcut
    assert seen, "the acknowledge dialog did not open"
    row = rig.controller.model.row(aimed)
    # the dialog named what was aimed at: offender and when it started
    assert row.alert.offender in seen[0].seen_heading and "started" in seen[0].seen_heading
    assert row.handling.state == "acknowledged"
    rig.store.flush()
    assert [e["action"] for e in rig.store.ack_log(aimed)] == ["acknowledge"]
    assert rig.store.ack_log(new.alert_id) == []
    # the pointer leaves: the queue sorts again, the newcomer (unacknowledged critical) first
    QTest.mouseMove(w.queue.silence_btn)
    qtbot.waitUntil(lambda: not w.ctl.proxy.frozen, timeout=3000)
    assert not w.queue.held.isVisible()
    order = row_ids(w)
    assert order[0] == new.alert_id
    states = [w.ctl.model.row(a).handling.state for a in order]
    assert states.index("acknowledged") > max(i for i, s in enumerate(states) if s == "unacknowledged")


def group_script():
    """OFF-1 breaches its exclusion zone, then cuts its strap: two alerts of one offender."""
    msgs = breach_script() + heartbeats(T0 + 430, T0 + 600) + [event("TAG-1", 16, T0 + 440, "strap_tamper")]
    return sorted(msgs, key=lambda m: m[0])


def test_one_acknowledgement_for_an_offenders_group(qtbot, ui_rig):
    rig = ui_rig(group_script(), start=False)
    w = make_window(qtbot, rig)
    qtbot.waitUntil(lambda: bool(rig.alerts("exclusion_entered") and rig.alerts("strap_tamper")), timeout=20000)
    ids = {r.alert.alert_id for r in rig.alerts() if r.alert.offender == "OFF-1"}
    assert len(ids) == 2
    QTest.mouseClick(w.queue.table.viewport(), Qt.MouseButton.LeftButton, pos=centre_of(w, 0))
    assert w.queue.group_btn.isEnabled() and "(2)" in w.queue.group_btn.text()
    seen: list = []
    answer_dialog(qtbot, AckDialog, seen, note="Police informed, CAD 991")
    QTest.keyClick(w.queue.table, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert seen and "GROUP of 2" in seen[0].seen_heading
    assert all(rig.controller.model.row(a).handling.state == "acknowledged" for a in ids)
    rig.store.flush()
    for a in ids:                       # one record per alert, each under the operator's name
        log = rig.store.ack_log(a)
        assert [(e["action"], e["operator"], e["note"]) for e in log] == [
            ("acknowledge", "op.jones", "Police informed, CAD 991")]
    assert w.queue.count_labels["critical"].text().endswith("0 unack · 2 open")


def test_counts_shelved_pane_and_shelve_rules_by_mouse(qtbot, ui_rig):
    rig = ui_rig(breach_script() + battery_script(T0 + 30), start=False)
    w = make_window(qtbot, rig)
    qtbot.waitUntil(lambda: bool(rig.alerts("exclusion_entered") and rig.alerts("battery_low")), timeout=20000)
    q = w.queue
    qtbot.waitUntil(lambda: q.count_labels["critical"].text().startswith("▲ CRITICAL  1 unack"), timeout=3000)
    assert q.count_labels["low"].text() == "● LOW  1 unack · 1 open"
    assert q.count_labels["critical"].property("waiting") == "1"
    assert q.count_labels["medium"].property("waiting") == "0"
    # nothing shelved: no shelved pane taking room from the queue
    assert not q.shelved_pane.isVisible() and not q.shelved_list.isVisible()
    ids = row_ids(w)
    excl = next(i for i, a in enumerate(ids) if w.ctl.model.row(a).alert.type == "exclusion_entered")
    QTest.mouseClick(q.table.viewport(), Qt.MouseButton.LeftButton, pos=centre_of(w, excl))
    assert not q.shelve_btn.isEnabled() and "never shelved" in q.shelve_btn.toolTip()
    batt = next(i for i, a in enumerate(ids) if w.ctl.model.row(a).alert.type == "battery_low")
    QTest.mouseClick(q.table.viewport(), Qt.MouseButton.LeftButton, pos=centre_of(w, batt))
    assert q.shelve_btn.isEnabled()
    seen: list = []
    answer_dialog(qtbot, ShelveDialog, seen, note="Charger delivered tomorrow")
    QTest.mouseClick(q.shelve_btn, Qt.MouseButton.LeftButton)
    assert seen
    qtbot.waitUntil(lambda: q.shelved_pane.isVisible() and q.shelved_list.isVisible(), timeout=3000)
    assert q.shelved_header.text() == "Shelved (1)"
    assert q.count_labels["low"].text() == "● LOW  0 unack · 0 open"
    # the countdown moves every second
    shelved = w.ctl.shelved
    first = shelved.data(shelved.index(0, 0))
    qtbot.waitUntil(lambda: shelved.data(shelved.index(0, 0)) != first, timeout=3000)
    assert "back in" in first and ":" not in first.split("back in")[1]
    # a click on the fold arrow hides the list (the header stays), another shows it again
    QTest.mouseClick(q.shelved_fold, Qt.MouseButton.LeftButton)
    assert q.shelved_pane.isVisible() and not q.shelved_list.isVisible()
    QTest.mouseClick(q.shelved_fold, Qt.MouseButton.LeftButton)
    assert q.shelved_list.isVisible()
    # a shelved alert no longer labels the map (nor colours its offender)
    off = w.ctl.model.row(ids[batt]).alert.offender
    # (the feed has ended: the same offender may meanwhile have another alert of its own)
    others = {w.ctl.model.row(a).alert.priority for a in row_ids(w)
              if a != ids[batt] and w.ctl.model.row(a).alert.offender == off
              and w.ctl.model.row(a).handling.state not in ("shelved", "closed")}
    worst = w.caseload_model.worst(off)
    assert worst is None if not others else worst in others, (worst, others)
