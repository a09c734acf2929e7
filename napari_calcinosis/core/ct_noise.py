"""Soft-tissue level and image noise, and the host-tissue level around candidates.

Both are measured on voxels of homogeneous soft-tissue blocks of the coarse grid (muscle and
organs, away from edges), on a seeded sample, so they cost a few thousand voxel look-ups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .ct_candidates import unravel
from .params import CTParams
from .tissue import CoarseGrid, erode_inplane

_SAMPLE = 20000
_MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class SoftTissue:
    """Robust statistics of soft tissue (HU)."""

    median_hu: float
    spread_hu: float  # 1.4826 x MAD of single voxels: noise plus tissue texture
    noise_sd_hu: float
    n_voxels: int
    measured: bool = True


def _homogeneous_blocks(hu_c: np.ndarray, body_c: np.ndarray) -> np.ndarray:
    """Coarse blocks deep in the body whose 3x3 neighbourhood is uniform soft tissue.

    Only every few slices are looked at: a sample of 20000 voxels is all that is needed.
    """
    step = max(1, hu_c.shape[0] // 24)
    out = np.zeros(hu_c.shape, bool)
    out[::step] = _homogeneous(hu_c[::step], body_c[::step])
    return out


def _homogeneous(hu_c: np.ndarray, body_c: np.ndarray) -> np.ndarray:
    inner = erode_inplane(body_c, 2)
    local = ndi.uniform_filter(hu_c, size=(1, 3, 3))
    local_sq = ndi.uniform_filter(hu_c * hu_c, size=(1, 3, 3))
    sd = np.sqrt(np.maximum(local_sq - local * local, 0.0))
    return inner & (hu_c > -20.0) & (hu_c < 110.0) & (sd < 20.0)


def soft_tissue_stats(hu: np.ndarray, hu_c: np.ndarray, body_c: np.ndarray,
                      grid: CoarseGrid, *, params: CTParams) -> SoftTissue:
    """Median, robust spread and noise of soft tissue.

    Parameters
    ----------
    hu : numpy.ndarray
        Full-resolution HU.
    hu_c, body_c : numpy.ndarray
        Coarse block-mean HU and body mask.
    grid : CoarseGrid
        The coarse grid of ``hu_c``.
    params : CTParams
        ``noise_sd_hu`` (when given, it replaces the measured noise).
    """
    blocks = np.flatnonzero(_homogeneous_blocks(hu_c, body_c))
    if len(blocks) < 50:
        noise = params.noise_sd_hu or 20.0
        return SoftTissue(40.0, noise, noise, 0, measured=False)
    rng = np.random.default_rng(12345)
    chosen = rng.choice(blocks, size=min(_SAMPLE, len(blocks)), replace=False)
    kc, ic, jc = np.unravel_index(chosen, grid.coarse_shape)
    fz, fy, fx = grid.factors
    k = grid.sample_slices()[kc]
    i = np.minimum(ic * fy + fy // 2, grid.shape[1] - 1)
    j = np.minimum(jc * fx + fx // 2, grid.shape[2] - 1)
    raw = hu[k, i, j].astype(np.float64)
    median = float(np.median(raw))
    spread = _MAD_TO_SD * float(np.median(np.abs(raw - median)))
    # noise from differences a few mm apart: organ-to-organ differences of level cancel,
    # and the noise of points that far apart is nearly independent
    step = max(2, int(round(4.0 / grid.spacing_zyx_mm[2])))
    j2 = np.clip(j + step, 0, grid.shape[2] - 1)
    diff = raw - hu[k, i, j2]
    measured = _MAD_TO_SD * float(np.median(np.abs(diff - np.median(diff)))) / np.sqrt(2.0)
    noise = float(params.noise_sd_hu) if params.noise_sd_hu else measured
    return SoftTissue(median, spread, max(noise, 1.0), len(raw))


def _ring_offsets(spacing_yx: tuple[float, float], radii_mm: tuple[float, ...],
                  n_angles: int = 16) -> tuple[np.ndarray, np.ndarray]:
    angles = np.linspace(0.0, 2 * np.pi, n_angles, endpoint=False)
    dy, dx = [], []
    for r in radii_mm:
        dy.append(np.round(r * np.sin(angles) / spacing_yx[0]))
        dx.append(np.round(r * np.cos(angles) / spacing_yx[1]))
    off = np.unique(np.column_stack([np.concatenate(dy), np.concatenate(dx)]).astype(int),
                    axis=0)
    off = off[np.any(off != 0, axis=1)]
    return off[:, 0], off[:, 1]


def local_background(hu: np.ndarray, flat: np.ndarray, spacing_zyx_mm, *,
                     params: CTParams, threshold_hu: float,
                     radii_mm: tuple[float, ...] = (2.5, 4.0)) -> tuple[np.ndarray, np.ndarray]:
    """Host-tissue level around voxels: upper quartile of a ring in their slice.

    Ring samples in air (below ``body_threshold_hu``) or at/above the calcium threshold are
    left out; the upper quartile leans toward the denser tissue when the ring crosses a
    boundary (skin over fat), which keeps noise in thin dense layers from looking bright.
    Returns the level (``nan`` where no ring sample is usable) and whether the ring reached
    air (the voxel lies at the body surface).
    """
    z, y, x = unravel(np.asarray(flat), hu.shape)
    dy, dx = _ring_offsets(tuple(spacing_zyx_mm[1:]), radii_mm)
    yy = np.clip(y[:, None] + dy[None, :], 0, hu.shape[1] - 1)
    xx = np.clip(x[:, None] + dx[None, :], 0, hu.shape[2] - 1)
    ring = hu[z[:, None], yy, xx].astype(np.float64)
    air = np.any(ring < params.body_threshold_hu, axis=1)
    ring[(ring < params.body_threshold_hu) | (ring >= threshold_hu)] = np.nan
    out = np.full(len(z), np.nan)
    usable = ~np.all(np.isnan(ring), axis=1)
    if usable.any():
        out[usable] = np.nanpercentile(ring[usable], 75, axis=1)
    return out, air
