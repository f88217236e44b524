"""The evidential PDF of a crime-mapping answer, for the application's views.

The report is drawn by ``monitorapp.crime.evidencepdf`` (Qt-free, so ``monitorapp crimecheck
--pdf`` and the daily batch write the same document): the query, the people placed at or near
the scene (present, possible) with the reason in words, a map of each drawn from the data
(streets, fixes with their accuracy circles, the space-time prisms), the others as a count only,
times in local time with the offset and in UTC, "page x of y" and a certificate with the data's
SHA-256. This module keeps the views' entry point and the address helpers.

Addresses: the scene and each person's closest fix are named by street and borough
(``monitorapp.places``, reverse geocoding of the shipped OpenStreetMap data, offline), printed
as a reading aid marked as derived from OSM: the verdicts and the digest rest on the coordinates.
"""
from __future__ import annotations

from monitorapp.crime.evidencepdf import DEFAULT_TZ, shipped_places
from monitorapp.crime.evidencepdf import write_pdf as _write_pdf


def closest_fix(result: dict) -> dict | None:
    """The fix of a result nearest the scene (the one ``closest_m`` is measured to)."""
    fixes = [f for f in (result.get("fixes") or []) if f.get("distance_m") is not None]
    return min(fixes, key=lambda f: f["distance_m"]) if fixes else None


def addresses(answer: dict, places) -> tuple[str, list[str]]:
    """(the scene's address, each result's closest-fix address); empty strings without Places."""
    if places is None:
        return "", [""] * len(answer["results"])
    q = answer["query"]
    points = [(q["lon"], q["lat"])]
    which = []
    for i, r in enumerate(answer["results"]):
        f = closest_fix(r)
        if f is not None:
            which.append(i)
            points.append((f["lon"], f["lat"]))
    try:
        found = places.addresses([p[0] for p in points], [p[1] for p in points])
    except Exception:      # noqa: BLE001 - the report is evidence without its reading aid too
        return "", [""] * len(answer["results"])
    out = [""] * len(answer["results"])
    for i, a in zip(which, found[1:]):
        out[i] = a.describe()
    return found[0].describe(), out


def write_pdf(path, answer: dict, produced_by: str, produced_at: float | None = None, places=None,
              tz: str = DEFAULT_TZ) -> str:
    """Write the report; returns the SHA-256 of the data printed on it. ``places`` names the
    scene and the closest fixes by street (the shipped OSM data when not given)."""
    return _write_pdf(path, answer, produced_by, produced_at=produced_at,
                      places=places if places is not None else shipped_places(), tz=tz)
