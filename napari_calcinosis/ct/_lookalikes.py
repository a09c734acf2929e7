"""What a real CT puts above the calcium threshold that is not calcinosis.

Every candidate that is big and bright enough is judged here; the first rule it meets sets
it aside with a reason the reader can see (``REASONS``). The rules rest on physics and
anatomy, not on one body. Metal, external objects and noise are recognised everywhere; the
others only in the soft tissues (skin, fat, fascia, muscle: not a cavity or the lungs,
whose findings are vessel or visceral calcifications):

* ``metal``: peak above ``_METAL_HU``: no calcium is that dense (clips, wires, electrodes,
  jewellery, needles);
* ``external``: it lies on a thin sheet of matter (under ``_SHEET_MM``) that runs on beyond
  it and away from the body: the table's top or a blanket where they touch the body; or it
  is denser than a small calcification gets (``_MARKER_HU``: metal blurred by partial
  volume) with its peak within ``_MARKER_AIR_MM`` (and a pixel) of the air: a skin
  marker or an electrode on the skin's surface;
* ``field_of_view``: it lies where the field of view cuts the body: its depth below the
  skin is not in the image;
* ``noise``: see the last item (it is judged here, before the anatomy);
* ``rib_layer``: in the rib layer of the chest wall (:meth:`TissueModel.in_rib_layer`),
  behind the front of the chest (more than ``CARTILAGE_MAX_DEG`` from anterior; in front
  the layer holds the costal cartilages, which :mod:`._lesions` labels ``cartilage``): a
  rib, on the pleura (within ``_PLEURA_MM`` of the lung), or long or drawn out like one
  within ``_RIB_NEAR_MM`` of the rib cage's bones;
* ``bone``: a small (``_BONE_BIT_MM3``) dense (``_BONE_EDGE_HU``) piece within
  ``_BONE_NEAR_MM`` of bone: a cortex's edge, the tip of a process, an osteophyte or a
  fragment;
* ``contrast_vessel``: on a contrast-enhanced scan, a tube (the region above half its
  contrast runs on for ``_TUBE_MM`` and out of the window around it while staying
  narrow; a band of calcification ends) no denser than the blood; or, in a limb, a tube
  of any density that runs on out of the scanned slices (the injected arm's veins hold
  undiluted contrast): an enhancing vessel;
  or, in muscle and the fat planes between muscles where small arteries and veins run, a
  small focus (under ``_SMALL_VESSEL_MM3``) no denser than the blood: the
  cross-section of a vessel cannot be told from a deposit there without an unenhanced
  series;
* ``noise``: its contrast over the tissue around it is under ``_LOCAL_CNR`` times the noise
  measured around it; or, at the skin's surface (air within ``_SPECK_AIR_MM``), a speck
  (largest cross-section under ``_SPECK_MM2``: a pixel or two) fainter than
  ``_FAINT_HU``; or it rises less than ``_ABOVE_BRIGHTEST`` noise SDs above the
  brightest tissue around it (streaks beside the shoulders, the ringing of a sharp kernel,
  small vessels in fat: real CT noise is not white, and single bright pixels are common),
  the deposits that stand ``_CLEAR_CNR`` SDs clear left out of that tissue (a cluster of
  deposits is not noise); or, standing out less than that, on slices under
  ``_THIN_SLICE_MM`` it lies in one slice only (a real deposit of 2 mm spans two).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_calcinosis.types import CTParams, Volume

from ._candidates import unravel
from ._measure import ComponentStats, principal_extents_mm
from ._morphology import dilate_inplane
from ._phase import ContrastPhase
from ._tissue import CARTILAGE_MAX_DEG, LIMB, TRUNK, Compartment, TissueModel

__all__ = ["REASONS", "judge"]

#: Reasons a candidate is set aside, with the sentence the report gives for each.
REASONS: dict[str, str] = {
    "metal": "denser than any calcium: metal (clip, wire, electrode, jewellery)",
    "external": "on the skin's surface: an external object (electrode, clothing, table)",
    "field_of_view": "where the field of view cuts the body: its depth cannot be assessed",
    "rib_layer": "in the rib layer of the chest wall: a rib or its cartilage",
    "bone": "next to bone: a cortex edge, a process, an osteophyte or a fragment",
    "contrast_vessel": "a tube no denser than the contrast in the blood: an enhancing vessel",
    "noise": "no brighter than the noise around it (noise, streaks or edge overshoot)",
}

_METAL_HU = 2500.0
_MARKER_HU = 1500.0
_MARKER_AIR_MM = 3.0
_AIR_HU = -500.0
_SPECK_MM2 = 2.0
_SPECK_AIR_MM = 3.0
_SHEET_MM = 6.0
_SHEET_LONG_MM = 20.0
_SHEET_AWAY_MM = 4.0
_RIB_NEAR_MM = 15.0
_PLEURA_MM = 4.0
_RIB_LONG_MM = 15.0
_RIB_ELONGATION = 2.0
_BONE_EDGE_HU = 300.0
_BONE_NEAR_MM = 3.0
_BONE_BIT_MM3 = 50.0
_TUBE_MM = 15.0
_TUBE_WIDTH_MM = 9.0
_BLOOD_MARGIN_HU = 150.0
_SMALL_MARGIN_HU = 60.0
_SMALL_VESSEL_MM3 = 100.0
_LOCAL_CNR = 5.0
_ABOVE_BRIGHTEST = 3.5
_DENSE_HU = 300.0
_RIM_MM = 2.0
_BONE_MIN_PIXELS = 30
_THIN_SLICE_MM = 1.5
_CLEAR_CNR = 12.0
_FAINT_CNR = 8.0
_FAINT_HU = 200.0
_WINDOW_MM = 25.0
_DEEP_SOFT = (Compartment.MUSCLE, Compartment.INTERMUSCULAR_FAT)
_SOFT = (Compartment.SKIN, Compartment.SUBCUTANEOUS_FAT, Compartment.MUSCLE,
         Compartment.INTERMUSCULAR_FAT)


@dataclass
class Verdict:
    """Per candidate: the reason it is set aside (``""`` kept) and its contrast over the
    tissue around it in noise SDs."""

    reason: np.ndarray
    local_cnr: np.ndarray


def judge(hu: np.ndarray, volume: Volume, tm: TissueModel, stats: ComponentStats,
          flat: np.ndarray, chosen: np.ndarray, *, host_hu: np.ndarray, phi_deg: np.ndarray,
          phase: ContrastPhase, params: CTParams) -> Verdict:
    """Reasons to set aside each chosen candidate (module docstring).

    Parameters
    ----------
    hu : numpy.ndarray
        Full-resolution HU.
    volume : Volume
        Its geometry.
    tm : TissueModel
        The compartments.
    stats : ComponentStats
        Statistics of every candidate component.
    flat : numpy.ndarray
        Flat index of every candidate voxel (``stats.voxels_of`` indexes it).
    chosen : numpy.ndarray
        The components to judge.
    host_hu : numpy.ndarray
        Level of the tissue around each chosen candidate's peak.
    phi_deg : numpy.ndarray
        Angle of each chosen candidate about the body's axis (0 anterior, 180 posterior).
    phase : ContrastPhase
        The scan's contrast phase.
    params : CTParams
        ``threshold_hu``.
    """
    n = len(chosen)
    reason = np.full(n, "", dtype=object)
    local = np.full(n, np.nan)
    spacing = np.asarray(volume.spacing_zyx_mm, float)
    where = _Where(tm)
    voxel_mm3 = float(np.prod(spacing))
    thickness = volume.info.slice_thickness_mm or spacing[0]
    extents = principal_extents_mm(stats.cov_mm2[chosen], thickness, spacing)
    windows: list[_Window | None] = [None] * n
    sd = np.full(n, np.inf)
    for m, i in enumerate(chosen):
        voxels = np.array(unravel(flat[stats.voxels_of(i)], hu.shape))
        windows[m] = _Window(hu, voxels, spacing)
        sd[m] = windows[m].noise_sd()
        local[m] = (float(stats.peak_hu[i]) - float(host_hu[m])) / sd[m]
    # deposits that stand clear of the noise are left out of each other's surroundings
    clear = [np.array(unravel(flat[stats.voxels_of(i)], hu.shape))
             for m, i in enumerate(chosen) if local[m] >= _CLEAR_CNR]
    clear_zyx = np.concatenate(clear, axis=1) if clear else np.empty((3, 0), int)
    for m, i in enumerate(chosen):
        window = windows[m]
        windows[m] = None
        voxels = np.array(unravel(flat[stats.voxels_of(i)], hu.shape))
        peak = float(stats.peak_hu[i])
        block = where.block(stats.centroid_zyx[i])
        around = tm.compartment_at(int(round(stats.centroid_zyx[i][0])), stats.centroid_zyx[i])
        soft = around in _SOFT  # else in a cavity or lung: a vessel or visceral finding
        if peak >= _METAL_HU:
            reason[m] = "metal"
        elif window.on_thin_sheet(params.body_threshold_hu) or (
                peak >= _MARKER_HU
                and window.air_within(_MARKER_AIR_MM + float(spacing[1:].max()))):
            reason[m] = "external"
        elif soft and where.near_cut(block) and not np.isfinite(tm.depth_mm[block]):
            reason[m] = "field_of_view"
        elif local[m] < _LOCAL_CNR or (
                peak < _FAINT_HU and float(stats.max_area_mm2[i]) < _SPECK_MM2
                and window.air_within(_SPECK_AIR_MM)) or (
                (local[m] < _FAINT_CNR or peak < _FAINT_HU) and (
                (peak - window.brightest(window.voxels_in(clear_zyx) | window.blocks_in(
                    where.bone_reach, tm.grid.factors))) / sd[m] < _ABOVE_BRIGHTEST
                or _one_thin_slice(voxels, spacing))):
            reason[m] = "noise"
        elif soft and tm.in_rib_layer(block, around) and phi_deg[m] > CARTILAGE_MAX_DEG \
                and (where.on_pleura(block)
                     or (_rib_like(extents[m]) and where.near_trunk_bone(block))):
            reason[m] = "rib_layer"
        elif soft and peak >= _BONE_EDGE_HU and stats.count[i] * voxel_mm3 <= _BONE_BIT_MM3 \
                and where.near_bone(block, _BONE_NEAR_MM) and \
                window.bone_within(where.bone_reach, tm.grid.factors, _BONE_NEAR_MM,
                                   params.bone_hu):
            reason[m] = "bone"
        elif soft and phase.enhanced and (
                (peak <= phase.blood_hu + _BLOOD_MARGIN_HU
                 and window.is_tube(float(host_hu[m]), peak))
                or (where.in_limb(block) and _limb_vein(extents[m], stats, i, hu.shape))
                or (around in _DEEP_SOFT and peak <= phase.blood_hu + _SMALL_MARGIN_HU
                    and stats.count[i] * voxel_mm3 <= _SMALL_VESSEL_MM3)):
            reason[m] = "contrast_vessel"
    return Verdict(reason, local)


def _limb_vein(extents_mm: np.ndarray, stats: ComponentStats, i: int, shape) -> bool:
    """A limb's vein full of contrast (the injected arm's, denser than the blood in the
    aorta): a tube of its own (``_TUBE_MM`` long, under ``_TUBE_WIDTH_MM`` across) that
    runs on out of the scanned slices; a band of calcification ends inside them."""
    long_enough = float(extents_mm[0]) >= _TUBE_MM and float(extents_mm[1]) <= _TUBE_WIDTH_MM
    leaves = int(stats.bbox_lo[i][0]) == 0 or int(stats.bbox_hi[i][0]) == shape[0] - 1
    return bool(long_enough and leaves)


def _rib_like(extents_mm: np.ndarray) -> bool:
    """A piece of rib is long (``_RIB_LONG_MM``) or drawn out (``_RIB_ELONGATION``); a
    deposit between the ribs is a compact nodule."""
    major, minor = float(extents_mm[0]), max(float(extents_mm[1]), 1e-3)
    return major >= _RIB_LONG_MM or major / minor >= _RIB_ELONGATION


def _one_thin_slice(voxels: np.ndarray, spacing: np.ndarray) -> bool:
    """On thin slices a deposit of 2 mm spans two of them; noise and streaks one."""
    return bool(spacing[0] <= _THIN_SLICE_MM and voxels[0].min() == voxels[0].max())


class _Where:
    """Look-ups on the coarse tissue model around a candidate."""

    def __init__(self, tm: TissueModel) -> None:
        self.tm = tm
        self.labels = tm.labels
        self.factors = np.asarray(tm.grid.factors)
        self.spacing = np.asarray(tm.grid.coarse_spacing_mm)
        self.bone_reach = dilate_inplane(tm.bone, 1)

    def block(self, centroid_zyx: np.ndarray) -> tuple[int, int, int]:
        idx = np.minimum((np.asarray(centroid_zyx) // self.factors).astype(int),
                         np.asarray(self.labels.shape) - 1)
        return tuple(int(v) for v in idx)

    def _around(self, mask: np.ndarray, block, mm: float) -> bool:
        r = np.maximum(np.ceil(mm / self.spacing[1:]).astype(int), 1)
        k, i, j = block
        k0, k1 = max(0, k - 1), min(mask.shape[0], k + 2)
        return bool(mask[k0:k1, max(0, i - r[0]):i + r[0] + 1, max(0, j - r[1]):j + r[1] + 1]
                    .any())

    def near_cut(self, block) -> bool:
        return self._around(self.tm.cut, block, 10.0)

    def near_bone(self, block, mm: float) -> bool:
        return self._around(self.tm.bone, block, mm + float(self.spacing[1:].max()))

    def on_pleura(self, block) -> bool:
        """Lung within ``_PLEURA_MM``: the ribs lie on the pleura; the muscles lie on the
        ribs."""
        return self._around(self.tm.lungs, block, _PLEURA_MM)

    def in_limb(self, block) -> bool:
        return bool(self.tm.parts[block] == LIMB)

    def near_trunk_bone(self, block) -> bool:
        return self._around(self.tm.bone & (self.tm.parts == TRUNK), block, _RIB_NEAR_MM)


class _Window:
    """The full-resolution neighbourhood of one candidate."""

    def __init__(self, hu: np.ndarray, voxels: np.ndarray, spacing: np.ndarray) -> None:
        self.spacing = spacing
        r = np.maximum(np.ceil(_WINDOW_MM / spacing).astype(int), 1)
        r[0] = max(1, int(np.ceil(min(_WINDOW_MM, 3 * spacing[0]) / spacing[0])))
        lo = np.maximum(voxels.min(axis=1) - r, 0)
        hi = np.minimum(voxels.max(axis=1) + r + 1, hu.shape)
        self.lo = lo
        self.sub = hu[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].astype(np.float32)
        self.mask = np.zeros(self.sub.shape, bool)
        self.mask[tuple(voxels - lo[:, None])] = True
        self.peak_at = tuple(int(v) for v in np.unravel_index(
            np.argmax(np.where(self.mask, self.sub, -np.inf)), self.sub.shape))

    def bone_within(self, bone_blocks: np.ndarray, factors, mm: float,
                    bone_hu: float) -> bool:
        """Whether bone (voxels of ``bone_hu`` or more in or beside the model's bone
        blocks) lies within ``mm`` of the candidate, measured at full resolution."""
        in_bone = self.blocks_in(bone_blocks, factors)
        bone = (self.sub >= bone_hu) & in_bone & ~self.mask
        if not bone.any():
            return False
        dist = ndi.distance_transform_edt(~bone, sampling=self.spacing)
        return bool(dist[self.mask].min() <= mm)

    def air_within(self, mm: float) -> bool:
        """Whether air (below ``_AIR_HU``) lies within ``mm`` of the candidate's peak in its
        slice: the candidate sits on the body's surface, not under the skin."""
        k, r, c = self.peak_at
        rows, cols = np.nonzero(self.sub[k] < _AIR_HU)
        if len(rows) == 0:
            return False
        dist = np.hypot((rows - r) * self.spacing[1], (cols - c) * self.spacing[2])
        return bool(dist.min() <= mm)

    def on_thin_sheet(self, body_threshold_hu: float) -> bool:
        """Whether the candidate's peak lies on a thin sheet of matter (under
        ``_SHEET_MM`` thick) that runs on for ``_SHEET_LONG_MM`` or more: the top of the
        table or a blanket where they touch the body, not tissue."""
        k, r, c = self.peak_at
        matter = self.sub[k] > body_threshold_hu
        px = float(min(self.spacing[1:]))
        radius = max(1, int(round(_SHEET_MM / 2.0 / px)))
        disk = _disk(radius)
        solid = ndi.binary_opening(matter, structure=disk, border_value=1) & matter
        thin = matter & ~solid
        if not thin[r, c]:
            return False
        labels, _ = ndi.label(thin, structure=np.ones((3, 3), bool))
        piece = labels == labels[r, c]
        rows, cols = np.nonzero(piece)
        extent = max((rows.max() - rows.min() + 1) * self.spacing[1],
                     (cols.max() - cols.min() + 1) * self.spacing[2])
        # the skin's own irregular rim is shaved off by the opening too, but it stays
        # on the body; a table or a blanket leaves it
        away = ndi.distance_transform_edt(~solid, sampling=self.spacing[1:])[piece].max()
        return bool(extent >= _SHEET_LONG_MM and away >= _SHEET_AWAY_MM)

    def _tissue(self, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The candidate's slice and its neighbours, and their soft-tissue pixels (bone,
        air and their edges, the candidate and ``exclude`` left out)."""
        k = self.peak_at[0]
        ks = slice(max(0, k - 1), min(self.sub.shape[0], k + 2))
        planes = self.sub[ks]
        own = self.mask[ks] if exclude is None else (self.mask | exclude)[ks]
        own = ndi.binary_dilation(own, structure=_PLANE_8, iterations=3)
        # bone and air, with the rims that blurring draws around bone (not around the
        # specks of a streak, which are what this measures)
        rim = max(1, int(np.ceil(_RIM_MM / float(min(self.spacing[1:])))))
        dense = planes >= _DENSE_HU
        labels, n = ndi.label(dense, structure=_PLANE_8)
        big = np.bincount(labels.ravel(), minlength=n + 1) >= _BONE_MIN_PIXELS
        big[0] = False
        bone = ndi.binary_dilation(big[labels], structure=_PLANE_8, iterations=rim)
        tissue = ndi.binary_erosion(planes > -200.0, structure=_PLANE_8) & ~dense & ~bone
        return planes, tissue & ~own

    def noise_sd(self) -> float:
        """The noise around the candidate: the robust spread of the high-pass image in the
        soft tissue of its slice and its neighbours (inf when there is too little)."""
        planes, tissue = self._tissue()
        if tissue.sum() < 30:
            return np.inf
        smooth = ndi.uniform_filter(planes, size=(1, 3, 3))
        high = (planes - smooth)[tissue]
        q25, q75 = np.percentile(high, [25, 75])
        # a 3x3 box's high-pass keeps sqrt(8/9) of white noise's SD
        return max((q75 - q25) / 1.349 / np.sqrt(8.0 / 9.0), 1.0)

    def brightest(self, exclude: np.ndarray) -> float:
        """The brightest soft tissue around the candidate (the 99.5th percentile), leaving
        out ``exclude``: the deposits around it that stand clear of the noise and the
        blocks next to bone (whose partial volume in a thick slice is no noise). Streaks and
        a sharp kernel's ringing put many pixels as bright as a candidate around it; a
        deposit stands out of its surroundings, even in a cluster of deposits."""
        planes, tissue = self._tissue(exclude)
        if tissue.sum() < 30:
            return -np.inf
        return float(np.percentile(planes[tissue], 99.5))

    def blocks_in(self, blocks: np.ndarray, factors) -> np.ndarray:
        """A window-shaped mask of the voxels in the given coarse blocks."""
        f = np.asarray(factors)
        idx = [np.minimum((np.arange(self.sub.shape[a]) + self.lo[a]) // f[a],
                          blocks.shape[a] - 1) for a in range(3)]
        return blocks[np.ix_(*idx)]

    def voxels_in(self, zyx: np.ndarray) -> np.ndarray:
        """A window-shaped mask of the given voxels (3 x n indices of the volume)."""
        out = np.zeros(self.sub.shape, bool)
        if zyx.shape[1]:
            rel = zyx - self.lo[:, None]
            inside = np.all((rel >= 0) & (rel < np.array(self.sub.shape)[:, None]), axis=0)
            out[tuple(rel[:, inside])] = True
        return out

    def is_tube(self, host_hu: float, peak_hu: float) -> bool:
        """Whether the region above half the candidate's contrast runs on as a narrow tube."""
        half = host_hu + 0.5 * (peak_hu - host_hu)
        labels, _ = ndi.label(self.sub >= half, structure=np.ones((3, 3, 3), bool))
        region = labels == labels[self.peak_at]
        if not region.any():
            return False
        pts = np.argwhere(region) * self.spacing
        if len(pts) < 3:
            return False
        cov = np.cov(pts.T) + np.diag(self.spacing ** 2 / 12.0)
        eig = np.sort(np.linalg.eigvalsh(cov))[::-1]
        length, width = np.sqrt(12.0 * eig[0]), np.sqrt(12.0 * eig[1])
        touches_edge = any(region.take(0, axis=a).any() or region.take(-1, axis=a).any()
                           for a in (1, 2)) or (region.shape[0] > 1 and (
                               region[0].any() or region[-1].any()))
        # a vessel runs on beyond the window; a band of calcification ends inside it
        return bool(length >= _TUBE_MM and touches_edge and width <= _TUBE_WIDTH_MM)


def _disk(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (y * y + x * x) <= radius * radius + radius


_PLANE_8 = np.zeros((3, 3, 3), bool)
_PLANE_8[1] = True
