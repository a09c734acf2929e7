"""Rules that tell soft-tissue calcification dots from what looks like them on a radiograph.

Each rule sets ``Candidate.reason`` (empty = kept) to a short code a person can read:

``outside_body``
    the spot is not on the body (labels, markers, background noise);
``bone``
    as dense as bone on bone (contrast ``dense_bone_min_contrast`` of the body's range or
    more, ``dense_bone_min_contrast_over_bone`` over bone, without metal's edges): a
    clavicle's end at the acromion, a humeral head's rim, a clavicle crossing a rib;
``outline_corner``
    mostly surrounded by background: the tip of a corner or step of the body outline;
``device``
    denser than bone and very high contrast, or edges sharper than any bone's on the film
    (or, for a thin elongated spot, as sharp as the bones' sharpest or with 30 % of the
    body's range as contrast): buttons, ECG leads and
    electrodes, jewellery, lead markers, clips and wires; it takes precedence over a reason
    given by size or shape alone (too large, a line, an edge, an outline corner); a spot
    beside a device is part of it (a letter's other stroke, the processing's halo);
``texture``
    does not stand out against the texture around it (lung vessels, trabeculae, noise);
    a dot seen en face (not tangential at the outline) must clear a higher bar
    (``min_texture_cnr_en_face``): vessels seen end-on, rib ends and crossings look alike;
``ridge``
    a Hessian eigenvalue ratio of a ridge or an edge: rib and clavicle cortex, vessel walls,
    the body outline, breast and scapular edges;
``edge``
    brighter than the ring around it on one side only: a bump on an edge (diaphragm, heart,
    nodule or breast border, rib crossing), not a dot standing out on its own;
``over_spine``
    over the vertebral column, whose pedicles, processes and rib heads make dots of their own;
``line``
    longer than ``max_length_mm`` and thin: skin folds, tram-tracks, tubes;
``lung_nodule`` / ``too_large``
    wider than ``max_diameter_mm`` (over a lung: a nodule or mass);
``too_small``
    below ``min_diameter_mm``;
``over_lung``
    seen en face over a lung field: a calcified granuloma, an end-on vessel or a nodule
    cannot be told from a skin deposit on one frontal view (that needs the lateral view or
    CT); the deposits of calcinosis are read where they are tangential;
``nipple``
    a mirrored pair of 4-7 mm spots over the lower lung fields;
``costal_cartilage``
    a linear spot over the medial lower chest, where the anterior rib ends are;
``vessel``
    a linear spot by the left upper mediastinum (aortic knob, great vessels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_calcinosis.types import XrayParams

from ._anatomy import FilmAnatomy
from ._candidates import Candidate
from ._prep import WorkImage


@dataclass
class ThoraxFrame:
    """Where a working-grid point lies relative to the thorax (frontal views).

    ``left_sign`` is +1 when the patient's left is at increasing column, -1 when at decreasing
    column, 0 when unknown; ``down_sign`` is +1 when increasing row goes toward the feet.
    """

    anatomy: FilmAnatomy
    work: WorkImage
    left_sign: int
    down_sign: int

    def offset_mm(self, row: float, col: float) -> float | None:
        """Signed distance from the midline toward the patient's left (mm), or None."""
        midline = self.anatomy.midline_col
        if midline is None or self.left_sign == 0:
            return None
        r = int(np.clip(round(row), 0, midline.size - 1))
        return (col - midline[r]) * self.work.spacing_mm[1] * self.left_sign

    def level(self, row: float) -> float | None:
        """Height in the thorax: 0 at the lung apices, 1 at the lung bases (None if unknown)."""
        rows = self.anatomy.thorax_rows
        if rows is None or rows[1] <= rows[0]:
            return None
        fraction = (row - rows[0]) / (rows[1] - rows[0])
        return fraction if self.down_sign >= 0 else 1.0 - fraction

    def hemithorax_mm(self) -> float | None:
        """Widest distance of lung pixels from the midline (the rib cage half width), mm."""
        if not hasattr(self, "_hemithorax"):
            midline = self.anatomy.midline_col
            self._hemithorax = None
            if midline is not None and self.anatomy.lungs.any():
                rows, cols = np.nonzero(self.anatomy.lungs)
                self._hemithorax = float(np.percentile(np.abs(cols - midline[rows]), 99)) \
                    * self.work.spacing_mm[1]
        return self._hemithorax


def where_projected(cand: Candidate, frame: ThoraxFrame, params: XrayParams) -> tuple[str, float]:
    """What a spot projects over (``outline``, ``lung``, ``bone``, ``mediastinum``,
    ``soft_tissue``) and its depth below the body outline in mm (``inf`` if unknown)."""
    anatomy = frame.anatomy
    r, c = int(round(cand.row)), int(round(cand.col))
    depth = float(anatomy.outline_depth_mm[r, c])
    if anatomy.lungs[r, c]:
        return "lung", depth
    if depth <= params.tangential_depth_mm:
        return "outline", depth
    if anatomy.bone[r, c] or anatomy.rib_band[r, c]:
        return "bone", depth
    offset, level = frame.offset_mm(cand.row, cand.col), frame.level(cand.row)
    half = frame.hemithorax_mm()
    if offset is not None and level is not None and half is not None \
            and 0.0 <= level <= 1.0 and abs(offset) < 0.35 * half:
        return "mediastinum", depth
    return "soft_tissue", depth


