"""load_study on synthetic series with known values and geometry (written in tmp_path)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from dicom_factory import AXIAL, known_stack, read_position, write_series

from napari_calcinosis.dicom import load_study
from napari_calcinosis.types import DicomReadError


def _expected_lps(vol, path, i, j):
    """IPP of the slice's file + column/row steps along the file's own cosines."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
    return read_position(path) + j * col_mm * iop[:3] + i * row_mm * iop[3:]


def _check_geometry(vol, voxels=((0, 0, 0), (1, 3, 4), (-1, 11, 9), (2, 5, 0))):
    affine = vol.napari_affine()
    for k, i, j in voxels:
        k = k % vol.shape[0]
        expected = _expected_lps(vol, vol.files[k], i, j)
        np.testing.assert_allclose(vol.index_to_lps([k, i, j]), expected, atol=1e-3)
        world_zyx = (affine @ [k, i, j, 1.0])[:3]
        np.testing.assert_allclose(world_zyx[::-1], expected, atol=1e-3)


def test_shuffled_extensionless_names_sorted_by_position(tmp_path):
    stored = known_stack()
    rng = np.random.default_rng(3)
    # InstanceNumbers deliberately scrambled too: only positions may decide the order.
    written = write_series(tmp_path, stored, rng=rng, instance_numbers=[5, 2, 6, 1, 4, 3])
    assert all(p.suffix == "" for p in written.paths)
    study = load_study(tmp_path)
    (vol,) = study.volumes
    assert vol.hu.dtype == np.int16
    np.testing.assert_array_equal(vol.hu, stored.astype(np.int32) - 1024)
    assert vol.spacing_zyx_mm == pytest.approx((2.5, 0.7, 0.8))
    assert vol.warnings == [] and study.warnings == []
    _check_geometry(vol)
    assert vol.info.kernel == "B30f" and vol.info.kvp == 120 and vol.info.patient_id == "SYN001"
    assert len(set(vol.sop_instance_uids)) == 6 and all(h is not None for h in vol.headers)
    assert "PixelData" not in vol.headers[0]


def test_feet_first_positions_descending(tmp_path):
    stored = known_stack()
    # Slice k is written at z = 30 - 2.5 k while InstanceNumber ascends: reversed along +z.
    written = write_series(tmp_path, stored[::-1], origin=(0, 0, 30.0), spacing_zyx=(2.5, 1, 1),
                           orientation=(1, 0, 0, 0, -1, 0))
    (vol,) = load_study(tmp_path).volumes
    # Normal = row x col = (0, 0, -1): ascending along it means z descending in the file order.
    np.testing.assert_array_equal(vol.hu, stored[::-1].astype(np.int32) - 1024)
    assert [p.name for p in vol.files] == [p.name for p in written.paths]
    _check_geometry(vol)

    other = tmp_path / "axial_ff"
    write_series(other, stored, origin=(0, 0, 30.0), spacing_zyx=(-2.5, 1, 1))
    (vol2,) = load_study(other).volumes
    # Positions descend with InstanceNumber: the array must start from the lowest z.
    np.testing.assert_array_equal(vol2.hu, stored[::-1].astype(np.int32) - 1024)
    assert vol2.spacing_zyx_mm[0] == pytest.approx(2.5)
    _check_geometry(vol2)


def test_oblique_orientation_geometry(tmp_path):
    angle = np.radians(25)
    row = (np.cos(angle), np.sin(angle), 0.0)
    col = (0.0, np.cos(np.radians(10)), -np.sin(np.radians(10)))
    col = tuple(np.array(col) - np.dot(col, row) * np.array(row))
    col = tuple(np.array(col) / np.linalg.norm(col))
    stored = known_stack()
    write_series(tmp_path, stored, orientation=(*row, *col), spacing_zyx=(1.5, 0.6, 0.9))
    (vol,) = load_study(tmp_path).volumes
    assert not vol.is_axis_aligned()
    np.testing.assert_array_equal(vol.hu, stored.astype(np.int32) - 1024)
    _check_geometry(vol)


def test_gap_is_filled_and_warned(tmp_path):
    stored = known_stack(n=7)
    write_series(tmp_path, stored, skip=(3,))
    (vol,) = load_study(tmp_path).volumes
    assert vol.shape[0] == 7
    assert vol.padding_mask is not None and vol.padding_mask[3].all()
    assert not vol.padding_mask[[0, 1, 2, 4, 5, 6]].any()
    np.testing.assert_array_equal(vol.hu[4:], stored[4:].astype(np.int32) - 1024)
    assert (vol.hu[3] == vol.padding_value_hu).all()
    assert any("gap of 5.00 mm (1 missing slice)" in w and "slice2.dcm" in w
               for w in vol.warnings), vol.warnings
    _check_geometry(vol, voxels=((0, 0, 0), (4, 1, 1), (6, 2, 3)))


