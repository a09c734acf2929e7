"""From a kept candidate to a contract lesion: outline on the stored grid, and attributes.

Side convention (DICOM PS3.3 C.7.6.1.1.1, PatientOrientation): the first value is the
patient direction of increasing column, the second that of increasing row. When the file has
no PatientOrientation, a frontal view (PA or AP) is taken as displayed by convention, as if
facing the patient: the patient's left on the image's right (increasing column), feet down.
On a lateral view (or a column direction A/P/H/F) position says nothing about the side: such a
lesion gets ``side = "midline"`` with ``extra["side_known"] = False``, which a summary must read
as "side unknown", not as "on the mid-sagittal plane".
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from napari_calcinosis.types import Lesion, Radiograph, XrayParams

from ._candidates import white_tophat
from ._filters import gaussian
from ._lookalikes import ThoraxFrame, where_projected
from ._measure import Candidate, half_contrast_region, ring_plane
from ._prep import WorkImage


def orientation_signs(rad: Radiograph) -> tuple[int, int, str]:
    """``(left_sign, down_sign, source)`` of a radiograph's display orientation.

    ``left_sign`` is +1 when the patient's left is at increasing column, -1 at decreasing
    column, 0 when the column axis is not left-right; ``down_sign`` is +1 when increasing row
    goes toward the feet, -1 toward the head, 0 when unknown.
    """
    orient = [str(v).upper() for v in rad.patient_orientation]
    if len(orient) >= 2 and orient[0] and orient[1]:
        left = 1 if orient[0][0] == "L" else -1 if orient[0][0] == "R" else 0
        down = 1 if orient[1][0] == "F" else -1 if orient[1][0] == "H" else 0
        return left, down, "PatientOrientation"
    if rad.view == "lateral":
        return 0, 1, "lateral view without PatientOrientation"
    return 1, 1, "assumed: conventional display (patient's left on the image's right)"


def outline_on_stored(image: np.ndarray, work: WorkImage, cand: Candidate,
                      params: XrayParams) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (rows, cols) of the spot on the stored grid: the half-contrast region.

    The local background is a plane fitted to a ring 1-4 mm outside the spot's radius, so
    a spot on a sloping background (the body edge, a rib shadow) is outlined fairly; a spot
    found on the top-hat near the outline is outlined on the patch's top-hat, so that its
    region does not run into the outline's edge or a fat / muscle step beside it.
    """
    spacing = work.stored_spacing_mm
    px_mm = float(np.sqrt(spacing[0] * spacing[1]))
    centre = work.to_stored(np.array([cand.row, cand.col]))
    row, col = int(round(centre[0])), int(round(centre[1]))
    reach = int(np.ceil((max(3.0 * cand.radius_mm, 6.0) + 4.0) / px_mm))
    r0, r1 = max(0, row - reach), min(image.shape[0], row + reach + 1)
    c0, c1 = max(0, col - reach), min(image.shape[1], col + reach + 1)
    offset, span = work.scale
    patch = (image[r0:r1, c0:c1].astype(np.float32) - offset) / span
    patch = gaussian(patch, max(0.5, 0.35 * work.factor))
    if cand.channel != "image":  # found on the top-hat: outlined on it (no edge to leak into)
        patch = white_tophat(patch, params.tophat_radius_mm / px_mm)
    rr, cc = np.mgrid[r0:r1, c0:c1]
    dist = np.hypot((rr - row) * spacing[0], (cc - col) * spacing[1])
    ring = (dist >= cand.radius_mm + 1.0) & (dist <= cand.radius_mm + 4.0)
    detrended = patch - ring_plane(patch, ring, rr, cc)
    core = dist <= cand.radius_mm + work.pixel_mm
    peak = np.unravel_index(np.argmax(np.where(core, detrended, -np.inf)), patch.shape)
    region = half_contrast_region(detrended, float(detrended[peak]), int(peak[0]), int(peak[1]))
    region &= dist <= 0.5 * params.max_diameter_mm + 2.0
    if not region.any():
        region[peak] = True
    rows, cols = np.nonzero(region)
    return rows + r0, cols + c0


def max_diameter_px(rows: np.ndarray, cols: np.ndarray, spacing: tuple[float, float]) -> float:
    """Largest distance between two pixels of a region, plus one pixel (in spacing units)."""
    coords = np.stack([rows * spacing[0], cols * spacing[1]], axis=1).astype(float)
    if coords.shape[0] > 400:  # the farthest pair lies on the convex hull's boundary
        keep = _boundary(rows, cols)
        coords = coords[keep]
    diffs = coords[:, None, :] - coords[None, :, :]
    return float(np.sqrt((diffs**2).sum(axis=2)).max()) + float(np.mean(spacing))