def judge(candidates: list[Candidate], frame: ThoraxFrame, params: XrayParams, *,
          cnr: np.ndarray | None = None) -> None:
    """Set ``reason`` on every candidate that is a look-alike (in place).

    A reason the detector already set (a ridge it did not measure further) is kept.

    ``cnr`` is the detector's best-scale CNR map; with it a nipple-sized spot whose mirror
    image is fainter than the detection threshold is still recognised as one of a pair.
    """
    anatomy, work = frame.anatomy, frame.work
    device_level = float(np.quantile(work.image[anatomy.body], params.device_quantile)) \
        if anatomy.body.any() else float(work.image.max())
    for cand in candidates:
        cand.reason = cand.reason or _single_reason(cand, frame, params, device_level)
    edges = _MetalEdges(frame)
    for cand in candidates:
        if (not cand.reason or cand.reason in _METAL_FIRST) \
                and cand.contrast >= params.device_edge_min_contrast:
            ratio = edges.ratio(cand)
            if ratio >= params.device_edge_ratio or (
                    ratio >= params.device_edge_ratio_elongated
                    and cand.elongation >= params.device_elongation):
                cand.reason = "device"
    _mark_device_halos(candidates, frame, params)
    _mark_nipples(candidates, frame, params, cnr)
    if params.reject_over_lung:
        for cand in candidates:
            if not cand.reason and where_projected(cand, frame, params)[0] == "lung":
                cand.reason = "over_lung"


#: Reasons a metal object may get from its size or shape alone; being metal says more.
_METAL_FIRST = ("too_large", "line", "edge", "outline_corner", "bone")


class _MetalEdges:
    """Edge strength at a spot against the film's bone edges (computed on first use)."""

    def __init__(self, frame: ThoraxFrame) -> None:
        self.frame = frame
        self.gradient: np.ndarray | None = None
        self.reference = 0.0

    def ratio(self, cand: Candidate) -> float:
        """Steepest edge within the spot's radius + 2 pixels over the bones' 99th percentile."""
        work, anatomy = self.frame.work, self.frame.anatomy
        if self.gradient is None:
            self.gradient = ndi.gaussian_gradient_magnitude(work.image, 0.7)
            bone = anatomy.bone & anatomy.body
            where = bone if bone.sum() >= 1000 else anatomy.body
            self.reference = float(np.quantile(self.gradient[where], 0.99)) if where.any() \
                else float(np.quantile(self.gradient, 0.999))
        if self.reference <= 0:
            return 0.0
        r, c = int(round(cand.row)), int(round(cand.col))
        k = max(2, int(cand.radius_mm / work.pixel_mm) + 2)
        window = self.gradient[max(0, r - k): r + k + 1, max(0, c - k): c + k + 1]
        return float(window.max()) / self.reference if window.size else 0.0


def _single_reason(cand: Candidate, frame: ThoraxFrame, params: XrayParams,
                   device_level: float) -> str:
    anatomy = frame.anatomy
    r, c = int(round(cand.row)), int(round(cand.col))
    over_lung = bool(anatomy.lungs[r, c])
    if not _near(anatomy.body, r, c, 3.0 / frame.work.pixel_mm):
        return "outside_body"
    if cand.peak_value >= device_level and cand.contrast >= params.device_min_contrast:
        return "device"
    if cand.elongation >= params.device_elongation \
            and cand.contrast >= params.device_elongated_min_contrast:
        return "device"
    if cand.contrast >= params.dense_bone_min_contrast:
        return "bone"
    if _background_share(cand, frame) > params.max_background_share:
        return "outline_corner"
    if cand.hessian_ratio < params.ridge_ratio_max:
        return "ridge"
    if cand.isolation < params.min_isolation:
        return "edge"
    if anatomy.spine[r, c]:
        return "over_spine"
    if cand.length_mm > params.max_length_mm and cand.elongation >= params.linear_elongation:
        return "line"
    if cand.diameter_mm > params.max_diameter_mm:
        return "lung_nodule" if over_lung and cand.diameter_mm >= \
            params.lung_nodule_min_diameter_mm else "too_large"
    if cand.diameter_mm < params.min_diameter_mm:
        return "too_small"
    zone, _ = where_projected(cand, frame, params)
    if zone == "bone" and cand.contrast >= params.dense_bone_min_contrast_over_bone:
        return "bone"
    needed = {"outline": params.min_texture_cnr,
              "bone": params.min_texture_cnr_over_bone}.get(zone, params.min_texture_cnr_en_face)
    if zone == "soft_tissue" and anatomy.is_chest:
        # with the lungs found, "soft tissue" is truly clear of lung and bone
        needed = params.min_texture_cnr_soft
    if cand.channel == "near_outline" and (
            cand.elongation > params.near_outline_round_elongation
            or cand.hessian_ratio < params.near_outline_round_hessian):
        # on the top-hat a rib's end is a blob of its own, a little elongated
        needed = max(needed, params.min_texture_cnr_near_outline)
    if cand.texture_cnr < needed:
        return "texture"
    if cand.elongation >= params.linear_elongation:
        return _linear_lookalike(cand, frame)
    return ""


