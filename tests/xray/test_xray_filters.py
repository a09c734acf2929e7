"""The OpenCV filters of ``napari_calcinosis.xray._filters`` against the scipy / skimage calls they
replace.

Each must give the library's result (float rounding aside) on random images, at the image
edges too, with odd shapes and kernels close to the image size.
"""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import disk

from napari_calcinosis.xray import _filters as F

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


@pytest.mark.parametrize("shape", [(250, 250), (120, 90)])
def test_bright_ridges_equal_skimages_sato(shape):
    from skimage.filters import sato

    rng = np.random.default_rng(7)
    image = ndi.gaussian_filter(rng.normal(size=shape), 1.0).astype(np.float32)
    image[60:64, :] += 2.0  # a bright ridge across the image
    sigmas = [3.0 / 1.8, 4.5 / 1.8, 6.0 / 1.8]  # the rib scales on the anatomy grid
    expected = sato(image, sigmas=sigmas, black_ridges=False, mode="reflect")
    got = F.bright_ridges(image, sigmas)
    assert got.dtype == expected.dtype
    assert np.abs(got - expected).max() < 1e-6 * np.abs(expected).max()
    assert got[62].mean() > 10 * np.median(got)  # the ridge answers


def test_block_counts_and_noise_correlation_blocks():
    from napari_calcinosis.xray._noise import block_counts, noise_correlation

    rng = np.random.default_rng(8)
    mask = rng.random((180, 240)) < 0.95
    for block in (6, 10, 30):
        expected = mask.reshape(180 // block, block, 240 // block, block).sum(axis=(1, 3))
        assert np.array_equal(block_counts(mask, block), expected)
    # the correlation over the full blocks equals a plain loop over them
    noise = ndi.gaussian_filter(rng.normal(size=(183, 245)), 0.8).astype(np.float32)
    high = noise - ndi.gaussian_filter(noise, 1.0)
    mask = np.zeros(high.shape, bool)
    mask[20:170, 15:200] = True
    block, corrs = 12, []
    for r in range(0, 183 - block + 1, block):
        for c in range(0, 245 - block + 1, block):
            inside = mask[r: r + block, c: c + block]
            if inside.mean() >= 0.9:
                h = np.where(inside, high[r: r + block, c: c + block], 0.0).astype(np.float64)
                lag = (h[:, 1:] * h[:, :-1]).sum() + (h[1:] * h[:-1]).sum()
                corrs.append(lag / (2 * (h * h).sum()))
    assert noise_correlation(high, mask, block) == pytest.approx(np.percentile(corrs, 10),
                                                                 rel=1e-5)
