"""Per-slice rendering of the smooth background of the phantom torso (internal).

One call renders one axial slice: air, table, skin, subcutaneous fat, the muscle wall with the
paraspinal muscles, the cavity contents (lungs, heart, mediastinum, trachea above the
diaphragm; liver, spleen, kidneys, bladder, bowel with visceral fat below it), and the bones
that are easiest to describe per slice (vertebral bodies and discs, posterior elements,
sternum, scapular blades). Boundaries are soft over one pixel in-plane, and boundaries that
run across slices (diaphragm, vertebral end plates, sternum ends) are soft over the slice
thickness, which approximates partial volume without supersampling the whole volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._body import (
    CAVITY_B_ANT,
    KNOTS_S,
    N_ANGLES,
    TISSUE_HU,
    Z_OFFSET_MM,
    BodyModel,
    Tissue,
    interp,
    scapula_weight,
)
from ._shapes import VoxelGrid

T = Tissue
HU = TISSUE_HU


def _ramp(signed_mm: np.ndarray | float, width_mm: float) -> np.ndarray:
    if np.isscalar(signed_mm):
        return np.float32(min(max(0.5 + float(signed_mm) / width_mm, 0.0), 1.0))
    out = np.asarray(signed_mm, dtype=np.float32) * np.float32(1.0 / width_mm)
    out += np.float32(0.5)
    return np.minimum(np.maximum(out, np.float32(0.0), out=out), np.float32(1.0), out=out)


def _slab_fraction(s: float, thickness: float, intervals: list[tuple[float, float]]) -> float:
    """Fraction of the slab ``[s - T/2, s + T/2]`` covered by the union of intervals."""
    samples = s + thickness * ((np.arange(16) + 0.5) / 16 - 0.5)
    inside = np.zeros(samples.shape, bool)
    for lo, hi in intervals:
        inside |= (samples >= lo) & (samples < hi)
    return float(inside.mean())


def vertebral_levels() -> list[tuple[float, float]]:
    """(bottom, top) heights of the vertebral bodies from L5 to C7 (discs are the gaps)."""
    levels = [(185.0 + 33 * i, 185.0 + 33 * i + 25) for i in range(5)]
    levels += [(350.0 + 20 * j, 350.0 + 20 * j + 16) for j in range(12)]
    levels += [(590.0 + 15 * m, 590.0 + 15 * m + 12) for m in range(4)]
    return levels


@dataclass
class SliceContext:
    """Per-grid constants reused for every slice."""

    grid: VoxelGrid
    body: BodyModel
    x: np.ndarray  # (1, nx)
    y: np.ndarray  # (ny, 1)
    r: np.ndarray
    theta: np.ndarray
    theta_idx: np.ndarray
    field_coeffs: np.ndarray  # visceral fat field: (n, 4) kx, ky, kz, phase
    table_hu: np.ndarray
    table_labels: np.ndarray


def make_context(grid: VoxelGrid, body: BodyModel, rng: np.random.Generator) -> SliceContext:
    x = grid.x_mm[None, :].astype(np.float32)
    y = grid.y_mm[:, None].astype(np.float32)
    dx, dy = x - body.xc, y - body.yc
    r = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx)
    idx = np.round((theta + np.pi) / (2 * np.pi) * N_ANGLES).astype(np.intp) % N_ANGLES
    n = 10
    k = rng.uniform(0.03, 0.08, n)
    ang = rng.uniform(0, 2 * np.pi, n)
    coeffs = np.column_stack([k * np.cos(ang), k * np.sin(ang) * 0.8, rng.uniform(0.01, 0.04, n),
                              rng.uniform(0, 2 * np.pi, n)])
    table_hu, table_lab = _table(grid, body, x, y)
    return SliceContext(grid, body, x, y, r, theta, idx, coeffs, table_hu.astype(np.float32),
                        table_lab)


def crop(ctx: SliceContext, x_lo: float, x_hi: float, y_lo: float,
         y_hi: float) -> tuple[tuple[slice, slice], SliceContext]:
    """The part of the slice inside an in-plane box (to keep per-slice work small)."""
    g = ctx.grid
    rows = slice(*g.axis_range(g.y_mm, y_lo, y_hi))
    cols = slice(*g.axis_range(g.x_mm, x_lo, x_hi))
    sub = SliceContext(g, ctx.body, ctx.x[:, cols], ctx.y[rows, :], ctx.r[rows, cols],
                       ctx.theta[rows, cols], ctx.theta_idx[rows, cols], ctx.field_coeffs,
                       ctx.table_hu[rows, cols], ctx.table_labels[rows, cols])
    return (rows, cols), sub


def _table(grid: VoxelGrid, body: BodyModel, x: np.ndarray, y: np.ndarray):
    """A curved CT table below the back, separated from it by an air gap."""
    w = grid.pixel_mm
    top = body.table_contact_y() + 8.0 - (x - body.xc) ** 2 / 1800.0
    depth = y - top
    edge = _ramp(body.table_half_width() - np.abs(x - body.xc), w)
    shell = (_ramp(depth, w) - _ramp(depth - 3.0, w)) + (_ramp(depth - 33.0, w)
                                                         - _ramp(depth - 36.0, w))
    core = _ramp(depth - 3.0, w) - _ramp(depth - 33.0, w)
    hu = -1000.0 + edge * (shell * (HU[T.TABLE] + 1000.0) + core * 100.0)
    labels = np.where((edge >= 0.5) & (shell + core >= 0.5), T.TABLE, T.AIR).astype(np.uint8)
    return hu, labels


def _ellipse_occ(ctx: SliceContext, cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    rho = np.hypot((ctx.x - cx) / ax, (ctx.y - cy) / ay)
    return _ramp((1.0 - rho) * np.sqrt(ax * ay), ctx.grid.pixel_mm)


def _ellipsoid_section(ctx: SliceContext, s: float, center, radii) -> np.ndarray | None:
    """In-plane occupancy of an ellipsoid (in body coordinates) cut at height s."""
    cx, cy, cs = center
    ax, ay, az = radii
    frac = 1.0 - ((s - cs) / az) ** 2
    if frac <= 0.01:
        return None
    scale = np.sqrt(frac)
    b = ctx.body
    return _ellipse_occ(ctx, b.xc + cx * b.size, b.yc + cy * b.size, ax * b.size * scale,
                        ay * b.size * scale)


def _visceral_field(ctx: SliceContext, s: float) -> np.ndarray:
    """A smooth seeded random field (unit variance) that decides where visceral fat is."""
    c = ctx.field_coeffs.astype(np.float32)
    arg_y = (ctx.y - ctx.body.yc) * c[None, :, 1] + (c[:, 2] * s + c[:, 3])[None, :]
    arg_x = (ctx.x.T - ctx.body.xc) * c[None, :, 0]
    field = np.cos(arg_y) @ np.cos(arg_x).T - np.sin(arg_y) @ np.sin(arg_x).T
    return field * np.float32(1.0 / np.sqrt(c.shape[0] / 2))


def _blend(hu, lab, occ, value, label):
    if occ is None:
        return
    hu += occ * (value - hu)
    lab[occ >= 0.5] = label


def _abdomen(ctx: SliceContext, s: float):
    shape = np.broadcast_shapes(ctx.x.shape, ctx.y.shape)
    hu = np.full(shape, HU[T.VISCERA], np.float32)
    lab = np.full(shape, T.VISCERA, np.uint8)
    fat = _ramp((_visceral_field(ctx, s) - 0.35) * 20.0, 1.0)
    _blend(hu, lab, fat, HU[T.VISCERAL_FAT], T.VISCERAL_FAT)
    organs = [((-55, -5, 300), (88, 80, 62), 58.0), ((78, 42, 312), (34, 44, 40), 48.0),
              ((-66, 46, 255), (28, 24, 48), 32.0), ((66, 46, 262), (28, 24, 48), 32.0),
              ((0, -48, 70), (48, 38, 34), 12.0)]
    for center, radii, value in organs:
        _blend(hu, lab, _ellipsoid_section(ctx, s, center, radii), value, T.VISCERA)
    return hu, lab


def _thorax(ctx: SliceContext, s: float):
    b, w = ctx.body, ctx.grid.pixel_mm
    shape = np.broadcast_shapes(ctx.x.shape, ctx.y.shape)
    hu = np.full(shape, HU[T.LUNG], np.float32)
    lab = np.full(shape, T.LUNG, np.uint8)
    _blend(hu, lab, _ellipsoid_section(ctx, s, (22, -22, 385), (70, 58, 62)), HU[T.VISCERA],
           T.VISCERA)
    upper = float(_ramp(s - 420.0, ctx.grid.thickness_mm + w))
    if upper > 0:
        front = b.yc - 0.85 * b.size * interp(s, KNOTS_S, CAVITY_B_ANT)
        band = _ramp(26.0 * b.size - np.abs(ctx.x - b.xc), w) * _ramp(ctx.y - front, w)
        _blend(hu, lab, band * upper, HU[T.VISCERA], T.VISCERA)
        trachea_y = b.vb_center_y(s) - b.vb_radius(s) - 14.0 * b.size
        gas = _ellipse_occ(ctx, b.xc, trachea_y, 9.0 * b.size, 8.0 * b.size)
        _blend(hu, lab, gas * float(_ramp(s - 450.0, ctx.grid.thickness_mm + w)),
               HU[T.GAS], T.GAS)
    return hu, lab


def _cavity_contents(ctx: SliceContext, s: float):
    b = ctx.body
    width = max(ctx.grid.thickness_mm, ctx.grid.pixel_mm)
    thorax = _ramp(s - b.dome_s(ctx.x, ctx.y), width)
    if thorax.size == 0 or thorax.max() <= 0:  # (a small grid may miss the cavity)
        return _abdomen(ctx, s)
    if thorax.min() >= 1:
        return _thorax(ctx, s)
    hu_a, lab_a = _abdomen(ctx, s)
    hu_t, lab_t = _thorax(ctx, s)
    return hu_a + thorax * (hu_t - hu_a), np.where(thorax >= 0.5, lab_t, lab_a)


def _paraspinal(ctx: SliceContext, s: float) -> np.ndarray:
    b, w = ctx.body, ctx.grid.pixel_mm
    if s < 175.0:
        return np.zeros((1, 1))
    y_vb, r_vb = b.vb_center_y(s), b.vb_radius(s)
    half = 0.8 * r_vb + 0.55 * np.clip(ctx.y - y_vb, 0, None)
    return _ramp(half - np.abs(ctx.x - b.xc), w) * _ramp(ctx.y - (y_vb - 0.2 * r_vb), w)


THETA_GRID = np.linspace(-np.pi, np.pi, N_ANGLES, endpoint=False)


def _soft_layers(ctx: SliceContext, s: float, radii: dict[str, np.ndarray]):
    w = ctx.grid.pixel_mm
    occ = {name: _ramp(np.take(arr, ctx.theta_idx) - ctx.r, w) for name, arr in radii.items()}
    occ["cavity"] = occ["cavity"] * (1.0 - _paraspinal(ctx, s))
    return occ


def _square(ctx: SliceContext, radius: float):
    b = ctx.body
    return crop(ctx, b.xc - radius, b.xc + radius, b.yc - radius, b.yc + radius)


def _within(outer: tuple[slice, slice], inner: tuple[slice, slice]) -> tuple[slice, slice]:
    return tuple(slice(i.start - o.start, i.stop - o.start) for o, i in zip(outer, inner))


def render_slice(ctx: SliceContext, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free HU (float32) and tissue labels (uint8) of the slice at height ``s``."""
    radii = ctx.body.layers(THETA_GRID, s)
    pad = 3.0 * ctx.grid.pixel_mm
    body_box, bctx = _square(ctx, float(radii["outline"].max()) + pad)
    cav_box, cctx = _square(ctx, float(radii["cavity"].max()) + pad)
    occ = _soft_layers(bctx, s, radii)
    shape = occ["outline"].shape
    content_hu = np.full(shape, HU[T.MUSCLE], np.float32)
    content_lab = np.full(shape, T.MUSCLE, np.uint8)
    inner = _within(body_box, cav_box)
    content_hu[inner], content_lab[inner] = _cavity_contents(cctx, s)
    hu = ctx.table_hu.copy()
    lab = ctx.table_labels.copy()
    sub_hu, sub_lab = hu[body_box], lab[body_box]
    sub_hu += occ["outline"] * (HU[T.SKIN] - sub_hu)
    sub_hu += (occ["skin_inner"] * (HU[T.SUBCUTANEOUS_FAT] - HU[T.SKIN])
               + occ["fascia"] * (HU[T.MUSCLE] - HU[T.SUBCUTANEOUS_FAT])
               + occ["cavity"] * (content_hu - HU[T.MUSCLE]))
    sub_lab[occ["outline"] >= 0.5] = T.SKIN
    sub_lab[occ["skin_inner"] >= 0.5] = T.SUBCUTANEOUS_FAT
    sub_lab[occ["fascia"] >= 0.5] = T.MUSCLE
    inside = occ["cavity"] >= 0.5
    sub_lab[inside] = content_lab[inside]
    _spine(ctx, s, hu, lab)
    _sternum(ctx, s, hu, lab)
    _scapulae(ctx, s, radii, hu, lab)
    return hu, lab