def test_uneven_spacing_warns(tmp_path):
    stored = known_stack(n=4)
    write_series(tmp_path, stored, names=[f"s{k}" for k in range(4)])
    ds = pydicom.dcmread(tmp_path / "s3")
    ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 1.2
    ds.save_as(tmp_path / "s3")
    (vol,) = load_study(tmp_path).volumes
    assert vol.shape[0] == 4
    assert any("uneven slice spacing" in w and "s2" in w for w in vol.warnings), vol.warnings


def test_duplicate_slice_kept_once(tmp_path):
    stored = known_stack(n=5)
    written = write_series(tmp_path, stored)
    ds = pydicom.dcmread(written.paths[2])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.InstanceNumber = 99
    ds.save_as(tmp_path / "copy_of_2")
    (vol,) = load_study(tmp_path).volumes
    assert vol.shape[0] == 5
    np.testing.assert_array_equal(vol.hu, stored.astype(np.int32) - 1024)
    assert any("duplicate slice position" in w and "copy_of_2" in w for w in vol.warnings)


def test_missing_rescale_tags_mean_identity(tmp_path):
    stored = known_stack()
    write_series(tmp_path, stored, slope=None, intercept=None)
    (vol,) = load_study(tmp_path).volumes
    assert vol.hu.dtype == np.int16
    np.testing.assert_array_equal(vol.hu, stored)


def test_fractional_rescale_gives_float32(tmp_path):
    stored = known_stack()
    write_series(tmp_path, stored, slope=0.5, intercept=-10.25)
    (vol,) = load_study(tmp_path).volumes
    assert vol.hu.dtype == np.float32
    np.testing.assert_allclose(vol.hu, stored * 0.5 - 10.25, rtol=1e-6)


def test_rescale_overflowing_int16_gives_float32(tmp_path):
    stored = known_stack().astype(np.uint16) + np.uint16(40000)
    write_series(tmp_path, stored, slope=1, intercept=-1000)
    (vol,) = load_study(tmp_path).volumes
    assert vol.hu.dtype == np.float32
    np.testing.assert_array_equal(vol.hu, stored.astype(np.float64) - 1000)


def test_pixel_padding_masked(tmp_path):
    stored = known_stack()
    stored[:, 0, :] = -2000
    written = write_series(tmp_path, stored)
    for path in written.paths:
        ds = pydicom.dcmread(path)
        ds.add_new(0x00280120, "SS", -2000)  # PixelPaddingValue
        ds.save_as(path)
    (vol,) = load_study(tmp_path).volumes
    assert vol.padding_mask is not None
    np.testing.assert_array_equal(vol.padding_mask, stored == -2000)
    assert (vol.hu[:, 0, :] == -1024).all()
    np.testing.assert_array_equal(vol.hu[:, 1:, :], stored[:, 1:, :].astype(np.int32) - 1024)


def test_gantry_tilt_is_warned_and_exact(tmp_path):
    stored = known_stack()
    write_series(tmp_path, stored, spacing_zyx=(2.0, 1.0, 1.0), shear_mm=(0.0, 0.35, 0.0))
    (vol,) = load_study(tmp_path).volumes
    assert vol.gantry_tilt_deg == pytest.approx(np.degrees(np.arctan2(0.35, 2.0)), abs=0.01)
    assert any("gantry tilt" in w for w in vol.warnings)
    _check_geometry(vol)


def test_mixed_sizes_split_with_warning(tmp_path):
    stored = known_stack(n=4)
    uid = pydicom.uid.generate_uid()
    write_series(tmp_path / "a", stored, series_uid=uid)
    write_series(tmp_path / "b", known_stack(n=3, rows=8, cols=8), series_uid=uid,
                 origin=(0, 0, 100.0))
    study = load_study(tmp_path)
    assert sorted(v.shape for v in study.volumes) == [(3, 8, 8), (4, 12, 10)]
    assert any("split into 2 stacks" in w for w in study.warnings)


def test_orthogonal_lone_slice_is_localizer(tmp_path):
    stored = known_stack(n=5)
    uid = pydicom.uid.generate_uid()
    write_series(tmp_path / "axial", stored, series_uid=uid)
    write_series(tmp_path / "scout", known_stack(n=1), series_uid=uid,
                 orientation=(1, 0, 0, 0, 0, -1))
    study = load_study(tmp_path)
    (vol,) = study.volumes
    assert vol.shape == (5, 12, 10)
    (aside,) = study.set_aside
    assert "localizer" in aside.reason and aside.path.parent.name == "scout"


def test_bad_files_are_skipped_and_named(tmp_path):
    stored = known_stack(n=6)
    written = write_series(tmp_path, stored)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not dicom at all\n" * 20)
    data = written.paths[2].read_bytes()
    written.paths[2].write_bytes(data[: len(data) - 100])  # one slice with truncated pixels
    (tmp_path / "broken.dcm").write_bytes(data[:128] + b"DICM" + b"\xff" * 64)
    study = load_study(tmp_path)
    (vol,) = study.volumes
    text = "\n".join(study.warnings)
    assert "empty" in text and "notes.txt" in text
    assert "slice2.dcm: pixel data truncated" in text
    assert "broken.dcm: not a" in text  # "not a readable DICOM file" / "not a DICOM file"
    assert vol.shape[0] == 6 and vol.padding_mask[2].all() and not vol.padding_mask[3].any()
    keep = [0, 1, 3, 4, 5]
    np.testing.assert_array_equal(vol.hu[keep], stored[keep].astype(np.int32) - 1024)
    (gap,) = [w for w in vol.warnings if "gap" in w]
    assert "slice1.dcm" in gap and "slice3.dcm" in gap


