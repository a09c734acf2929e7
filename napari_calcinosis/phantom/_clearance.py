"""How far a planned deposit lies from the phantom's bones (internal to the phantom).

A deposit is a calcification *outside* bone only if it keeps clear of every bone on every
grid: one that overlaps or touches a bone is, on the image, part of that bone. The planner
(:mod:`._lesions`) therefore refuses positions closer than
:data:`MIN_BONE_CLEARANCE_MM` (surface to surface) to any bone.

Two kinds of bone are measured differently:

* the parts of :mod:`._parts` (ribs, clavicles, scapular spines, pelvis, femora,
  humeral heads, sacrum): tubes by the exact distance to every segment of their polyline,
  ellipsoids by a lower bound of the distance (``(rho - 1) * smallest semi-axis``, where
  ``rho`` is the point's normalised radius);
* the bones drawn slice by slice in :mod:`._slice` (vertebrae with their processes,
  sternum, scapular blades): rendered by the same code on a 1 mm grid around the deposit,
  where any voxel raised by at least :data:`_BONE_RISE_HU` counts as bone (this includes the
  thinning edge of a scapular blade, which never gets a bone label but is dense).

Distances are measured from the deposit's centre and its largest semi-axis (a bounding
sphere), so they are lower bounds of the true surface gap.
"""

from __future__ import annotations

import numpy as np

from ._body import Z_OFFSET_MM, BodyModel, Tissue
from ._parts import Parts
from ._shapes import Ellipsoid, VoxelGrid
from ._slice import THETA_GRID, bone_slice, make_context, near_slice_bones

#: Smallest surface-to-surface gap between a deposit and any bone (mm).
MIN_BONE_CLEARANCE_MM = 4.0
#: Smallest gap between a muscle deposit and cartilage, vessels or gas (keeps its layer).
MIN_PART_CLEARANCE_MM = 6.0
BONE_LABELS = (int(Tissue.BONE_CORTEX), int(Tissue.BONE_MARROW))
_SOFT_LABELS = (int(Tissue.SKIN), int(Tissue.SUBCUTANEOUS_FAT), int(Tissue.MUSCLE))
_BONE_RISE_HU = 100.0
_STEP_MM = 1.0


def polyline_distance_mm(points_mm: np.ndarray, point: np.ndarray) -> float:
    """Shortest distance from ``point`` to a polyline (its segments, not only its corners)."""
    pts = np.asarray(points_mm, float)
    return float(np.min(_segment_distances(pts[:-1], pts[1:] - pts[:-1], point)))


def _segment_distances(a: np.ndarray, ab: np.ndarray, point: np.ndarray) -> np.ndarray:
    rel = np.asarray(point, float) - a
    t = np.einsum("ij,ij->i", rel, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12)
    return np.linalg.norm(rel - np.clip(t, 0.0, 1.0)[:, None] * ab, axis=1)


def ellipsoid_gap_mm(ell: Ellipsoid, point: np.ndarray) -> float:
    """A lower bound of the distance from ``point`` to an ellipsoid's surface (<= 0 inside).

    For any point ``q`` of the ellipsoid, ``|A^-1 (p - q)| <= |p - q| / min(axes)``, so the
    distance is at least ``(rho(p) - 1) * min(axes)``.
    """
    local = ell.rotation.T @ (np.asarray(point, float) - ell.center_mm)
    rho = float(np.linalg.norm(local / ell.axes_mm))
    return (rho - 1.0) * float(np.min(ell.axes_mm))


