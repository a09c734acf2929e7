"""Deposits in the skin and fat of the arms (internal): region ``upper_limb``.

A position on an arm is a segment, a fraction along its axis and an angle ``psi`` about the
axis: 0 toward the patient's side (away from the trunk), 90 degrees anterior, 180 toward the
trunk. On a frontal radiograph a deposit near psi = 0 or 180 is seen tangentially at the
arm's outline and one near +-90 en face over the arm. Deposits come in mirrored pairs like
those of the trunk (:func:`._lesions._mirror_pair`), at least 25 mm from the rounded end of
the arm.
"""

from __future__ import annotations

import numpy as np

from ._body import Z_OFFSET_MM, BodyModel
from ._lesions import MIN_GAP_MM, Deposit, _axes_for, _clear, _morphology
from ._limbs import Limb
from ._parts import Parts
from ._shapes import Ellipsoid

REGION = "upper_limb"
TOP_S_MM = 590.0


def _frame(limb: Limb, seg_index: int, u: float, psi_deg: float):
    """Axis point, outward normal, circumferential tangent and axis direction."""
    seg = limb.segments[seg_index]
    axis = seg.b - seg.a
    along = axis / np.linalg.norm(axis)
    lateral = np.array([limb.side, 0.0, 0.0])
    lateral -= (lateral @ along) * along
    lateral /= np.linalg.norm(lateral)
    anterior = np.cross(along, lateral)
    if anterior[1] > 0:  # LPS: anterior is -y
        anterior = -anterior
    psi = np.radians(psi_deg)
    normal = np.cos(psi) * lateral + np.sin(psi) * anterior
    tangent = np.cross(along, normal)
    return seg.a + u * axis, normal, tangent, along


def limb_deposit(body: BodyModel, rng: np.random.Generator, limb: Limb, *, seg_index: int,
                 u: float, psi_deg: float, layer: str, like: Deposit | None = None
                 ) -> Deposit | None:
    """Plan one deposit on an arm; ``None`` when its fat is too thin for it."""
    seg = limb.segments[seg_index]
    skin, fat = limb.skin_mm, limb.fat_mm
    morph = like.morphology if like is not None else _morphology(rng, layer, True)
    if like is not None:
        axes = np.asarray(like.shape.axes_mm) * rng.uniform(0.85, 1.15)
    elif layer == "skin":
        axes = np.full(3, rng.uniform(0.8, 1.25))
    else:
        axes = _axes_for(rng, morph, (fat - 2.5) / 2)
    if layer == "skin":
        depth = skin / 2
    else:
        axes[2] = min(axes[2], max((fat - 2.5) / 2, 0.6))
        lo, hi = skin + axes[2] + 1.0, skin + fat - axes[2] - 1.5
        if hi < lo:
            return None
        depth = float(rng.uniform(lo, hi))
    point, normal, tangent, along = _frame(limb, seg_index, u, psi_deg)
    center = point + (seg.outer_mm - depth) * normal
    hu = float(rng.uniform(300, 900)) if like is None else \
        float(np.clip(like.shape.hu * rng.uniform(0.85, 1.15), 300.0, 900.0))
    shape = Ellipsoid(center, axes, np.column_stack([tangent, along, normal]), hu, 0,
                      supersample=4)
    return Deposit(shape, layer, "left" if limb.side > 0 else "right", REGION, morph,
                   float(depth), float(fat), float(center[2] - Z_OFFSET_MM), float(psi_deg))


def _place(body, rng, parts: Parts, placed: list[Deposit], limb: Limb, *, layer: str,
           near=None, like=None, tries=30) -> Deposit | None:
    for _ in range(tries):
        if near is None:
            seg_index = int(rng.integers(len(limb.segments)))
            u, psi = float(rng.uniform(0.0, 1.0)), float(rng.uniform(-180.0, 180.0))
        else:
            seg_index = near[0]
            u = float(np.clip(near[1] + rng.uniform(-0.05, 0.05), 0.0, 1.0))
            psi = near[2] + float(rng.uniform(-8.0, 8.0))
        dep = limb_deposit(body, rng, limb, seg_index=seg_index, u=u, psi_deg=psi,
                           layer=layer, like=like)
        if dep is None or not _away_from_ends(dep, limb) or not _clear(
                body, dep, placed, parts, MIN_GAP_MM):
            continue
        placed.append(dep)
        return dep
    return None


def _away_from_ends(dep: Deposit, limb: Limb) -> bool:
    """At least 25 mm from both rounded ends of the arm (the stump and the wrist), and not
    above the top of the shoulders (an arm raised runs on out of any chest field)."""
    top = max(limb.segments[0].a[2], limb.segments[-1].b[2])
    bottom = min(limb.segments[0].a[2], limb.segments[-1].b[2])
    z = dep.shape.center_mm[2]
    return bool(bottom + 25.0 <= z <= min(top - 25.0, TOP_S_MM + Z_OFFSET_MM))


def plan_limb_deposits(body: BodyModel, rng: np.random.Generator, parts: Parts,
                       placed: list[Deposit], count_scale: float = 1.0) -> list[Deposit]:
    """Mirrored pairs of skin and subcutaneous deposits on the arms in the field (appended to
    ``placed``, which the clearance checks against); returns the new ones."""
    by_side = {limb.side: limb for limb in parts.limbs}
    if set(by_side) != {-1.0, 1.0}:
        return []
    start = len(placed)
    for _ in range(max(1, int(round(rng.integers(4, 7) * count_scale)))):
        layer = "skin" if rng.uniform() < 0.25 else "subcutaneous"
        sign = float(rng.choice([-1.0, 1.0]))
        first = _place(body, rng, parts, placed, by_side[sign], layer=layer)
        if first is None:
            continue
        i = len(placed) - 1
        limb = by_side[sign]
        seg_index, u = _where(first, limb)
        second = _place(body, rng, parts, placed, by_side[-sign], layer=layer,
                        near=(seg_index, u, first.phi_deg), like=first)
        if second is not None:
            first.partner, second.partner = len(placed) - 1, i
    return placed[start:]


def _where(dep: Deposit, limb: Limb) -> tuple[int, float]:
    """The segment and fraction along it nearest a deposit's centre."""
    best = (0, 0.0, np.inf)
    for k, seg in enumerate(limb.segments):
        axis = seg.b - seg.a
        u = float(np.clip((dep.shape.center_mm - seg.a) @ axis / (axis @ axis), 0.0, 1.0))
        gap = float(np.linalg.norm(seg.a + u * axis - dep.shape.center_mm))
        if gap < best[2]:
            best = (k, u, gap)
    return best[0], best[1]
