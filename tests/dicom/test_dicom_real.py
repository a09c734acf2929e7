"""load_study on real files shipped by pydicom and pydicom-data."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest

from napari_calcinosis.dicom import load_study


def _one_volume(path):
    study = load_study(path)
    assert len(study.volumes) == 1, (study.warnings, study.set_aside)
    return study.volumes[0]


def _independent_hu(path: Path) -> np.ndarray:
    ds = pydicom.dcmread(path)
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(
        ds.RescaleIntercept)


def test_ct_small_hu_is_slope_times_raw_plus_intercept(testdata):
    path = testdata("CT_small.dcm")
    vol = _one_volume(path)
    assert vol.hu.dtype == np.int16 and vol.shape == (1, 128, 128)
    np.testing.assert_array_equal(vol.hu[0], _independent_hu(path))
    assert vol.spacing_zyx_mm[1:] == pytest.approx((0.661468, 0.661468))
    np.testing.assert_allclose(vol.origin_lps_mm, [-158.135803, -179.035797, -75.699997])
    assert vol.info.modality == "CT" and vol.info.kvp is not None


def test_693_uncompressed_and_jpeg2000_identical_hu(testdata):
    plain = _one_volume(testdata("693_UNCR.dcm"))
    j2k = _one_volume(testdata("693_J2KR.dcm"))
    assert plain.hu.dtype == np.int16 and plain.shape == (1, 512, 512)
    np.testing.assert_array_equal(plain.hu, j2k.hu)
    # Padding (PixelPaddingValue -2000) is masked and set to the padding HU.
    ds = pydicom.dcmread(testdata("693_UNCR.dcm"))
    padded = ds.pixel_array == int(ds.PixelPaddingValue)
    assert padded.any()
    np.testing.assert_array_equal(plain.padding_mask[0], padded)
    expected = _independent_hu(testdata("693_UNCR.dcm"))
    np.testing.assert_array_equal(plain.hu[0][~padded], expected[~padded])
    assert (plain.hu[0][padded] == plain.padding_value_hu).all()


def test_enhanced_multiframe_ct_per_frame_geometry(testdata):
    path = testdata("eCT_Supplemental.dcm")
    vol = _one_volume(path)
    ds = pydicom.dcmread(path)
    assert vol.shape == (2, 512, 512)
    positions = [np.array([float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient])
                 for f in ds.PerFrameFunctionalGroupsSequence]
    iop = np.array([float(v) for v in ds.SharedFunctionalGroupsSequence[0]
                    .PlaneOrientationSequence[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    order = np.argsort([p @ normal for p in positions])
    for k, frame in enumerate(order):
        np.testing.assert_allclose(vol.index_to_lps([k, 0, 0]), positions[frame], atol=1e-4)
        raw = ds.pixel_array[frame].astype(np.int32)
        np.testing.assert_array_equal(vol.hu[k], raw - 1024)  # shared rescale -1024, slope 1
    assert vol.spacing_zyx_mm == pytest.approx((10.0, 0.388672, 0.388672))
    assert vol.info.slice_thickness_mm == pytest.approx(10.0)
    assert vol.sop_instance_uids == [ds.SOPInstanceUID] * 2


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                  "MR_small_jp2klossless.dcm", "MR_small_bigendian.dcm",
                                  "MR_small_implicit.dcm"])
def test_mr_small_compressed_variants_equal_plain(testdata, name):
    plain = _one_volume(testdata("MR_small.dcm"))
    other = _one_volume(testdata(name))
    np.testing.assert_array_equal(plain.hu, other.hu)
    np.testing.assert_allclose(plain.origin_lps_mm, other.origin_lps_mm)


def test_rg1_invalid_pixel_spacing_warns_and_falls_back(testdata):
    (rad,) = load_study(testdata("RG1_UNCR.dcm")).radiographs
    assert rad.pixel_spacing_mm is None and rad.spacing_source == "none"
    assert any("PixelSpacing" in w and "invalid" in w for w in rad.warnings)
    assert any("measurements are in pixels" in w for w in rad.warnings)
    assert rad.view == "frontal" and rad.view_position == "PA"
    assert rad.patient_orientation == ("L", "F")
    assert rad.image.dtype == np.float32 and rad.image.shape == (1955, 1841)


@pytest.mark.parametrize("stem", ["RG1", "RG3"])
def test_radiograph_uncompressed_equals_jpeg2000(testdata, stem):
    (plain,) = load_study(testdata(f"{stem}_UNCR.dcm")).radiographs
    (j2k,) = load_study(testdata(f"{stem}_J2KR.dcm")).radiographs
    np.testing.assert_array_equal(plain.image, j2k.image)
    assert plain.window == j2k.window


def test_monochrome1_is_inverted(testdata, tmp_path):
    """A MONOCHROME2 copy (stored values and window inverted) must display identically."""
    source = testdata("RG3_UNCR.dcm")
    ds = pydicom.dcmread(source)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    top = 2 ** int(ds.BitsStored) - 1
    stored = ds.pixel_array
    ds.PixelData = (top - stored.astype(np.int32)).astype(np.uint16).tobytes()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.WindowCenter = top - float(ds.WindowCenter)
    ds.save_as(tmp_path / "mono2.dcm")
    (mono1,) = load_study(source).radiographs
    (mono2,) = load_study(tmp_path / "mono2.dcm").radiographs
    np.testing.assert_array_equal(mono1.image, mono2.image)
    assert mono1.window == pytest.approx(mono2.window)
    # Brighter means more attenuating: the lowest stored MONOCHROME1 value is the brightest.
    assert mono1.image.flat[np.argmin(stored)] == mono1.image.max()
    # MONOCHROME2 copy shown without inversion: the image is its stored values.
    np.testing.assert_array_equal(mono2.image, (top - stored.astype(np.int32)))


def test_radiograph_spacing_sources(testdata, tmp_path):
    ds = pydicom.dcmread(testdata("RG3_UNCR.dcm"))
    ds.ImagerPixelSpacing = [0.2, 0.2]
    ds.save_as(tmp_path / "imager.dcm")
    (rad,) = load_study(tmp_path / "imager.dcm").radiographs
    assert rad.pixel_spacing_mm == (0.2, 0.2) and rad.spacing_source == "ImagerPixelSpacing"
    assert any("detector" in w and "magnified" in w for w in rad.warnings)
    ds.PixelSpacing = [0.15, 0.16]
    ds.ViewPosition = ""
    ds.SeriesDescription = "Thorax LAT"
    ds.save_as(tmp_path / "pixel.dcm")
    (rad,) = load_study(tmp_path / "pixel.dcm").radiographs
    assert rad.pixel_spacing_mm == (0.15, 0.16) and rad.spacing_source == "PixelSpacing"
    assert rad.warnings == [] and rad.view == "lateral"


def test_radiograph_without_window_gets_percentile_window(testdata, tmp_path):
    ds = pydicom.dcmread(testdata("RG3_UNCR.dcm"))
    del ds.WindowCenter, ds.WindowWidth
    ds.save_as(tmp_path / "nowin.dcm")
    (rad,) = load_study(tmp_path / "nowin.dcm").radiographs
    low, high = rad.window
    assert rad.image.min() <= low < high <= rad.image.max()


def test_dicomdir_tree_opens_several_series(testdata):
    dicomdir = testdata("DICOMDIR")
    study = load_study(dicomdir)
    modalities = sorted(v.info.modality for v in study.volumes)
    assert modalities.count("CT") == 2 and "MR" in modalities
    assert len(study.radiographs) == 3
    assert all(r.info.modality == "CR" for r in study.radiographs)
    localizers = [a for a in study.set_aside if "localizer" in a.reason]
    assert len(localizers) >= 2
    ct5 = next(v for v in study.volumes if v.shape[0] == 5)
    z = [ct5.index_to_lps([k, 0, 0])[2] for k in range(5)]
    assert z == sorted(z)  # ascending along the normal (+z for axial)
    # The same tree opened as a folder finds the same image series.
    folder = load_study(dicomdir.parent / "77654033")
    assert len(folder.radiographs) == 3 and len(folder.volumes) == 1


def test_structured_report_set_aside(testdata):
    study = load_study(testdata("test-SR.dcm"))
    assert study.is_empty
    (aside,) = study.set_aside
    assert "structured report" in aside.reason and aside.sop_class.startswith(
        "1.2.840.10008.5.1.4.1.1.88")


def test_segmentation_set_aside(testdata, tmp_path):
    import highdicom as hd

    source = pydicom.dcmread(testdata("CT_small.dcm"))
    mask = np.zeros((1, 128, 128), dtype=bool)
    mask[0, 40:60, 40:60] = True
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label="calcification",
        segmented_property_category=hd.sr.CodedConcept("49755003", "SCT",
                                                       "Morphologically abnormal structure"),
        segmented_property_type=hd.sr.CodedConcept("18115005", "SCT", "Calcified structure"),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )
    seg = hd.seg.Segmentation(
        source_images=[source], pixel_array=mask,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=hd.UID(), series_number=9,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="test",
        manufacturer_model_name="test", software_versions="0", device_serial_number="1",
    )
    folder = tmp_path / "study"
    folder.mkdir()
    seg.save_as(folder / "seg")
    shutil.copy(testdata("CT_small.dcm"), folder / "ct")
    study = load_study(folder)
    assert len(study.volumes) == 1
    (aside,) = study.set_aside
    assert "segmentation" in aside.reason and aside.path.name == "seg"


def test_zip_of_a_study_opens_and_cleans_up(testdata, tmp_path):
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(testdata("CT_small.dcm"), "a/IMG1")
        zf.write(testdata("RG3_J2KR.dcm"), "b/IMG2")
        zf.writestr("b/readme.txt", "hello")
    before = set(Path(__import__("tempfile").gettempdir()).glob("calcinosis-zip-*"))
    study = load_study(archive)
    after = set(Path(__import__("tempfile").gettempdir()).glob("calcinosis-zip-*"))
    assert after == before
    assert len(study.volumes) == 1 and len(study.radiographs) == 1
    assert study.volumes[0].files == [archive / "a" / "IMG1"]
    assert study.radiographs[0].file == archive / "b" / "IMG2"
    assert any("readme.txt" in w for w in study.warnings)


@pytest.mark.parametrize("name", ["JPEG-LL.dcm", "JPGExtended.dcm", "JPEG2000.dcm"])
def test_jpeg_radiograph_like_images_decode(testdata, name):
    """Single-frame images without position open as radiographs, decoded like pydicom does."""
    path = testdata(name)
    (rad,) = load_study(path).radiographs
    ds = pydicom.dcmread(path)
    expected = pydicom.pixels.apply_modality_lut(ds.pixel_array, ds).astype(np.float32)
    np.testing.assert_array_equal(rad.image, expected)


def test_colour_images_set_aside(testdata):
    for name in ("examples_palette.dcm", "US1_J2KR.dcm"):
        study = load_study(testdata(name))
        assert study.is_empty
        assert "colour image" in study.set_aside[0].reason


def test_view_from_view_code_sequence(testdata, tmp_path):
    from pydicom.dataset import Dataset

    ds = pydicom.dcmread(testdata("RG3_UNCR.dcm"))
    del ds.ViewPosition
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = (
        "R-10236", "SRT", "left lateral")
    ds.ViewCodeSequence = [code]
    ds.ImageLaterality = "L"
    ds.save_as(tmp_path / "lat.dcm")
    (rad,) = load_study(tmp_path / "lat.dcm").radiographs
    assert rad.view == "lateral" and rad.view_position == "" and rad.image_laterality == "L"
    assert rad.info.modality == "CR" and rad.header is not None and "PixelData" not in rad.header
