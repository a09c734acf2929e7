"""The PACS panel and the Report panel's "Send to PACS" in a real viewer, against a real
Orthanc (Debian's ``orthanc`` + ``orthanc-dicomweb``, started by ``tests/_support/orthanc.py``).

The real CT slab is stored on Orthanc; the panel finds it by patient ID, lists it (patient,
date, modality, description), opens it (retrieved in a worker, then read by the plugin's
reader: a CT layer appears); after detection, "Send to PACS" stores the SR, SEG and key
images in that study on Orthanc. A server that refuses the credentials or cannot be reached
gives one sentence in the panel, never a traceback.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pydicom
import pytest
from orthanc import OrthancServer, orthanc_available
from review_helpers import dock, open_and_detect

from napari_calcinosis._napari.layer_data import VOLUME_KEY
from napari_calcinosis._qt import pacs_send, pacs_widget, preferences
from napari_calcinosis.pacs import PacsClient, PacsServer

pytestmark = [pytest.mark.qt, pytest.mark.skipif(
    not orthanc_available(), reason="Debian's orthanc and orthanc-dicomweb are needed")]
SLAB = Path(__file__).resolve().parents[1] / "data" / "realct" / "pancreas-ct-cbct-seg-001-slab8"
SCREENSHOTS = Path(os.environ.get("CALCINOSIS_SCREENSHOTS", "")) if \
    os.environ.get("CALCINOSIS_SCREENSHOTS") else None


@pytest.fixture(scope="module")
def orthanc():
    with OrthancServer(client_aets={"CALCI_SCU": None}) as server:
        yield server


def _server(orthanc) -> PacsServer:
    return PacsServer(name="hospital", dicomweb_url=orthanc.dicomweb_url, timeout_s=10,
                      username=orthanc.username, password=orthanc.password)


@pytest.fixture(scope="module")
def stored(orthanc, tmp_path_factory) -> pydicom.Dataset:
    client = PacsClient(_server(orthanc), cache_dir=tmp_path_factory.mktemp("upload"))
    assert client.store(sorted(SLAB.glob("*.dcm"))) == 8
    return pydicom.dcmread(next(SLAB.glob("*.dcm")), stop_before_pixels=True)


@pytest.fixture
def servers(orthanc, tmp_path, monkeypatch):
    """A servers file naming the test Orthanc ``hospital``; credentials in the
    environment; errors collected instead of shown."""
    path = tmp_path / "servers.json"
    path.write_text(json.dumps({"hospital": {"dicomweb_url": orthanc.dicomweb_url,
                                             "timeout_s": 10}}))
    monkeypatch.setenv("NAPARI_CALCINOSIS_PACS_SERVERS", str(path))
    monkeypatch.setenv("NAPARI_CALCINOSIS_PACS_HOSPITAL_USER", orthanc.username)
    monkeypatch.setenv("NAPARI_CALCINOSIS_PACS_HOSPITAL_PASSWORD", orthanc.password)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(preferences._state, "enabled", False)  # detection run by hand
    monkeypatch.setattr(pacs_send, "_ORIGIN", {})
    errors: list[str] = []
    monkeypatch.setattr(pacs_widget, "show_error", errors.append)
    monkeypatch.setattr(pacs_send, "show_error", errors.append)
    return path, errors


def _search(widget, qtbot, **fields) -> None:
    for name, value in fields.items():
        getattr(widget, name).value = value
    widget.search_button.clicked.emit()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=30_000)


def _one_sentence(text: str) -> str:
    assert "\n" not in text and "Traceback" not in text and "Unexpected" not in text, text
    return text


def test_find_list_and_open_a_study(make_napari_viewer, qtbot, stored, servers):
    viewer = make_napari_viewer()
    widget = dock(viewer, "PACS")
    assert widget.server.choices == ("hospital",) and widget.search_button.enabled
    _search(widget, qtbot, patient_id=str(stored.PatientID))
    assert widget.table.rowCount() == 1
    cells = [widget.table.item(0, c).text() for c in range(len(pacs_widget.COLUMNS))]
    date = str(stored.StudyDate)
    name = str(stored.PatientName).replace("^", " ").strip()
    assert cells[0] == (name if name == str(stored.PatientID) else
                        f"{name} ({stored.PatientID})")
    assert cells[1:3] == [f"{date[:4]}-{date[4:6]}-{date[6:]}", "CT"]
    assert cells[3] == str(stored.get("StudyDescription", "")) and cells[4] == "8"
    assert "1 study found" in widget.status.value
    if SCREENSHOTS is not None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        widget.native.grab().save(str(SCREENSHOTS / "pacs_panel_results.png"))
        viewer.window._qt_window.grab().save(str(SCREENSHOTS / "pacs_viewer_results.png"))
    # a date range that excludes it, and a bad date
    _search(widget, qtbot, date_from="1990-01-01", date_to="1990-12-31")
    assert widget.table.rowCount() == 0 and "No study" in widget.status.value
    widget.date_from.value = "31/31/2020"
    widget.search_button.clicked.emit()
    assert "Date from '31/31/2020' is not a date" in _one_sentence(widget.status.value)
    _search(widget, qtbot, date_from=date, date_to="")
    assert widget.table.rowCount() == 1
    # open: retrieved in a worker with progress, then read by the plugin's reader
    widget.open_button.clicked.emit()
    assert widget.is_running and not widget.progress.native.isHidden()
    assert not widget.open_button.enabled and not widget.search_button.enabled
    qtbot.waitUntil(lambda: not widget.is_running, timeout=60_000)
    volumes = [layer for layer in viewer.layers if VOLUME_KEY in layer.metadata]
    assert len(volumes) == 1 and volumes[0].data.shape[0] == 8
    assert volumes[0].metadata["study_instance_uid"] == str(stored.StudyInstanceUID)
    assert "Opened the study" in widget.status.value


def test_send_to_pacs_from_the_report_panel(make_napari_viewer, qtbot, orthanc, stored,
                                            servers, tmp_path, monkeypatch):
    path, errors = servers
    viewer = make_napari_viewer()
    widget = dock(viewer, "PACS")
    _search(widget, qtbot, patient_id=str(stored.PatientID))
    widget.open_study(0)
    qtbot.waitUntil(lambda: not widget.is_running, timeout=60_000)
    open_and_detect(viewer, qtbot, None)
    report = dock(viewer, "Report")

    def send() -> str:
        report.send_button.clicked.emit()
        qtbot.waitUntil(lambda: report.send_button.enabled, timeout=60_000)
        return report.status.value

    # refused credentials, then an unreachable server: one sentence each, nothing stored
    monkeypatch.setenv("NAPARI_CALCINOSIS_PACS_HOSPITAL_PASSWORD", "wrong")
    assert "refused the credentials (HTTP 401)" in _one_sentence(send())
    monkeypatch.setenv("NAPARI_CALCINOSIS_PACS_HOSPITAL_PASSWORD", orthanc.password)
    good = path.read_text()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    path.write_text(json.dumps({"hospital": {
        "dicomweb_url": f"http://127.0.0.1:{free}/dicom-web", "timeout_s": 5}}))
    assert "Cannot reach PACS hospital" in _one_sentence(send())
    assert len(errors) == 2 and all("\n" not in e for e in errors)
    uid = str(stored.StudyInstanceUID)
    client = PacsClient(_server(orthanc), cache_dir=tmp_path / "readback")
    assert {str(pydicom.dcmread(p).Modality)
            for p in client.retrieve_study(uid).glob("*.dcm")} == {"CT"}
    # the real server: SR, SEG and key images in the same study
    path.write_text(good)
    status = send()
    assert status.startswith("Stored 4 DICOM objects in the study on PACS hospital: "), status
    assert report.status.native.toolTip() == f"StudyInstanceUID {uid}"
    if SCREENSHOTS is not None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        viewer.window._qt_window.grab().save(str(SCREENSHOTS / "report_sent.png"))
        report.native.resize(460, 700)
        report.native.grab().save(str(SCREENSHOTS / "report_panel_sent.png"))
    by_class: dict[str, list] = {}
    for file in client.retrieve_study(uid).glob("*.dcm"):
        ds = pydicom.dcmread(file)
        assert ds.StudyInstanceUID == uid
        by_class.setdefault(str(ds.SOPClassUID), []).append(ds)
    assert len(by_class[pydicom.uid.Comprehensive3DSRStorage]) == 1
    assert len(by_class[pydicom.uid.SegmentationStorage]) == 1
    assert len(by_class[pydicom.uid.SecondaryCaptureImageStorage]) == 2
    assert len(errors) == 2


def test_unreachable_server_is_one_sentence_in_the_panel(make_napari_viewer, qtbot, servers):
    path, errors = servers
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    path.write_text(json.dumps({"hospital": {
        "dicomweb_url": f"http://127.0.0.1:{free}/dicom-web", "timeout_s": 5}}))
    widget = dock(make_napari_viewer(), "PACS")
    _search(widget, qtbot, patient_id="anyone")
    sentence = _one_sentence(widget.status.value)
    assert sentence.startswith("Cannot reach PACS hospital at http://127.0.0.1:")
    assert errors == [sentence] and widget.table.rowCount() == 0
    assert "calci-secret" not in sentence


def test_no_servers_file_says_where_to_describe_one(make_napari_viewer, tmp_path,
                                                    monkeypatch):
    monkeypatch.setenv("NAPARI_CALCINOSIS_PACS_SERVERS", str(tmp_path / "none.json"))
    widget = dock(make_napari_viewer(), "PACS")
    assert not widget.search_button.enabled and not widget.open_button.enabled
    assert widget.status.value.startswith(
        f"No PACS is configured: describe one in {tmp_path / 'none.json'}")


def test_unreadable_servers_file_is_one_sentence(make_napari_viewer, tmp_path, monkeypatch):
    broken = tmp_path / "servers.json"
    broken.write_text("{not json")
    monkeypatch.setenv("NAPARI_CALCINOSIS_PACS_SERVERS", str(broken))
    widget = dock(make_napari_viewer(), "PACS")
    assert not widget.search_button.enabled and widget.server.choices == ()
    assert _one_sentence(widget.status.value).startswith(
        f"The PACS servers file {broken} cannot be read")
