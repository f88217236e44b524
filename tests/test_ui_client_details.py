"""A console of the centre shows where things happened and the tag's last day (issue 15).

The real decider (``monitorapp monitor`` on the PostgreSQL record and the locked Mosquitto)
names the street and borough of each alert and position it publishes; a console built as
``main.py --db postgresql://…`` builds it shows that in the queue's Location column, and, when
the operator clicks the alert, the selected tag's trail on the map and the details panel's
charts (distance to the exclusion boundary, speed, battery) from the positions the decider
published. A login that may read the record's fixes gets the hours before the console started
too; one that may not (the shipped roles) gets what its console was shown, and no error.
"""
from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.fixtures_map import wait_state
from tests.fixtures_ui import INSIDE, OUTSIDE, fix

WAIT = 30_000
pytestmark = pytest.mark.qt_log_ignore(r"propagateSizeHints", r"QRhi", r"RHI", r"Vulkan", r"GBM",
                                       r"GPUInfo", r"dbus", r"OpenGL", r"libpulse", r"does not support raise",
                                       r"Unable to detect GPU vendor")


def walk_in(t0: float) -> list[tuple]:
    """TAG-1 twice outside (1.4 km off), then three times inside its exclusion zone."""
    places = [OUTSIDE, OUTSIDE, INSIDE, INSIDE, INSIDE]
    return [fix("TAG-1", 1 + k, t0 - 50 + 10 * k, *p, batt=0.8 - 0.01 * k) for k, p in enumerate(places)]


def publish_one_by_one(qtbot, centre, console, lines) -> None:
    """Each fix once the console has the one before (the decider publishes a tag's position at
    most once a second), so the console is shown every one."""
    for k, (_rx, payload) in enumerate(lines):
        assert centre.publish([(time.time(), payload)])["published"] == 1
        qtbot.waitUntil(lambda k=k: len(console.centre.trails.rows("TAG-1")) == k + 1, timeout=WAIT)


def click_alert(qtbot, console, alert_id: str) -> None:
    w = console.window
    w.focus_dock(w.queue_dock, w.queue.table)
    assert w.queue.select_alert(alert_id)
    rect = w.queue.table.visualRect(w.queue.table.currentIndex())
    QTest.mouseClick(w.queue.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def points(panel) -> int:
    """Points on the details panel's distance chart."""
    x, _y = panel.curves["dist"].getData()
    return 0 if x is None else len(x)


def breach_row(qtbot, console):
    from ui.console.alertmodel import COL_LOCATION
    m = console.controller.model
    qtbot.waitUntil(lambda: any(r.alert.type == "exclusion_entered" for r in m.rows()), timeout=WAIT)
    row = next(r for r in m.rows() if r.alert.type == "exclusion_entered")
    qtbot.waitUntil(lambda: bool(m.data(m.index(m._index[row.alert.alert_id], COL_LOCATION))), timeout=WAIT)  # noqa: SLF001
    return row, m.data(m.index(m._index[row.alert.alert_id], COL_LOCATION))               # noqa: SLF001


def test_the_queue_names_the_place_and_the_details_show_the_trail_and_charts(qtbot, centre):
    centre.start_monitor()
    c1 = centre.console("olly.operator")
    qtbot.waitUntil(lambda: c1.window.status.feed.text().startswith("●"), timeout=WAIT)
    publish_one_by_one(qtbot, centre, c1, walk_in(time.time()))
    row, location = breach_row(qtbot, c1)
    assert location == "Islington"                 # the borough of the fix inside the zone
    # the tag's position names its place too: what the acknowledgement dialog reads out
    assert c1.centre.positions_now["TAG-1"]["address_text"] == "Islington"
    click_alert(qtbot, c1, row.alert.alert_id)
    panel = c1.window.details
    qtbot.waitUntil(lambda: points(panel) == 5, timeout=WAIT)
    _t, dist = panel.curves["dist"].getData()
    assert dist[0] > 1000 and dist[1] > 1000        # 1.4 km outside
    assert all(d < 0 for d in dist[2:])            # below zero: inside
    _t, speed = panel.curves["speed"].getData()
    assert len(speed) == 5 and speed[2] > 0        # it moved 1.4 km in 10 s
    _t, batt = panel.curves["batt"].getData()
    assert [round(b) for b in batt] == [80, 79, 78, 77, 76]
    assert "Islington" in panel.body.text()        # Location: the last fix's place
    state = wait_state(qtbot, c1.map, lambda s: (s.get("trail") or {}).get("points") == 5)
    assert state["trail"]["points"] == 5
    # the console says how fresh what it shows is (decider to screen)
    c1.centre._fresh_at = 0.0                                                  # noqa: SLF001
    qtbot.waitUntil(lambda: any(n == "centre_latency" for n, _ in c1.events), timeout=WAIT)
    lat = next(f for n, f in c1.events if n == "centre_latency")
    assert lat["position"]["n"] >= 1 and 0 <= lat["position"]["p50"] < 30


def test_a_login_that_may_read_the_records_fixes_sees_the_hours_before_its_console_started(
        qtbot, centre):
    from tests.fixtures_mqtt import wait_until
    centre.start_monitor().wait_log("feed_subscribed")
    lines = walk_in(time.time())
    assert centre.publish([(time.time(), p) for _rx, p in lines])["published"] == 5
    with centre.people.admin() as conn:           # the decider has stored them
        conn.autocommit = True                    # no transaction held open across its writes
        wait_until(lambda: conn.execute("SELECT count(*) FROM fixes WHERE device='TAG-1'").fetchone()[0] == 5,
                   30, "the fixes in the record", interval=0.2)
    # a centre that lets its supervisors read positions grants it; the shipped roles do not
    centre.people.login("rita.supervisor", "supervisor")
    with centre.people.admin() as conn:
        conn.execute('GRANT SELECT ON fixes TO "rita.supervisor"')
    try:
        granted = centre.console("rita.supervisor", "supervisor")
        plain = centre.console("olly.operator")
        for c in (granted, plain):
            row, _loc = breach_row(qtbot, c)
            qtbot.waitUntil(lambda c=c: len(c.centre.trails.rows("TAG-1")) == 1, timeout=WAIT)   # the retained one
            click_alert(qtbot, c, row.alert.alert_id)
        qtbot.waitUntil(lambda: points(granted.window.details) == 5, timeout=WAIT)
        assert granted.centre._record_trails["TAG-1"] is True                               # noqa: SLF001
        # the operator's login may not read fixes: its own one position, no warning about it
        qtbot.waitUntil(lambda: plain.centre._record_trails.get("TAG-1") is False, timeout=WAIT)  # noqa: SLF001
        qtbot.waitUntil(lambda: plain.window.details.offender == "OFF-1", timeout=WAIT)
        assert len(plain.centre.trails.rows("TAG-1")) == 1
        assert not [f for n, f in plain.events if n == "warning" and "fixes" in str(f)]
    finally:                                   # the people fixture drops its logins
        centre.close()
        with centre.people.admin() as conn:
            conn.execute('REVOKE SELECT ON fixes FROM "rita.supervisor"')
