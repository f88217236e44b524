"""A crime-mapping answer as a document: its canonical JSON, its SHA-256 and the verdicts' words.

``data_digest(answer)`` is the SHA-256 of the canonical JSON of ``{"query", "results"}`` (keys
sorted, no whitespace, UTF-8), what the GeoJSON export carries under ``"evidence"`` and the PDF
prints. ``digest_of(obj)`` is the same for any JSON document (a batch report, one hit of it).
Kept apart from the exports so that the PDF writer and the exports can both use it.
"""
from __future__ import annotations

import hashlib
import json

VERDICT_TEXT = {"present": "PRESENT", "possible": "POSSIBLE", "not_present": "not present",
                "no_data": "no data"}
INVOLVED = ("present", "possible")        # the verdicts that place a person at or near a scene


class EvidenceError(ValueError):
    """An export that cannot be made (not a crime-mapping answer, unwritable path)."""


def check_answer(answer) -> None:
    if not isinstance(answer, dict) or not isinstance(answer.get("query"), dict) \
            or not isinstance(answer.get("results"), list):
        raise EvidenceError("an evidential export needs a crime-mapping answer {query, results}")


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def canonical(answer: dict) -> bytes:
    check_answer(answer)
    return canonical_json({"query": answer["query"], "results": answer["results"]})


def data_digest(answer: dict) -> str:
    """SHA-256 (hex) of the answer's canonical JSON."""
    return hashlib.sha256(canonical(answer)).hexdigest()


def digest_of(obj) -> str:
    """SHA-256 (hex) of any JSON document's canonical form."""
    return hashlib.sha256(canonical_json(obj)).hexdigest()
