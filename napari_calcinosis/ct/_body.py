"""The body in the field of view: outside air, every body part, the cut edges, lungs and gas.

Works on the coarse grid (:mod:`._grid`), slice by slice where the anatomy is 2-D and in 3-D
where it is not:

* **outside**: air and scanner padding connected to the image border in its slice. Air
  inside the outline (lungs, bowel gas, airways) is not outside, nor is lung that touches the
  border of a cropped reconstruction (a piece whose blocks are mostly -900..-600 HU). Padding
  (block mean below ``_PADDING_HU``: the -2000/-3024 some scanners write outside the
  reconstruction circle) is never skin's neighbour: where the body meets padding or the image
  border, the outline is **cut** by the field of view and the skin there is not in the image.
* **parts**: every body part, not only the largest: 3-D components of the body after an
  opening that detaches the table, blankets and cables; besides the largest, a component is
  a body part when it is large, holds bone (an arm, a leg, a hand does; a table, a cushion or
  a head rest does not), muscle and some fat, and is not mostly air (the foam of a couch).
  In each slice the parts are split where two touch by a narrow bridge (an arm lying against
  the flank), and the piece nearest the body's axis is the trunk; the others are limbs. A
  scan with no lungs and no gas deep inside the body (a thigh, an arm) holds limbs only.
* **lungs**: 3-D components of air inside the trunk whose mean density is that of lung
  parenchyma (vessels and septa make it -950..-500 HU), large enough to be a lung; other
  internal air (bowel gas, about -1000 HU; the airways above the lungs) is **gas**.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_calcinosis.types import CTParams

from ._grid import CoarseGrid, run_parallel
from ._morphology import convex_hull, dilate_inplane, edt_mm, erode_inplane, fill_holes_2d

__all__ = ["TRUNK", "LIMB", "Body", "find_body"]

TRUNK, LIMB = 1, 2
_PADDING_HU = -1200.0
_AIR_HU = -500.0
_LUNG_LIKE_SHARE = 0.6
_OUTSIDE_MEDIAN_HU = -930.0
_LUNG_IN_HULL = 0.9
_LUNG_MAX_HU = -950.0  # mean density below this is gas, not lung parenchyma
_LUNG_MIN_ML = 30.0
_TRUNK_MIN_GAS_ML = 2.0
_TRUNK_MIN_WIDTH_MM = 250.0
_GAS_MIN_DEPTH_MM = 20.0
_PART_MIN_ML = 40.0
_PART_MIN_FAT = 0.02
_PART_MIN_BONE_ML = 1.0
_PART_MAX_AIR = 0.5
_PART_MIN_SOFT = 0.25
_OPEN_MM = 3.0
_BRIDGE_MM = 9.0  # arms touching the trunk meet across less than about twice this
_CORE_MIN_CM2 = 3.0


@dataclass
class Body:
    """What the coarse grid shows of the body (boolean or label arrays, coarse shape)."""

    outside: np.ndarray
    body: np.ndarray
    parts: np.ndarray  # 0 nothing, TRUNK, LIMB
    cut: np.ndarray  # body blocks at the edge of the field of view
    lungs: np.ndarray
    gas: np.ndarray

    @property
    def truncated(self) -> bool:
        """True when the field of view cuts the body outline somewhere."""
        return bool(self.cut.any())

    def cut_fraction(self) -> float:
        """Share of the outline (blocks at the body's edge) that the field of view cuts."""
        edge = self.body & ~erode_inplane(self.body, 1)
        edge_total = int(edge.sum())
        return float((self.cut & edge).sum() / edge_total) if edge_total else 0.0


def find_body(hu_c: np.ndarray, max_c: np.ndarray, grid: CoarseGrid, *, params: CTParams,
              padding_c: np.ndarray | None = None) -> Body:
    """The body model of a coarse stack (module docstring).

    Parameters
    ----------
    hu_c, max_c : numpy.ndarray
        Block-mean and block-maximum HU of the coarse grid.
    grid : CoarseGrid
        The grid of ``hu_c``.
    params : CTParams
        ``body_threshold_hu``.
    padding_c : numpy.ndarray, optional
        Coarse blocks that hold scanner padding (from the volume's padding mask).
    """
    spacing = grid.coarse_spacing_mm
    padding = hu_c < _PADDING_HU
    if padding_c is not None:
        padding |= padding_c
    outside = _outside_air(hu_c, padding)
    body = ~outside
    cut = body & _touches_edge(body, padding)
    parts, pieces = _parts(body, hu_c, max_c, spacing, params)
    body &= parts > 0
    cut &= body
    internal_air = body & (hu_c < _AIR_HU)
    lungs, gas = _lungs(internal_air, hu_c, parts, spacing)
    deep_gas = gas & (parts == TRUNK) & ~dilate_inplane(outside, _deep_blocks(spacing))
    if not _has_trunk(lungs, deep_gas, parts, spacing):
        parts[parts == TRUNK] = LIMB  # a limb alone (a thigh, an arm): nothing is cavity
    else:
        _trunk_extent(parts, pieces, lungs | deep_gas)
        lungs &= parts == TRUNK
    return Body(outside=outside & ~padding, body=body, parts=parts, cut=cut, lungs=lungs,
                gas=gas)


def _outside_air(hu_c: np.ndarray, padding: np.ndarray) -> np.ndarray:
    """Air and padding connected to the border of their slice, except pieces that look
    like lung (mostly -900..-600 HU blocks, or a median block above ``_OUTSIDE_MEDIAN_HU``
    and ``_LUNG_IN_HULL`` of it inside the body's convex outline: parenchyma that a
    cropped image cuts)."""
    plane = np.zeros((3, 3, 3), bool)
    plane[1, 1, :] = plane[1, :, 1] = True
    labels, n = ndi.label((hu_c < _AIR_HU) | padding, structure=plane)
    if n == 0:
        return np.zeros(hu_c.shape, bool)
    hit = np.zeros(n + 1, bool)
    for edge in (labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]):
        hit[edge] = True
    count = np.bincount(labels.ravel(), minlength=n + 1)
    lung_like = np.bincount(labels.ravel(), weights=((hu_c > -900) & (hu_c < -600)).ravel(),
                            minlength=n + 1) / np.maximum(count, 1)
    # the median of lung parenchyma, with its vessels and septa, lies above
    # ``_OUTSIDE_MEDIAN_HU`` (outside air about -1000 HU, a couch's foam about -960); a pad
    # or blanket under the patient can too, but lies outside the body's convex outline,
    # where a lung that the crop cuts does not
    hit &= lung_like < _LUNG_LIKE_SHARE
    hit[0] = False
    candidates = np.flatnonzero(hit)
    if len(candidates):
        dark = candidates[np.asarray(ndi.median(hu_c, labels, index=candidates))
                          > _OUTSIDE_MEDIAN_HU]
        if len(dark):
            boxes = ndi.find_objects(labels)
            matter = hu_c >= _AIR_HU
            hulls: dict[int, np.ndarray] = {}
            for i in dark:
                k = boxes[i - 1][0].start  # pieces are in-plane: one slice each
                if not matter[k].any():
                    continue
                if k not in hulls:
                    hulls[k] = convex_hull(matter[k])
                hit[i] = np.mean(hulls[k][labels[k] == i]) < _LUNG_IN_HULL
    return hit[labels]


