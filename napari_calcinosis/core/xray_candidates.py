"""Candidate dense dots on a radiograph: multiscale centre-surround filter, local CNR, shape.

Each probed deposit radius ``r`` gives a difference of Gaussians (centre sigma ``r / sqrt 2``,
surround ``dog_ratio`` times wider), which suppresses the smooth background (soft tissue
thickness, lung, heart) and keeps bright spots about ``2 r`` across. Its response is divided by
the robust spread of the same response in the surrounding block (``noise_block_mm``): the
local contrast-to-noise ratio, which counts anatomical texture (lung vessels, trabeculae) as
noise, so a dot must stand out against what surrounds it. Peaks of the best scale's CNR above
``min_cnr`` are candidates; each is then measured (contrast, size, elongation, Hessian
eigenvalue ratio) for the look-alike rules in :mod:`.xray_lookalikes`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max

from .xray_params import XrayParams
from .xray_prep import WorkImage


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
    reason: str = ""

    @property
    def elongation(self) -> float:
        return self.length_mm / max(self.width_mm, 1e-6)


def scale_space(work: WorkImage, search: np.ndarray, params: XrayParams
                ) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Best CNR over the probed radii, the index of the best radius, and the sigmas (px)."""
    sigmas = [max(0.7, r / np.sqrt(2.0) / work.pixel_mm) for r in params.radii_mm]
    best = np.full(work.image.shape, -np.inf, dtype=np.float32)
    which = np.zeros(work.image.shape, dtype=np.int8)
    block = max(8, int(round(params.noise_block_mm / work.pixel_mm)))
    for k, sigma in enumerate(sigmas):
        centre = ndi.gaussian_filter(work.image, sigma)
        surround = ndi.gaussian_filter(work.image, params.dog_ratio * sigma)
        response = centre - surround
        cnr = response / local_spread(response, search, block)
        better = cnr > best
        best[better] = cnr[better]
        which[better] = k
    return best, which, sigmas


