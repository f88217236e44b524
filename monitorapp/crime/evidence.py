"""Evidential exports of a crime-mapping answer (spec §5): the digest, GeoJSON and CSV.

A crime-mapping answer (``monitorapp.crime.query.crime_check``: ``{"query", "results"}``) is what
an evidential report rests on. ``data_digest(answer)`` is the SHA-256 of its canonical JSON
(keys sorted, no whitespace, UTF-8): anyone holding the GeoJSON export can recompute it (the
export carries the answer unchanged under ``"evidence"``) and compare it with the digest printed
on the PDF and written to the audit log. ``write_geojson`` and ``write_csv`` write the exports;
``export`` writes one and records it (who, what, where, the reference and the digest) in the
store's hash-chained audit log. The evidential PDF (``write_pdf`` for one answer,
``write_batch_pdf`` for a batch's hits report) is drawn by ``monitorapp.crime.evidencepdf``
without Qt, so the command line writes the same document as the application.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from monitorapp.crime.answer import (INVOLVED, VERDICT_TEXT, EvidenceError, canonical, check_answer,
                                     data_digest, digest_of)
from monitorapp.crime.evidencepdf import write_batch_pdf, write_pdf

__all__ = ["INVOLVED", "VERDICT_TEXT", "EvidenceError", "canonical", "data_digest", "digest_of",
           "write_pdf", "write_batch_pdf", "to_geojson", "write_geojson", "write_csv", "export",
           "audit_export", "summary_lines"]
CSV_FIELDS = ("offender", "device", "verdict", "closest_m", "closest_at", "closest_acc_m",
              "fixes_near", "gaps", "basis")
FIX_CSV_FIELDS = ("offender", "device", "t", "lat", "lon", "acc", "distance_m", "in_window",
                  "inside", "jump")
_check = check_answer


def to_geojson(answer: dict) -> dict:
    """The scene (a Point with its radius), every fix near it (Points) and the answer itself."""
    _check(answer)
    q = answer["query"]
    feats = [{"type": "Feature", "id": "scene",
              "geometry": {"type": "Point", "coordinates": [q["lon"], q["lat"]]},
              "properties": {"role": "scene", "radius_m": q["radius_m"], "from": q["from"],
                             "to": q["to"], "ref": q["ref"]}}]
    for r in answer["results"]:
        for k, f in enumerate(r.get("fixes") or []):
            feats.append({"type": "Feature", "id": f"{r['device']}-{k}",
                          "geometry": {"type": "Point", "coordinates": [f["lon"], f["lat"]]},
                          "properties": {"role": "fix", "offender": r["offender"],
                                         "device": r["device"], "verdict": r["verdict"],
                                         **{k2: f[k2] for k2 in ("t", "acc", "distance_m",
                                                                 "in_window", "inside", "jump")
                                            if k2 in f}}})
    return {"type": "FeatureCollection", "features": feats,
            "sha256": data_digest(answer), "evidence": {"query": q, "results": answer["results"]}}


def write_geojson(path, answer: dict) -> str:
    doc = to_geojson(answer)
    _write_text(path, json.dumps(doc, indent=1, ensure_ascii=False))
    return doc["sha256"]


def write_csv(path, answer: dict, fixes_path=None) -> str:
    """One row per offender (or tag) with the verdict; with ``fixes_path`` also the fixes."""
    _check(answer)
    try:
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            w.writeheader()
            for r in answer["results"]:
                w.writerow({"offender": r["offender"] or "", "device": r["device"],
                            "verdict": r["verdict"],
                            "closest_m": "" if r["closest_m"] is None else r["closest_m"],
                            "closest_at": r["closest_at"] or "",
                            "closest_acc_m": "" if r.get("closest_acc_m") is None else r["closest_acc_m"],
                            "fixes_near": len(r.get("fixes") or []), "gaps": len(r.get("gaps") or []),
                            "basis": "; ".join(r.get("basis") or [])})
        if fixes_path is not None:
            with open(fixes_path, "w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, fieldnames=FIX_CSV_FIELDS, extrasaction="ignore")
                w.writeheader()
                for r in answer["results"]:
                    for fx in r.get("fixes") or []:
                        w.writerow({"offender": r["offender"] or "", "device": r["device"], **fx})
    except OSError as e:
        raise EvidenceError(f"{path}: cannot write the export: {e.strerror}") from None
    return data_digest(answer)


def _write_text(path, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        raise EvidenceError(f"{path}: cannot write the export: {e.strerror}") from None


def audit_export(store, who: str, kind: str, path, answer: dict, digest: str | None = None) -> dict:
    """Record an export in the audit log: who, which kind, where, the query's ref, the digest."""
    q = answer["query"]
    return store.audit(who, "evidence_export", {
        "kind": kind, "path": os.fspath(path), "ref": q.get("ref"), "reason": q.get("reason"),
        "asked_at": q.get("asked_at"), "results": len(answer["results"]),
        "sha256": digest or data_digest(answer)})


def export(store, who: str, kind: str, path, answer: dict) -> str:
    """Write a GeoJSON, CSV or PDF export and audit it; returns the data's SHA-256."""
    if kind == "geojson":
        digest = write_geojson(path, answer)
    elif kind == "csv":
        digest = write_csv(path, answer)
    elif kind == "pdf":
        digest = write_pdf(path, answer, who, produced_at=store.clock() if hasattr(store, "clock") else None)
    else:
        raise EvidenceError(f"unknown export kind {kind!r}; geojson, csv or pdf")
    audit_export(store, who, kind, path, answer, digest)
    return digest


def summary_lines(answer: dict) -> list[tuple[str, str]]:
    """(label, value) lines describing the query, for the report's header table."""
    q = answer["query"]
    return [("Reference", q["ref"]), ("Reason", q["reason"]), ("Asked by", q["who"]),
            ("Asked at", q.get("asked_at", "")),
            ("Place", f"{q['lat']:.6f}, {q['lon']:.6f} (WGS84)"),
            ("Radius", f"{q['radius_m']:.0f} m"), ("Window", f"{q['from']} to {q['to']}"),
            ("Speed bound", f"{q.get('speed_ms', 15.0):g} m/s (space-time prisms between fixes)"),
            ("Results", ", ".join(f"{sum(1 for r in answer['results'] if r['verdict'] == v)} "
                                  f"{VERDICT_TEXT[v]}" for v in VERDICT_TEXT))]
