"""Place search by name: streets, districts, stations, parks and boroughs, offline.

``PlaceSearch(places).search(text)`` matches the text against every name after folding case,
accents and punctuation ("st. pancras" finds "St Pancras", "camden high st" finds "Camden High
Street"), and ranks the hits:

1. the whole name equals the text; 2. the name starts with it; 3. a word of the name starts
with it; 4. the name contains it; 5. every word of the text starts a word of the name, in any
order ("high street camden" finds "Camden High Street"). Within a rank, boroughs come first,
then streets, districts, stations and parks, then shorter names, then alphabetical order.

Each hit is a ``Place(name, kind, lon, lat, borough)``: where to pan the map to. A street in
several places ("High Street") is one hit per place, told apart by its borough.

Imports only ``monitorapp.places``.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# abbreviations of a search text, read both ways ("kentish town rd" finds "Kentish Town Road");
# "st" stays as typed too, since it is also "Saint" ("St Pancras")
ABBREVIATIONS = {"rd": "road", "st": "street", "ave": "avenue", "av": "avenue", "ln": "lane",
                 "sq": "square", "pl": "place", "gdns": "gardens", "cres": "crescent", "ct": "court",
                 "gr": "grove", "tce": "terrace", "stn": "station", "pk": "park", "hse": "house"}
KIND_ORDER = {"borough": 0, "street": 1, "district": 2, "station": 3, "park": 4}
MIN_CHARS = 2
_NON_WORD = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Lower case, no accents, "&" as "and", apostrophes and dots dropped, other punctuation
    as spaces, single spaces."""
    s = unicodedata.normalize("NFKD", text)
    s = "".join(c for c in s if not unicodedata.combining(c)).casefold()
    s = s.replace("&", " and ").replace("'", "").replace("\u2019", "").replace(".", "")
    return " ".join(_NON_WORD.sub(" ", s).split())


@dataclass(frozen=True)
class Place:
    name: str
    kind: str              # "borough" | "street" | "district" | "station" | "park"
    lon: float
    lat: float
    borough: str | None = None

    def __str__(self) -> str:
        if self.borough and self.borough != self.name:
            return f"{self.name}, {self.borough}"
        return self.name


class PlaceSearch:
    def __init__(self, places: list[Place]):
        self.places = places
        self.keys = [fold(p.name) for p in places]
        self.words = [k.split() for k in self.keys]

    def search(self, text: str, limit: int = 10) -> list[Place]:
        q = fold(text)
        if len(q) < MIN_CHARS:
            return []
        variants = [q]
        expanded = " ".join(ABBREVIATIONS.get(w, w) for w in q.split())
        if expanded != q:
            variants.append(expanded)
        best: dict[int, tuple] = {}
        for v in variants:
            for hit in self._hits(v):
                i = hit[-1]
                if i not in best or hit < best[i]:
                    best[i] = hit
        hits = sorted(best.values())
        out, seen = [], set()
        for *_, i in hits:
            p = self.places[i]
            k = (self.keys[i], p.kind, p.borough)       # "St. Pancras Way" and "St Pancras Way": one
            if k in seen:
                continue
            seen.add(k)
            out.append(p)
            if len(out) >= limit:
                break
        return out

    def _hits(self, q: str):
        qwords = q.split()
        hits = []
        for i, key in enumerate(self.keys):
            if q not in key:
                words = self.words[i]
                if len(qwords) > 1 and all(any(w.startswith(qw) for w in words) for qw in qwords):
                    rank = 5
                else:
                    continue
            elif key == q:
                rank = 1
            elif key.startswith(q):
                rank = 2
            elif (" " + q) in (" " + key):
                rank = 3
            else:
                rank = 4
            p = self.places[i]
            hits.append((rank, KIND_ORDER.get(p.kind, 9), len(key), key, p.borough or "", i))
        return hits
