"""Soft-tissue level and image noise, and the host-tissue level around candidates.

Both are measured on a seeded sample of a few thousand voxels: inside the muscle compartment
of the tissue model when it is large enough, else in homogeneous soft-tissue blocks of the
coarse grid (muscle and organs, away from edges).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_calcinosis.types import CTParams

from ._candidates import unravel
from ._grid import CoarseGrid
from ._morphology import erode_inplane
from ._tissue import Compartment, TissueModel

_SAMPLE = 20000
_IQR_TO_SD = 1.349
_MIN_MUSCLE_BLOCKS = 2000


@dataclass(frozen=True)
class SoftTissue:
    """Robust statistics of soft tissue (HU)."""

    median_hu: float
    spread_hu: float  # 1.4826 x MAD of single voxels: noise plus tissue texture
    noise_sd_hu: float
    n_voxels: int
    measured: bool = True


def _every_few_slices(n_slices: int) -> int:
    return max(1, n_slices // 24)


def _homogeneous_blocks(hu_c: np.ndarray, body_c: np.ndarray) -> np.ndarray:
    """Coarse blocks deep in the body whose 3x3 neighbourhood is uniform soft tissue.

    Only every few slices are looked at: a sample of 20000 voxels is all that is needed.
    """
    step = _every_few_slices(hu_c.shape[0])
    out = np.zeros(hu_c.shape, bool)
    out[::step] = _homogeneous(hu_c[::step], body_c[::step])
    return out


def _homogeneous(hu_c: np.ndarray, body_c: np.ndarray) -> np.ndarray:
    inner = erode_inplane(body_c, 2)
    local = ndi.uniform_filter(hu_c, size=(1, 3, 3))
    local_sq = ndi.uniform_filter(hu_c * hu_c, size=(1, 3, 3))
    sd = np.sqrt(np.maximum(local_sq - local * local, 0.0))
    return inner & (hu_c > -20.0) & (hu_c < 110.0) & (sd < 20.0)


def _muscle_interior(tissue: TissueModel) -> np.ndarray:
    """Blocks of the muscle compartment whose in-plane neighbours are muscle too."""
    step = _every_few_slices(tissue.labels.shape[0])
    out = np.zeros(tissue.labels.shape, bool)
    out[::step] = erode_inplane(tissue.labels[::step] == Compartment.MUSCLE, 1)
    return out


def _robust_sd(values: np.ndarray, rng: np.random.Generator) -> float:
    """Interquartile SD of HU values, dequantised first.

    HU are integers: without spreading each value over its unit interval the quartiles
    (and a median absolute deviation) move in whole HU steps, a bias of up to 1 HU.
    """
    smooth = values + rng.uniform(-0.5, 0.5, values.shape)
    q25, q75 = np.percentile(smooth, [25.0, 75.0])
    return float(q75 - q25) / _IQR_TO_SD


def soft_tissue_stats(hu: np.ndarray, hu_c: np.ndarray, body_c: np.ndarray,
                      grid: CoarseGrid, *, params: CTParams,
                      tissue: TissueModel | None = None) -> SoftTissue:
    """Median, robust spread and noise of soft tissue.

    Sampled in the interior of the muscle compartment when a tissue model is given and its
    muscle is large enough (one tissue, so that neither its level nor the noise mixes
    organs of different density); otherwise in homogeneous soft-tissue blocks.

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
    tissue : TissueModel, optional
        The compartments (:func:`._tissue.build_tissue_model`).
    """
    sample = _muscle_interior(tissue) if tissue is not None else None
    if sample is None or np.count_nonzero(sample) < _MIN_MUSCLE_BLOCKS:
        sample = _homogeneous_blocks(hu_c, body_c)
        partner_in_sample = False
    else:
        partner_in_sample = True
    blocks = np.flatnonzero(sample)
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
    median = float(np.median(raw + rng.uniform(-0.5, 0.5, raw.shape)))
    spread = _robust_sd(raw, rng)
    # noise from differences a few mm apart: organ-to-organ differences of level cancel,
    # and the noise of points that far apart is nearly independent
    step = max(2, int(round(4.0 / grid.spacing_zyx_mm[2])))
    j2 = np.clip(j + step, 0, grid.shape[2] - 1)
    pair = sample[kc, ic, np.minimum(j2 // fx, grid.coarse_shape[2] - 1)] \
        if partner_in_sample else np.ones(len(raw), bool)
    if np.count_nonzero(pair) < 50:
        pair = np.ones(len(raw), bool)
    diff = (raw - hu[k, i, j2])[pair] + rng.uniform(-0.5, 0.5, int(np.count_nonzero(pair)))
    measured = _robust_sd(diff, rng) / np.sqrt(2.0)
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


def _expected_noise_max(n_voxels: float) -> float:
    """Expected largest of ``n`` standard normal values, to first order (extreme values)."""
    return float(np.sqrt(2.0 * np.log(max(n_voxels, 2.0))))


def cnr_bars(tm: TissueModel, params: CTParams) -> tuple[float, float]:
    """Contrast-to-noise bars for candidates in the body and in the skin shell.

    Noise peaks above the calcium threshold are searched for in the body's soft tissue and
    cavity, and separately in the skin shell, a much smaller volume. The largest noise
    peak among ``n`` voxels grows like ``sqrt(2 ln n)``, so each volume gets the bar
    ``min_cnr + sqrt(2 ln n) - sqrt(2 ln cnr_reference_voxels)`` (within 1 SD of
    ``min_cnr``): false noise peaks stay about as rare in a long thin-slice series as in a
    short one, and as rare in the skin (where the faintest deposits of calcinosis cutis lie)
    as in the rest of the body. Both bars are ``min_cnr`` when
    ``params.cnr_by_search_volume`` is off.

    Returns
    -------
    tuple of float
        ``(body_bar, skin_bar)``.
    """
    if not params.cnr_by_search_volume:
        return float(params.min_cnr), float(params.min_cnr)
    counts = np.bincount(tm.labels[tm.body], minlength=len(Compartment))
    per_block = float(np.prod(tm.grid.factors))
    reference = _expected_noise_max(params.cnr_reference_voxels)

    def bar(n_voxels: float) -> float:
        shift = _expected_noise_max(n_voxels) - reference
        return float(params.min_cnr + np.clip(shift, -1.0, 1.0))

    body = (counts[Compartment.MUSCLE] + counts[Compartment.CAVITY]) * per_block
    return bar(body), bar(counts[Compartment.SKIN] * per_block)
