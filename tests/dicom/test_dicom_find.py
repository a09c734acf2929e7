"""Recognising DICOM files by content, and scanning folders cheaply."""

from __future__ import annotations

import shutil

import pydicom
import pytest
from dicom_factory import known_stack, write_series

from napari_calcinosis.dicom import _find as dicom_find
from napari_calcinosis.dicom import _header as dicom_header
from napari_calcinosis.dicom import find_dicom_files, is_dicom_file, load_study
from napari_calcinosis.types import DicomReadError


def test_is_dicom_file_by_content(testdata, tmp_path):
    assert is_dicom_file(testdata("CT_small.dcm"))
    shutil.copy(testdata("CT_small.dcm"), tmp_path / "noext")
    assert is_dicom_file(tmp_path / "noext")
    # No preamble and no meta, little endian: explicit VR (pydicom's file) and implicit VR.
    assert is_dicom_file(testdata("ExplVR_LitEndNoMeta.dcm"))
    ds = pydicom.dcmread(testdata("CT_small.dcm"))
    del ds.file_meta
    ds.preamble = None
    pydicom.dcmwrite(tmp_path / "implicit", ds, implicit_vr=True, little_endian=True)
    assert (tmp_path / "implicit").read_bytes()[128:132] != b"DICM"
    assert is_dicom_file(tmp_path / "implicit")
    (vol,) = load_study(tmp_path / "implicit").volumes
    assert vol.shape == (1, 128, 128)
    (tmp_path / "a.dcm").write_text("just text, named like DICOM")
    (tmp_path / "empty.dcm").write_bytes(b"")
    (tmp_path / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 200)
    for name in ("a.dcm", "empty.dcm", "pic.png", "missing"):
        assert not is_dicom_file(tmp_path / name)
    assert not is_dicom_file(tmp_path)


def test_find_dicom_files_recursive(tmp_path, testdata):
    write_series(tmp_path / "x" / "y", known_stack(n=3), names=["1", "2", "3"])
    (tmp_path / "x" / "note.txt").write_text("hello")
    found = find_dicom_files(tmp_path)
    assert [p.name for p in found] == ["1", "2", "3"]
    assert find_dicom_files(tmp_path / "x" / "y" / "2") == [tmp_path / "x" / "y" / "2"]
    with pytest.raises(DicomReadError, match="no such file"):
        find_dicom_files(tmp_path / "nope")


def test_find_dicom_files_dicomdir(testdata):
    files = find_dicom_files(testdata("DICOMDIR"))
    ds_files = pydicom.dcmread(testdata("DICOMDIR")).DirectoryRecordSequence
    referenced = [r for r in ds_files if r.get("ReferencedFileID")]
    assert len(files) == len(referenced) and all(f.is_file() for f in files)


def test_thousands_of_non_dicom_files_read_few_bytes(tmp_path, monkeypatch):
    junk = tmp_path / "junk"
    junk.mkdir()
    for k in range(2000):
        (junk / f"file{k}.txt").write_bytes(b"x" * 4096)
    write_series(tmp_path / "ct", known_stack(n=3))
    bytes_read = []
    real_prefix = dicom_find._read_prefix

    def counting_prefix(path, size=dicom_find._PREFIX_BYTES):
        data = real_prefix(path, size)
        bytes_read.append(len(data))
        return data

    parsed = []
    real_read_header = dicom_header.read_header

    def counting_header(path, **kw):
        parsed.append(path)
        return real_read_header(path, **kw)

    monkeypatch.setattr(dicom_find, "_read_prefix", counting_prefix)
    monkeypatch.setattr("napari_calcinosis.dicom._load.read_header", counting_header)
    study = load_study(tmp_path)
    assert len(study.volumes) == 1 and study.volumes[0].shape[0] == 3
    assert len(bytes_read) == 2003 and max(bytes_read) <= 132
    assert len(parsed) == 3  # only the DICOM files are parsed
    (summary,) = [w for w in study.warnings if "non-DICOM" in w]
    assert "2000 non-DICOM files" in summary


def test_missing_path_raises(tmp_path):
    with pytest.raises(DicomReadError, match="no such file"):
        load_study(tmp_path / "absent")


def test_damaged_zip_raises(tmp_path):
    path = tmp_path / "bad.zip"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 10)
    # Not a valid archive: read as a (non-DICOM) single file.
    with pytest.raises(DicomReadError, match="bad.zip"):
        load_study(path)


def test_a_written_phantom_studys_truth_json_is_not_reported(tmp_path):
    """The phantom writer's ``truth.json`` belongs in its study folder: no 'non-DICOM'
    warning for it; a file of that name that is not this project's truth still gets one."""
    from napari_calcinosis.phantom import PhantomSpec, make_ct_phantom, write_study
    from napari_calcinosis.phantom._truth import SCHEMA

    assert SCHEMA.startswith(dicom_find.OWN_SIDE_FILES["truth.json"])
    spec = PhantomSpec(seed=5, z_range_mm=(400.0, 430.0), slice_thickness_mm=10.0,
                       pixel_spacing_mm=4.0, fov_mm=420.0)
    folder = write_study(make_ct_phantom(spec), tmp_path / "study", xray_views=())
    assert (folder / "truth.json").is_file()
    study = load_study(folder)
    assert len(study.volumes) == 1
    assert not [w for w in study.warnings if "non-DICOM" in w], study.warnings
    assert dicom_find.scan(folder).side_files == [folder / "truth.json"]

    (folder / "notes" / "truth.json").parent.mkdir()
    (folder / "notes" / "truth.json").write_text('{"schema": "someone-else/v1"}')
    (folder / "copy.json").write_bytes((folder / "truth.json").read_bytes())
    (warning,) = [w for w in load_study(folder).warnings if "non-DICOM" in w]
    assert warning.startswith("ignored 2 non-DICOM files")