def _boundary(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    mask = np.zeros((rows.max() - rows.min() + 3, cols.max() - cols.min() + 3), dtype=bool)
    mask[rows - rows.min() + 1, cols - cols.min() + 1] = True
    edge = mask & ~ndi.binary_erosion(mask)
    return edge[rows - rows.min() + 1, cols - cols.min() + 1]


def side_of(cand: Candidate, frame: ThoraxFrame, params: XrayParams,
            laterality: str = "") -> tuple[str, bool]:
    """Patient side of a spot, and whether it could be told at all."""
    offset = frame.offset_mm(cand.row, cand.col)
    if offset is None:
        if laterality.upper() in ("L", "R"):
            return ("left" if laterality.upper() == "L" else "right"), True
        return "midline", False
    if abs(offset) <= params.midline_tolerance_mm:
        return "midline", True
    return ("left" if offset > 0 else "right"), True


def region_of(cand: Candidate, frame: ThoraxFrame, zone: str, view: str | None,
              column_direction: str) -> str:
    """Body region (contract vocabulary) of a spot; ``unknown`` when the image cannot say."""
    if view == "lateral":
        return _lateral_region(cand, frame, zone, column_direction)
    offset, level, half = frame.offset_mm(cand.row, cand.col), frame.level(cand.row), \
        frame.hemithorax_mm()
    if offset is None or level is None or half is None or not frame.anatomy.is_chest:
        return "unknown"
    r, c = int(round(cand.row)), int(round(cand.col))
    if frame.anatomy.apart[r, c]:
        return "upper_limb"  # a part apart from the trunk on a chest film is an arm
    lateral = abs(offset) / half
    if level < -0.03:
        return "head_neck" if lateral < 0.35 else "shoulder_girdle"
    if lateral > 1.35:
        return "upper_limb" if level < 0.6 else "chest_wall_lateral"
    if level > 1.05:
        return "flank" if lateral > 0.75 else "abdominal_wall"
    if lateral > 0.8 and zone == "outline":
        if level < 0.15:
            return "shoulder_girdle"
        return "axilla" if level < 0.45 else "chest_wall_lateral"
    if level < 0.1 and lateral > 0.55 and zone == "outline":
        return "shoulder_girdle"
    return "unknown"


def _lateral_region(cand: Candidate, frame: ThoraxFrame, zone: str, column_direction: str) -> str:
    """On a lateral view only tangential spots have a region: front, back or top."""
    if zone != "outline" or column_direction not in ("A", "P"):
        return "unknown"
    body = frame.anatomy.body
    r = int(round(cand.row))
    cols = np.nonzero(body[r])[0]
    if cols.size == 0:
        return "unknown"
    toward_larger = cand.col > 0.5 * (cols[0] + cols[-1])
    anterior = toward_larger == (column_direction == "A")
    return "chest_wall_anterior" if anterior else "chest_wall_posterior"


def morphology_of(cand: Candidate, diameter_mm: float, params: XrayParams) -> str:
    """``linear`` when elongated, else ``nodular`` from ``nodular_diameter_mm``, else punctate."""
    if cand.elongation >= params.linear_elongation:
        return "linear"
    return "nodular" if diameter_mm >= params.nodular_diameter_mm else "punctate"


def layer_of(zone: str, depth_mm: float, params: XrayParams) -> str:
    """Skin or subcutaneous when tangential at the body outline; otherwise unknown."""
    if zone != "outline":
        return "unknown"
    return "skin" if depth_mm <= params.skin_depth_mm else "subcutaneous"


def build_lesion(ident: int, rad: Radiograph, work: WorkImage, cand: Candidate, frame: ThoraxFrame,
                 pixels: tuple[np.ndarray, np.ndarray], params: XrayParams) -> Lesion:
    """The contract lesion for a kept candidate whose stored-grid pixels are ``pixels``."""
    rows, cols = pixels
    known = work.spacing_known
    spacing = work.stored_spacing_mm if known else (1.0, 1.0)
    diameter = max_diameter_px(rows, cols, spacing)
    diameter_mm_est = diameter if known else diameter * float(np.mean(work.stored_spacing_mm))
    zone, depth = where_projected(cand, frame, params)
    orient = [str(v).upper() for v in rad.patient_orientation]
    side, side_known = side_of(cand, frame, params, rad.image_laterality)
    extra = {
        "contrast": round(float(cand.contrast), 4), "cnr": round(float(cand.cnr), 2),
        "texture_cnr": round(float(cand.texture_cnr), 2),
        "tangential": zone == "outline", "projected_over": zone,
        "depth_mm": None if not np.isfinite(depth) else round(depth, 1),
        "confidence": "high" if zone == "outline" else
        "medium" if zone == "soft_tissue" else "low",
        "side_known": side_known, "area_px": int(rows.size),
        "elongation": round(float(cand.elongation), 2),
        "hessian_ratio": round(float(cand.hessian_ratio), 2),
        "isolation": round(float(cand.isolation), 2),
        "detection_channel": cand.channel,
    }
    if not known:
        extra["max_diameter_px"] = round(diameter, 1)
    offset = frame.offset_mm(cand.row, cand.col)
    if offset is not None:
        # signed distance to the midline (patient's left positive) and height, in mm, the
        # form core.symmetry matches mirrored partners with (assumed mm without spacing)
        height = float(cand.row * work.spacing_mm[0])
        extra["midplane_mm"] = [round(float(offset), 2), round(height, 2)]
    return Lesion(
        id=ident, series_instance_uid=rad.info.series_instance_uid,
        centroid_index=[round(float(rows.mean()), 2), round(float(cols.mean()), 2)],
        layer=layer_of(zone, depth, params), side=side,
        region=region_of(cand, frame, zone, rad.view, orient[0][:1] if orient else ""),
        morphology=morphology_of(cand, diameter_mm_est, params), source="auto",
        centroid_mm=None, volume_mm3=None, peak_hu=None,
        area_mm2=round(rows.size * spacing[0] * spacing[1], 3) if known else None,
        max_diameter_mm=round(diameter, 2) if known else None, extra=extra)
