"""The command line: exit codes, messages, progress, outputs, clinical input, atomic writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import jsonschema
import numpy as np
import pydicom
import pytest
from classify_cases import CONTRACT_CLINICAL
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from napari_calcinosis import cli
from napari_calcinosis.clinical import ClinicalInput
from napari_calcinosis.report import findings_schema

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def write_ct_series(folder: Path, *, hu: np.ndarray, spacing_zyx_mm=(2.0, 0.8, 0.7),
                    thickness_mm: float | None = 2.0, series_uid: str | None = None,
                    study_uid: str = "1.2.840.99999.4.1",
                    patient_name: str = "DOE^JANE") -> str:
    """Write a small axial CT series (one file per slice) and return its SeriesInstanceUID."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    dz, dy, dx = spacing_zyx_mm
    for k, plane in enumerate(hu):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.Modality = "CT"
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = patient_name, "PID-4711", "19470203"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID = study_uid + ".9"
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImagePositionPatient = [-100.0, -120.0, 50.0 + k * dz]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [dy, dx]
        if thickness_mm is not None:
            ds.SliceThickness = thickness_mm
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.PixelData = (plane.astype(np.int16) + 1024).astype(np.int16).tobytes()
        ds.save_as(folder / f"slice{k:03d}", enforce_file_format=True)
    return series_uid


def body_phantom(shape=(6, 40, 48)) -> np.ndarray:
    """An air-surrounded soft-tissue ellipse: no calcification in it."""
    z, y, x = np.indices(shape)
    inside = ((y - shape[1] / 2) / (shape[1] * 0.4)) ** 2 + (
        (x - shape[2] / 2) / (shape[2] * 0.4)) ** 2 < 1
    return np.where(inside, 40, -1000).astype(np.int16)


