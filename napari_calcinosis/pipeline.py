"""Study -> findings: run every analysis step on a loaded study and assemble ``Findings``.

This is the one place that turns a :class:`~napari_calcinosis.types.Study` into the
findings object that the command line, the panels and every exporter share.
:func:`detector_for` is the one place that decides which detector a series gets (CT volumes
the CT detector, radiographs the radiograph detector, anything else none); lesion ids are
made unique across the study; the summary comes from the CT when there is one
(``source = "CT"``), otherwise from one radiograph; the differential comes from
:func:`napari_calcinosis.classify.classify` with the clinical input.

Two steps: :func:`detect_series` (detection of every series) and :func:`assemble_result`
(ids, summary, warnings, parameters, the reader's annotations, differential);
:func:`analyze_study` does both. The viewer detects series one at a time (with the same
:func:`detector_for`) and assembles its results with the same :func:`assemble_result`, so
its export equals the command line's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from napari_calcinosis import __version__
from napari_calcinosis.annotations import (
    AnnotationRecord,
    AppliedAnnotations,
    SeriesLabels,
    apply_to_findings,
    to_reader_marks,
)
from napari_calcinosis.classify import Differential, classify
from napari_calcinosis.clinical import ClinicalInput
from napari_calcinosis.ct import analyze_volume
from napari_calcinosis.fusion import link_study
from napari_calcinosis.summary import summary_series
from napari_calcinosis.types import (
    AnalysisError,
    CTParams,
    Findings,
    Lesion,
    NoImageSeriesError,
    Progress,
    Radiograph,
    SeriesEntry,
    Study,
    Summary,
    Volume,
    XrayParams,
    no_progress,
    sub_progress,
)
from napari_calcinosis.xray import analyze_radiograph, stated_part

__all__ = ["DETECTORS", "SOFTWARE_NAME", "AnalysisResult", "Detector", "SeriesResult",
           "analyze_study", "assemble_result", "detect_series", "detector_for",
           "not_analysed_reason", "series_entry"]

SOFTWARE_NAME = "napari-calcinosis"


@dataclass(frozen=True)
class Detector:
    """One detector: how it runs, with which parameters, and its share of the progress.

    ``run(image, params=..., progress=...)`` returns a result with ``lesions``,
    ``lesion_labels``, ``summary``, ``warnings`` and ``params``.
    """

    name: str
    run: Callable[..., Any]
    params_type: type
    #: Relative share of a study's progress bar (a CT takes far longer than a radiograph).
    weight: float
    #: Field of :class:`SeriesResult` that holds this detector's result.
    result_field: str


#: The detectors by name; :func:`detector_for` chooses among them.
DETECTORS: dict[str, Detector] = {
    "ct": Detector("ct", analyze_volume, CTParams, 5.0, "ct"),
    "radiograph": Detector("radiograph", analyze_radiograph, XrayParams, 1.0, "xray"),
}


#: Radiograph modalities the radiograph detector was built for (RG: general radiography);
#: secondary captures (SC, OT) only when they say they are of the chest.
CHEST_FILM_MODALITIES = {"CR", "DX", "RG", ""}
_CAPTURE_MODALITIES = {"SC", "OT"}


def detector_for(image: Volume | Radiograph) -> Detector | None:
    """The detector a series gets: CT volumes and chest radiographs each their own, else
    none (:func:`not_analysed_reason` says why)."""
    return None if not_analysed_reason(image) else \
        DETECTORS["radiograph" if isinstance(image, Radiograph) else "ct"]


def not_analysed_reason(image: Volume | Radiograph) -> str | None:
    """Why a series is outside what the detectors were built for, or None.

    Volumes of other modalities (MR, PET, ...) have no Hounsfield units; nuclear medicine,
    ultrasound, mammography, dental and fluoroscopic images are not chest radiographs.
    """
    modality = (image.info.modality or "").strip().upper()
    if isinstance(image, Volume):
        return None if modality == "CT" else \
            (f"modality {modality or 'not stated'}: not CT, so calcifications were not "
             "searched for (CT detection needs Hounsfield units)")
    part, evidence = stated_part(image.info)
    if modality in CHEST_FILM_MODALITIES:
        if part == "other":
            return (f"{evidence}: not a chest radiograph, so calcifications were not searched "
                    "for (the radiograph detector was built for chest films)")
        return None
    if modality in _CAPTURE_MODALITIES:
        if part == "chest":
            return None
        return (f"a secondary capture ({modality}) that does not say it is of the chest: "
                "the radiograph detector was built for chest radiographs")
    return (f"modality {modality}: not a chest radiograph (CR or DX), so calcifications "
            "were not searched for")


@dataclass
class SeriesResult:
    """One series of the study with what the analysis made of it (for exporters).

    ``ct`` is the CT detector's result (:class:`~napari_calcinosis.ct.CTResult`: lesion and
    tissue label arrays, its own lesion list), ``xray`` the radiograph detector's
    (:class:`~napari_calcinosis.xray.XrayResult`); both ``None`` when the series was not
    analysed (``error`` then says why, when the detector refused it). Label value ``v`` of
    ``ct.lesion_labels`` or ``xray.lesion_labels`` is lesion id ``v + id_offset`` in the
    findings; :func:`assemble_result` sets ``id_offset`` and ``analysed``.
    """

    entry: SeriesEntry
    image: Volume | Radiograph
    ct: Any = None
    xray: Any = None
    id_offset: int = 0
    analysed: bool = False
    error: str | None = None

    @classmethod
    def of(cls, image: Volume | Radiograph, result: Any = None, *,
           entry: SeriesEntry | None = None) -> SeriesResult:
        """The series with ``result`` (of its detector, see :func:`detector_for`) filled in."""
        item = cls(entry or series_entry(image), image)
        detector = detector_for(image)
        if result is not None and detector is not None:
            setattr(item, detector.result_field, result)
        return item

    @property
    def result(self) -> Any:
        """The detector's result (CT or radiograph), ``None`` when not analysed."""
        return self.ct if self.ct is not None else self.xray


