"""CT lesions projected onto the frontal radiograph, and which radiograph dots the CT confirms.

Real chest radiographs carry no patient-coordinate geometry, so the CT is registered to the
radiograph through a digitally reconstructed radiograph (:mod:`._drr`,
:mod:`._register`: parallel projection, translation and isotropic scale). Each CT
lesion's ``centroid_mm`` (LPS) is then projected to radiograph ``(row, col)``, and a
radiograph lesion is **confirmed** when a soft-tissue CT lesion projects within

    ``match_base_mm`` (registration error, 5 mm) + radiograph dot radius + CT lesion radius
    + ``|off-axis distance| * |depth offset| / source_detector_mm`` (beam divergence)

of it, all in mm at the patient (``CTLinkParams``). Several CT deposits superimposed along
the ray may confirm one dot. The link is refused (every dot ``not_assessed`` and a warning
sentence, no confirmation claimed) when the radiograph is not frontal, the CT and the
radiograph name different patients, the CT is oblique, the CT's projection covers too little
of the radiograph, the best scale lies at the end of the searched range, or the
registration's correlation is below ``min_score``.

In ``findings.json`` (extra lesion keys, the contract's keys unchanged), every radiograph
lesion gets ``ct_confirmation`` (``confirmed``, ``not_seen_on_ct``, ``outside_ct_coverage``,
``not_assessed``), ``confirmed_by_ct_lesions`` (soft-tissue CT lesion ids) and
``ct_non_soft_tissue_lesions`` (cartilage, vessel or visceral CT calcifications projected on
the dot: the dot may be one of those instead); every CT lesion gets
``radiograph_projection`` (``series_instance_uid``, ``row``, ``col``, ``inside_image``, on
the first frontal radiograph linked) and ``radiograph_lesion_ids``. The registration of each
pair is recorded in ``parameters["ct_radiograph_link"]``.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_calcinosis.types import AnalysisError, Findings, Lesion, Radiograph, Volume

from ._drr import display_axes
from ._register import CTLinkParams, Registration, register_drr

__all__ = ["CONFIRMATION_STATES", "CTLink", "CTLinkParams", "link_ct_to_radiograph",
           "link_study", "prepare_links"]

CONFIRMATION_STATES = ("confirmed", "not_seen_on_ct", "outside_ct_coverage", "not_assessed")
_RECENT: list[tuple[Any, Any, tuple, Registration]] = []
_RECENT_SIZE = 4
# A viewer registers in its detection worker (prepare_links) while its main thread may
# assemble (link_study): the remembered list is read and changed under this lock.
_RECENT_LOCK = threading.Lock()


@dataclass
class CTLink:
    """One CT linked to one radiograph.

    Attributes
    ----------
    radiograph_uid, ct_uid : str
        Series Instance UIDs.
    accepted : bool
        Whether the registration is trusted; when not, ``reason`` says why (a sentence).
    registration : Registration or None
        The alignment found (also when refused for a poor score), ``None`` when none was tried.
    projections : dict of int to tuple of float
        CT lesion id -> projected ``(row, col)`` (accepted links only).
    status : dict of int to str
        Radiograph lesion id -> one of :data:`CONFIRMATION_STATES`.
    confirmed_by, non_soft_tissue : dict of int to list of int
        Radiograph lesion id -> soft-tissue / other CT lesion ids projected on it.
    matched : dict of int to list of int
        CT lesion id -> radiograph lesion ids it lies on.
    """

    radiograph_uid: str
    ct_uid: str
    accepted: bool
    reason: str = ""
    registration: Registration | None = None
    projections: dict[int, tuple[float, float]] = field(default_factory=dict)
    status: dict[int, str] = field(default_factory=dict)
    confirmed_by: dict[int, list[int]] = field(default_factory=dict)
    non_soft_tissue: dict[int, list[int]] = field(default_factory=dict)
    matched: dict[int, list[int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def link_ct_to_radiograph(volume: Volume, rad: Radiograph, ct_lesions: list[Lesion],
                          xray_lesions: list[Lesion], *, params: CTLinkParams | None = None,
                          body_mask: np.ndarray | None = None) -> CTLink:
    """Register a CT to a frontal radiograph and match their lesions (module docstring).

    Parameters
    ----------
    volume : Volume
        The CT.
    rad : Radiograph
        The radiograph (a lateral view is refused).
    ct_lesions : list of Lesion
        The CT's lesions (``centroid_mm`` in LPS); only soft-tissue ones confirm.
    xray_lesions : list of Lesion
        The radiograph's lesions (``centroid_index`` = ``[row, col]``).
    params : CTLinkParams, optional
        Search ranges, score threshold and matching tolerance.
    body_mask : numpy.ndarray, optional
        The CT's body (e.g. CT tissue labels > 0), else found by threshold.

    Returns
    -------
    CTLink
    """
    params = params or CTLinkParams()
    link = CTLink(rad.info.series_instance_uid, volume.info.series_instance_uid, False)
    axes, refusal = _frontal_axes(rad, link.warnings)
    refusal = refusal or _identity_refusal(volume, rad)
    if refusal is None:
        try:
            link.registration = _registered(volume, rad, axes, params, body_mask)
        except AnalysisError as exc:
            refusal = str(exc)
    if refusal is None:
        refusal = _quality_refusal(link.registration, params)
    link.accepted, link.reason = refusal is None, refusal or ""
    if link.accepted:
        _match(link, rad, ct_lesions, xray_lesions, params)
    else:
        link.status = {int(les.id): "not_assessed" for les in xray_lesions}
    return link


def _registered(volume: Volume, rad: Radiograph, axes, params: CTLinkParams,
                body_mask: np.ndarray | None) -> Registration:
    """:func:`register_drr`, remembered for the last few image pairs: the viewer assembles
    the study again each time a series' detection joins, with the same CT and radiograph."""
    key = (tuple(np.round(volume.origin_lps_mm, 6)),
           tuple(np.round(np.asarray(volume.direction_lps).ravel(), 6)),
           tuple(volume.spacing_zyx_mm), rad.pixel_spacing_mm,
           tuple(tuple(a) for a in axes), params, body_mask is not None)
    with _RECENT_LOCK:
        for hu_ref, image_ref, known, reg in _RECENT:
            if hu_ref() is volume.hu and image_ref() is rad.image and known == key:
                return reg
    reg = register_drr(volume, rad, *axes, params=params, body_mask=body_mask)
    with _RECENT_LOCK:
        _RECENT.insert(0, (weakref.ref(volume.hu), weakref.ref(rad.image), key, reg))
        del _RECENT[_RECENT_SIZE:]
    return reg


