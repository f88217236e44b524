"""Training mode (``main.py --demo``): escalation counts the trainee's real seconds, not the
simulated clock's, so at ×60 an alert is not "escalated" a second after it is raised."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.qt_log_ignore(r"propagateSizeHints", r"QRhi", r"RHI", r"Vulkan", r"GBM",
                                       r"GPUInfo", r"dbus", r"OpenGL", r"libpulse")


def test_the_demo_console_escalates_on_real_seconds(qtbot, tmp_path):
    from ui.app import Console, Options
    console = Console(Options(demo=True, speed=60, offenders=10, db=str(tmp_path / "training.sqlite")))
    try:
        model, feed = console.controller.model, console.source
        t0 = feed.now()
        assert model.waited_s(t0, t0 + 600) == pytest.approx(10.0)       # 10 simulated minutes at ×60
        feed.set_speed(10)
        t1 = feed.now()
        assert model.waited_s(t1, t1 + 600) == pytest.approx(60.0)       # a speed change is followed
        critical = console.settings.escalation_limits()["critical"]
        assert model.waited_s(t0, t0 + critical) < critical              # not escalated in simulated time
    finally:
        console.shutdown()
