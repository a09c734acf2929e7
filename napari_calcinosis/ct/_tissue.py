"""Tissue compartments of a body CT from HU and geometry, on a coarse grid.

The compartments only have to be right at the scale of a few millimetres (which layer a
calcification lies in), so they are modelled on a grid of about ``CTParams.tissue_grid_mm``
(block means in-plane, one sampled slice per block along z); calcifications themselves are
found at full resolution elsewhere. All per-slice work is 2-D (hole filling, distance
transforms in mm) and runs in threads: scipy.ndimage releases the GIL.

Model: body = largest 3-D component above ``body_threshold_hu`` after a small opening (table,
head holder and cables are separated from it by air), holes filled per slice → skin shell
(outer ``skin_thickness_mm``) → subcutaneous fat (fat connected to the skin shell) → below it
the muscle wall (down to ``muscle_wall_mm`` below the fascia, and the back muscles behind
the spine) → cavity (lungs and air, fat and organs deep to the wall) and bone (large dense
components with their enclosed marrow, :mod:`._bone`). Morphology helpers live in
:mod:`._morphology`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from scipy import ndimage as ndi

from napari_calcinosis.types import CTParams

from ._bone import bone_mask, bone_min_volume_mm3, thin_stack
from ._grid import CoarseGrid, coarse_sample, run_parallel, upsample_into, upsample_slab
from ._morphology import dilate_inplane, edt_mm, erode_inplane, fill_holes_2d

__all__ = ["TISSUE_NAMES", "CoarseGrid", "Compartment", "TissueModel", "body_mask",
           "bone_mask", "bone_min_volume_mm3", "build_tissue_model", "coarse_sample",
           "dilate_inplane", "erode_inplane", "fill_holes_2d", "thin_stack", "upsample_slab"]


class Compartment(IntEnum):
    """Values of ``CTResult.tissue_labels``."""

    OUTSIDE = 0
    SKIN = 1
    SUBCUTANEOUS_FAT = 2
    MUSCLE = 3
    BONE = 4
    CAVITY = 5
    LUNG = 6
    INTERMUSCULAR_FAT = 7


TISSUE_NAMES: dict[int, str] = {int(c): c.name.lower() for c in Compartment}

_SURFACE_MM = 6.0


def body_mask(hu_c: np.ndarray, *, params: CTParams, workers: int = 2) -> np.ndarray:
    """The patient's body on the coarse grid: largest 3-D component, holes filled per slice.

    A one-block opening per slice first cuts thin bridges (cables, head-holder rims, blankets)
    so that nothing outside the patient joins the largest component through them.
    """
    above = hu_c > params.body_threshold_hu
    opened = dilate_inplane(erode_inplane(above, 1), 1)
    labels, n = ndi.label(opened)
    if n == 0:
        return opened
    # sizes from a subsample: only the largest component is wanted, and a full bincount of
    # an int32 volume costs more than the labelling
    sizes = np.bincount(labels[::2, ::2, ::2].ravel(), minlength=n + 1)
    sizes[0] = 0
    body = labels == int(np.argmax(sizes))
    # give back the voxels the opening shaved off the body's own outline
    body |= dilate_inplane(body, 1) & above
    return fill_holes_2d(body)


def _paraspinal(deep: np.ndarray, bone: np.ndarray, body: np.ndarray,
                posterior: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Deep blocks behind the spine (within 40 deg of posterior, farther than the vertebra).

    The back muscles are thick; without this they would pass for cavity below
    ``muscle_wall_mm``. Angles are taken about each slice's body centre.
    """
    back = np.zeros_like(deep)
    area = body.sum(axis=(1, 2))
    rows = np.arange(body.shape[1], dtype=np.float32)
    cols = np.arange(body.shape[2], dtype=np.float32)
    cy = body.sum(axis=2) @ rows / np.maximum(area, 1)
    cx = body.sum(axis=1) @ cols / np.maximum(area, 1)
    for k in np.flatnonzero((area > 0) & bone.any(axis=(1, 2))):
        dy = (rows - cy[k]) * spacing[0]
        dx = (cols - cx[k]) * spacing[1]
        along = dy[:, None] * posterior[0] + dx[None, :] * posterior[1]
        across = np.abs(dx[None, :] * posterior[0] - dy[:, None] * posterior[1])
        sector = along >= np.tan(np.radians(50.0)) * across
        spine = bone[k] & sector
        if spine.any():
            back[k] = deep[k] & sector & (along > float(np.median(along[spine])))
    return back


