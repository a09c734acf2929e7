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
components with their enclosed marrow).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from scipy import ndimage as ndi

from .ct_grid import CoarseGrid, _run, _upsample_into, coarse_sample, upsample_slab
from .params import CTParams

__all__ = ["TISSUE_NAMES", "CoarseGrid", "Compartment", "TissueModel", "body_mask",
           "bone_mask", "build_tissue_model", "coarse_sample", "fill_holes_2d",
           "upsample_slab"]


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
_BONE_REF_Z_MM = 80.0
_TRABECULAR_BELOW_HU = 100.0
_MARROW_MAX_MM2 = 400.0
_MARROW_MIN_HU = 100.0
_CROSS = ndi.generate_binary_structure(2, 1)
_SQUARE = ndi.generate_binary_structure(2, 2)


def body_mask(hu_c: np.ndarray, *, params: CTParams, workers: int = 2) -> np.ndarray:
    """The patient's body on the coarse grid: largest 3-D component, holes filled per slice.

    A one-block opening per slice first cuts thin bridges (cables, head-holder rims, blankets)
    so that nothing outside the patient joins the largest component through them.
    """
    above = hu_c > params.body_threshold_hu
    opened = ndi.binary_opening(above, _CROSS[None])
    labels, n = ndi.label(opened)
    if n == 0:
        return opened
    # sizes from a subsample: only the largest component is wanted, and a full bincount of
    # an int32 volume costs more than the labelling
    sizes = np.bincount(labels[::2, ::2, ::2].ravel(), minlength=n + 1)
    sizes[0] = 0
    body = labels == int(np.argmax(sizes))
    # give back the voxels the opening shaved off the body's own outline
    body |= ndi.binary_dilation(body, ndi.generate_binary_structure(3, 1)[1:2]) & above

    def fill_slice(k: int) -> None:
        body[k] = fill_holes_2d(body[k])

    _run(fill_slice, range(body.shape[0]), workers)
    return body


def _fill_marrow(dense2: np.ndarray, level2: np.ndarray, pixel_mm2: float) -> np.ndarray:
    """Fill the holes of a dense slice that look like marrow.

    A hole is marrow when it is dense itself (trabecular bone) or small (a rib's marrow);
    large soft-tissue regions that bones happen to enclose in one slice (muscle between the
    scapula and the ribs) stay open.
    """
    holes = fill_holes_2d(dense2) & ~dense2
    if not holes.any():
        return dense2
    labels, n = ndi.label(holes)
    area = np.bincount(labels.ravel(), minlength=n + 1) * pixel_mm2
    mean = np.bincount(labels.ravel(), weights=level2.ravel(), minlength=n + 1) / \
        np.maximum(np.bincount(labels.ravel(), minlength=n + 1), 1)
    marrow = (area <= _MARROW_MAX_MM2) | (mean >= _MARROW_MIN_HU)
    marrow[0] = False
    return dense2 | marrow[labels]


def bone_min_volume_mm3(grid: CoarseGrid, params: CTParams) -> float:
    """Smallest bone, scaled down for stacks thinner than 80 mm (a slab of each bone)."""
    z_cover = grid.shape[0] * grid.spacing_zyx_mm[0]
    return params.bone_min_volume_mm3 * min(1.0, z_cover / _BONE_REF_Z_MM)


def thin_stack(grid: CoarseGrid) -> bool:
    """True when the volume covers less than 80 mm along z (3-D bone shape not seen)."""
    return grid.shape[0] * grid.spacing_zyx_mm[0] < _BONE_REF_Z_MM


def bone_mask(max_c: np.ndarray, body_c: np.ndarray, grid: CoarseGrid, *,
              params: CTParams, workers: int = 2,
              dense_mean_c: np.ndarray | None = None) -> np.ndarray:
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
    """
    dense = max_c >= params.bone_hu
    if dense_mean_c is not None:
        dense |= dense_mean_c >= params.bone_hu - _TRABECULAR_BELOW_HU
    dense &= ndi.binary_dilation(body_c, iterations=1)
    level = dense_mean_c if dense_mean_c is not None else max_c.astype(np.float32)
    pixel_mm2 = float(np.prod(grid.coarse_spacing_mm[1:]))

    def fill_slice(k: int) -> None:
        if dense[k].any():
            dense[k] = _fill_marrow(dense[k], level[k], pixel_mm2)

    # marrow enclosed by cortex belongs to the bone and to its volume
    _run(fill_slice, range(dense.shape[0]), workers)
    labels, n = ndi.label(dense, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return np.zeros_like(dense)
    block_mm3 = float(np.prod(grid.coarse_spacing_mm))
    volume = np.bincount(labels.ravel(), minlength=n + 1) * block_mm3
    keep = volume >= bone_min_volume_mm3(grid, params)
    keep[0] = False
    return keep[labels]


def _edt_mm(mask: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Distance (mm) of mask pixels to the nearest non-mask pixel; inf when there is none."""
    if mask.all():
        return np.full(mask.shape, np.inf, np.float32)
    return ndi.distance_transform_edt(mask, sampling=spacing).astype(np.float32)


