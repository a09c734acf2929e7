"""Register a CT's DRR to a frontal radiograph: translation and isotropic scale.

The radiograph's pixel size at the patient (``mm_per_pixel``) is searched over a range: a
file's PixelSpacing or ImagerPixelSpacing divided by a magnification from
``CTLinkParams.magnification_range`` (ImagerPixelSpacing is measured at the detector, about
1.05-1.25 times the patient), or, without any spacing, the pixel size that makes the image
``fov_range_mm`` wide. For each candidate the radiograph is resampled onto the DRR's grid and
compared with it by the masked normalised cross-correlation (NCC) of a Laplacian-of-Gaussian
feature image (bones, lung edges, the body's edges) at every shift at once (FFT); the best
candidate of a coarse grid (``coarse_step_mm``) is refined on a finer one (``fine_step_mm``),
then scale and shift are polished together as continuous values (Nelder-Mead on the NCC with
the radiograph's features interpolated at the DRR's pixels: integer shifts alone make the
NCC-versus-scale curve jagged). Rotation is not searched: a frontal chest radiograph is taken
upright and square.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import fft, ndimage, optimize

from napari_calcinosis.types import Radiograph, Volume
from napari_calcinosis.types.params import Parameters

from ._drr import DRR, make_drr

__all__ = ["CTLinkParams", "Registration", "masked_ncc", "register_drr"]


@dataclass(frozen=True)
class CTLinkParams(Parameters):
    """Parameters of the CT -> frontal radiograph link (all keyword, all with defaults).

    Matching tolerance: a CT deposit confirms a radiograph dot when their distance on the
    radiograph (mm at the patient) is at most ``match_base_mm`` (registration error) + both
    radii + the beam-divergence term ``|off-axis distance| * |depth offset| / source_detector_mm``
    (a parallel DRR places a deposit ``depth`` mm in front of or behind the body's mid-plane
    off by about that much on a divergent radiograph; the central ray is taken at the image
    centre).
    """

    coarse_step_mm: float = 4.0
    fine_step_mm: float = 2.0
    magnification_range: tuple[float, float] = (0.95, 1.3)
    fov_range_mm: tuple[float, float] = (250.0, 550.0)
    coarse_scale_step: float = 0.025
    fine_scale_step: float = 0.005
    feature_sigma_mm: float = 3.0
    min_overlap_fraction: float = 0.5
    min_score: float = 0.65
    match_base_mm: float = 5.0
    source_detector_mm: float = 1800.0
    body_threshold_hu: float = -400.0


@dataclass
class Registration:
    """Where patient points land on the radiograph (parallel projection, registered).

    ``row = (P . row_direction_lps - v_origin_mm) / mm_per_pixel`` and likewise for columns
    with ``u_origin_mm``; ``score`` is the fine-grid NCC, ``overlap_fraction`` the share of
    the radiograph the CT's projection covers at the optimum.
    """

    mm_per_pixel: float
    v_origin_mm: float
    u_origin_mm: float
    row_direction_lps: np.ndarray
    column_direction_lps: np.ndarray
    score: float
    overlap_fraction: float
    at_scale_limit: bool = False
    drr: DRR | None = field(default=None, repr=False)

    def lps_to_pixel(self, lps_mm: np.ndarray) -> np.ndarray:
        """Fractional ``(row, col)`` of patient points ``(..., 3)``."""
        p = np.asarray(lps_mm, dtype=float)
        row = (p @ self.row_direction_lps - self.v_origin_mm) / self.mm_per_pixel
        col = (p @ self.column_direction_lps - self.u_origin_mm) / self.mm_per_pixel
        return np.stack([row, col], axis=-1)

    def to_dict(self) -> dict[str, Any]:
        """The registration as plain numbers (for ``findings.json`` parameters)."""
        return {"mm_per_pixel": round(self.mm_per_pixel, 5),
                "origin_mm": [round(self.v_origin_mm, 3), round(self.u_origin_mm, 3)],
                "row_direction_lps": [float(v) for v in self.row_direction_lps],
                "column_direction_lps": [float(v) for v in self.column_direction_lps],
                "score": round(self.score, 4),
                "overlap_fraction": round(self.overlap_fraction, 4)}


def masked_ncc(fixed: np.ndarray, fixed_mask: np.ndarray, moving: np.ndarray,
               moving_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masked normalised cross-correlation at every integer shift (Padfield's FFT form).

    Parameters
    ----------
    fixed, moving : numpy.ndarray
        2-D images.
    fixed_mask, moving_mask : numpy.ndarray
        Boolean masks of their valid pixels.

    Returns
    -------
    ncc, overlap : numpy.ndarray
        Both of shape ``fixed.shape + moving.shape - 1``; entry ``k`` is the shift
        ``d = k - (moving.shape - 1)`` at which moving pixel ``x`` lies on fixed pixel
        ``x + d``; ``overlap`` is the number of valid pixels shared. Where only a few pixels
        are shared the NCC is meaningless (two pixels always correlate perfectly): the
        caller masks small overlaps.
    """
    shape = [fft.next_fast_len(a + b - 1, real=True) for a, b in zip(fixed.shape, moving.shape)]
    out = tuple(slice(0, a + b - 1) for a, b in zip(fixed.shape, moving.shape))
    f_m, m_m = fixed_mask.astype(float), moving_mask.astype(float)
    f, m = np.where(fixed_mask, fixed, 0.0), np.where(moving_mask, moving, 0.0)

    def spectrum(a: np.ndarray, flip: bool) -> np.ndarray:
        return fft.rfft2(a[::-1, ::-1] if flip else a, shape, workers=1)

    def corr(a_hat: np.ndarray, b_hat: np.ndarray) -> np.ndarray:
        return fft.irfft2(a_hat * b_hat, shape, workers=1)[out]

    ff, fm = spectrum(f_m, False), spectrum(m_m, True)
    f1, m1 = spectrum(f, False), spectrum(m, True)
    overlap = np.rint(corr(ff, fm))
    n = np.maximum(overlap, 1.0)
    sum_f, sum_m = corr(f1, fm), corr(ff, m1)
    var_f = corr(spectrum(f * f, False), fm) - sum_f ** 2 / n
    var_m = corr(ff, spectrum(m * m, True)) - sum_m ** 2 / n
    cov = corr(f1, m1) - sum_f * sum_m / n
    denom = np.sqrt(np.clip(var_f, 0.0, None) * np.clip(var_m, 0.0, None))
    tiny = 1e-6 * max(float(denom.max()), 1e-30)
    ncc = np.where(denom > tiny, cov / np.maximum(denom, tiny), 0.0)
    return ncc, overlap


