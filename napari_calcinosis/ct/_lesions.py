"""From candidate components to contract lesions: depth, layer, side, region, morphology.

Depth and the tissue around each lesion are measured at full resolution in a small window of
the lesion's central slice (so only lesions pay for it); the compartment and the anatomy come
from the coarse tissue model.

Layer rules (design choices, in order):

1. centre within ``skin_thickness_mm`` of the body surface -> ``skin``;
2. in the cavity (deep to the muscle wall, lungs) -> ``visceral`` when aerated lung
   surrounds it, ``vessel`` in the vascular corridor (mediastinum, within
   ``vessel_corridor_mm`` of the front of the spine, the pelvic side walls), else
   ``visceral``;
3. deep to the subcutaneous fat, in the front of the chest (within ``CARTILAGE_MAX_DEG``
   of anterior), in the rib layer of the chest wall (:meth:`TissueModel.in_rib_layer`), or
   as deep as the ribs around it in tissue of cartilage density or against the lung, or
   under the lung bases (within ``_COSTAL_MARGIN_MM``) in front of the flanks in tissue
   of cartilage density (the costal margin) -> ``cartilage``;
4. a quarter or more of the surrounding ring is fat connected to the skin (the
   subcutaneous fat, traced at full resolution in the lesion's window) -> ``subcutaneous``;
5. deeper: mostly fat around -> ``fascia`` (intermuscular fat planes), else ``muscle``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_calcinosis.types import CTParams, Lesion, Volume

from ._anatomy import Anatomy, angle_from_anterior_deg, region_of
from ._measure import ComponentStats, density_weight, morphology_of, principal_extents_mm
from ._noise import SoftTissue
from ._tissue import CARTILAGE_MAX_DEG, LIMB, Compartment, TissueModel

_WINDOW_MM = 25.0
#: The costal margin: this far below the lung bases, within this angle of anterior.
_COSTAL_MARGIN_MM = 60.0
_COSTAL_MARGIN_DEG = 90.0
_SUPERFICIAL = (Compartment.SKIN, Compartment.SUBCUTANEOUS_FAT)
_DEEP_CAVITY = (Compartment.CAVITY, Compartment.LUNG)


@dataclass
class LesionContext:
    """What every lesion measurement needs."""

    volume: Volume
    hu: np.ndarray
    tissue: TissueModel
    anatomy: Anatomy
    params: CTParams
    soft: SoftTissue


@dataclass
class Surroundings:
    """Full-resolution facts about the tissue around one lesion."""

    depth_mm: float
    fat_fraction: float
    ring_upper_hu: float  # 75th percentile of the ring
    compartment: int
    air_fraction: float  # share of the ring that is air (lung when deep)
    superficial_fat_fraction: float | None  # share of the ring in fat joined to the skin
    in_rib_plane: bool = True  # as deep as the ribs around it
    in_rib_layer: bool = False  # in the rib layer of the chest wall (TissueModel)


def build_lesions(ctx: LesionContext, kept, stats: ComponentStats, chosen: np.ndarray,
                  cnr: np.ndarray) -> list[Lesion]:
    """Contract lesions (ids 1..n in the order of ``chosen``) for the chosen components."""
    vol, params = ctx.volume, ctx.params
    voxel_mm3 = float(np.prod(vol.spacing_zyx_mm))
    thickness = vol.info.slice_thickness_mm or vol.spacing_zyx_mm[0]
    extents = principal_extents_mm(stats.cov_mm2[chosen], thickness, vol.spacing_zyx_mm)
    volumes = stats.count[chosen] * voxel_mm3
    ellipsoid = np.pi / 6.0 * np.prod(np.maximum(extents, 1e-3), axis=1)
    fill = volumes / ellipsoid
    morph = morphology_of(extents, fill, params=params)
    centroids = stats.centroid_zyx[chosen]
    lps = vol.index_to_lps(centroids) if len(chosen) else np.empty((0, 3))
    coarse_k = np.minimum(np.round(centroids[:, 0]).astype(int) // ctx.tissue.grid.factors[0],
                          ctx.tissue.grid.coarse_shape[0] - 1) if len(chosen) else \
        np.empty(0, int)
    phi = angle_from_anterior_deg(ctx.anatomy, lps, coarse_k) if len(chosen) else []
    frame = ctx.anatomy.midplane.frame(lps) if len(chosen) else np.empty((0, 4))
    lesions = []
    for n, i in enumerate(chosen):
        around = surroundings(ctx, kept.flat[stats.voxels_of(i)], centroids[n])
        layer = layer_of(ctx, around, lps[n], float(phi[n]), extents[n], int(coarse_k[n]))
        side = _side(frame[n, 0], params.midline_tolerance_mm)
        region = region_of(ctx.anatomy, float(lps[n, 2]), float(phi[n]),
                           separate_limb=_in_limb(ctx, centroids[n]))
        lesions.append(Lesion(
            id=n + 1, series_instance_uid=vol.info.series_instance_uid,
            centroid_index=[round(float(v), 2) for v in centroids[n]],
            centroid_mm=[round(float(v), 2) for v in lps[n]], layer=layer, side=side,
            region=region, morphology=morph[n], volume_mm3=round(float(volumes[n]), 3),
            peak_hu=float(stats.peak_hu[i]),
            max_diameter_mm=round(float(max(extents[n, 0], _voxel_diameter(vol))), 2),
            extra={"mean_hu": round(float(stats.mean_hu[i]), 1),
                   "density_weight": int(density_weight(stats.peak_hu[i])),
                   "depth_mm": _finite(around.depth_mm),
                   "fat_fraction": round(float(around.fat_fraction), 3),
                   "superficial_fat_fraction": None if around.superficial_fat_fraction is None
                   else round(float(around.superficial_fat_fraction), 3),
                   "compartment": int(around.compartment),
                   "extents_mm": [round(float(v), 2) for v in extents[n]],
                   "cnr": round(float(cnr[i]), 2), "n_voxels": int(stats.count[i]),
                   "angle_deg": round(float(phi[n]), 1),
                   "max_area_mm2": round(float(stats.max_area_mm2[i]), 2),
                   "midplane_mm": [round(float(v), 2) for v in frame[n]]}))
    return lesions


def _finite(value: float, digits: int = 2) -> float | None:
    """Rounded, or None where the image does not tell (depth below a skin out of view)."""
    return round(float(value), digits) if np.isfinite(value) else None


def _voxel_diameter(vol: Volume) -> float:
    return float(min(vol.spacing_zyx_mm[1:]))


def _side(distance_mm: float, tolerance_mm: float) -> str:
    if abs(distance_mm) <= tolerance_mm:
        return "midline"
    return "left" if distance_mm > 0 else "right"


def _in_limb(ctx: LesionContext, centroid: np.ndarray) -> bool:
    """True when the lesion lies in a limb (an arm, a leg) rather than the trunk."""
    tm = ctx.tissue
    k, i, j = (int(v) for v in tm.grid.to_coarse(np.round(centroid).astype(int)))
    k, i, j = (min(v, n - 1) for v, n in zip((k, i, j), tm.parts.shape))
    return bool(tm.parts[k, i, j] == LIMB)


def _window(shape2: tuple[int, int], box: tuple[int, int, int, int],
            radius: tuple[int, int]) -> tuple[slice, slice]:
    """In-plane window around a (row0, col0, row1, col1) box, ``radius`` pixels wider."""
    return (slice(max(0, int(box[0]) - radius[0]), min(shape2[0], int(box[2]) + radius[0] + 1)),
            slice(max(0, int(box[1]) - radius[1]), min(shape2[1], int(box[3]) + radius[1] + 1)))


def _coarse_at(tm: TissueModel, arr: np.ndarray, k: int, rows: np.ndarray,
               cols: np.ndarray) -> np.ndarray:
    fz, fy, fx = tm.grid.factors
    kc = min(k // fz, arr.shape[0] - 1)
    return arr[kc, np.minimum(rows // fy, arr.shape[1] - 1),
               np.minimum(cols // fx, arr.shape[2] - 1)]


def surroundings(ctx: LesionContext, flat: np.ndarray, centroid: np.ndarray) -> Surroundings:
    """Depth below the skin and the tissue in a 1-2.5 mm ring around one lesion."""
    hu, tm, params = ctx.hu, ctx.tissue, ctx.params
    z, y, x = np.unravel_index(flat, hu.shape)
    k = int(np.clip(np.round(centroid[0]), z.min(), z.max()))
    if not np.any(z == k):
        k = int(np.bincount(z).argmax())
    spacing = tuple(float(v) for v in ctx.volume.spacing_zyx_mm[1:])
    in_k = z == k
    win = _window(hu.shape[1:], (y[in_k].min(), x[in_k].min(), y[in_k].max(), x[in_k].max()),
                  (int(np.ceil(_WINDOW_MM / spacing[0])), int(np.ceil(_WINDOW_MM / spacing[1]))))
    sub = hu[k][win].astype(np.float32)
    rows = np.arange(win[0].start, win[0].stop)[:, None].repeat(sub.shape[1], 1)
    cols = np.arange(win[1].start, win[1].stop)[None, :].repeat(sub.shape[0], 0)
    outside = (sub < params.body_threshold_hu) & _coarse_at(tm, tm.surface, k, rows, cols)
    lesion = np.zeros(sub.shape, bool)
    lesion[y[in_k] - win[0].start, x[in_k] - win[1].start] = True
    compartment = tm.compartment_at(k, centroid)
    block = tm.block_of(k, centroid)
    rib_plane = tm.in_rib_plane(block)
    rib_layer = tm.in_rib_layer(block, compartment)
    ring, ring_all = _ring(lesion, sub, spacing, params)
    air = float((sub[ring_all] < params.body_threshold_hu).mean()) if ring_all.any() else 0.0
    fat = _fat(sub, params)
    fat_fraction = float(fat[ring].mean()) if ring.any() else 0.0
    upper = float(np.percentile(sub[ring], 75)) if ring.any() else float("nan")
    if not outside.any():
        kc = min(k // tm.grid.factors[0], tm.labels.shape[0] - 1)
        depth = float(_coarse_at(tm, tm.skin_depth_mm(kc)[None], 0,
                                 np.array([int(centroid[1])]), np.array([int(centroid[2])]))[0])
        return Surroundings(depth, fat_fraction, upper, compartment, air, None, rib_plane,
                            rib_layer)
    depth_map = ndi.distance_transform_edt(~outside, sampling=spacing)
    cy, cx = centroid[1] - win[0].start, centroid[2] - win[1].start
    depth = float(ndi.map_coordinates(depth_map, [[cy], [cx]], order=1)[0])
    depth = max(depth - 0.5 * min(spacing), 0.0)
    skin_zone = ~outside & (depth_map <= params.skin_thickness_mm + max(spacing))
    superficial_fat = _connected_to(fat & ~lesion, skin_zone)
    sup = float(superficial_fat[ring].mean()) if ring.any() else 0.0
    return Surroundings(depth, fat_fraction, upper, compartment, air, sup, rib_plane, rib_layer)


def _fat(sub: np.ndarray, params: CTParams) -> np.ndarray:
    """Fat pixels of a window, after a 3x3 mean that tames the noise."""
    lo, hi = params.fat_range_hu
    smooth = ndi.uniform_filter(np.clip(sub, -1000.0, 300.0), size=3)
    return (smooth >= lo - 60.0) & (smooth <= hi)


def _connected_to(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` in components (8-connected) that touch the dilated ``seeds``."""
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return mask
    hit = np.zeros(n + 1, bool)
    hit[labels[ndi.binary_dilation(seeds) & mask]] = True
    hit[0] = False
    return hit[labels]


