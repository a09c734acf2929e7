"""Bone on the coarse grid of the CT tissue model (internal).

Bone is told from calcification by structure and connectivity, not by HU: large 3-D
components of dense blocks with the marrow their cortex encloses, minus small pieces that
only hang on a bone by a block corner (a deposit beside a rib). A dense block is bone-like
only when it holds cortex (``_CORTEX_HU``) or the texture of trabeculae (its samples spread
more than noise would spread them): iodinated contrast in the aorta, the kidneys or the
bowel is as dense as trabecular bone but smooth.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from napari_calcinosis.types import CTParams

from ._candidates import sparse_components
from ._grid import CoarseGrid
from ._morphology import PLANE_4, bbox_inplane, dilate_inplane, fill_holes_2d

__all__ = ["bone_mask", "bone_min_volume_mm3", "thin_stack"]

_BONE_REF_Z_MM = 80.0
_TRABECULAR_BELOW_HU = 100.0
_MARROW_MAX_MM2 = 400.0
_MARROW_MIN_HU = 100.0
_CORTEX_HU = 500.0
_TEXTURE_MIN_HU = 40.0
_TEXTURE_NOISE_SD = 2.5


def _fill_marrow(dense: np.ndarray, level: np.ndarray, pixel_mm2: float) -> np.ndarray:
    """Fill the holes of each dense slice that look like marrow.

    A hole is marrow when it is dense itself (trabecular bone) or small (a rib's marrow);
    large soft-tissue regions that bones happen to enclose in one slice (muscle between the
    scapula and the ribs) stay open.
    """
    box = bbox_inplane(dense)
    if box is None:
        return dense
    sub, level = dense[box], level[box]
    holes = fill_holes_2d(sub) & ~sub
    if not holes.any():
        return dense
    labels, n = ndi.label(holes, structure=PLANE_4)
    count = np.bincount(labels.ravel(), minlength=n + 1)
    mean = np.bincount(labels.ravel(), weights=level.ravel(), minlength=n + 1) / \
        np.maximum(count, 1)
    marrow = (count * pixel_mm2 <= _MARROW_MAX_MM2) | (mean >= _MARROW_MIN_HU)
    marrow[0] = False
    out = dense.copy()
    out[box] |= marrow[labels]
    return out


def bone_min_volume_mm3(grid: CoarseGrid, params: CTParams) -> float:
    """Smallest bone, scaled down for stacks thinner than 80 mm (a slab of each bone)."""
    z_cover = grid.shape[0] * grid.spacing_zyx_mm[0]
    return params.bone_min_volume_mm3 * min(1.0, z_cover / _BONE_REF_Z_MM)


def thin_stack(grid: CoarseGrid) -> bool:
    """True when the volume covers less than 80 mm along z (3-D bone shape not seen)."""
    return grid.shape[0] * grid.spacing_zyx_mm[0] < _BONE_REF_Z_MM


def bone_mask(max_c: np.ndarray, body_c: np.ndarray, grid: CoarseGrid, *,
              params: CTParams, workers: int = 2,
              dense_mean_c: np.ndarray | None = None,
              noise_sd_hu: float | None = None) -> np.ndarray:
    """Bone on the coarse grid: large 3-D components of dense blocks with their marrow.

    Holes of the dense mask are filled per slice first, so the marrow inside the cortex
    counts toward a component's volume. When the volume covers less than 80 mm along z,
    the size rule is scaled down in proportion (a single slice shows only a slab of bone).

    Parameters
    ----------
    max_c : numpy.ndarray
        Block maximum HU (:func:`coarse_sample`); blocks >= ``bone_hu`` are dense (cortex).
    body_c : numpy.ndarray
        Body mask; dense blocks outside it (table) are ignored.
    grid : CoarseGrid
        The coarse grid (block volume).
    params : CTParams
        ``bone_hu`` and ``bone_min_volume_mm3``.
    workers : int
        Threads for the per-slice hole filling.
    dense_mean_c : numpy.ndarray, optional
        Unclipped block mean; blocks whose mean reaches ``bone_hu - 100`` are dense too
        (trabecular bone with a thin cortex, as in ribs).
    noise_sd_hu : float, optional
        Image noise; with ``dense_mean_c``, dense blocks must hold cortex or trabecular
        texture (spread of their samples beyond ``_TEXTURE_NOISE_SD`` noise SDs).
    """
    dense = max_c >= params.bone_hu
    if dense_mean_c is not None:
        dense |= dense_mean_c >= params.bone_hu - _TRABECULAR_BELOW_HU
        if noise_sd_hu is not None and grid.factors[1] * grid.factors[2] > 1:
            spread = max_c.astype(np.float32) - dense_mean_c
            dense &= (max_c >= _CORTEX_HU) | \
                (spread >= max(_TEXTURE_MIN_HU, _TEXTURE_NOISE_SD * noise_sd_hu))
    dense &= dilate_inplane(body_c, 1, depth=1)
    level = dense_mean_c if dense_mean_c is not None else max_c.astype(np.float32)
    # marrow enclosed by cortex belongs to the bone and to its volume
    dense = _fill_marrow(dense, level, float(np.prod(grid.coarse_spacing_mm[1:])))
    labels, n = ndi.label(dense, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return np.zeros_like(dense)
    block_mm3 = float(np.prod(grid.coarse_spacing_mm))
    volume = np.bincount(labels.ravel(), minlength=n + 1) * block_mm3
    keep = volume >= bone_min_volume_mm3(grid, params)
    keep[0] = False
    bone = keep[labels]
    if thin_stack(grid):
        return bone
    return _release_knobs(bone, block_mm3, params.bone_knob_max_mm3)


def _release_knobs(bone: np.ndarray, block_mm3: float, max_mm3: float) -> np.ndarray:
    """Give back small pieces that hang on a bone by a block corner or across a slice.

    On blocks of ~3 mm a dense deposit a few millimetres from a rib or a scapula shares a
    block corner with it and joins the bone's component. The blocks of a piece that an
    in-plane 3 x 3 opening removes (narrower than three blocks) and that is small in 3-D are
    released, except those that share a block side with the rest of the bone in their slice
    (the bone's own rim); the calcium candidates then decide at full resolution whether what
    lies there is fused with the bone (see ``._detect._fused_with_bone``). Thin bones (a
    scapular blade, a rib seen along its length) are removed by the opening as long
    connected pieces and stay bone. Bone is a few per cent of the blocks, so all of this
    works on the list of bone blocks.
    """
    flat = np.flatnonzero(bone)
    if max_mm3 <= 0 or len(flat) == 0:
        return bone
    blocks = _InPlane(bone.shape, flat)
    square = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    # opening = dilation of the erosion; beyond the image border counts as bone when
    # eroding (a cut-off field of view is no edge) and as empty when dilating
    eroded = np.ones(len(flat), bool)
    for dy, dx in square:
        eroded &= blocks.values(bone, dy, dx, outside=True)
    centres = np.zeros(bone.shape, bool)
    centres.ravel()[flat[eroded]] = True
    core = np.zeros(len(flat), bool)
    for dy, dx in square:
        core |= blocks.values(centres, dy, dx, outside=False)
    if core.all():
        return bone
    thin = blocks.subset(~core)
    labels, n = sparse_components(thin.flat, bone.shape)
    small = np.bincount(labels, minlength=n) * block_mm3 <= max_mm3
    core_mask = np.zeros(bone.shape, bool)
    core_mask.ravel()[flat[core]] = True
    rim = np.zeros(len(thin.flat), bool)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        rim |= thin.values(core_mask, dy, dx, outside=False)
    out = bone.copy()
    out.ravel()[thin.flat[small[labels] & ~rim]] = False
    return out


class _InPlane:
    """Flat indices of some blocks with their in-plane coordinates, for neighbour look-ups."""

    def __init__(self, shape: tuple[int, ...], flat: np.ndarray,
                 yx: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.shape, self.flat = shape, flat
        ny, nx = shape[-2:]
        if yx is None:
            rest = flat % (ny * nx)
            yx = (rest // nx, rest % nx)
        self.y, self.x = yx

    def subset(self, chosen: np.ndarray) -> _InPlane:
        return _InPlane(self.shape, self.flat[chosen], (self.y[chosen], self.x[chosen]))

    def values(self, mask: np.ndarray, dy: int, dx: int, *, outside: bool) -> np.ndarray:
        """``mask`` at the in-plane neighbour ``(dy, dx)`` of each block (``outside``
        beyond the image)."""
        ny, nx = self.shape[-2:]
        y, x = self.y + dy, self.x + dx
        inside = (y >= 0) & (y < ny) & (x >= 0) & (x < nx)
        if inside.all():
            return mask.ravel()[self.flat + (dy * nx + dx)]
        out = np.full(len(self.flat), outside)
        out[inside] = mask.ravel()[self.flat[inside] + (dy * nx + dx)]
        return out
