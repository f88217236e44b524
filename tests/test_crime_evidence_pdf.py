"""The evidential PDF read back as a police officer would read it (pdftotext, pdftoppm): only
the people placed at or near the scene are named (the others are a count), every page says
"page x of y", times are local with their offset and UTC, tag ids are whole, each hit has its
reason, its map and its digest, and the certificate closes the report. The batch PDF: the
summary tables first, then one section per hit."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from localdb.store import Store
from monitorapp.crime.batch import run_batch
from monitorapp.crime.evidence import data_digest, digest_of, write_batch_pdf, write_pdf
from monitorapp.crime.evidencepdf import both_times, local_time
from monitorapp.crime.query import crime_check
from tests.fixtures_store import PLACE_LAT, PLACE_LON, T0, TrackWriter, lonlat

pytestmark = pytest.mark.skipif(not (shutil.which("pdftotext") and shutil.which("pdftoppm")),
                                reason="poppler-utils (pdftotext, pdftoppm) not installed")

DEVICES = {"OFF-WALKER": "TAG-0108-WALKER", "OFF-WAITER": "TAG-0109-WAITER",
           "OFF-FARAWAY": "TAG-0110-FARAWAY", "OFF-ELSEWHERE": "TAG-0111-ELSEWHERE"}
UNINVOLVED = ("OFF-FARAWAY", "TAG-0110-FARAWAY", "OFF-ELSEWHERE", "TAG-0111-ELSEWHERE")


@pytest.fixture
def scene(tmp_path):
    store = Store(tmp_path / "pdf.sqlite")
    store.record_caseload({"version": 1, "tz": "Europe/London",
                           "zones": {"type": "FeatureCollection", "features": []},
                           "offenders": [{"id": o, "name": f"Person {o}", "risk": "high", "borough": "City",
                                          "device": d, "requirements": []} for o, d in DEVICES.items()]})
    w = TrackWriter(store)
    w.line("TAG-0108-WALKER", T0 - 1800, T0 + 5400, 60, (-3000, 0), (3000, 0))        # present
    w.line("TAG-0109-WAITER", T0 - 600, T0 + 4200, 120, (150, 0), (150, 0), acc=80)   # possible
    w.line("TAG-0110-FARAWAY", T0 - 600, T0 + 4200, 60, (9000, 0), (9000, 100))       # not present
    w.line("TAG-0111-ELSEWHERE", T0 - 600, T0 + 4200, 60, (-9000, 0), (-9000, 100))   # not present
    store.flush()
    yield store
    store.close()


def pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def pages_of(path) -> list[str]:
    return pdf_text(path).split("\f")[:-1]


def check_pages(path, title_part: str) -> list[str]:
    pages = pages_of(path)
    n = len(pages)
    assert n >= 2
    for i, page in enumerate(pages, 1):
        assert re.search(rf"page {i} of {n}\s*$", page.rstrip()), page[-200:]
        assert title_part in page
    return pages


def test_single_incident_report(scene, tmp_path):
    answer = crime_check(scene, PLACE_LAT, PLACE_LON, 100.0, T0, T0 + 3600, "MET/2026/0415",
                         "Burglary at the jeweller's", "dc.smith")
    verdicts = {r["offender"]: r["verdict"] for r in answer["results"]}
    assert verdicts["OFF-WALKER"] == "present" and verdicts["OFF-WAITER"] == "possible"
    assert verdicts["OFF-FARAWAY"] == verdicts["OFF-ELSEWHERE"] == "not_present"
    path = tmp_path / "report.pdf"
    digest = write_pdf(path, answer, "pa.khan", produced_at=T0 + 86400)
    assert digest == data_digest(answer)
    pages = check_pages(path, "Crime mapping report MET/2026/0415")
    text = "\f".join(pages)
    flat = " ".join(text.split())
    # data minimisation: the two uninvolved people are a count, never an id or a distance
    for word in UNINVOLVED:
        assert word not in text
    assert "2 other tagged people whose data touches the window were not placed" in flat
    # whole tag ids (not clipped), each hit with its reason and its own digest
    for off, dev in (("OFF-WALKER", "TAG-0108-WALKER"), ("OFF-WAITER", "TAG-0109-WAITER")):
        assert dev in flat and off in flat
        hit = next(r for r in answer["results"] if r["device"] == dev)
        assert digest_of({"query": answer["query"], "result": hit}) in "".join(text.split())
        assert hit["reason"].split(" at ")[0] in flat
    assert "Hit 1 of 2" in flat and "Hit 2 of 2" in flat
    # times: local with the offset, and UTC (March: GMT, +00:00)
    assert "2026-03-10 12:00:00 GMT+00:00 (UTC 2026-03-10 12:00:00Z)" in flat
    # the certificate, with who ran the query, the reference, the reason and the digest
    cert = flat[flat.index("Certificate"):]
    assert "dc.smith" in cert and "pa.khan" in cert and "MET/2026/0415" in cert and "jeweller" in cert
    assert digest in "".join(cert.split()) and "Signature" in cert
    # the map page renders, and it carries the scene's label (drawn, not grabbed: nothing of the live map)
    assert "Scene, radius 100 m" in flat
    for word in ("APPOINTMENT", "no tiles configured", "last fix", "s ago"):
        assert word not in flat
    subprocess.run(["pdftoppm", "-png", "-r", "30", "-f", "2", "-l", "2", str(path), str(tmp_path / "p")],
                   check=True, timeout=60)
    assert next(tmp_path.glob("p*.png")).stat().st_size > 3000


def test_local_time_follows_the_zone_and_summer_time():
    summer = "2026-07-01T11:30:00.000Z"
    assert local_time(summer) == "2026-07-01 12:30:00 BST+01:00"
    assert both_times(summer) == "2026-07-01 12:30:00 BST+01:00 (UTC 2026-07-01 11:30:00Z)"
    assert local_time(summer, "Asia/Shanghai") == "2026-07-01 19:30:00 CST+08:00"
    assert local_time(None) == "—"


def test_batch_report_summary_first_then_one_section_per_hit(scene, tmp_path):
    far_lon, far_lat = lonlat(9000, 0)
    incidents = [
        {"reference": "CAD-1", "lat": PLACE_LAT, "lon": PLACE_LON, "radius_m": 100.0,
         "from": T0, "to": T0 + 3600},
        {"reference": "CAD-2", "lat": far_lat, "lon": far_lon, "radius_m": 50.0, "from": T0 + 600,
         "to": T0 + 1200},
        {"reference": "CAD-3", "lat": PLACE_LAT + 0.2, "lon": PLACE_LON, "radius_m": 50.0,
         "from": T0, "to": T0 + 600},
    ]
    report = run_batch(scene, incidents, "Daily incident list 10 March", "pa.khan")
    hits = [(h["reference"], h["device"]) for h in report["hits"]]
    assert ("CAD-1", "TAG-0108-WALKER") in hits and ("CAD-2", "TAG-0110-FARAWAY") in hits
    assert not [h for h in hits if h[0] == "CAD-3"]
    path = tmp_path / "batch.pdf"
    import os
    if os.environ.get("H7_KEEP"):
        path = os.environ["H7_KEEP"]
    digest = write_batch_pdf(report, path, store=scene, produced_at=T0 + 86400)
    assert digest == digest_of(report)
    pages = check_pages(path, "Crime mapping batch")
    text = "\f".join(pages)
    flat = " ".join(text.split())
    # the summary tables come first: every incident with its hit count, then the hits
    first_hit = flat.index(f"Hit 1 of {len(hits)}:")
    assert flat.index("Incidents") < flat.index("Hits") < first_hit
    for ref in ("CAD-1", "CAD-2", "CAD-3"):
        assert ref in flat[:first_hit]
    # one section per hit, each starting its own page
    for k in range(1, len(hits) + 1):
        assert flat.count(f"Hit {k} of {len(hits)}:") == 1
        assert sum(1 for p in pages if " ".join(p.split()).startswith(f"Hit {k} of {len(hits)}:")) == 1
    # a person uninvolved in every incident is not named anywhere
    assert "TAG-0111-ELSEWHERE" not in text and "OFF-ELSEWHERE" not in text
    cert = flat[flat.index("Certificate"):]
    assert "Daily incident list 10 March" in cert and "Signature" in cert and digest in "".join(cert.split())
    exports = [r["detail"] for r in scene.audit_log() if r["action"] == "evidence_export"]
    assert exports[-1]["kind"] == "batch_pdf" and exports[-1]["sha256"] == digest
    assert exports[-1]["hits"] == len(hits)