def _ring(lesion: np.ndarray, sub: np.ndarray, spacing: tuple[float, float],
          params: CTParams) -> tuple[np.ndarray, np.ndarray]:
    """Pixels 1-2.5 mm around the lesion: those in the body, and all of them.

    Pixels above the calcium threshold stay in: in noisy cartilage many are, and leaving them
    out would bias the ring toward lower HU.
    """
    inner = max(1, int(round(1.0 / min(spacing))))
    outer = max(inner + 1, int(round(2.5 / min(spacing))))
    near = ndi.binary_dilation(lesion, iterations=inner)
    ring = ndi.binary_dilation(near, iterations=outer - inner) & ~near
    return ring & (sub > params.body_threshold_hu), ring


def layer_of(ctx: LesionContext, around: Surroundings, lps: np.ndarray, phi_deg: float,
             extents: np.ndarray, coarse_k: int) -> str:
    """Contract layer word of one lesion (rules in the module docstring)."""
    params = ctx.params
    if around.depth_mm <= params.skin_thickness_mm:
        return "skin"
    if around.compartment in _DEEP_CAVITY:
        if around.air_fraction >= 0.6:  # in aerated lung: a granuloma, not a vessel wall
            return "visceral"
        return "vessel" if in_vascular_corridor(ctx.anatomy, lps, coarse_k, params) \
            else "visceral"
    if around.superficial_fat_fraction is None:  # no body surface near: trust the model
        superficial = around.compartment in _SUPERFICIAL
    else:
        superficial = around.superficial_fat_fraction >= 0.25
    if not superficial and ((phi_deg <= CARTILAGE_MAX_DEG and around.in_rib_layer)
                            or _cartilage_like(ctx, around, lps, phi_deg)):
        return "cartilage"
    if superficial:
        return "subcutaneous"
    return "fascia" if around.fat_fraction >= 0.5 else "muscle"


