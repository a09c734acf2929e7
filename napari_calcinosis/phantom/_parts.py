"""Skeleton, aorta and bowel gas of the phantom as tubes and ellipsoids (internal).

Ribs sweep around the chest wall from the spine, descending toward the front, and continue as
costal cartilage to the sternum (ribs 1-7) or toward the costal margin (8-10); ribs 11-12 float.
Clavicles, scapular spines, humeral heads, the pelvis (iliac wings, sacrum, femoral heads and
shafts, ischia, pubic rami), the arms (:mod:`._limbs`) and the aorta (ascending, arch,
descending, abdominal, iliac arteries) complete the parts that are not rendered slice by slice.

Positions on the body wall use ``phi``: the angle in degrees from the anterior midline (0)
through the patient's side (90) to the posterior midline (180), with ``side`` +1 for the
patient's left (+x) and -1 for the right.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ._body import CAVITY_B_ANT, KNOTS_S, TISSUE_HU, Z_OFFSET_MM, BodyModel, Tissue, interp
from ._limbs import Limb, limb_tubes, make_limb
from ._shapes import Ellipsoid, Tube

T = Tissue
RIB_RADIUS_MM = 4.5
CARTILAGE_RADIUS_MM = 5.0


def theta_of(side: float, phi_deg: float) -> float:
    """Ray angle about the body axis for a wall position (see module docstring)."""
    return np.radians(-90.0 + side * phi_deg)


def wall_point(body: BodyModel, side: float, phi_deg: float, s: float, *,
               boundary: str, offset_mm: float) -> np.ndarray:
    """LPS point at ``offset_mm`` outward (+) or inward (-) of a layer boundary on a ray."""
    theta = np.array([theta_of(side, phi_deg)])
    radius = float(body.layers(theta, s)[boundary][0]) + offset_mm
    return np.array([body.xc + radius * np.cos(theta[0]), body.yc + radius * np.sin(theta[0]),
                     s + Z_OFFSET_MM])


def _pt(body: BodyModel, x: float, y: float, s: float) -> np.ndarray:
    """LPS point from body-relative in-plane offsets (scaled by body size) and height."""
    return np.array([body.xc + x * body.size, body.yc + y * body.size, s + Z_OFFSET_MM])


@dataclass
class Parts:
    """Everything rendered as tubes and ellipsoids, plus the paths look-alikes sit on."""

    tubes: list[Tube] = field(default_factory=list)
    ellipsoids: list[Ellipsoid] = field(default_factory=list)
    cartilages: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (side, path)
    aorta: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (radius, path)
    #: The arms in the field (:mod:`._limbs`); their tubes are the last of ``tubes``.
    limbs: list[Limb] = field(default_factory=list)
    #: The :class:`._clearance.BoneClearance` of these parts, built once on first use.
    clearance_cache: object = field(default=None, repr=False, compare=False)


def _bone_tube(points, radius, marrow_hu=250.0, cortex_mm=1.2) -> Tube:
    return Tube(np.asarray(points), radius, marrow_hu, T.BONE_MARROW, shell_mm=cortex_mm,
                shell_hu=TISSUE_HU[T.BONE_CORTEX], shell_label=T.BONE_CORTEX)


def _bone_ellipsoid(center, axes, rotation=None, marrow_hu=250.0, cortex_mm=1.5) -> Ellipsoid:
    return Ellipsoid(np.asarray(center, float), np.asarray(axes, float),
                     np.eye(3) if rotation is None else rotation, marrow_hu, T.BONE_MARROW,
                     cortex_mm, TISSUE_HU[T.BONE_CORTEX], T.BONE_CORTEX)


_RIB_DROP = [35, 50, 60, 65, 70, 70, 70, 70, 65, 60, 45, 35]
_RIB_END = [150, 150, 150, 150, 150, 150, 150, 140, 130, 120, 95, 70]
_STERNAL_ATTACH = [515, 500, 482, 462, 442, 420, 398]


def _rib(body: BodyModel, n: int, side: float) -> tuple[Tube, Tube | None]:
    s0 = 578.0 - 20.0 * (n - 1)
    phi0, phi_end, drop = 30.0, float(_RIB_END[n - 1]), float(_RIB_DROP[n - 1])
    r_vb, y_vb = body.vb_radius(s0), body.vb_center_y(s0)
    # head on the vertebral body, tubercle at the transverse process, then around the wall
    head = np.array([body.xc + side * (1.15 * r_vb + 3.0), y_vb + 0.3 * r_vb, s0 + Z_OFFSET_MM])
    tubercle = np.array([body.xc + side * (1.15 * r_vb + 22.0 * body.size),
                         y_vb + r_vb + 9.0 * body.size, s0 + 2.0 + Z_OFFSET_MM])
    pts = [head, tubercle]
    for phi in np.arange(phi0, phi_end + 1e-6, 6.0):
        s = s0 - drop * ((phi - phi0) / (180.0 - phi0)) ** 1.4
        pts.append(wall_point(body, side, 180.0 - phi, s, boundary="cavity",
                              offset_mm=RIB_RADIUS_MM + 0.7))
    rib = _bone_tube(pts, RIB_RADIUS_MM)
    if n > 10:
        return rib, None
    end_s = pts[-1][2] - Z_OFFSET_MM
    if n <= 7:
        att_s = float(_STERNAL_ATTACH[n - 1])
        mid_phi = 0.5 * ((180.0 - phi_end) + 10.0)
        cart = [pts[-1],
                wall_point(body, side, mid_phi, 0.5 * (end_s + att_s), boundary="cavity",
                           offset_mm=CARTILAGE_RADIUS_MM + 0.5)]
        sternum_y = body.yc - body.size * interp(att_s, KNOTS_S, CAVITY_B_ANT) - 6.0
        cart.append(np.array([body.xc + side * (15.0 * body.size + 3.0), sternum_y,
                              att_s + Z_OFFSET_MM]))
    else:
        cart = [pts[-1], wall_point(body, side, 180.0 - phi_end - 18.0, end_s + 14.0,
                                    boundary="cavity", offset_mm=CARTILAGE_RADIUS_MM + 0.5),
                wall_point(body, side, 180.0 - phi_end - 32.0, end_s + 30.0,
                           boundary="cavity", offset_mm=CARTILAGE_RADIUS_MM + 0.5)]
    cartilage = Tube(np.asarray(cart), CARTILAGE_RADIUS_MM, TISSUE_HU[T.CARTILAGE],
                     T.CARTILAGE)
    return rib, cartilage


def _shoulder(body: BodyModel, side: float, parts: Parts) -> None:
    clavicle = [wall_point(body, side, phi, s, boundary="fascia", offset_mm=-7.5)
                for phi, s in ((12, 528), (35, 533), (60, 540), (80, 550))]
    parts.tubes.append(_bone_tube(clavicle, 6.5, marrow_hu=300.0))
    spine = [clavicle[-1]] + [wall_point(body, side, phi, s, boundary="fascia", offset_mm=-9.0)
                              for phi, s in ((100, 550), (122, 546), (142, 540))]
    parts.tubes.append(_bone_tube(spine, 5.0, marrow_hu=350.0))
    parts.ellipsoids.append(_bone_ellipsoid(_pt(body, side * 134, 2, 545), (23, 23, 23)))


def _plate_rotation(long_dir, second_dir) -> np.ndarray:
    a = np.asarray(long_dir, float)
    a /= np.linalg.norm(a)
    b = np.asarray(second_dir, float)
    b = b - (b @ a) * a
    b /= np.linalg.norm(b)
    return np.column_stack([a, b, np.cross(a, b)])


def _pelvis(body: BodyModel, side: float, parts: Parts) -> None:
    k = body.size
    wing = _plate_rotation((side * 0.61, -0.79, 0.0), (0, 0, 1))
    parts.ellipsoids.append(_bone_ellipsoid(_pt(body, side * 75, 10, 165), (60 * k, 40, 6),
                                            wing))
    parts.ellipsoids.append(_bone_ellipsoid(_pt(body, side * 88, 5, 85), (23 * k,) * 3,
                                            marrow_hu=280.0))
    parts.tubes.append(_bone_tube([_pt(body, side * 88, 5, 85), _pt(body, side * 122, 8, 62)],
                                  14.0 * k, cortex_mm=3.0))
    parts.tubes.append(_bone_tube([_pt(body, side * 122, 8, 62), _pt(body, side * 128, 10, -30)],
                                  13.0 * k, marrow_hu=40.0, cortex_mm=4.0))
    parts.tubes.append(_bone_tube([_pt(body, side * 48, 30, 90), _pt(body, side * 52, 42, 35)],
                                  10.0 * k))
    parts.tubes.append(_bone_tube([_pt(body, side * 80, -10, 85), _pt(body, side * 35, -45, 65),
                                   _pt(body, side * 4, -50, 60)], 9.0 * k))


def _aorta(body: BodyModel, parts: Parts) -> None:
    def spine_side(s: float, lateral: float, front: float) -> np.ndarray:
        y = body.vb_center_y(s) - front * body.vb_radius(s)
        return np.array([body.xc + lateral, y, s + Z_OFFSET_MM])

    asc = [_pt(body, -12, -30, 400), _pt(body, -14, -34, 440), _pt(body, -12, -34, 480),
           _pt(body, -4, -24, 497), _pt(body, 8, -5, 503), _pt(body, 18, 12, 498)]
    desc = [spine_side(s, 1.15 * body.vb_radius(s) + 14.0, 0.1) for s in (485, 440, 390, 350)]
    abd = [spine_side(s, 14.0, 1.0 + 12.0 / body.vb_radius(s)) for s in (335, 290, 250, 215)]
    segments = [(14.0, asc + desc[:1]), (12.0, desc + abd[:1]), (10.0, abd)]
    for sign in (-1.0, 1.0):
        segments.append((6.0, [abd[-1], _pt(body, sign * 35, 10, 170),
                               _pt(body, sign * 60, 15, 115)]))
    for radius, path in segments:
        path = np.asarray(path)
        parts.aorta.append((radius, path))
        parts.tubes.append(Tube(path, radius * body.size, TISSUE_HU[T.VESSEL], T.VESSEL))


def _bowel_gas(body: BodyModel, rng: np.random.Generator, parts: Parts) -> None:
    for _ in range(12):
        center = _pt(body, rng.uniform(-70, 70), rng.uniform(-55, 5), rng.uniform(110, 280))
        axes = rng.uniform(4.0, 11.0, 3)
        parts.ellipsoids.append(Ellipsoid(center, axes, np.eye(3), TISSUE_HU[T.GAS], T.GAS))


def in_lung(body: BodyModel, point: np.ndarray, margin_mm: float) -> bool:
    """Whether an LPS point lies inside a lung, at least ``margin_mm`` from its edges."""
    s = float(point[2] - Z_OFFSET_MM)
    dx, dy = point[0] - body.xc, point[1] - body.yc
    theta = np.array([np.arctan2(dy, dx)])
    cavity = float(body.layers(theta, s)["cavity"][0])
    dome = float(body.dome_s(np.array([point[0]]), np.array([point[1]]))[0])
    lateral = abs(dx) - (30.0 + 26.0) * body.size  # mediastinum, heart and spine
    return bool(np.hypot(dx, dy) < cavity - margin_mm and s > dome + margin_mm
                and lateral > margin_mm and s < 575.0 - margin_mm)


def _lung_vessels(body: BodyModel, rng: np.random.Generator, parts: Parts) -> None:
    """Pulmonary vessels branching from each hilum: lung markings on both modalities."""
    for side in (-1.0, 1.0):
        stack = [(_pt(body, side * 62, 5, 455), np.array([side * 0.8, 0.0, 0.6]), 4.5, 0),
                 (_pt(body, side * 62, 5, 425), np.array([side * 0.9, 0.0, 0.0]), 5.0, 0),
                 (_pt(body, side * 62, 10, 405), np.array([side * 0.6, 0.2, -0.8]), 5.0, 0)]
        while stack:
            start, direction, radius, generation = stack.pop()
            for _ in range(3 if generation < 4 else 0):
                for _try in range(4):
                    turn = direction + rng.normal(0.0, 0.6, 3)
                    turn[0] = side * abs(turn[0])
                    turn /= np.linalg.norm(turn)
                    end = start + rng.uniform(18.0, 34.0) * turn
                    if in_lung(body, end, radius + 2.0):
                        break
                else:
                    continue
                parts.tubes.append(Tube(np.array([start, end]), radius, TISSUE_HU[T.VESSEL],
                                        T.VESSEL))
                stack.append((end, turn, max(radius * 0.72, 1.0), generation + 1))


def build_parts(body: BodyModel, rng: np.random.Generator) -> Parts:
    """All tubes and ellipsoids of one body (deterministic given ``rng``)."""
    parts = Parts()
    for side in (-1.0, 1.0):
        for n in range(1, 13):
            rib, cartilage = _rib(body, n, side)
            parts.tubes.append(rib)
            if cartilage is not None:
                parts.tubes.append(cartilage)
                parts.cartilages.append((side, cartilage.points_mm))
        _shoulder(body, side, parts)
        _pelvis(body, side, parts)
    sacrum = _plate_rotation((0, 0.45, -0.89), (1, 0, 0))
    parts.ellipsoids.append(_bone_ellipsoid(_pt(body, 0, 52, 140), (48, 42, 12), sacrum))
    _aorta(body, parts)
    _bowel_gas(body, rng, parts)
    _lung_vessels(body, rng, parts)
    for side in (-1.0, 1.0):
        limb = make_limb(body, side, body.arm_pose)
        if limb is not None:  # its tubes are the CT's; a radiograph projects the limb itself
            parts.limbs.append(limb)
            parts.tubes.extend(limb_tubes(limb))
    return parts


def without_limbs(parts: Parts) -> Parts:
    """The same parts without the arms' tubes (a radiograph adds the arms exactly)."""
    limb_ids = {id(t) for t in parts.tubes[len(parts.tubes) - _limb_tube_count(parts):]}
    return replace(parts, tubes=[t for t in parts.tubes if id(t) not in limb_ids],
                   clearance_cache=None)


def _limb_tube_count(parts: Parts) -> int:
    return sum(4 * len(limb.segments) for limb in parts.limbs)
