"""Text from data is text (issue 13): markup in a zone name, an offender's name or id, a note, an
operator, a reason, a police reference or a file name is shown literally by every widget that
shows it, never rendered.

The data goes in where it comes from in use (a caseload, the engine raising alerts from a feed,
the operator's dialogs, the store's logs, a crime query, a training run), through the real
widgets. For each widget, every label, text edit, combo box and tool tip is read the way Qt
draws it: plain text as is; rich text (``Qt.RichText``, or ``Qt.AutoText`` when
``Qt.mightBeRichText`` says so, which is also how ``QToolTip`` decides) through a
``QTextDocument``. The raw markup must be in what is drawn, and no drawn document may hold what
the data tried to make: a bold "order suspended", a link, an image, italics or underlining.
"""
from __future__ import annotations

import shutil
import subprocess

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont, QTextDocument
from PySide6.QtGui import Qt as QtGuiFunctions      # Qt.mightBeRichText lives in QtGui
from PySide6.QtWidgets import (QApplication, QComboBox, QLabel, QLineEdit, QMessageBox, QPlainTextEdit,
                               QStyledItemDelegate, QTextEdit, QWidget)

from tests.fixtures_ui import T0, battery_script, breach_script, ui_caseload_doc

# the offscreen platform cannot size shown top-level windows; not our code
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support (propagateSizeHints|raise)\(\)")

HOSTILE_ZONE = "<b>Open alerts: none — order suspended</b><!--"
HOSTILE_NAME = "<img src=x>Fake"
HOSTILE_BOROUGH = "<u>Islington</u>"
HOSTILE_ID = "<i>OFF-2</i>"                 # offender ids are data too; this one wears TAG-2
HOSTILE_NOTE = '<a href="x">click</a>'
HOSTILE_OPERATOR = "<i>admin</i>"
HOSTILE_REF = "<b>MET/2026/0415</b>"
HOSTILE_SHORT_ID = "<i>Ann"                # fits the PDF's offender column without wrapping
FAKE = "order suspended"


# ---- how Qt draws a text ------------------------------------------------------------------------
def drawn(text: str, fmt=Qt.TextFormat.AutoText) -> tuple[str, QTextDocument | None]:
    """The text a widget with this text and format shows, and the document when it renders markup."""
    if fmt == Qt.TextFormat.PlainText or (fmt == Qt.TextFormat.AutoText and not QtGuiFunctions.mightBeRichText(text)):
        return text, None
    doc = QTextDocument()
    if fmt == Qt.TextFormat.MarkdownText:
        doc.setMarkdown(text)
    else:
        doc.setHtml(text)
    return doc.toPlainText(), doc


def markup_made(doc: QTextDocument) -> list[str]:
    """What data could have made of a document: bold "order suspended", links, images, styles."""
    found = []
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            f = frag.charFormat()
            if f.isImageFormat():
                found.append(f"image {f.toImageFormat().name()!r}")
            elif f.isAnchor():
                found.append(f"link {frag.text()!r}")
            elif f.fontItalic() or f.fontUnderline():
                found.append(f"styled {frag.text()!r}")
            elif FAKE in frag.text() and f.fontWeight() >= QFont.Weight.Bold:
                found.append(f"bold {frag.text()!r}")
            it += 1
        block = block.next()
    return found


def shown_by(widget: QWidget) -> list[tuple[str, QTextDocument | None]]:
    """Everything ``widget`` and its children show as text, as drawn."""
    out = []
    for w in [widget, *widget.findChildren(QWidget)]:
        if isinstance(w, QLabel):
            out.append(drawn(w.text(), w.textFormat()))
        elif isinstance(w, QPlainTextEdit):
            out.append((w.toPlainText(), None))
        elif isinstance(w, QTextEdit):
            out.append((w.document().toPlainText(), w.document()))
        elif isinstance(w, QLineEdit):
            out.append((w.text(), None))
        elif isinstance(w, QComboBox):
            out += [(w.itemText(i), None) for i in range(w.count())]
        if w.toolTip():
            out.append(drawn(w.toolTip()))
    return out