def _cartilage_like(ctx: LesionContext, around: Surroundings, lps: np.ndarray,
                    phi_deg: float) -> bool:
    """Front of the chest, deep to the fat, in tissue denser than muscle or on the lung."""
    lung_base = ctx.anatomy.levels.get("lung_base")
    notch = ctx.anatomy.levels.get("sternal_notch")
    if lung_base is None or lps[2] < lung_base - _COSTAL_MARGIN_MM:
        return False
    dense = around.ring_upper_hu >= ctx.soft.median_hu + ctx.params.cartilage_excess_hu
    if lps[2] < lung_base:
        # under the lung bases the costal margin (the cartilages of the 7th to 10th ribs)
        # sweeps down and out to the flanks, deep in the wall, in tissue of its density
        return bool(phi_deg < _COSTAL_MARGIN_DEG and dense)
    # the first costal cartilages rise above the manubrium, close to the midline
    front_limit = 75.0 if notch is None or lps[2] <= notch else 50.0
    if notch is not None and lps[2] > notch + 25.0:
        return False
    on_pleura = around.air_fraction >= 0.1  # costal cartilage lies on the lung
    # the cartilages lie in the plane of the ribs, under the muscles and the breast
    return bool(phi_deg < front_limit and (dense or on_pleura) and around.in_rib_plane)


def in_vascular_corridor(anatomy: Anatomy, lps: np.ndarray, coarse_k: int,
                         params: CTParams) -> bool:
    """Mediastinum, next to the spine, or the pelvic side walls (aorta and its branches)."""
    lateral = abs(float(anatomy.midplane.signed_distance(lps[None])[0]))
    spine = anatomy.spine_front_lps[coarse_k]
    if np.all(np.isfinite(spine)) and \
            np.hypot(*(lps[:2] - spine[:2])) <= params.vessel_corridor_mm:
        return True
    lung_base = anatomy.levels.get("lung_base")
    if lung_base is not None and lps[2] >= lung_base and lateral <= params.vessel_corridor_mm:
        return True
    crest = anatomy.levels.get("iliac_crest")
    behind_centre = lps[1] >= anatomy.centre_lps[coarse_k, 1] - 20.0
    return bool(crest is not None and lps[2] < crest and behind_centre
                and lateral <= 1.4 * params.vessel_corridor_mm)