@dataclass
class AnalysisResult:
    """What :func:`analyze_study` returns: the findings plus per-series detail.

    ``differential`` is the classifier's full result (explanation parts, subtypes, every
    rule's score); ``findings.differential`` holds its contract form. ``applied`` is set when
    a reader's annotation record was applied: its ``lesion_labels`` (rejected lesions cleared,
    painted ones drawn in) are what exporters of masks must use.
    """

    findings: Findings
    series: list[SeriesResult]
    study: Study
    clinical: ClinicalInput | None = None
    params: CTParams | None = None
    differential: Differential | None = None
    applied: AppliedAnnotations | None = None


def series_entry(image: Volume | Radiograph) -> SeriesEntry:
    """The ``findings.json`` series entry (geometry) of a volume or a radiograph."""
    if isinstance(image, Volume):
        return SeriesEntry(
            series_instance_uid=image.info.series_instance_uid,
            modality=image.info.modality,
            kind="volume",
            shape=[int(n) for n in image.shape],
            spacing_mm=[float(s) for s in image.spacing_zyx_mm],
            slice_thickness_mm=_positive_or_none(image.info.slice_thickness_mm),
            view=None,
        )
    spacing = image.pixel_spacing_mm
    return SeriesEntry(
        series_instance_uid=image.info.series_instance_uid,
        modality=image.info.modality,
        kind="radiograph",
        shape=[int(n) for n in image.image.shape[:2]],
        spacing_mm=None if spacing is None else [float(s) for s in spacing],
        slice_thickness_mm=None,
        view=image.view,
    )


def analyze_study(study: Study, *, params: CTParams | None = None,
                  clinical: ClinicalInput | None = None,
                  progress: Progress | None = None,
                  xray_params: XrayParams | None = None,
                  annotations: AnnotationRecord | None = None) -> AnalysisResult:
    """Analyse every usable series of a study and assemble the findings.

    :func:`detect_series` followed by :func:`assemble_result`: CT volumes go through CT
    detection, radiographs through radiograph detection; other volumes (MR, PET, ...) are
    listed with a warning. Lesion ids are unique across the study. The summary comes from the
    CT when there is one, else from one radiograph (the first frontal view), so that no
    deposit is counted twice; the other lesions are still listed.

    Parameters
    ----------
    study : Study
        As loaded by ``core.dicom.load_study``.
    params : CTParams, optional
        CT detection parameters (defaults: ``CTParams()``); recorded in the findings.
    clinical : ClinicalInput, optional
        Labs and history for the differential (``None``: all unknown); kept on the result.
    progress : callable, optional
        ``progress(fraction, message)`` with ``fraction`` in 0..1.
    xray_params : XrayParams, optional
        Radiograph detection parameters (defaults: ``XrayParams()``).
    annotations : AnnotationRecord, optional
        The reader's saved decisions on this study: rejected lesions are dropped, layer and
        morphology marks and summary overrides win, manual lesions are added, and the
        differential reads them. Its clinical input is used when ``clinical`` is ``None``.

    Returns
    -------
    AnalysisResult

    Raises
    ------
    NoImageSeriesError
        When the study holds no image series.
    """
    params = CTParams() if params is None else params
    xray_params = XrayParams() if xray_params is None else xray_params
    series = detect_series(study, params=params, xray_params=xray_params, progress=progress)
    result = assemble_result(study, series, params=params, xray_params=xray_params,
                             clinical=clinical, annotations=annotations)
    (progress or no_progress)(1.0, "Analysis finished")
    return result


