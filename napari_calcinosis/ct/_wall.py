"""The body wall and the cavities inside it, slice by slice on the coarse grid.

Calcinosis cutis lives in the skin and the subcutaneous fat, sometimes in fascia and muscle;
it never lies inside the thoracic, abdominal or pelvic cavity, where the vessels, bowel,
kidneys and lungs are. So the trunk of each slice is read as a radiologist reads it, along
rays from its centre to the skin:

* the **skin** is the outer ``skin_thickness_mm``;
* the **subcutaneous fat** is the run of fat that follows it (septa and small vessels under
  ``_GAP_MM`` do not end it); its inner end is the **fascia**;
* the **muscle wall** is the run of muscle and bone that follows (ribs, intercostal and
  abdominal wall muscles), ending where fat begins again for ``_FAT_STOP_MM`` (the
  extraperitoneal and visceral fat), or at lung or gas. Where an organ lies on the wall
  there is no fat between them: the wall then ends just behind its innermost bone (the ribs
  over the liver and spleen, the pelvic bone), and where it has none (bowel on the abdominal
  wall) it takes its thickness from the median over ``_MEDIAN_DEG`` of neighbouring rays
  that were measured, at most ``_WALL_MAX_MM``;
* what lies beyond a bone seen from the centre is wall: the back muscles behind the spine,
  the buttocks behind the pelvic bones, a shoulder beyond the ribs (the kidneys beside the
  spine are not behind it);
* everything deeper is **cavity**; so are the lungs, gas inside the trunk, and the hull of
  the lungs (the mediastinum).

Limbs (arms, legs) have no cavity: skin, then fat joined to the skin, then muscle and bone.
Rays that reach an edge of the field of view before the skin (a cropped reconstruction) take
their wall from their neighbours; where the field of view cuts the body, no tissue is skin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_calcinosis.types import CTParams

from ._body import LIMB, TRUNK, Body
from ._grid import run_parallel
from ._morphology import convex_hull, edt_mm

__all__ = ["WallModel", "wall_model"]

_N_RAYS = 180
_STEP_MM = 1.0
_GAP_MM = 2.5
_FAT_START_MM = 3.0
_FAT_STOP_MM = 4.0
_MEDIAN_DEG = 40.0
_WALL_MIN_MM = 4.0
_WALL_MAX_MM = 45.0
_BONE_FROM_CENTRE_MM = 10.0
_BONE_REACH_MM = 45.0
_BEHIND_BONE_MM = 3.0
_CAVITY_SMOOTH_DEG = 12.0
_CAGE_REACH_MM = 25.0
_CAGE_REACH_Z_MM = 60.0
_NEAR_AIRWAY_MM = 35.0
_NECK_CORE_MM = 40.0
_NECK_MUSCLE_MM = 8.0
_LUNG_MIN_BLOCKS = 20
_FASCIA_SMOOTH_DEG = 8.0
_CENTRE_CLEAR_MM = 15.0
_CENTRE_SHIFT_MAX_MM = 100.0
_BACK_HALF_WIDTH_MM = 62.0
_VERTEBRA_DEPTH_MM = 15.0


@dataclass
class WallModel:
    """Per coarse block: skin, subcutaneous fat, wall, cavity (booleans, coarse shape).

    ``fascia_depth_mm`` is, per block of the trunk, the depth of the fascia (skin plus
    subcutaneous fat) below the outline along the block's ray; NaN elsewhere.
    """

    skin: np.ndarray
    subcutaneous: np.ndarray
    wall: np.ndarray
    cavity: np.ndarray
    depth_mm: np.ndarray  # below the outside air (inf where no air is near: a cut edge)


def wall_model(hu_c: np.ndarray, body: Body, bone: np.ndarray, spacing_zyx, *,
               posterior_rc: np.ndarray, params: CTParams, slice_axis_up: bool = True
               ) -> WallModel:
    """Skin, subcutaneous fat, wall and cavity of every slice (module docstring).

    Parameters
    ----------
    hu_c : numpy.ndarray
        Block-mean HU.
    body : Body
        From :func:`._body.find_body`.
    bone : numpy.ndarray
        Coarse bone mask.
    spacing_zyx : tuple of float
        Block size (mm).
    posterior_rc : numpy.ndarray
        Unit (row, column) vector toward the patient's back.
    params : CTParams
        ``skin_thickness_mm`` and ``fat_range_hu``.
    slice_axis_up : bool
        True when slices ascend toward the head (the usual axial stack).
    """
    shape = hu_c.shape
    slice_mm, spacing_yx = float(spacing_zyx[0]), tuple(spacing_zyx[1:])
    out = WallModel(*(np.zeros(shape, bool) for _ in range(4)),
                    depth_mm=np.full(shape, np.inf, np.float32))
    # block means (four samples each) are quiet enough to tell fat from muscle; smoothing
    # more would erase a thin muscle layer on a coarse grid
    smooth = np.clip(hu_c, -1000.0, 400.0)
    lo, hi = params.fat_range_hu
    fat = (smooth >= lo - 40.0) & (smooth <= hi + 10.0)
    zones = _zones(body.lungs, slice_axis_up)
    # the outer ring of blocks is skin even when a block is thicker than the skin: the
    # subcutaneous fat is what follows it
    skin_mm = max(params.skin_thickness_mm, 1.01 * max(spacing_yx))
    cage = _cage_bones(bone, body.lungs, (slice_mm, *spacing_yx),
                       workers=max(1, int(params.workers)))

    def one(k: int) -> None:  # writes slice k of ``out`` only: slices run in threads
        if not body.body[k].any():
            return
        depth = edt_mm(~body.outside[k], spacing_yx)
        depth[~body.body[k]] = 0.0
        out.depth_mm[k] = depth
        skin = body.body[k] & (depth <= skin_mm)
        limb = body.parts[k] == LIMB
        trunk = body.parts[k] == TRUNK
        inner_air = body.lungs[k] | body.gas[k]
        if limb.any():
            _limb_layers(out, k, limb & ~bone[k], skin, fat[k])
        if trunk.any():
            _trunk_layers(out, k, trunk, skin, skin_mm, smooth[k], fat[k], bone[k], inner_air,
                          body.lungs[k], body.cut[k], spacing_yx, posterior_rc, params,
                          zones[k], cage[k])

    run_parallel(one, range(shape[0]), max(1, int(params.workers)))
    return out


def _cage_bones(bone: np.ndarray, lungs: np.ndarray, spacing, workers: int = 1
                ) -> np.ndarray:
    """Bone within ``_CAGE_REACH_MM`` in-plane of a lung in this slice or one within
    ``_CAGE_REACH_Z_MM``: ribs, sternum, spine, the costal margin below the lung bases; not
    the humerus of an arm beside the chest."""
    if not lungs.any():
        return np.zeros_like(bone)
    reach = max(1, int(round(_CAGE_REACH_Z_MM / spacing[0])))
    near = ndi.maximum_filter1d(lungs, size=2 * reach + 1, axis=0)
    out = np.zeros_like(bone)

    def one(k: int) -> None:  # slice k of ``out`` only: slices run in threads
        out[k] = bone[k] & (edt_mm(~near[k], spacing[1:]) <= _CAGE_REACH_MM)

    run_parallel(one, np.flatnonzero(near.any(axis=(1, 2)) & bone.any(axis=(1, 2))), workers)
    return out


def _zones(lungs: np.ndarray, slice_axis_up: bool) -> list[str]:
    """Per slice: ``thorax`` (the lungs' longest run of slices), ``neck`` (above it) or
    ``abdomen`` (below it). A few slices of air-filled pharynx or mouth taken for lung above
    the neck do not move the neck into the head."""
    has = lungs.reshape(len(lungs), -1).sum(axis=1) >= _LUNG_MIN_BLOCKS
    zones = ["abdomen"] * len(has)
    labels, n = ndi.label(has)
    if n:
        run = 1 + int(np.argmax(np.bincount(labels)[1:]))
        ks = np.flatnonzero(labels == run)
        for k in ks:
            zones[k] = "thorax"
        above = range(ks.max() + 1, len(zones)) if slice_axis_up else range(0, ks.min())
        for k in above:
            zones[k] = "neck"
    return zones


def _limb_layers(out: WallModel, k: int, limb: np.ndarray, skin: np.ndarray,
                 fat: np.ndarray) -> None:
    out.skin[k] |= skin & limb
    joined = _connected_to(fat & limb & ~skin, ndi.binary_dilation(skin & limb))
    out.subcutaneous[k] |= joined
    out.wall[k] |= limb & ~skin & ~joined


def _connected_to(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    labels, n = ndi.label(mask)
    if n == 0:
        return mask
    hit = np.zeros(n + 1, bool)
    hit[labels[seeds & mask]] = True
    hit[0] = False
    return hit[labels]


def _near(mask: np.ndarray, mm: float, spacing) -> np.ndarray:
    """Pixels within ``mm`` of ``mask`` (in-plane)."""
    return edt_mm(~mask, spacing) <= mm


def _ray_centre(trunk: np.ndarray, bone: np.ndarray, spacing, posterior_rc: np.ndarray
                ) -> np.ndarray:
    """Where the rays start: the trunk's centroid, moved forward out of the spine when it
    falls in or next to it (the lower abdomen and the pelvis of a slim patient), so that
    rays toward the front are not stopped by the vertebral body."""
    rows, cols = np.nonzero(trunk)
    centre = np.array([rows.mean(), cols.mean()])
    if not bone.any():
        return centre
    solid = ndi.binary_fill_holes(ndi.binary_closing(bone, iterations=2)) | bone
    clearance = _Clearance(solid, spacing)
    forward = -np.asarray(posterior_rc, float) / np.asarray(spacing, float)  # blocks per mm
    for mm in np.arange(0.0, _CENTRE_SHIFT_MAX_MM, _STEP_MM):
        r, c = np.round(centre + forward * mm).astype(int)
        if not (0 <= r < trunk.shape[0] and 0 <= c < trunk.shape[1]) or not trunk[r, c]:
            break
        if clearance.at_least(r, c, _CENTRE_CLEAR_MM):
            return centre + forward * mm
    return centre


class _Clearance:
    """``edt_mm(~solid, spacing)[r, c] >= mm``, asked at a few pixels.

    The distance to the nearest solid pixel is worked out directly at the pixel asked; only
    when it lies within ``_TIE_MM`` of ``mm`` (where the transform's float32 rounding could
    decide) is the whole transform computed and read, so the answer is always the
    transform's.
    """

    _TIE_MM = 1e-3

    def __init__(self, solid: np.ndarray, spacing) -> None:
        self.solid, self.spacing = solid, spacing
        rows, cols = np.nonzero(solid)
        self.rows_mm = rows * float(spacing[0])
        self.cols_mm = cols * float(spacing[1])
        self.full: np.ndarray | None = None

    def at_least(self, r: int, c: int, mm: float) -> bool:
        if self.full is None:
            if len(self.rows_mm) == 0:
                nearest = np.inf
            else:
                nearest = float(np.sqrt(np.min((self.rows_mm - r * float(self.spacing[0])) ** 2
                                               + (self.cols_mm - c * float(self.spacing[1]))
                                               ** 2)))
            if abs(nearest - mm) > self._TIE_MM:
                return nearest > mm
            self.full = edt_mm(~self.solid, self.spacing)
        return bool(self.full[r, c] >= mm)


def _trunk_layers(out, k, trunk, skin, skin_mm, hu, fat, bone, inner_air, lungs, cut,
                  spacing, posterior_rc, params, zone, cage) -> None:
    rays = _Rays(trunk, spacing, _ray_centre(trunk, bone, spacing, posterior_rc))
    inward = rays.inward_profiles(hu=hu, fat=fat, bone=bone, air=inner_air, cut=cut)
    s = int(round(skin_mm / _STEP_MM))
    fascia = _fat_end(inward["fat"], inward["valid"], s)
    wall_end, clear = _wall_end(inward, fascia)
    # a wall that runs on into an organ lying against it ends behind its ribs (or pelvic
    # bone) when it has some
    ribs = _bone_end(inward, fascia)
    wall_end = np.where(clear | np.isnan(ribs), wall_end, np.minimum(wall_end, ribs))
    clear |= ~np.isnan(ribs)
    measured = np.where(inward["cut"], np.nan, wall_end - fascia)
    # a wall that ends on lung, gas, a fat plane or bone is measured; one that runs on into
    # bowel lying against it is not: it takes its thickness from its neighbours
    thickness = _circular_median(np.where(clear, measured, np.nan), _MEDIAN_DEG)
    thickness = np.where(np.isnan(thickness),
                         np.minimum(_circular_median(measured, _MEDIAN_DEG),
                                    _WALL_MAX_MM / _STEP_MM), thickness)
    thickness = np.maximum(thickness, _WALL_MIN_MM / _STEP_MM)
    radius = rays.outer - (fascia + thickness) * _STEP_MM  # cavity boundary, mm from centre
    # what lies beyond a bone of the wall seen from the centre (the back muscles behind the
    # spine's arches, the buttocks behind the pelvis, a shoulder beyond the ribs) is wall,
    # never cavity; a bone deep in the trunk (the vertebral body) casts no such shadow, or
    # the rays grazing it would make wedges of wall through the kidneys and the liver
    wall_reach = rays.outer - (fascia + _BONE_REACH_MM / _STEP_MM) * _STEP_MM
    radius = np.fmin(radius, rays.first_bone(bone, wall_reach))
    radius = _fill_circular(np.where(inward["cut"] & np.isnan(radius), np.nan, radius))
    radius = _circular_median(radius, _CAVITY_SMOOTH_DEG)
    fascia_r = _circular_median(_fill_circular(
        rays.outer - np.where(inward["cut"], np.nan, fascia) * _STEP_MM), _FASCIA_SMOOTH_DEG)
    cavity = trunk & (rays.pixel_radius < rays.at_pixels(radius))
    if zone == "thorax" and lungs.any():
        # the chest's cavity lies between the sides of the rib cage (the lungs and the bones
        # next to them): shoulders and arms beside the chest are never cavity
        lateral = rays.lateral(posterior_rc)
        span = lateral[lungs | cage]
        cavity &= (lateral >= span.min() - _STEP_MM * 3) & (lateral <= span.max() + _STEP_MM * 3)
        cavity |= convex_hull(lungs)
    elif zone == "abdomen" and cage.any():
        # under the costal margin the cavity still lies between the ribs of both sides (an
        # arm against the flank is outside them)
        lateral = rays.lateral(posterior_rc)
        span = lateral[cage]
        if span.min() < 0.0 < span.max():
            cavity &= (lateral >= span.min() - _STEP_MM * 3) & \
                (lateral <= span.max() + _STEP_MM * 3)
    elif zone == "neck":
        # the neck's viscera (larynx, pharynx, thyroid) and the carotid sheaths beside them
        # lie around the airway, under the strap muscles and the sternocleidomastoids
        airway = inner_air & trunk
        if airway.any():
            near = _near(airway, _NEAR_AIRWAY_MM, spacing)
            under_muscle = rays.pixel_radius < rays.at_pixels(fascia_r) - _NECK_MUSCLE_MM
            cavity = (cavity | under_muscle) & near
        else:
            cavity &= rays.pixel_radius < _NECK_CORE_MM
    # the back muscles: what the spine shadows from the centre, behind the vertebral body
    # and no further out than the back muscles reach
    first_bone = rays.first_bone(bone)
    spine_shadow = rays.pixel_radius >= rays.at_pixels(first_bone)
    cavity &= ~(spine_shadow & _behind_spine(rays, first_bone, posterior_rc))
    cavity = (cavity | (inner_air & trunk)) & trunk & ~bone
    outer_band = rays.pixel_radius >= rays.at_pixels(fascia_r) - 2.0 * _STEP_MM
    out.skin[k] |= skin & trunk
    out.cavity[k] |= cavity & ~skin
    body = trunk & ~skin & ~cavity
    # the fat under the skin, or under the edge of a field of view that cuts the skin off
    subcut = _connected_to(fat & body & outer_band,
                           ndi.binary_dilation((skin | cut) & trunk))
    out.subcutaneous[k] |= subcut
    out.wall[k] |= body & ~subcut


def _behind_spine(rays: _Rays, first_bone_mm: np.ndarray, posterior_rc: np.ndarray
                  ) -> np.ndarray:
    """Where the back muscles can be: behind the middle of the vertebral body (whose front
    is the first bone on the ray toward the back, and which is ``_VERTEBRA_DEPTH_MM``
    deep: its marrow is too faint to follow on every scan) and within
    ``_BACK_HALF_WIDTH_MM`` of the line through it, measured across the body (the erector
    spinae and the quadratus lumborum; the kidneys, the liver and the spleen lie further
    out or further forward)."""
    back = np.asarray(posterior_rc, float)
    ray = int(round(np.mod(np.arctan2(back[1], back[0]), 2 * np.pi)
                    / (2 * np.pi / _N_RAYS))) % _N_RAYS
    front = first_bone_mm[ray]
    if np.isnan(front):
        return np.zeros_like(rays.trunk)
    rel_r, rel_c = rays._rel
    along = rel_r * back[0] + rel_c * back[1]
    return rays.trunk & (along > front + _VERTEBRA_DEPTH_MM) & \
        (np.abs(rays.lateral(back)) <= _BACK_HALF_WIDTH_MM)


class _Rays:
    """Rays from the trunk's centroid to its outline, sampled every ``_STEP_MM``."""

    def __init__(self, trunk: np.ndarray, spacing, centre: np.ndarray | None = None) -> None:
        self.spacing = np.asarray(spacing, float)
        rows, cols = np.nonzero(trunk)
        self.centre = np.array([rows.mean(), cols.mean()]) if centre is None else centre
        self.angles = np.linspace(0.0, 2 * np.pi, _N_RAYS, endpoint=False)
        reach = float(np.max(np.hypot((rows - self.centre[0]) * self.spacing[0],
                                      (cols - self.centre[1]) * self.spacing[1]))) + 4.0
        self.radii = np.arange(0.0, reach, _STEP_MM)
        dy = np.cos(self.angles)[:, None] * self.radii[None, :] / self.spacing[0]
        dx = np.sin(self.angles)[:, None] * self.radii[None, :] / self.spacing[1]
        fr, fc = self.centre[0] + dy, self.centre[1] + dx
        inside = (fr > -0.5) & (fr < trunk.shape[0] - 0.5) & (fc > -0.5) & \
            (fc < trunk.shape[1] - 0.5)
        # nearest-block sampling: the blocks are means of a few millimetres already
        self.ir = np.clip(np.round(fr).astype(np.intp), 0, trunk.shape[0] - 1)
        self.ic = np.clip(np.round(fc).astype(np.intp), 0, trunk.shape[1] - 1)
        self._flat = self.ir * trunk.shape[1] + self.ic
        on = trunk[self.ir, self.ic] & inside
        # the outline: the last sample of the trunk along each ray
        last = np.where(on.any(axis=1), on.shape[1] - 1 - np.argmax(on[:, ::-1], axis=1), 0)
        self.last = last
        self.outer = self.radii[last]
        beyond = np.minimum(last + 1, on.shape[1] - 1)
        self.off_image = ~inside[np.arange(len(last)), beyond]
        self.trunk = trunk
        # a column of row offsets and a row of column offsets (the same numbers as on a
        # full grid of indices; broadcasting makes the full-size results)
        rel_r = (np.arange(trunk.shape[0])[:, None] - self.centre[0]) * self.spacing[0]
        rel_c = (np.arange(trunk.shape[1])[None, :] - self.centre[1]) * self.spacing[1]
        self._rel = (rel_r, rel_c)
        self.pixel_radius = np.hypot(rel_r, rel_c)
        self.pixel_angle = np.mod(np.arctan2(rel_c, rel_r), 2 * np.pi)
        self._interp: tuple[np.ndarray, ...] | None = None

    def _sample(self, image: np.ndarray, order: int = 0) -> np.ndarray:
        return np.take(image, self._flat)  # image[self.ir, self.ic], one gather

    def inward_profiles(self, **images: np.ndarray) -> dict[str, np.ndarray]:
        """Each image sampled from the outline inward (column 0 = the outline's sample)."""
        n = self.ir.shape[1]
        index = self.last[:, None] - np.arange(n)[None, :]
        valid = index >= 0
        index = np.clip(index, 0, n - 1)
        rows = np.arange(len(self.last))[:, None]
        out = {"valid": valid}
        for name, image in images.items():
            sampled = self._sample(image)
            out[name] = sampled[rows, index] & valid if image.dtype == bool else \
                sampled[rows, index]
        out["cut"] = self.off_image | (out["cut"][:, 0] if "cut" in out else False)
        return out

    def first_bone(self, bone: np.ndarray, from_mm: np.ndarray | None = None) -> np.ndarray:
        """Per ray, the radius (mm) where it first meets bone going out from the centre
        (beyond ``_BONE_FROM_CENTRE_MM`` and, when given, beyond ``from_mm`` of that ray);
        NaN where it meets none before the outline."""
        start = np.full(len(self.angles), _BONE_FROM_CENTRE_MM) if from_mm is None else \
            np.maximum(np.asarray(from_mm, float), _BONE_FROM_CENTRE_MM)
        hits = self._sample(bone) & (self.radii[None, :] >= start[:, None]) & \
            (np.arange(len(self.radii))[None, :] <= self.last[:, None])
        return np.where(hits.any(axis=1), self.radii[np.argmax(hits, axis=1)], np.nan)

    def lateral(self, posterior_rc: np.ndarray) -> np.ndarray:
        """Every pixel's signed distance (mm) from the centre across the body (left-right)."""
        rel_r, rel_c = self._rel
        return rel_c * posterior_rc[0] - rel_r * posterior_rc[1]

    def at_pixels(self, per_ray: np.ndarray) -> np.ndarray:
        """A per-ray value at every pixel, interpolated over the pixel's angle."""
        if self._interp is None:  # the same for every per-ray value: worked out once
            step = 2 * np.pi / _N_RAYS
            pos = self.pixel_angle / step
            i0 = np.floor(pos).astype(int) % _N_RAYS
            w = pos - np.floor(pos)
            self._interp = (i0, (i0 + 1) % _N_RAYS, 1 - w, w)
        i0, i1, w0, w1 = self._interp
        return per_ray[i0] * w0 + per_ray[i1] * w1


def _first_false_from(mask: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Per row, the first column >= start where ``mask`` is False (the row length if none)."""
    cols = np.arange(mask.shape[1])[None, :]
    stop = ~mask & (cols >= np.asarray(start)[:, None])
    return np.where(stop.any(axis=1), np.argmax(stop, axis=1), mask.shape[1])


def _closed(mask: np.ndarray, gap_mm: float) -> np.ndarray:
    """Gaps of at most ``gap_mm`` along each row filled (between two set samples)."""
    n = max(1, int(round(gap_mm / _STEP_MM)))
    out = mask.copy()
    seen_before = mask.copy()
    seen_after = mask.copy()
    for shift in range(1, n + 1):
        seen_before[:, shift:] |= mask[:, :-shift]
        seen_after[:, :-shift] |= mask[:, shift:]
    return out | (seen_before & seen_after)


def _fat_end(fat: np.ndarray, valid: np.ndarray, skin_steps: int) -> np.ndarray:
    """Per ray, the depth (steps) where the subcutaneous fat ends (the fascia)."""
    closed = _closed(fat, _GAP_MM) & valid
    start_window = int(round(_FAT_START_MM / _STEP_MM))
    cols = np.arange(fat.shape[1])[None, :]
    window = (cols >= skin_steps) & (cols < skin_steps + start_window)
    begins = (closed & window).any(axis=1)
    first = np.where(begins, np.argmax(closed & window, axis=1), skin_steps)
    end = _first_false_from(closed, first)
    return np.where(begins, end, skin_steps).astype(float)


def _wall_end(profiles: dict[str, np.ndarray], fascia: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per ray, where the muscle wall after the fascia ends, and whether it ends clearly
    (on fat again, lung or gas within ``_WALL_MAX_MM``) rather than running on."""
    fat, air, valid = profiles["fat"], profiles["air"], profiles["valid"]
    long_fat = fat & ~_closed(~fat, _FAT_STOP_MM)  # fat runs of at least _FAT_STOP_MM
    wall = valid & ~air & ~long_fat
    end = _first_false_from(wall, fascia.astype(int))
    rows = np.arange(len(end))
    at = np.minimum(end, wall.shape[1] - 1)
    depth = end - fascia
    on_air = air[rows, at] & (depth <= 2 * _WALL_MAX_MM / _STEP_MM)  # a thick chest wall
    on_fat = long_fat[rows, at] & (depth <= _WALL_MAX_MM / _STEP_MM)  # not a fissure
    clear = (end < wall.shape[1]) & valid[rows, at] & (on_air | on_fat)
    return end.astype(float), clear


def _bone_end(profiles: dict[str, np.ndarray], fascia: np.ndarray) -> np.ndarray:
    """Per ray, the depth just behind the innermost bone (ribs, pelvic bone) met within
    ``_BONE_REACH_MM`` after the fascia; NaN where there is none."""
    bone = profiles["bone"]
    cols = np.arange(bone.shape[1])[None, :]
    window = (cols >= fascia[:, None]) & (cols <= fascia[:, None] + _BONE_REACH_MM / _STEP_MM)
    hits = bone & window
    last = bone.shape[1] - 1 - np.argmax(hits[:, ::-1], axis=1)
    return np.where(hits.any(axis=1), last + 1.0 + _BEHIND_BONE_MM / _STEP_MM, np.nan)


def _circular_median(values: np.ndarray, width_deg: float) -> np.ndarray:
    """Median over a window of neighbouring rays (NaN ignored; all NaN stays NaN)."""
    half = max(1, int(round(width_deg / 2 / (360.0 / _N_RAYS))))
    idx = (np.arange(len(values))[:, None] + np.arange(-half, half + 1)[None, :]) % len(values)
    # numpy.nanmedian's arithmetic (the mean of the two middle values, a value with itself
    # for an odd count) on rows sorted once, NaN last: nanmedian goes through masked arrays
    window = np.sort(values[idx], axis=1)
    count = np.count_nonzero(~np.isnan(window), axis=1)
    high = count // 2
    low = np.where(count % 2 == 1, high, high - 1)
    rows = np.arange(len(values))
    out = (window[rows, np.maximum(low, 0)] + window[rows, high]) / 2.0
    out[count == 0] = np.nan
    return out


def _fill_circular(values: np.ndarray) -> np.ndarray:
    """NaN entries filled by circular linear interpolation from their neighbours."""
    good = ~np.isnan(values)
    if good.all() or not good.any():
        return np.where(good, values, 0.0) if not good.any() else values
    idx = np.arange(len(values))
    known = idx[good]
    ext = np.r_[known - len(values), known, known + len(values)]
    vals = np.r_[values[good], values[good], values[good]]
    return np.interp(idx, ext, vals)
