"""Image formation helpers of the phantom radiographs (internal to :mod:`._xray`).

Attenuation from CT numbers, exact chord lengths through ellipsoids, the attenuation-dependent
noise, and the chest-style presentation (large-kernel equalization, detail boost, linear map
to the stored bits).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._shapes import Ellipsoid

MU_WATER_PER_MM = 0.0206  # about 60 keV, the effective energy of a chest radiograph
# Above water, attenuation at radiograph energies grows faster with HU than at CT energies
# (calcium's photoelectric share): a bilinear HU -> mu conversion, as for CT-based
# attenuation maps.
CALCIUM_GAIN = 1.6
#: Water path over which a pixel becomes wholly body in the presentation (:func:`body_weight`).
BODY_RAMP_MM = 6.0


def hu_to_mu(hu: np.ndarray) -> np.ndarray:
    """Linear attenuation (1/mm) at the radiograph's energy from CT numbers (bilinear)."""
    hu = np.asarray(hu, dtype=np.float32)
    slope = np.where(hu > 0, CALCIUM_GAIN, 1.0).astype(np.float32)
    return np.float32(MU_WATER_PER_MM) * np.clip(1.0 + slope * hu / 1000.0, 0.0, None)


def chord_image(shape: Ellipsoid, z_rows, cols, lat_axis: int, p: float):
    """Chord lengths (mm) through an ellipsoid for the pixels around it, 3x3 supersampled."""
    ext = shape.extent_mm() + 2 * p
    c = shape.center_mm
    r0 = max(int(np.floor((z_rows[0] - (c[2] + ext[2])) / p)), 0)
    r1 = min(int(np.ceil((z_rows[0] - (c[2] - ext[2])) / p)) + 1, z_rows.size)
    c0 = max(int(np.floor((c[lat_axis] - ext[lat_axis] - cols[0]) / p)), 0)
    c1 = min(int(np.ceil((c[lat_axis] + ext[lat_axis] - cols[0]) / p)) + 1, cols.size)
    if r1 <= r0 or c1 <= c0:
        return None
    sub = p * (np.arange(3) - 1) / 3.0
    zs = (z_rows[r0:r1, None] + sub[None, :]).reshape(-1)
    ls = (cols[c0:c1, None] + sub[None, :]).reshape(-1)
    zz, ll = np.meshgrid(zs, ls, indexing="ij")
    beam = 1 if lat_axis == 0 else 0
    d = np.zeros(zz.shape + (3,))
    d[..., 2], d[..., lat_axis] = zz - c[2], ll - c[lat_axis]
    u = np.zeros(3)
    u[beam] = 1.0
    m = shape.rotation @ np.diag(1.0 / shape.axes_mm ** 2) @ shape.rotation.T
    qa = float(u @ m @ u)
    qb = d @ (m @ u)
    qc = np.einsum("...i,ij,...j->...", d, m, d) - 1.0
    chord = 2.0 * np.sqrt(np.clip(qb ** 2 - qa * qc, 0.0, None)) / qa
    chord = chord.reshape(r1 - r0, 3, c1 - c0, 3).mean(axis=(1, 3))
    return (slice(r0, r1), slice(c0, c1)), chord


def add_objects(line: np.ndarray, objects, z_rows, cols, lat_axis: int, p: float) -> dict:
    """Add each (key, ellipsoid, host HU) to the line integrals; return per-key footprints."""
    footprints = {}
    for key, shape, host_hu in objects:
        result = chord_image(shape, z_rows, cols, lat_axis, p)
        if result is None:
            continue
        box, chord = result
        delta = (float(hu_to_mu(np.float32(shape.hu))) - float(hu_to_mu(np.float32(host_hu)))) \
            * chord
        line[box] += delta
        footprints[key] = (box, delta)
    return footprints


def noise_sigma(line: np.ndarray, noise_level: float) -> np.ndarray:
    """Standard deviation of the line-integral noise: grows with attenuation (fewer photons)."""
    return 0.0025 * noise_level * np.exp(np.minimum(line, 8.0) / 2.0)


def _smooth_large(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """A wide Gaussian blur computed on an 8x coarser copy (the result is smooth anyway)."""
    factor = 8
    small = ndimage.zoom(image, 1.0 / factor, order=1, mode="nearest")
    small = ndimage.gaussian_filter(small, sigma_px / factor, mode="nearest")
    zoom = (image.shape[0] / small.shape[0], image.shape[1] / small.shape[1])
    return ndimage.zoom(small, zoom, order=1, mode="nearest")[:image.shape[0], :image.shape[1]]


def body_weight(line: np.ndarray) -> np.ndarray:
    """How much each pixel is body (0..1): the line integral in water millimetres, from 0 at
    0.5 mm (below that: the interpolation's ripple in the air) to 1 at ``BODY_RAMP_MM``. It
    follows the outline's partial-volume edge smoothly, where a mask of the coarse rendering
    grid would draw the outline in steps of that grid."""
    water_mm = line / MU_WATER_PER_MM
    return np.clip((water_mm - 0.5) / (BODY_RAMP_MM - 0.5), 0.0, 1.0)


def present(line: np.ndarray, body: np.ndarray, *, equalization: float, detail_boost: float,
            bits_stored: int, p: float, weight: np.ndarray | None = None,
            unsharp_mm: float = 3.0, lut: str = "linear"):
    """Dynamic-range compression and the linear map to stored values (MONOCHROME2 sense).

    The processing applies inside the body, blended into the unprocessed direct exposure by
    ``weight`` (:func:`body_weight`; ``body`` as 0/1 when omitted). ``unsharp_mm`` is the
    kernel of the detail boost (unsharp masking). ``lut`` ``"sigmoid"`` maps the body's range
    through an S-shaped curve like a CR reader's film-emulating tone scale (contrast raised
    1.7 times in the middle grey, compressed toward black and white); ``"linear"`` does not.
    """
    low = _smooth_large(line, 25.0 / p)
    mid = ndimage.gaussian_filter(line, unsharp_mm / p, mode="nearest")
    shown = line - equalization * (low - low[body].mean() if body.any() else low)
    shown += detail_boost * (line - mid)
    w = body.astype(np.float64) if weight is None else weight
    shown = w * shown + (1.0 - w) * line
    vals = shown[body] if body.any() else shown.ravel()
    lo = min(float(np.percentile(vals, 0.1)), 0.0)
    hi = float(np.percentile(vals, 99.9))
    top = 2 ** bits_stored - 1
    scale = 0.9 * top / max(hi - lo, 1e-6)
    if lut == "sigmoid":
        unit = (shown - lo) / max(hi - lo, 1e-6)
        gain = 3.0
        unit = 0.5 + 0.5 * np.tanh(gain * (unit - 0.5)) / np.tanh(0.5 * gain)
        shown = lo + unit * (hi - lo)
    elif lut != "linear":
        raise ValueError(f"unknown tone scale {lut!r}; use 'linear' or 'sigmoid'")
    stored = np.clip((shown - lo) * scale + 0.05 * top, 0, top)
    return stored, scale


def correlated_noise(rng: np.random.Generator, shape) -> np.ndarray:
    white = rng.standard_normal(shape)
    smooth = ndimage.gaussian_filter(white, 0.6)
    return smooth / smooth.std()