def _frontal_axes(rad: Radiograph, warnings: list[str]):
    if rad.view not in ("frontal", None):
        return None, f"it is a {rad.view} view; only a frontal radiograph can be registered"
    axes = display_axes(tuple(rad.patient_orientation))
    if axes is not None:
        return axes, None
    if rad.patient_orientation:
        return None, (f"its PatientOrientation {'/'.join(rad.patient_orientation)} is not a "
                      "frontal one")
    if rad.view is None:
        return None, "neither its view nor its PatientOrientation says it is frontal"
    warnings.append("the radiograph has no PatientOrientation; the CT was projected with the "
                    "usual PA display (patient's left on the image's right, head at the top)")
    return display_axes(("L", "F")), None


def _identity_refusal(volume: Volume, rad: Radiograph) -> str | None:
    a, b = volume.info.patient_id.strip(), rad.info.patient_id.strip()
    if a and b and a != b:
        return f"the CT and the radiograph belong to different patients (IDs {a!r} and {b!r})"
    return None


def _quality_refusal(reg: Registration, params: CTLinkParams) -> str | None:
    if reg.overlap_fraction < params.min_overlap_fraction or reg.score <= -1.0:
        return (f"the CT covers too little of the radiograph (at best {reg.overlap_fraction:.0%},"
                f" at least {params.min_overlap_fraction:.0%} needed)")
    if reg.at_scale_limit:
        return ("the registration's scale ran to the end of the searched range "
                f"({reg.mm_per_pixel:.3f} mm per pixel), so it is not trusted")
    if reg.score < params.min_score:
        return (f"the registration is poor (correlation {reg.score:.2f}, at least "
                f"{params.min_score:.2f} needed)")
    return None


