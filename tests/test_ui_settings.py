"""Settings: declared once with type, default and meaning; validated; migrated; kept apart
from the window layout; isolated from the developer's real configuration."""
from __future__ import annotations

import pathlib

import pytest
from PySide6.QtCore import QSettings

from ui.settings import SCHEMA_VERSION, SETTINGS, Settings, SettingsError, config_dir, window_state


def test_every_setting_has_type_default_and_meaning():
    for s in SETTINGS:
        assert s.meaning and isinstance(s.default, s.type), s.key


def test_defaults_and_isolated_path(tmp_path):
    st = Settings()
    assert pathlib.Path(st.path).is_relative_to(tmp_path)          # conftest isolates HOME/XDG
    assert st.get("alarm/escalate_critical_s") == 60
    assert st.escalation_limits() == {"critical": 60, "high": 180, "medium": 900}
    assert st.get("ui/queue_font_pt") >= 14


def test_bad_values_are_refused_with_reason():
    st = Settings()
    with pytest.raises(SettingsError, match="not one of"):
        st.set("ui/theme", "pink")
    with pytest.raises(SettingsError, match="above 8"):
        st.set("shelve/max_hours", 12)
    with pytest.raises(SettingsError, match="unknown setting"):
        st.get("no/such")
    st.set("alarm/escalate_high_s", "120")
    assert Settings().get("alarm/escalate_high_s") == 120


def test_hand_edited_bad_value_falls_back_to_default():
    st = Settings()
    qs = QSettings(str(st.path), QSettings.Format.IniFormat)
    qs.setValue("ui/queue_font_pt", "huge")
    qs.sync()
    assert Settings().get("ui/queue_font_pt") == 15


def test_version_1_file_is_migrated():
    path = config_dir() / "settings.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[General]\nschema_version=1\noperator=Sam Night\ndark_mode=true\n")
    st = Settings()
    assert st.operator() == "Sam Night" and st.get("ui/theme") == "dark"
    assert int(QSettings(str(path), QSettings.Format.IniFormat).value("schema_version")) == SCHEMA_VERSION


def test_window_state_is_a_separate_file():
    st = Settings()
    ws = window_state()
    ws.setValue("window/geometry", b"xyz")
    ws.sync()
    assert pathlib.Path(ws.fileName()) != pathlib.Path(st.path)
    assert "window" not in pathlib.Path(st.path).read_text()
