"""The workstation's cache (issue 15): a console that was a client of the centre, restarted
while the centre cannot be reached (the record's port closed, the broker stopped), opens on the
last picture it was shown — the alert and the tag's position — marked stale with its age; an
acknowledgement is refused at once and nothing is recorded; when the record answers again the
sign-in cover asks for the next person."""
from __future__ import annotations

import os
import stat
import time
from urllib.parse import urlsplit

import pytest

from tests.fixtures_centre import TcpProxy
from tests.test_ui_client_centre import WAIT, alerts_of, breach, press_ack, wait_breach

pytestmark = pytest.mark.qt_log_ignore(r"propagateSizeHints", r"QRhi", r"RHI", r"Vulkan", r"GBM",
                                       r"GPUInfo", r"dbus", r"OpenGL", r"libpulse", r"does not support raise")


def test_a_console_restarted_without_the_centre_shows_the_cached_picture_marked_stale(qtbot, centre):
    from localdb.cache import ConsoleCache
    from ui.console.centreclient import UNREACHABLE
    from ui.console.clientmode import cache_path
    proxy = TcpProxy(urlsplit(centre.dsn).port)
    via = proxy.dsn(centre.dsn)
    centre.start_monitor()
    c1 = centre.console("cara.operator", db=via)
    qtbot.waitUntil(lambda: c1.window.status.feed.text().startswith("●"), timeout=WAIT)
    assert centre.publish(breach(time.time()))["published"] == 5
    aid = wait_breach(qtbot, c1)
    qtbot.waitUntil(lambda: "TAG-1" in c1.window._positions, timeout=WAIT)       # noqa: SLF001
    path = cache_path(via)

    def cached():
        cache = ConsoleCache(path)
        pic = cache.load()
        cache.close()
        return bool(any(a["alert_id"] == aid for a in pic["alerts"])
                    and any(p["device"] == "TAG-1" for p in pic["positions"]) and pic["caseload"])
    qtbot.waitUntil(cached, timeout=WAIT)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    centre.close()                          # the console quits ...
    proxy.cut()                             # ... and the centre is out of reach: record and broker
    centre.broker.stop()
    if centre.monitor is not None:
        centre.monitor.kill()

    c2 = centre.console("cara.operator", db=via)
    assert c2.session is None and c2.store is None          # nobody could be signed in
    qtbot.waitUntil(lambda: c2.controller.model.row(aid) is not None, timeout=WAIT)
    row = c2.controller.model.row(aid)
    assert row.alert.type == "exclusion_entered" and row.handling.state == "unacknowledged"
    assert "TAG-1" in c2.window._positions                                     # noqa: SLF001
    banner = c2.window.stale_banner
    qtbot.waitUntil(banner.isVisible, timeout=5000)
    assert banner.text().startswith("▲ CENTRE UNREACHABLE — picture from ")
    assert " min old" in banner.text()
    loaded = next(f for n, f in c2.events if n == "centre_loaded")
    assert loaded["source"] == "cache" and loaded["saved_at"] <= time.time()
    assert "feed connected" not in c2.window.status.feed.text()
    qtbot.waitUntil(lambda: bool(alerts_of(c2, "system_fault")), timeout=WAIT)     # and it is critical
    # an acknowledgement is refused at once, with the procedure to follow
    press_ack(qtbot, c2, aid, "Tried to phone the subject")
    refused = next(f for n, f in c2.events if n == "handling_refused")
    assert refused["reason"].startswith(UNREACHABLE)
    assert UNREACHABLE in c2.window.statusBar().currentMessage()
    assert c2.controller.model.row(aid).handling.state == "unacknowledged"
    # the record answers again: the sign-in cover asks for the next person
    proxy.restore()
    qtbot.waitUntil(lambda: c2.window.role_views.cover is not None, timeout=WAIT)
    proxy.cut()


def test_the_record_lost_mid_shift_refuses_at_once_and_the_person_signs_in_again_to_act(qtbot, centre):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from ui.console.centreclient import UNREACHABLE
    proxy = TcpProxy(urlsplit(centre.dsn).port)
    via = proxy.dsn(centre.dsn)
    centre.start_monitor()
    c1 = centre.console("dan.operator", db=via)
    qtbot.waitUntil(lambda: c1.window.status.feed.text().startswith("●"), timeout=WAIT)
    assert centre.publish(breach(time.time()))["published"] == 5
    aid = wait_breach(qtbot, c1)
    first = c1.store
    proxy.cut()                                   # the workstation's link to the record goes
    qtbot.waitUntil(lambda: c1.centre.record_ok is False, timeout=WAIT)
    qtbot.waitUntil(lambda: "record unreachable" in c1.window.status.feed.text(), timeout=WAIT)
    assert c1.window.stale_banner.isVisible()
    press_ack(qtbot, c1, aid, "Phoned the subject")
    refused = [f for n, f in c1.events if n == "handling_refused"]
    assert refused and refused[-1]["reason"].startswith(UNREACHABLE)
    proxy.restore()                               # back: the server must say who this is again
    qtbot.waitUntil(lambda: (c1.centre.record_error or "").startswith("the centre's record answers again"),
                    timeout=WAIT)
    w = c1.window
    w.role_views.lock_now()                       # Ctrl+L, then the password
    screen = w.role_views.idle_lock.screen
    QTest.keyClicks(screen.password, centre.people.passwords["dan.operator"])
    QTest.keyClick(screen.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: c1.centre.record_ok is True and c1.store is not first, timeout=WAIT)
    assert c1.store.login == "dan.operator"
    qtbot.waitUntil(lambda: not c1.window.stale_banner.isVisible(), timeout=WAIT)
    press_ack(qtbot, c1, aid, "Phoned the subject, now")
    qtbot.waitUntil(lambda: c1.controller.model.row(aid).handling.acked_by == "dan.operator", timeout=WAIT)
