"""Client mode: the live console with the centre's record on PostgreSQL (``--db
postgresql://…`` or the ``store/url`` setting) runs no engine; it shows the decider's state and
acts through the record as the signed-in person (issue 15, spec v2 §8).

``build_client(console, opts, accounts)`` gives the ``ui.app.Console`` its parts for that mode:
the caseload (the file given, else the record's, else the workstation cache's), the
``CentreClient`` (record + broker, with the console identity's broker options), the
``CentreQueueController``, the window, and the stale-picture banner. The structured log lines
of this mode: ``centre_loaded`` (from the record or the cache), ``centre_recorded`` and
``centre_refused`` (an action the record took or refused, with the reason and who already took
it), ``handling_shown`` (the decider's handling now in the queue), ``centre_fault`` (what is
wrong with the centre, "" when it is right again), ``zone_saved`` and, every 10 s while the
decider's messages arrive, ``centre_latency`` (decider to screen, ``centrestate.Freshness``).
"""
from __future__ import annotations

import hashlib
import json
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy

from ui.settings import data_dir, private_dir

PG_SCHEMES = ("postgresql://", "postgres://")


def centre_dsn(opts, settings) -> str | None:
    """The record's DSN when the console is a client of the centre, else None."""
    if getattr(opts, "demo", False):
        return None
    if opts.db:
        return opts.db if opts.db.startswith(PG_SCHEMES) else None
    url = settings.get("store/url") if settings is not None else ""
    return url if url and url.startswith(PG_SCHEMES) else None


def redact_dsn(dsn: str) -> str:
    from centraldb.store import redact
    return redact(dsn)


def cache_path(dsn: str):
    """This workstation's cache of one centre (one file per record)."""
    from centraldb.store import redact
    key = hashlib.sha256(redact(dsn).split("@")[-1].encode()).hexdigest()[:10]
    return private_dir(data_dir()) / f"centre-cache-{key}.sqlite"


def caseload_from_record(store) -> dict:
    """A caseload document (spec §3) from the record: offenders, their current tags and
    requirements, the zones' current versions."""
    conn = store.reader()
    zones = []
    for zid, feature, removed in conn.execute(
            "SELECT DISTINCT ON (zone_id) zone_id, feature, removed FROM zones"
            " ORDER BY zone_id, version DESC"):
        if not removed:
            f = json.loads(feature)
            if f.get("geometry"):
                zones.append(f)
    reqs: dict[str, list] = {}
    for oid, body in conn.execute(
            "SELECT DISTINCT ON (offender_id, requirement_id) offender_id, body FROM requirements"
            " ORDER BY offender_id, requirement_id, version DESC"):
        reqs.setdefault(oid, []).append(json.loads(body))
    devices = dict(conn.execute("SELECT offender_id, device FROM assignments WHERE valid_to IS NULL"))
    known = {f["id"] for f in zones}
    offenders = []
    for oid, name, risk, borough, interval in conn.execute(
            "SELECT offender_id, name, risk, borough, fix_interval_s FROM offenders ORDER BY offender_id"):
        if oid not in devices:
            continue
        offenders.append({"id": oid, "name": name, "risk": risk, "borough": borough,
                          "device": devices[oid], "fix_interval_s": interval or 60,
                          "requirements": [r for r in reqs.get(oid, []) if r.get("zone") in known]})
    return {"version": 1, "tz": "Europe/London", "offenders": offenders,
            "zones": {"type": "FeatureCollection", "features": zones}}


def mqtt_settings(opts, settings):
    """The console identity's broker settings: the URL plus the same TLS, CA, client-certificate
    and password-file options as the monitor (``--broker-*``, ``ui.settings.broker_settings``),
    with a client id of this running console's own."""
    from ui.console.centreclient import console_client_id
    from ui.settings import broker_settings
    return broker_settings(opts, settings, client_id=console_client_id())


def load_client_caseload(opts, settings, store, cache):
    """(Caseload, where it came from): the file given, else the record's, else the cache's."""
    from monitorapp.engine.caseload import load_caseload, parse_caseload
    path = opts.caseload or settings.get("feed/caseload_path")
    if path:
        return load_caseload(path), "file"
    problem = "nobody signed in"
    try:
        if store is not None:
            doc = caseload_from_record(store)
            return parse_caseload(doc, "the record's caseload"), "record"
    except Exception as e:     # noqa: BLE001 - the record out of reach: the cached one
        problem = e
    if cache is not None:
        doc = cache.load().get("caseload")
        if doc:
            return parse_caseload(doc, "the cached caseload"), "cache"
    raise ClientModeError(f"no caseload: give --caseload FILE (the centre's record could not be read: {problem})")


class StaleBanner(QLabel):
    """One line above the map while the console shows the cached picture or the centre is
    out of reach; hidden while the centre's picture is live."""

    def __init__(self):
        super().__init__()
        self.setObjectName("staleBanner")
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)        # never widens the window: it wraps (1366 px screens too)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setStyleSheet("QLabel#staleBanner { background: #b00020; color: white; font-weight: bold;"
                           " font-size: 15pt; padding: 4px; }")
        self.hide()

    def show_state(self, centre) -> None:
        now = time.time()
        if centre.stale_since is not None:
            age = max(0.0, now - centre.stale_since)
            text = (f"▲ CENTRE UNREACHABLE — picture from "
                    f"{time.strftime('%H:%M', time.localtime(centre.stale_since))}, {age / 60:.0f} min old "
                    "(this workstation's cache). Actions are refused: use the centre's fallback procedure.")
        elif centre.fault_text:
            text = f"▲ {centre.fault_text.upper()[:1]}{centre.fault_text[1:]} — actions are refused"
        else:
            text = ""
        if text != self.text():
            self.setText(text)
            self.setToolTip(text)
        self.setVisible(bool(text))


