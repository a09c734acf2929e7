"""The noise model of the radiograph detector: pixel noise, its correlation, block statistics.

The detector divides each scale's filter response by the noise that scale would show on a
featureless image: the local pixel noise (robust spread of a 1-pixel high-pass image, in
blocks, since quantum noise grows with attenuation) times the scale's noise gain. The gain
depends on how correlated the detector noise is (blur after the noise, processing), which is
measured on the image and matched by simulated Gaussian-correlated noise.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
from scipy import ndimage as ndi


def noise_correlation(high_pass: np.ndarray, mask: np.ndarray, block: int) -> float:
    """Neighbour correlation of the image noise, from the high-pass image.

    Detector noise is often correlated (blur after the noise, processing); the correlation
    sets how much averaging a wider filter buys. Anatomy left in the high-pass image only
    raises the correlation, so a low percentile (10th) over small blocks is taken.
    """
    rows, cols = high_pass.shape[0] // block, high_pass.shape[1] // block
    size = block * block
    inside = mask[: rows * block, : cols * block]
    full = np.flatnonzero(block_counts(inside, block) / size >= 0.9)
    # only the blocks used, each one contiguous row of h: every sum below is the same
    # pairwise sum as per block
    at_rows, at_cols = np.divmod(full, cols)
    inside = inside.reshape(rows, block, cols, block)[at_rows, :, at_cols, :]
    values = high_pass[: rows * block, : cols * block].reshape(rows, block, cols, block)
    h = np.where(inside, values[at_rows, :, at_cols, :], 0.0)
    count, pairs = h.shape[0], block * (block - 1)
    energy = (h * h).reshape(count, size).sum(axis=1)
    lag = ((h[:, :, 1:] * h[:, :, :-1]).reshape(count, pairs).sum(axis=1)
           + (h[:, 1:] * h[:, :-1]).reshape(count, pairs).sum(axis=1))
    good = energy > 0
    corrs = lag[good].astype(np.float64) / (2 * energy[good].astype(np.float64))
    if corrs.size == 0:
        return float(_SIMULATED[0][1])
    return float(np.percentile(corrs, 10))


def block_counts(mask: np.ndarray, block: int) -> np.ndarray:
    """Number of True pixels in each ``block x block`` tile of a 2-D mask whose sides are
    multiples of ``block`` (from its integral image: exact, whatever the block)."""
    total = cv2.integral(np.ascontiguousarray(mask, dtype=np.uint8))[::block, ::block]
    return total[1:, 1:] - total[:-1, 1:] - total[1:, :-1] + total[:-1, :-1]


def _simulate_noise() -> list[tuple[float, float, np.ndarray]]:
    """Gaussian-correlated noise of several widths: (width, high-pass lag-1 corr., noise)."""
    white = np.random.default_rng(12345).standard_normal((160, 160))
    out = []
    for width in np.arange(0.0, 2.01, 0.2):
        noise = ndi.gaussian_filter(white, width) if width > 0 else white
        high = noise - ndi.gaussian_filter(noise, 1.0)
        lag = float((high[:, 1:] * high[:, :-1]).mean() + (high[1:] * high[:-1]).mean()) \
            / (2 * float((high * high).mean()))
        out.append((float(width), lag, noise / high.std()))
    return out


_SIMULATED = _simulate_noise()


@lru_cache(maxsize=64)
def noise_gains(correlation: float, sigmas: tuple[float, ...], ratio: float) -> list[float]:
    """Spread of each scale's filter response per unit of high-pass pixel noise.

    Found by filtering simulated noise whose neighbour correlation (after the same
    high-pass) matches the image's; correlated noise keeps more power at wide scales.
    """
    lags = np.array([lag for _, lag, _ in _SIMULATED])
    k = int(np.clip(np.searchsorted(lags, correlation), 1, len(lags) - 1))
    frac = float(np.clip((correlation - lags[k - 1]) / max(lags[k] - lags[k - 1], 1e-9), 0, 1))
    gains = []
    for sigma in sigmas:
        pair = [float(dog(_SIMULATED[i][2], sigma, ratio)[20:-20, 20:-20].std())
                for i in (k - 1, k)]
        gains.append((1 - frac) * pair[0] + frac * pair[1])
    return gains


def dog(image: np.ndarray, sigma: float, ratio: float) -> np.ndarray:
    """Difference of Gaussians (centre ``sigma`` minus surround ``ratio * sigma``)."""
    return ndi.gaussian_filter(image, sigma) - ndi.gaussian_filter(image, ratio * sigma)


def block_stats(values: np.ndarray, mask: np.ndarray, block: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-block level (median), spread and whether the block has enough mask pixels.

    The spread is 1.4826 x the median absolute deviation. Every second pixel along each axis
    is enough for these statistics. Blocks with too few mask pixels take the values of the
    nearest block that has enough.
    """
    half = max(1, block // 2)
    sub = np.where(mask[::2, ::2], values[::2, ::2], np.nan)
    rows, cols = -(-sub.shape[0] // half) * half, -(-sub.shape[1] // half) * half
    padded = np.full((rows, cols), np.nan, dtype=np.float32)
    padded[: sub.shape[0], : sub.shape[1]] = sub
    tiles = padded.reshape(rows // half, half, cols // half, half).transpose(0, 2, 1, 3)
    tiles = tiles.reshape(rows // half, cols // half, half * half)
    counts = np.isfinite(tiles).sum(axis=2)
    enough = counts >= 0.2 * half * half
    # only blocks holding mask pixels are sorted (few along a thin band near the outline)
    some = counts > 0
    level = np.full(counts.shape, np.nan, dtype=np.float32)
    spread = np.full(counts.shape, np.nan, dtype=np.float32)
    ordered = np.sort(tiles[some], axis=1)
    level[some] = _sorted_median(ordered, counts[some])
    deviation = np.sort(np.abs(ordered - level[some][:, None]), axis=1)
    spread[some] = 1.4826 * _sorted_median(deviation, counts[some])
    if not enough.any():
        spread = np.full(enough.shape, max(float(np.nanstd(values)), 1e-9), dtype=np.float32)
        return np.zeros(enough.shape, dtype=np.float32), spread, enough
    nearest = ndi.distance_transform_edt(~enough, return_distances=False, return_indices=True)
    level, spread = level[tuple(nearest)], spread[tuple(nearest)]
    spread = np.maximum(spread, max(0.25 * float(np.median(spread)), 1e-9))
    return level, spread, enough


def _sorted_median(tiles: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median along the last axis of arrays sorted with NaN last, given the finite counts."""
    low = np.clip((counts - 1) // 2, 0, tiles.shape[-1] - 1)
    high = np.clip(counts // 2, 0, tiles.shape[-1] - 1)
    first = np.take_along_axis(tiles, low[..., None], axis=-1)[..., 0]
    second = np.take_along_axis(tiles, high[..., None], axis=-1)[..., 0]
    return np.where(counts > 0, 0.5 * (first + second), np.nan).astype(np.float32)


def bilinear(grid: np.ndarray, shape: tuple[int, ...], block: int) -> np.ndarray:
    """Bilinear interpolation of block-centre values to every pixel (edges held flat)."""
    weights = []
    for size, count in zip(shape[:2], grid.shape):
        centres = (np.arange(count) + 0.5) * block - 0.5
        where = np.interp(np.arange(size), centres, np.arange(count))
        low = np.floor(where).astype(int)
        high = np.minimum(low + 1, count - 1)
        frac = where - low
        matrix = np.zeros((size, count), dtype=np.float32)
        matrix[np.arange(size), low] += 1 - frac
        matrix[np.arange(size), high] += frac
        weights.append(matrix)
    return weights[0] @ grid.astype(np.float32) @ weights[1].T


def median(values: np.ndarray):
    """``np.median`` of a 1-D array, bit for bit, without its per-call overhead.

    The detector takes thousands of medians of small rings; ``np.partition`` at the middle
    order statistics and the same two-value mean give the identical number and dtype.
    """
    half = values.size // 2
    if values.size % 2:
        return np.partition(values, half)[half]
    part = np.partition(values, (half - 1, half))
    return (part[half - 1] + part[half]) / 2
