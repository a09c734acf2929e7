"""Measuring a candidate dot: contrast, size, elongation, isolation and Hessian shape.

:func:`measure` looks at a small window around a peak found by :mod:`._candidates`: the local
background is a plane fitted robustly to a ring around the spot, the spot is the connected
region above half its contrast, its axes come from second moments, and its isolation compares
it with the brightest sector of the ring (a bump on an edge is not a dot).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

from ._filters import gaussian
from ._noise import median
from ._prep import WorkImage


@dataclass
class Candidate:
    """One bright spot on the working grid, with what the rules need to judge it."""

    row: float
    col: float
    cnr: float
    radius_mm: float
    contrast: float
    peak_value: float
    hessian_ratio: float
    diameter_mm: float
    length_mm: float
    width_mm: float
    area_px: int
    isolation: float = 1.0
    texture_cnr: float = 0.0
    reason: str = ""
    #: The detection channel: ``image``, ``near_outline`` or ``skin_band`` (top-hat).
    channel: str = "image"

    @property
    def elongation(self) -> float:
        return self.length_mm / max(self.width_mm, 1e-6)


def hessian_ratio(hrr: float, hrc: float, hcc: float) -> float:
    """``l_small / l_large`` of the Hessian's eigenvalues by magnitude, signed.

    Near 1 for a round bright spot, near 0 for a ridge (one flat direction), negative for a
    saddle (a bright spot on a ridge crossing or an edge).
    """
    half_trace = 0.5 * (hrr + hcc)
    root = np.sqrt(max(0.25 * (hrr - hcc) ** 2 + hrc**2, 0.0))
    first, second = half_trace - root, half_trace + root
    if first > 0:  # a dark spot, not a bright one
        return -1.0
    return float(second / first) if first != 0 else 0.0


def hessian_ratios(hrr: np.ndarray, hrc: np.ndarray, hcc: np.ndarray) -> np.ndarray:
    """:func:`hessian_ratio` of many Hessians at once (the same operations, elementwise)."""
    half_trace = 0.5 * (hrr + hcc)
    root = np.sqrt(np.maximum(0.25 * (hrr - hcc) ** 2 + hrc**2, 0.0))
    first, second = half_trace - root, half_trace + root
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(first != 0, second / np.where(first != 0, first, 1.0), 0.0)
    return np.where(first > 0, -1.0, ratio)


def measure(work: WorkImage, smoothed: np.ndarray, row: int, col: int, cnr: float,
            radius_mm: float, hess: tuple[float, float, float]) -> Candidate:
    """Contrast, size and shape of the spot at ``(row, col)`` on the working grid.

    Measured on ``smoothed``: the channel's image (the image or its top-hat) after a
    Gaussian of 0.5 pixel; ``peak_value`` is the working image's value.
    """
    px_r = max(1.0, radius_mm / work.pixel_mm)
    reach = int(np.ceil(max(3.0 * px_r, 6.0 / work.pixel_mm) + 4.0 / work.pixel_mm))
    r0, r1 = max(0, row - reach), min(work.image.shape[0], row + reach + 1)
    c0, c1 = max(0, col - reach), min(work.image.shape[1], col + reach + 1)
    patch = smoothed[r0:r1, c0:c1]
    win = _measure_window(r0 - row, r1 - row, c0 - col, c1 - col, tuple(work.spacing_mm),
                          float(radius_mm), max(radius_mm, work.pixel_mm))
    detrended = patch - _fit_plane(patch, win.ring, win.terms, win.design)
    peak_at = np.unravel_index(np.argmax(np.where(win.core, detrended, -np.inf)), patch.shape)
    contrast = float(detrended[peak_at])
    peak = float(work.image[r0 + peak_at[0], c0 + peak_at[1]])
    region = half_contrast_region(detrended, contrast, int(peak_at[0]), int(peak_at[1]))
    isolation = _isolation(detrended, win.ring, win.sector, contrast)
    length, width = _axes_mm(region, work.spacing_mm)
    ratio = hessian_ratio(*hess)
    return Candidate(
        row=float(row), col=float(col), cnr=cnr, radius_mm=float(radius_mm),
        contrast=contrast, peak_value=peak, hessian_ratio=ratio,
        diameter_mm=max(length, 2.0 * float(np.sqrt(region.sum() / np.pi)) * work.pixel_mm),
        length_mm=length, width_mm=width, area_px=int(region.sum()), isolation=isolation)


class SmoothedPatches:
    """``gaussian(image, sigma)`` read by ``[rows, cols]`` slices, each computed on its patch
    plus the kernel's reach: the same values to float rounding (each output pixel sees the
    same inputs, and the image's own edges mirror as before) without filtering the whole
    image for the few spots that get measured."""

    def __init__(self, image: np.ndarray, sigma: float):
        self.image, self.sigma = image, sigma
        self.margin = int(4.0 * sigma + 0.5)  # scipy's kernel radius (truncate 4)
        self.shape = image.shape

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        cut = []
        for part, size in zip(key, self.shape):
            start, stop, _ = part.indices(size)
            cut.append((start, stop, max(0, start - self.margin),
                        min(size, stop + self.margin)))
        padded = gaussian(self.image[cut[0][2]: cut[0][3], cut[1][2]: cut[1][3]],
                          self.sigma)
        return padded[cut[0][0] - cut[0][2]: cut[0][1] - cut[0][2],
                      cut[1][0] - cut[1][2]: cut[1][1] - cut[1][2]]


@dataclass(frozen=True)
class _Window:
    """Masks and plane terms of a measuring window, from its offsets to the spot."""

    ring: np.ndarray
    core: np.ndarray
    sector: np.ndarray  # angular sector of each ring pixel, in ring order
    terms: list[np.ndarray]  # of the background plane (see ring_plane)
    design: np.ndarray


@lru_cache(maxsize=256)  # a window's arrays weigh up to ~0.2 MB
def _measure_window(top: int, bottom: int, left: int, right: int,
                    spacing_mm: tuple[float, float], radius_mm: float, core_mm: float,
                    sectors: int = 8) -> _Window:
    """The geometry of :func:`measure`'s window, shared by every spot with the same offsets."""
    drow, dcol = np.mgrid[top:bottom, left:right]
    dist = np.hypot(drow * spacing_mm[0], dcol * spacing_mm[1])
    ring = (dist >= radius_mm + 1.0) & (dist <= radius_mm + 4.0)
    angle = np.arctan2(drow[ring], dcol[ring])
    sector = np.floor((angle + np.pi) / (2 * np.pi) * sectors).astype(int) % sectors
    return _Window(ring, dist <= core_mm, sector, *_plane_terms(ring, drow, dcol))


