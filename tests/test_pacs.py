"""The PACS client and ``analyze pacs://... --send`` against a real Orthanc (Debian's
``orthanc`` + ``orthanc-dicomweb``), started on loopback ports with its own storage and
configuration by the fixture (``tests/_support/orthanc.py``) and stopped afterwards.

The real CT slab (``tests/data/realct``) is stored, found by patient ID and by date,
retrieved over DICOMweb and over DIMSE, analysed; the SR and SEG are sent back and read
back from Orthanc, in the same study, with highdicom. A wrong port, bad credentials, a
refused association and a timeout each give one sentence and exit 1.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pydicom
import pytest
from orthanc import OrthancServer, orthanc_available

from napari_calcinosis import cli
from napari_calcinosis.pacs import PacsClient, PacsError, PacsServer

SLAB = Path(__file__).resolve().parent / "data" / "realct" / "pancreas-ct-cbct-seg-001-slab8"
pytestmark = pytest.mark.skipif(not orthanc_available(),
                                reason="Debian's orthanc and orthanc-dicomweb are needed "
                                       "(bash .ci/setup --test installs them)")
CALLING = "CALCI_SCU"


@pytest.fixture(scope="module")
def orthanc():
    with OrthancServer(client_aets={CALLING: None}) as server:
        yield server


@pytest.fixture(scope="module")
def stored(orthanc, tmp_path_factory) -> str:
    """The slab stored on Orthanc over STOW-RS; its StudyInstanceUID."""
    client = PacsClient(_server(orthanc), cache_dir=tmp_path_factory.mktemp("cache"))
    assert client.store(sorted(SLAB.glob("*.dcm"))) == 8
    return str(pydicom.dcmread(next(SLAB.glob("*.dcm"))).StudyInstanceUID)


def _server(orthanc, **changes) -> PacsServer:
    server = PacsServer(name="test", dicomweb_url=orthanc.dicomweb_url, aet=orthanc.aet,
                        host="127.0.0.1", port=orthanc.dicom_port, calling_aet=CALLING,
                        timeout_s=10, username=orthanc.username, password=orthanc.password)
    for key, value in changes.items():
        setattr(server, key, value)
    return server


@pytest.fixture
def servers_file(orthanc, tmp_path, monkeypatch):
    """A servers file naming the test Orthanc, credentials in the environment."""
    path = tmp_path / "servers.json"
    path.write_text(json.dumps({"test": {
        "dicomweb_url": orthanc.dicomweb_url, "aet": orthanc.aet, "host": "127.0.0.1",
        "port": orthanc.dicom_port, "calling_aet": CALLING, "timeout_s": 10}}))
    monkeypatch.setenv("NAPARI_CALCINOSIS_PACS_SERVERS", str(path))
    monkeypatch.setenv("NAPARI_CALCINOSIS_PACS_TEST_USER", orthanc.username)
    monkeypatch.setenv("NAPARI_CALCINOSIS_PACS_TEST_PASSWORD", orthanc.password)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return path


@pytest.mark.parametrize("protocol", ["dicomweb", "dimse"])
def test_find_by_patient_and_date_and_retrieve(orthanc, stored, tmp_path, protocol):
    ds = pydicom.dcmread(next(SLAB.glob("*.dcm")), stop_before_pixels=True)
    client = PacsClient(_server(orthanc), protocol=protocol, cache_dir=tmp_path)
    (hit,) = client.find_studies(patient_id=str(ds.PatientID))
    assert hit.study_uid == stored and "CT" in hit.modalities
    date = str(ds.StudyDate)
    assert [h.study_uid for h in client.find_studies(date_from=date, date_to=date,
                                                     modality="CT")] == [stored]
    assert client.find_studies(patient_id="NOBODY") == []
    folder = client.retrieve_study(stored)
    files = sorted(folder.glob("*.dcm"))
    assert len(files) == 8
    original = {str(pydicom.dcmread(p).SOPInstanceUID): pydicom.dcmread(p).pixel_array
                for p in SLAB.glob("*.dcm")}
    for path in files:
        got = pydicom.dcmread(path)
        assert (got.pixel_array == original[str(got.SOPInstanceUID)]).all()


def test_analyze_from_the_pacs_and_send_the_results_back(orthanc, stored, servers_file,
                                                         tmp_path, capsys):
    import highdicom as hd

    out = tmp_path / "out"
    status = cli.main(["analyze", f"pacs://test/{stored}", "--out", str(out), "--quiet",
                       "--send"])
    err = capsys.readouterr().err
    assert status == 0, err
    assert ("stored 4 file(s) (sr.dcm, seg.dcm, key_ct_coronal_mip.dcm, "
            "key_ct_axial_slab.dcm)") in err
    by_class = _read_back(orthanc, stored, tmp_path / "readback")
    sr = hd.sr.srread(by_class[pydicom.uid.Comprehensive3DSRStorage][0])
    seg = hd.seg.segread(by_class[pydicom.uid.SegmentationStorage][0])
    assert sr.StudyInstanceUID == seg.StudyInstanceUID == stored
    ct_series = {str(pydicom.dcmread(p).SeriesInstanceUID)
                 for p in by_class[pydicom.uid.CTImageStorage]}
    assert {s.SeriesInstanceUID for s in seg.ReferencedSeriesSequence} == ct_series
    # what the PACS now holds is what was written
    assert pydicom.dcmread(out / "sr.dcm").SOPInstanceUID == sr.SOPInstanceUID
    _assert_key_images(by_class, out, stored, ct_series)


def _read_back(orthanc, study_uid: str, cache: Path) -> dict[str, list[Path]]:
    """Every instance Orthanc holds in the study, by SOP class."""
    folder = PacsClient(_server(orthanc), cache_dir=cache).retrieve_study(study_uid)
    by_class: dict[str, list[Path]] = {}
    for path in folder.glob("*.dcm"):
        by_class.setdefault(str(pydicom.dcmread(path).SOPClassUID), []).append(path)
    return by_class


def _assert_key_images(by_class, out: Path, study_uid: str, ct_series: set[str]) -> None:
    """The key images are on the PACS as Secondary Capture images of the study, pixel for
    pixel the PNGs, referencing the CT instances they were made from."""
    import imageio.v3 as iio

    stored = {str(pydicom.dcmread(p).SOPInstanceUID): pydicom.dcmread(p)
              for p in by_class[pydicom.uid.SecondaryCaptureImageStorage]}
    assert len(stored) == 2
    for name in ("key_ct_coronal_mip", "key_ct_axial_slab"):
        written = pydicom.dcmread(out / f"{name}.dcm")
        sc = stored[str(written.SOPInstanceUID)]
        assert sc.StudyInstanceUID == study_uid
        assert sc.PatientID == written.PatientID and sc.Modality == "OT"
        assert (sc.pixel_array == iio.imread(out / f"{name}.png")).all()
        refs = {str(item.ReferencedSOPInstanceUID) for item in sc.SourceImageSequence}
        ct = {str(pydicom.dcmread(p).SOPInstanceUID): str(pydicom.dcmread(p).SeriesInstanceUID)
              for p in by_class[pydicom.uid.CTImageStorage]}
        assert refs and refs <= set(ct) and {ct[r] for r in refs} == ct_series


def _one_sentence(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err and "Unexpected" not in err, err
    return lines[0]


def test_pacs_find_on_the_command_line(orthanc, stored, servers_file, capsys):
    ds = pydicom.dcmread(next(SLAB.glob("*.dcm")), stop_before_pixels=True)
    for extra in ([], ["--dimse"]):
        assert cli.main(["pacs", "find", "test", "--patient-id", str(ds.PatientID),
                         *extra]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith("StudyInstanceUID") and out[1].startswith(stored)


def test_wrong_port_bad_credentials_refused_association_and_timeout(orthanc, stored,
                                                                     servers_file,
                                                                     tmp_path, monkeypatch,
                                                                     capsys):
    study = f"pacs://test/{stored}"
    # bad credentials
    monkeypatch.setenv("NAPARI_CALCINOSIS_PACS_TEST_PASSWORD", "wrong")
    assert cli.main(["analyze", study, "--out", str(tmp_path / "a"), "--quiet"]) == 1
    assert "refused the credentials (HTTP 401)" in _one_sentence(capsys.readouterr().err)
    assert not (tmp_path / "a").exists()
    monkeypatch.setenv("NAPARI_CALCINOSIS_PACS_TEST_PASSWORD", orthanc.password)
    # wrong port: nothing listens there
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    config = json.loads(servers_file.read_text())
    config["test"]["dicomweb_url"] = f"http://127.0.0.1:{free}/dicom-web"
    servers_file.write_text(json.dumps(config))
    assert cli.main(["analyze", study, "--out", str(tmp_path / "b"), "--quiet"]) == 1
    assert "Cannot reach PACS test" in _one_sentence(capsys.readouterr().err)
    # a refused association (an AE title Orthanc does not know)
    client = PacsClient(_server(orthanc, calling_aet="STRANGER"), protocol="dimse",
                        cache_dir=tmp_path)
    with pytest.raises(PacsError, match="refused the association: calling ae title not "
                                        "recognised"):
        client.find_studies(patient_id="x")
    # a server that accepts and never answers
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    accepted = []
    threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
    slow = PacsClient(_server(orthanc, dicomweb_url=f"http://127.0.0.1:"
                                                    f"{silent.getsockname()[1]}/dicom-web",
                              timeout_s=1), cache_dir=tmp_path)
    with pytest.raises(PacsError, match="did not answer the search within 1 s"):
        slow.find_studies(patient_id="x")
    for conn, _ in accepted:
        conn.close()
    silent.close()


def test_send_needs_a_pacs_study(tmp_path, capsys):
    assert cli.main(["analyze", str(SLAB), "--out", str(tmp_path), "--send"]) == 2
    assert "--send needs a pacs://" in capsys.readouterr().err


def _copy_slab(folder: Path, seed: str) -> str:
    """The slab as a new study (new UIDs, its own patient, another date); its UID."""
    from pydicom.uid import generate_uid

    study = generate_uid(entropy_srcs=[seed, "study"])
    series = generate_uid(entropy_srcs=[seed, "series"])
    folder.mkdir(parents=True)
    for k, path in enumerate(sorted(SLAB.glob("*.dcm"))):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[seed, str(k)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID, ds.StudyDate = f"BATCH-{seed}", "20010203"
        ds.save_as(folder / path.name)
    return study


def test_batch_of_pacs_studies_sends_each_ones_results_back(orthanc, servers_file, tmp_path,
                                                            capsys):
    import pandas as pd

    client = PacsClient(_server(orthanc), cache_dir=tmp_path / "upload")
    uids = []
    for seed in ("one", "two"):
        uid = _copy_slab(tmp_path / seed, seed)
        assert client.store(sorted((tmp_path / seed).glob("*.dcm"))) == 8
        uids.append(uid)
    listing = tmp_path / "uids.txt"
    listing.write_text(f"# the cohort\n{uids[0]}\n\n{uids[1]}  # second\n")
    out = tmp_path / "out"
    status = cli.main(["batch", "pacs://test", "--uids", str(listing), "--out", str(out),
                       "--formats", "json,sr,seg,png", "--send", "--workers", "2",
                       "--quiet"])
    assert status == 0, capsys.readouterr().err
    rows = pd.read_csv(out / "studies.csv")
    assert sorted(rows["study_instance_uid"]) == sorted(uids)
    assert list(rows["status"]) == ["ok", "ok"]
    for uid in uids:
        record = json.loads((out / uid / "batch.json").read_text())
        assert record["sent"] == ["sr.dcm", "seg.dcm", "key_ct_coronal_mip.dcm",
                                  "key_ct_axial_slab.dcm"]
        by_class = _read_back(orthanc, uid, tmp_path / "readback" / uid)
        sr = pydicom.dcmread(by_class[pydicom.uid.Comprehensive3DSRStorage][0])
        seg = pydicom.dcmread(by_class[pydicom.uid.SegmentationStorage][0])
        assert sr.StudyInstanceUID == seg.StudyInstanceUID == uid
        assert sr.SOPInstanceUID == pydicom.dcmread(out / uid / "sr.dcm").SOPInstanceUID
        ct_series = {str(pydicom.dcmread(p).SeriesInstanceUID)
                     for p in by_class[pydicom.uid.CTImageStorage]}
        _assert_key_images(by_class, out / uid, uid, ct_series)


def test_batch_names_a_study_the_pacs_does_not_hold(orthanc, servers_file, tmp_path, capsys):
    missing = "1.2.3.4.5.6.7.8.9"
    out = tmp_path / "out"
    assert cli.main(["batch", f"pacs://test/{missing}", "--out", str(out), "--quiet"]) == 1
    assert "1 of 1 studies failed" in _one_sentence(capsys.readouterr().err)
    assert (out / missing / "error.txt").read_text().strip() == \
        f"PACS test has no study {missing}."


@pytest.mark.parametrize(("argv", "words"), [
    (["pacs://test"], "needs --uids FILE"),
    (["pacs:/test/1.2"], "neither pacs://SERVER/STUDYUID"),
    (["pacs://nowhere/1.2.3"], "No PACS named 'nowhere'"),
    (["pacs://test/1.2.3", "--send", "--anonymize"], "--send with --anonymize"),
])
def test_batch_pacs_usage_errors(servers_file, tmp_path, capsys, argv, words):
    assert cli.main(["batch", *argv, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert words in _one_sentence(capsys.readouterr().err)


def test_uid_list_lines_are_checked(servers_file, tmp_path, capsys):
    listing = tmp_path / "uids.txt"
    listing.write_text("1.2.3\nnot-a-uid\n")
    assert cli.main(["batch", "pacs://test", "--uids", str(listing), "--out",
                     str(tmp_path / "o"), "--quiet"]) == 2
    assert f"Line 2 of {listing} is not a StudyInstanceUID" in \
        _one_sentence(capsys.readouterr().err)


def test_key_images_go_over_dimse_too(orthanc, tmp_path):
    """C-STORE of the Secondary Capture key images (archives without DICOMweb)."""
    from napari_calcinosis.run import run_analysis

    study = _copy_slab(tmp_path / "study", "dimse")
    written = run_analysis(tmp_path / "study", tmp_path / "out", formats=["sc"],
                           use_annotations=False)
    dimse = PacsClient(_server(orthanc), protocol="dimse", cache_dir=tmp_path / "c1")
    assert dimse.store(written) == 2  # the study itself is not on the PACS: only these
    back = dimse.retrieve_study(study)
    got = {str(pydicom.dcmread(p).SOPInstanceUID) for p in back.glob("*.dcm")}
    assert got == {str(pydicom.dcmread(p).SOPInstanceUID) for p in written}