def test_single_bad_file_raises(tmp_path):
    from napari_calcinosis.types import DicomReadError

    (tmp_path / "x.dcm").write_text("hello")
    (tmp_path / "e.dcm").write_bytes(b"")
    for name in ("x.dcm", "e.dcm", "missing.dcm"):
        with pytest.raises(DicomReadError, match=name):
            load_study(tmp_path / name)


def test_folder_without_images_gives_empty_study(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    (tmp_path / "sub").mkdir()
    study = load_study(tmp_path)
    assert study.is_empty and study.set_aside == []
    assert load_study(tmp_path / "sub").is_empty


def test_single_slice_ct(tmp_path):
    write_series(tmp_path, known_stack(n=1), names=["only"])
    (vol,) = load_study(tmp_path / "only").volumes
    assert vol.shape == (1, 12, 10) and vol.spacing_zyx_mm[0] == pytest.approx(1.0)
    _check_geometry(vol, voxels=((0, 0, 0), (0, 4, 7)))


def test_axial_default_orientation_is_axis_aligned(tmp_path):
    write_series(tmp_path, known_stack(), orientation=AXIAL)
    (vol,) = load_study(tmp_path).volumes
    assert vol.is_axis_aligned()
    np.testing.assert_allclose(np.diag(vol.napari_affine())[:3], (2.5, 0.7, 0.8))


def test_series_uids_restricts_decoding(tmp_path):
    a = write_series(tmp_path / "a", known_stack())
    write_series(tmp_path / "b", known_stack(seed=2))
    study = load_study(tmp_path, series_uids=[a.series_uid])
    assert [v.info.series_instance_uid for v in study.volumes] == [a.series_uid]


def test_progress_reaches_one(tmp_path):
    write_series(tmp_path, known_stack())
    seen = []
    load_study(tmp_path, progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(isinstance(m, str) and m for _, m in seen)


def test_orientation_jitter_does_not_split_series(tmp_path):
    stored = known_stack(n=4)
    written = write_series(tmp_path, stored)
    for path, jitter in zip(written.paths[1:3], (0.0004, 0.0006)):
        ds = pydicom.dcmread(path)
        ds.ImageOrientationPatient = [1, jitter, 0, -jitter, 1, 0]
        ds.save_as(path)
    study = load_study(tmp_path)
    (vol,) = study.volumes
    assert vol.shape == (4, 12, 10) and study.warnings == []
    np.testing.assert_array_equal(vol.hu, stored.astype(np.int32) - 1024)


def test_many_duplicates_summarised(tmp_path):
    stored = known_stack(n=5)
    uid = pydicom.uid.generate_uid()
    write_series(tmp_path / "a", stored, series_uid=uid)
    write_series(tmp_path / "b", stored + 1, series_uid=uid,
                 instance_numbers=[11, 12, 13, 14, 15])
    (vol,) = load_study(tmp_path).volumes
    np.testing.assert_array_equal(vol.hu, stored.astype(np.int32) - 1024)
    (dup,) = [w for w in vol.warnings if "duplicate" in w]
    assert "5 duplicate slice positions" in dup


def test_undecodable_compressed_slice_left_blank(tmp_path):
    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless

    stored = known_stack(n=5)
    written = write_series(tmp_path, stored)
    for k, path in enumerate(written.paths):
        ds = pydicom.dcmread(path)
        ds.compress(RLELossless, encoding_plugin="pylibjpeg")
        if k == 2:
            ds.PixelData = encapsulate([b"\x01\x00\x00\x00" + b"\x00" * 60])
        ds.save_as(path)
    (vol,) = load_study(tmp_path).volumes
    assert vol.shape[0] == 5 and vol.padding_mask[2].all()
    np.testing.assert_array_equal(vol.hu[[0, 1, 3, 4]],
                                  stored[[0, 1, 3, 4]].astype(np.int32) - 1024)
    assert any("slice2.dcm: pixel data unreadable" in w for w in vol.warnings), vol.warnings


def test_a_list_of_files_is_one_study(tmp_path):
    # napari passes the files a user selected together as a list: one series, one volume.
    stored = known_stack()
    written = write_series(tmp_path, stored, rng=np.random.default_rng(5))
    study = load_study(list(reversed(written.paths)))
    (vol,) = study.volumes
    np.testing.assert_array_equal(vol.hu, stored.astype(np.int32) - 1024)
    _check_geometry(vol)
    with pytest.raises(DicomReadError):
        load_study([])
