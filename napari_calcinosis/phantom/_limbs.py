"""The arms of the phantom: where each pose puts them, and their exact projection (internal).

An arm is a chain of segments, each a capsule (a cylinder with rounded ends) of skin, fat,
muscle and a bone of cortex and marrow, drawn as concentric :class:`~._shapes.Tube` objects in
the CT. Poses (``PhantomSpec.arms``):

``down``
    hanging beside the trunk, 10 mm of air from it, lying on the table (upper arm and forearm);
``beside``
    abducted: the upper arm and forearm run down and outward, 14 degrees from the vertical,
    so the axilla is open (the usual portable AP film);
``up``
    raised above the head: the upper arm stands beside the shoulder and neck from the level
    of the axilla up, centred front to back.

On a radiograph the arms are not taken from the coarse rendering (whose 2 mm grid would draw
their smooth outline in steps): each arm's line integral is computed exactly on the detector
grid (:func:`limb_projection`). With a beam at right angles to a segment the chord through a
capsule at in-plane distance ``d`` from the segment's projection is ``2 sqrt(R^2 - d^2)``;
the layers nest, so their line integral is a sum of such chords. A segment tilted toward the
beam (an arm seen on a lateral view) is treated as if it were at right angles to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._body import TISSUE_HU, Z_OFFSET_MM, BodyModel, Tissue
from ._shapes import Tube

T = Tissue
ARM_POSES = ("raised", "down", "beside", "up")
CORTEX_MM = 3.0
MARROW_HU = 40.0


@dataclass
class LimbSegment:
    """One capsule of an arm: its axis from ``a`` to ``b`` (LPS mm) and its radii."""

    a: np.ndarray
    b: np.ndarray
    outer_mm: float
    bone_mm: float


@dataclass
class Limb:
    """An arm: its segments and the thickness of its skin and fat (mm)."""

    side: float
    segments: list[LimbSegment]
    skin_mm: float
    fat_mm: float

    def radii_and_hu(self, segment: LimbSegment) -> list[tuple[float, float]]:
        """(radius, HU inside it) from the outside in: skin, fat, muscle, cortex, marrow."""
        r = segment.outer_mm
        return [(r, TISSUE_HU[T.SKIN]), (r - self.skin_mm, TISSUE_HU[T.SUBCUTANEOUS_FAT]),
                (r - self.skin_mm - self.fat_mm, TISSUE_HU[T.MUSCLE]),
                (segment.bone_mm, TISSUE_HU[T.BONE_CORTEX]),
                (segment.bone_mm - CORTEX_MM, MARROW_HU)]


def shoulder_half_width(body: BodyModel) -> float:
    """Widest reach of the shoulders from the body axis (mm)."""
    theta = np.array([0.0, np.pi])
    return max(float(body.outline(theta, s).max()) for s in np.arange(500.0, 601.0, 10.0))


def arm_chain(body: BodyModel, side: float, pose: str) -> list[LimbSegment]:
    """The segments of one arm in a pose (empty for ``raised``: out of the field); the pose
    must be the body's own (its :meth:`~._body.BodyModel.arm_offset`)."""
    k = body.size
    if pose == "up":
        x = body.xc + side * (shoulder_half_width(body) + 12.0 + body.arm_radius(500.0))
        pts = [np.array([x, body.yc, s + Z_OFFSET_MM]) for s in (470.0, 720.0)]
        return [LimbSegment(pts[0], pts[1], body.arm_radius(500.0), 11.0 * k)]
    if pose not in ("down", "beside"):
        return []
    y = body.table_contact_y() - body.arm_radius(420.0)

    def point(s: float) -> np.ndarray:
        return np.array([body.xc + side * body.arm_offset(s), y, s + Z_OFFSET_MM])

    out = []
    for heights, s_radius, bone in (((505.0, 420.0, 330.0), 420.0, 11.0),
                                    ((330.0, 225.0, 120.0), 225.0, 8.0)):
        for s0, s1 in zip(heights[:-1], heights[1:]):
            out.append(LimbSegment(point(s0), point(s1), body.arm_radius(s_radius), bone * k))
    return out


def make_limb(body: BodyModel, side: float, pose: str) -> Limb | None:
    """The arm of one side in a pose, or None when the pose puts it out of the field."""
    segments = arm_chain(body, side, pose)
    if not segments:
        return None
    return Limb(side, segments, body.skin_mm, 0.8 * body.fat_mm)


