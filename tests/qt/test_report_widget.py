"""The Report panel in a real viewer: it exports the reviewed findings (the reader's marks and
clinical input applied) exactly as ``napari-calcinosis analyze`` writes them for the same study
and saved record, in a worker with progress, and one failing format does not stop the others."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from review_helpers import SEED_LABS, dock, empty_body_voxel, open_and_detect, write_small_study

from napari_calcinosis import cli
from napari_calcinosis._qt import preferences, report_widget
from napari_calcinosis.annotations import DATA_DIR_ENV
from napari_calcinosis.clinical import parse_clinical
from napari_calcinosis.report import WRITERS, FormatWriter, default_formats, validate_findings
from napari_calcinosis.types import CalcinosisError

pytestmark = pytest.mark.qt
PATIENT = "PHANTOM^REVIEW"  # what write_small_study writes


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_small_study(tmp_path_factory.mktemp("report") / "ct")


@pytest.fixture(autouse=True)
def quiet(monkeypatch, tmp_path):
    monkeypatch.setitem(preferences._state, "enabled", False)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.setattr(report_widget, "_LAST", {})
    monkeypatch.chdir(tmp_path)  # a stray relative folder never lands in the repository
    errors: list[str] = []
    monkeypatch.setattr(report_widget, "show_error", errors.append)
    return errors


def _choose(widget, formats: set[str]) -> None:
    for name, box in widget.format_boxes.items():
        if box.enabled:
            box.value = name in formats


def _export(widget, qtbot) -> report_widget.ExportOutcome:
    widget.export_button.clicked.emit()
    assert widget.is_running and not widget.export_button.enabled
    qtbot.waitUntil(lambda: not widget.is_running, timeout=60_000)
    return widget.outcome


def test_export_equals_what_analyze_writes(make_napari_viewer, qtbot, study, tmp_path, quiet):
    viewer = make_napari_viewer()
    viewer.open(study, plugin="napari-calcinosis")
    widget = dock(viewer, "Report")
    uid = viewer.layers[0].metadata["study_instance_uid"]
    assert widget.folder.value == report_widget.DEFAULT_ROOT / report_widget.study_folder_name(uid)
    assert not widget.export_button.enabled and "Waiting for detection" in widget.scope.value
    # the command line's defaults are ticked; the opt-in key images as DICOM are not
    assert [n for n, b in widget.format_boxes.items() if b.value] == default_formats()
    assert list(widget.format_boxes) == list(WRITERS) and not widget.format_boxes["sc"].value
    widget.export()  # nothing analysed yet: an error, no worker
    assert "detection" in quiet.pop() and not widget.is_running

    session = open_and_detect(viewer, qtbot, None)
    assert widget.export_button.enabled and widget.scope.value.startswith("Reviewed findings")
    review = session.review
    (series_uid,) = review.runs
    soft = [les for les in review.effective.lesions if les.is_soft_tissue]
    rejected = soft[len(soft) // 2]
    session.set_state([rejected.id], "rejected")
    mask = np.zeros(review.runs[series_uid].volume.shape, bool)
    z, y, x = empty_body_voxel(session)
    mask[z, y - 1:y + 2, x - 1:x + 2] = True
    manual = session.add_manual(series_uid, mask)
    session.set_clinical(parse_clinical({"age": 70, "sex": "F", "labs": SEED_LABS}))
    assert f"{len(soft)} soft-tissue lesions (1 rejected, 1 added), with clinical input" \
        in widget.scope.value

    widget.folder.line_edit.value = ""  # the reader cleared the folder
    widget.export()  # no folder: an error, no worker
    assert "output folder" in quiet.pop() and not widget.is_running
    out = tmp_path / "panel"
    widget.folder.value = out
    _choose(widget, {"json", "csv", "html", "sr", "seg"})
    outcome = _export(widget, qtbot)
    assert not quiet and not outcome.failed
    names = {p.name for p in outcome.written}
    assert {"findings.json", "lesions.csv", "report.html", "sr.dcm", "seg.dcm"} <= names
    assert all(p.parent == out and p.is_file() for p in outcome.written)
    assert "findings.json" in widget.status.value and str(out) in widget.status.value
    assert widget.export_button.enabled and widget.progress.native.isHidden()

    doc = json.loads((out / "findings.json").read_text())
    validate_findings(doc)
    ids = {les["id"] for les in doc["lesions"]}
    assert rejected.id not in ids and manual.id in ids
    assert next(les for les in doc["lesions"] if les["id"] == manual.id)["source"] == "manual"
    assert doc["summary"]["lesion_count"] == len(soft)  # one rejected, one added
    assert "lesions.csv" in names and len((out / "lesions.csv").read_text().splitlines()) \
        == len(doc["lesions"]) + 1

    cli_out = tmp_path / "cli"
    assert cli.main(["analyze", str(study), "--out", str(cli_out), "--formats", "json",
                     "--quiet"]) == 0
    expected = json.loads((cli_out / "findings.json").read_text())
    assert doc["lesions"] == expected["lesions"]
    for key in ("study", "series", "summary", "differential", "warnings", "parameters"):
        assert doc[key] == expected[key], key
    assert doc["differential"] and "calcium" not in doc["differential"][0]["missing"]

    widget2 = report_widget.ReportWidget(viewer)  # the last used folder is the next default
    assert widget2.folder.value == out


def test_failing_format_is_named_and_others_written(make_napari_viewer, qtbot, study, tmp_path,
                                                    quiet, monkeypatch):
    viewer = make_napari_viewer()
    open_and_detect(viewer, qtbot, study)
    widget = dock(viewer, "Report")

    def broken(findings, out_dir, context):
        raise CalcinosisError("Cannot write lesions.csv: the disk said no.")

    release = threading.Event()
    real_html = WRITERS["html"].write

    def slow_html(findings, out_dir, context):
        assert release.wait(30)
        return real_html(findings, out_dir, context)

    monkeypatch.setitem(WRITERS, "csv", FormatWriter("csv", broken, "lesions.csv", "test"))
    monkeypatch.setitem(WRITERS, "html", FormatWriter("html", slow_html, "report.html", "test"))
    opened: list = []

    class Desktop:
        @staticmethod
        def openUrl(url):  # noqa: N802 - Qt's name
            opened.append(url.toLocalFile())
            return True

    monkeypatch.setattr(report_widget, "QDesktopServices", Desktop)
    widget.folder.value = tmp_path / "out"
    widget.anonymize.value = True
    _choose(widget, {"csv", "html", "png"})
    widget.export_button.clicked.emit()
    try:
        qtbot.waitUntil(lambda: "report.html" in widget.status.value, timeout=30_000)
        assert widget.is_running and not widget.export_button.enabled
        assert not widget.progress.native.isHidden() and not widget.open_button.enabled
        assert 0 < widget.progress.value < 100
        worker = widget._worker
        widget.export()  # a second click while running starts nothing
        assert widget._worker is worker
    finally:
        release.set()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=60_000)
    assert widget.progress.native.isHidden() and widget.export_button.enabled

    outcome = widget.outcome
    assert list(outcome.failed) == ["csv"]
    (message,) = quiet
    assert "csv (lesions.csv) failed" in message and "the disk said no" in message
    assert "Failed: csv" in widget.status.value
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "lesions.csv" not in files and {"findings.json", "report.html"} <= set(files)
    assert any(name.endswith(".png") for name in files)
    for path in (tmp_path / "out").iterdir():  # anonymized: no patient name in any byte
        assert PATIENT.split("^")[0].encode() not in path.read_bytes(), path.name
    doc = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert doc["study"]["study_instance_uid"] != viewer.layers[0].metadata["study_instance_uid"]

    assert widget.open_button.enabled
    widget.open_button.clicked.emit()
    assert opened == [str(tmp_path / "out" / "report.html")]
