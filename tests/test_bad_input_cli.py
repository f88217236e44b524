"""Every ``monitorapp`` command meets hostile arguments with one line on stderr and exit
status 2 (issue 13, part E; spec §7): missing files, directories, files nobody can read (a
Unix socket: not even root opens it), files that are not UTF-8, empty files, numbers out of
range, times outside the feed's bounds. The commands run as the program runs them: through
``monitorapp.cli.main`` in this process, and as subprocesses of ``python -m monitorapp``."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from localdb.store import Store
from monitorapp import cli
from monitorapp.feed.timeutil import fmt_time
from tests.conftest import EXAMPLES, ROOT
from tests.fixtures_store import PLACE_LAT, PLACE_LON, T0, TrackWriter

CASELOAD = str(EXAMPLES / "caseload.json")
FEED = str(EXAMPLES / "feed.ndjson")


@pytest.fixture
def hostile(tmp_path):
    """Paths that are wrong in each way a user can get a path wrong."""
    d = tmp_path / "hostile"
    d.mkdir()
    (d / "a_directory").mkdir()
    (d / "not_utf8.json").write_bytes(b'{"version": 1, "tz": "\xff\xfe Europe/London"}')
    (d / "empty.json").write_bytes(b"")
    (d / "plain.txt").write_text("hello\n")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(d / "a_socket"))
    paths = {"missing": d / "missing.json", "directory": d / "a_directory", "socket": d / "a_socket",
             "not_utf8": d / "not_utf8.json", "empty": d / "empty.json",
             "under_a_file": d / "plain.txt" / "x.json"}
    if os.geteuid() != 0:          # root reads any file whatever its mode; the socket covers it
        (d / "unreadable.json").write_text("{}")
        (d / "unreadable.json").chmod(0)
        paths["unreadable"] = d / "unreadable.json"
    yield paths
    server.close()


def one_line(capsys_or_result, prog: str, *words: str) -> str:
    err = capsys_or_result.stderr if hasattr(capsys_or_result, "stderr") else capsys_or_result.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err[-2000:]
    assert lines[0].startswith(prog + ":"), lines
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "monitorapp", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------ replay and simulate

@pytest.mark.parametrize("kind", ["missing", "directory", "socket", "not_utf8", "empty", "under_a_file",
                                  "unreadable"])
def test_replay_and_simulate_refuse_a_bad_caseload_file_in_one_line(hostile, kind, tmp_path, capsys):
    if kind not in hostile:
        pytest.skip("running as root: every file is readable")
    path = hostile[kind]
    out = tmp_path / "alerts.ndjson"
    assert cli.main(["replay", "--caseload", str(path), "--feed", FEED, "--out", str(out)]) == 2
    one_line(capsys, "monitorapp replay", str(path))
    assert cli.main(["simulate", "--caseload", str(path), "--out", str(out), "--hours", "0.1"]) == 2
    one_line(capsys, "monitorapp simulate", str(path))
    assert not out.exists()


@pytest.mark.parametrize("option, kind", [
    *[("--feed", k) for k in ("missing", "directory", "socket", "under_a_file")],
    *[("--out", k) for k in ("directory", "socket", "under_a_file")],
    *[("--db", k) for k in ("directory", "socket", "under_a_file", "not_utf8")],
])
def test_replay_refuses_a_bad_feed_output_or_store_in_one_line(hostile, kind, option, tmp_path, capsys):
    args = {"--caseload": CASELOAD, "--feed": FEED, "--out": str(tmp_path / "alerts.ndjson")}
    args[option] = str(hostile[kind])
    argv = ["replay"] + [x for kv in args.items() for x in kv]
    assert cli.main(argv) == 2
    one_line(capsys, "monitorapp replay", str(hostile[kind]))


@pytest.mark.parametrize("args, words", [
    (["--hours", "nan"], "--hours"), (["--hours", "-1"], "--hours"), (["--hours", "1e9"], "--hours"),
    (["--start", "9999-12-31T23:00:00Z", "--hours", "2"], "2100-01-01"),
    (["--start", "10000-01-01T00:00:00Z"], "--start"),
    (["--tags", "-5"], "--tags"), (["--speed", "nan"], "--speed"),
])
def test_simulate_refuses_arguments_out_of_range_in_one_line(args, words, tmp_path, capsys):
    out = tmp_path / "feed.ndjson"
    assert cli.main(["simulate", "--caseload", "demo", "--out", str(out), *args]) == 2
    one_line(capsys, "monitorapp simulate", words)
    assert not out.exists()


def test_simulate_refuses_an_unwritable_demo_caseload_or_output(hostile, tmp_path, capsys):
    out = tmp_path / "feed.ndjson"
    assert cli.main(["simulate", "--write-demo-caseload", str(hostile["directory"]), "--tags", "2",
                     "--out", str(out), "--hours", "0.1"]) == 2
    one_line(capsys, "monitorapp simulate", str(hostile["directory"]))
    assert cli.main(["simulate", "--caseload", CASELOAD, "--out", str(hostile["under_a_file"]),
                     "--hours", "0.1"]) == 2
    one_line(capsys, "monitorapp simulate", str(hostile["under_a_file"]))


# ------------------------------------------------------------------ monitor (a subprocess: it sets up logging)

def test_monitor_refuses_bad_files_before_it_connects(hostile, tmp_path):
    db = tmp_path / "monitor.sqlite"
    base = ["monitor", "--broker", "mqtt://127.0.0.1:1", "--caseload", CASELOAD, "--db", db]
    cases = [
        (["monitor", "--broker", "mqtt://127.0.0.1:1", "--caseload", hostile["not_utf8"], "--db", db],
         "is not UTF-8 text"),
        (["monitor", "--broker", "mqtt://127.0.0.1:1", "--caseload", hostile["socket"], "--db", db],
         "cannot be read"),
        (base + ["--username", "u", "--password-file", hostile["not_utf8"]], "not UTF-8 text"),
        (base + ["--username", "u", "--password-file", hostile["directory"]], "password file"),
        (["monitor", "--broker", "mqtts://127.0.0.1:1", "--caseload", CASELOAD, "--db", db,
          "--ca", hostile["under_a_file"].parent],            # a text file, not a certificate
         "TLS files could not be loaded"),
        (["monitor", "--broker", "mqtt://127.0.0.1:1", "--caseload", CASELOAD, "--db", hostile["directory"]],
         "directory"),
        (base + ["--alerts-out", hostile["directory"]], "Is a directory"),
    ]
    for argv, words in cases:
        r = run_cli(*argv, timeout=60)
        assert r.returncode == 2, (argv, r.stderr[-2000:])
        one_line(r, "monitorapp monitor", words)


# ------------------------------------------------------------------ crimecheck

@pytest.fixture
def db(store_path):
    with Store(store_path) as s:
        TrackWriter(s).line("TAG-A", T0, T0 + 3600, 60, (-1000.0, 0.0), (1000.0, 0.0))
    return store_path


def crimecheck(db, **over):
    a = {"--db": str(db), "--lat": str(PLACE_LAT), "--lon": str(PLACE_LON), "--radius-m": "150",
         "--from": fmt_time(T0), "--to": fmt_time(T0 + 3600), "--ref": "CAD 1/26", "--reason": "burglary",
         "--operator": "dc.jones"}
    a.update(over)
    return ["crimecheck"] + [x for k, v in a.items() if v is not None for x in (k, v)]


@pytest.mark.parametrize("over, words", [
    ({"--from": "9999-12-31T23:00:00Z", "--to": "10000-01-01T01:00:00Z"}, "from: '9999-12-31T23:00:00Z' is outside"),
    ({"--to": "10000-01-01T01:00:00Z"}, "to: "),
    ({"--from": "9999-12-31T22:00:00Z", "--to": "9999-12-31T23:30:00-01:00"}, "outside 2000-01-01"),
    ({"--from": "0001-01-01T00:00:00+01:00", "--to": "0001-01-01T01:00:00Z"}, "outside 2000-01-01"),
    ({"--to": "half past ten"}, "to: not an RFC 3339 time"),
    ({"--to": "2026-02-30T10:00:00Z"}, "to:"),
    ({"--from": fmt_time(T0 + 7200)}, "--to after --from"),
    ({"--radius-m": "0"}, "radius"), ({"--radius-m": "-3"}, "radius"), ({"--radius-m": "nan"}, "radius"),
    ({"--radius-m": "1e308"}, "radius"), ({"--radius-m": "-inf"}, "radius"),
    ({"--lat": "90.5"}, "lat must be"), ({"--lat": "nan"}, "lat must be"), ({"--lon": "-181"}, "lon must be"),
    ({"--lon": "inf"}, "lon must be"), ({"--lat": "north"}, "invalid float value: 'north'"),
    ({"--to": None}, "--to"),
])
def test_crimecheck_refuses_a_bad_query_in_one_line_and_audits_nothing(db, over, words, capsys):
    assert cli.main(crimecheck(db, **over)) == 2
    one_line(capsys, "monitorapp crimecheck", words)
    with Store(db) as s:
        assert not [r for r in s.audit_log() if r["action"] == "crime_query"]


def test_crimecheck_at_the_edges_of_the_bounds_answers(db, capsys):
    assert cli.main(crimecheck(db, **{"--from": "2099-12-31T23:00:00Z", "--to": "2100-01-01T00:00:00Z"})) == 0
    assert '"results": []' in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["missing", "directory", "socket", "not_utf8", "empty", "under_a_file"])
def test_crimecheck_and_verify_log_refuse_a_bad_store_in_one_line(hostile, kind, capsys):
    path = hostile[kind]
    assert cli.main(crimecheck(path)) == 2
    one_line(capsys, "monitorapp crimecheck", str(path))
    assert cli.main(["verify-log", "--db", str(path)]) == 2
    one_line(capsys, "monitorapp verify-log", str(path))
    assert not path.exists() or path.stat().st_size == hostile[kind].stat().st_size


# ------------------------------------------------------------------ the command itself

def test_no_command_or_an_unknown_one_is_one_line(capsys):
    assert cli.main([]) == 2
    one_line(capsys, "monitorapp", "give a command", "replay")
    assert cli.main(["reply"]) == 2
    one_line(capsys, "monitorapp", "unknown command 'reply'", "crimecheck")
    assert cli.main(["--help"]) == 0
    assert "commands:" in capsys.readouterr().out


def test_an_unexpected_error_is_still_one_line_naming_where():
    from monitorapp.feed.timeutil import fmt_time as fmt
    try:
        fmt(1e20)                   # a real failure of our own code, as a sub-command could meet it
    except Exception as e:          # noqa: BLE001
        line = cli.internal_error_line("monitorapp replay", e)
    else:
        pytest.fail("fmt_time(1e20) no longer raises: pick another real failure")
    assert line.startswith("monitorapp replay: internal error: ")
    assert "(at feed/timeutil.py:" in line and "\n" not in line


def test_end_to_end_each_command_says_one_line(hostile, tmp_path, db):
    """The installed command, as a user runs it (a subprocess per command)."""
    runs = {
        "replay": run_cli("replay", "--caseload", hostile["empty"], "--feed", FEED, "--out", tmp_path / "a"),
        "simulate": run_cli("simulate", "--caseload", hostile["directory"], "--out", tmp_path / "f"),
        "crimecheck": run_cli(*crimecheck(db, **{"--to": "10000-01-01T01:00:00Z"})),
        "verify-log": run_cli("verify-log", "--db", hostile["not_utf8"]),
    }
    for name, r in runs.items():
        assert r.returncode == 2, (name, r.stderr[-2000:])
        one_line(r, f"monitorapp {name}")
    r = run_cli("bogus")
    assert r.returncode == 2
    one_line(r, "monitorapp", "unknown command")