def _erode(mask: np.ndarray, iterations: int) -> np.ndarray:
    """Erosion by ``iterations`` pixels; the image border counts as inside (cut-off FOV)."""
    if iterations <= 0:
        return mask.copy()
    return ndi.binary_erosion(mask, _SQUARE, iterations=iterations, border_value=1)


def _touching(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Components of ``mask`` (8-connected) that touch ``seeds``."""
    labels, n = ndi.label(mask, structure=_SQUARE)
    if n == 0:
        return mask
    hit = np.zeros(n + 1, bool)
    hit[labels[seeds & mask]] = True
    hit[0] = False
    return hit[labels]


def fill_holes_2d(mask: np.ndarray) -> np.ndarray:
    """``binary_fill_holes`` for 2-D masks via one labelling of the background (faster)."""
    labels, n = ndi.label(~mask)
    if n == 0:
        return mask.copy()
    outer = np.zeros(n + 1, bool)
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        outer[edge] = True
    outer[0] = True
    return ~outer[labels] | mask


def _paraspinal(deep: np.ndarray, bone2: np.ndarray, centre: np.ndarray,
                posterior: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Deep pixels behind the spine (within 40 deg of posterior, farther than the vertebra).

    The back muscles are thick; without this they would pass for cavity below
    ``muscle_wall_mm``.
    """
    rows = (np.arange(deep.shape[0], dtype=np.float32) - centre[0]) * spacing[0]
    cols = (np.arange(deep.shape[1], dtype=np.float32) - centre[1]) * spacing[1]
    along = rows[:, None] * posterior[0] + cols[None, :] * posterior[1]
    across = np.abs(cols[None, :] * posterior[0] - rows[:, None] * posterior[1])
    sector = along >= np.tan(np.radians(50.0)) * across
    spine = bone2 & sector
    if not spine.any():
        return np.zeros_like(deep)
    return deep & sector & (along > float(np.median(along[spine])))


def slice_compartments(hu2: np.ndarray, body2: np.ndarray, bone2: np.ndarray,
                       spacing: tuple[float, float], posterior: np.ndarray,
                       params: CTParams) -> tuple[np.ndarray, np.ndarray]:
    """Compartment labels and the surface band of one coarse slice (module docstring).

    ``posterior`` is the unit vector toward the patient's back in (row, column) mm. The
    surface band holds the body pixels within 6 mm of the outline: air there is outside
    air, not lung.
    """
    labels = np.zeros(hu2.shape, np.uint8)
    if not body2.any():
        return labels, np.zeros_like(body2)
    pixel = min(spacing)
    n_skin = max(1, int(round(params.skin_thickness_mm / pixel)))
    core = _erode(body2, n_skin)
    skin = body2 & ~core
    surface = body2 & ~_erode(core, max(0, int(round(_SURFACE_MM / pixel)) - n_skin))
    lo, hi = params.fat_range_hu
    inner = core & ~bone2
    fat = inner & (hu2 >= lo - 60) & (hu2 <= hi)
    air = inner & (hu2 < params.body_threshold_hu)
    subcut = _touching(fat, ndi.binary_dilation(skin, _SQUARE))
    deep = inner & ~subcut
    beyond_wall = _erode(deep | bone2, int(round(params.muscle_wall_mm / pixel)))
    centre = np.array(ndi.center_of_mass(body2))
    back = _paraspinal(deep, bone2, centre, posterior, spacing)
    cavity = deep & (air | (beyond_wall & ~back))
    labels[body2] = Compartment.MUSCLE
    labels[skin] = Compartment.SKIN
    labels[subcut] = Compartment.SUBCUTANEOUS_FAT
    labels[deep & fat & ~cavity] = Compartment.INTERMUSCULAR_FAT
    labels[cavity] = Compartment.CAVITY
    labels[air] = Compartment.LUNG
    labels[bone2 & body2] = Compartment.BONE
    return labels, surface | ~body2


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
            self._depth_cache[kc] = _edt_mm(self.body[kc], self.grid.coarse_spacing_mm[1:])
        return self._depth_cache[kc]

    def upsample_labels(self, *, workers: int = 2, slab: int = 32) -> np.ndarray:
        """Full-resolution ``uint8`` compartment labels (nearest block)."""
        out = np.empty(self.grid.shape, np.uint8)

        def one(k0: int) -> None:
            _upsample_into(out, self.labels, self.grid, k0, min(k0 + slab, out.shape[0]))

        _run(one, list(range(0, out.shape[0], slab)), workers)
        return out


def build_tissue_model(hu_c: np.ndarray, grid: CoarseGrid, bone_c: np.ndarray,
                       body_c: np.ndarray, *, posterior_rc: np.ndarray, params: CTParams,
                       workers: int = 2) -> TissueModel:
    """Compartments of every coarse slice (threads over slices).

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
        Threads.
    """
    spacing = grid.coarse_spacing_mm[1:]
    labels = np.zeros(hu_c.shape, np.uint8)
    surface = np.zeros(hu_c.shape, bool)

    def one(k: int) -> None:
        labels[k], surface[k] = slice_compartments(hu_c[k], body_c[k], bone_c[k], spacing,
                                                   posterior_rc, params)

    _run(one, range(hu_c.shape[0]), workers)
    return TissueModel(grid, labels, surface, body_c, bone_c, hu_c)
