"""Measure lesions the reader painted or clicked exactly as the CT detector measures its own.

The detector (:func:`._detect.analyze_volume`) builds a tissue model and the anatomy before
it describes each component (:func:`._lesions.build_lesions`). A lesion added by hand goes
through the same description: :func:`lesion_context` builds that context once per volume
(:func:`._detect.build_context`, no candidate search), :func:`measure_masks` turns voxel
masks into contract lesions (size, HU, depth, layer, side, region, morphology, CNR), and
:func:`mask_from_click` grows a lesion's voxels from one clicked voxel.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np
from scipy import ndimage as ndi

from napari_calcinosis.types import AnalysisError, CTParams, Lesion, Volume

from ._detect import build_context
from ._lesions import LesionContext, build_lesions
from ._measure import component_stats
from ._morphology import dilate_inplane
from ._noise import local_background

__all__ = ["lesion_context", "mask_from_click", "measure_masks", "placement_problem"]

#: A lesion drawn by hand is refused when at least this share of its voxels lies outside
#: the body or in bone (a stroke that only grazes the skin or a bone is kept).
MOST = 0.5


def lesion_context(volume: Volume, *, params: CTParams | None = None) -> LesionContext:
    """The tissue model and anatomy that lesion descriptions need.

    The detector's own first steps (:func:`._detect.build_context`), so a lesion added by
    hand is described exactly as a detected one; build it once per volume.

    Parameters
    ----------
    volume : Volume
        The CT volume (HU).
    params : CTParams, optional
        The detection parameters of the run the lesions join.

    Returns
    -------
    LesionContext
    """
    return build_context(volume, params=params or CTParams())


def measure_masks(ctx: LesionContext, masks: Sequence[np.ndarray], *,
                  ids: Sequence[int] | None = None,
                  threshold_hu: float | None = None) -> list[Lesion]:
    """Contract lesions for voxel masks, described like detected ones.

    Parameters
    ----------
    ctx : LesionContext
        From :func:`lesion_context` for the masks' volume.
    masks : sequence of numpy.ndarray
        Boolean masks shaped like the volume (storage layout), one per lesion, not empty.
    ids : sequence of int, optional
        The lesions' ids (default 1..n).
    threshold_hu : float, optional
        Calcium threshold for the contrast-to-noise ring (default ``params.threshold_hu``).

    Returns
    -------
    list of Lesion
        ``source`` is ``"auto"``; the caller marks them ``manual``.
    """
    hu, shape = ctx.hu, ctx.hu.shape
    flats = [np.flatnonzero(np.asarray(m, bool)) for m in masks]
    for mask, flat in zip(masks, flats, strict=True):
        if np.shape(mask) != shape:
            raise AnalysisError(f"A lesion mask of shape {np.shape(mask)} does not fit the "
                                f"volume of shape {shape}.")
        if flat.size == 0:
            raise AnalysisError("A lesion mask holds no voxel; nothing to measure.")
    flat = np.concatenate(flats)
    comp = np.repeat(np.arange(len(flats)), [f.size for f in flats])
    stats = component_stats(flat, comp, hu.ravel()[flat], len(flats), shape,
                            ctx.volume.spacing_zyx_mm)
    threshold = ctx.params.threshold_hu if threshold_hu is None else threshold_hu
    host, surface = local_background(hu, stats.peak_flat, ctx.volume.spacing_zyx_mm,
                                     params=ctx.params, threshold_hu=threshold)
    level = ctx.soft.median_hu
    host = np.where(np.isnan(host), level, host)
    host = np.where(surface, np.maximum(host, level), host)
    cnr = (stats.peak_hu - host) / max(ctx.soft.noise_sd_hu, 1e-6)
    lesions = build_lesions(ctx, SimpleNamespace(flat=flat), stats, np.arange(len(flats)), cnr)
    for lesion, new_id in zip(lesions, ids if ids is not None else [], strict=False):
        lesion.id = int(new_id)
    return lesions


def placement_problem(ctx: LesionContext, mask: np.ndarray) -> str | None:
    """Why a lesion drawn by hand cannot be a soft-tissue deposit, as one sentence, or
    ``None`` when it can.

    The detector looks for calcium in the body (its outline widened by one block of the
    tissue grid) and outside bone; a painted or clicked lesion must lie there too: most of
    it (:data:`MOST`) outside the body (the table, the air around the patient) or in bone
    is refused.

    Parameters
    ----------
    ctx : LesionContext
        From :func:`lesion_context` for the mask's volume.
    mask : numpy.ndarray
        Boolean mask shaped like the volume (storage layout).
    """
    zyx = np.nonzero(np.asarray(mask, bool))
    if len(zyx[0]) == 0:
        return None
    tissue = ctx.tissue
    block = tuple(np.minimum(np.asarray(c) // f, n - 1) for c, f, n in
                  zip(zyx, tissue.grid.factors, tissue.grid.coarse_shape, strict=True))
    outside = ~dilate_inplane(tissue.body, 1)[block]
    in_bone = tissue.bone[block] & ~outside
    slice_number = int(np.median(zyx[0])) + 1
    if outside.mean() >= MOST:
        return (f"The lesion drawn on slice {slice_number} lies outside the body (on the "
                "table or in the air around the patient), where no calcinosis can be; it "
                "was not added.")
    if in_bone.mean() >= MOST:
        return (f"The lesion drawn on slice {slice_number} lies inside bone, which is "
                "never listed as calcinosis; it was not added.")
    return None


def mask_from_click(volume: Volume, index_zyx: Sequence[float], *, threshold_hu: float,
                    radius_mm: float = 10.0) -> np.ndarray:
    """The voxels of the deposit under a click: connected voxels at or above the threshold.

    The search stays within ``radius_mm`` of the click; the seed is the densest voxel within
    3 mm in the clicked slice, so a click beside a small deposit still finds it. When nothing
    there reaches the threshold, the lesion is the clicked voxel alone (the reader saw it).

    Parameters
    ----------
    volume : Volume
        The CT volume.
    index_zyx : sequence of float
        The clicked voxel (fractional indices are rounded).
    threshold_hu : float
        The calcium threshold of the run.
    radius_mm : float
        Largest distance from the click that the deposit may reach.

    Returns
    -------
    numpy.ndarray
        Boolean mask shaped like the volume.
    """
    hu = np.asarray(volume.hu)
    spacing = np.asarray(volume.spacing_zyx_mm, float)
    centre = np.clip(np.round(np.asarray(index_zyx, float)).astype(int), 0,
                     np.array(hu.shape) - 1)
    reach = np.ceil(radius_mm / spacing).astype(int)
    lo, hi = np.maximum(centre - reach, 0), np.minimum(centre + reach + 1, hu.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    sub = hu[box]
    rel = centre - lo
    grid = np.indices(sub.shape, dtype=float)
    dist2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, rel, spacing, strict=True))
    inside = dist2 <= radius_mm ** 2
    near = (dist2 <= 9.0) & (grid[0] == rel[0])
    seed = np.unravel_index(np.argmax(np.where(near, sub, -np.inf)), sub.shape)
    out = np.zeros(hu.shape, bool)
    if sub[seed] < threshold_hu:
        out[tuple(centre)] = True
        return out
    labels, _ = ndi.label((sub >= threshold_hu) & inside, structure=np.ones((3, 3, 3), bool))
    out[box] = labels == labels[seed]
    return out