def _features(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Negative Laplacian of Gaussian: bright ridges and blobs (bones, the body's edges).

    Second derivatives peak on a structure itself, not on the slope of its edge, so a body
    outline rendered a little wider or softer on one image does not pull the scale (gradient
    magnitude did, by about 1 % on the phantoms).
    """
    return -ndimage.gaussian_laplace(image.astype(np.float32), sigma_px)


def register_drr(volume: Volume, rad: Radiograph, row_direction_lps: np.ndarray,
                 column_direction_lps: np.ndarray, *, params: CTLinkParams | None = None,
                 body_mask: np.ndarray | None = None) -> Registration:
    """Find the scale and shift that align the CT's DRR with a frontal radiograph.

    Parameters
    ----------
    volume : Volume
        The CT.
    rad : Radiograph
        A frontal radiograph (``image`` larger = more attenuating).
    row_direction_lps, column_direction_lps : numpy.ndarray
        The radiograph's display axes in LPS (:func:`._drr.display_axes`).
    params : CTLinkParams, optional
        Search ranges and grids.
    body_mask : numpy.ndarray, optional
        The CT's body mask (see :func:`._drr.make_drr`).

    Returns
    -------
    Registration
        The best alignment found, with its score; the caller decides whether it is good enough.
    """
    params = params or CTLinkParams()
    rho_lo, rho_hi = _rho_range(rad, params)
    image = np.asarray(rad.image, dtype=np.float32)
    drrs = make_drr(volume, row_direction_lps, column_direction_lps,
                    step_mm=(params.coarse_step_mm, params.fine_step_mm), body_mask=body_mask,
                    body_threshold_hu=params.body_threshold_hu)
    coarse, fine = (_Level(d, image, rho_lo, params) for d in drrs)
    rhos = np.exp(np.arange(np.log(rho_lo), np.log(rho_hi) + 1e-9,
                            np.log1p(params.coarse_scale_step)))
    best = max((coarse.best_shift(rho) for rho in rhos), key=lambda t: t[0])
    span = np.log1p(params.coarse_scale_step)
    fine_rhos = best[1] * np.exp(np.arange(-span, span + 1e-9, np.log1p(params.fine_scale_step)))
    fine_rhos = fine_rhos[(fine_rhos >= rho_lo * 0.999) & (fine_rhos <= rho_hi * 1.001)]
    _, rho, origin, _ = max((fine.best_shift(r) for r in fine_rhos), key=lambda t: t[0])
    rho, origin, score, overlap = fine.polish(rho, origin)
    limit = bool(rho <= rho_lo * (1 + params.fine_scale_step) or
                 rho >= rho_hi / (1 + params.fine_scale_step))
    return Registration(
        mm_per_pixel=float(rho), v_origin_mm=float(origin[0]), u_origin_mm=float(origin[1]),
        row_direction_lps=fine.drr.row_direction_lps,
        column_direction_lps=fine.drr.column_direction_lps,
        score=float(score), overlap_fraction=float(overlap), at_scale_limit=limit, drr=fine.drr)


def _rho_range(rad: Radiograph, params: CTLinkParams) -> tuple[float, float]:
    """Range of the radiograph's pixel size at the patient (mm)."""
    if rad.pixel_spacing_mm is not None:
        pixel = float(np.mean(rad.pixel_spacing_mm))
        return pixel / params.magnification_range[1], pixel / params.magnification_range[0]
    width = max(rad.image.shape[:2])
    return params.fov_range_mm[0] / width, params.fov_range_mm[1] / width


class _Level:
    """One grid step of the search: the DRR's features and a shrunk copy of the radiograph.

    The radiograph is block-averaged once (to about half the step at the finest scale searched)
    so that resampling it for every candidate stays cheap on a 3000-pixel detector image.
    """

    def __init__(self, drr: DRR, image: np.ndarray, rho_lo: float, params: CTLinkParams):
        self.drr, self.params = drr, params
        self.sigma = params.feature_sigma_mm / drr.step_mm
        self.target = _features(drr.image, self.sigma)
        self.mask = ndimage.binary_erosion(drr.footprint, iterations=int(np.ceil(2 * self.sigma)))
        self.factor = max(1, int(drr.step_mm / (2.0 * rho_lo)))
        self.small = _block_mean(image, self.factor)
        self.full_shape = np.array(image.shape[:2], dtype=float)

    def resampled(self, rho: float, origin_px: tuple[float, float],
                  shape: tuple[int, int]) -> np.ndarray:
        """The radiograph on a grid whose pixel (i, j) is radiograph pixel origin + (i, j) *
        step / rho (NaN outside the radiograph)."""
        pitch = self.drr.step_mm / (rho * self.factor)  # shrunk pixels per grid pixel
        # Shrunk pixel k covers pixels k*f .. k*f+f-1 of the radiograph: centre (k+0.5)f-0.5.
        start = [(o + 0.5) / self.factor - 0.5 for o in origin_px]
        smooth = ndimage.gaussian_filter(self.small, max(0.0, 0.5 * (pitch - 1.0)))
        return ndimage.affine_transform(smooth, [pitch, pitch], start, output_shape=shape,
                                        order=1, mode="constant", cval=np.nan)

    def best_shift(self, rho: float) -> tuple[float, float, tuple[float, float], float]:
        """Best (score, rho, plane origin of radiograph pixel (0, 0), overlap) at one scale."""
        shape = tuple(int(n * rho / self.drr.step_mm) for n in self.full_shape)
        fixed = self.resampled(rho, (0.0, 0.0), shape)
        valid = np.isfinite(fixed)
        f_feat = _features(np.where(valid, fixed, np.nanmean(fixed)), self.sigma)
        ncc, overlap = masked_ncc(f_feat, valid, self.target, self.mask)
        fraction = overlap / max(float(valid.sum()), 1.0)
        ncc = np.where(fraction >= self.params.min_overlap_fraction, ncc, -1.0)
        k = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
        # DRR pixel x lies on resampled pixel x + d: radiograph pixel (0, 0) is DRR pixel -d.
        d = [k[a] - (self.target.shape[a] - 1) + _subpixel(ncc, k, a) for a in (0, 1)]
        step = self.drr.step_mm
        origin = (self.drr.v0_mm - d[0] * step, self.drr.u0_mm - d[1] * step)
        return float(ncc[k]), float(rho), origin, float(fraction[k])

    def score(self, rho: float, origin: tuple[float, float]) -> tuple[float, float]:
        """NCC and overlap fraction of one continuous (rho, origin) on this level's DRR grid."""
        drr = self.drr
        origin_px = ((drr.v0_mm - origin[0]) / rho, (drr.u0_mm - origin[1]) / rho)
        moving = self.resampled(rho, origin_px, drr.image.shape)
        valid = np.isfinite(moving)
        # Overlap counted as in best_shift; the correlation keeps off the radiograph's edge.
        area = np.prod(self.full_shape) * (rho / drr.step_mm) ** 2
        overlap = float((valid & self.mask).sum()) / area
        inner = ndimage.binary_erosion(valid, iterations=int(np.ceil(2 * self.sigma)))
        use = inner & self.mask
        if overlap < self.params.min_overlap_fraction or use.sum() < 16:
            return -1.0, overlap
        feat = _features(np.where(valid, moving, np.nanmean(moving)), self.sigma)
        return _correlation(feat[use], self.target[use]), overlap

    def polish(self, rho: float, origin: tuple[float, float]):
        """Nelder-Mead on (log scale, origin) from a grid optimum.

        Returns rho, origin, score and overlap fraction.
        """
        def cost(x: np.ndarray) -> float:
            return -self.score(rho * np.exp(x[0]), (x[1], x[2]))[0]

        x0 = np.array([0.0, origin[0], origin[1]])
        step = 0.5 * self.drr.step_mm
        simplex = np.array([x0, x0 + [0.004, 0, 0], x0 + [0, step, 0], x0 + [0, 0, step]])
        res = optimize.minimize(cost, x0, method="Nelder-Mead", options={
            "initial_simplex": simplex, "xatol": 0.02, "fatol": 1e-5, "maxfev": 150})
        best_rho, best_origin = rho * float(np.exp(res.x[0])), (float(res.x[1]), float(res.x[2]))
        score, overlap = self.score(best_rho, best_origin)
        return best_rho, best_origin, score, overlap


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 when either side is flat."""
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b) / denom) if denom > 0 else 0.0


def _block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    if factor <= 1:
        return image
    rows, cols = (n // factor * factor for n in image.shape[:2])
    return image[:rows, :cols].reshape(rows // factor, factor, cols // factor,
                                       factor).mean(axis=(1, 3))


def _subpixel(ncc: np.ndarray, k: tuple[int, ...], axis: int) -> float:
    """Parabolic peak offset along one axis (0 at the border or on a flat top)."""
    if k[axis] == 0 or k[axis] == ncc.shape[axis] - 1:
        return 0.0
    lo, hi = list(k), list(k)
    lo[axis] -= 1
    hi[axis] += 1
    a, b, c = ncc[tuple(lo)], ncc[k], ncc[tuple(hi)]
    curvature = a - 2 * b + c
    if curvature >= 0 or min(a, c) < -0.5:
        return 0.0
    return float(np.clip(0.5 * (a - c) / curvature, -0.5, 0.5))
