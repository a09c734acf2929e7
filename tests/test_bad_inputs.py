"""Bad input from the real world: each gives one sentence naming the file and the exit code
of the contract, and nothing else of the study is lost (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_calcinosis import cli
from napari_calcinosis.clinical import MAX_CLINICAL_BYTES

SLAB = Path(__file__).resolve().parent / "data" / "realct" / "pancreas-ct-cbct-seg-001-slab8"


def _analyze(argv, capsys) -> tuple[int, str]:
    status = cli.main(["analyze", *map(str, argv), "--quiet"])
    return status, capsys.readouterr().err


@pytest.mark.parametrize("name,text,words", [
    ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("bigint.json", '{"age": ' + "9" * 400 + "}", "cannot be used"),
    ("bigvalue.json", '{"labs": {"calcium": {"value": 1' + "0" * 400 + ', "unit": "mg/dL"}}}',
     "cannot be used"),
    ("huge.json", '{"history": {}, "x": "' + "a" * (MAX_CLINICAL_BYTES + 10) + '"}',
     "larger than"),
])
def test_malformed_clinical_file_is_exit_2_with_one_sentence(tmp_path, capsys, name, text,
                                                             words):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    status, err = _analyze([SLAB, "--out", tmp_path / "out", "--clinical", path], capsys)
    assert status == 2
    assert err.count("\n") == 1 and str(path) in err and words in err
    assert "Unexpected" not in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_clinical_file_that_is_a_device_is_refused(tmp_path, capsys):
    status, err = _analyze([SLAB, "--out", tmp_path / "out", "--clinical", "/dev/zero"],
                           capsys)
    assert status == 2 and "/dev/zero" in err and "not a regular file" in err


def _copy_slab(folder: Path) -> Path:
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for path in SLAB.glob("*.dcm"):
        shutil.copy(path, folder / path.name)
    return folder


def test_named_pipe_in_the_study_folder_is_named_and_skipped(tmp_path, capsys):
    import json
    import os

    study = _copy_slab(tmp_path / "study")
    os.mkfifo(study / "pipe")  # opening it for reading would block for ever
    status, err = _analyze([study, "--out", tmp_path / "out", "--formats", "json"], capsys)
    assert status == 0
    assert "pipe: not a regular file" in err
    doc = json.loads((tmp_path / "out" / "findings.json").read_text(encoding="utf-8"))
    assert doc["series"][0]["shape"][0] == 8
    assert any("pipe: not a regular file" in w for w in doc["warnings"])


def test_zip_bomb_is_refused_with_a_sentence(tmp_path, capsys):
    import zipfile

    bomb = tmp_path / "study.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("CT/slice1.dcm", b"\0" * (64 * 1024 * 1024))  # stored ~64 KiB
    status, err = _analyze([bomb, "--out", tmp_path / "out"], capsys)
    assert status in (1, 3)
    assert str(bomb) in err and "zip bomb" in err and "Unexpected" not in err


def test_zip_larger_than_the_cap_is_refused_before_extraction(tmp_path, capsys,
                                                              monkeypatch):
    import zipfile

    from napari_calcinosis.dicom import _find

    archive_path = tmp_path / "study.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        for path in SLAB.glob("*.dcm"):
            archive.write(path, f"CT/{path.name}")
    monkeypatch.setattr(_find, "ZIP_MAX_BYTES", 1024 * 1024)  # the 8 slices are 4 MiB
    status, err = _analyze([archive_path, "--out", tmp_path / "out"], capsys)
    assert status in (1, 3) and "would unpack to" in err and str(archive_path) in err
    monkeypatch.undo()
    status, err = _analyze([archive_path, "--out", tmp_path / "out2", "--formats", "json"],
                           capsys)
    assert status == 0, err


def test_anonymised_outputs_follow_the_basic_profile(tmp_path, capsys):
    """Dates, times and free-text descriptions of the real source are in no output."""
    import pydicom

    source = pydicom.dcmread(next(SLAB.glob("*.dcm")), stop_before_pixels=True)
    secrets = [str(source.StudyTime), str(source.SeriesTime), str(source.StudyDescription),
               str(source.SeriesDescription), str(source.StudyDate), str(source.PatientName)]
    out = tmp_path / "out"
    status, err = _analyze([SLAB, "--out", out, "--anonymize"], capsys)
    assert status == 0, err
    for name in ("sr.dcm", "seg.dcm"):
        ds = pydicom.dcmread(out / name)
        # emptied, or the profile's dummy (study date and time, and the object's own)
        for keyword in ("StudyTime", "SeriesTime", "ContentTime", "StudyDate", "SeriesDate"):
            value = str(ds.get(keyword, "") or "").strip()
            assert value in ("", "19000101", "000000"), (name, keyword, value)
            assert value != str(source.get(keyword, "") or ""), (name, keyword)
        for keyword in ("StudyDescription",):
            assert str(ds.get(keyword, "") or "") != str(source.get(keyword)), (name, keyword)
    for path in out.iterdir():
        if path.suffix in (".json", ".csv", ".html", ".dcm"):
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, (path.name, secret)