def local_spread(response: np.ndarray, mask: np.ndarray, block: int) -> np.ndarray:
    """Robust spread (1.4826 x MAD) of ``response`` over ``mask`` in square blocks.

    The block values are interpolated bilinearly back to full size; blocks with too few mask
    pixels borrow the median spread of the others.
    """
    rows = -(-response.shape[0] // block) * block
    cols = -(-response.shape[1] // block) * block
    values = np.full((rows, cols), np.nan, dtype=np.float32)
    values[: response.shape[0], : response.shape[1]] = np.where(mask, response, np.nan)
    tiles = values.reshape(rows // block, block, cols // block, block).transpose(0, 2, 1, 3)
    tiles = tiles.reshape(rows // block, cols // block, block * block)
    counts = np.isfinite(tiles).sum(axis=2)
    enough = counts >= 0.2 * block * block
    spread = np.full(counts.shape, np.nan, dtype=np.float32)
    if enough.any():
        sub = tiles[enough]
        centre = np.nanmedian(sub, axis=1)
        spread[enough] = 1.4826 * np.nanmedian(np.abs(sub - centre[:, None]), axis=1)
    fallback = np.nanmedian(spread) if np.isfinite(spread).any() else np.nanstd(response)
    spread = np.where(np.isfinite(spread), spread, fallback)
    spread = np.maximum(spread, max(float(fallback) * 0.25, 1e-9))
    zoom = (rows / spread.shape[0], cols / spread.shape[1])
    full = ndi.zoom(spread, zoom, order=1, mode="nearest", grid_mode=True)
    return full[: response.shape[0], : response.shape[1]]


def find_candidates(work: WorkImage, search: np.ndarray, params: XrayParams) -> list[Candidate]:
    """Detect and measure bright dots inside ``search`` (a working-grid mask).

    Parameters
    ----------
    work : WorkImage
        The prepared radiograph.
    search : numpy.ndarray
        Where candidates may lie (body, away from the image border and dead strips).
    params : XrayParams
        ``radii_mm``, ``dog_ratio``, ``noise_block_mm``, ``min_cnr``, ``min_separation_mm``.

    Returns
    -------
    list of Candidate
        Every peak above ``min_cnr``, measured; none judged yet.
    """
    if not search.any():
        return []
    cnr, which, sigmas = scale_space(work, search, params)
    separation = max(1, int(round(params.min_separation_mm / work.pixel_mm)))
    peaks = peak_local_max(np.where(search, cnr, 0), min_distance=separation,
                           threshold_abs=params.min_cnr, exclude_border=False)
    hessians = {}
    out = []
    for row, col in peaks:
        k = int(which[row, col])
        if k not in hessians:
            hessians[k] = _hessian(work.image, sigmas[k])
        out.append(measure(work, int(row), int(col), float(cnr[row, col]),
                           params.radii_mm[k], hessians[k]))
    return out


def _hessian(image: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (ndi.gaussian_filter(image, sigma, order=(2, 0)),
            ndi.gaussian_filter(image, sigma, order=(1, 1)),
            ndi.gaussian_filter(image, sigma, order=(0, 2)))


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


def measure(work: WorkImage, row: int, col: int, cnr: float, radius_mm: float,
            hess: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Candidate:
    """Contrast, size and shape of the spot at ``(row, col)`` on the working grid."""
    px_r = max(1.0, radius_mm / work.pixel_mm)
    reach = int(np.ceil(max(3.0 * px_r, 6.0 / work.pixel_mm) + 4.0 / work.pixel_mm))
    r0, r1 = max(0, row - reach), min(work.image.shape[0], row + reach + 1)
    c0, c1 = max(0, col - reach), min(work.image.shape[1], col + reach + 1)
    patch = ndi.gaussian_filter(work.image[r0:r1, c0:c1], 0.5)
    rr, cc = np.mgrid[r0:r1, c0:c1]
    dist = np.hypot((rr - row) * work.spacing_mm[0], (cc - col) * work.spacing_mm[1])
    ring = (dist >= radius_mm + 1.0) & (dist <= radius_mm + 4.0)
    detrended = patch - ring_plane(patch, ring, rr, cc)
    core = dist <= max(radius_mm, work.pixel_mm)
    peak_at = np.unravel_index(np.argmax(np.where(core, detrended, -np.inf)), patch.shape)
    contrast = float(detrended[peak_at])
    peak = float(patch[peak_at])
    region = half_contrast_region(detrended, contrast, int(peak_at[0]), int(peak_at[1]))
    isolation = _isolation(detrended, ring, rr - row, cc - col, contrast)
    length, width = _axes_mm(region, work.spacing_mm)
    ratio = hessian_ratio(*(float(h[row, col]) for h in hess))
    return Candidate(
        row=float(row), col=float(col), cnr=cnr, radius_mm=float(radius_mm),
        contrast=contrast, peak_value=peak, hessian_ratio=ratio,
        diameter_mm=max(length, 2.0 * float(np.sqrt(region.sum() / np.pi)) * work.pixel_mm),
        length_mm=length, width_mm=width, area_px=int(region.sum()), isolation=isolation)


def _isolation(detrended: np.ndarray, ring: np.ndarray, drow: np.ndarray, dcol: np.ndarray,
               contrast: float, sectors: int = 8) -> float:
    """How much the spot stands out against its surroundings in every direction.

    The ring around the spot is cut into angular sectors; the result is the smallest
    ``(contrast - sector median) / contrast``: near 1 for a dot on a smooth background, near 0
    or below for a bump on an edge (one side of the ring is as bright as the spot).
    """
    if contrast <= 0 or ring.sum() < sectors:
        return 0.0
    angle = np.arctan2(drow[ring], dcol[ring])
    which = np.floor((angle + np.pi) / (2 * np.pi) * sectors).astype(int) % sectors
    values = detrended[ring]
    highest = max((float(np.median(values[which == k])) for k in range(sectors)
                   if np.any(which == k)), default=contrast)
    return (contrast - highest) / contrast


def ring_plane(patch: np.ndarray, ring: np.ndarray, rr: np.ndarray,
                cc: np.ndarray) -> np.ndarray:
    """The local background: a plane fitted (robustly) to the ring around the spot."""
    if ring.sum() < 6:
        return np.full(patch.shape, float(np.median(patch)))
    design = np.stack([np.ones(ring.sum()), rr[ring] - rr.mean(), cc[ring] - cc.mean()], axis=1)
    values = patch[ring]
    keep = np.ones(values.size, dtype=bool)
    for _ in range(2):  # drop ring pixels on neighbouring bright structures, refit
        coef, *_ = np.linalg.lstsq(design[keep], values[keep], rcond=None)
        resid = values - design @ coef
        keep = resid <= np.median(resid) + 2.0 * 1.4826 * np.median(np.abs(resid)) + 1e-12
    return coef[0] + coef[1] * (rr - rr.mean()) + coef[2] * (cc - cc.mean())


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
