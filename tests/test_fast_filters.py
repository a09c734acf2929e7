"""The OpenCV filters of ``core.fast_filters`` against the scipy / skimage calls they replace.

Each must give the library's result (float rounding aside) on random images, at the image
edges too, with odd shapes and kernels close to the image size.
"""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import disk

from napari_calcinosis.core import fast_filters as F

SHAPES = [(240, 310), (37, 53), (9, 12)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_equals_scipy(shape, dtype):
    image = np.random.default_rng(1).normal(size=shape).astype(dtype)
    for sigma in (0.5, 0.98, 2.81, 7.5):  # the widest reaches past the small images' sides
        got, expected = F.gaussian(image, sigma), ndi.gaussian_filter(image, sigma)
        assert got.dtype == dtype and got.shape == shape
        tolerance = 1e-6 if dtype == np.float32 else 1e-12
        assert np.abs(got - expected).max() < tolerance, sigma


def test_gaussian_of_a_strided_view_and_an_integer_image():
    image = np.random.default_rng(2).normal(size=(200, 160)).astype(np.float32)
    view = image[::2, 1::3]
    assert np.abs(F.gaussian(view, 1.3) - ndi.gaussian_filter(view, 1.3)).max() < 1e-6
    counts = np.random.default_rng(3).integers(0, 100, (50, 40))
    assert np.array_equal(F.gaussian(counts, 1.0), ndi.gaussian_filter(counts, 1.0))


@pytest.mark.parametrize("shape", SHAPES)
def test_uniform_and_maximum_filters_equal_scipy(shape):
    image = np.random.default_rng(4).normal(size=shape).astype(np.float32)
    for size in (3, 5, 9):
        got = F.uniform_filter(image, size)
        assert np.abs(got - ndi.uniform_filter(image, size)).max() < 1e-6
        assert np.array_equal(F.maximum_filter(image, size),
                              ndi.maximum_filter(image, size=size, mode="nearest"))
    with pytest.raises(ValueError):
        F.maximum_filter(image, 4)


@pytest.mark.parametrize("shape", SHAPES)
def test_binary_morphology_and_labels_equal_scipy(shape):
    rng = np.random.default_rng(5)
    for fraction in (0.3, 0.6, 0.9):
        mask = rng.random(shape) < fraction
        for iterations in (1, 2, 5):
            assert np.array_equal(F.binary_dilation(mask, iterations),
                                  ndi.binary_dilation(mask, iterations=iterations))
            assert np.array_equal(F.binary_erosion(mask, iterations),
                                  ndi.binary_erosion(mask, iterations=iterations))
        labels, count = F.label(mask)
        expected, expected_count = ndi.label(mask)
        assert count == expected_count and np.array_equal(labels, expected)  # same numbers


def test_grey_morphology_equals_skimage_with_the_disc_sequence():
    from skimage.morphology import dilation, erosion

    image = np.random.default_rng(6).normal(size=(90, 110)).astype(np.float32)
    for radius in (2, 6, 11, 22):
        for small, _ in disk(radius, decomposition="sequence"):
            assert np.array_equal(F.grey_erosion(image, small),
                                  erosion(image, small, mode="reflect"))
            assert np.array_equal(F.grey_dilation(image, small),
                                  dilation(image, small, mode="reflect"))
    with pytest.raises(ValueError):
        F.grey_erosion(image, np.ones((2, 3), bool))