def run(argv, capsys):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_sentence(err: str, *words: str) -> None:
    """Exactly one error line (one sentence), no traceback; other lines are progress."""
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("napari-calcinosis: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert all(line.startswith("[") for line in lines if line not in errors), err
    assert errors[0].endswith((".", ")."))
    for word in words:
        assert word in errors[0], (word, err)


def load_valid(path: Path) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(doc, findings_schema(), cls=jsonschema.Draft202012Validator)
    return doc


@pytest.fixture
def radiograph(testdata):
    return testdata("RG1_UNCR.dcm")


@pytest.fixture
def ct_small(testdata):
    """A real one-slice CT: the fastest study to analyse end to end."""
    return testdata("CT_small.dcm")


# -- usage ---------------------------------------------------------------------------------

def test_help_and_version(capsys):
    status, out, _ = run(["--help"], capsys)
    assert status == 0 and "analyze" in out and "demo" in out and "view" in out
    status, out, _ = run(["--version"], capsys)
    assert status == 0 and out.startswith("napari-calcinosis ")
    status, out, _ = run(["analyze", "--help"], capsys)
    assert status == 0 and "--threshold-hu" in out and "--anonymize" in out


@pytest.mark.parametrize("argv, words", [
    ([], ["required"]),
    (["frobnicate"], ["frobnicate"]),
    (["analyze"], ["STUDY"]),
    (["analyze", "x.dcm", "--threshold-hu", "abc"], ["abc"]),
    (["analyze", "x.dcm", "--threshold-hu", "nan"], ["--threshold-hu", "nan"]),
    (["analyze", "x.dcm", "--threshold-hu", "-50"], ["--threshold-hu", "-50"]),
    (["analyze", "x.dcm", "--bogus"], ["--bogus"]),
    (["analyze", "x.dcm", "--formats", "json,xyz"], ["'xyz'", "html"]),
    (["analyze", "x.dcm", "--formats", ","], ["--formats"]),
    (["analyze", "does-not-exist.dcm"], ["does-not-exist.dcm", "does not exist"]),
])
def test_bad_usage_exits_2_with_one_sentence(argv, words, capsys):
    status, out, err = run(argv, capsys)
    assert status == 2 and out == ""
    assert_one_sentence(err, *words)


def test_format_registry_defaults():
    # every format of the contract but the key images as DICOM, written when named
    assert cli.default_formats() == [f for f in cli.CONTRACT_FORMATS if f != "sc"]
    assert cli.parse_formats("csv") == ["json", "csv"]  # findings.json is always written
    assert cli.parse_formats(" CSV , json ") == ["json", "csv"]
    assert set(cli.WRITERS) <= set(cli.CONTRACT_FORMATS)


# -- study problems --------------------------------------------------------------------------

def test_not_dicom_and_empty_folder_exit_3(tmp_path, capsys):
    junk = tmp_path / "notes.txt"
    junk.write_text("not an image", encoding="utf-8")
    status, _, err = run(["analyze", junk, "--out", tmp_path / "o1"], capsys)
    assert status == 3
    assert_one_sentence(err, "notes.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    status, _, err = run(["analyze", empty, "--out", tmp_path / "o2"], capsys)
    assert status == 3
    assert_one_sentence(err, "No usable image series", str(empty))
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_other_failure_exits_1(ct_small, tmp_path, capsys):
    blocker = tmp_path / "report"
    blocker.write_text("a file where the output folder should be", encoding="utf-8")
    status, _, err = run(["analyze", ct_small, "--out", blocker, "--quiet"], capsys)
    assert status == 1
    assert_one_sentence(err, "output folder", str(blocker))


def test_debug_shows_the_traceback(tmp_path, capsys):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 10)
    status, _, err = run(["analyze", junk, "--debug"], capsys)
    assert status == 3 and "Traceback" in err and "napari-calcinosis: error:" in err


# -- outputs on real and synthetic files -----------------------------------------------------

def test_radiograph_study(radiograph, tmp_path, capsys):
    out_dir = tmp_path / "out"
    status, out, err = run(["analyze", radiograph, "--out", out_dir], capsys)
    assert status == 0, err
    written = [Path(p).name for p in out.split()]
    # Every default format, but SR and SEG only describe CT (no CT here: none written).
    assert written[:4] == ["findings.json", "lesions.csv", "report.html", "report.pdf"]
    assert "key_radiograph_frontal.png" in written
    assert not {"sr.dcm", "seg.dcm"} & set(written)
    assert "[100%]" in err and "error" not in err
    doc = load_valid(out_dir / "findings.json")
    ds = pydicom.dcmread(radiograph, stop_before_pixels=True)
    assert doc["study"] == {"study_instance_uid": ds.StudyInstanceUID, "modalities": ["CR"]}
    assert doc["series"] == [{"series_instance_uid": ds.SeriesInstanceUID, "modality": "CR",
                              "kind": "radiograph", "shape": [ds.Rows, ds.Columns],
                              "spacing_mm": None, "slice_thickness_mm": None,
                              "view": "frontal"}]
    assert doc["summary"]["source"] == "radiograph"
    for number, lesion in enumerate(doc["lesions"], 1):
        assert lesion["id"] == number and lesion["centroid_mm"] is None
        assert lesion["series_instance_uid"] == ds.SeriesInstanceUID
        row, col = lesion["centroid_index"]
        assert 0 <= row < ds.Rows and 0 <= col < ds.Columns
    assert any("pixel spacing" in w for w in doc["warnings"])  # the file's spacing is 0
    csv_lines = (out_dir / "lesions.csv").read_text(encoding="utf-8").splitlines()
    assert csv_lines[0].startswith("id,") and len(csv_lines) == 1 + len(doc["lesions"])


def test_quiet_silences_progress(ct_small, tmp_path, capsys):
    status, out, err = run(["analyze", ct_small, "--out", tmp_path, "--quiet",
                            "--formats", "json"], capsys)
    assert status == 0 and err == ""
    assert out.split() == [str(tmp_path / "findings.json")]
    assert not (tmp_path / "lesions.csv").exists()


def test_ct_small_geometry(testdata, tmp_path, capsys):
    status, _, err = run(["analyze", testdata("CT_small.dcm"), "--out", tmp_path, "--quiet",
                          "--formats", "json"], capsys)
    assert status == 0, err
    doc = load_valid(tmp_path / "findings.json")
    (series,) = doc["series"]
    assert series["kind"] == "volume" and series["modality"] == "CT"
    assert series["shape"] == [1, 128, 128]
    assert series["spacing_mm"][1:] == pytest.approx([0.661468, 0.661468])
    assert series["slice_thickness_mm"] == 5.0 and series["view"] is None
    assert doc["summary"]["source"] == "CT" and doc["parameters"]["threshold_hu"] == 130.0
    assert any("5 mm thick" in w for w in doc["warnings"])
    # one slice is read with its geometry but not searched: the CT detector needs a series
    assert doc["lesions"] == [] and doc["summary"]["extent"] == "none"
    assert any("needs a series of at least 3 slices" in w for w in doc["warnings"])


def test_synthetic_series_geometry_series_selection_and_threshold(tmp_path, capsys):
    study = tmp_path / "study"
    uid_a = write_ct_series(study / "a", hu=body_phantom(), spacing_zyx_mm=(2.5, 0.8, 0.7),
                            thickness_mm=2.5)
    uid_b = write_ct_series(study / "b", hu=body_phantom((4, 32, 32)),
                            spacing_zyx_mm=(1.0, 0.5, 0.5), thickness_mm=1.0)
    status, _, err = run(["analyze", study, "--out", tmp_path / "all", "--quiet"], capsys)
    assert status == 0, err
    doc = load_valid(tmp_path / "all" / "findings.json")
    by_uid = {s["series_instance_uid"]: s for s in doc["series"]}
    assert set(by_uid) == {uid_a, uid_b}
    assert by_uid[uid_a]["shape"] == [6, 40, 48]
    assert by_uid[uid_a]["spacing_mm"] == pytest.approx([2.5, 0.8, 0.7])
    assert by_uid[uid_a]["slice_thickness_mm"] == 2.5
    assert by_uid[uid_b]["shape"] == [4, 32, 32]
    assert not any("thick" in w for w in doc["warnings"])

    status, _, err = run(["analyze", study, "--out", tmp_path / "one", "--quiet",
                          "--series", uid_b, "--threshold-hu", "200"], capsys)
    assert status == 0, err
    doc = load_valid(tmp_path / "one" / "findings.json")
    assert [s["series_instance_uid"] for s in doc["series"]] == [uid_b]
    assert doc["parameters"]["threshold_hu"] == 200.0

    status, _, err = run(["analyze", study, "--series", "1.2.3.999", "--quiet",
                          "--out", tmp_path / "none"], capsys)
    assert status == 3
    assert_one_sentence(err, "1.2.3.999")


def test_anonymize_replaces_uids_and_scrubs_names(tmp_path, capsys):
    study = tmp_path / "DOE_JANE"
    uid = write_ct_series(study, hu=body_phantom((3, 24, 24)), patient_name="DOE^JANE")
    (study / "JANE_notes.txt").write_text("not dicom", encoding="utf-8")
    out_dir = tmp_path / "anon"
    status, _, err = run(["analyze", study, "--out", out_dir, "--quiet", "--anonymize"],
                         capsys)
    assert status == 0, err
    doc = load_valid(out_dir / "findings.json")
    assert doc["series"][0]["series_instance_uid"] != uid
    assert doc["study"]["study_instance_uid"] != "1.2.840.99999.4.1"
    assert any("non-DICOM" in w for w in doc["warnings"])  # the warning stays, scrubbed
    for path in out_dir.iterdir():  # every format, binary ones (PDF, DICOM, PNG) too
        data = path.read_bytes()
        for secret in (uid, "1.2.840.99999.4.1", "DOE", "JANE", "PID-4711",
                       "19470203"):
            assert secret.encode() not in data, (path.name, secret)
            assert secret not in path.name


# -- end to end on the bundled sample study -------------------------------------------------

SEED_CASE_CLINICAL = CONTRACT_CLINICAL  # the seed case: elderly man, normal labs


@pytest.fixture(scope="module")
def generalized_sample() -> Path:
    from napari_calcinosis.phantom import sample_study_path

    return sample_study_path("generalized")


@pytest.mark.slow
def test_end_to_end_on_the_generalized_sample(generalized_sample, tmp_path, capsys):
    truth = json.loads((generalized_sample / "truth.json").read_text(encoding="utf-8"))
    clinical = tmp_path / "clinical.json"
    clinical.write_text(json.dumps(SEED_CASE_CLINICAL), encoding="utf-8")
    status, out, err = run(["analyze", generalized_sample, "--out", tmp_path / "out",
                            "--formats", "json", "--clinical", clinical, "--quiet"], capsys)
    assert status == 0, err
    assert err == "" and out.split() == [str(tmp_path / "out" / "findings.json")]
    doc = load_valid(tmp_path / "out" / "findings.json")
    summary = doc["summary"]
    assert summary["source"] == "CT"
    assert summary["extent"] == truth["expected"]["extent"] == "generalized"
    assert summary["form"] == "universalis" and summary["lesion_count"] > 0
    ct = next(s for s in doc["series"] if s["kind"] == "volume")
    assert ct["series_instance_uid"] == truth["ct"]["series_instance_uid"]
    assert ct["shape"] == truth["ct"]["shape"]
    assert ct["spacing_mm"] == pytest.approx(truth["ct"]["spacing_zyx_mm"])
    assert sorted(s["view"] for s in doc["series"] if s["kind"] == "radiograph") == [
        "frontal", "lateral"]
    ids = [lesion["id"] for lesion in doc["lesions"]]
    assert len(ids) == len(set(ids)) and summary["lesion_count"] <= len(ids)
    ct_lesions = [les for les in doc["lesions"]
                  if les["series_instance_uid"] == ct["series_instance_uid"]]
    assert all(les["centroid_mm"] is not None for les in ct_lesions)
    assert any("5 mm thick" in w for w in doc["warnings"])
    top = doc["differential"][0]
    assert (top["diagnosis"], top["form"]) == ("idiopathic_calcinosis_cutis", "universalis")


@pytest.mark.slow
def test_demo_builds_and_analyses_the_sample(generalized_sample, tmp_path, capsys,
                                            monkeypatch):
    from napari_calcinosis.phantom import _samples as phantom_samples

    asked = []

    def recorded(name, **kwargs):  # the real one, which serves the module's cached build
        asked.append(name)
        return phantom_samples.sample_study_path(name, **kwargs)

    monkeypatch.setattr(cli, "sample_study_path", recorded)
    out_dir = tmp_path / "demo"
    status, out, err = run(["demo", "--out", out_dir], capsys)
    assert status == 0, err
    assert asked == ["generalized"]
    assert out.startswith("Sample study: ") and "generalized-" in out.splitlines()[0]
    assert str(out_dir / "findings.json") in out and str(out_dir / "lesions.csv") in out
    assert "[100%]" in err
    doc = load_valid(out_dir / "findings.json")
    assert doc["summary"]["extent"] == "generalized"
    # The demo carries the seed case's normal labs: idiopathic universalis leads.
    top = doc["differential"][0]
    assert (top["diagnosis"], top["form"]) == ("idiopathic_calcinosis_cutis", "universalis")
    rows = (out_dir / "lesions.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + len(doc["lesions"])


# -- atomic writes ---------------------------------------------------------------------------

def _fail_midway(monkeypatch):
    from napari_calcinosis.files import atomic_open
    from napari_calcinosis.report import _json as json_report

    def half_then_crash(path, text):
        with atomic_open(path, "w") as handle:
            handle.write(text[: len(text) // 2])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(json_report, "atomic_write_text", half_then_crash)


def test_crash_midway_keeps_old_file_and_leaves_no_partial(ct_small, tmp_path, capsys,
                                                          monkeypatch):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "findings.json").write_text('{"old": true}', encoding="utf-8")
    _fail_midway(monkeypatch)
    status, _, err = run(["analyze", ct_small, "--out", out_dir, "--quiet"], capsys)
    assert status == 1
    assert_one_sentence(err, "findings.json", "No space left")
    assert (out_dir / "findings.json").read_text(encoding="utf-8") == '{"old": true}'
    assert sorted(p.name for p in out_dir.iterdir()) == ["findings.json"]

    fresh = tmp_path / "fresh"
    status, _, _ = run(["analyze", ct_small, "--out", fresh, "--quiet"], capsys)
    assert status == 1 and list(fresh.iterdir()) == []


def test_fsync_failure_never_publishes(ct_small, tmp_path, capsys, monkeypatch):
    import napari_calcinosis.files._atomic as io_utils

    def broken_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(io_utils.os, "fsync", broken_fsync)
    status, _, err = run(["analyze", ct_small, "--out", tmp_path, "--quiet"], capsys)
    assert status == 1
    assert_one_sentence(err, "Input/output error")
    assert list(tmp_path.iterdir()) == []


# -- clinical input ------------------------------------------------------------------------

@pytest.mark.parametrize("doc, name", [
    ({"labs": {"magnesium": {"value": 1, "unit": "mmol/L"}}}, "magnesium"),
    ({"labs": {"calcium": {"value": 9, "unit": "mEq/L"}}}, "mEq/L"),
    ({"history": {"connective_tissue_disease": "psoriasis"}}, "psoriasis"),
    ({"history": {"smoker": True}}, "smoker"),
])
def test_bad_clinical_file_exits_2_naming_it(doc, name, radiograph, tmp_path, capsys):
    clinical = tmp_path / "clinical.json"
    clinical.write_text(json.dumps(doc), encoding="utf-8")
    status, _, err = run(["analyze", radiograph, "--clinical", clinical,
                          "--out", tmp_path / "out"], capsys)
    assert status == 2
    assert_one_sentence(err, name, str(clinical))
    assert not (tmp_path / "out").exists()  # checked before any work


def test_unreadable_clinical_file_exits_2(radiograph, tmp_path, capsys):
    status, _, err = run(["analyze", radiograph, "--clinical", tmp_path / "nope.json"], capsys)
    assert status == 2
    assert_one_sentence(err, "nope.json")


def test_good_clinical_file_is_accepted(ct_small, tmp_path, capsys):
    clinical = tmp_path / "clinical.json"
    clinical.write_text(json.dumps({"sex": "F", "labs": {"pth": {"value": 5.1,
                                                                  "unit": "pmol/L"}}}),
                        encoding="utf-8")
    status, _, err = run(["analyze", ct_small, "--clinical", clinical, "--out", tmp_path,
                          "--quiet"], capsys)
    assert status == 0, err
    assert "clinical" not in load_valid(tmp_path / "findings.json")


# -- view (wiring, with a stand-in for napari; the real viewer is tested under tests/qt) ----

class _FakeWindow:
    def __init__(self, log):
        self.log = log

    def add_plugin_dock_widget(self, plugin, name):
        widget = types.SimpleNamespace(set_clinical=lambda c: self.log.append(("clinical", c)))
        self.log.append(("dock", plugin, name))
        return object(), widget


def test_view_opens_the_study_with_the_plugin_and_docks_panels(radiograph, tmp_path, capsys,
                                                              monkeypatch):
    from napari_calcinosis._qt import viewer as qt_viewer

    log: list = []

    class FakeViewer:
        def __init__(self):
            self.window = _FakeWindow(log)

        def open(self, path, plugin=None):
            log.append(("open", path, plugin))

    fake = types.SimpleNamespace(Viewer=FakeViewer, run=lambda: log.append(("run",)))
    monkeypatch.setattr(qt_viewer, "napari", fake)
    monkeypatch.setattr(qt_viewer, "_plugin_widget_names", lambda: ["Detection", "Report"])
    clinical = tmp_path / "clinical.json"
    clinical.write_text('{"age": 70}', encoding="utf-8")
    status, _, err = run(["view", radiograph, "--clinical", clinical], capsys)
    assert status == 0, err
    # the panels are docked first (detection on open then finds its panel), then the study
    assert [e[0] for e in log[:3]] == ["dock", "dock", "open"]
    assert log[2] == ("open", str(radiograph), "napari-calcinosis")
    assert [e[2] for e in log if e[0] == "dock"] == ["Detection", "Report"]
    given = [e[1] for e in log if e[0] == "clinical"]
    assert len(given) == 2 and given[0] == ClinicalInput(age_years=70)
    assert log[-1] == ("run",)

    log.clear()
    clinical.write_text('{"age": "old"}', encoding="utf-8")
    status, _, err = run(["view", radiograph, "--clinical", clinical], capsys)
    assert status == 2 and log == []
    assert_one_sentence(err, "'age'")


@pytest.mark.qt
@pytest.mark.skipif(sys.platform.startswith("linux") and not os.environ.get("DISPLAY"),
                    reason="a real napari viewer needs a display (run under xvfb-run)")
def test_view_in_a_real_viewer(testdata, monkeypatch, own_napari_app):
    from napari_calcinosis._qt import viewer as qt_viewer

    # Wiring only: no background detection racing the viewer's close at the end.
    monkeypatch.setenv("NAPARI_CALCINOSIS_AUTODETECT", "0")
    viewer = qt_viewer.launch_viewer(testdata("CT_small.dcm"),
                               clinical=ClinicalInput(age_years=70), run=False)
    try:
        assert len(viewer.layers) >= 1
        assert tuple(viewer.layers[0].scale) == pytest.approx((5.0, 0.661468, 0.661468))
        # one dock, the reading room, holding every other panel of the plugin
        docked = list(viewer.window.dock_widgets)
        assert docked == [f"{qt_viewer.READING_ROOM} (napari-calcinosis)"]
        room = viewer.window.dock_widgets[docked[0]]
        assert set(room.panels) == set(qt_viewer._plugin_widget_names()) - {
            qt_viewer.READING_ROOM}
        assert room.panels["Clinical input"].age.value == "70"  # --clinical reached the form
    finally:
        viewer.close()


# -- a real process ------------------------------------------------------------------------

def test_subprocess_exit_codes(ct_small, tmp_path):
    """``python -m napari_calcinosis`` in real processes (run side by side): 0, 1, 2, 3."""
    junk = tmp_path / "junk.txt"
    junk.write_text("hello", encoding="utf-8")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder", encoding="utf-8")
    cases = {
        0: ["analyze", ct_small, "--quiet", "--formats", "json,csv"],
        1: ["analyze", ct_small, "--out", blocker],
        2: ["analyze", ct_small, "--formats", "json,docx"],
        3: ["analyze", junk],
    }
    procs = {code: subprocess.Popen([sys.executable, "-m", "napari_calcinosis",
                                     *map(str, argv)], cwd=tmp_path, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for code, argv in cases.items()}
    results = {}
    for code, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        results[code] = (proc.returncode, out, err)
    status, out, err = results[0]
    assert status == 0 and err == "", err
    assert out.split() == [str(Path("calcinosis-report", name))
                           for name in ("findings.json", "lesions.csv")]
    load_valid(tmp_path / "calcinosis-report" / "findings.json")  # default --out
    for code, words in ((1, ["blocker"]), (2, ["'docx'"]), (3, ["junk.txt"])):
        status, out, err = results[code]
        assert status == code, (code, err)
        assert_one_sentence(err, *words)


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "napari-calcinosis"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("napari-calcinosis ")


def test_progress_printer_prints_a_line_per_step():
    import io

    stream = io.StringIO()
    printer = cli.ProgressPrinter(stream)
    for k in range(1, 101):
        printer(0.3 * k / 100, f"read {k} of 100 files")
    printer(0.5, "Modelling the body")
    printer(0.5, "Modelling the body")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[  0%] read 1 of 100 files" and lines[-1] == "[ 50%] Modelling the body"
    assert 3 <= len(lines) <= 6
    quiet = io.StringIO()
    cli.ProgressPrinter(quiet, quiet=True)(0.5, "x")
    assert quiet.getvalue() == ""