def bone_slice(ctx: SliceContext, s: float, radii: dict[str, np.ndarray]) -> np.ndarray:
    """HU that the slice-drawn bones (spine, sternum, scapulae) add to a slice of 0 HU.

    ``radii`` needs only ``"fascia"`` (the body layer radii along ``THETA_GRID``).

    The same drawing code as :func:`render_slice`, for measuring how near a point comes to
    these bones (:mod:`._clearance`).
    """
    shape = np.broadcast_shapes(ctx.x.shape, ctx.y.shape)
    hu = np.zeros(shape, np.float32)
    lab = np.zeros(shape, np.uint8)
    _spine(ctx, s, hu, lab)
    _sternum(ctx, s, hu, lab)
    _scapulae(ctx, s, radii, hu, lab)
    return hu


def near_slice_bones(body: BodyModel, point: np.ndarray, reach_mm: float) -> bool:
    """Whether an LPS point may come within ``reach_mm`` of the spine, sternum or scapulae.

    A cheap conservative test from the boxes :func:`bone_slice` draws in: the spine and
    sternum lie within 36 mm (x body size) of the midline, the scapular blades behind the
    body axis between heights 440 and 570 mm.
    """
    s = float(point[2]) - Z_OFFSET_MM
    midline = abs(float(point[0]) - body.xc) <= 36.0 * body.size + 5.0 + reach_mm
    scapulae = 440.0 - reach_mm <= s <= 570.0 + reach_mm and \
        float(point[1]) >= body.yc - reach_mm
    return bool(midline or scapulae)


