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

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from scipy import ndimage as ndi

from .params import CTParams


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

_CLIP_HU = 100
_CROSS = ndi.generate_binary_structure(2, 1)
_SQUARE = ndi.generate_binary_structure(2, 2)


@dataclass(frozen=True)
class CoarseGrid:
    """Block grid over a full-resolution volume: block ``(K, I, J)`` covers voxels
    ``[K*fz, (K+1)*fz) x [I*fy, ...) x [J*fx, ...)``; along z it is sampled at one slice."""

    shape: tuple[int, int, int]
    factors: tuple[int, int, int]
    spacing_zyx_mm: tuple[float, float, float]

    @classmethod
    def for_volume(cls, shape: tuple[int, int, int], spacing_zyx_mm, grid_mm: float
                   ) -> CoarseGrid:
        """Grid whose blocks are about ``grid_mm`` wide (never finer than the voxels)."""
        factors = tuple(max(1, int(round(grid_mm / float(s)))) for s in spacing_zyx_mm)
        return cls(tuple(int(n) for n in shape), factors,  # type: ignore[arg-type]
                   tuple(float(s) for s in spacing_zyx_mm))  # type: ignore[arg-type]

    @property
    def coarse_shape(self) -> tuple[int, int, int]:
        return tuple(-(-n // f) for n, f in zip(self.shape, self.factors))  # type: ignore

    @property
    def coarse_spacing_mm(self) -> tuple[float, float, float]:
        return tuple(s * f for s, f in zip(self.spacing_zyx_mm, self.factors))  # type: ignore

    def sample_slices(self) -> np.ndarray:
        """Full-resolution slice sampled for each coarse slice (the block's middle)."""
        fz = self.factors[0]
        return np.minimum(np.arange(self.coarse_shape[0]) * fz + fz // 2, self.shape[0] - 1)

    def to_coarse(self, index_zyx: np.ndarray) -> np.ndarray:
        """Coarse block of full-resolution indices ``(..., 3)``."""
        return np.asarray(index_zyx) // np.asarray(self.factors)

    def upsample_slab(self, coarse: np.ndarray, k0: int, k1: int) -> np.ndarray:
        """Full-resolution slices ``k0:k1`` of a coarse array (nearest block)."""
        fz, fy, fx = self.factors
        _, ny, nx = self.shape
        ks = np.arange(k0, k1) // fz
        out = coarse[ks]
        return out.repeat(fy, axis=1)[:, :ny].repeat(fx, axis=2)[:, :, :nx]


def coarse_mean_hu(hu: np.ndarray, grid: CoarseGrid, *, workers: int = 2) -> np.ndarray:
    """Block-mean HU (in-plane) of the sampled slices, ``float32`` on the coarse grid."""
    _, fy, fx = grid.factors
    kz = grid.sample_slices()
    out = np.zeros(grid.coarse_shape, np.float32)

    def one(chunk: np.ndarray) -> None:
        src = hu[kz[chunk]]
        acc = np.zeros((len(chunk),) + out.shape[1:], np.int32)
        cnt = np.zeros(out.shape[1:], np.int32)
        for a in range(fy):
            for b in range(fx):
                # dense voxels (calcium, bone) are clipped so that a small deposit does not
                # turn its fat block into soft tissue
                part = np.minimum(src[:, a::fy, b::fx], _CLIP_HU)
                acc[:, :part.shape[1], :part.shape[2]] += part
                cnt[:part.shape[1], :part.shape[2]] += 1
        out[chunk] = acc / cnt

    chunks = np.array_split(np.arange(len(kz)), max(1, workers * 2))
    _run(one, [c for c in chunks if len(c)], workers)
    return out


def _run(func, items, workers: int) -> list:
    if workers <= 1 or len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(func, items))


def body_mask(hu_c: np.ndarray, *, params: CTParams, workers: int = 2) -> np.ndarray:
    """The patient's body on the coarse grid: largest 3-D component, holes filled per slice.

    A one-block opening per slice first cuts thin bridges (cables, head-holder rims, blankets)
    so that nothing outside the patient joins the largest component through them.
    """
    above = hu_c > params.body_threshold_hu
    opened = np.empty_like(above)

    def open_slice(k: int) -> None:
        opened[k] = ndi.binary_opening(above[k], _CROSS)

    _run(open_slice, range(above.shape[0]), workers)
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


def bone_mask(dense_c: np.ndarray, dense_volume_mm3: np.ndarray, body_c: np.ndarray, *,
              params: CTParams, workers: int = 2) -> np.ndarray:
    """Bone on the coarse grid: large 3-D components of dense blocks, marrow filled per slice.

    Parameters
    ----------
    dense_c : numpy.ndarray
        Blocks that hold at least one voxel >= ``bone_hu``.
    dense_volume_mm3 : numpy.ndarray
        Volume of voxels >= the calcium threshold in each block (mm³): a component's size.
    body_c : numpy.ndarray
        Body mask; dense blocks outside it (table) are ignored.
    params : CTParams
        ``bone_min_volume_mm3``.
    workers : int
        Threads for the per-slice hole filling.
    """
    dense = dense_c & ndi.binary_dilation(body_c, iterations=1)
    labels, n = ndi.label(dense, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return np.zeros_like(dense)
    volume = np.bincount(labels.ravel(), weights=dense_volume_mm3.ravel(), minlength=n + 1)
    keep = volume >= params.bone_min_volume_mm3
    keep[0] = False
    bone = keep[labels]

    def fill_slice(k: int) -> None:
        if bone[k].any():
            bone[k] = fill_holes_2d(bone[k])

    _run(fill_slice, range(bone.shape[0]), workers)
    return bone


@dataclass
class SliceTissue:
    """Compartments of one coarse slice."""

    labels: np.ndarray
    skin_depth_mm: np.ndarray
    fascia_depth_mm: np.ndarray


def _edt_mm(mask: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Distance (mm) of mask pixels to the nearest non-mask pixel; inf when there is none."""
    if mask.all():
        return np.full(mask.shape, np.inf, np.float32)
    return ndi.distance_transform_edt(mask, sampling=spacing).astype(np.float32)


def _touching(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Components of ``mask`` (8-connected) that touch ``seeds``."""
    labels, n = ndi.label(mask, structure=_SQUARE)
    if n == 0:
        return mask
    hit = np.zeros(n + 1, bool)
    hit[np.unique(labels[seeds & mask])] = True
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
    rel = np.stack(np.indices(deep.shape), axis=-1) - centre
    rel_mm = rel * np.asarray(spacing)
    dist = np.hypot(rel_mm[..., 0], rel_mm[..., 1])
    along = rel_mm @ posterior
    sector = along >= np.cos(np.radians(40.0)) * dist
    spine = bone2 & sector
    if not spine.any():
        return np.zeros_like(deep)
    return deep & sector & (along > float(np.median(along[spine])))


def slice_compartments(hu2: np.ndarray, body2: np.ndarray, bone2: np.ndarray,
                       spacing: tuple[float, float], posterior: np.ndarray,
                       params: CTParams) -> SliceTissue:
    """Compartments of one coarse slice (see the module docstring).

    ``posterior`` is the unit vector toward the patient's back in (row, column) mm.
    """
    labels = np.zeros(hu2.shape, np.uint8)
    skin_depth = _edt_mm(body2, spacing)
    if not body2.any():
        return SliceTissue(labels, skin_depth, skin_depth)
    # edt measures to the centre of the first outside pixel; the surface is half a pixel in
    skin = body2 & (skin_depth - 0.5 * min(spacing) <= params.skin_thickness_mm)
    lo, hi = params.fat_range_hu
    inner = body2 & ~skin & ~bone2
    fat = inner & (hu2 >= lo - 60) & (hu2 <= hi)
    air = inner & (hu2 < params.body_threshold_hu)
    subcut = _touching(fat, ndi.binary_dilation(skin, _SQUARE))
    deep = inner & ~subcut
    fascia_depth = _edt_mm(deep | bone2, spacing)
    fascia_depth[~(deep | bone2)] = 0.0
    centre = np.array(ndi.center_of_mass(body2))
    back = _paraspinal(deep, bone2, centre, posterior, spacing)
    cavity = deep & (air | ((fascia_depth > params.muscle_wall_mm) & ~back))
    labels[body2] = Compartment.MUSCLE
    labels[skin] = Compartment.SKIN
    labels[subcut] = Compartment.SUBCUTANEOUS_FAT
    labels[deep & fat & ~cavity] = Compartment.INTERMUSCULAR_FAT
    labels[cavity] = Compartment.CAVITY
    labels[air] = Compartment.LUNG
    labels[bone2 & body2] = Compartment.BONE
    return SliceTissue(labels, skin_depth, fascia_depth)


@dataclass
class TissueModel:
    """Compartments and depth maps on the coarse grid.

    Attributes
    ----------
    grid : CoarseGrid
        The coarse grid of ``hu_c``.
    labels : numpy.ndarray
        ``uint8`` :class:`Compartment` per coarse block.
    skin_depth_mm : numpy.ndarray
        Distance below the body outline (mm) per block (in-plane).
    fascia_depth_mm : numpy.ndarray
        Distance below the subcutaneous fat (mm) per block; 0 in skin and fat.
    body, bone : numpy.ndarray
        Boolean coarse masks.
    hu : numpy.ndarray
        Block-mean HU the model was built from.
    """

    grid: CoarseGrid
    labels: np.ndarray
    skin_depth_mm: np.ndarray
    fascia_depth_mm: np.ndarray
    body: np.ndarray
    bone: np.ndarray
    hu: np.ndarray

    def upsample_labels(self, *, workers: int = 2, slab: int = 32) -> np.ndarray:
        """Full-resolution ``uint8`` compartment labels (nearest block)."""
        out = np.empty(self.grid.shape, np.uint8)

        def one(k0: int) -> None:
            k1 = min(k0 + slab, out.shape[0])
            out[k0:k1] = self.grid.upsample_slab(self.labels, k0, k1)

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
    skin_depth = np.zeros(hu_c.shape, np.float32)
    fascia_depth = np.zeros(hu_c.shape, np.float32)

    def one(k: int) -> None:
        res = slice_compartments(hu_c[k], body_c[k], bone_c[k], spacing, posterior_rc,
                                 params)
        labels[k], skin_depth[k], fascia_depth[k] = (res.labels, res.skin_depth_mm,
                                                     res.fascia_depth_mm)

    _run(one, range(hu_c.shape[0]), workers)
    return TissueModel(grid, labels, skin_depth, fascia_depth, body_c, bone_c, hu_c)