def _border_connected(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` connected (4-connected, in their slice) to the slice's border."""
    plane = np.zeros((3, 3, 3), bool)
    plane[1, 1, :] = plane[1, :, 1] = True
    labels, n = ndi.label(mask, structure=plane)
    if n == 0:
        return np.zeros_like(mask)
    hit = np.zeros(n + 1, bool)
    for edge in (labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]):
        hit[edge] = True
    hit[0] = False
    return hit[labels]


def _touches_edge(body: np.ndarray, padding: np.ndarray) -> np.ndarray:
    """Body blocks on the image border or next to padding (in their slice)."""
    edge = np.zeros_like(body)
    edge[:, 0, :] = edge[:, -1, :] = edge[:, :, 0] = edge[:, :, -1] = True
    return body & (edge | dilate_inplane(padding, 1))


def _parts(body: np.ndarray, hu_c: np.ndarray, max_c: np.ndarray, spacing,
           params: CTParams) -> tuple[np.ndarray, np.ndarray]:
    """TRUNK / LIMB labels of the body's parts (0 for what is not a body part), and the
    pieces of each slice (:func:`_pieces`)."""
    pixel = min(spacing[1:])
    radius = max(1, int(round(_OPEN_MM / pixel)))
    opened = dilate_inplane(erode_inplane(body, radius), radius) & body
    labels, n = ndi.label(opened, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return np.zeros(body.shape, np.uint8)
    block_ml = float(np.prod(spacing)) / 1000.0
    count = np.bincount(labels.ravel(), minlength=n + 1)

    def share(mask: np.ndarray) -> np.ndarray:
        return np.bincount(labels.ravel(), weights=mask.ravel(), minlength=n + 1) / \
            np.maximum(count, 1)

    lo, hi = params.fat_range_hu
    size = count * block_ml
    bone_ml = share(max_c >= params.bone_hu) * size
    keep = (size >= _PART_MIN_ML) & (share((hu_c >= lo) & (hu_c <= hi)) >= _PART_MIN_FAT) & \
        (share((hu_c > hi) & (hu_c < 150.0)) >= _PART_MIN_SOFT) & \
        (bone_ml >= _PART_MIN_BONE_ML) & (share(hu_c < _AIR_HU) <= _PART_MAX_AIR)
    keep[int(np.argmax(np.r_[0, size[1:]]))] = True  # the largest piece is the body
    keep[0] = False
    kept = keep[labels]
    # give back the outline the opening shaved off, but only next to a kept part
    kept = body & dilate_inplane(kept, radius) | kept
    out = np.zeros(body.shape, np.uint8)
    pieces = np.zeros(body.shape, np.int32)
    centre = _axis(kept)
    fat = (hu_c >= lo) & (hu_c <= hi)
    dense = max_c >= params.bone_hu

    def one(k: int) -> None:  # writes slice k of ``out`` and ``pieces`` only: in threads
        if kept[k].any():
            pieces[k], depth = _pieces(kept[k], spacing[1:])
            trunk = _trunk_piece(pieces[k], spacing[1:], centre, whole=(kept[k], depth))
            out[k][kept[k]] = LIMB
            out[k][pieces[k] == trunk] = TRUNK
            _drop_objects(out[k], fat[k], dense[k])
            pieces[k][out[k] == 0] = 0

    run_parallel(one, range(body.shape[0]), max(1, int(params.workers)))
    return out, pieces


def _drop_objects(parts: np.ndarray, fat: np.ndarray, dense: np.ndarray) -> None:
    """Clear, in place, the limb pieces of a slice with neither fat nor bone: the side
    rail of the table or a positioning aid that touches the body in another slice. Every
    cross-section of an arm, a leg or a hand holds one or the other."""
    labels, n = ndi.label(parts == LIMB, structure=np.ones((3, 3), bool))
    if n == 0:
        return
    # the rim of any object averages with the air around it to fat's density: count the
    # fat inside the piece only
    inner = ndi.binary_erosion(parts == LIMB)
    count = np.bincount(labels[inner], minlength=n + 1)
    fat_share = np.bincount(labels[inner], weights=fat[inner], minlength=n + 1) / \
        np.maximum(count, 1)
    has_bone = np.bincount(labels.ravel(), weights=dense.ravel(), minlength=n + 1) > 0
    drop = (fat_share < _PART_MIN_FAT) & ~has_bone
    drop[0] = False
    parts[drop[labels]] = 0


def _axis(body: np.ndarray) -> np.ndarray:
    """Row and column of the body's axis: the median over slices of each slice's centre of
    its deepest part (arms beside the trunk move a slice's plain centroid, not this)."""
    centres = []
    for k in range(0, body.shape[0], max(1, body.shape[0] // 24)):
        if body[k].any():
            depth = ndi.distance_transform_edt(body[k])
            centres.append(np.unravel_index(np.argmax(depth), depth.shape))
    return np.median(np.array(centres, float), axis=0) if centres else \
        np.array(body.shape[1:], float) / 2


def _pieces(mask: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """The body parts of one slice, labelled 1..n: pieces joined by bridges narrower than
    about ``2 * _BRIDGE_MM`` (an arm lying against the flank, thighs that touch) are told
    apart, every pixel going to its nearest core (a Voronoi split along the bridges);
    separate pieces too thin to hold a core (a forearm, a hand) are pieces of their own.
    Also returns the mask's depth (:func:`edt_mm`)."""
    depth = edt_mm(mask, spacing)
    cores, n = ndi.label(depth > _BRIDGE_MM)
    area = np.bincount(cores.ravel(), minlength=n + 1) * float(np.prod(spacing)) / 100.0
    big = np.flatnonzero(area >= _CORE_MIN_CM2)
    big = big[big > 0]
    comps, n_comps = ndi.label(mask, structure=np.ones((3, 3), bool))
    if len(big) == 0:
        return comps, depth
    seeds = np.where(np.isin(cores, big), cores, 0)
    if len(big) == 1:  # one core: it is every pixel's nearest (no transform needed)
        nearest = np.full(mask.shape, big[0], seeds.dtype)
    else:
        _, (iy, ix) = ndi.distance_transform_edt(seeds == 0, sampling=spacing,
                                                 return_indices=True)
        nearest = seeds[iy, ix]
    # a pixel belongs to its nearest core only within its own connected piece
    has_core = np.zeros(n_comps + 1, bool)
    has_core[comps[seeds > 0]] = True
    pieces = np.zeros(mask.shape, np.int32)
    with_core = mask & has_core[comps]
    pieces[with_core] = nearest[with_core]
    alone = mask & ~with_core
    pieces[alone] = comps[alone] + int(cores.max())
    # numbered 0..m-1 in the order of their values (numpy.unique's inverse, without a sort:
    # the values are small non-negative integers)
    present = np.zeros(int(pieces.max()) + 1, bool)
    present[pieces] = True
    return (np.cumsum(present, dtype=np.int32) - 1)[pieces], depth


def _trunk_piece(pieces: np.ndarray, spacing, centre: np.ndarray,
                 whole: tuple[np.ndarray, np.ndarray] | None = None) -> int:
    """The piece whose deepest point is nearest the body's axis. ``whole``: the mask the
    pieces divide and its depth, used as the depth of a piece that is the whole mask."""
    best, best_d = 0, np.inf
    n = int(pieces.max())
    for i in range(1, n + 1):
        piece = pieces == i
        if n == 1 and whole is not None and np.array_equal(piece, whole[0]):
            depth = whole[1]  # the same array's distance transform, computed once
        else:
            depth = edt_mm(piece, spacing)
        r, c = np.unravel_index(np.argmax(depth), depth.shape)
        if depth[r, c] <= 0:
            continue
        d = np.hypot((r - centre[0]) * spacing[0], (c - centre[1]) * spacing[1])
        if d < best_d:
            best, best_d = i, d
    return best


def _trunk_extent(parts: np.ndarray, pieces: np.ndarray, seeds: np.ndarray) -> None:
    """Where the trunk ends, in place: beyond the slices whose trunk holds lungs or deep
    gas, the trunk goes on slice by slice as the piece that holds the centre of the trunk
    of the slice before it (the neck above the chest). Where no piece does (the trunk has
    divided into the thighs, the centre falls between them), the trunk has ended: from
    there on every piece is a limb (a thigh with a large tumour is not an abdomen)."""
    has = np.flatnonzero(seeds.any(axis=(1, 2)))
    if len(has) == 0:
        return
    for ks in (range(has.max() + 1, len(parts)), range(has.min() - 1, -1, -1)):
        previous = parts[ks.start - ks.step] == TRUNK
        ended = False
        for k in ks:
            if ended or not previous.any():
                parts[k][parts[k] == TRUNK] = LIMB
                ended = True
                continue
            labels = pieces[k]
            r, c = np.round(np.argwhere(previous).mean(axis=0)).astype(int)
            here = int(labels[r, c])
            if here == 0:
                parts[k][parts[k] == TRUNK] = LIMB
                ended = True
                continue
            on = parts[k] > 0
            parts[k][on] = LIMB
            parts[k][labels == here] = TRUNK
            previous = parts[k] == TRUNK


def _deep_blocks(spacing) -> int:
    return max(1, int(round(_GAS_MIN_DEPTH_MM / min(spacing[1:]))))


def _has_trunk(lungs: np.ndarray, gas: np.ndarray, parts: np.ndarray, spacing) -> bool:
    """A trunk holds lungs, airway or bowel gas (deep: not air trapped between limbs or in a
    skin fold), or is wider than any limb (``_TRUNK_MIN_WIDTH_MM``: a pelvis with no gas in
    its bowel); a limb is none of these."""
    block_ml = float(np.prod(spacing)) / 1000.0
    if lungs.any() or gas.sum() * block_ml >= _TRUNK_MIN_GAS_ML:
        return True
    trunk = parts == TRUNK
    cols = np.flatnonzero(trunk.any(axis=(0, 1)))
    rows = np.flatnonzero(trunk.any(axis=(0, 2)))
    if len(cols) == 0:
        return False
    # the width of the trunk piece in its widest slice, along either image axis
    width = max(_widest(trunk, 2) * spacing[2], _widest(trunk, 1) * spacing[1])
    return bool(width >= _TRUNK_MIN_WIDTH_MM) if len(rows) else False


def _widest(mask: np.ndarray, axis: int) -> int:
    """The largest extent (in blocks) of ``mask`` along in-plane ``axis`` over its slices."""
    best = 0
    for k in np.flatnonzero(mask.any(axis=(1, 2))):
        idx = np.flatnonzero(mask[k].any(axis=2 - axis))
        best = max(best, int(idx[-1] - idx[0] + 1))
    return best


def _lungs(internal_air: np.ndarray, hu_c: np.ndarray, parts: np.ndarray,
           spacing) -> tuple[np.ndarray, np.ndarray]:
    """Lung parenchyma and other gas among the air inside the trunk (module docstring)."""
    air = internal_air & (parts == TRUNK)
    labels, n = ndi.label(air, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return np.zeros_like(air), internal_air.copy()
    count = np.bincount(labels.ravel(), minlength=n + 1)
    mean = np.bincount(labels.ravel(), weights=hu_c.ravel().astype(np.float64),
                       minlength=n + 1) / np.maximum(count, 1)
    volume_ml = count * float(np.prod(spacing)) / 1000.0
    lung = (volume_ml >= _LUNG_MIN_ML) & (mean >= _LUNG_MAX_HU)
    lung[0] = False
    lungs = fill_holes_2d(lung[labels]) & (parts == TRUNK)  # vessels inside the lungs
    return lungs, internal_air & ~lungs