def _shelled(ctx, hu, lab, occ, inner, frac, shell_hu, inner_hu, shell_label, inner_label):
    """Blend a bone with a cortex shell, present in a fraction ``frac`` of the slab."""
    shell = (occ - inner) * frac
    core = inner * frac
    hu += shell * (shell_hu - hu) + core * (inner_hu - hu)
    lab[(occ * frac >= 0.5) & (shell >= 0.5 * occ * frac)] = shell_label
    lab[(core >= 0.5 * occ * frac) & (occ * frac >= 0.5)] = inner_label


def _spine(ctx: SliceContext, s: float, hu: np.ndarray, lab: np.ndarray) -> None:
    b, w, thick = ctx.body, ctx.grid.pixel_mm, ctx.grid.thickness_mm
    if s < 180.0:
        return
    y_vb, r_vb = b.vb_center_y(s), b.vb_radius(s)
    frac = _slab_fraction(s, thick, vertebral_levels())
    box, ctx = crop(ctx, b.xc - 36.0 * b.size - 5, b.xc + 36.0 * b.size + 5, y_vb - r_vb - 5,
                    y_vb + r_vb + 50.0 * b.size)
    hu, lab = hu[box], lab[box]
    rho = np.hypot((ctx.x - b.xc) / (1.15 * r_vb), (ctx.y - y_vb) / r_vb)
    occ = _ramp((1 - rho) * r_vb, w)
    inner = _ramp((1 - rho) * r_vb - 1.5, w)
    _blend(hu, lab, occ * (1 - frac), HU[T.DISC], T.DISC)
    _shelled(ctx, hu, lab, occ, inner, frac, HU[T.BONE_CORTEX], b.trabecular_hu,
             T.BONE_CORTEX, T.BONE_MARROW)
    canal_y = y_vb + r_vb + 9.0 * b.size
    d = np.hypot(ctx.x - b.xc, ctx.y - canal_y)
    ring = _ramp(14.0 * b.size - d, w) - _ramp(8.0 * b.size - d, w)
    spinous = _ramp(4.0 - np.abs(ctx.x - b.xc), w) * _ramp(ctx.y - canal_y, w) \
        * _ramp(canal_y + 32.0 * b.size - ctx.y, w)
    transverse = _ramp(4.5 - np.abs(ctx.y - canal_y + 2.0), w) \
        * _ramp(30.0 * b.size - np.abs(ctx.x - b.xc), w)
    bone = np.clip(ring + spinous + transverse, 0, 1)
    _blend(hu, lab, bone, 650.0, T.BONE_CORTEX)
    _blend(hu, lab, _ramp(8.0 * b.size - d, w), 25.0, T.VISCERA)


