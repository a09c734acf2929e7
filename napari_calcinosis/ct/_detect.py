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

from ._anatomy import angle_from_anterior_deg, find_anatomy
from ._body import find_body
from ._bone import bone_mask, bone_min_volume_mm3, thin_stack
from ._candidates import sparse_components as _components
from ._candidates import threshold_indices, touching_flags, unravel
from ._grid import CoarseGrid, coarse_sample, upsample_slab
from ._lesions import LesionContext, build_lesions
from ._lookalikes import REASONS, judge
from ._measure import ComponentStats, component_stats, noise_chain_voxels
from ._morphology import dilate_inplane
from ._noise import SoftTissue, cnr_bars, local_background, soft_tissue_stats
from ._phase import ContrastPhase, contrast_phase
from ._tissue import TRUNK, Compartment, TissueModel, build_tissue_model

__all__ = ["CTResult", "analyze_volume", "build_context"]

#: Noise chains (:func:`._measure.noise_chain_voxels`): components this long whose
#: median is under the threshold plus this many noise SDs.
_CHAIN_MM = 40.0
_CHAIN_SD = 2.0


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
    set_aside: list[dict[str, Any]] = field(default_factory=list)
    contrast: dict[str, Any] = field(default_factory=dict)


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
        When the volume is not a 3-D array or has fewer than ``MIN_SLICES`` slices.
    """
    params = params or CTParams()
    report = progress or no_progress
    warnings: list[str] = []
    report(0.0, "Modelling the body")
    ctx = build_context(volume, params=params, progress=report)
    hu, tm, soft, grid = ctx.hu, ctx.tissue, ctx.soft, ctx.tissue.grid
    threshold = _threshold(params, soft, warnings, volume.info.contrast_agent.strip())
    report(0.5, "Finding calcium outside bone")
    kept, stats = _candidates(hu, tm, volume, params, threshold, max(1, int(params.workers)),
                              soft.noise_sd_hu)
    keep, cnr, host = _significant(hu, kept, stats, soft, tm, volume, params, threshold)
    keep &= _inside_field(stats, hu.shape, warnings, check_z=not thin_stack(grid))
    keep &= _not_bone_slab(stats, grid, volume, params)
    phase = _phase(ctx)
    if phase.enhanced or volume.info.contrast_agent.strip():
        warnings.append(f"Contrast: {phase.sentence()}.")
    report(0.7, "Telling calcifications from their look-alikes")
    chosen = np.flatnonzero(keep)
    lps = volume.index_to_lps(stats.centroid_zyx[chosen]) if len(chosen) else np.empty((0, 3))
    coarse_k = np.minimum(np.round(stats.centroid_zyx[chosen, 0]).astype(int) // grid.factors[0],
                          grid.coarse_shape[0] - 1)
    phi = angle_from_anterior_deg(ctx.anatomy, lps, coarse_k) if len(chosen) else np.empty(0)
    verdict = judge(hu, volume, tm, stats, kept.flat, chosen, host_hu=host[chosen],
                    phi_deg=phi, phase=phase, params=params)
    lesion_idx = chosen[verdict.reason == ""]
    set_aside = _set_aside(volume, stats, chosen, verdict, lps)
    report(0.75, "Measuring lesions")
    lesions = build_lesions(ctx, kept, stats, lesion_idx, cnr)
    labels = _lesion_labels(hu.shape, kept, stats, lesion_idx)
    report(0.9, "Summarising")
    summary = summarize(lesions, params=params, source="CT")
    tissue_labels = tm.upsample_labels(workers=max(1, int(params.workers)))
    warnings.extend(ctx.anatomy.warnings)
    report(1.0, "CT analysis finished")
    return CTResult(lesions=lesions, lesion_labels=labels, tissue_labels=tissue_labels,
                    summary=summary, warnings=warnings, params=params,
                    midline=ctx.anatomy.to_dict(), threshold_hu=float(threshold),
                    noise_sd_hu=float(soft.noise_sd_hu), set_aside=set_aside,
                    contrast=phase.to_dict())


def _phase(ctx: LesionContext) -> ContrastPhase:
    """The scan's contrast phase, measured in the trunk's slices."""
    anatomy, tm = ctx.anatomy, ctx.tissue
    trunk_slices = (tm.parts == TRUNK).any(axis=(1, 2))
    fronts = np.where(trunk_slices[:, None], anatomy.spine_front_lps, np.nan)
    return contrast_phase(ctx.hu, ctx.volume, fronts, tm.grid.sample_slices(),
                          np.asarray(anatomy.midplane.normal_lps, float),
                          noise_sd_hu=ctx.soft.noise_sd_hu)


def _set_aside(volume: Volume, stats: ComponentStats, chosen: np.ndarray, verdict,
               lps: np.ndarray) -> list[dict[str, Any]]:
    """The candidates set aside as look-alikes, each with its reason."""
    voxel_mm3 = float(np.prod(volume.spacing_zyx_mm))
    out = []
    for m in np.flatnonzero(verdict.reason != ""):
        i = chosen[m]
        out.append({"centroid_index": [round(float(v), 2) for v in stats.centroid_zyx[i]],
                    "centroid_mm": [round(float(v), 2) for v in lps[m]],
                    "peak_hu": float(stats.peak_hu[i]),
                    "volume_mm3": round(float(stats.count[i]) * voxel_mm3, 3),
                    "reason": str(verdict.reason[m]),
                    "explanation": REASONS[str(verdict.reason[m])]})
    return out


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
        When the volume is not a 3-D array or has fewer than ``MIN_SLICES`` slices.
    """
    params = params or CTParams()
    report = progress or no_progress
    hu = _checked_hu(volume)
    workers = max(1, int(params.workers))
    grid = CoarseGrid.for_volume(hu.shape, volume.spacing_zyx_mm, params.tissue_grid_mm)
    hu_c, max_c, dense_mean_c = coarse_sample(hu, grid, workers=workers, dense_mean=True)
    body = find_body(hu_c, max_c, grid, params=params,
                     padding_c=_coarse_padding(volume, grid))
    report(0.2, "Bone and tissue compartments")
    rough = soft_tissue_stats(hu, hu_c, body.body, grid, params=params)
    dense_c = bone_mask(max_c, body.body, grid, params=params, workers=workers,
                        dense_mean_c=dense_mean_c)
    skeleton_c = bone_mask(max_c, body.body, grid, params=params, workers=workers,
                           dense_mean_c=dense_mean_c, noise_sd_hu=rough.noise_sd_hu)
    tm = build_tissue_model(hu_c, grid, dense_c, body, posterior_rc=_posterior_rc(volume),
                            params=params, slice_axis_up=_slices_ascend(volume),
                            wall_bone=skeleton_c)
    soft = soft_tissue_stats(hu, hu_c, body.body, grid, params=params, tissue=tm)
    report(0.45, "Anatomy")
    return LesionContext(volume=volume, hu=hu, tissue=tm,
                         anatomy=find_anatomy(tm, volume, params=params),
                         params=params, soft=soft)