def _match(link: CTLink, rad: Radiograph, ct_lesions: list[Lesion], xray_lesions: list[Lesion],
           params: CTLinkParams) -> None:
    reg = link.registration
    ct = [les for les in ct_lesions if les.centroid_mm is not None]
    pixels = reg.lps_to_pixel(np.array([les.centroid_mm for les in ct], float).reshape(-1, 3))
    link.projections = {int(les.id): (float(r), float(c)) for les, (r, c) in zip(ct, pixels)}
    link.matched = {int(les.id): [] for les in ct}
    centre = (np.array(rad.image.shape[:2], float) - 1.0) / 2.0
    mid_depth = float(np.mean(reg.drr.depth_lps_mm))
    for xl in xray_lesions:
        xid = int(xl.id)
        row, col = (float(v) for v in xl.centroid_index[:2])
        link.confirmed_by[xid], link.non_soft_tissue[xid] = [], []
        if not _covered(reg, row, col):
            link.status[xid] = "outside_ct_coverage"
            continue
        r_x = _xray_radius_mm(xl, reg.mm_per_pixel)
        for les, (pr, pc) in zip(ct, pixels):
            off_axis = float(np.hypot(pr - centre[0], pc - centre[1])) * reg.mm_per_pixel
            divergence = off_axis * abs(les.centroid_mm[1] - mid_depth) / params.source_detector_mm
            tol = params.match_base_mm + r_x + 0.5 * (les.max_diameter_mm or 0.0) + divergence
            if np.hypot(pr - row, pc - col) * reg.mm_per_pixel <= tol:
                (link.confirmed_by if les.is_soft_tissue else link.non_soft_tissue)[xid].append(
                    int(les.id))
                link.matched[int(les.id)].append(xid)
        link.status[xid] = "confirmed" if link.confirmed_by[xid] else "not_seen_on_ct"


def _covered(reg: Registration, row: float, col: float) -> bool:
    """Whether radiograph pixel (row, col) lies where the CT's field of view projects."""
    drr = reg.drr
    v = reg.v_origin_mm + row * reg.mm_per_pixel
    u = reg.u_origin_mm + col * reg.mm_per_pixel
    i, j = round((v - drr.v0_mm) / drr.step_mm), round((u - drr.u0_mm) / drr.step_mm)
    return bool(0 <= i < drr.footprint.shape[0] and 0 <= j < drr.footprint.shape[1]
                and drr.footprint[i, j])


def _xray_radius_mm(lesion: Lesion, mm_per_pixel: float) -> float:
    if lesion.max_diameter_mm:
        return 0.5 * float(lesion.max_diameter_mm)
    area_px = float(lesion.extra.get("area_px") or 0.0)
    return float(np.sqrt(area_px / np.pi)) * mm_per_pixel


def link_study(findings: Findings, series: list[Any], *,
               params: CTLinkParams | None = None) -> list[CTLink]:
    """Link the study's CT to each of its radiographs and write the result into the findings.

    A no-op unless the study has an analysed CT and an analysed radiograph. The CT is the
    one the summary would use (thinnest slices). Radiograph lesions of every radiograph get
    ``ct_confirmation`` (``not_assessed`` on a lateral view); CT lesions get their
    projection on the first frontal radiograph linked. Refusals become warnings.

    Parameters
    ----------
    findings : Findings
        With final lesion ids (after renumbering); modified in place.
    series : list of analysis.SeriesResult
        The study's series with their detection results (``ct``, ``xray``).
    params : CTLinkParams, optional
        Link parameters, recorded in ``findings.parameters["ct_radiograph_link"]``.

    Returns
    -------
    list of CTLink
        One per radiograph.
    """
    params = params or CTLinkParams()
    ct, rads = _link_inputs(series)
    if ct is None:
        return []
    by_series = _lesions_by_series(findings.lesions)
    ct_lesions = by_series.get(ct.entry.series_instance_uid, [])
    mask = _body_mask(ct)
    links = [link_ct_to_radiograph(ct.image, item.image, ct_lesions,
                                   by_series.get(item.entry.series_instance_uid, []),
                                   params=params, body_mask=mask) for item in rads]
    _write(findings, links, ct_lesions, by_series, ct, rads)
    findings.parameters["ct_radiograph_link"] = {
        **params.to_dict(),
        "registrations": [_link_record(link) for link in links]}
    return links


def prepare_links(series: list[Any], *, params: CTLinkParams | None = None) -> int:
    """Register the study's CT to its frontal radiographs ahead of :func:`link_study`.

    The registration (about a second per pair) is remembered for the same CT and
    radiograph arrays, so a viewer can call this in its detection worker thread and the
    :func:`link_study` of its next assembly on the main thread finds the result ready.
    Pairs :func:`link_study` would refuse before registering (lateral view, other patient)
    are skipped; a registration that fails is left for :func:`link_study` to report.

    Parameters
    ----------
    series : list of analysis.SeriesResult
        The study's series with their detection results, as :func:`link_study` gets them.
    params : CTLinkParams, optional
        The parameters :func:`link_study` will use (default: the defaults).

    Returns
    -------
    int
        The number of CT-radiograph pairs registered (or found already registered).
    """
    params = params or CTLinkParams()
    ct, rads = _link_inputs(series)
    if ct is None:
        return 0
    mask, done = _body_mask(ct), 0
    for item in rads:
        axes, refusal = _frontal_axes(item.image, [])
        if refusal is not None or _identity_refusal(ct.image, item.image) is not None:
            continue
        try:
            _registered(ct.image, item.image, axes, params, mask)
        except AnalysisError:
            continue
        done += 1
    return done


