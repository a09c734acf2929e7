"""Radiograph preparation: spacing, a normalised working copy, and dead border strips.

The detector works on a block-mean downsampled copy of the radiograph (about 0.4 mm per
pixel), with intensities scaled so that the body's 0.5th..99.5th percentiles span 0..1.
A working pixel ``(i, j)`` covers stored pixels ``i*f .. i*f+f-1`` (same for columns), so
its centre is at stored ``(i*f + (f-1)/2, j*f + (f-1)/2)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from skimage.morphology import convex_hull_image

from napari_calcinosis.types import AnalysisError, Radiograph, XrayParams

from ._filters import binary_dilation, gaussian, label, uniform_filter
from ._noise import median


@dataclass
class WorkImage:
    """The working copy of a radiograph and how it maps back to the stored grid.

    Attributes
    ----------
    image : numpy.ndarray
        Normalised ``float32`` working image (larger = more attenuating).
    factor : int
        Downsampling factor (stored pixels per working pixel along each axis).
    spacing_mm : tuple of float
        ``(row, col)`` size of a working pixel in mm (assumed when ``spacing_known`` is False).
    stored_spacing_mm : tuple of float
        ``(row, col)`` size of a stored pixel in mm (assumed when ``spacing_known`` is False).
    spacing_known : bool
        Whether the spacing came from the file.
    dead : numpy.ndarray
        Boolean mask of collimator shadow / label / padding strips at the image border.
    scale : tuple of float
        ``(offset, span)`` so that ``normalised = (raw - offset) / span``.
    noise : float
        Robust pixel noise of the normalised working image.
    warnings : list of str
        What the preparation had to assume.
    high_pass : numpy.ndarray or None
        ``image`` minus its 1-pixel Gaussian blur, kept from the noise estimate for the
        detector's noise model (None: not computed; it belongs to this ``image`` only).
    """

    image: np.ndarray
    factor: int
    spacing_mm: tuple[float, float]
    stored_spacing_mm: tuple[float, float]
    spacing_known: bool
    dead: np.ndarray
    scale: tuple[float, float]
    noise: float
    stored_shape: tuple[int, int]
    warnings: list[str] = field(default_factory=list)
    high_pass: np.ndarray | None = field(default=None, repr=False)

    @property
    def pixel_mm(self) -> float:
        """Mean working pixel size (mm), for isotropic kernels."""
        return float(np.sqrt(self.spacing_mm[0] * self.spacing_mm[1]))

    def px(self, length_mm: float) -> float:
        """A length in mm expressed in working pixels."""
        return float(length_mm) / self.pixel_mm

    def to_stored(self, rc: np.ndarray) -> np.ndarray:
        """Working ``(..., 2)`` row/col coordinates to stored-grid coordinates."""
        return np.asarray(rc, dtype=float) * self.factor + (self.factor - 1) / 2.0

    def mask_to_stored(self, mask: np.ndarray) -> np.ndarray:
        """A working-grid mask on the stored grid: each pixel repeated ``factor`` times both
        ways, the rows and columns past the last whole block repeating the last one."""
        f, (rows, cols) = self.factor, self.stored_shape
        r, c = mask.shape
        out = np.empty((rows, cols), dtype=bool)
        wide = np.repeat(mask, f, axis=1) if f > 1 else mask
        for i in range(f):
            out[i: r * f: f, : c * f] = wide
        out[r * f:, : c * f] = out[r * f - 1, : c * f]
        out[:, c * f:] = out[:, c * f - 1: c * f]
        return out


def stored_spacing(rad: Radiograph, params: XrayParams) -> tuple[tuple[float, float], bool, str]:
    """Stored pixel size in mm, whether it is known, and a warning when it is assumed."""
    spacing = rad.pixel_spacing_mm
    rows, cols = rad.image.shape
    implausible = ""
    if spacing is not None and all(np.isfinite(s) and s > 0 for s in spacing):
        field_mm = max(rows * spacing[0], cols * spacing[1])
        low, high = params.plausible_field_mm
        if not low <= field_mm <= high:
            # a film downsampled after acquisition (research and teaching exports) often
            # keeps the detector's spacing: the body would measure a fraction of its size
            implausible = (f"{rad.spacing_source or 'PixelSpacing'} {spacing[0]:g} mm gives a "
                           f"{field_mm:.0f} mm field, outside the {low:.0f}-{high:.0f} mm of a "
                           f"chest film (an image resized after acquisition?); ")
            spacing = None
    if spacing is not None and all(np.isfinite(s) and s > 0 for s in spacing):
        note = ""
        if rad.spacing_source == "ImagerPixelSpacing":
            note = ("sizes use ImagerPixelSpacing (at the detector): they are magnified by "
                    "roughly 5-15 % relative to the patient")
        return (float(spacing[0]), float(spacing[1])), True, note
    nominal = params.assumed_field_mm / max(rows, cols)
    note = (f"{implausible}the radiograph has no valid pixel spacing: sizes are in pixels; "
            f"the detector assumed about {nominal:.2f} mm per pixel (a "
            f"{params.assumed_field_mm:.0f} mm field) to choose its scales")
    return (nominal, nominal), False, note


def prepare(rad: Radiograph, params: XrayParams) -> WorkImage:
    """Downsample and normalise a radiograph for analysis.

    Parameters
    ----------
    rad : Radiograph
        The radiograph (larger value = more attenuating).
    params : XrayParams
        Analysis parameters (``work_spacing_mm``, ``assumed_field_mm``, ...).

    Returns
    -------
    WorkImage
        The working copy and its mapping back to the stored grid.
    """
    image = np.asarray(rad.image)
    if image.ndim != 2 or min(image.shape) < 64:
        raise AnalysisError(
            f"radiograph {_name(rad)} has shape {image.shape}: a 2-D image of at least 64 x 64 "
            f"pixels is needed")
    if not np.isfinite(image).all():
        raise AnalysisError(f"radiograph {_name(rad)} contains non-finite pixel values")
    spacing, known, note = stored_spacing(rad, params)
    warnings = [note] if note else []
    factor = max(1, int(round(params.work_spacing_mm / min(spacing))))
    rows, cols = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    work = block_mean(image[:rows, :cols], factor)
    dead = dead_strips(work, params, factor * np.sqrt(spacing[0] * spacing[1]))
    # image statistics from every second pixel both ways: a quarter of the cost, same levels
    sub, sub_live = work[::2, ::2], ~dead[::2, ::2]
    live = sub[sub_live] if sub_live.sum() > 0.2 * sub_live.size else sub.ravel()
    low, high = np.percentile(live, [0.5, 99.5])
    span = float(high - low)
    if span <= 0:
        raise AnalysisError(f"radiograph {_name(rad)} is blank (no intensity variation)")
    work = (work - np.float32(low)) / np.float32(span)
    high_pass = work - gaussian(work, 1.0)
    noise = pixel_noise(work, ~dead, high_pass=high_pass)
    return WorkImage(
        image=work, factor=factor,
        spacing_mm=(spacing[0] * factor, spacing[1] * factor), stored_spacing_mm=spacing,
        spacing_known=known, dead=dead, scale=(float(low), span), noise=noise,
        stored_shape=(int(image.shape[0]), int(image.shape[1])), warnings=warnings,
        high_pass=high_pass)


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """``float32`` mean of ``factor x factor`` blocks (the image a multiple of ``factor``).

    A sum of the ``factor**2`` strided views: no temporary of the image's full size in
    ``float32`` beyond the views' sum, several times faster than a reshaped mean.
    """
    total = np.zeros((image.shape[0] // factor, image.shape[1] // factor), dtype=np.float32)
    for i in range(factor):
        for j in range(factor):
            total += image[i::factor, j::factor]
    return total / np.float32(factor * factor)


def pixel_noise(image: np.ndarray, mask: np.ndarray, *,
                high_pass: np.ndarray | None = None) -> float:
    """Robust noise of an image: MAD of its difference from a 1-pixel Gaussian blur
    (``high_pass``, if already computed)."""
    if high_pass is None:
        high_pass = image - gaussian(image, 1.0)
    high = high_pass[::2, ::2]  # every 2nd pixel is enough
    mask = mask[::2, ::2]
    values = high[mask] if mask.any() else high.ravel()
    mad = float(np.median(np.abs(values - np.median(values))))
    return max(1.4826 * mad, 1e-6)


def dead_strips(work: np.ndarray, params: XrayParams, pixel_mm: float) -> np.ndarray:
    """Flat strips touching the image border: collimator shadow, labels, padding.

    Such strips are flat along at least one direction (a collimator blade, a burnt-in band of
    constant columns) and bright (attenuating), or one exact value (padding of an export);
    they are convex (bands, boxes, corner wedges). Anatomy carries quantum noise, a flat
    dark strip with some noise is direct exposure clipped to black, which is background, and
    tissue clipped to white follows the anatomy's ragged shape.
    """
    d_rows = np.abs(np.diff(work, axis=0, append=work[-1:, :]))
    d_cols = np.abs(np.diff(work, axis=1, append=work[:, -1:]))
    noise = float(np.median(np.minimum(d_rows[::2, ::2], d_cols[::2, ::2]))) \
        or float(np.mean(d_rows + d_cols))
    flat = np.minimum(uniform_filter(d_rows, 5), uniform_filter(d_cols, 5))
    candidates = flat < params.dead_flatness_ratio * max(noise, 1e-12)
    labels, count = label(candidates)
    if count == 0:
        return np.zeros(work.shape, dtype=bool)
    border = np.unique(np.concatenate(
        [labels[0, :], labels[-1, :], labels[:, 0], labels[:, -1]]))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = np.zeros(count + 1, dtype=bool)
    keep[border] = True
    keep[sizes < 0.001 * work.size] = False
    # a flat dark strip is saturated direct exposure (background), not a collimator shadow
    # only the few border strips large enough need their median (not every flat speck)
    level = float(np.median(work[::2, ::2]))
    for number in np.flatnonzero(keep[1:]) + 1:
        component = labels == number
        keep[number] = float(median(work[component])) >= level and _strip_like(component)
    keep[0] = False
    dead = keep[labels] | _padding(work)
    if dead.any():
        dead = binary_dilation(dead, iterations=max(1, int(round(2.0 / pixel_mm))))
    return dead


def _padding(work: np.ndarray) -> np.ndarray:
    """Padding around a resized or rotated export: border regions of one exact value (the
    image's lowest or highest) around a convex image field, or convex themselves. Direct
    exposure clipped to black is not one exact value everywhere, and where it is, the field
    it leaves follows the body's outline and is not convex."""
    out = np.zeros(work.shape, dtype=bool)
    for value in (work.min(), work.max()):
        labels, count = label(work == value)
        if count == 0:
            continue
        border = np.unique(np.concatenate(
            [labels[0, :], labels[-1, :], labels[:, 0], labels[:, -1]]))
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        border = [n for n in border[border > 0] if sizes[n] >= 0.001 * work.size]
        if not border:
            continue
        frame = np.isin(labels, border)
        field, parts = label(~frame)
        if parts and _strip_like(field == np.argmax(np.bincount(field.ravel())[1:]) + 1,
                                 _MIN_FIELD_SOLIDITY):
            out |= frame
            continue
        for number in border:
            if _strip_like(labels == number):
                out |= labels == number
    return out


def _strip_like(component: np.ndarray, solidity: float | None = None) -> bool:
    """A collimator shadow, label or padding is convex (a band or a box along the border);
    tissue clipped to white in an 8-bit export is flat too, but follows the anatomy
    (mediastinum, abdomen and flanks joined into one ragged region)."""
    step = max(1, max(component.shape) // 256)  # the hull's shape needs no finer grid
    small = component[::step, ::step]
    rows, cols = np.nonzero(small)
    if rows.size < 8:
        return True
    box = small[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    hull = convex_hull_image(box)
    return bool(box.sum() >= (solidity or _MIN_STRIP_SOLIDITY) * hull.sum())


#: Fraction of its convex hull a dead strip fills at least (a band or box fills nearly all).
_MIN_STRIP_SOLIDITY = 0.8
#: ... and the image field inside a padding frame (a rectangle, perhaps rotated).
_MIN_FIELD_SOLIDITY = 0.95


def _name(rad: Radiograph) -> str:
    return str(rad.file) if rad.file is not None else (rad.sop_instance_uid or "(in memory)")