def _linear_lookalike(cand: Candidate, frame: ThoraxFrame) -> str:
    """Costal cartilage (medial lower chest) and aortic knob / great vessels (left upper)."""
    offset, level, half = frame.offset_mm(cand.row, cand.col), frame.level(cand.row), \
        frame.hemithorax_mm()
    if offset is None or level is None or half is None:
        return ""
    if 0.3 <= level <= 1.05 and abs(offset) <= 0.45 * half:
        return "costal_cartilage"
    if -0.05 <= level <= 0.45 and 0 < offset <= 0.35 * half:
        return "vessel"
    return ""


def _mark_device_halos(candidates: list[Candidate], frame: ThoraxFrame,
                       params: XrayParams) -> None:
    """Kept spots within ``device_halo_mm`` of a device (beyond its radius) belong to it."""
    devices = [c for c in candidates if c.reason == "device" and c.contrast > 0]
    if not devices:
        return
    rows_mm, cols_mm = frame.work.spacing_mm
    for cand in candidates:
        if cand.reason:
            continue
        for dev in devices:
            gap = np.hypot((cand.row - dev.row) * rows_mm, (cand.col - dev.col) * cols_mm)
            if gap <= max(dev.diameter_mm / 2, dev.radius_mm) + params.device_halo_mm:
                cand.reason = "device"
                break


def _mark_nipples(candidates: list[Candidate], frame: ThoraxFrame, params: XrayParams,
                  cnr: np.ndarray | None) -> None:
    """Nipple-sized spots over the lower chest with a mirrored partner are nipple shadows.

    The partner is another such candidate, or (with ``cnr``) a fainter spot at the mirrored
    place whose CNR reaches half the candidate's and at least ``nipple_partner_cnr``.
    """
    pool = []
    for cand in candidates:
        if cand.reason or cand.diameter_mm < params.nipple_min_diameter_mm:
            continue
        offset, level = frame.offset_mm(cand.row, cand.col), frame.level(cand.row)
        if offset is not None and level is not None and 0.4 <= level <= 1.1 \
                and abs(offset) > params.nipple_min_offset_mm:
            pool.append((cand, offset))
    tol = params.nipple_pair_tolerance_mm
    rows_mm = frame.work.spacing_mm[0]
    for i, (first, off_a) in enumerate(pool):
        for second, off_b in pool[i + 1:]:
            mirrored = abs(off_a + off_b) <= tol and off_a * off_b < 0
            if mirrored and abs(first.row - second.row) * rows_mm <= tol:
                first.reason = second.reason = "nipple"
    if cnr is None:
        return
    for cand, _ in pool:
        if not cand.reason and _partner_cnr(cand, frame, cnr, tol) >= max(
                params.nipple_partner_cnr, 0.5 * cand.cnr):
            cand.reason = "nipple"


def _partner_cnr(cand: Candidate, frame: ThoraxFrame, cnr: np.ndarray, tol_mm: float) -> float:
    """Highest CNR within ``tol_mm`` of the candidate's mirror image about the midline."""
    midline = frame.anatomy.midline_col
    if midline is None:
        return 0.0
    r = int(np.clip(round(cand.row), 0, midline.size - 1))
    col = int(round(2 * midline[r] - cand.col))
    reach = int(np.ceil(tol_mm / frame.work.pixel_mm))
    window = cnr[max(0, r - reach): r + reach + 1, max(0, col - reach): col + reach + 1]
    return float(window.max()) if window.size else 0.0


def _background_share(cand: Candidate, frame: ThoraxFrame) -> float:
    """Share of a ring 1-3 mm outside the spot that is direct-exposure background.

    A corner or step of the body outline leaves a bright tip after background removal; it
    is surrounded by background on most sides, a dot in the skin is not.
    """
    work, background = frame.work, frame.anatomy.background
    inner, outer = cand.radius_mm + 1.0, cand.radius_mm + 3.0
    reach = int(np.ceil(outer / work.pixel_mm))
    r, c = int(round(cand.row)), int(round(cand.col))
    r0, c0 = max(0, r - reach), max(0, c - reach)
    window = background[r0: r + reach + 1, c0: c + reach + 1]
    rr, cc = np.mgrid[r0: r0 + window.shape[0], c0: c0 + window.shape[1]]
    dist = np.hypot((rr - r) * work.spacing_mm[0], (cc - c) * work.spacing_mm[1])
    ring = (dist >= inner) & (dist <= outer)
    return float(window[ring].mean()) if ring.any() else 0.0


def _near(mask: np.ndarray, r: int, c: int, reach: float) -> bool:
    k = int(np.ceil(reach))
    window = mask[max(0, r - k): r + k + 1, max(0, c - k): c + k + 1]
    return bool(window.any())