def assert_literal(widget: QWidget, *raws: str) -> str:
    """Each raw string is shown literally somewhere in ``widget``; nothing shown is markup from data."""
    shown = shown_by(widget)
    text = "\n".join(s for s, _ in shown)
    for raw in raws:
        assert raw in text, f"{raw!r} is not shown literally by {type(widget).__name__}: {text!r}"
    for s, doc in shown:
        if doc is not None:
            assert markup_made(doc) == [], f"{type(widget).__name__} renders data as markup: {s!r}"
    return text


def tooltip_shows(model, row: int, col: int = 0) -> str:
    """A model's tool tip as ``QToolTip`` draws it, checked for markup made from data."""
    tip = model.data(model.index(row, col), Qt.ItemDataRole.ToolTipRole) or ""
    text, doc = drawn(tip)
    if doc is not None:
        assert markup_made(doc) == [], tip
    return text


def on_modal(fn, seen: list):
    """Run ``fn(dialog)`` on the next modal dialog; whatever it raises, the dialog is closed."""
    def run():
        dlg = QApplication.activeModalWidget()
        if dlg is None:
            QTimer.singleShot(20, run)
            return
        try:
            seen.append(fn(dlg))
        except Exception as e:           # reported by the test after exec() returns
            seen.append(e)
        finally:
            if dlg.isVisible():
                dlg.reject()
    QTimer.singleShot(0, run)


def returned(seen: list):
    assert len(seen) == 1, seen
    if isinstance(seen[0], Exception):
        raise seen[0]
    return seen[0]


# ---- the console, over a caseload with markup in it ---------------------------------------------
def hostile_caseload_doc() -> dict:
    doc = ui_caseload_doc(4)
    doc["zones"]["features"][0]["properties"]["name"] = HOSTILE_ZONE
    doc["offenders"][0].update(name=HOSTILE_NAME, borough=HOSTILE_BOROUGH)
    doc["offenders"][1]["id"] = HOSTILE_ID
    return doc


@pytest.fixture
def hostile_rig(tmp_path):
    """Real engine thread, store and queue controller over the hostile caseload: TAG-1 breaches
    the zone with the markup name, TAG-2 (offender HOSTILE_ID) reports a low battery; the
    operator's name is markup."""
    from localdb.store import Store
    from monitorapp.engine.caseload import parse_caseload
    from monitorapp.engine.engine import Engine
    from ui.console.alertqueue import AlarmSound, AlertQueueController
    from ui.console.engineworker import EngineWorker, ReplayFeed
    caseload = parse_caseload(hostile_caseload_doc(), "hostile caseload")
    feed = ReplayFeed(sorted(breach_script(T0) + battery_script(T0), key=lambda m: m[0]), start=T0, speed=120)
    store = Store(tmp_path / "console.sqlite", clock=feed.now)
    worker = EngineWorker(lambda: Engine(caseload, start=T0), feed, store=store)
    controller = AlertQueueController(store, HOSTILE_OPERATOR, sound=AlarmSound(True))
    yield caseload, feed, store, worker, controller
    worker.stop()
    store.close()
    assert not worker.running, "engine thread left running"


@pytest.fixture
def console(hostile_rig, qtbot, own):
    from ui.console.mainwindow import MainWindow
    from ui.settings import Settings
    caseload, feed, store, worker, controller = hostile_rig
    w = own(MainWindow(controller=controller, worker=worker, caseload=caseload, store=store,
                       settings=Settings(), map_widget=QWidget(), clock=feed.now, operator=HOSTILE_OPERATOR))
    worker.start()
    w.show()
    qtbot.waitUntil(lambda: {"exclusion_entered", "battery_low"} <= {r.alert.type for r in controller.model.rows()},
                    timeout=20_000)
    return w


def _alert(w, type_):
    return next(r for r in w.ctl.model.rows() if r.alert.type == type_)


def test_details_panel_shows_zone_and_offender_names_literally(qtbot, console):
    w = console
    aid = _alert(w, "exclusion_entered").alert.alert_id
    assert w.queue.select_alert(aid)
    qtbot.waitUntil(lambda: w.details.offender == "OFF-1" and "Exclusion entered" in w.details.body.text(),
                    timeout=5000)
    text = assert_literal(w.details, HOSTILE_NAME, HOSTILE_BOROUGH, HOSTILE_ZONE, "Exclusion entered")
    # the zone's "<!--" hid nothing: the real open alert is listed after the heading, and the
    # only "Open alerts" heading is ours
    body, _ = drawn(w.details.body.text(), w.details.body.textFormat())
    opened = body.index("Open alerts\n")
    assert body.index("Order requirements") < body.index(HOSTILE_ZONE) < opened < body.index("Exclusion entered", opened)
    assert "none" not in body.split("Open alerts\n", 1)[1]
    assert aid not in body          # issue 16: no internal alert ids in the details panel
    assert f"OFF-1  {HOSTILE_NAME}" in text


