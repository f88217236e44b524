"""Bad caseloads are refused with one line naming the place (issue 13, part E): zones across
the antimeridian or over a pole, caseloads nested too deeply, files that are not UTF-8, empty
or unreadable; through ``load_caseload``, the live zone edit (``Engine.update_zone``), the
``monitorapp`` commands and ``main.py``. Zones on both sides of ±180° that do not cross it
still alert."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import orjson
import pytest

from localdb.accounts import Accounts
from localdb.store import Store
from monitorapp.engine.caseload import MAX_DEPTH, CaseloadError, load_caseload, parse_caseload
from monitorapp.engine.engine import Engine
from monitorapp.feed.timeutil import fmt_time, parse_time
from tests.conftest import EXAMPLES, ROOT
from tests.enginekit import caseload, caseload_doc

ANTIMERIDIAN = "crosses the antimeridian: not supported; split it at ±180°"


def nested(levels: int, leaf=0):
    """A list ``levels`` deep around ``leaf`` (built without recursion)."""
    v = leaf
    for _ in range(levels):
        v = [v]
    return v


def problems_of(doc) -> list[str]:
    with pytest.raises(CaseloadError) as ei:
        parse_caseload(doc)
    return ei.value.problems


# ------------------------------------------------------------------ the antimeridian

def square_across(lon_w: float, lon_e: float, lat: float = -17.0, d: float = 0.01) -> dict:
    return {"type": "Polygon", "coordinates": [[[lon_w, lat - d], [lon_e, lat - d], [lon_e, lat + d],
                                                [lon_w, lat + d], [lon_w, lat - d]]]}


@pytest.mark.parametrize("geometry", [
    square_across(179.9, -179.9),                                   # drawn across ±180°
    {"type": "MultiPolygon", "coordinates": [square_across(-179.99, 179.99)["coordinates"]]},
])
def test_a_polygon_across_the_antimeridian_is_refused_naming_the_zone(geometry):
    doc = caseload_doc()
    doc["zones"]["features"][1]["geometry"] = geometry
    [p] = problems_of(doc)
    assert p.startswith(f"zone Z-EXCL: {ANTIMERIDIAN}")


@pytest.mark.parametrize("lon, radius, refused", [
    (179.999, 500, True), (-179.9995, 100, True),      # reaches past ±180°
    (179.99, 500, False), (-179.99, 1000, False),       # 1.06 km and 1.06 km from it at 17° S
])
def test_a_circle_reaching_past_180_degrees_is_refused(lon, radius, refused):
    doc = caseload_doc()
    doc["zones"]["features"][0]["geometry"]["coordinates"] = [lon, -17.0]
    doc["zones"]["features"][0]["properties"]["radius_m"] = radius
    if refused:
        [p] = problems_of(doc)
        assert p.startswith(f"zone Z-HOME: {ANTIMERIDIAN} (the circle reaches")
    else:
        parse_caseload(doc)


def test_a_circle_over_a_pole_is_refused():
    doc = caseload_doc()
    doc["zones"]["features"][0]["geometry"]["coordinates"] = [10.0, 89.9995]
    doc["zones"]["features"][0]["properties"]["radius_m"] = 100
    assert problems_of(doc) == ["zone Z-HOME: reaches a pole: not supported"]


def test_a_live_zone_edit_across_the_antimeridian_is_refused_and_changes_nothing():
    eng = Engine(caseload())
    before = eng.zone_versions.get("Z-EXCL"), eng.caseload.zones["Z-EXCL"].geometry
    edit = {"type": "Feature", "id": "Z-EXCL", "properties": {"name": "Victim's street"},
            "geometry": square_across(179.9, -179.9)}
    with pytest.raises(CaseloadError, match="zone Z-EXCL: crosses the antimeridian"):
        eng.update_zone(edit)
    circle = {"type": "Feature", "id": "Z-NEW", "properties": {"name": "Across", "radius_m": 800},
              "geometry": {"type": "Point", "coordinates": [-179.999, -17.0]}}
    with pytest.raises(CaseloadError, match="zone Z-NEW: crosses the antimeridian"):
        eng.update_zone(circle)
    assert (eng.zone_versions.get("Z-EXCL"), eng.caseload.zones["Z-EXCL"].geometry) == before
    assert "Z-NEW" not in eng.caseload.zones
    # a live edit nested too deeply is refused the same way as a file
    deep = dict(edit, geometry=square_across(-0.06, -0.05, 51.545, 0.001),
                properties={"name": "x", "notes": nested(MAX_DEPTH)})
    with pytest.raises(CaseloadError, match="nested more than 32 levels deep"):
        eng.update_zone(deep)


def fiji_caseload() -> dict:
    """Two exclusion zones 2 km apart, one each side of the antimeridian (neither crosses)."""
    def circle(zid, lon):
        return {"type": "Feature", "id": zid, "properties": {"name": zid, "radius_m": 300},
                "geometry": {"type": "Point", "coordinates": [lon, -17.0]}}

    def offender(n, zid):
        return {"id": f"OFF-{n}", "name": f"Subject {n}", "risk": "high", "borough": "Suva",
                "device": f"TAG-{n}", "fix_interval_s": 60,
                "requirements": [{"id": f"R-{n}", "type": "exclusion", "zone": zid, "schedule": None}]}
    return {"version": 1, "tz": "Pacific/Fiji",
            "zones": {"type": "FeatureCollection",
                      "features": [circle("Z-WEST", 179.99), circle("Z-EAST", -179.99)]},
            "offenders": [offender(1, "Z-WEST"), offender(2, "Z-EAST")]}


def test_zones_either_side_of_the_antimeridian_both_alert():
    eng = Engine(parse_caseload(fiji_caseload()))
    t0 = parse_time("2026-11-27T10:00:00Z")
    seq = {"TAG-1": 0, "TAG-2": 0}
    for k in range(15):                  # 15 minutes inside each zone, 10 m from its centre
        t = t0 + 60 * k
        for dev, lon in (("TAG-1", 179.9901), ("TAG-2", -179.9901)):
            eng.submit(orjson.dumps({"v": 1, "kind": "fix", "device": dev, "seq": seq[dev],
                                     "t": fmt_time(t), "rx": fmt_time(t + 1), "lat": -17.0,
                                     "lon": lon, "acc": 10, "src": "gps"}))
            seq[dev] += 1
    eng.flush()
    got = sorted(a.offender for a in eng.alerts.values() if a.type == "exclusion_entered")
    assert got == ["OFF-1", "OFF-2"]


# ------------------------------------------------------------------ nesting

def test_nesting_up_to_the_limit_is_accepted_and_one_level_more_is_refused_with_its_place():
    doc = caseload_doc()
    # the document (1), offenders (2), the offender (3), "notes" (4 .. 32 for 29 lists)
    doc["offenders"][1]["notes"] = nested(MAX_DEPTH - 3, "x")
    parse_caseload(doc)
    doc["offenders"][1]["notes"] = nested(MAX_DEPTH - 2, "x")
    [p] = problems_of(doc)
    assert p.startswith("offenders[1].notes[0]") and "nested more than 32 levels deep" in p


@pytest.mark.parametrize("place, put", [
    ("zones.features[0].properties.history", lambda d, v: d["zones"]["features"][0]["properties"].update(history=v)),
    ("zones.features[1].geometry.bbox", lambda d, v: d["zones"]["features"][1]["geometry"].update(bbox=v)),
    ("offenders[0].requirements[0].schedule", lambda d, v: d["offenders"][0]["requirements"][0].update(schedule=v)),
    ("extra", lambda d, v: d.update(extra=v)),
])
def test_deep_nesting_anywhere_is_one_problem_naming_where(place, put):
    doc = caseload_doc()
    put(doc, nested(5000))       # deeper than Python's recursion limit, yet no RecursionError
    [p] = problems_of(doc)
    assert p.startswith(place) and "nested more than 32 levels deep" in p


def test_zone_coordinates_nested_deeper_than_a_position_are_refused():
    doc = caseload_doc()
    doc["zones"]["features"][1]["geometry"]["coordinates"][0][1] = nested(5000)
    [p] = problems_of(doc)
    assert p.startswith("zone Z-EXCL: position [[") and "is not [lon, lat]" in p and len(p) < 120
    doc = caseload_doc()
    doc["zones"]["features"][0]["geometry"]["coordinates"] = [-0.05, 51.5, nested(5000)]
    assert problems_of(doc) == ["zone Z-HOME: a Point needs [lon, lat] within ±180/±90"]


# ------------------------------------------------------------------ files

def deep_files(tmp_path) -> dict:
    example = json.loads((EXAMPLES / "caseload.json").read_text())
    example["offenders"][0]["notes"] = "NOTES"
    inside = json.dumps(example).replace('"NOTES"', "[" * 200_000 + "]" * 200_000)
    files = {"deep_zones.json": '{"zones": ' + "[" * 200_000,
             "deep_field.json": inside,
             "deep_parseable.json": json.dumps(dict(example, notes=nested(500)))}
    out = {}
    for name, text in files.items():
        out[name] = tmp_path / name
        out[name].write_text(text)
    return out


def test_load_caseload_names_the_file_and_the_problem_in_one_line(tmp_path):
    files = deep_files(tmp_path)
    cases = {files["deep_zones.json"]: "is nested too deeply to read",
             files["deep_field.json"]: "is nested too deeply to read",
             files["deep_parseable.json"]: "notes[0][0]"}
    (tmp_path / "latin1.json").write_bytes(b'{"version": 1, "tz": "Europe/Londr\xe9s"}')
    cases[tmp_path / "latin1.json"] = "is not UTF-8 text (byte 0xe9 at offset 34)"
    (tmp_path / "empty.json").write_bytes(b" \n")
    cases[tmp_path / "empty.json"] = "is empty"
    cases[tmp_path] = "cannot be read (Is a directory)"
    for path, words in cases.items():
        with pytest.raises(CaseloadError) as ei:
            load_caseload(path)
        line = str(ei.value)
        assert line.startswith(f"{path}: ") and words in line and "\n" not in line, line
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + (EXAMPLES / "caseload.json").read_bytes())
    assert set(load_caseload(bom).by_device) == {"TAG-01001", "TAG-01002", "TAG-01003"}


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "monitorapp", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_every_command_that_reads_a_caseload_refuses_a_deep_one_in_one_line(tmp_path):
    files = deep_files(tmp_path)
    sock = tmp_path / "caseload.sock"      # a path nobody can read, root included
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    try:
        for path in [*files.values(), sock]:
            runs = {
                "replay": run_cli("replay", "--caseload", str(path), "--feed", str(EXAMPLES / "feed.ndjson"),
                                  "--out", str(tmp_path / "alerts.ndjson")),
                "simulate": run_cli("simulate", "--caseload", str(path), "--out", str(tmp_path / "f.ndjson"),
                                    "--hours", "0.1"),
                "monitor": run_cli("monitor", "--broker", "mqtt://127.0.0.1:1", "--caseload", str(path),
                                   "--db", str(tmp_path / "monitor.sqlite")),
            }
            for name, r in runs.items():
                assert r.returncode == 2, (name, path.name, r.stderr[-1500:])
                lines = r.stderr.strip().splitlines()
                assert len(lines) == 1 and lines[0].startswith(f"monitorapp {name}: {path}"), (name, lines)
                assert "Traceback" not in r.stderr
    finally:
        server.close()
    assert not (tmp_path / "alerts.ndjson").exists() and not (tmp_path / "f.ndjson").exists()


def test_the_desktop_application_refuses_a_deep_caseload_in_one_line(tmp_path):
    db = tmp_path / "monitor.sqlite"
    store = Store(db)
    Accounts(store).create_first_admin("admin", "correct horse battery staple 42")
    store.close()
    pw = tmp_path / "pw.txt"
    pw.write_text("correct horse battery staple 42\n")
    deep = deep_files(tmp_path)["deep_field.json"]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), "--broker", "mqtt://127.0.0.1:1",
                        "--caseload", str(deep), "--db", str(db), "--user", "admin",
                        "--password-file", str(pw), "--quit-after", "5"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = [x for x in r.stderr.strip().splitlines() if x.startswith("main.py")]
    assert lines == [f"main.py: cannot start: {deep}: is nested too deeply to read "
                     f"(a caseload is at most {MAX_DEPTH} levels of arrays and objects)"], r.stderr[-2000:]
    assert "Traceback" not in r.stderr
