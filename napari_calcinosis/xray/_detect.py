"""Soft-tissue calcification dots on a chest radiograph (frontal or lateral).

Pipeline (docs/clinical.md, "Chest radiographs"):

1. :mod:`._prep`: a block-mean copy at about 0.4 mm per pixel, normalised, with the
   collimator / label strips at the border marked dead.
2. :mod:`._anatomy`: body outline (direct exposure is the background), lung fields (two
   large dark regions), bone ridges (ribs, clavicles) and the spine band, the midline.
3. :mod:`._candidates`: multiscale centre-surround filter for 1-5 mm dots on three
   channels (the image; a top-hat near the outline), local contrast-to-noise ratio; each
   peak measured by :mod:`._measure` (size, elongation, isolation, Hessian ratio).
4. :mod:`._lookalikes`: ridges, lines, devices, nipples, costal cartilage, vessels and
   lung nodules are rejected with a reason.
5. :mod:`._lesions`: outline on the stored grid, side, region, layer (``skin`` /
   ``subcutaneous`` only when tangential at the body outline, else ``unknown``), morphology.

A projection cannot tell depth: a dot seen en face over a lung, bone or the mediastinum may be
in the skin of the front or the back, in the lung (a calcified granuloma) or in a vessel. Such
lesions carry ``layer = "unknown"`` and ``extra["confidence"] = "low"``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_calcinosis.summary import summarize
from napari_calcinosis.types import (
    AnalysisError, Lesion, Progress, Radiograph, Summary, XrayParams,
)

from ._anatomy import FilmAnatomy, segment_anatomy
from ._candidates import Candidate, detector_filters, find_candidates
from ._filters import binary_dilation
from ._lesions import build_lesion, orientation_signs, outline_on_stored
from ._lookalikes import ThoraxFrame, judge
from ._part import stated_part
from ._prep import WorkImage, _name, prepare

__all__ = ["XrayResult", "analyze_radiograph"]



@dataclass
class XrayResult:
    """What :func:`analyze_radiograph` found on one radiograph.

    Attributes
    ----------
    lesions : list of Lesion
        Kept dots, ids from 1, in the contract's vocabulary (``centroid_index`` = [row, col]
        on the stored grid, ``centroid_mm`` None, ``area_mm2`` or, without spacing, None with
        ``extra["area_px"]``).
    lesion_labels : numpy.ndarray
        ``int32`` (rows, cols) on the stored grid: 0 background, ``k`` the pixels of lesion id k.
    masks : dict of str to numpy.ndarray
        ``body``, ``lungs``, ``bone`` boolean masks on the stored grid.
    rejected : list of dict
        Candidates that looked like a dot but were rejected: ``row``, ``col`` (stored grid),
        ``reason`` (see :mod:`._lookalikes`), ``cnr``, ``diameter_mm``.
    midline_col : numpy.ndarray or None
        Stored-grid column of the fitted mid-sagittal line for every stored row.
    side_convention : str
        Where the side came from (PatientOrientation, or what was assumed).
    summary : Summary
        :func:`napari_calcinosis.summary.summarize` of this radiograph's lesions
        (``source = "radiograph"``). A lateral view's lesions have no known side, so its
        symmetry is ``insufficient``; a study summary should use the frontal view.
    """

    lesions: list[Lesion]
    lesion_labels: np.ndarray
    masks: dict[str, np.ndarray]
    warnings: list[str]
    params: XrayParams
    midline_col: np.ndarray | None
    rejected: list[dict[str, Any]] = field(default_factory=list)
    side_convention: str = ""
    spacing_known: bool = False
    summary: Summary = field(default_factory=lambda: Summary(source="radiograph"))


def analyze_radiograph(rad: Radiograph, *, params: XrayParams | None = None,
                       progress: Progress | None = None) -> XrayResult:
    """Detect soft-tissue calcification dots on a radiograph.

    Parameters
    ----------
    rad : Radiograph
        The radiograph; ``image`` larger = more attenuating (MONOCHROME1 already inverted).
    params : XrayParams, optional
        Thresholds; defaults when omitted.
    progress : callable, optional
        Called as ``progress(fraction, message)`` as the steps finish.

    Returns
    -------
    XrayResult
        Lesions, their label image, the anatomy masks, rejected candidates and warnings.

    Raises
    ------
    AnalysisError
        When the image is not a usable 2-D radiograph (too small, blank, non-finite).
    """
    params = params or XrayParams()
    report = progress or (lambda fraction, message: None)
    part, evidence = stated_part(rad.info)
    if part == "other":
        raise AnalysisError(f"radiograph {_name(rad)}: {evidence} is not the chest; the "
                            "radiograph detector was built for chest films")
    report(0.0, "preparing the radiograph")
    work = prepare(rad, params)
    report(0.15, "finding the body outline, lungs and bones")
    with ThreadPoolExecutor(max_workers=1) as pool:
        # the detector's filtering needs no anatomy: it runs (OpenCV and numpy, outside the
        # GIL) while the anatomy is found
        filtering = pool.submit(detector_filters, work, params)
        anatomy = segment_anatomy(work, params=params, view=rad.view,
                                  body_part=rad.info.body_part)
        filters = filtering.result()
    if rad.view != "lateral" and not anatomy.is_chest and part != "chest":
        raise AnalysisError(
            f"radiograph {_name(rad)} does not look like a chest film (no two lung fields "
            "were found) and its header does not say it is one: the radiograph detector was "
            "built for chest films, so calcifications were not searched for")
    left, down, convention = orientation_signs(rad)
    frame = ThoraxFrame(anatomy=anatomy, work=work, left_sign=left, down_sign=down)
    report(0.35, "searching for dense dots")
    candidates, cnr = find_candidates(work, search_region(work, anatomy, params), params,
                                      outline_depth_mm=anatomy.outline_depth_mm,
                                      spine=anatomy.spine, filters=filters)
    report(0.75, f"judging {len(candidates)} candidates")
    judge(candidates, frame, params, cnr=cnr)
    kept = sorted((c for c in candidates if not c.reason), key=lambda c: (c.row, c.col))
    lesions, labels = _lesions(rad, work, frame, kept, params)
    warnings = [*work.warnings, *anatomy.warnings]
    if convention.startswith("assumed"):
        warnings.append(f"the file has no PatientOrientation; side {convention}")
    report(1.0, f"{len(lesions)} dots kept of {len(candidates)} candidates")
    return XrayResult(
        lesions=lesions, lesion_labels=labels, masks=_stored_masks(work, anatomy),
        warnings=warnings, params=params, midline_col=_stored_midline(work, anatomy),
        rejected=_rejected(work, [c for c in candidates if c.reason]),
        side_convention=convention, spacing_known=work.spacing_known,
        summary=summarize(lesions, source="radiograph"))


def search_region(work: WorkImage, anatomy: FilmAnatomy, params: XrayParams) -> np.ndarray:
    """Where dots are sought: the body (and a 3 mm rim outside its outline, whose threshold
    can cut thin skin), away from the image border and dead strips."""
    region = binary_dilation(anatomy.body, iterations=max(1, round(work.px(3.0))))
    margin = max(1, int(round(work.px(params.border_margin_mm))))
    if work.dead.any():
        region &= ~binary_dilation(work.dead, iterations=margin)
    region[:margin] = region[-margin:] = False
    region[:, :margin] = region[:, -margin:] = False
    return region


def _lesions(rad: Radiograph, work: WorkImage, frame: ThoraxFrame, kept: list[Candidate],
             params: XrayParams) -> tuple[list[Lesion], np.ndarray]:
    labels = np.zeros(rad.image.shape, dtype=np.int32)
    lesions: list[Lesion] = []
    accepted: list[Candidate] = []
    for cand in sorted(kept, key=lambda c: -c.cnr):
        if any(_same_spot(cand, other, work, params) for other in accepted):
            continue  # found twice (by both detection channels near the skin band's edge)
        accepted.append(cand)
    for cand in sorted(accepted, key=lambda c: (c.row, c.col)):
        rows, cols = outline_on_stored(rad.image, work, cand, params)
        free = labels[rows, cols] == 0
        if free.sum() == 0:
            continue  # the same spot reached from a second peak
        rows, cols = rows[free], cols[free]
        lesion = build_lesion(len(lesions) + 1, rad, work, cand, frame, (rows, cols), params)
        labels[rows, cols] = lesion.id
        lesions.append(lesion)
    return lesions, labels


def _same_spot(a: Candidate, b: Candidate, work: WorkImage, params: XrayParams) -> bool:
    gap_mm = np.hypot((a.row - b.row) * work.spacing_mm[0], (a.col - b.col) * work.spacing_mm[1])
    return bool(gap_mm < max(params.min_separation_mm, a.radius_mm + b.radius_mm))


def _stored_masks(work: WorkImage, anatomy: FilmAnatomy) -> dict[str, np.ndarray]:
    return {name: work.mask_to_stored(getattr(anatomy, name))
            for name in ("body", "lungs", "bone")}


def _stored_midline(work: WorkImage, anatomy: FilmAnatomy) -> np.ndarray | None:
    if anatomy.midline_col is None:
        return None
    f = work.factor
    work_rows = (np.arange(work.stored_shape[0]) - (f - 1) / 2.0) / f
    fit = np.polyfit(np.arange(anatomy.midline_col.size), anatomy.midline_col, 1)
    return np.polyval(fit, work_rows) * f + (f - 1) / 2.0


def _rejected(work: WorkImage, rejected: list[Candidate]) -> list[dict[str, Any]]:
    """Rejected candidates as ``row``, ``col`` (stored grid), ``reason``, ``cnr`` and
    ``diameter_mm``, rounded for the findings."""
    if not rejected:
        return []
    stored = work.to_stored(np.array([[c.row, c.col] for c in rejected]))
    return [{"row": round(row, 1), "col": round(col, 1), "reason": c.reason,
             "cnr": round(float(c.cnr), 2), "diameter_mm": round(float(c.diameter_mm), 2)}
            for (row, col), c in zip(stored.tolist(), rejected)]
