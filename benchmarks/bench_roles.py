"""Benchmark of the supervisors' and police views: how long a sign-in, opening the review
(hash chains checked), refreshing the KPI dashboard and writing an evidential PDF take.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_roles.py [--alerts 5000]

A store gets N alerts (a quarter of them critical) through the store's own writer, each
acknowledged (and every third closed) by one of eight operators, so the acknowledgement log has
about 1.3 N hash-chained records. Prints one JSON object of seconds.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import random
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=5000)
    args = ap.parse_args()
    import tests.fixtures_roles  # noqa: F401  (the PySide 6.12 refcount guard)
    from PySide6.QtWidgets import QApplication
    from localdb.accounts import Accounts
    from localdb.store import Store
    from monitorapp.engine.alerts import PRIORITY, Alert, alert_id
    app = QApplication.instance() or QApplication([])
    tmp = pathlib.Path(tempfile.mkdtemp())
    clock = [1_795_000_000.0]
    store = Store(tmp / "bench.sqlite", clock=lambda: clock[0])
    rng = random.Random(1)
    types = list(PRIORITY)
    out: dict = {"alerts": args.alerts}
    t0 = time.perf_counter()
    ids = []
    for i in range(args.alerts):
        ty = rng.choice(types)
        t = 1_795_000_000.0 + i * 30
        a = Alert(alert_id(ty, f"OFF-{i % 700}", None, t), ty, PRIORITY[ty], f"OFF-{i % 700}",
                  f"TAG-{i % 700}", None, None, t, t + 2)
        store._writer.put((3, (a.alert_id, a.type, a.priority, a.offender, a.device, None, None, None,
                               a.start, a.raised_at, 0, "{}", "active", None, 0, t),
                           (a.alert_id, "raised", 0, a.raised_at, "active")))
        ids.append((a.alert_id, a.raised_at))
    store.flush()
    for k, (aid, raised) in enumerate(ids):
        clock[0] = raised + rng.uniform(5, 400)
        store.acknowledge(aid, f"op.{k % 8}", "contacted_subject", "called")
        if k % 3 == 0:
            clock[0] += 120
            store.close_alert(aid, f"op.{k % 8}", "done")
    out["fill_s"] = round(time.perf_counter() - t0, 2)
    acc = Accounts(store)
    admin = acc.create_first_admin("admin.ann", "correct horse battery")
    acc.create(admin, "sup.khan", "supervisor", "correct horse battery")
    t0 = time.perf_counter()
    session = acc.sign_in("sup.khan", "correct horse battery")
    out["sign_in_s"] = round(time.perf_counter() - t0, 3)
    from ui.views.review import ReviewPanel
    from localdb.verify import verify_store
    from ui.views.review import handling_records
    t0 = time.perf_counter()
    verify_store(store.path)
    out["verify_chains_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    handling_records(store)
    out["handling_records_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    panel = ReviewPanel(store, session)
    out["review_open_s"] = round(time.perf_counter() - t0, 3)
    out["ack_log_records"] = panel.chain_reports[0].records
    from ui.views.kpi import KpiDashboard
    t0 = time.perf_counter()
    dash = KpiDashboard(store, session)
    out["kpi_open_s"] = round(time.perf_counter() - t0, 3)
    from tests.fixtures_roles import CrimeStore
    c = CrimeStore(tmp)
    from monitorapp.crime.query import crime_check
    t0 = time.perf_counter()
    answer = crime_check(c.store, c.lat, c.lon, 100.0, c.t0, c.t1, "REF", "bench", "pc.smith")
    out["crime_query_s"] = round(time.perf_counter() - t0, 3)
    from ui.views.report import write_pdf
    t0 = time.perf_counter()
    write_pdf(tmp / "r.pdf", answer, "pc.smith")
    out["pdf_s"] = round(time.perf_counter() - t0, 3)
    c.close()
    store.close()
    import shiboken6
    for w in (panel, dash):
        shiboken6.delete(w)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
