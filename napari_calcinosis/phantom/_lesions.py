"""Where the phantom's calcifications and look-alikes go (internal).

Deposits are ellipsoids placed in body-wall coordinates (region, side, angle ``phi`` from the
anterior midline, height ``s``, depth below the skin surface along the ray), so the same seed
gives the same deposits in patient millimetres whatever the slice thickness, pixel size, noise
or z range. Linear and sheet deposits lie tangential to the skin.

Region boxes (height ``s`` in mm above the bottom of the buttocks, ``phi`` in degrees) are the
truth's definition of each contract region and are written to ``truth.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._body import Z_OFFSET_MM, BodyModel, Tissue
from ._clearance import MIN_BONE_CLEARANCE_MM, MIN_PART_CLEARANCE_MM, clearance_of
from ._parts import Parts, in_lung, theta_of
from ._shapes import Ellipsoid

#: region -> ((s_min, s_max), (phi_min, phi_max)) where the phantom places its deposits.
REGION_BOXES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "shoulder_girdle": ((520.0, 585.0), (62.0, 118.0)),
    "axilla": ((455.0, 500.0), (78.0, 104.0)),
    "chest_wall_anterior": ((370.0, 470.0), (18.0, 58.0)),
    "chest_wall_lateral": ((330.0, 440.0), (70.0, 108.0)),
    "chest_wall_posterior": ((345.0, 470.0), (122.0, 160.0)),
    "abdominal_wall": ((200.0, 300.0), (15.0, 58.0)),
    "flank": ((215.0, 300.0), (76.0, 108.0)),
    "lower_back": ((200.0, 300.0), (126.0, 160.0)),
    "gluteal": ((30.0, 150.0), (128.0, 165.0)),
}
GENERALIZED_REGIONS = ("shoulder_girdle", "axilla", "chest_wall_anterior", "chest_wall_lateral",
                       "chest_wall_posterior", "abdominal_wall", "gluteal")
LOCALIZED_CHOICES = ("gluteal", "chest_wall_lateral", "shoulder_girdle", "abdominal_wall")
DEEP_MUSCLE_REGIONS = ("gluteal", "shoulder_girdle", "chest_wall_posterior")
NIPPLE_PHI_S = (32.0, 395.0)
MIN_GAP_MM = 6.0  # between deposit surfaces, so that each stays one component on 5 mm slices


@dataclass
class Deposit:
    """One planned calcification (before rendering)."""

    shape: Ellipsoid
    layer: str
    side: str
    region: str
    morphology: str
    depth_mm: float
    fat_thickness_mm: float
    s_mm: float
    phi_deg: float
    partner: int = -1


def _frame(body: BodyModel, side: float, phi: float) -> tuple[np.ndarray, np.ndarray]:
    """Outward normal and circumferential tangent of the wall at ``phi`` (in-plane)."""
    t = theta_of(side, phi)
    normal = np.array([np.cos(t), np.sin(t), 0.0])
    return normal, np.array([-np.sin(t), np.cos(t), 0.0])


def _morphology(rng: np.random.Generator, layer: str, allow_elongated: bool) -> str:
    if layer == "skin":
        return "punctate"
    roll = rng.uniform()
    if allow_elongated and roll < 0.10:
        return "linear"
    if allow_elongated and roll < 0.16:
        return "sheet"
    return "punctate" if roll < 0.6 else "nodular"


def _axes_for(rng: np.random.Generator, morphology: str, room_mm: float) -> np.ndarray:
    """Semi-axes (along circumference, along z, along the normal)."""
    if morphology == "linear":
        thick = rng.uniform(0.8, 1.1)
        long = rng.uniform(4.0, 8.0)
        return np.array([long, thick, thick]) if rng.uniform() < 0.5 else \
            np.array([thick, long, thick])
    if morphology == "sheet":
        return np.array([rng.uniform(5.0, 8.0), rng.uniform(4.0, 6.0), rng.uniform(0.6, 0.8)])
    lo, hi = (0.9, 1.8) if morphology == "punctate" else (1.8, 3.0)
    radius = min(rng.uniform(lo, hi), max(room_mm, lo))
    return radius * rng.uniform(0.85, 1.15, 3)


def _local_layers(body: BodyModel, side: float, phi: float, s: float) -> dict[str, float]:
    radii = body.layers(np.array([theta_of(side, phi)]), s)
    return {name: float(value[0]) for name, value in radii.items()}


def make_deposit(body: BodyModel, rng: np.random.Generator, *, region: str, side: float,
                 phi: float, s: float, layer: str, morphology: str | None = None,
                 allow_elongated: bool = True, like: Deposit | None = None) -> Deposit | None:
    """Plan a deposit at a wall position; ``None`` when the layer there is too thin.

    ``like`` is the deposit whose mirror partner this is: its semi-axes and density are
    copied within +-15 % (a symmetric disease makes similar deposits on both sides, so that
    which of them thick slices and noise let through does not depend on the side).
    """
    if abs(phi - NIPPLE_PHI_S[0]) < 8.0 and abs(s - NIPPLE_PHI_S[1]) < 12.0:
        return None  # keep the nipple look-alike free of deposits
    radii = _local_layers(body, side, phi, s)
    skin = radii["outline"] - radii["skin_inner"]
    fat = radii["skin_inner"] - radii["fascia"]
    morph = morphology or _morphology(rng, layer, allow_elongated)
    if like is not None:
        axes = np.asarray(like.shape.axes_mm) * rng.uniform(0.85, 1.15)
        if layer == "subcutaneous":
            axes[2] = min(axes[2], max((fat - 2.5) / 2, 0.6))
    if layer == "skin":
        axes = axes if like is not None else np.full(3, rng.uniform(0.8, 1.25))
        depth = skin / 2
    elif layer == "subcutaneous":
        if like is None:
            axes = _axes_for(rng, morph, (fat - 2.5) / 2)
        lo, hi = skin + axes[2] + 1.0, skin + fat - axes[2] - 1.5
        if hi < lo:
            return None
        depth = rng.uniform(lo, hi)
    else:
        if like is None:
            axes = _axes_for(rng, morph, 3.0)
        depth = skin + fat + axes[2] + rng.uniform(2.0, 6.0)
    normal, tangent = _frame(body, side, phi)
    radius = radii["outline"] - depth
    center = np.array([body.xc, body.yc, s + Z_OFFSET_MM]) + radius * normal
    rotation = np.column_stack([tangent, [0.0, 0.0, 1.0], normal])
    hu = float(rng.uniform(300, 900))
    if like is not None:
        hu = float(np.clip(like.shape.hu * rng.uniform(0.85, 1.15), 300.0, 900.0))
    shape = Ellipsoid(center, axes, rotation, hu, 0, supersample=4)
    return Deposit(shape, layer, "left" if side > 0 else "right", region, morph, float(depth),
                   float(fat), s, phi)


def _clear(body: BodyModel, candidate: Deposit, placed: list[Deposit], parts: Parts,
           margin: float) -> bool:
    """Apart from the deposits already placed, clear of every bone (all layers) and, in
    muscle, of cartilage, vessels and gas (see :mod:`._clearance`)."""
    c, r = candidate.shape.center_mm, float(candidate.shape.axes_mm.max())
    for other in placed:
        gap = np.linalg.norm(other.shape.center_mm - c) - r - float(other.shape.axes_mm.max())
        if gap < margin:
            return False
    clearance = clearance_of(parts, body)
    if candidate.layer == "muscle" and clearance.other_gap_mm(c, r) < MIN_PART_CLEARANCE_MM:
        return False
    return clearance.bone_gap_mm(c, r) >= MIN_BONE_CLEARANCE_MM


def _random_position(rng, region: str, near=None, spread=(0.0, 0.0)) -> tuple[float, float]:
    (s0, s1), (p0, p1) = REGION_BOXES[region]
    if near is None:
        return float(rng.uniform(s0, s1)), float(rng.uniform(p0, p1))
    s = float(np.clip(near[0] + rng.uniform(-spread[0], spread[0]), s0, s1))
    phi = float(np.clip(near[1] + rng.uniform(-spread[1], spread[1]), p0, p1))
    return s, phi


def _place(body, rng, parts, placed, *, region, side, layer, near=None, spread=(0.0, 0.0),
           allow_elongated=True, morphology=None, like=None, tries=40) -> Deposit | None:
    for _ in range(tries):
        s, phi = _random_position(rng, region, near, spread)
        dep = make_deposit(body, rng, region=region, side=side, phi=phi, s=s, layer=layer,
                           morphology=morphology, allow_elongated=allow_elongated, like=like)
        if dep is not None and _clear(body, dep, placed, parts, MIN_GAP_MM):
            placed.append(dep)
            return dep
    return None


def _mirror_pair(body, rng, parts, placed, region: str, layer: str) -> None:
    """A deposit on a random side and, usually, a partner near its mirror image."""
    sign = float(rng.choice([-1.0, 1.0]))
    first = _place(body, rng, parts, placed, region=region, side=sign, layer=layer)
    if first is None or rng.uniform() < 0.12:
        return
    i = len(placed) - 1
    second = _place(body, rng, parts, placed, region=region, side=-sign, layer=layer,
                    near=(first.s_mm, first.phi_deg), spread=(8.0, 5.0),
                    morphology=first.morphology, like=first)
    if second is not None:
        first.partner, second.partner = len(placed) - 1, i


def plan_generalized(body, rng, parts, count_scale: float = 1.0) -> list[Deposit]:
    """Symmetric skin and subcutaneous deposits in seven regions (the seed case)."""
    placed: list[Deposit] = []
    for region in GENERALIZED_REGIONS:
        for _ in range(max(1, int(round(rng.integers(3, 6) * count_scale)))):
            layer = "skin" if rng.uniform() < 0.25 else "subcutaneous"
            _mirror_pair(body, rng, parts, placed, region, layer)
    return placed


def plan_localized(body, rng, parts, region: str | None, side: str | None,
                   count_scale: float = 1.0) -> list[Deposit]:
    """A one-sided cluster in one region (calcinosis circumscripta)."""
    region = region or str(rng.choice(LOCALIZED_CHOICES))
    sign = {"left": 1.0, "right": -1.0}.get(side or "", float(rng.choice([-1.0, 1.0])))
    placed: list[Deposit] = []
    center = _random_position(rng, region)
    for _ in range(max(1, int(round(rng.integers(6, 11) * count_scale)))):
        layer = "skin" if rng.uniform() < 0.2 else "subcutaneous"
        # circumscripta nodules run larger than the dots of the generalized form
        morph = "punctate" if layer == "skin" or rng.uniform() < 0.4 else "nodular"
        _place(body, rng, parts, placed, region=region, side=sign, layer=layer, near=center,
               spread=(25.0, 10.0), allow_elongated=False, morphology=morph)
    return placed


def plan_deep(body, rng, parts, count_scale: float = 1.0) -> list[Deposit]:
    """Dermatomyositis-like: fewer superficial deposits plus symmetric muscle deposits."""
    placed = plan_generalized(body, rng, parts, 0.5 * count_scale)
    for region in DEEP_MUSCLE_REGIONS:
        for _ in range(max(1, int(round(2 * count_scale)))):
            _mirror_pair(body, rng, parts, placed, region, "muscle")
    return placed


@dataclass
class Lookalike:
    """A dense or deposit-like structure that is not calcinosis cutis."""

    kind: str  # costal_cartilage, vessel_wall, bone_island, granuloma, lung_nodule, nipple
    shape: Ellipsoid | None
    layer: str
    side: str
    label: int | None = None  # tissue label to paint (only for added soft tissue)


def _side_of(body: BodyModel, x: float) -> str:
    if abs(x - body.xc) <= 5.0:
        return "midline"
    return "left" if x > body.xc else "right"


def _point_on_path(path: np.ndarray, u: float) -> tuple[np.ndarray, np.ndarray]:
    seg = np.diff(path, axis=0)
    lengths = np.linalg.norm(seg, axis=1)
    target = u * lengths.sum()
    i = int(np.searchsorted(np.cumsum(lengths), target).clip(0, len(seg) - 1))
    before = lengths[:i].sum()
    frac = (target - before) / max(lengths[i], 1e-9)
    return path[i] + frac * seg[i], seg[i] / max(lengths[i], 1e-9)


def _orthonormal(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([0.0, 0.0, 1.0]) if abs(t[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(t, helper)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(t, e1)


def _cartilage_calcifications(body, rng, parts: Parts, n: int) -> list[Lookalike]:
    out = []
    for idx in rng.choice(len(parts.cartilages), size=min(n, len(parts.cartilages)),
                          replace=False):
        side, path = parts.cartilages[int(idx)]
        center, t = _point_on_path(path, float(rng.uniform(0.25, 0.75)))
        e1, e2 = _orthonormal(t)
        axes = np.array([rng.uniform(1.5, 3.0), rng.uniform(1.2, 2.2), rng.uniform(1.2, 2.2)])
        shape = Ellipsoid(center, axes, np.column_stack([t, e1, e2]),
                          float(rng.uniform(300, 700)), 0, supersample=3)
        out.append(Lookalike("costal_cartilage", shape, "cartilage", _side_of(body, center[0])))
    return out


def _aortic_plaques(body, rng, parts: Parts, n: int) -> list[Lookalike]:
    lengths = np.array([np.linalg.norm(np.diff(p, axis=0), axis=1).sum() for _, p in parts.aorta])
    out = []
    for idx in rng.choice(len(parts.aorta), size=n, p=lengths / lengths.sum()):
        radius, path = parts.aorta[int(idx)]
        point, t = _point_on_path(path, float(rng.uniform(0.1, 0.9)))
        e1, e2 = _orthonormal(t)
        alpha = rng.uniform(0, 2 * np.pi)
        normal = np.cos(alpha) * e1 + np.sin(alpha) * e2
        center = point + (radius * body.size - 1.0) * normal
        axes = np.array([rng.uniform(2.5, 5.0), rng.uniform(2.0, 4.0), rng.uniform(0.8, 1.3)])
        rotation = np.column_stack([t, np.cross(normal, t), normal])
        shape = Ellipsoid(center, axes, rotation, float(rng.uniform(400, 900)), 0, supersample=3)
        out.append(Lookalike("vessel_wall", shape, "vessel", _side_of(body, center[0])))
    return out


def _bone_islands(body, rng, levels: list[tuple[float, float]]) -> list[Lookalike]:
    candidates = [lv for lv in levels if 250.0 < (lv[0] + lv[1]) / 2 < 480.0]
    out = []
    for idx in rng.choice(len(candidates), size=2, replace=False):
        lo, hi = candidates[int(idx)]
        s = (lo + hi) / 2
        center = np.array([body.xc + rng.uniform(-5, 5), body.vb_center_y(s) + rng.uniform(-4, 4),
                           s + Z_OFFSET_MM])
        shape = Ellipsoid(center, np.full(3, rng.uniform(2.5, 3.5)), np.eye(3), 1000.0, 0,
                          supersample=2)
        out.append(Lookalike("bone_island", shape, "bone", _side_of(body, center[0])))
    return out


def _nipples(body: BodyModel, skin_label: int) -> list[Lookalike]:
    out = []
    for side in (-1.0, 1.0):
        phi, s = NIPPLE_PHI_S
        radii = _local_layers(body, side, phi, s)
        normal, tangent = _frame(body, side, phi)
        center = np.array([body.xc, body.yc, s + Z_OFFSET_MM]) \
            + (radii["outline"] + 1.5) * normal
        shape = Ellipsoid(center, np.array([5.0, 5.0, 4.0]),
                          np.column_stack([tangent, [0.0, 0.0, 1.0], normal]), 40.0, skin_label,
                          supersample=2)
        out.append(Lookalike("nipple", shape, "skin", "left" if side > 0 else "right",
                             label=skin_label))
    return out


def _lung_nodules(body: BodyModel, rng: np.random.Generator) -> list[Lookalike]:
    """A calcified granuloma and a soft-tissue nodule, one in each lung."""
    out = []
    specs = [("granuloma", 2.0, 3.5, 650.0, None),
             ("lung_nodule", 3.5, 5.0, 30.0, int(Tissue.VISCERA))]
    for (kind, lo, hi, hu, label), side in zip(specs, rng.permutation([-1.0, 1.0])):
        for _ in range(200):
            center = np.array([body.xc + side * rng.uniform(60, 120) * body.size,
                               body.yc + rng.uniform(-40, 50) * body.size,
                               rng.uniform(380, 520) + Z_OFFSET_MM])
            if in_lung(body, center, hi + 6.0):
                break
        shape = Ellipsoid(center, np.full(3, rng.uniform(lo, hi)), np.eye(3), hu, label or 0,
                          supersample=3)
        out.append(Lookalike(kind, shape, "visceral", _side_of(body, center[0]), label=label))
    return out


def plan_lookalikes(body: BodyModel, rng: np.random.Generator, parts: Parts,
                    levels: list[tuple[float, float]], skin_label: int) -> list[Lookalike]:
    """Costal-cartilage and aortic-wall calcification, bone islands, nipples, lung nodules."""
    return (_cartilage_calcifications(body, rng, parts, 6) + _aortic_plaques(body, rng, parts, 8)
            + _bone_islands(body, rng, levels) + _nipples(body, skin_label)
            + _lung_nodules(body, rng))
