"""Rules that tell soft-tissue calcification dots from what looks like them on a radiograph.

Each rule sets ``Candidate.reason`` (empty = kept) to a short code a person can read:

``outside_body``
    the spot is not on the body (labels, markers, background noise);
``device``
    denser than bone and very high contrast: buttons, ECG leads, jewellery, lead markers;
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

from .xray_anatomy import Anatomy
from .xray_candidates import Candidate
from .xray_params import XrayParams
from .xray_prep import WorkImage


@dataclass
class Frame:
    """Where a working-grid point lies relative to the thorax (frontal views).

    ``left_sign`` is +1 when the patient's left is at increasing column, -1 when at decreasing
    column, 0 when unknown; ``down_sign`` is +1 when increasing row goes toward the feet.
    """

    anatomy: Anatomy
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
        midline = self.anatomy.midline_col
        if midline is None or not self.anatomy.lungs.any():
            return None
        rows, cols = np.nonzero(self.anatomy.lungs)
        return float(np.percentile(np.abs(cols - midline[rows]), 99)) * self.work.spacing_mm[1]


def judge(candidates: list[Candidate], frame: Frame, params: XrayParams) -> None:
    """Set ``reason`` on every candidate that is a look-alike (in place)."""
    anatomy, work = frame.anatomy, frame.work
    device_level = float(np.quantile(work.image[anatomy.body], params.device_quantile)) \
        if anatomy.body.any() else float(work.image.max())
    for cand in candidates:
        cand.reason = _single_reason(cand, frame, params, device_level)
    _mark_nipples(candidates, frame, params)


def _single_reason(cand: Candidate, frame: Frame, params: XrayParams,
                   device_level: float) -> str:
    anatomy = frame.anatomy
    r, c = int(round(cand.row)), int(round(cand.col))
    over_lung = bool(anatomy.lungs[r, c])
    if not _near(anatomy.body, r, c, 3.0 / frame.work.pixel_mm):
        return "outside_body"
    if cand.peak_value >= device_level and cand.contrast >= params.device_min_contrast:
        return "device"
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
    if cand.elongation >= params.linear_elongation:
        return _linear_lookalike(cand, frame)
    return ""


def _linear_lookalike(cand: Candidate, frame: Frame) -> str:
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


def _mark_nipples(candidates: list[Candidate], frame: Frame, params: XrayParams) -> None:
    """Mirrored pairs of nipple-sized spots over the lower chest are nipple shadows."""
    pool = []
    for cand in candidates:
        if cand.reason or cand.diameter_mm < params.nipple_min_diameter_mm:
            continue
        offset, level = frame.offset_mm(cand.row, cand.col), frame.level(cand.row)
        if offset is not None and level is not None and 0.4 <= level <= 1.1:
            pool.append((cand, offset))
    tol = params.nipple_pair_tolerance_mm
    rows_mm = frame.work.spacing_mm[0]
    for i, (first, off_a) in enumerate(pool):
        for second, off_b in pool[i + 1:]:
            mirrored = abs(off_a + off_b) <= tol and off_a * off_b < 0
            level_ok = abs(first.row - second.row) * rows_mm <= tol
            if mirrored and level_ok and min(abs(off_a), abs(off_b)) > 30.0:
                first.reason = second.reason = "nipple"


def _near(mask: np.ndarray, r: int, c: int, reach: float) -> bool:
    k = int(np.ceil(reach))
    window = mask[max(0, r - k): r + k + 1, max(0, c - k): c + k + 1]
    return bool(window.any())