class ClientModeError(RuntimeError):
    """Client mode cannot start as asked (the message says why, for the command line)."""


def build_client(console, opts, accounts, *, log_event, make_map, places, zone) -> None:
    """Fill ``console`` (``ui.app.Console``) for client mode; see the module docstring. The
    assembly's helpers (structured log, map, places, time zone) are ``ui.app``'s, passed in."""
    from localdb.cache import CacheError, ConsoleCache
    from ui.console.alertqueue import AlarmSound
    from ui.console.centreactions import CentreQueueController
    from ui.console.centreclient import CentreClient, centre_reachable
    from ui.console.mainwindow import MainWindow

    settings = console.settings
    if accounts is None:
        raise ClientModeError("client mode needs a sign-in to the centre's record")
    if not (opts.broker or settings.get("feed/broker_url")):
        raise ClientModeError("client mode needs the centre's broker: --broker URL (or feed/broker_url)")
    store = accounts.store           # None: started cut off, nobody signed in (the cached picture)
    dsn = console.centre_dsn
    try:
        cache = ConsoleCache(cache_path(dsn))
    except CacheError as e:
        log_event("warning", text=str(e))
        cache = None
    caseload, source = load_client_caseload(opts, settings, store, cache)
    console.caseload, console.store = caseload, store
    console.store_path = store.path if store is not None else redact_dsn(dsn)
    console.caseload_source = source
    console.broker_url = opts.broker or settings.get("feed/broker_url")
    centre = CentreClient(mqtt_settings(opts, settings), store, caseload, cache=cache,
                          probe=lambda: centre_reachable(dsn))
    if source != "cache":
        centre.save_caseload(caseload.raw)
    console.source = centre
    console.worker = console.centre = centre
    console.places = places()
    tz = zone(caseload.tz)
    console.controller = CentreQueueController(
        centre, console.operator, escalation=settings.escalation_limits(),
        flood_count=settings.get("alarm/flood_count"), flood_window_s=settings.get("alarm/flood_window_s"),
        max_shelve_hours=settings.get("shelve/max_hours"), sound=AlarmSound(settings.get("alarm/sound")), tz=tz)
    console.map = make_map(settings, console.places)
    w = console.window = MainWindow(controller=console.controller, worker=centre, caseload=caseload,
                                    store=store, settings=settings, map_widget=console.map,
                                    clock=centre.now, operator=console.operator, training=False)
    w.centre = centre
    w.event.connect(lambda name, fields: log_event(name, **fields))
    banner = w.stale_banner = StaleBanner()
    w.centralWidget().layout().insertWidget(0, banner)
    ctl = console.controller

    def person(new_store, session):       # someone (else) signed in: their record calls
        ctl.store = w.store = console.store = new_store
        rv = getattr(w, "role_views", None)
        if rv is not None:
            rv.store = new_store
        centre.set_store(new_store)
    accounts.on_person = person

    def recorded(what, aid, op):
        w.event.emit("centre_recorded", {"what": what, "alert_id": aid, "operator": op})
        w.event.emit(f"alert_{what}", {"alert_id": aid, "operator": op})
        w.statusBar().showMessage(f"Alert {what} — recorded at the centre", 4000)

    def refused(what, aid, reason, by):
        w.event.emit("centre_refused", {"what": what, "alert_id": aid, "reason": reason, "by": by or None})
        w._warn(f"Alert not {what}: {reason}")          # noqa: SLF001

    def shown(aid, state):
        row = ctl.model.row(aid)
        w.event.emit("handling_shown", {"alert_id": aid, "state": state,
                                        "by": row.handling.acked_by if row else None})

    def fault(text):
        banner.show_state(centre)
        w.event.emit("centre_fault", {"text": text})

    def loaded(info):
        banner.show_state(centre)
        w.event.emit("centre_loaded", info)

    ctl.recorded.connect(recorded)
    ctl.refused.connect(refused)
    ctl.handlingChanged.connect(shown)
    centre.faultChanged.connect(fault)
    centre.loaded.connect(loaded)
    centre.stats.connect(lambda _s: banner.show_state(centre))
    centre.zoneSaved.connect(lambda d: w.event.emit("zone_saved", d))

    def not_enforced(zid, by, text, short):
        """A zone version the decider refused: a warning to the person who saved it (their
        edit is answered), a notice in the status bar for everyone else: what matters first
        (the status bar cuts a long message at its permanent widgets), the whole in its tool
        tip."""
        if by == w.operator:
            w._on_zone_refused(zid, text)       # noqa: SLF001
        else:
            w.event.emit("zone_refused", {"zone": zid, "reason": text})
            w.event.emit("notice", {"text": f"Zone {zid}: {text}"})
            notice["short"] = short
            w.statusBar().showMessage(short, 20000)
            w.statusBar().setToolTip(f"Zone {zid}: {text}")
    notice = {"short": None}          # the notice the status bar shows (its tool tip says all)

    def message_changed(message):
        if message != notice["short"]:
            notice["short"] = None
            w.statusBar().setToolTip("")
    w.statusBar().messageChanged.connect(message_changed)
    centre.zoneNotEnforced.connect(not_enforced)
    centre.failed.connect(lambda text: w.event.emit("warning", {"text": text}))
    if hasattr(w.map, "note_stamps"):       # positions: decider to drawn on the map
        centre.positionStamps.connect(w.map.note_stamps)
        w.map.stampsDrawn.connect(centre.positions_drawn)
        w.map.jsTiming.connect(lambda ms: centre.fresh.add("map_batch", [ms / 1000.0]))
    centre.freshness.connect(lambda d: (d["alert"]["n"] or d["position"]["n"])
                             and w.event.emit("centre_latency", d))
