"""Known-answer tests of the coarse tissue model (body, skin, fat, muscle, bone, cavity)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_calcinosis.ct import TISSUE_NAMES, Compartment
from napari_calcinosis.ct._body import find_body
from napari_calcinosis.ct._bone import bone_mask
from napari_calcinosis.ct._grid import CoarseGrid, coarse_sample, upsample_slab
from napari_calcinosis.ct._morphology import fill_holes_2d
from napari_calcinosis.ct._tissue import build_tissue_model
from napari_calcinosis.types import CTParams


def cylinder_body(nz=14, n=120, pixel=1.0, *, table=True, seed=0, noise=5.0):
    """Air, a round body (skin 2 mm, fat 10 mm, muscle 12 mm, the extraperitoneal fat 5 mm,
    cavity with a lung), a vertebra (cortex ring and marrow) and a CT table below,
    separated by air."""
    yy, xx = np.mgrid[:n, :n].astype(float)
    c = n / 2
    r = np.hypot(yy - c, xx - c) * pixel
    hu2 = np.full((n, n), -1000.0)
    radius = 0.4 * n * pixel
    hu2[r <= radius] = 40.0                       # skin
    hu2[r <= radius - 2] = -100.0                 # subcutaneous fat
    hu2[r <= radius - 12] = 50.0                  # muscle wall
    hu2[r <= radius - 24] = -100.0                # the fat plane inside the wall
    hu2[r <= radius - 29] = 40.0                  # cavity (viscera)
    lung = np.hypot(yy - (c - 6 / pixel), xx - c) * pixel <= 8
    hu2[lung] = -850.0
    spine = np.hypot(yy - (c + 12 / pixel), xx - c) * pixel
    hu2[spine <= 8] = 1000.0
    hu2[spine <= 6.5] = 220.0
    if table:
        bottom = int(c + radius / pixel) + 4
        hu2[bottom:bottom + 3, 5:-5] = 250.0
    rng = np.random.default_rng(seed)
    hu = np.repeat(hu2[None], nz, axis=0) + rng.normal(0, noise, (nz, n, n))
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16)


def model(hu, spacing=(2.0, 1.0, 1.0), params=None):
    params = params or CTParams()
    grid = CoarseGrid.for_volume(hu.shape, spacing, params.tissue_grid_mm)
    mean_c, max_c, dense_c = coarse_sample(hu, grid, dense_mean=True)
    body = find_body(mean_c, max_c, grid, params=params)
    bone = bone_mask(max_c, body.body, grid, params=params, dense_mean_c=dense_c)
    tm = build_tissue_model(mean_c, grid, bone, body, posterior_rc=np.array([1.0, 0.0]),
                            params=params)
    return grid, tm


def test_coarse_grid_factors_and_upsampling():
    grid = CoarseGrid.for_volume((10, 512, 500), (1.0, 0.7, 0.7), 3.0)
    assert grid.factors == (3, 4, 4)
    assert grid.coarse_shape == (4, 128, 125)
    assert list(grid.sample_slices()) == [1, 4, 7, 9]
    coarse = np.random.default_rng(1).integers(0, 8, grid.coarse_shape).astype(np.uint8)
    ref = coarse.repeat(3, 0).repeat(4, 1).repeat(4, 2)[:10, :512, :500]
    np.testing.assert_array_equal(upsample_slab(coarse, grid, 0, 10), ref)
    np.testing.assert_array_equal(upsample_slab(coarse, grid, 4, 7), ref[4:7])


def test_coarse_sample_mean_clips_dense_and_max_keeps_them():
    hu = np.full((2, 6, 6), -100, np.int16)
    hu[:, 0, 0] = 900
    grid = CoarseGrid((2, 6, 6), (1, 2, 2), (1.0, 1.0, 1.0))
    mean, peak = coarse_sample(hu, grid, workers=1)
    assert mean.shape == peak.shape == (2, 3, 3)
    assert mean[0, 0, 0] == pytest.approx((100 - 300) / 4)  # 900 clipped to 100
    unclipped = coarse_sample(hu, grid, workers=1, dense_mean=True)[2]
    assert unclipped[0, 0, 0] == pytest.approx((900 - 300) / 4)
    assert peak[0, 0, 0] == 900 and peak[0, 1, 1] == -100


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fill_holes_2d_matches_scipy(seed):
    mask = np.random.default_rng(seed).random((40, 50)) > 0.45
    np.testing.assert_array_equal(fill_holes_2d(mask), ndi.binary_fill_holes(mask))


def test_body_excludes_table_and_fills_lung():
    hu = cylinder_body()
    grid, tm = model(hu)
    assert tm.body.any()
    n = hu.shape[1]
    # the table rows (below the body, beyond the air gap) are not body
    table_row = int(n / 2 + 0.4 * n) + 5
    kc = 1
    assert not tm.body[kc, table_row // grid.factors[1]].any()
    # the air pocket is inside the body (holes filled) and in its cavity (28 mm long, it is
    # too small to be a lung)
    centre = (n // 2 - 6) // grid.factors[1], (n // 2) // grid.factors[2]
    assert tm.body[kc][centre]
    assert tm.labels[kc][centre] == Compartment.CAVITY


def test_layers_along_a_ray():
    hu = cylinder_body(n=140, pixel=1.0)
    grid, tm = model(hu, spacing=(2.0, 1.0, 1.0), params=CTParams(tissue_grid_mm=1.0))
    assert grid.factors == (1, 1, 1)
    row = tm.labels[2, 70]  # the horizontal ray through the centre, right half
    c, radius = 70, 56
    names = [TISSUE_NAMES[int(v)] for v in row[c + radius - 1::-1][:40]]
    assert names[0] == "skin"
    assert names[4] == "subcutaneous_fat"
    assert names[16] == "muscle"
    assert names[34] == "cavity"
    assert (tm.labels[2] == Compartment.BONE).sum() >= 80  # vertebra with marrow


def test_bone_needs_size():
    hu = cylinder_body(n=100)
    params = CTParams()
    grid, tm = model(hu, params=params)
    assert tm.bone.any()
    _, small = model(hu, params=CTParams(bone_min_volume_mm3=1e9))
    assert not small.bone.any()


def test_truncated_field_of_view_is_not_skin():
    hu = cylinder_body(n=100)[:, 20:80, 20:80]  # body cut by the image border
    grid, tm = model(hu)
    border = tm.labels[1, 0, 5:-5]  # the corners of the crop are real air
    assert np.all(border == Compartment.SUBCUTANEOUS_FAT)


def test_upsampled_labels_match_grid():
    hu = cylinder_body(nz=7, n=90)
    grid, tm = model(hu)
    full = tm.upsample_labels(workers=2, slab=3)
    assert full.shape == hu.shape and full.dtype == np.uint8
    fz, fy, fx = grid.factors
    assert full[5, 44, 10] == tm.labels[5 // fz, 44 // fy, 10 // fx]
    assert set(np.unique(full)) <= set(TISSUE_NAMES)


def test_small_piece_beside_a_bone_is_released_and_thin_bones_stay():
    """A 6 mm deposit 3 mm outside the vertebra's cortex joins its coarse component through a
    shared block corner; the knob rule gives it back, while a scapula-like plate (5 mm
    thick, narrower than the 3-block opening, but long) in the muscle wall stays bone.
    (A 88 mm stack.)"""
    n = 100
    hu = cylinder_body(nz=44, n=n).astype(float)
    c = n / 2
    yy, xx = np.mgrid[:n, :n]
    d = (8.0 + 3.0 + 3.0) / np.sqrt(2.0)  # cortex radius + gap + deposit radius (1 mm px)
    zz = np.arange(44)[:, None, None] * 2.0
    blob = (zz - 44.0) ** 2 + (yy - c - 12 - d) ** 2 + (xx - c - d) ** 2 <= 9.0
    hu[blob] = 600.0
    plate = (np.abs(yy - (c - 21)) <= 2.5) & (np.abs(xx - c) <= 8)
    hu[:, plate] = 700.0
    hu = hu.astype(np.int16)
    for knob_mm3, blob_is_bone in ((0.0, True), (CTParams().bone_knob_max_mm3, False)):
        grid, tm = model(hu, params=CTParams(bone_knob_max_mm3=knob_mm3))
        blocks = np.unique(np.argwhere(blob) // np.array(grid.factors), axis=0)
        assert tm.bone[tuple(blocks.T)].all() == blob_is_bone
        assert not tm.bone[tuple(blocks.T)].any() or blob_is_bone
        fz, fy, fx = grid.factors
        assert tm.bone[:, int(c - 21) // fy, int(c) // fx].all()
        assert tm.bone[22 // fz, int(c + 12) // fy, int(c) // fx]  # the vertebra


def test_dark_lung_cut_by_a_crop_is_not_outside_air():
    """A cropped reconstruction that cuts through a dark (emphysematous, textured) lung:
    its block means fall on both sides of -900 HU, but its median lies well above outside
    air's (-1000) and a couch's foam (-960): it is lung, and the tissue beside it is not
    skin."""
    hu = cylinder_body(nz=20, n=120, noise=5.0).astype(float)
    yy, xx = np.mgrid[:120, :120]
    lung = np.hypot(yy - 44, xx - 60) <= 16
    rng = np.random.default_rng(1)
    hu[:, lung] = -915.0 + rng.normal(0.0, 60.0, (hu.shape[0], int(lung.sum())))
    crop = np.clip(np.rint(hu[:, 40:, :]), -1024, 3071).astype(np.int16)  # cuts the lung
    grid, tm = model(crop)
    fz, fy, fx = grid.factors
    lung_c = np.zeros(tm.labels.shape, bool)
    rows, cols = np.nonzero(lung[40:, :])
    lung_c[:, rows // fy, cols // fx] = True
    inner = ndi.binary_erosion(lung_c, structure=np.ones((1, 3, 3), bool))
    assert not np.any(tm.labels[inner] == Compartment.OUTSIDE)
    beside = ndi.binary_dilation(lung_c, structure=np.ones((1, 3, 3), bool)) & ~lung_c
    assert not np.any(tm.labels[beside] == Compartment.SKIN)
