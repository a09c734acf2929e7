"""The CT detector's faster paths give exactly what the plain computations they replace give."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import convex_hull_image

from napari_calcinosis.ct._body import _pieces
from napari_calcinosis.ct._morphology import edt_mm
from napari_calcinosis.ct._morphology import convex_hull
from napari_calcinosis.ct._wall import _circular_median, _Clearance


def _nanmedian_reference(values: np.ndarray, width_deg: float) -> np.ndarray:
    half = max(1, int(round(width_deg / 2 / 2.0)))  # 180 rays: 2 degrees apart
    idx = (np.arange(len(values))[:, None] + np.arange(-half, half + 1)[None, :]) % len(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
        return np.nanmedian(values[idx], axis=1)


def test_circular_median_is_numpy_nanmedian():
    rng = np.random.default_rng(1)
    for trial in range(400):
        values = rng.normal(size=180) * rng.choice([1.0, 1e3, 1e-3])
        if trial % 2:
            values = np.round(values * 4) / 4  # ties
        values[rng.random(180) < rng.choice([0.0, 0.1, 0.5, 0.9, 0.99, 1.0])] = np.nan
        for width in (2.0, 8.0, 12.0, 40.0):
            assert np.array_equal(_circular_median(values, width),
                                  _nanmedian_reference(values, width), equal_nan=True)


def test_clearance_is_the_distance_transform():
    rng = np.random.default_rng(3)
    for trial in range(150):
        shape = (int(rng.integers(5, 50)), int(rng.integers(5, 50)))
        solid = rng.random(shape) < rng.choice([0.0, 0.002, 0.02, 0.1, 0.5, 1.0])
        spacing = (2.6953125, 2.6953125) if trial % 2 else tuple(rng.uniform(0.5, 3.0, 2))
        full = edt_mm(~solid, spacing)
        for _ in range(10):
            r, c = int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1]))
            for mm in (15.0, float(full[r, c]), 5.0, 0.0):  # on the bar itself too
                assert _Clearance(solid, spacing).at_least(r, c, mm) == bool(full[r, c] >= mm)


def test_convex_hull_on_the_bounding_box_is_skimage_s():
    rng = np.random.default_rng(0)
    for trial in range(300):
        shape = (int(rng.integers(3, 120)), int(rng.integers(3, 120)))
        mask = ndi.gaussian_filter(rng.random(shape), rng.uniform(0.5, 8)) > \
            rng.uniform(0.45, 0.6)
        if trial % 5 == 0:
            mask = rng.random(shape) < rng.uniform(0.001, 0.05)  # scattered pixels
        if mask.any():
            assert np.array_equal(convex_hull(mask), convex_hull_image(mask))


def test_pieces_numbered_as_numpy_unique_would():
    """Two discs joined by a narrow bridge, a lone small blob, one disc alone: the pieces
    come numbered 1..n in the order numpy.unique gives, with the mask's own depth."""
    yy, xx = np.mgrid[:120, :160]
    two = (np.hypot(yy - 60, xx - 40) < 30) | (np.hypot(yy - 60, xx - 115) < 30) | \
        ((abs(yy - 60) < 2) & (xx > 40) & (xx < 115)) | (np.hypot(yy - 10, xx - 150) < 4)
    one = np.hypot(yy - 60, xx - 80) < 40
    for mask in (two, one):
        pieces, depth = _pieces(mask, (2.7, 2.7))
        assert np.array_equal(depth, edt_mm(mask, (2.7, 2.7)))
        assert np.array_equal(pieces > 0, mask)
        assert np.array_equal(np.unique(pieces), np.arange(int(pieces.max()) + 1))
    assert int(_pieces(two, (2.7, 2.7))[0].max()) == 3
    assert int(_pieces(one, (2.7, 2.7))[0].max()) == 1
