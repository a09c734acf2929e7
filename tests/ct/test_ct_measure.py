"""Known-answer tests of per-lesion statistics over sparse voxels, and morphology words."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_calcinosis.ct._candidates import sparse_components, touching_flags
from napari_calcinosis.ct._measure import (
    component_stats,
    density_weight,
    morphology_of,
    principal_extents_mm,
)
from napari_calcinosis.types import CTParams


def sparse(mask, hu=None):
    flat = np.flatnonzero(mask)
    values = (np.full(len(flat), 200.0) if hu is None else hu.ravel()[flat])
    return flat, values


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_sparse_components_match_ndimage_label(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((9, 23, 17)) > 0.93
    flat, _ = sparse(mask)
    comp, n = sparse_components(flat, mask.shape)
    ref, n_ref = ndi.label(mask, structure=np.ones((3, 3, 3), bool))
    assert n == n_ref
    # same partition, and numbered in storage order like ndimage
    np.testing.assert_array_equal(comp + 1, ref.ravel()[flat])


def test_sparse_components_do_not_wrap_rows():
    mask = np.zeros((1, 4, 5), bool)
    mask[0, 1, 4] = mask[0, 2, 0] = True  # consecutive flat indices, not neighbours
    comp, n = sparse_components(np.flatnonzero(mask), mask.shape)
    assert n == 2
    assert sparse_components(np.empty(0, np.int64), mask.shape)[1] == 0


def test_touching_flags_sees_dense_forbidden_neighbours():
    hu = np.zeros((3, 6, 6), np.int16)
    hu[1, 2, 2] = 500          # query voxel
    hu[2, 3, 3] = 900          # diagonal neighbour, forbidden region
    hu[1, 2, 4] = 900          # two away: not a neighbour
    forbidden = np.zeros(hu.shape, bool)
    forbidden[2] = True
    forbidden[1, :, 4] = True
    query = np.ravel_multi_index(([1, 1], [2, 2], [2, 2]), hu.shape)
    flags = touching_flags(hu, query[:1], 130,
                           lambda zyx: forbidden[zyx])
    assert flags.tolist() == [True]
    hu[2, 3, 3] = 100  # below the threshold: not a dense neighbour
    assert touching_flags(hu, query[:1], 130, lambda zyx: forbidden[zyx]).tolist() == [False]


def test_component_stats_known_answers():
    hu = np.zeros((4, 10, 10), np.int16)
    hu[1, 2:4, 2:4] = [[150, 250], [350, 450]]   # one slice, 4 voxels
    hu[0:4, 7, 7] = [140, 160, 900, 170]          # a column of 4 voxels
    mask = hu >= 130
    flat, values = sparse(mask, hu)
    comp, n = sparse_components(flat, mask.shape)
    stats = component_stats(flat, comp, values, n, hu.shape, (2.0, 0.5, 0.5))
    assert n == 2  # numbered in storage order: the column starts in slice 0
    col, square = 0, 1
    assert stats.count.tolist() == [4, 4]
    assert stats.peak_hu[square] == 450 and stats.peak_hu[col] == 900
    assert stats.mean_hu[square] == pytest.approx(300.0)
    np.testing.assert_allclose(stats.centroid_zyx[square], [1, 2.5, 2.5])
    np.testing.assert_allclose(stats.centroid_zyx[col], [1.5, 7, 7])
    assert stats.max_area_mm2[square] == 1.0 and stats.max_area_mm2[col] == 0.25
    assert np.unravel_index(stats.peak_flat[col], hu.shape) == (2, 7, 7)
    assert stats.bbox_lo[col].tolist() == [0, 7, 7]
    assert stats.bbox_hi[col].tolist() == [3, 7, 7]
    assert sorted(stats.voxels_of(square).tolist()) == \
        sorted(np.flatnonzero(comp == square).tolist())
    # the column's variance along z: voxel centres 0..3 at 2 mm, plus the voxel box
    assert stats.cov_mm2[col, 0, 0] == pytest.approx(np.var([0, 2, 4, 6]) + 4 / 12)


@pytest.mark.parametrize(("peak", "weight"), [
    (129, 0), (130, 1), (199, 1), (200, 2), (299, 2), (300, 3), (399, 3), (400, 4), (2000, 4)])
def test_agatston_density_weight(peak, weight):
    assert int(density_weight(peak)) == weight


def ellipsoid_cov(semi_axes_mm):
    return np.diag(np.asarray(semi_axes_mm, float) ** 2 / 5.0)[None]


def test_principal_extents_of_an_ellipsoid():
    ext = principal_extents_mm(ellipsoid_cov([5, 2, 1]), 0.5, (0.5, 0.5, 0.5))
    # the z voxel box (0.5 mm) is swapped for an in-plane-derived guess; still close
    np.testing.assert_allclose(ext[0], [10, 4, 2], atol=0.5)


def test_thick_slice_does_not_inflate_a_dot():
    cov = np.diag([5.0 ** 2 / 12, 0.3, 0.3])[None]  # one 5 mm slice, ~2.5 mm in-plane
    ext = principal_extents_mm(cov, 5.0, (5.0, 0.7, 0.7))
    assert ext[0, 0] < 3.0


@pytest.mark.parametrize(("extents", "fill", "word"), [
    ([2.0, 1.8, 1.5], 0.6, "punctate"),
    ([5.0, 4.0, 4.0], 0.6, "nodular"),
    ([12.0, 2.0, 2.0], 0.6, "linear"),
    ([14.0, 10.0, 2.0], 0.6, "sheet"),
    ([25.0, 20.0, 15.0], 0.6, "mass"),
    ([25.0, 20.0, 15.0], 0.1, "reticular"),
    ([12.0, 9.0, 8.0], 0.1, "reticular"),
])
def test_morphology_words(extents, fill, word):
    assert morphology_of(np.array([extents]), np.array([fill]), params=CTParams()) == [word]
