"""Quitting through the window manager while a critical alert waits: the console asks first.

A real X server (Xvfb), a real window manager (openbox) and ``main.py --demo`` as a subprocess;
xdotool clicks the title bar's × and presses Alt+F4 as a person would. Each time the
"Quit the monitoring console?" box must appear; Escape, or Return on the default **No**, keeps
the console window and its engine running (an alert clears after the refusal); **Yes** quits
cleanly. Skipped without Xvfb, openbox and xdotool, except under ``CI=true`` (``make broker``
installs them).
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOOLS = ("Xvfb", "openbox", "xdotool", "xprop", "xwininfo")
HAVE_TOOLS = all(shutil.which(t) for t in TOOLS)
pytestmark = pytest.mark.skipif(not HAVE_TOOLS and os.environ.get("CI") != "true",
                                reason="needs Xvfb, openbox, xdotool, xprop and xwininfo (make broker installs them)")
TITLE = "TRAINING — Monitoring console"
CONFIRM = "Quit the monitoring console"


def wait_for(cond, timeout: float, what: str, step: float = 0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Desktop:
    """Xvfb on a free display (``-displayfd``) with openbox managing it."""

    def __init__(self, width: int = 1366, height: int = 768):
        r, w = os.pipe()
        self.xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", f"{width}x{height}x24",
                                      "-nolisten", "tcp"], pass_fds=(w,), stderr=subprocess.DEVNULL)
        os.close(w)
        with os.fdopen(r) as f:
            number = f.readline().strip()
        assert number, "Xvfb did not report a display"
        self.display = f":{number}"
        self.env = dict(os.environ, DISPLAY=self.display)
        self.env.pop("QT_QPA_PLATFORM", None)       # the real xcb platform, under the window manager
        self.env.pop("WAYLAND_DISPLAY", None)
        self.wm = subprocess.Popen(["openbox"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: "window id" in self.run("xprop", "-root", "_NET_SUPPORTING_WM_CHECK"), 20, "openbox")

    def run(self, *args) -> str:
        p = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=20)
        return p.stdout

    def windows(self, name: str) -> list[str]:
        return [w for w in self.run("xdotool", "search", "--onlyvisible", "--name", name).split() if w]

    def close_button(self, wid: str) -> tuple[int, int]:
        """Where openbox draws the × of ``wid``'s title bar: the frame's top right corner."""
        # xwininfo's absolute position (xdotool's getwindowgeometry adds the frame twice)
        info = dict(line.strip().split(":", 1) for line in self.run("xwininfo", "-id", wid).splitlines()
                    if line.strip().startswith(("Absolute upper-left", "Width")))
        x, y = int(info["Absolute upper-left X"]), int(info["Absolute upper-left Y"])
        w = int(info["Width"])
        ext = self.run("xprop", "-id", wid, "_NET_FRAME_EXTENTS").split("=")[-1]
        left, right, top, _bottom = (int(v) for v in ext.replace(",", " ").split())
        assert top > 0, "the window has no title bar"
        return x + w + right - 11, y - top // 2

    def stop(self) -> None:
        for p in (self.wm, self.xvfb):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


@pytest.fixture
def desktop():
    d = Desktop()
    yield d
    d.stop()


class Console:
    def __init__(self, env: dict, *args):
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT,
                                     env=dict(env, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.events: list[dict] = []
        self._th = threading.Thread(target=self._read, daemon=True)
        self._th.start()
        self._err: list[str] = []
        self._th_err = threading.Thread(target=lambda: self._err.extend(self.proc.stderr), daemon=True)
        self._th_err.start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.events.append(json.loads(line))

    def seen(self, event: str, **match) -> list[dict]:
        return [e for e in list(self.events) if e["event"] == event and all(e.get(k) == v for k, v in match.items())]

    def stderr(self) -> str:
        return "".join(self._err)[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._th.join(10)
        self._th_err.join(10)


def test_the_window_managers_close_asks_while_a_critical_waits_and_no_keeps_monitoring(desktop, tmp_path):
    # the strap-cut preset: a critical strap_tamper 5 simulated minutes in (5 s at x60), cleared
    # 20 simulated minutes later (20 s): the clearing shows the engine still runs after "No"
    app = Console(desktop.env, "--demo", "--scenario", "strap_cut", "--speed", "60", "--quit-after", "240")
    try:
        wait_for(lambda: app.seen("alert_raised", type="strap_tamper", priority="critical") or app.proc.poll() is not None,
                 120, "the critical strap_tamper alert")
        assert app.proc.poll() is None, app.stderr()
        assert not app.seen("alert_cleared"), "the scenario ran too fast to see the engine go on"
        win = wait_for(lambda: desktop.windows(f"^{TITLE}$"), 30, "the console window")[0]

        # 1. the title bar's × (clicked with the mouse), then Escape
        x, y = desktop.close_button(win)
        desktop.run("xdotool", "mousemove", "--sync", str(x), str(y), "click", "1")
        box = wait_for(lambda: desktop.windows(CONFIRM), 20, "the confirmation after the title bar's ×")
        assert app.proc.poll() is None
        desktop.run("xdotool", "windowactivate", "--sync", box[0], "key", "Escape")
        wait_for(lambda: app.seen("quit_asked", quit=False), 20, "the refusal after Escape")
        wait_for(lambda: not desktop.windows(CONFIRM), 20, "the confirmation to go")
        wait_for(lambda: desktop.windows(f"^{TITLE}$") == [win], 20, "the console window, still there")
        assert app.proc.poll() is None

        # 2. Alt+F4 on the console, then Return on the default button (No)
        desktop.run("xdotool", "windowactivate", "--sync", win, "key", "alt+F4")
        box = wait_for(lambda: desktop.windows(CONFIRM), 20, "the confirmation after Alt+F4")
        desktop.run("xdotool", "windowactivate", "--sync", box[0], "key", "Return")
        wait_for(lambda: len(app.seen("quit_asked", quit=False)) == 2, 20, "the refusal after Return")
        wait_for(lambda: desktop.windows(f"^{TITLE}$") == [win], 20, "the console window, still there")
        assert app.proc.poll() is None
        asked = app.seen("quit_asked")
        assert all(e["unacknowledged_critical"] == 1 for e in asked), asked

        # the console still monitors: the engine clears the strap alert when the strap is restored
        wait_for(lambda: app.seen("alert_cleared", type="strap_tamper"), 90, "the strap alert to clear")
        assert not app.seen("quit")

        # 3. Alt+F4 and Yes: quits cleanly
        desktop.run("xdotool", "windowactivate", "--sync", win, "key", "alt+F4")
        box = wait_for(lambda: desktop.windows(CONFIRM), 20, "the confirmation, a third time")
        desktop.run("xdotool", "windowactivate", "--sync", box[0], "key", "alt+y")
        wait_for(lambda: app.proc.poll() is not None, 60, "the console to quit")
        assert app.proc.returncode == 0, app.stderr()
        assert app.seen("quit_asked", quit=True) and app.seen("quit")
    finally:
        app.stop()