def test_acknowledge_dialog_and_queue_show_names_notes_and_operator_literally(qtbot, console):
    w = console
    row = _alert(w, "exclusion_entered")
    aid = row.alert.alert_id
    assert w.queue.select_alert(aid)

    def fill(dlg):
        text = assert_literal(dlg, f"OFF-1 {HOSTILE_NAME}", "zone Z-EX-1")
        dlg.action.setCurrentIndex(dlg.action.findData("contacted_subject"))
        dlg.note.setPlainText(HOSTILE_NOTE)
        assert_literal(dlg, HOSTILE_NOTE)
        dlg.accept()
        return text
    seen: list = []
    on_modal(fill, seen)
    w.acknowledge(aid)
    returned(seen)
    assert w.ctl.model.row(aid).handling.state == "acknowledged"
    # the queue: the offender column is the raw name, drawn by the plain-text delegate; the
    # row's tool tip names the operator and quotes the note literally
    model = w.ctl.model
    r = model.source_row(aid)
    assert model.data(model.index(r, 4)) == f"OFF-1 {HOSTILE_NAME}"
    assert type(w.queue.table.itemDelegate()) is QStyledItemDelegate
    tip = tooltip_shows(model, r)
    assert f"Acknowledged by {HOSTILE_OPERATOR}: contacted_subject — {HOSTILE_NOTE}" in tip
    # and in the acknowledgement log as typed
    assert any(e["operator"] == HOSTILE_OPERATOR and e["note"] == HOSTILE_NOTE for e in w.store.ack_log())


def test_shelve_dialog_and_shelved_list_show_ids_and_reasons_literally(qtbot, console):
    w = console
    aid = _alert(w, "battery_low").alert.alert_id
    assert w.queue.select_alert(aid)

    def fill(dlg):
        text = assert_literal(dlg, HOSTILE_ID, "Battery low")
        dlg.reason.setText(HOSTILE_NOTE)
        dlg.accept()
        return text
    seen: list = []
    on_modal(fill, seen)
    w.shelve(aid)
    returned(seen)
    assert w.ctl.model.row(aid).handling.state == "shelved"
    shelved = w.ctl.shelved
    assert shelved.rowCount() == 1 and HOSTILE_ID in shelved.data(shelved.index(0, 0))
    assert tooltip_shows(shelved, 0) == f"Shelved by {HOSTILE_OPERATOR}: {HOSTILE_NOTE}"
    assert HOSTILE_NOTE in tooltip_shows(w.ctl.model, w.ctl.model.source_row(aid))
    assert_literal(w.queue, "Shelved (1)")


def test_caseload_list_and_status_bar_show_names_literally(console):
    w = console
    m = w.caseload_model
    rows = {m.data(m.index(r, 0)): r for r in range(m.rowCount())}
    assert m.data(m.index(rows["OFF-1"], 1)) == HOSTILE_NAME
    assert m.data(m.index(rows["OFF-1"], 2)) == HOSTILE_BOROUGH
    assert HOSTILE_ID in rows
    assert type(w.caseload_list.table.itemDelegate()) is QStyledItemDelegate
    assert_literal(w.caseload_list)
    assert_literal(w.status, f"Operator: {HOSTILE_OPERATOR}")
    assert_literal(w.queue, HOSTILE_BOROUGH)          # the borough filter


def test_zone_dialog_shows_offenders_and_problems_literally(qtbot, console):
    from ui.console.zonedialog import ZoneDialog
    w = console
    offenders = [(o.id, o.name) for o in sorted(w.caseload.offenders.values(), key=lambda o: o.id)]
    drawn_feature = {"type": "Feature", "properties": {}, "geometry": {"type": HOSTILE_NOTE, "coordinates": []}}
    dlg = ZoneDialog(drawn_feature, offenders, zone_id="Z-OP-0001", parent=w)
    qtbot.addWidget(dlg)
    dlg.name.setText(HOSTILE_ZONE)
    assert_literal(dlg, f"OFF-1  {HOSTILE_NAME}", f"{HOSTILE_ID}  Person 2", HOSTILE_ZONE,
                   f"not {HOSTILE_NOTE!r}", "zone Z-OP-0001")


