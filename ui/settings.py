"""The console's settings, declared in one place with type, default and meaning.

Settings (what an operator or an administrator chooses) live in ``settings.ini`` in the
configuration directory; window geometry, dock layout and splitter positions are UI state and
live in a different file (``window-state.ini``) so that resetting one never touches the other.
The settings file carries a schema version; ``MIGRATIONS`` lifts an older file to the current
schema when it is opened.

Paths follow the XDG variables (``XDG_CONFIG_HOME``, ``XDG_DATA_HOME``), which the tests point at
a temporary directory, so nothing ever reads or writes a developer's real settings.

The settings may name the live store, the broker and the operator (personal data, spec v2 §8):
``settings.ini`` and ``window-state.ini`` are created readable by their owner only (0600, before
Qt writes them; Qt keeps the mode of an existing file when it saves), an existing file that
others could read is made 0600 when it is opened, and the application's own configuration and
data directories are 0700 (``private_dir``).
"""
from __future__ import annotations

import getpass
import os
import pathlib
from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QSettings

SCHEMA_VERSION = 2
APP_DIR = "monitorapp"


@dataclass(frozen=True)
class Setting:
    key: str
    type: type
    default: Any
    meaning: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None


SETTINGS: tuple[Setting, ...] = (
    Setting("operator/name", str, "", "Operator name written to the acknowledgement log; empty: the login name"),
    Setting("feed/broker_url", str, "", "MQTT broker URL of the live feed, e.g. mqtt://gateway:1883 (live mode only)"),
    Setting("feed/broker_ca", str, "", "CA file that signs the broker's certificate (mqtts:// URLs); empty: the system's CAs"),
    Setting("feed/broker_cert", str, "", "This console's client certificate for the broker (mqtts://, mutual TLS); empty: none"),
    Setting("feed/broker_key", str, "", "The private key of feed/broker_cert"),
    Setting("feed/broker_username", str, "", "This console's broker identity (monitorapp broker-config --console NAME); "
            "empty: the user in the URL, or none"),
    Setting("feed/broker_password_file", str, "", "File whose first line is the broker password of that identity "
            "(never the password itself); empty: the MONITORAPP_MQTT_PASSWORD variable, or none"),
    Setting("feed/caseload_path", str, "", "Caseload file (spec §3) used in live mode"),
    Setting("store/db_path", str, "", "SQLite store used in live mode; empty: monitor.sqlite in the data directory"),
    Setting("store/url", str, "", "The centre's record, postgresql://host/db (no password: each person signs in with their own "
            "login); set, the live console is a client of the centre (no engine of its own)"),
    Setting("response/protocols_file", str, "", "The centre's response protocols (JSON, README 'Response protocols'); "
            "empty: the shipped defaults. Recorded in the store at start (a new version when changed)"),
    Setting("response/contacts_file", str, "", "The boroughs' police control rooms and the centre's own numbers (JSON); "
            "empty: the shipped file"),
    Setting("alarm/escalate_critical_s", int, 60, "Seconds a critical alert may stay unacknowledged before it is escalated", minimum=5, maximum=3600),
    Setting("alarm/escalate_high_s", int, 180, "Seconds a high alert may stay unacknowledged before it is escalated", minimum=5, maximum=7200),
    Setting("alarm/escalate_medium_s", int, 900, "Seconds a medium alert may stay unacknowledged before it is escalated", minimum=5, maximum=86400),
    Setting("alarm/sound", bool, True, "Sound an alarm for new critical and high alerts"),
    Setting("alarm/flood_count", int, 10, "More than this many new alerts within the flood window is an alert flood", minimum=2, maximum=1000),
    Setting("alarm/flood_window_s", int, 600, "Length of the flood window in seconds", minimum=60, maximum=7200),
    Setting("shelve/max_hours", float, 8.0, "Longest time an alert may be shelved (ISA-18.2: timed shelving)", minimum=0.1, maximum=8.0),
    Setting("shift/end", str, "07:00", "Local time at which the current shift ends (HH:MM); shelving may run to it"),
    Setting("ui/theme", str, "light", "Colour theme: light for day shifts, dark for night shifts", choices=("light", "dark")),
    Setting("ui/queue_font_pt", int, 15, "Font size of the alert queue in points (readable from two metres)", minimum=14, maximum=32),
    Setting("map/tile_url", str, "", "Tile URL template of the live basemap ({z}/{x}/{y}); empty: offline basemap"),
    Setting("map/mbtiles", str, "", "MBTiles file used as the offline basemap"),
    Setting("zones/approval", str, "court", "Zone changes that need a second person's approval: court (zones that came with the caseload, i.e. the court order), all, none", choices=("court", "all", "none")),
    Setting("training/speed", int, 10, "Simulation speed of training mode", choices=(1, 10, 60)),
    Setting("privacy/analyst_live_map", bool, False, "Police analysts also see the live map, caseload and details of every tag; "
            "off (default, data minimisation): only crime mapping, playback of the people a query returned and evidential exports"),
)
BY_KEY = {s.key: s for s in SETTINGS}


def _migrate_1_to_2(qs: QSettings) -> None:
    """Version 1 kept the operator as ``operator`` and the theme as ``dark_mode`` (bool)."""
    if qs.contains("operator"):
        name = qs.value("operator")
        qs.remove("operator")          # also a group name now: remove before writing under it
        qs.setValue("operator/name", name)
    if qs.contains("dark_mode"):
        qs.setValue("ui/theme", "dark" if _to_bool(qs.value("dark_mode")) else "light")
        qs.remove("dark_mode")