def _sternum(ctx: SliceContext, s: float, hu: np.ndarray, lab: np.ndarray) -> None:
    b, w = ctx.body, ctx.grid.pixel_mm
    frac = _slab_fraction(s, ctx.grid.thickness_mm, [(368.0, 525.0)])
    if frac <= 0:
        return
    cy = b.yc - b.size * interp(s, KNOTS_S, CAVITY_B_ANT) - 6.0
    half_w = (24.0 if s > 490 else 14.0) * b.size
    box, ctx = crop(ctx, b.xc - half_w - 5, b.xc + half_w + 5, cy - 10.0, cy + 10.0)
    hu, lab = hu[box], lab[box]
    rho = ((np.abs(ctx.x - b.xc) / half_w) ** 4 + (np.abs(ctx.y - cy) / 5.0) ** 4) ** 0.25
    occ = _ramp((1 - rho) * 5.0, w)
    inner = _ramp((1 - rho) * 5.0 - 1.5, w)
    _shelled(ctx, hu, lab, occ, inner, frac, HU[T.BONE_CORTEX], 250.0, T.BONE_CORTEX,
             T.BONE_MARROW)


def _scapulae(ctx: SliceContext, s: float, radii: dict[str, np.ndarray], hu: np.ndarray,
              lab: np.ndarray) -> None:
    b, w = ctx.body, ctx.grid.pixel_mm
    weight = scapula_weight(s)
    if weight <= 0:
        return
    reach = float(radii["fascia"].max())
    box, ctx = crop(ctx, b.xc - reach, b.xc + reach, b.yc, b.yc + reach)
    hu, lab = hu[box], lab[box]
    fascia = np.take(radii["fascia"], ctx.theta_idx)
    depth = fascia - ctx.r
    radial = _ramp(depth - 10.0, w) * _ramp(15.0 - depth, w)
    deg = np.degrees(ctx.theta)
    lateral = np.minimum(np.abs(deg - 41.0), np.abs(deg - 139.0))
    angular = _ramp((21.0 - lateral) * ctx.r * np.pi / 180.0, w)
    _blend(hu, lab, radial * angular * weight, 700.0, T.BONE_CORTEX)
