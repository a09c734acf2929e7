"""Writing a phantom as a DICOM study: valid files that read back to the same numbers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from napari_calcinosis.phantom import (
    PhantomSpec,
    ProjectionParams,
    make_ct_phantom,
    project_radiograph,
    write_study,
)
from napari_calcinosis.phantom import _samples as phantom_samples
from napari_calcinosis.types import CalcinosisError

SMALL = PhantomSpec(seed=21, z_range_mm=(380.0, 440.0), slice_thickness_mm=5.0,
                    pixel_spacing_mm=2.0)
XRAY = ProjectionParams(pixel_spacing_mm=1.0, z_range_mm=(380.0, 440.0))
def _tool(name: str) -> str | None:
    found = shutil.which(name)
    return found or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)


DCIODVFY, DCENTVFY = _tool("dciodvfy"), _tool("dcentvfy")


@pytest.fixture(scope="module")
def small_ct():
    return make_ct_phantom(SMALL)


@pytest.fixture(scope="module")
def study(small_ct, tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    return write_study(small_ct, folder, xray_views=("frontal", "lateral"), xray_params=XRAY)


def _ct_files(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in sorted((folder / "ct").glob("*.dcm"))]


def test_ct_round_trips_to_the_same_hu_and_geometry(small_ct, study):
    slices = _ct_files(study)
    assert len(slices) == small_ct.shape[0]
    hu = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
                   for ds in slices])
    np.testing.assert_array_equal(hu, small_ct.hu)
    z = [float(ds.ImagePositionPatient[2]) for ds in slices]
    assert np.all(np.diff(z) > 0)
    np.testing.assert_allclose(np.diff(z), small_ct.spacing_zyx_mm[0], atol=1e-3)
    first = slices[0]
    np.testing.assert_allclose([float(v) for v in first.ImagePositionPatient],
                               small_ct.origin_lps_mm, atol=1e-3)
    assert [float(v) for v in first.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert [float(v) for v in first.PixelSpacing] == [2.0, 2.0]
    assert float(first.SliceThickness) == 5.0
    assert first.SOPClassUID == pydicom.uid.CTImageStorage
    assert first.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert len({ds.StudyInstanceUID for ds in slices}) == 1
    assert len({ds.FrameOfReferenceUID for ds in slices}) == 1
    assert len({ds.SOPInstanceUID for ds in slices}) == len(slices)
    assert [ds.InstanceNumber for ds in slices] == list(range(1, len(slices) + 1))
    assert first.ConvolutionKernel and float(first.KVP) == 120


def test_radiographs_carry_view_orientation_and_spacing(small_ct, study):
    ct_study = _ct_files(study)[0].StudyInstanceUID
    expected = {"frontal": ("PA", ["L", "F"]), "lateral": ("LL", ["P", "F"])}
    for view, (position, orientation) in expected.items():
        ds = pydicom.dcmread(study / "xray" / f"{view}.dcm")
        assert ds.Modality == "DX" and ds.StudyInstanceUID == ct_study
        assert ds.ViewPosition == position and list(ds.PatientOrientation) == orientation
        assert [float(v) for v in ds.PixelSpacing] == [1.0, 1.0]
        assert [float(v) for v in ds.ImagerPixelSpacing] == pytest.approx([1.1, 1.1])
        assert ds.PhotometricInterpretation == "MONOCHROME2"
        assert "WindowCenter" in ds and "WindowWidth" in ds
        xray = project_radiograph(small_ct, view=view, params=XRAY)
        np.testing.assert_array_equal(ds.pixel_array, xray.image)


def test_truth_file_lists_everything(small_ct, study):
    doc = json.loads((study / "truth.json").read_text())
    assert doc["schema"] == "napari-calcinosis/phantom-truth/v1"
    assert len(doc["lesions"]) == len(small_ct.truth) > 0
    assert {d["kind"] for d in doc["lookalikes"]} >= {"costal_cartilage", "table"}
    ct_uid = _ct_files(study)[0].SeriesInstanceUID
    assert doc["ct"]["series_instance_uid"] == ct_uid
    lesion = doc["lesions"][0]
    for key in ("center_lps_mm", "center_index_zyx", "diameter_mm", "peak_hu_expected",
                "layer", "side", "region", "morphology"):
        assert key in lesion
    views = {entry["view"]: entry for entry in doc["radiographs"]}
    assert set(views) == {"frontal", "lateral"}
    assert views["frontal"]["file"] == "xray/frontal.dcm"
    assert {spot["id"] for spot in views["frontal"]["lesions"]} <= {d["id"] for d in
                                                                    doc["lesions"]}
    assert doc["expected"]["lesion_count"] == len(doc["lesions"])
    assert doc["expected"]["extent"] in ("localized", "regional", "generalized")


def test_writing_is_deterministic(small_ct, study, tmp_path):
    again = write_study(small_ct, tmp_path / "again", xray_views=("frontal", "lateral"),
                        xray_params=XRAY)
    for name in ("ct/0001.dcm", "ct/0005.dcm", "xray/frontal.dcm", "truth.json"):
        assert (again / name).read_bytes() == (study / name).read_bytes(), name


def test_compressed_signed_monochrome1_without_pixel_spacing(small_ct, tmp_path):
    folder = write_study(small_ct, tmp_path / "variant", xray_views=("frontal",), compress=True,
                         signed=True, photometric="MONOCHROME1", include_pixel_spacing=False,
                         xray_params=XRAY)
    slices = _ct_files(folder)
    assert slices[0].file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
    assert slices[0].PixelRepresentation == 1
    hu = np.stack([pydicom.pixels.apply_modality_lut(ds.pixel_array, ds) for ds in slices])
    np.testing.assert_array_equal(hu, small_ct.hu)
    ds = pydicom.dcmread(folder / "xray" / "frontal.dcm")
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    assert ds.PresentationLUTShape == "INVERSE"
    assert "PixelSpacing" not in ds and "ImagerPixelSpacing" in ds
    plain = project_radiograph(small_ct, view="frontal", params=XRAY)
    np.testing.assert_array_equal(ds.pixel_array, 4095 - plain.image)


def test_the_project_reader_opens_the_study(small_ct, study):
    from napari_calcinosis.dicom import load_study

    loaded = load_study(study)
    assert len(loaded.volumes) == 1 and len(loaded.radiographs) == 2
    volume = loaded.volumes[0]
    np.testing.assert_array_equal(volume.hu, small_ct.hu)
    np.testing.assert_allclose(volume.origin_lps_mm, small_ct.origin_lps_mm, atol=1e-3)
    np.testing.assert_allclose(volume.direction_lps, small_ct.direction_lps, atol=1e-6)
    assert {r.view for r in loaded.radiographs} == {"frontal", "lateral"}


@pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (dicom3tools) is not installed")
def test_dciodvfy_reports_no_errors(study, tmp_path, small_ct):
    variant = write_study(small_ct, tmp_path / "m1", xray_views=("frontal",),
                          photometric="MONOCHROME1", include_pixel_spacing=False,
                          signed=True, xray_params=XRAY)
    files = [study / "ct" / "0001.dcm", study / "xray" / "frontal.dcm",
             study / "xray" / "lateral.dcm", variant / "ct" / "0002.dcm",
             variant / "xray" / "frontal.dcm"]
    for path in files:
        result = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True,
                                timeout=60)
        errors = [line for line in (result.stdout + result.stderr).splitlines()
                  if line.startswith("Error")]
        assert not errors, (path, errors)


@pytest.mark.skipif(DCENTVFY is None, reason="dcentvfy (dicom3tools) is not installed")
def test_dcentvfy_finds_the_study_consistent(study):
    files = sorted(str(p) for p in study.rglob("*.dcm"))
    result = subprocess.run([DCENTVFY, *files], capture_output=True, text=True, timeout=120)
    report = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and "Error" not in report, report


# --- sample studies --------------------------------------------------------------------------

@pytest.fixture
def tiny_sample(monkeypatch):
    spec = PhantomSpec(seed=1, z_range_mm=(400.0, 420.0), pixel_spacing_mm=3.0)
    entry = ("tiny test sample", spec, ("frontal",))
    monkeypatch.setitem(phantom_samples._SAMPLES, "tiny", entry)
    return "tiny"


def test_sample_study_is_generated_once_atomically(tiny_sample, tmp_path):
    first = phantom_samples.sample_study_path(tiny_sample, cache_dir=tmp_path)
    assert first.parent == tmp_path and first.name.startswith("tiny-")
    assert (first / "truth.json").is_file() and (first / "xray" / "frontal.dcm").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name]  # no temp folder left
    stamp = (first / "truth.json").stat().st_mtime_ns
    again = phantom_samples.sample_study_path(tiny_sample, cache_dir=tmp_path)
    assert again == first and (first / "truth.json").stat().st_mtime_ns == stamp


def test_sample_cache_defaults_to_xdg_cache(tiny_sample, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = phantom_samples.sample_study_path(tiny_sample)
    assert path.parent == tmp_path / "napari-calcinosis" / "samples"


def test_sample_names_and_errors():
    from napari_calcinosis.phantom import SAMPLE_STUDIES, sample_study_path

    assert set(SAMPLE_STUDIES) >= {"generalized", "localized"}
    assert all(SAMPLE_STUDIES.values())
    with pytest.raises(CalcinosisError, match="unknown sample"):
        sample_study_path("nonexistent")