def slice_bone_distance_mm(body: BodyModel, point: np.ndarray, reach_mm: float) -> float:
    """Distance from ``point`` to the nearest slice-drawn bone voxel within ``reach_mm``.

    The vertebrae, sternum and scapular blades are rendered on a 1 mm grid (1 mm slices)
    around the point with the phantom's own slice code; ``inf`` when none is within reach.
    """
    if not near_slice_bones(body, point, reach_mm):
        return np.inf
    offsets = np.arange(-reach_mm, reach_mm + 1e-9, _STEP_MM)
    c = np.asarray(point, float)
    grid = VoxelGrid(c[2] + offsets, c[1] + offsets, c[0] + offsets, _STEP_MM)
    ctx = make_context(grid, body, np.random.default_rng(0))
    # the body layers only at the ray angles of this small grid (the rest stay -inf)
    used = np.unique(ctx.theta_idx)
    fascia = np.full(THETA_GRID.shape, -np.inf)
    best = np.inf
    for k, z in enumerate(grid.z_mm):
        s = float(z) - Z_OFFSET_MM
        fascia[used] = body.layers(THETA_GRID[used], s)["fascia"]
        hu = bone_slice(ctx, s, {"fascia": fascia})
        iy, ix = np.nonzero(hu >= _BONE_RISE_HU)
        if iy.size:
            d = np.sqrt(offsets[k] ** 2 + offsets[iy] ** 2 + offsets[ix] ** 2)
            best = min(best, float(d.min()))
    return best


class BoneClearance:
    """Gaps between spheres and the bones (and other hard parts) of one phantom body.

    Built once per body: the segments of every tube and the ellipsoids are stacked so that
    each query is a few array operations.
    """

    def __init__(self, body: BodyModel, parts: Parts) -> None:
        self.body = body
        segs: dict[bool, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {True: [],
                                                                              False: []}
        for tube in parts.tubes:
            if int(tube.label) in _SOFT_LABELS:
                continue  # the skin, fat and muscle of an arm
            pts = np.asarray(tube.points_mm, float)
            segs[int(tube.label) in BONE_LABELS].append(
                (pts[:-1], pts[1:] - pts[:-1], np.full(len(pts) - 1, tube.radius_mm)))
        self._segments = {k: tuple(np.concatenate(col) for col in zip(*v)) if v else None
                          for k, v in segs.items()}
        self._ellipsoids = {k: [e for e in parts.ellipsoids
                                if (int(e.label) in BONE_LABELS) == k
                                and int(e.label) not in _SOFT_LABELS] for k in (True, False)}

    def _part_gap(self, bone: bool, point: np.ndarray) -> float:
        gap = np.inf
        if self._segments[bone] is not None:
            a, ab, radius = self._segments[bone]
            gap = float(np.min(_segment_distances(a, ab, point) - radius))
        for ell in self._ellipsoids[bone]:
            gap = min(gap, ellipsoid_gap_mm(ell, point))
        return gap

    def bone_gap_mm(self, center: np.ndarray, radius_mm: float) -> float:
        """Lower bound of the gap between a sphere and the nearest bone (mm, < 0: overlap).

        Slice-drawn bones are only searched out to ``MIN_BONE_CLEARANCE_MM`` beyond the
        sphere, so larger gaps are reported as at least that much.
        """
        center = np.asarray(center, float)
        # a voxel centre stands for a 1 mm cube: its nearest point may be half a diagonal
        # closer
        voxel = 0.5 * np.sqrt(3.0) * _STEP_MM
        reach = radius_mm + MIN_BONE_CLEARANCE_MM + voxel + _STEP_MM
        slice_bone = slice_bone_distance_mm(self.body, center, reach) - voxel
        return float(min(self._part_gap(True, center), slice_bone) - radius_mm)

    def other_gap_mm(self, center: np.ndarray, radius_mm: float) -> float:
        """Gap between a sphere and the nearest cartilage, vessel or gas part (mm)."""
        return self._part_gap(False, np.asarray(center, float)) - radius_mm


def clearance_of(parts: Parts, body: BodyModel) -> BoneClearance:
    """The :class:`BoneClearance` of a body's parts, built once and kept on ``parts``."""
    if parts.clearance_cache is None:
        parts.clearance_cache = BoneClearance(body, parts)
    return parts.clearance_cache