def detect_series(study: Study, *, params: CTParams | None = None,
                  xray_params: XrayParams | None = None,
                  progress: Progress | None = None) -> list[SeriesResult]:
    """The detection step: one :class:`SeriesResult` per series, CT and radiographs detected.

    A radiograph the detector refuses (:class:`AnalysisError`) keeps ``error`` and is
    reported by :func:`assemble_result`; volumes that are not CT are not searched.

    Parameters
    ----------
    study : Study
        As loaded by ``core.dicom.load_study``.
    params, xray_params : CTParams, XrayParams, optional
        Detection parameters (defaults when omitted).
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    list of SeriesResult
        Volumes first, then radiographs, in the study's order.

    Raises
    ------
    NoImageSeriesError
        When the study holds no image series.
    """
    if study.is_empty:
        raise NoImageSeriesError("The study holds no usable image series.")
    params = CTParams() if params is None else params
    xray_params = XrayParams() if xray_params is None else xray_params
    report = progress or no_progress
    series = [SeriesResult(series_entry(img), img) for img in [*study.volumes, *study.radiographs]]
    chosen = [detector_for(item.image) for item in series]
    params_by_detector = {"ct": params, "radiograph": xray_params}
    total = sum(d.weight for d in chosen if d is not None) or 1.0
    done = 0.0
    for number, (item, detector) in enumerate(zip(series, chosen)):
        if detector is None:
            continue
        sub = sub_progress(report, done / total, (done + detector.weight) / total,
                           f"{item.entry.modality or 'series'} {number + 1}: ")
        done += detector.weight
        try:
            setattr(item, detector.result_field,
                    detector.run(item.image, params=params_by_detector[detector.name],
                                 progress=sub))
        except AnalysisError as exc:  # one unusable series must not stop the study
            item.error = str(exc)
        item.analysed = item.result is not None
    return series


def assemble_result(study: Study, series_results: list[SeriesResult], *,
                    params: CTParams | None = None, xray_params: XrayParams | None = None,
                    clinical: ClinicalInput | None = None,
                    annotations: AnnotationRecord | None = None) -> AnalysisResult:
    """The assembly step: detection results of a study's series -> findings and differential.

    Owns everything after detection, so that the command line and the viewer (which detects
    series one by one) give the same findings: lesion ids unique across series (each
    analysed series' ids follow the largest id before it: ``id_offset``, set here), the
    summary's source (the CT when there is one, else the first frontal radiograph), the
    warnings (study, per series, thick slices, unanalysed series, summary source), the
    parameters, the reader's annotations and the differential.

    Parameters
    ----------
    study : Study
        The study (its ``warnings`` come first in the findings).
    series_results : list of SeriesResult
        One per series to list, in the study's order (volumes, then radiographs); ``ct`` /
        ``xray`` hold the detection results (``None``: not analysed, with ``error`` when the
        detector refused it).
    params : CTParams, optional
        CT parameters to record (default: the first CT result's, else ``CTParams()``).
    xray_params : XrayParams, optional
        Radiograph parameters to record (default: the first radiograph result's, else
        ``XrayParams()``).
    clinical : ClinicalInput, optional
        Labs and history (``None``: the record's, else all unknown).
    annotations : AnnotationRecord, optional
        The reader's record (see :func:`analyze_study`).

    Returns
    -------
    AnalysisResult
    """
    series = list(series_results)
    params = params or _first_params(series, "ct", CTParams) or CTParams()
    xray_params = xray_params or _first_params(series, "xray", XrayParams) or XrayParams()
    warnings = [*study.warnings, *study.set_aside_messages()]
    lesions: list[Lesion] = []
    for item in series:
        warnings.extend(_series_warnings(item, params))
        result = item.result
        item.analysed = result is not None
        if result is None:
            continue
        item.id_offset = max([0, *(les.id for les in lesions)])
        if item.ct is not None:
            contrast = getattr(item.ct, "contrast", None) or None
            item.entry = replace(item.entry, contrast=contrast and dict(contrast),
                                 set_aside=[dict(x) for x in getattr(item.ct, "set_aside", [])])
        uid = item.entry.series_instance_uid
        lesions.extend(_renumbered(les, item.id_offset, uid) for les in result.lesions)
    summary = _study_summary(series, warnings)
    parameters = params.to_dict()
    if any(s.xray is not None for s in series):
        parameters["radiograph"] = xray_params.to_dict()
    findings = Findings(
        software={"name": SOFTWARE_NAME, "version": __version__},
        study={"study_instance_uid": study.study_instance_uid,
               "modalities": _unique([s.entry.modality for s in series if s.entry.modality])},
        series=[s.entry for s in series], lesions=lesions, summary=summary,
        warnings=_unique(warnings), parameters=parameters)
    findings, differential, applied, clinical = _reviewed(findings, series, clinical,
                                                          annotations)
    # CT lesions projected onto the frontal radiograph once ids and lesions are final.
    link_study(findings, series)
    return AnalysisResult(findings, series, study, clinical=clinical, params=params,
                          differential=differential, applied=applied)