def test_a_warning_box_shows_its_text_literally(qtbot):
    from ui.text import warn
    seen: list = []
    on_modal(lambda box: (box.textFormat(), box.text(), isinstance(box, QMessageBox)), seen)
    warn(None, "Monitoring console", f"Zone edit not saved: {HOSTILE_ZONE}")
    assert returned(seen) == (Qt.TextFormat.PlainText, f"Zone edit not saved: {HOSTILE_ZONE}", True)


# ---- sign-in, handover, accounts ----------------------------------------------------------------
def test_sign_in_handover_lock_and_accounts_show_text_literally(qtbot, handled_store, own):
    from tests.fixtures_roles import PASSWORD
    from ui.session.signin import AccountsDialog, LockScreen, SignInDialog, SignOutDialog
    h = handled_store
    h.store.shelve(next(a for a in h.alerts.values() if a["type"] == "battery_low")["alert_id"],
                   "op.patel", HOSTILE_NOTE, h.clock.t + 3600)
    op = h.sessions["operator"]
    out = own(SignOutDialog(h.accounts, h.store, op))
    assert_literal(out, op.username, HOSTILE_NOTE)          # the shelving reason in the summary
    out.notes.setPlainText(f"Watch {HOSTILE_ZONE} for {HOSTILE_NAME}")
    out.sign_out()
    dlg = own(SignInDialog(h.accounts))
    dlg.user.setText("op.jones")
    dlg.password.setText(PASSWORD)
    assert dlg.try_sign_in() is not None
    assert_literal(dlg, f"Watch {HOSTILE_ZONE} for {HOSTILE_NAME}", HOSTILE_NOTE)
    lock = own(LockScreen(h.accounts, op))
    assert_literal(lock, f"Signed in: {op.username}")
    accounts = own(AccountsDialog(h.accounts, h.sessions["administrator"]))
    accounts.user.setText(HOSTILE_OPERATOR)
    assert accounts.unlock() is False
    assert_literal(accounts, HOSTILE_OPERATOR)


# ---- the role views -----------------------------------------------------------------------------
def test_review_shows_operators_notes_and_file_names_literally(qtbot, handled_store, own, tmp_path):
    from ui.views.review import C_NOTE, C_OPERATOR, ReviewPanel
    h = handled_store
    aid = h.open[0]
    h.store.acknowledge(aid, HOSTILE_OPERATOR, "other", HOSTILE_NOTE)
    h.store.flush()
    panel = own(ReviewPanel(h.store, h.sessions["supervisor"]))
    m = panel.model
    row = next(i for i in range(m.rowCount()) if m.record(i)["alert_id"] == aid)
    assert m.data(m.index(row, C_OPERATOR)) == HOSTILE_OPERATOR
    assert m.data(m.index(row, C_NOTE)) == HOSTILE_NOTE
    assert tooltip_shows(m, row) == aid
    assert type(panel.table.itemDelegate()) is QStyledItemDelegate
    path = tmp_path / f"{HOSTILE_NAME}.csv"
    assert panel.export_csv(str(path)) and path.exists()
    assert_literal(panel, HOSTILE_OPERATOR, f"exported to {path}")      # the operator filter, the message


@pytest.fixture
def hostile_crime_store(tmp_path, monkeypatch):
    """tests.fixtures_roles.CrimeStore with markup in the id of the person who walks through the scene."""
    from tests import fixtures_roles
    devices = dict(fixtures_roles.CRIME_DEVICES)
    devices[HOSTILE_SHORT_ID] = devices.pop("OFF-A")
    monkeypatch.setattr(fixtures_roles, "CRIME_DEVICES", devices)
    c = fixtures_roles.CrimeStore(tmp_path)
    yield c
    c.close()


