"""Reverse geocoding and borough lookups per second over the shipped data, and its size.

    .venv/bin/python benchmarks/bench_places.py [--n 50000] [--basemap resources/basemap/london.mbtiles]

Positions are drawn uniformly over Camden's extent (where the shipped data has streets), so
most lookups find a street within 150 m. Prints one line per measurement and a JSON summary.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from monitorapp.places import SHIPPED_BASEMAP, Places  # noqa: E402
from monitorapp.places.build import sidecars  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--basemap", type=pathlib.Path, default=SHIPPED_BASEMAP)
    args = ap.parse_args()
    files = sidecars(args.basemap)
    sizes = {p.name: p.stat().st_size for p in files}
    for name, size in sizes.items():
        print(f"{name:<28} {size / 1e6:6.2f} MB")
    t = time.perf_counter()
    places = Places.for_basemap(args.basemap)
    places.borough_at(-0.14, 51.54)
    places.streets
    load_s = time.perf_counter() - t
    print(f"load (boroughs + streets index): {load_s * 1000:.0f} ms, {places.streets.pieces} street pieces")
    rng = np.random.default_rng(18)
    lons = rng.uniform(-0.213, -0.105, args.n)
    lats = rng.uniform(51.513, 51.573, args.n)
    results = {"load_ms": round(load_s * 1000), "sizes": sizes}
    for label, fn in (("borough_at", places.borough_at),
                      ("address (street + borough)", lambda lo, la: places.address(lo, la).street)):
        t = time.perf_counter()
        found = sum(1 for lo, la in zip(lons.tolist(), lats.tolist()) if fn(lo, la))
        rate = args.n / (time.perf_counter() - t)
        print(f"{label:<28} {rate:10,.0f} lookups/s, one at a time ({found / args.n:.0%} found)")
        results[label] = round(rate)
    t = time.perf_counter()
    addrs = places.addresses(lons, lats)
    rate = args.n / (time.perf_counter() - t)
    print(f"{'addresses (vectorised)':<28} {rate:10,.0f} lookups/s "
          f"({sum(1 for a in addrs if a.street) / args.n:.0%} on a street)")
    results["addresses_vectorised"] = round(rate)
    t = time.perf_counter()
    for q in ("camden high st", "kentish", "euston road", "st pancras", "parkway") * 20:
        places.search(q)
    results["search_ms"] = round((time.perf_counter() - t) * 1000 / 100, 2)
    print(f"search: {results['search_ms']} ms a query")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