def _reviewed(findings: Findings, series: list[SeriesResult], clinical: ClinicalInput | None,
              annotations: AnnotationRecord | None) -> tuple:
    """The differential, and the reader's record applied when there is one."""
    applied = None
    if annotations is None:
        differential = classify(findings, clinical)
    else:
        if clinical is None:
            clinical = annotations.clinical_input()
        labels = _series_labels(series)
        # The classifier reads the automatic findings plus the marks; the effective findings
        # are built apart, so rejected and manual lesions are never counted twice.
        marks = to_reader_marks(annotations, findings.lesions, labels, spacing_mm={
            s.series_instance_uid: s.spacing_mm for s in findings.series})
        differential = classify(findings, clinical, marks=marks)
        findings, applied = apply_to_findings(findings, annotations, lesion_labels=labels)
    findings.differential = differential.to_json_list()
    return findings, differential, applied, clinical


def _first_params(series: list[SeriesResult], kind: str, cls: type) -> Any:
    for item in series:
        params = getattr(getattr(item, kind), "params", None)
        if isinstance(params, cls):
            return params
    return None


def _series_labels(series: list[SeriesResult]) -> dict[str, SeriesLabels]:
    labels = {}
    for item in series:
        result = item.result
        if result is not None:
            labels[item.entry.series_instance_uid] = SeriesLabels(result.lesion_labels,
                                                                  item.id_offset)
    return labels


def _series_warnings(item: SeriesResult, params: CTParams) -> list[str]:
    """A series' warnings in order: the image's, thick slices, the detector's or why it was
    not analysed."""
    out = [_label(item, w) for w in item.image.warnings]
    if _is_ct_volume(item.image):
        out += _thick_slice_warnings(item, params.thick_slice_mm)
    result = item.result
    if result is not None:
        out += [_label(item, w) for w in getattr(result, "warnings", None) or []]
    elif item.error is not None:
        out.append(_label(item, f"not analysed: {item.error}"))
    elif not_analysed_reason(item.image):
        out.append(_label(item, not_analysed_reason(item.image)))
    else:
        out.append(_label(item, "not analysed: no detection was run on it"))
    return out


def _study_summary(series: list[SeriesResult], warnings: list[str]) -> Summary:
    analysed = [s for s in series if s.ct is not None or s.xray is not None]
    primary_entry = summary_series([s.entry for s in analysed])
    if primary_entry is None:  # nothing analysed: say what the study holds
        return Summary(source="CT" if any(isinstance(s.image, Volume) for s in series)
                       else "radiograph")
    primary = next(s for s in analysed if s.entry is primary_entry)
    others = [s for s in analysed if s is not primary]
    if others:
        entry = primary.entry
        name = primary.image.info.series_description or entry.series_instance_uid
        what = (f"the CT series {name!r}" if entry.kind == "volume" else
                f"the {entry.view or 'first'} radiograph ({entry.series_instance_uid})")
        warnings.append(f"The summary comes from {what}; the lesions of the other series are "
                        "listed but not counted again.")
    result = primary.result
    summary = copy.deepcopy(result.summary)
    summary.source = "CT" if primary.ct is not None else "radiograph"
    return summary


def _thick_slice_warnings(item: SeriesResult, limit_mm: float) -> list[str]:
    thickness = item.entry.slice_thickness_mm or item.entry.spacing_mm[0]
    if thickness is None or thickness <= limit_mm:
        return []
    return [_label(item, f"slices are {thickness:g} mm thick (more than {limit_mm:g} mm): "
                         "small deposits lose peak HU to partial volume and may be missed")]


def _renumbered(lesion: Lesion, offset: int, series_uid: str) -> Lesion:
    out = copy.copy(lesion)
    out.id = int(lesion.id) + offset
    out.series_instance_uid = lesion.series_instance_uid or series_uid
    return out


def _is_ct_volume(image: Volume | Radiograph) -> bool:
    detector = detector_for(image)
    return detector is not None and detector.name == "ct"


def _label(item: SeriesResult, message: str) -> str:
    info = item.image.info
    name = info.series_description or info.series_instance_uid
    return f"Series {info.modality or '?'} {name!r}: {message}"


def _positive_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and value > 0 else None


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