def test_crime_view_and_evidential_pdf_show_references_and_ids_literally(qtbot, hostile_crime_store, own, tmp_path):
    from ui.views.crime import CrimePanel
    c = hostile_crime_store
    panel = own(CrimePanel(c.store, c.sessions["police_analyst"], map_view=None, embed_map=False))
    panel.set_place(c.lat, c.lon)
    panel.radius.setValue(int(c.RADIUS))
    panel.set_window(c.t0, c.t1)
    panel.ref.setText(HOSTILE_REF)
    panel.reason.setText(HOSTILE_NOTE)
    with qtbot.waitSignal(panel.answered, timeout=20_000) as blocker:
        assert panel.run_query()
    answer = blocker.args[0]
    assert any(r["offender"] == HOSTILE_SHORT_ID and r["verdict"] == "present" for r in answer["results"])
    assert_literal(panel, f"Ref {HOSTILE_REF}")
    # the chart's legend (pyqtgraph draws it as HTML) names the person literally
    legend = panel.chart.getPlotItem().legend
    labels = [label.item for _, label in legend.items]
    assert any(f"{HOSTILE_SHORT_ID} (TAG-A)" == item.toPlainText() for item in labels), [i.toPlainText() for i in labels]
    for item in labels:
        assert markup_made(item.document()) == []
    pdf = tmp_path / f"{HOSTILE_NAME}.pdf"
    with qtbot.waitSignal(panel.exported, timeout=60_000):     # written on the query thread
        assert panel.export("pdf", str(pdf))
    assert_literal(panel, f"PDF written to {pdf}")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed: the PDF's text is not read back")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    for raw in (HOSTILE_REF, HOSTILE_NOTE, HOSTILE_SHORT_ID):
        assert raw in text, (raw, text)
    panel.shutdown()


def test_trainer_view_shows_the_trainee_name_literally(qtbot, handled_store, own, tmp_path):
    from monitorapp.sim.scenarios import scenario
    from ui.views.trainer import TrainerPanel
    import time
    from localdb.accounts import Session
    panel = own(TrainerPanel(handled_store.sessions["trainer"], store_dir=tmp_path / "training"))
    # a trainee whose name carries markup (account names cannot, but a store's log can)
    panel.set_trainee(Session(HOSTILE_OPERATOR, "operator", time.time()))
    panel.speed.setCurrentIndex(panel.speed.findData(600))
    run = panel.start("strap_cut")
    qtbot.waitUntil(lambda: any(r.alert.type == "strap_tamper" for r in run.controller.model.rows()),
                    timeout=30_000)
    row = next(r for r in run.controller.model.rows() if r.alert.type == "strap_tamper")
    run.controller.acknowledge(row.alert.alert_id, "other", HOSTILE_NOTE)
    model = run.controller.model
    tip = tooltip_shows(model, model.source_row(row.alert.alert_id))
    assert f"Acknowledged by {HOSTILE_OPERATOR}: other — {HOSTILE_NOTE}" in tip
    qtbot.waitUntil(lambda: "·" in panel.clock.text(), timeout=5000)        # the run's clock is shown
    rows = panel.show_report()
    assert rows[0]["by"] == HOSTILE_OPERATOR
    assert_literal(panel, HOSTILE_OPERATOR, scenario("strap_cut").description)
    panel.reset_button.click()
    assert not run.worker.running


# ---- the helper itself --------------------------------------------------------------------------
def test_rich_escapes_every_value_and_keeps_its_own_markup():
    from ui.text import Markup, escape, join, rich, tooltip
    html = rich("<b>{who}</b> in {zone} every {n:g} s", who=HOSTILE_NAME, zone=HOSTILE_ZONE, n=30.0)
    text, doc = drawn(html, Qt.TextFormat.RichText)
    assert text == f"{HOSTILE_NAME} in {HOSTILE_ZONE} every 30 s"
    assert markup_made(doc) == []
    items = join("", (rich("<li>{x}</li>", x=x) for x in (HOSTILE_NOTE, "two")))
    assert isinstance(items, Markup) and rich("<ul>{items}</ul>", items=items).count("<li>") == 2
    assert escape(escape("<b>")) == "&lt;b&gt;"                      # never escaped twice
    tip = tooltip(f"Acknowledged by {HOSTILE_OPERATOR}\n{HOSTILE_NOTE}")
    assert QtGuiFunctions.mightBeRichText(tip) and drawn(tip)[0] == f"Acknowledged by {HOSTILE_OPERATOR}\n{HOSTILE_NOTE}"
