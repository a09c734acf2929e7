"""Find every calcification outside bone on a body CT and describe it (pure core, no Qt).

Pipeline of :func:`analyze_volume` (each step in its own module):

1. coarse grid, block-mean HU, body mask (:mod:`._tissue`);
2. soft-tissue level and noise from homogeneous soft-tissue blocks; the threshold (fixed
   130 HU by default, adaptive on request);
3. voxels at or above the threshold as a sparse sorted list, per z-slab in threads
   (:mod:`._candidates`);
4. bone = large dense 3-D components with their marrow; tissue compartments;
5. candidates outside bone and not touching it, outside nothing but the body; 26-connected
   components of the sparse list; statistics over their voxels only (:mod:`._measure`);
6. size (>= ``min_area_mm2`` in-plane) and contrast-to-noise filters;
7. layer, side, region, morphology, depth for each (:mod:`._lesions`), midline and levels
   from anatomy (:mod:`.ct_anatomy`), study summary (:mod:`.distribution`).
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from napari_calcinosis.summary import summarize
from napari_calcinosis.types import (
    AnalysisError,
    CTParams,
    Lesion,
    Progress,
    Summary,
    Volume,
    no_progress,
)

from ._anatomy import find_anatomy
from ._candidates import sparse_components as _components
from ._candidates import threshold_indices, touching_flags, unravel
from ._lesions import LesionContext, build_lesions
from ._measure import ComponentStats, component_stats
from ._noise import SoftTissue, cnr_bars, local_background, soft_tissue_stats
from ._tissue import (
    CoarseGrid,
    Compartment,
    TissueModel,
    body_mask,
    bone_mask,
    bone_min_volume_mm3,
    build_tissue_model,
    coarse_sample,
    dilate_inplane,
    thin_stack,
    upsample_slab,
)

__all__ = ["CTResult", "analyze_volume", "build_context"]




@dataclass
class CTResult:
    """Everything the CT analysis found.

    Attributes
    ----------
    lesions : list of findings.Lesion
        Every calcification outside bone (soft tissue, cartilage, vessel, visceral), ids 1..n
        in storage order. ``Lesion.extra`` holds ``mean_hu``, ``density_weight``,
        ``depth_mm``, ``cnr``, ``midplane_mm``, ``angle_deg``, ``n_voxels``.
    lesion_labels : numpy.ndarray
        ``int32`` (z, y, x): the lesion id of each voxel, 0 elsewhere.
    tissue_labels : numpy.ndarray
        ``uint8`` (z, y, x) compartments, names in :data:`TISSUE_NAMES`.
    summary : findings.Summary
    warnings : list of str
    params : CTParams
        The parameters used.
    midline : dict
        The fitted mid-sagittal plane (``MidPlane.to_dict``) and the anatomical levels.
    threshold_hu : float
        The calcium threshold actually applied (differs from ``params.threshold_hu`` only
        with ``adaptive=True``).
    noise_sd_hu : float
        Image noise used for the contrast-to-noise filter.
    """

    lesions: list[Lesion]
    lesion_labels: np.ndarray
    tissue_labels: np.ndarray
    summary: Summary
    warnings: list[str]
    params: CTParams
    midline: dict[str, Any] = field(default_factory=dict)
    threshold_hu: float = 130.0
    noise_sd_hu: float = 0.0


def analyze_volume(volume: Volume, *, params: CTParams | None = None,
                   progress: Progress | None = None) -> CTResult:
    """Detect, measure and summarise the calcifications of one CT volume.

    Parameters
    ----------
    volume : model.Volume
        HU volume with its geometry.
    params : CTParams, optional
        Thresholds and sizes (defaults from docs/clinical.md).
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    CTResult

    Raises
    ------
    AnalysisError
        When the volume is not a 3-D array.
    """
    params = params or CTParams()
    report = progress or no_progress
    warnings: list[str] = []
    report(0.0, "Modelling the body")
    ctx = build_context(volume, params=params, progress=report)
    hu, tm, soft, grid = ctx.hu, ctx.tissue, ctx.soft, ctx.tissue.grid
    threshold = _threshold(params, soft, warnings, volume.info.contrast_agent.strip())
    report(0.5, "Finding calcium outside bone")
    kept, stats = _candidates(hu, tm, volume, params, threshold, max(1, int(params.workers)))
    keep, cnr = _significant(hu, kept, stats, soft, tm, volume, params, threshold)
    keep &= _inside_field(stats, hu.shape, warnings, check_z=not thin_stack(grid))
    keep &= _not_bone_slab(stats, grid, volume, params)
    report(0.75, "Measuring lesions")
    lesions = build_lesions(ctx, kept, stats, np.flatnonzero(keep), cnr)
    labels = _lesion_labels(hu.shape, kept, stats, np.flatnonzero(keep))
    report(0.9, "Summarising")
    summary = summarize(lesions, params=params, source="CT")
    tissue_labels = tm.upsample_labels(workers=max(1, int(params.workers)))
    warnings.extend(ctx.anatomy.warnings)
    report(1.0, "CT analysis finished")
    return CTResult(lesions=lesions, lesion_labels=labels, tissue_labels=tissue_labels,
                    summary=summary, warnings=warnings, params=params,
                    midline=ctx.anatomy.to_dict(), threshold_hu=float(threshold),
                    noise_sd_hu=float(soft.noise_sd_hu))


def build_context(volume: Volume, *, params: CTParams | None = None,
                  progress: Progress | None = None) -> LesionContext:
    """The tissue model, anatomy and noise that describing lesions needs.

    These are the detector's first steps; a lesion drawn by hand is described with the same
    context (call this once per volume, then :func:`._lesions.build_lesions`).

    Parameters
    ----------
    volume : model.Volume
        HU volume with its geometry.
    params : CTParams, optional
        The parameters of the run.
    progress : callable, optional
        ``progress(fraction, message)``, called with fractions 0.2 and 0.45 of a full run.

    Raises
    ------
    AnalysisError
        When the volume is not a 3-D array.
    """
    params = params or CTParams()
    report = progress or no_progress
    hu = _checked_hu(volume)
    workers = max(1, int(params.workers))
    grid = CoarseGrid.for_volume(hu.shape, volume.spacing_zyx_mm, params.tissue_grid_mm)
    hu_c, max_c, dense_mean_c = coarse_sample(hu, grid, workers=workers, dense_mean=True)
    body_c = body_mask(hu_c, params=params, workers=workers)
    report(0.2, "Bone and tissue compartments")
    bone_c = bone_mask(max_c, body_c, grid, params=params, workers=workers,
                       dense_mean_c=dense_mean_c)
    tm = build_tissue_model(hu_c, grid, bone_c, body_c, posterior_rc=_posterior_rc(volume),
                            params=params, workers=workers)
    soft = soft_tissue_stats(hu, hu_c, body_c, grid, params=params, tissue=tm)
    report(0.45, "Anatomy")
    return LesionContext(volume=volume, hu=hu, tissue=tm,
                         anatomy=find_anatomy(tm, volume, params=params),
                         params=params, soft=soft)


def _checked_hu(volume: Volume) -> np.ndarray:
    hu = np.asarray(volume.hu)
    if hu.ndim != 3 or min(hu.shape) < 1:
        raise AnalysisError(f"CT series {volume.info.series_instance_uid or '(no UID)'} is not "
                            f"a 3-D volume (shape {hu.shape}); calcifications cannot be "
                            "searched for.")
    return hu


def _threshold(params: CTParams, soft: SoftTissue, warnings: list[str],
               contrast: str = "") -> float:
    if not params.adaptive:
        if contrast:
            warnings.append(f"Contrast-enhanced series ({contrast}): enhancing vessels and "
                            f"organs above {params.threshold_hu:g} HU may be counted as "
                            "calcification; the adaptive threshold is advised.")
        return float(params.threshold_hu)
    adaptive = soft.median_hu + params.adaptive_k * soft.spread_hu
    if adaptive > params.threshold_hu:
        warnings.append(f"Adaptive threshold: {adaptive:.0f} HU (soft tissue median "
                        f"{soft.median_hu:.0f} HU + {params.adaptive_k:g} x robust spread "
                        f"{soft.spread_hu:.0f} HU) instead of {params.threshold_hu:g} HU.")
        return float(adaptive)
    return float(params.threshold_hu)


def _posterior_rc(volume: Volume) -> np.ndarray:
    d = np.asarray(volume.direction_lps, float)
    back = np.array([d[1, 1], d[1, 2]])
    return back / max(float(np.linalg.norm(back)), 1e-9)


@dataclass
class Kept:
    """The candidate voxels that may be calcification, and their components."""

    flat: np.ndarray
    values: np.ndarray
    comp: np.ndarray
    n: int
    touches: np.ndarray  # per component: joined to bone or to something outside the body


def _candidates(hu: np.ndarray, tm: TissueModel, volume: Volume, params: CTParams,
                threshold: float, workers: int) -> tuple[Kept, ComponentStats]:
    """Voxels at/above the threshold in the body and outside bone, grouped into components.

    A component with a voxel next to a dense voxel in bone (or outside the body) is part of
    that structure (cortex edge, table) and is flagged; only voxels in blocks next to such
    blocks need that neighbour check.
    """
    grid = tm.grid
    allowed_c = dilate_inplane(tm.body, 1) & ~_skeleton_zone(tm, params)
    border_c = dilate_inplane(~allowed_c, 1, depth=1) & allowed_c
    flat = threshold_indices(hu, threshold, workers=workers,
                             allowed=lambda k0, k1: upsample_slab(allowed_c, grid, k0, k1))
    values = hu.ravel()[flat]
    zyx = unravel(flat, hu.shape)
    at_border = border_c[tuple(c // f for c, f in zip(zyx, grid.factors))]
    touch = np.zeros(len(flat), bool)

    def forbidden(nb: tuple[np.ndarray, ...]) -> np.ndarray:
        return ~allowed_c[tuple(c // f for c, f in zip(nb, grid.factors))]

    touch[at_border] = touching_flags(hu, flat[at_border], threshold, forbidden)
    comp, n = _components(flat, hu.shape)
    stats = component_stats(flat, comp, values, n, hu.shape, volume.spacing_zyx_mm)
    touches = _fused_with_bone(flat, values, comp, n, touch, stats, hu.shape,
                               volume.spacing_zyx_mm)
    return Kept(flat, values, comp, n, touches), stats


def _fused_with_bone(flat, values, comp, n, touch, stats: ComponentStats, shape, spacing,
                     hump_hu: float = 100.0, apart_mm: float = 2.0) -> np.ndarray:
    """Components that are part of a bone (or of something outside the body).

    A component next to dense bone is the cortex's edge unless it has a hump of its own: a
    peak at least ``hump_hu`` above every voxel where it meets the bone and ``apart_mm``
    away from them (a deposit fused to the bone by partial volume).
    """
    fused = np.zeros(n, bool)
    fused[comp[touch]] = True
    if not fused.any():
        return fused
    meet_hu = np.full(n, -np.inf)
    np.maximum.at(meet_hu, comp[touch], values[touch].astype(float))
    far = np.zeros(n, bool)
    for i in np.flatnonzero(fused & (stats.peak_hu >= meet_hu + hump_hu)):
        members = stats.voxels_of(i)
        contact = np.array(np.unravel_index(flat[members[touch[members]]], shape))
        peak = np.array(np.unravel_index(stats.peak_flat[i], shape))
        gap = np.min(np.linalg.norm((contact.T - peak) * np.asarray(spacing), axis=1))
        far[i] = gap >= apart_mm
    return fused & ~far


def _significant(hu, kept: Kept, stats: ComponentStats, soft: SoftTissue, tm: TissueModel,
                 volume: Volume, params: CTParams, threshold: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Components big enough, apart from bone, and above the noise; with their CNR.

    CNR = (peak HU - host-tissue level around the peak) / noise SD. At the body surface the
    host level is at least that of soft tissue: the skin is too thin for the ring around a
    skin voxel to sample it, and noise in the skin must not be compared with the fat below.
    The bars follow the size of the volume searched (:func:`._noise.cnr_bars`).
    """
    keep = (stats.max_area_mm2 >= params.min_area_mm2 - 1e-9) & ~kept.touches
    cnr = np.full(stats.n, -np.inf)
    body_bar, skin_bar = cnr_bars(tm, params)
    bar = np.full(stats.n, body_bar)
    if keep.any():
        idx = np.flatnonzero(keep)
        peaks = stats.peak_flat[idx]
        host, surface = local_background(hu, peaks, volume.spacing_zyx_mm,
                                         params=params, threshold_hu=threshold)
        host = np.where(np.isnan(host), soft.median_hu, host)
        host = np.where(surface, np.maximum(host, soft.median_hu), host)
        cnr[idx] = (stats.peak_hu[idx] - host) / max(soft.noise_sd_hu, 1e-6)
        block = tuple(c // f for c, f in zip(unravel(peaks, hu.shape), tm.grid.factors))
        in_skin = surface & (tm.labels[block] == Compartment.SKIN)
        bar[idx[in_skin]] = skin_bar
    keep &= cnr >= bar
    return keep, cnr


def _inside_field(stats: ComponentStats, shape, warnings: list[str], *,
                  check_z: bool) -> np.ndarray:
    """False for components cut by the edge of the image or, with ``check_z``, by the first
    or last slice (a bone or deposit only partly scanned cannot be told apart)."""
    lo, hi = stats.bbox_lo, stats.bbox_hi
    cut = (lo[:, 1] == 0) | (lo[:, 2] == 0) | (hi[:, 1] == shape[1] - 1) | \
        (hi[:, 2] == shape[2] - 1)
    if check_z:
        cut |= (lo[:, 0] == 0) | (hi[:, 0] == shape[0] - 1)
    if cut.any():
        warnings.append(f"{int(cut.sum())} dense structure(s) cut by the edge of the scanned "
                        "field were not assessed (bone and calcification cannot be told "
                        "apart without their whole shape).")
    return ~cut


def _skeleton_zone(tm: TissueModel, params: CTParams) -> np.ndarray:
    """Bone; in a thin stack also the blocks within ``thin_bone_reach_mm`` of it in-plane.

    With a few slices the pieces of a bone (a rib beside its vertebra, a process) are not
    joined in 3-D, and nothing tells them from calcification but their nearness to bone.
    """
    if not thin_stack(tm.grid) or not tm.bone.any():
        return tm.bone
    reach = int(np.ceil(params.thin_bone_reach_mm / min(tm.grid.coarse_spacing_mm[1:])))
    disk = np.hypot(*np.mgrid[-reach:reach + 1, -reach:reach + 1]) <= reach
    return ndi.binary_dilation(tm.bone, structure=disk[None])


def _not_bone_slab(stats: ComponentStats, grid: CoarseGrid, volume: Volume,
                   params: CTParams) -> np.ndarray:
    """In a thin stack, dense components as large as a slab of bone are bone.

    With only a few slices, bones fall apart into pieces that the 3-D size rule of the
    coarse bone mask cannot see whole (a rib next to its vertebra); their candidates are
    held to the same scaled size rule.
    """
    if not thin_stack(grid):
        return np.ones(stats.n, bool)
    volume_mm3 = stats.count * float(np.prod(volume.spacing_zyx_mm))
    return volume_mm3 < bone_min_volume_mm3(grid, params)


def _lazy_zeros(shape, dtype) -> np.ndarray:
    """A zero array whose pages are only made when written.

    ``numpy.zeros`` asks for huge pages on large arrays, and each 2 MiB page is cleared on
    its first write: a few lesions spread through the volume would clear most of it.
    Anonymous memory from ``mmap`` keeps small pages.
    """
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if nbytes == 0:
        return np.zeros(shape, dtype)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype).reshape(shape)


def _lesion_labels(shape, kept: Kept, stats: ComponentStats, chosen: np.ndarray
                   ) -> np.ndarray:
    """``int32`` volume with lesion ids 1..n (order of ``chosen``) at their voxels."""
    labels = _lazy_zeros(shape, np.int32)
    ids = np.zeros(stats.n, np.int32)
    ids[chosen] = np.arange(1, len(chosen) + 1, dtype=np.int32)
    voxel_ids = ids[kept.comp]
    on = voxel_ids > 0
    labels.ravel()[kept.flat[on]] = voxel_ids[on]
    return labels