#: Fewer slices than this are single images or reformats, not a body CT series.
MIN_SLICES = 3


def _slices_ascend(volume: Volume) -> bool:
    """True when increasing slice index goes toward the head (+z in LPS)."""
    return bool(np.asarray(volume.direction_lps, float)[2, 0] >= 0)


def _coarse_padding(volume: Volume, grid: CoarseGrid) -> np.ndarray | None:
    """Coarse blocks holding scanner padding (the volume's PixelPaddingValue mask)."""
    if volume.padding_mask is None:
        return None
    pad = np.asarray(volume.padding_mask)
    kz = grid.sample_slices()
    _, fy, fx = grid.factors
    sub = pad[kz][:, ::fy, ::fx]
    out = np.zeros(grid.coarse_shape, bool)
    out[:, :sub.shape[1], :sub.shape[2]] = sub
    return out


def _checked_hu(volume: Volume) -> np.ndarray:
    hu = np.asarray(volume.hu)
    if hu.ndim != 3 or min(hu.shape) < 1:
        raise AnalysisError(f"CT series {volume.info.series_instance_uid or '(no UID)'} is not "
                            f"a 3-D volume (shape {hu.shape}); calcifications cannot be "
                            "searched for.")
    if hu.shape[0] < MIN_SLICES:
        raise AnalysisError(
            f"CT series {volume.info.series_instance_uid or '(no UID)'} has {hu.shape[0]} "
            f"slice(s): the CT detector needs a series of at least {MIN_SLICES} slices (it "
            "tells deposits from vessels, ribs and noise by how they continue from slice to "
            "slice), so this series was not analysed.")
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
                threshold: float, workers: int, noise_sd: float
                ) -> tuple[Kept, ComponentStats]:
    """Voxels at/above the threshold in the body and outside bone, grouped into components.

    Long chains of noise-level voxels are broken up first
    (:func:`._measure.noise_chain_voxels`,
    what stands ``_CHAIN_SD`` noise SDs above the threshold kept): a deposit touching one
    would otherwise be lost with it.

    A component with a voxel next to a dense voxel in bone (or outside the body) is part of
    that structure (cortex edge, table) and is flagged; only voxels in blocks next to such
    blocks need that neighbour check.
    """
    grid = tm.grid
    in_body_c = dilate_inplane(tm.body, 1)
    allowed_c = in_body_c & ~_skeleton_zone(tm, params)
    border_c = dilate_inplane(~allowed_c, 1, depth=1) & allowed_c
    flat = threshold_indices(hu, threshold, workers=workers,
                             allowed=lambda k0, k1: upsample_slab(allowed_c, grid, k0, k1))
    values = hu.ravel()[flat]
    zyx = unravel(flat, hu.shape)
    at_border = border_c[tuple(c // f for c, f in zip(zyx, grid.factors))]
    touch = np.zeros(len(flat), bool)

    def forbidden(nb: tuple[np.ndarray, ...]) -> np.ndarray:
        return ~allowed_c[tuple(c // f for c, f in zip(nb, grid.factors))]

    def outside(nb: tuple[np.ndarray, ...]) -> np.ndarray:
        return ~in_body_c[tuple(c // f for c, f in zip(nb, grid.factors))]

    touch[at_border] = touching_flags(hu, flat[at_border], threshold, forbidden)
    comp, n = _components(flat, hu.shape)
    stats = component_stats(flat, comp, values, n, hu.shape, volume.spacing_zyx_mm)
    # a chain joined to bone or to matter outside the body goes with it, whole
    joined = np.zeros(n, bool)
    joined[comp[touch]] = True
    chain = noise_chain_voxels(values, comp, stats, volume.spacing_zyx_mm,
                               level_hu=threshold + _CHAIN_SD * noise_sd,
                               min_extent_mm=_CHAIN_MM) & ~joined[comp]
    if chain.any():
        flat, values, at_border, touch = (a[~chain] for a in (flat, values, at_border, touch))
        zyx = unravel(flat, hu.shape)
        comp, n = _components(flat, hu.shape)
        stats = component_stats(flat, comp, values, n, hu.shape, volume.spacing_zyx_mm)
    near_bone_c = dilate_inplane(_skeleton_zone(tm, params), 1, depth=1)
    near_bone = near_bone_c[tuple(c // f for c, f in zip(zyx, grid.factors))]
    touches = _fused_with_bone(flat, values, comp, n, touch, stats, hu.shape,
                               volume.spacing_zyx_mm, near_bone=near_bone)
    # what touches matter outside the body (the table, a rail) is never released
    out_flat = flat[at_border][touch[at_border]]
    if len(out_flat):
        on_outside = touching_flags(hu, out_flat, threshold, outside)
        touches[np.unique(comp[np.flatnonzero(at_border)[touch[at_border]][on_outside]])] = True
    return Kept(flat, values, comp, n, touches), stats


def _fused_with_bone(flat, values, comp, n, touch, stats: ComponentStats, shape, spacing,
                     hump_hu: float = 100.0, apart_mm: float = 2.0, *,
                     near_bone: np.ndarray | None = None, contact_share: float = 0.2,
                     away_share: float = 0.5, min_mm3: float = 50.0) -> np.ndarray:
    """Components that are part of a bone (or of something outside the body).

    A component next to dense bone is the cortex's edge (a rim whose every part lies against
    the bone) unless it has a hump of its own: a peak at least ``hump_hu`` above every voxel
    where it meets the bone and ``apart_mm`` away from them (a deposit fused to the bone by
    partial volume); or unless only a small share of it (``contact_share``) meets the bone
    and most of it (``away_share``) lies beyond the blocks next to the bone, being
    ``min_mm3`` or larger (a sheet or a band of calcification that ends on a bone; the
    ragged edge of a bone is smaller, and a bone's rim runs along it: ``near_bone`` flags
    the voxels in blocks next to bone).
    """
    fused = np.zeros(n, bool)
    fused[comp[touch]] = True
    if not fused.any():
        return fused
    meet_hu = np.full(n, -np.inf)
    np.maximum.at(meet_hu, comp[touch], values[touch].astype(float))
    contacts = np.bincount(comp[touch], minlength=n)
    spacing = np.asarray(spacing, float)
    voxel_mm3 = float(np.prod(spacing))
    far = np.zeros(n, bool)
    for i in np.flatnonzero(fused):
        members = stats.voxels_of(i)
        contact = np.array(np.unravel_index(flat[members[touch[members]]], shape)).T * spacing
        if stats.peak_hu[i] >= meet_hu[i] + hump_hu:
            peak = np.array(np.unravel_index(stats.peak_flat[i], shape)) * spacing
            if np.min(np.linalg.norm(contact - peak, axis=1)) >= apart_mm:
                far[i] = True
                continue
        if near_bone is not None and contacts[i] <= contact_share * stats.count[i] and \
                stats.count[i] * voxel_mm3 >= min_mm3:
            far[i] = np.mean(~near_bone[members]) >= away_share
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
    host_all = np.full(stats.n, soft.median_hu)
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
        host_all[idx] = host
        block = tuple(c // f for c, f in zip(unravel(peaks, hu.shape), tm.grid.factors))
        in_skin = surface & (tm.labels[block] == Compartment.SKIN)
        bar[idx[in_skin]] = skin_bar
    keep &= cnr >= bar
    return keep, cnr, host_all


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