def _isolation(detrended: np.ndarray, ring: np.ndarray, sector: np.ndarray,
               contrast: float, sectors: int = 8) -> float:
    """How much the spot stands out against its surroundings in every direction.

    The ring around the spot is cut into angular sectors (``sector``, one per ring pixel);
    the result is the smallest ``(contrast - sector median) / contrast``: near 1 for a dot on
    a smooth background, near 0 or below for a bump on an edge (one side of the ring is as
    bright as the spot). The sector medians come from one sort by (sector, value).
    """
    if contrast <= 0 or sector.size < sectors:
        return 0.0
    values = detrended[ring]
    ordered = values[np.lexsort((values, sector))]
    counts = np.bincount(sector, minlength=sectors)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[counts > 0]
    counts = counts[counts > 0]
    # (a + b) / 2 of the two middle values, as np.median; a + a halves back to a exactly
    medians = (ordered[starts + (counts - 1) // 2] + ordered[starts + counts // 2]) / 2
    return (contrast - float(medians.max())) / contrast


def ring_plane(patch: np.ndarray, ring: np.ndarray, rr: np.ndarray, cc: np.ndarray
               ) -> np.ndarray:
    """The local background: a plane fitted robustly to the ring around the spot."""
    return _fit_plane(patch, ring, *_plane_terms(ring, rr, cc))


def _plane_terms(ring: np.ndarray, rr: np.ndarray, cc: np.ndarray
                 ) -> tuple[list[np.ndarray], np.ndarray]:
    """The plane's terms (1, row, column; centred, scaled) and their values on the ring."""
    dr, dc = (rr - rr.mean()) / 10.0, (cc - cc.mean()) / 10.0
    terms = [np.ones_like(dr), dr, dc]
    return terms, np.stack([t[ring] for t in terms], axis=1)


def _fit_plane(patch: np.ndarray, ring: np.ndarray, terms: list[np.ndarray],
               design: np.ndarray) -> np.ndarray:
    """:func:`ring_plane` given the terms of its window (shared by windows alike)."""
    if ring.sum() < 6:
        return np.full(patch.shape, float(np.median(patch)))
    values = patch[ring]
    keep = np.ones(values.size, dtype=bool)
    for _ in range(2):  # drop ring pixels on neighbouring bright structures, refit
        coef, *_ = np.linalg.lstsq(design[keep], values[keep], rcond=None)
        resid = values - design @ coef
        keep = resid <= median(resid) + 2.0 * 1.4826 * median(np.abs(resid)) + 1e-12
    return sum(c * t for c, t in zip(coef, terms))


def half_contrast_region(detrended: np.ndarray, contrast: float,
                          row: int, col: int) -> np.ndarray:
    """Connected pixels above half the contrast, grown from the peak at ``(row, col)``."""
    if contrast <= 0:
        region = np.zeros(detrended.shape, dtype=bool)
        region[row, col] = True
        return region
    above = detrended >= 0.5 * contrast
    labels, _ = ndi.label(above)
    return labels == labels[row, col]


def _axes_mm(region: np.ndarray, spacing_mm: tuple[float, float]) -> tuple[float, float]:
    """Major and minor axis lengths (mm) of a region from its second moments.

    The length of a uniform ellipse is 4 x the standard deviation along its axis; one pixel
    is added so a single pixel measures one pixel.
    """
    rows, cols = np.nonzero(region)
    coords = np.stack([rows * spacing_mm[0], cols * spacing_mm[1]], axis=1)
    if coords.shape[0] < 2:
        return float(np.mean(spacing_mm)), float(np.mean(spacing_mm))
    cov = np.cov(coords, rowvar=False) + np.eye(2) * (np.mean(spacing_mm) ** 2 / 12.0)
    small, large = np.sqrt(np.maximum(np.linalg.eigvalsh(cov), 0.0))
    return 4.0 * float(large), 4.0 * float(small)