def _subcutaneous(fat: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Fat joined (8-connected, in its slice) to the skin shell."""
    plane = np.zeros((3, 3, 3), bool)
    plane[1] = True
    labels, n = ndi.label(fat, structure=plane)
    if n == 0:
        return fat
    hit = np.zeros(n + 1, bool)
    hit[labels[dilate_inplane(skin, 1) & fat]] = True
    hit[0] = False
    return hit[labels]


def compartments(hu_c: np.ndarray, body: np.ndarray, bone: np.ndarray,
                 spacing: tuple[float, float], posterior: np.ndarray,
                 params: CTParams) -> tuple[np.ndarray, np.ndarray]:
    """Compartment labels and the surface band of a coarse stack (module docstring).

    ``posterior`` is the unit vector toward the patient's back in (row, column) mm. The
    surface band holds the blocks outside the body or within 6 mm of its outline: air there
    is outside air, not lung.
    """
    pixel = min(spacing)
    n_skin = max(1, int(round(params.skin_thickness_mm / pixel)))
    core = erode_inplane(body, n_skin)
    skin = body & ~core
    surface = ~erode_inplane(body, max(n_skin, int(round(_SURFACE_MM / pixel))))
    lo, hi = params.fat_range_hu
    inner = core & ~bone
    fat = inner & (hu_c >= lo - 60) & (hu_c <= hi)
    air = inner & (hu_c < params.body_threshold_hu)
    subcut = _subcutaneous(fat, skin)
    deep = inner & ~subcut
    beyond_wall = erode_inplane(deep | bone, int(round(params.muscle_wall_mm / pixel)))
    back = _paraspinal(deep, bone, body, posterior, spacing)
    cavity = deep & (air | (beyond_wall & ~back))
    labels = np.zeros(hu_c.shape, np.uint8)
    labels[body] = Compartment.MUSCLE
    labels[skin] = Compartment.SKIN
    labels[subcut] = Compartment.SUBCUTANEOUS_FAT
    labels[deep & fat & ~cavity] = Compartment.INTERMUSCULAR_FAT
    labels[cavity] = Compartment.CAVITY
    labels[air] = Compartment.LUNG
    labels[bone & body] = Compartment.BONE
    return labels, surface


@dataclass
class TissueModel:
    """Compartments on the coarse grid.

    Attributes
    ----------
    grid : CoarseGrid
    labels : numpy.ndarray
        ``uint8`` :class:`Compartment` per coarse block.
    surface : numpy.ndarray
        Blocks outside the body or within 6 mm of its outline (air there is outside air).
    body, bone : numpy.ndarray
        Boolean coarse masks.
    hu : numpy.ndarray
        Block-mean HU the model was built from.
    """

    grid: CoarseGrid
    labels: np.ndarray
    surface: np.ndarray
    body: np.ndarray
    bone: np.ndarray
    hu: np.ndarray
    _depth_cache: dict = field(default_factory=dict, repr=False)

    def skin_depth_mm(self, kc: int) -> np.ndarray:
        """Distance below the body outline (mm) of every block of coarse slice ``kc``."""
        if kc not in self._depth_cache:
            self._depth_cache[kc] = edt_mm(self.body[kc], self.grid.coarse_spacing_mm[1:])
        return self._depth_cache[kc]

    def upsample_labels(self, *, workers: int = 2, slab: int = 32) -> np.ndarray:
        """Full-resolution ``uint8`` compartment labels (nearest block)."""
        out = np.empty(self.grid.shape, np.uint8)

        def one(k0: int) -> None:
            upsample_into(out, self.labels, self.grid, k0, min(k0 + slab, out.shape[0]))

        run_parallel(one, list(range(0, out.shape[0], slab)), workers)
        return out


def build_tissue_model(hu_c: np.ndarray, grid: CoarseGrid, bone_c: np.ndarray,
                       body_c: np.ndarray, *, posterior_rc: np.ndarray, params: CTParams,
                       workers: int = 2) -> TissueModel:
    """Compartments of the coarse stack (whole-stack filters, 2-D in each slice).

    Parameters
    ----------
    hu_c : numpy.ndarray
        Block-mean HU (:func:`coarse_mean_hu`).
    grid : CoarseGrid
        The coarse grid of ``hu_c``.
    bone_c, body_c : numpy.ndarray
        Coarse bone (:func:`bone_mask`) and body (:func:`body_mask`) masks.
    posterior_rc : numpy.ndarray
        Unit vector toward the patient's back in (row, column) millimetres.
    params : CTParams
        Tissue HU ranges, skin thickness, muscle-wall depth.
    workers : int
        Unused (the stack is filtered whole); kept so callers need not change.
    """
    labels, surface = compartments(hu_c, body_c, bone_c, grid.coarse_spacing_mm[1:],
                                   posterior_rc, params)
    return TissueModel(grid, labels, surface, body_c, bone_c, hu_c)