def limb_tubes(limb: Limb) -> list[Tube]:
    """The arm as concentric CT tubes, layers painted outside-in over every segment so that
    the elbow stays one limb."""
    tubes = []
    for depth_index in range(3):
        for seg in limb.segments:
            radius, hu = limb.radii_and_hu(seg)[depth_index]
            label = (T.SKIN, T.SUBCUTANEOUS_FAT, T.MUSCLE)[depth_index]
            tubes.append(Tube(np.array([seg.a, seg.b]), radius, hu, label))
    for seg in limb.segments:
        tubes.append(Tube(np.array([seg.a, seg.b]), seg.bone_mm, MARROW_HU, T.BONE_MARROW,
                          shell_mm=CORTEX_MM, shell_hu=TISSUE_HU[T.BONE_CORTEX],
                          shell_label=T.BONE_CORTEX))
    return tubes


def limb_extent_x(limb: Limb) -> float:
    """Farthest reach of the arm from x = 0 (mm)."""
    return max(max(abs(seg.a[0]), abs(seg.b[0])) + seg.outer_mm for seg in limb.segments)


def _segment_distance_2d(u: np.ndarray, v: np.ndarray, a: np.ndarray, b: np.ndarray):
    """Distance of points (u, v) to the segment a-b in the detector plane."""
    du, dv = b[0] - a[0], b[1] - a[1]
    length2 = du * du + dv * dv
    t = np.clip(((u - a[0]) * du + (v - a[1]) * dv) / max(length2, 1e-12), 0.0, 1.0)
    return np.hypot(u - a[0] - t * du, v - a[1] - t * dv)


def limb_projection(limbs: list[Limb], z_rows: np.ndarray, cols: np.ndarray, lat_axis: int,
                    p: float, mu_of_hu) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact line integrals of the arms on the detector grid, 3 x 3 supersampled.

    Returns ``(line, body_mm, bone)``: attenuation line integrals (``mu_of_hu`` maps HU to
    1/mm), the path length through the arms (mm) and where the ray crosses an arm's bone.
    """
    shape = (z_rows.size, cols.size)
    line, body_mm = np.zeros(shape), np.zeros(shape)
    bone = np.zeros(shape, dtype=bool)
    sub = p * (np.arange(3) - 1) / 3.0
    for limb in limbs:
        ends = [(np.array([s.a[lat_axis], s.a[2]]), np.array([s.b[lat_axis], s.b[2]]))
                for s in limb.segments]
        reach = max(s.outer_mm for s in limb.segments) + 2 * p
        points = np.array([end for pair in ends for end in pair])
        lat, zs = points[:, 0], points[:, 1]
        c0 = max(int(np.floor((lat.min() - reach - cols[0]) / p)), 0)
        c1 = min(int(np.ceil((lat.max() + reach - cols[0]) / p)) + 1, cols.size)
        r0 = max(int(np.floor((z_rows[0] - (zs.max() + reach)) / p)), 0)
        r1 = min(int(np.ceil((z_rows[0] - (zs.min() - reach)) / p)) + 1, z_rows.size)
        if r1 <= r0 or c1 <= c0:
            continue
        for start in range(r0, r1, 128):
            stop = min(start + 128, r1)
            zz = (z_rows[start:stop, None] + sub[None, :]).reshape(-1)
            ll = (cols[c0:c1, None] + sub[None, :]).reshape(-1)
            vv, uu = np.meshgrid(zz, ll, indexing="ij")
            dist = [_segment_distance_2d(uu, vv, a, b) for a, b in ends]
            levels = [limb.radii_and_hu(seg) for seg in limb.segments]
            chord_line = np.zeros(uu.shape)
            outside_hu = -1000.0
            for n in range(5):
                chord = np.max([2.0 * np.sqrt(np.clip(lv[n][0] ** 2 - d ** 2, 0.0, None))
                                for lv, d in zip(levels, dist)], axis=0)
                hu_in = levels[0][n][1]
                chord_line += (float(mu_of_hu(np.float32(hu_in)))
                               - float(mu_of_hu(np.float32(outside_hu)))) * chord
                outside_hu = hu_in
                if n == 0:
                    outer = chord
                if n == 3:
                    bone_chord = chord
            rows_n, cols_n = stop - start, c1 - c0
            box = (slice(start, stop), slice(c0, c1))
            line[box] += chord_line.reshape(rows_n, 3, cols_n, 3).mean(axis=(1, 3))
            body_mm[box] += outer.reshape(rows_n, 3, cols_n, 3).mean(axis=(1, 3))
            bone[box] |= bone_chord.reshape(rows_n, 3, cols_n, 3).mean(axis=(1, 3)) > 0.5
    return line, body_mm, bone
