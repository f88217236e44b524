"""Addresses in the crime-mapping PDF: the scene and each person's closest fix are named by
street and borough (the shipped OSM data), read back from the real PDF with pdftotext; the
digest is the data's, addresses or not."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from monitorapp.crime.evidence import data_digest
from monitorapp.places import Places
from ui.views.report import addresses, closest_fix, write_pdf


def answer() -> dict:
    fixes = [
        {"t": "2026-11-18T21:05:00Z", "seq": 1, "lat": 51.5445, "lon": -0.1405, "acc": 8.0,
         "distance_m": 700.0, "in_window": False},
        {"t": "2026-11-18T21:10:00Z", "seq": 2, "lat": 51.5390, "lon": -0.1426, "acc": 6.0,
         "distance_m": 12.0, "in_window": True},
    ]
    far = [{"t": "2026-11-18T21:10:00Z", "seq": 9, "lat": 51.5445, "lon": -0.1405, "acc": 5.0,
            "distance_m": 690.0, "in_window": True}]
    return {
        "query": {"ref": "CAD-1234", "reason": "burglary", "who": "pa.khan", "asked_at": "2026-11-19T08:00:00Z",
                  "lat": 51.5391, "lon": -0.1427, "radius_m": 100.0, "from": "2026-11-18T21:00:00Z",
                  "to": "2026-11-18T21:20:00Z", "margin_s": 600},
        "results": [
            {"offender": "OFF-1", "device": "TAG-1", "verdict": "present", "closest_m": 12.0,
             "closest_at": "2026-11-18T21:10:00Z", "closest_acc_m": 6.0, "basis": ["fix in window"],
             "fixes": fixes, "segments": []},
            {"offender": "OFF-2", "device": "TAG-2", "verdict": "not_present", "closest_m": 690.0,
             "closest_at": "2026-11-18T21:10:00Z", "closest_acc_m": 5.0, "basis": ["continuous data"],
             "fixes": far, "segments": []},
            {"offender": None, "device": "TAG-3", "verdict": "no_data", "closest_m": None,
             "closest_at": None, "closest_acc_m": None, "basis": [], "fixes": [], "segments": []},
        ],
    }


def test_scene_and_closest_fixes_are_named_by_street():
    a = answer()
    assert closest_fix(a["results"][0])["seq"] == 2
    scene, near = addresses(a, Places.shipped())
    assert scene == "Camden High Street, Camden"
    assert near == ["Camden High Street, Camden", "Royal College Street, Camden", ""]
    assert addresses(a, None) == ("", ["", "", ""])


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils (pdftotext) not installed")
def test_pdf_prints_the_addresses(qapp, tmp_path):
    a = answer()
    digest_before = data_digest(a)
    path = tmp_path / "report.pdf"
    assert write_pdf(path, a, "pa.khan", places=Places.shipped(), produced_at=1_795_100_000.0) == digest_before
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          timeout=60, check=True).stdout
    flat = " ".join(text.split())
    assert "Scene address Camden High Street, Camden (nearest named street, from OpenStreetMap data)" in flat
    assert "Street (closest" in flat
    assert flat.count("Camden High") >= 2            # the scene and OFF-1's closest fix
    # OFF-2 (not present) is not named, nor where it was: data minimisation
    assert "Royal College" not in flat and "OFF-2" not in flat and "TAG-2" not in flat
    assert data_digest(a) == digest_before           # the answer itself is untouched