def _link_inputs(series: list[Any]) -> tuple[Any, list[Any]]:
    """The CT the summary would use (thinnest slices) and the analysed radiographs;
    ``(None, [])`` unless both exist."""
    cts = [s for s in series if s.ct is not None and isinstance(s.image, Volume)]
    rads = [s for s in series if s.xray is not None and isinstance(s.image, Radiograph)]
    if not cts or not rads:
        return None, []
    ct = min(cts, key=lambda s: (s.entry.slice_thickness_mm or s.entry.spacing_mm[0],
                                 -s.entry.shape[0]))
    return ct, rads


def _lesions_by_series(lesions: list[Lesion]) -> dict[str, list[Lesion]]:
    out: dict[str, list[Lesion]] = {}
    for lesion in lesions:
        out.setdefault(lesion.series_instance_uid, []).append(lesion)
    return out


def _body_mask(ct_item: Any) -> np.ndarray | None:
    labels = getattr(ct_item.ct, "tissue_labels", None)
    if labels is None or tuple(labels.shape) != tuple(ct_item.image.shape):
        return None
    return labels > 0


def _write(findings: Findings, links: list[CTLink], ct_lesions: list[Lesion],
           by_series: dict[str, list[Lesion]], ct: Any, rads: list[Any]) -> None:
    """Lesion extras and warnings from the links (new ``extra`` dicts: the detectors' lesion
    objects share theirs with the findings)."""
    for link, item in zip(links, rads):
        for lesion in by_series.get(link.radiograph_uid, []):
            lid = int(lesion.id)
            lesion.extra = {**lesion.extra,
                            "ct_confirmation": link.status.get(lid, "not_assessed"),
                            "confirmed_by_ct_lesions": link.confirmed_by.get(lid, []),
                            "ct_non_soft_tissue_lesions": link.non_soft_tissue.get(lid, [])}
        findings.warnings.extend(_link_warnings(link, item, ct))
    first = next(((link, item.image) for link, item in zip(links, rads) if link.accepted),
                 None)
    for lesion in ct_lesions:
        lesion.extra = {**lesion.extra, **_projection_extra(lesion, *(first or (None, None)))}


def _projection_extra(lesion: Lesion, link: CTLink | None,
                      rad: Radiograph | None) -> dict[str, Any]:
    lid = int(lesion.id)
    if link is None or lid not in link.projections:
        return {"radiograph_projection": None, "radiograph_lesion_ids": []}
    row, col = link.projections[lid]
    rows, cols = rad.image.shape[:2]
    return {"radiograph_projection": {
                "series_instance_uid": link.radiograph_uid, "row": round(row, 2),
                "col": round(col, 2),
                "inside_image": bool(0 <= row <= rows - 1 and 0 <= col <= cols - 1)},
            "radiograph_lesion_ids": link.matched.get(lid, [])}


def _link_warnings(link: CTLink, item: Any, ct: Any) -> list[str]:
    info = item.image.info
    label = info.series_description or link.radiograph_uid
    name = f"Series {info.modality or '?'} {label!r}"
    ct_name = ct.image.info.series_description or link.ct_uid
    out = [f"{name}: {w}" for w in link.warnings]
    if not link.accepted:
        out.append(f"{name}: the CT ({ct_name!r}) was not projected onto this radiograph and "
                   f"no radiograph dot is called confirmed by CT: {link.reason}.")
        return out
    counts = {s: sum(v == s for v in link.status.values()) for s in CONFIRMATION_STATES}
    out.append(f"{name}: CT ({ct_name!r}) registered to this radiograph by a DRR (correlation "
               f"{link.registration.score:.2f}, {link.registration.mm_per_pixel:.3f} mm per "
               f"pixel at the patient): {counts['confirmed']} dot(s) confirmed by CT, "
               f"{counts['not_seen_on_ct']} not seen on CT, {counts['outside_ct_coverage']} "
               "outside the CT's coverage. Projection ignores beam divergence (tolerance widened "
               "instead).")
    return out


def _link_record(link: CTLink) -> dict[str, Any]:
    record: dict[str, Any] = {"radiograph_series_instance_uid": link.radiograph_uid,
                              "ct_series_instance_uid": link.ct_uid,
                              "accepted": link.accepted, "reason": link.reason}
    if link.registration is not None:
        record.update(link.registration.to_dict())
    return record
