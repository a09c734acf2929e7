"""Render a :class:`~napari_calcinosis.phantom.PhantomSpec` into a PhantomCT (internal).

Order: the smooth background slice by slice (:mod:`._slice`), then the skeleton, aorta
and bowel gas (:mod:`._parts`), the look-alikes and the deposits, each blended with its
partial-volume occupancy (:mod:`._shapes`). Then an in-plane Gaussian blur stands for the
reconstruction kernel, the noise-free peak of every truth object is measured, and Gaussian noise
(slightly correlated in-plane, standard deviation ``noise_sd_hu``) is added before rounding to
int16 HU in [-1024, 3071].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ._body import Z_OFFSET_MM, Tissue, make_body_model
from ._lesions import (
    Deposit,
    Lookalike,
    plan_deep,
    plan_generalized,
    plan_localized,
    plan_lookalikes,
)
from ._limb_deposits import plan_limb_deposits
from ._parts import Parts, build_parts
from ._shapes import VoxelGrid, paint, render_ellipsoid, render_tube
from ._slice import make_context, render_slice, vertebral_levels
from ._spec import AXIAL_DIRECTION_LPS, PhantomCT, PhantomSpec, TruthLesion, TruthLookalike

_FOV_CENTER_Y_MM = 15.0
_BODY_CENTER_Y_MM = -5.0
#: Field of view that holds the arms in each pose (the arms raised are out of the field).
_ARMS_FOV_MM = {"down": 600.0, "beside": 720.0, "up": 600.0}


@dataclass
class PhantomModel:
    """Everything drawn from the seed, independent of the grid (kept for re-rendering)."""

    body: object
    parts: Parts
    deposits: list[Deposit]
    lookalikes: list[Lookalike]


def make_grid(spec: PhantomSpec) -> VoxelGrid:
    """The voxel grid a spec asks for (patient LPS mm)."""
    px = spec.pixel_spacing_mm
    s0, s1 = spec.z_range_mm
    if spec.shape_zyx is not None:
        nz, ny, nx = spec.shape_zyx
    else:
        nz = int(np.floor((s1 - s0) / spec.spacing_z_mm + 1e-6)) + 1
        fov = max(spec.fov_mm, _ARMS_FOV_MM.get(spec.arms, 0.0) * spec.body_size)
        ny = nx = int(round(fov / px))
    z = s0 + Z_OFFSET_MM + spec.spacing_z_mm * np.arange(nz)
    y = _FOV_CENTER_Y_MM + px * (np.arange(ny) - (ny - 1) / 2)
    x = px * (np.arange(nx) - (nx - 1) / 2)
    return VoxelGrid(z, y, x, float(spec.slice_thickness_mm))


def plan_model(spec: PhantomSpec) -> PhantomModel:
    """Draw the body, skeleton, deposits and look-alikes from the seed."""
    seeds = np.random.SeedSequence(spec.seed).spawn(5)  # the fifth: the arms' deposits
    rng_body, rng_parts, rng_dep, rng_look, rng_limb = (np.random.default_rng(s)
                                                        for s in seeds)
    body = make_body_model(rng_body, xc=spec.body_offset_x_mm, yc=_BODY_CENTER_Y_MM,
                           size=spec.body_size, fat_mm=spec.fat_thickness_mm,
                           skin_mm=spec.skin_thickness_mm, trabecular_hu=spec.trabecular_hu,
                           arm_pose=spec.arms)
    parts = build_parts(body, rng_parts)
    scale = spec.deposit_count_scale
    if spec.scenario == "generalized":
        deposits = plan_generalized(body, rng_dep, parts, scale)
    elif spec.scenario == "localized":
        deposits = plan_localized(body, rng_dep, parts, spec.localized_region,
                                  spec.localized_side, scale)
    elif spec.scenario == "deep":
        deposits = plan_deep(body, rng_dep, parts, scale)
    else:
        deposits = []
    if spec.scenario in ("generalized", "deep"):  # symmetric disease reaches the arms too
        plan_limb_deposits(body, rng_limb, parts, deposits, scale)
    lookalikes = plan_lookalikes(body, rng_look, parts, vertebral_levels(), Tissue.SKIN)
    return PhantomModel(body, parts, deposits, lookalikes)


def _background(seed: int, grid: VoxelGrid, model: PhantomModel, progress):
    ctx = make_context(grid, model.body, np.random.default_rng(seed + 7919))
    hu = np.empty(grid.shape, np.float32)
    labels = np.empty(grid.shape, np.uint8)
    for k, z in enumerate(grid.z_mm):
        hu[k], labels[k] = render_slice(ctx, float(z) - Z_OFFSET_MM)
        if progress is not None and k % 16 == 0:
            progress(0.7 * k / grid.shape[0], "rendering the torso")
    return hu, labels


def _paint_parts(grid: VoxelGrid, parts: Parts, hu: np.ndarray, labels: np.ndarray) -> None:
    for tube in parts.tubes:
        paint(hu, labels, render_tube(grid, tube), value_hu=tube.hu, label=tube.label,
              shell_hu=tube.shell_hu, shell_label=tube.shell_label)
    for ell in parts.ellipsoids:
        rendered = render_ellipsoid(grid, ell)
        if ell.shell_mm > 0:
            paint(hu, labels, rendered, value_hu=ell.hu, label=ell.label,
                  shell_hu=ell.shell_hu, shell_label=ell.shell_label)
        else:
            paint(hu, labels, rendered, value_hu=ell.hu, label=ell.label)


def _covered(grid: VoxelGrid, z_mm: float) -> bool:
    return bool(grid.z_mm[0] - 1e-6 <= z_mm <= grid.z_mm[-1] + 1e-6)


_SLAB = 32  # slices per chunk of the in-plane filters, to bound the memory of thin phantoms


def _blur_in_plane(hu: np.ndarray, sigma_px: float) -> None:
    for k in range(0, hu.shape[0], _SLAB):
        hu[k:k + _SLAB] = ndimage.gaussian_filter(hu[k:k + _SLAB], (0, sigma_px, sigma_px))


def _add_noise(spec: PhantomSpec, hu: np.ndarray) -> None:
    """Gaussian noise of SD ``noise_sd_hu``, correlated in-plane over ``noise_correlation_px``."""
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 104729]))
    sigma = spec.noise_correlation_px
    gain = 1.0
    if sigma > 0:
        delta = np.zeros((1, 31, 31), np.float32)
        delta[0, 15, 15] = 1.0
        gain = float(np.sqrt((ndimage.gaussian_filter(delta, (0, sigma, sigma)) ** 2).sum()))
    scale = np.float32(spec.noise_sd_hu / gain)
    for k in range(0, hu.shape[0], _SLAB):
        white = rng.standard_normal(hu[k:k + _SLAB].shape, dtype=np.float32)
        if sigma > 0:
            white = ndimage.gaussian_filter(white, (0, sigma, sigma))
        white *= scale
        hu[k:k + _SLAB] += white


def _peak(clean: np.ndarray, rendered) -> float | None:
    if rendered is None:
        return None
    box, occ, _ = rendered
    inside = occ > 0.02
    if not inside.any():
        return None
    return float(clean[box][inside].max())


def _index(grid: VoxelGrid, lps: np.ndarray) -> tuple[float, float, float]:
    step_z = grid.z_mm[1] - grid.z_mm[0] if grid.z_mm.size > 1 else 1.0
    return (float((lps[2] - grid.z_mm[0]) / step_z),
            float((lps[1] - grid.y_mm[0]) / grid.pixel_mm),
            float((lps[0] - grid.x_mm[0]) / grid.pixel_mm))


def render_clean(grid: VoxelGrid, model: PhantomModel, *, seed: int, deposits: bool = True,
                 calcified_lookalikes: bool = True, progress=None):
    """Noise-free, unblurred HU (float32) and labels of a model on a grid.

    Returns ``(hu, labels, looks, deps)`` where ``looks`` and ``deps`` pair each rendered
    look-alike / deposit (centre inside the covered slices) with its occupancy maps.
    """
    hu, labels = _background(seed, grid, model, progress)
    _paint_parts(grid, model.parts, hu, labels)
    looks = [(lk, render_ellipsoid(grid, lk.shape)) for lk in model.lookalikes
             if _covered(grid, lk.shape.center_mm[2])
             and (calcified_lookalikes or lk.label is not None)]
    for lk, rendered in looks:
        paint(hu, labels if lk.label is not None else None, rendered, value_hu=lk.shape.hu,
              label=lk.label or 0)
    deps = [(d, render_ellipsoid(grid, d.shape)) for d in model.deposits
            if deposits and _covered(grid, d.shape.center_mm[2])]
    for dep, rendered in deps:
        paint(hu, None, rendered, value_hu=dep.shape.hu, label=0)
    return hu, labels, looks, deps


def render_phantom(spec: PhantomSpec, *, progress=None) -> PhantomCT:
    """Render the phantom a spec describes (see :func:`make_ct_phantom`)."""
    grid = make_grid(spec)
    model = plan_model(spec)
    hu, labels, looks, deps = render_clean(grid, model, seed=spec.seed, progress=progress)
    if progress is not None:
        progress(0.8, "blurring and adding noise")
    if spec.kernel_fwhm_mm > 0:
        sigma = spec.kernel_fwhm_mm / 2.3548 / grid.pixel_mm
        _blur_in_plane(hu, sigma)
    truth, mask = _truth(grid, deps, model.deposits, hu)
    lookalikes = _lookalike_truth(grid, model, looks, hu)
    _add_noise(spec, hu)
    np.rint(hu, out=hu)
    np.clip(hu, -1024, 3071, out=hu)
    out = hu.astype(np.int16)
    del hu
    origin = np.array([grid.x_mm[0], grid.y_mm[0], grid.z_mm[0]])
    spacing = (spec.spacing_z_mm, float(spec.pixel_spacing_mm), float(spec.pixel_spacing_mm))
    if progress is not None:
        progress(1.0, "phantom ready")
    return PhantomCT(out, spacing, origin, AXIAL_DIRECTION_LPS.copy(), labels, truth, lookalikes,
                     spec, float(spec.slice_thickness_mm), float(model.body.xc), mask, model)


def _truth(grid: VoxelGrid, deps, planned: list[Deposit],
           clean: np.ndarray) -> tuple[list[TruthLesion], np.ndarray]:
    mask = np.zeros(grid.shape, np.uint8 if len(deps) < 256 else np.uint16)
    truth: list[TruthLesion] = []
    ids = {id(dep): n + 1 for n, (dep, _) in enumerate(deps)}
    for n, (dep, rendered) in enumerate(deps):
        c, axes = dep.shape.center_mm, dep.shape.axes_mm
        partner = ids.get(id(planned[dep.partner])) if dep.partner >= 0 else None
        truth.append(TruthLesion(
            id=n + 1, center_lps_mm=tuple(float(v) for v in c),
            center_index_zyx=_index(grid, c), diameter_mm=float(2 * axes.max()),
            axes_mm=tuple(float(a) for a in axes), volume_mm3=float(4 / 3 * np.pi * axes.prod()),
            peak_hu_true=float(dep.shape.hu), peak_hu_expected=_peak(clean, rendered) or -1000.0,
            layer=dep.layer, side=dep.side, region=dep.region, morphology=dep.morphology,
            depth_mm=float(dep.depth_mm), fat_thickness_mm=float(dep.fat_thickness_mm),
            partner_id=partner))
        if rendered is not None:
            box, occ, _ = rendered
            region = mask[box]
            region[occ >= 0.3] = n + 1
            k, i, j = np.unravel_index(int(np.argmax(occ)), occ.shape)
            region[k, i, j] = n + 1
    return truth, mask


def _lookalike_truth(grid: VoxelGrid, model: PhantomModel, looks, clean) -> list[TruthLookalike]:
    out: list[TruthLookalike] = []
    for lk, rendered in looks:
        c = lk.shape.center_mm
        out.append(TruthLookalike(
            id=len(out) + 1, kind=lk.kind, center_lps_mm=tuple(float(v) for v in c),
            center_index_zyx=_index(grid, c), size_mm=float(2 * lk.shape.axes_mm.max()),
            peak_hu_true=float(lk.shape.hu), peak_hu_expected=_peak(clean, rendered),
            layer=lk.layer, side=lk.side))
    body = model.body
    table = np.array([body.xc, body.table_contact_y() + 26.0, float(grid.z_mm.mean())])
    out.append(TruthLookalike(
        id=len(out) + 1, kind="table", center_lps_mm=tuple(float(v) for v in table),
        center_index_zyx=_index(grid, table), size_mm=430.0, peak_hu_true=250.0,
        peak_hu_expected=None, layer="table", side="midline"))
    return out


def make_ct_phantom(spec: PhantomSpec | None = None, *, progress=None) -> PhantomCT:
    """Render a phantom CT and its ground truth.

    Parameters
    ----------
    spec : PhantomSpec, optional
        What to render (defaults: the generalized scenario, 5 mm slices, shoulders to pelvis).
    progress : callable, optional
        ``progress(fraction, message)`` called while rendering.

    Returns
    -------
    PhantomCT
        The volume, its tissue labels and the truth lists.
    """
    return render_phantom(spec or PhantomSpec(), progress=progress)