MIGRATIONS: dict[int, Callable[[QSettings], None]] = {1: _migrate_1_to_2}


def config_dir() -> pathlib.Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(pathlib.Path.home() / ".config")
    return pathlib.Path(base) / APP_DIR


def data_dir() -> pathlib.Path:
    base = os.environ.get("XDG_DATA_HOME") or str(pathlib.Path.home() / ".local" / "share")
    return pathlib.Path(base) / APP_DIR


def private_dir(path: pathlib.Path) -> pathlib.Path:
    """Create ``path`` (and its parents) if needed and make it 0700: the application's own
    configuration and data directories hold personal data (stores, settings)."""
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def private_file(path: pathlib.Path) -> pathlib.Path:
    """Make sure ``path`` exists and is readable by its owner only (0600)."""
    path = pathlib.Path(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    return path


def _ensure_parent(path: pathlib.Path) -> None:
    """Our own configuration directory is made 0700; a directory the user chose is left as is."""
    if path.parent == config_dir():
        private_dir(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)


def _to_bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


class SettingsError(ValueError):
    """A setting name that is not declared or a value that is not allowed."""


class Settings:
    """Typed access to the declared settings, stored in an INI file."""

    def __init__(self, path: pathlib.Path | None = None):
        self.path = pathlib.Path(path) if path else config_dir() / "settings.ini"
        _ensure_parent(self.path)
        private_file(self.path)
        self._qs = QSettings(str(self.path), QSettings.Format.IniFormat)
        self._migrate()

    def _migrate(self) -> None:
        version = int(self._qs.value("schema_version", 0 if self._qs.allKeys() else SCHEMA_VERSION))
        if version > SCHEMA_VERSION:
            raise SettingsError(f"{self.path}: schema version {version} is newer than this program ({SCHEMA_VERSION})")
        while version < SCHEMA_VERSION:
            step = MIGRATIONS.get(version)
            if step:
                step(self._qs)
            version += 1
        self._qs.setValue("schema_version", SCHEMA_VERSION)
        self._qs.sync()

    def get(self, key: str) -> Any:
        s = BY_KEY.get(key)
        if s is None:
            raise SettingsError(f"unknown setting {key!r}")
        raw = self._qs.value(key, None)
        if raw is None:
            return s.default
        try:
            value = _to_bool(raw) if s.type is bool else s.type(raw)
            self._check(s, value)
        except (TypeError, ValueError):
            return s.default   # a hand-edited bad value falls back to the default
        return value

    def set(self, key: str, value: Any) -> None:
        s = BY_KEY.get(key)
        if s is None:
            raise SettingsError(f"unknown setting {key!r}")
        if s.type is bool:
            value = _to_bool(value)
        else:
            try:
                value = s.type(value)
            except (TypeError, ValueError):
                raise SettingsError(f"{key}: {value!r} is not a {s.type.__name__}") from None
        self._check(s, value)
        self._qs.setValue(key, value)
        self._qs.sync()

    @staticmethod
    def _check(s: Setting, value: Any) -> None:
        if s.choices is not None and value not in s.choices:
            raise SettingsError(f"{s.key}: {value!r} is not one of {', '.join(map(str, s.choices))}")
        if s.minimum is not None and value < s.minimum:
            raise SettingsError(f"{s.key}: {value!r} is below {s.minimum}")
        if s.maximum is not None and value > s.maximum:
            raise SettingsError(f"{s.key}: {value!r} is above {s.maximum}")

    def operator(self) -> str:
        name = self.get("operator/name").strip()
        if name:
            return name
        try:
            return getpass.getuser()
        except Exception:   # no login name (containers): still a name in the log
            return "operator"

    def escalation_limits(self) -> dict[str, float]:
        """Seconds unacknowledged before escalation, per priority (low never escalates)."""
        return {"critical": self.get("alarm/escalate_critical_s"),
                "high": self.get("alarm/escalate_high_s"),
                "medium": self.get("alarm/escalate_medium_s")}


BROKER_OPTIONS = {"broker_ca": "feed/broker_ca", "broker_cert": "feed/broker_cert",
                  "broker_key": "feed/broker_key", "broker_username": "feed/broker_username",
                  "broker_password_file": "feed/broker_password_file"}


def broker_settings(opts: Any, settings: "Settings", client_id: str | None = None, role: str = "console"):
    """The console's ``MqttSettings``: the URL (``--broker`` or feed/broker_url) with the same
    TLS, CA, client-certificate, user and password-file options as the monitor, each from its
    ``--broker-*`` option or else its setting, built by ``MqttSettings.from_args`` as the monitor
    does. Raises ``MqttConfigError`` (one sentence) for settings that cannot work."""
    from monitorapp.feed.mqttconfig import MqttSettings
    url = getattr(opts, "broker", None) or settings.get("feed/broker_url")
    given = {name: getattr(opts, name, None) or settings.get(key) or None
             for name, key in BROKER_OPTIONS.items()}
    return MqttSettings.from_args(url, client_id=client_id, ca=given["broker_ca"], cert=given["broker_cert"],
                                  key=given["broker_key"], username=given["broker_username"],
                                  password_file=given["broker_password_file"], role=role)


def window_state(path: pathlib.Path | None = None) -> QSettings:
    """UI state (geometry, docks, splitters): a separate file from the settings."""
    p = pathlib.Path(path) if path else config_dir() / "window-state.ini"
    _ensure_parent(p)
    private_file(p)
    return QSettings(str(p), QSettings.Format.IniFormat)
