"""Tissue compartments of a body CT on the coarse grid: where a calcification lies.

The compartments only have to be right at the scale of a few millimetres (which layer a
calcification lies in), so they are modelled on a grid of about ``CTParams.tissue_grid_mm``
(:mod:`._grid`); calcifications themselves are found at full resolution elsewhere.

The body and its parts, the field of view's cut edges, the lungs and gas come from
:mod:`._body`; the skin, the subcutaneous fat, the body wall and the cavities inside it from
:mod:`._wall`; bone from :mod:`._bone`. Here they become one label per block
(:class:`Compartment`), which the lesion layer rules (:mod:`._lesions`) and the napari
tissue layer read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from scipy import ndimage as ndi

from napari_calcinosis.types import CTParams

from ._body import LIMB, TRUNK, Body
from ._grid import CoarseGrid, run_parallel, upsample_into
from ._morphology import erode_inplane, fill_holes_2d
from ._wall import WallModel, wall_model

__all__ = ["CARTILAGE_MAX_DEG", "LIMB", "TISSUE_NAMES", "TRUNK", "Compartment", "TissueModel",
           "build_tissue_model"]


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

#: Blocks this close to outside air are the body's surface band (air there is outside air).
_SURFACE_MM = 6.0
_RIB_PLANE_REACH_MM = 30.0

_RIB_PLANE_SLACK_MM = 3.0
#: The ribs and their cartilages lie in the innermost ``_RIB_LAYER_MM`` of the chest wall
#: (against the lung, or the cavity under the costal margin); they run obliquely through
#: the slices, so a block within ``_RIB_LAYER_SLACK_MM`` of that layer (a slice up or
#: down) is in it too.
_RIB_LAYER_MM = 12.0
_RIB_LAYER_SLACK_MM = 4.0
#: The costal cartilages run from the rib ends to the sternum within this angle of anterior.
CARTILAGE_MAX_DEG = 75.0
#: Slices within this distance of a slice with lung are in the rib cage's reach.
_CAGE_REACH_MM = 60.0


@dataclass
class TissueModel:
    """Compartments on the coarse grid.

    Attributes
    ----------
    grid : CoarseGrid
    labels : numpy.ndarray
        ``uint8`` :class:`Compartment` per coarse block.
    surface : numpy.ndarray
        Blocks outside the body or within 6 mm of outside air.
    body, bone : numpy.ndarray
        Boolean coarse masks.
    hu : numpy.ndarray
        Block-mean HU the model was built from.
    parts : numpy.ndarray
        ``uint8`` body part per block: 0 none, :data:`TRUNK`, :data:`LIMB`.
    cut : numpy.ndarray
        Body blocks at an edge of the field of view (no skin is seen there).
    depth_mm : numpy.ndarray
        Distance below the outside air (mm; inf where the body is cut off).
    lungs : numpy.ndarray
        Lung parenchyma.
    """

    grid: CoarseGrid
    labels: np.ndarray
    surface: np.ndarray
    body: np.ndarray
    bone: np.ndarray
    hu: np.ndarray
    parts: np.ndarray
    cut: np.ndarray
    depth_mm: np.ndarray
    lungs: np.ndarray
    cut_fraction: float = 0.0
    _extra: dict = field(default_factory=dict, repr=False)

    def skin_depth_mm(self, kc: int) -> np.ndarray:
        """Distance below the outside air (mm) of every block of coarse slice ``kc``."""
        return self.depth_mm[kc]

    def compartment_at(self, k: int, centroid_zyx) -> int:
        """Majority compartment (not outside, not bone) of the 3 x 3 blocks around a point
        of full-resolution slice ``k``: what surrounds a lesion, not the block it fills."""
        fz, fy, fx = self.grid.factors
        kc = min(int(k) // fz, self.labels.shape[0] - 1)
        i = min(int(centroid_zyx[1]) // fy, self.labels.shape[1] - 1)
        j = min(int(centroid_zyx[2]) // fx, self.labels.shape[2] - 1)
        block = self.labels[kc, max(0, i - 1):i + 2, max(0, j - 1):j + 2].ravel()
        block = block[(block != Compartment.OUTSIDE) & (block != Compartment.BONE)]
        if len(block) == 0:
            return int(self.labels[kc, i, j])
        return int(np.bincount(block).argmax())

    def block_of(self, k: int, centroid_zyx) -> tuple[int, int, int]:
        """The coarse block of a point of full-resolution slice ``k``."""
        fz, fy, fx = self.grid.factors
        return (min(int(k) // fz, self.labels.shape[0] - 1),
                min(int(centroid_zyx[1]) // fy, self.labels.shape[1] - 1),
                min(int(centroid_zyx[2]) // fx, self.labels.shape[2] - 1))

    def in_rib_plane(self, block) -> bool:
        """Whether a block lies as deep below the skin as the trunk's bones within
        ``_RIB_PLANE_REACH_MM`` (in-plane, a coarse slice up or down) less
        ``_RIB_PLANE_SLACK_MM``: the ribs and their cartilages lie in one plane; the breast,
        the pectoral muscles and the fascia lie on it. True where no such bone is near."""
        kc, i, j = block
        sy, sx = self.grid.coarse_spacing_mm[1:]
        ry = max(1, int(np.ceil(_RIB_PLANE_REACH_MM / sy)))
        rx = max(1, int(np.ceil(_RIB_PLANE_REACH_MM / sx)))
        win = (slice(max(0, kc - 1), kc + 2), slice(max(0, i - ry), i + ry + 1),
               slice(max(0, j - rx), j + rx + 1))
        ribs = self.bone[win] & (self.parts[win] == TRUNK)
        depth = self.depth_mm[win][ribs]
        depth = depth[np.isfinite(depth)]
        if len(depth) == 0:
            return True
        return bool(self.depth_mm[block] >= np.percentile(depth, 10) - _RIB_PLANE_SLACK_MM)

    def in_rib_layer(self, block, compartment: int) -> bool:
        """Whether a block of the trunk's muscle or fat planes lies in the rib layer (see
        ``_RIB_LAYER_MM``) and as deep as the ribs around it (:meth:`in_rib_plane`): the
        breast and the pectoral muscles lie on the ribs, not between them."""
        if self.parts[block] != TRUNK or compartment not in (
                Compartment.MUSCLE, Compartment.INTERMUSCULAR_FAT):
            return False
        kc, i, j = block
        sy, sx = self.grid.coarse_spacing_mm[1:]
        ry = max(1, int(np.ceil(_RIB_LAYER_SLACK_MM / sy)))
        rx = max(1, int(np.ceil(_RIB_LAYER_SLACK_MM / sx)))
        near = self._rib_layer()[max(0, kc - 1):kc + 2, max(0, i - ry):i + ry + 1,
                                 max(0, j - rx):j + rx + 1]
        return bool(near.any()) and self.in_rib_plane(block)

    def _rib_layer(self) -> np.ndarray:
        """Muscle and fat-plane blocks within ``_RIB_LAYER_MM`` of the lungs or cavity, in
        slices where the rib cage is (trunk bone, lungs within ``_CAGE_REACH_MM``)."""
        if "rib_layer" not in self._extra:
            spacing = np.asarray(self.grid.coarse_spacing_mm, float)
            reach = max(1, int(round(_CAGE_REACH_MM / spacing[0])))
            near_lung = ndi.maximum_filter1d(self.lungs.any(axis=(1, 2)).astype(np.uint8),
                                             size=2 * reach + 1) > 0
            cage = (self.bone & (self.parts == TRUNK)).any(axis=(1, 2)) & near_lung
            cavity = np.isin(self.labels, (Compartment.CAVITY, Compartment.LUNG))
            wall = np.isin(self.labels, (Compartment.MUSCLE, Compartment.INTERMUSCULAR_FAT))
            layer = np.zeros(self.labels.shape, bool)
            for k in np.flatnonzero(cage & cavity.any(axis=(1, 2))):
                dist = ndi.distance_transform_edt(~cavity[k], sampling=spacing[1:])
                layer[k] = wall[k] & (dist <= _RIB_LAYER_MM)
            self._extra["rib_layer"] = layer
        return self._extra["rib_layer"]

    def upsample_labels(self, *, workers: int = 2, slab: int = 32) -> np.ndarray:
        """Full-resolution ``uint8`` compartment labels (nearest block)."""
        out = np.empty(self.grid.shape, np.uint8)

        def one(k0: int) -> None:
            upsample_into(out, self.labels, self.grid, k0, min(k0 + slab, out.shape[0]))

        run_parallel(one, list(range(0, out.shape[0], slab)), workers)
        return out


def build_tissue_model(hu_c: np.ndarray, grid: CoarseGrid, bone_c: np.ndarray, body: Body, *,
                       posterior_rc: np.ndarray, params: CTParams,
                       slice_axis_up: bool = True,
                       wall_bone: np.ndarray | None = None) -> TissueModel:
    """Compartments of the coarse stack (module docstring).

    Parameters
    ----------
    hu_c : numpy.ndarray
        Block-mean HU (:func:`._grid.coarse_sample`).
    grid : CoarseGrid
        The coarse grid of ``hu_c``.
    bone_c : numpy.ndarray
        Coarse dense structure that is bone unless it lies in a cavity (contrast in the
        aorta, the kidneys or the bowel is as dense as a rib).
    wall_bone : numpy.ndarray, optional
        Bone known by its cortex or texture (:func:`._bone.bone_mask` with the noise): the
        skeleton the wall and the cavities are read from. Default: ``bone_c``.
    body : Body
        The body, its parts, cut edges, lungs and gas (:func:`._body.find_body`).
    posterior_rc : numpy.ndarray
        Unit vector toward the patient's back in (row, column) millimetres.
    params : CTParams
        Tissue HU ranges and skin thickness.
    slice_axis_up : bool
        True when slices ascend toward the head.
    """
    wall_bone = bone_c if wall_bone is None else wall_bone
    wall = wall_model(hu_c, body, wall_bone, grid.coarse_spacing_mm, posterior_rc=posterior_rc,
                      params=params, slice_axis_up=slice_axis_up)
    # dense blocks deep in a cavity without cortex or texture are contrast (the aorta, the
    # kidneys, the bowel); at the cavity's edge they are the blurred rim of a bone
    deep_cavity = erode_inplane(wall.cavity, 2)
    bone = bone_c & (wall_bone | ~deep_cavity) & body.body
    # what a ring of bone encloses in a slice (the cranium; the marrow is already bone) is
    # a cavity, in a trunk or not
    wall.cavity |= fill_holes_2d(bone) & ~bone & body.body
    wall.wall &= ~wall.cavity
    wall.subcutaneous &= ~wall.cavity
    labels = _labels(hu_c, body, bone, wall, params)
    surface = ~body.body | (wall.depth_mm <= max(_SURFACE_MM, params.skin_thickness_mm))
    return TissueModel(grid, labels, surface, body.body, bone, hu_c,
                       parts=body.parts, cut=body.cut, depth_mm=wall.depth_mm,
                       lungs=body.lungs, cut_fraction=body.cut_fraction())


def _labels(hu_c: np.ndarray, body: Body, bone: np.ndarray, wall: WallModel,
            params: CTParams) -> np.ndarray:
    lo, hi = params.fat_range_hu
    fat = (hu_c >= lo - 40.0) & (hu_c <= hi + 10.0)
    labels = np.zeros(hu_c.shape, np.uint8)
    labels[wall.wall] = Compartment.MUSCLE
    labels[wall.wall & fat] = Compartment.INTERMUSCULAR_FAT
    labels[wall.subcutaneous] = Compartment.SUBCUTANEOUS_FAT
    labels[wall.cavity] = Compartment.CAVITY
    labels[body.lungs] = Compartment.LUNG
    labels[wall.skin] = Compartment.SKIN
    labels[bone & body.body] = Compartment.BONE
    labels[~body.body] = Compartment.OUTSIDE
    return labels
