"""Study -> findings: run every analysis step on a loaded study and assemble ``Findings``.

This is the one place that turns a :class:`~napari_calcinosis.core.model.Study` into the
findings object that the command line, the panels and every exporter share. CT volumes go
through CT detection; lesion ids are made unique across the study; the summary comes from the
CT when there is one (``source = "CT"``), otherwise from the radiographs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import napari_calcinosis
from napari_calcinosis.core.clinical import ClinicalInput
from napari_calcinosis.core.errors import NoImageSeriesError
from napari_calcinosis.core.findings import Findings, Lesion, SeriesEntry, Summary
from napari_calcinosis.core.model import Radiograph, Study, Volume
from napari_calcinosis.core.params import CTParams

__all__ = ["AnalysisResult", "ExportContext", "SeriesResult",
           "analyze_study", "anonymize_findings", "series_entry"]

Progress = Callable[[float, str], None]

SOFTWARE_NAME = "napari-calcinosis"


@dataclass
class SeriesResult:
    """One series of the study with what the analysis made of it (for exporters).

    ``ct`` is the CT detector's result (lesion and tissue label arrays, its own lesion list)
    or ``None`` when the series was not analysed. Label value ``v`` of ``ct.lesion_labels``
    is lesion id ``v + id_offset`` in the findings.
    """

    entry: SeriesEntry
    image: Volume | Radiograph
    ct: Any = None
    id_offset: int = 0
    analysed: bool = False


@dataclass
class AnalysisResult:
    """What :func:`analyze_study` returns: the findings plus per-series detail."""

    findings: Findings
    series: list[SeriesResult]
    study: Study
    clinical: ClinicalInput | None = None
    params: CTParams | None = None


@dataclass
class ExportContext:
    """Everything an exporter may need besides the findings (see the CLI format registry)."""

    result: AnalysisResult | None = None
    anonymize: bool = False
    uid_map: dict[str, str] = field(default_factory=dict)
    progress: Progress | None = None


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
                  progress: Progress | None = None) -> AnalysisResult:
    """Analyse every usable series of a study and assemble the findings.

    Parameters
    ----------
    study : Study
        As loaded by ``core.dicom.load_study``.
    params : CTParams, optional
        CT detection parameters (defaults: ``CTParams()``); recorded in the findings.
    clinical : ClinicalInput, optional
        Labs and history, kept on the result for the differential.
    progress : callable, optional
        ``progress(fraction, message)`` with ``fraction`` in 0..1.

    Returns
    -------
    AnalysisResult

    Raises
    ------
    NoImageSeriesError
        When the study holds no image series.
    """
    if study.is_empty:
        raise NoImageSeriesError("The study holds no usable image series.")
    params = CTParams() if params is None else params
    report = progress or _no_progress
    series = [SeriesResult(series_entry(img), img) for img in [*study.volumes, *study.radiographs]]
    warnings = list(study.warnings)
    lesions = _analyse_ct_series(series, params, report, warnings)
    warnings.extend(_radiograph_warnings(series))
    summary = _study_summary(series, lesions, params)
    findings = Findings(
        software={"name": SOFTWARE_NAME, "version": napari_calcinosis.__version__},
        study={"study_instance_uid": study.study_instance_uid,
               "modalities": _unique([s.entry.modality for s in series if s.entry.modality])},
        series=[s.entry for s in series],
        lesions=lesions,
        summary=summary,
        warnings=_unique(warnings),
        parameters=params.to_dict(),
    )
    report(1.0, "Analysis finished")
    return AnalysisResult(findings, series, study, clinical=clinical, params=params)


def _analyse_ct_series(series: list[SeriesResult], params: Any, report: Progress,
                       warnings: list[str]) -> list[Lesion]:
    ct_series = [s for s in series if _is_ct_volume(s.image)]
    lesions: list[Lesion] = []
    next_offset = 0
    for number, item in enumerate(series):
        image = item.image
        warnings.extend(_label(item, w) for w in image.warnings)
        if isinstance(image, Volume) and not _is_ct_volume(image):
            warnings.append(_label(item, "not CT, so calcifications were not searched for "
                                         "(CT detection needs Hounsfield units)"))
        if not _is_ct_volume(image):
            continue
        warnings.extend(_thick_slice_warnings(item, params.thick_slice_mm))
        done = ct_series.index(item)
        sub = _sub_progress(report, done / len(ct_series), (done + 1) / len(ct_series),
                            f"CT series {number + 1}")
        from napari_calcinosis.core import detect_ct

        result = detect_ct.analyze_volume(image, params=params, progress=sub)
        item.ct, item.id_offset, item.analysed = result, next_offset, True
        uid = image.info.series_instance_uid
        for lesion in result.lesions:
            lesions.append(_renumbered(lesion, next_offset, uid))
        next_offset = max([next_offset, *(les.id for les in lesions)])
        warnings.extend(_label(item, w) for w in result.warnings)
    return lesions


def _study_summary(series: list[SeriesResult], lesions: list[Lesion], params: Any) -> Summary:
    analysed = [s for s in series if s.analysed]
    if not analysed:
        return Summary(source="radiograph")
    if len(analysed) == 1:
        summary = copy.deepcopy(analysed[0].ct.summary)
    else:
        from napari_calcinosis.core.distribution import summarize

        summary = summarize(lesions, params=params, source="CT")
    summary.source = "CT"
    return summary


def _radiograph_warnings(series: list[SeriesResult]) -> list[str]:
    radiographs = [s for s in series if s.entry.kind == "radiograph"]
    if not radiographs:
        return []
    uids = ", ".join(s.entry.series_instance_uid for s in radiographs)
    return [f"Radiograph detection is not available yet: {len(radiographs)} radiograph "
            f"series ({uids}) {'is' if len(radiographs) == 1 else 'are'} listed but "
            f"{'was' if len(radiographs) == 1 else 'were'} not searched for calcifications, "
            "so the summary does not describe them."]


def _thick_slice_warnings(item: SeriesResult, limit_mm: float) -> list[str]:
    thickness = item.entry.slice_thickness_mm or item.entry.spacing_mm[0]
    if thickness is None or thickness <= limit_mm:
        return []
    return [_label(item, f"slices are {thickness:g} mm thick (more than {limit_mm:g} mm): "
                         "small deposits lose peak HU to partial volume and may be missed")]


def anonymize_findings(findings: Findings, study: Study | None = None,
                       *, uid_map: dict[str, str] | None = None
                       ) -> tuple[Findings, dict[str, str]]:
    """A copy of the findings with new UIDs and identifying values removed from the text.

    Study and series UIDs are replaced by new ones (the same old UID always gets the same new
    one, also across exporters that share ``uid_map``). Patient name (and its parts), ID,
    birth date, accession number, referring physician and institution found in the study's
    headers are replaced by ``[removed]`` wherever they appear in warnings.

    Returns
    -------
    tuple
        ``(anonymized findings, uid_map)``.
    """
    from pydicom.uid import generate_uid

    uid_map = {} if uid_map is None else uid_map

    def new_uid(uid: str) -> str:
        if uid and uid not in uid_map:
            uid_map[uid] = generate_uid()
        return uid_map.get(uid, uid)

    out = copy.deepcopy(findings)
    out.study["study_instance_uid"] = new_uid(out.study.get("study_instance_uid", ""))
    for entry in out.series:
        entry.series_instance_uid = new_uid(entry.series_instance_uid)
    for lesion in out.lesions:
        lesion.series_instance_uid = new_uid(lesion.series_instance_uid)
    secrets = _identifying_values(study) + sorted(uid_map, key=len, reverse=True)
    out.warnings = [_scrub(w, secrets, uid_map) for w in out.warnings]
    return out, uid_map


def _identifying_values(study: Study | None) -> list[str]:
    if study is None:
        return []
    values: set[str] = set()
    for image in [*study.volumes, *study.radiographs]:
        info = image.info
        for value in (info.patient_name, info.patient_id, info.patient_birth_date,
                      info.accession_number, info.referring_physician, info.institution_name):
            value = str(value or "").strip()
            if len(value) >= 3:
                values.add(value)
        # "DOE^JOHN" also appears as "DOE", "JOHN" or "DOE JOHN" in file and folder names.
        parts = [p.strip() for p in str(info.patient_name or "").split("^")]
        values.update(p for p in parts if len(p) >= 3)
        values.add(" ".join(p for p in parts if p))
    return sorted((v for v in values if len(v) >= 3), key=len, reverse=True)


def _scrub(text: str, secrets: list[str], uid_map: dict[str, str]) -> str:
    for secret in secrets:
        replacement = uid_map.get(secret, "[removed]")
        text = text.replace(secret, replacement)
    return text


def _renumbered(lesion: Lesion, offset: int, series_uid: str) -> Lesion:
    out = copy.copy(lesion)
    out.id = int(lesion.id) + offset
    out.series_instance_uid = lesion.series_instance_uid or series_uid
    return out


def _is_ct_volume(image: Volume | Radiograph) -> bool:
    return isinstance(image, Volume) and image.info.modality.upper() == "CT"


def _label(item: SeriesResult, message: str) -> str:
    info = item.image.info
    name = info.series_description or info.series_instance_uid
    return f"Series {info.modality or '?'} {name!r}: {message}"


def _sub_progress(report: Progress, start: float, stop: float, prefix: str) -> Progress:
    def sub(fraction: float, message: str) -> None:
        report(start + (stop - start) * min(max(fraction, 0.0), 1.0), f"{prefix}: {message}")

    return sub


def _no_progress(fraction: float, message: str) -> None:
    """Progress sink used when the caller gives none."""


def _positive_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and value > 0 else None


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
