"""The report's content, built once from the findings object: sections, tables, figures.

``report.html`` and ``report.pdf`` both render this one model, so they say the same thing.
It is built from the findings (the contract's document) plus the export context (the loaded
study for patient and technique, the clinical input, the key images), never from widgets.
With ``context.anonymize`` the patient's name becomes ``ANONYMOUS``, identifying values are
left out, and every text is scrubbed of the source's identifying values.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import fields
from typing import Any

from napari_calcinosis.classify import DISCLAIMER
from napari_calcinosis.types import (
    ANNOTATIONS_NOT_APPLIED,
    Findings,
    Radiograph,
    SeriesInfo,
    Volume,
)

from . import _sections as cf
from ._anonymize import (
    ANONYMOUS,
    anonymize_text,
    ensure_anonymous_findings,
    study_identifying_values,
)
from ._blocks import Block, Figure, ReportContent, Section, Table
from ._key_images import key_images, png_bytes

__all__ = ["SECTION_TITLES", "build_report_content"]

REMOVED_TEXT = "(removed)"
#: Title of the section that opens a report whose reader's annotations were not applied.
NOTICE_TITLE = "Attention: the reader's annotations were not applied"
#: The sections in the order a reader wants them: the impression first, after who and what.
SECTION_TITLES = {
    "patient": "Patient and exam", "impression": "Impression: ranked differential",
    "indication": "Indication and history",
    "technique": "Technique", "comparison": "Comparison", "findings": "Findings",
    "negatives": "Pertinent negatives", "symmetry": "Symmetry", "key_images": "Key images",
    "limitations": "Limitations",
    "recommendations": "Recommendations", "lesions": "Lesion list",
    "disclaimer": "Disclaimer",
}


def build_report_content(findings: Findings, context: Any = None, *,
                         with_images: bool = True) -> ReportContent:
    """Build the report content of an export.

    Parameters
    ----------
    findings : Findings
        As exported (anonymized already when ``context.anonymize``).
    context : ExportContext, optional
        ``result`` (study, series results, clinical input), ``anonymize`` and ``uid_map``.
        Without it the report holds what the findings alone tell.
    with_images : bool
        Render the key images (off for quick previews and tests of the text).

    Returns
    -------
    ReportContent
    """


    result = getattr(context, "result", None)
    anonymize = bool(getattr(context, "anonymize", False))
    findings = ensure_anonymous_findings(findings, context)
    images = []
    if with_images and result is not None:
        images = [Figure(im.title, im.caption, png=png_bytes(im.rgb), file_name=im.file_name)
                  for im in key_images(findings, context)]
    builders = {
        "patient": lambda: _patient(findings, result, anonymize),
        "impression": lambda: cf.impression(findings, getattr(result, "differential", None)),
        "indication": lambda: cf.indication(getattr(result, "clinical", None)),
        "technique": lambda: _technique(findings, result, anonymize),
        "comparison": lambda: [Block(paragraphs=["None available."])],
        "findings": lambda: cf.findings_blocks(findings),
        "negatives": lambda: cf.negatives(findings),
        "symmetry": lambda: cf.symmetry_blocks(findings),
        "key_images": lambda: cf.key_image_blocks(images, findings),
        "limitations": lambda: cf.limitations(findings, result),
        "recommendations": lambda: cf.recommendations(findings,
                                                      getattr(result, "clinical", None)),
        "lesions": lambda: cf.lesion_list(findings),
        "disclaimer": lambda: [Block(paragraphs=[DISCLAIMER])],
    }
    sections = [Section(key, SECTION_TITLES[key], build()) for key, build in builders.items()]
    notices = [w for w in findings.warnings if str(w).startswith(ANNOTATIONS_NOT_APPLIED)]
    if notices:  # before anything else: these findings are not the reader's reviewed ones
        sections.insert(0, Section("notice", NOTICE_TITLE, [Block(items=notices)]))
    version = findings.software.get("version", "")
    content = ReportContent(
        title="Soft-tissue calcification report",
        subtitle=(f"{findings.software.get('name', 'napari-calcinosis')} {version} · "
                  f"generated {_dt.date.today().isoformat()} · decision support, "
                  "not a diagnosis"),
        sections=sections, disclaimer=DISCLAIMER)
    if anonymize and result is not None:
        _scrub(content, study_identifying_values(result.study),
               getattr(context, "uid_map", {}))
    return content


def _first_info(result: Any) -> SeriesInfo | None:
    if result is None:
        return None
    images = [*result.study.volumes, *result.study.radiographs]
    return images[0].info if images else None


def _patient(findings: Findings, result: Any, anonymize: bool) -> list[Block]:
    info = _first_info(result)
    if info is None:
        return [Block(paragraphs=["Patient details were not available to the exporter."],
                      tables=[_study_table(findings, None, anonymize)])]
    block = Block(tables=[_study_table(findings, info, anonymize)])
    note = identity_mismatch(info, getattr(result, "clinical", None))
    if note:
        block.paragraphs.append(note)
    return [block]


def identity_mismatch(info: SeriesInfo, clinical: Any) -> str:
    """A sentence when the images' sex or age and the clinical input's disagree (a
    clinical file of another patient?), else ``""``."""
    if clinical is None:
        return ""
    problems = []
    dicom_sex = (info.patient_sex or "").strip().upper()
    if dicom_sex in ("M", "F") and clinical.sex in ("M", "F") and dicom_sex != clinical.sex:
        problems.append(f"sex {dicom_sex} in the images, {clinical.sex} in the clinical input")
    dicom_age = _age_years(info.patient_age)
    if dicom_age is not None and clinical.age_years is not None and \
            abs(dicom_age - float(clinical.age_years)) > 1.5:
        problems.append(f"age {dicom_age:g} in the images, {clinical.age_years:g} in the "
                        "clinical input")
    if not problems:
        return ""
    return ("Check the patient: " + "; ".join(problems) + ". The differential used the "
            "clinical input.")


def _age_years(value: str) -> float | None:
    """DICOM AS (``078Y``, ``006M``, ``012W``, ``030D``) in years."""
    text = str(value or "").strip().upper()
    if len(text) != 4 or not text[:3].isdigit() or text[3] not in "YMWD":
        return None
    return int(text[:3]) / {"Y": 1, "M": 12, "W": 52.18, "D": 365.25}[text[3]]


def _study_table(findings: Findings, info: SeriesInfo | None, anonymize: bool) -> Table:
    def identity(value: str) -> str:
        return REMOVED_TEXT if anonymize else (value or "not stated")

    rows = []
    if info is not None:
        rows += [
            ["Patient name", ANONYMOUS if anonymize else _person(info.patient_name)],
            ["Patient ID", ANONYMOUS if anonymize else (info.patient_id or "not stated")],
            ["Birth date", identity(_date(info.patient_birth_date))],
            ["Sex", info.patient_sex or "not stated"],
            ["Age", _age(info.patient_age)],
            ["Study date", identity(_date(info.study_date))],
            ["Study description", identity(info.study_description)],
            ["Accession number", identity(info.accession_number)],
            ["Institution", identity(info.institution_name)],
        ]
    rows += [["Study instance UID", str(findings.study.get("study_instance_uid", ""))],
             ["Modalities", ", ".join(findings.study.get("modalities", [])) or "none"],
             ["Series analysed", str(len(findings.series))]]
    return Table(["Item", "Value"], rows, key="patient")


def _person(name: Any) -> str:
    parts = [p for p in str(name or "").split("^") if p]
    if not parts:
        return "not stated"
    return f"{parts[0]}, {' '.join(parts[1:])}" if len(parts) > 1 else parts[0]


def _date(value: str) -> str:
    value = str(value or "")
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def _age(value: str) -> str:
    value = str(value or "")
    units = {"Y": "years", "M": "months", "W": "weeks", "D": "days"}
    if len(value) == 4 and value[:3].isdigit() and value[3] in units:
        return f"{int(value[:3])} {units[value[3]]}"
    return value or "not stated"


def _technique(findings: Findings, result: Any, anonymize: bool = False) -> list[Block]:
    # findings.series lists the series in the order of result.series (UIDs may be new ones).
    series_results = list(result.series) if result is not None else []
    rows = [_series_row(entry, series_results[i].image if i < len(series_results) else None,
                        anonymize)
            for i, entry in enumerate(findings.series)]
    params = findings.parameters or {}
    lines = []
    if "threshold_hu" in params:
        applied = [s.ct.threshold_hu for s in (result.series if result else [])
                   if s.ct is not None]
        note = "" if all(a == params["threshold_hu"] for a in applied) else \
            f" (applied: {', '.join(f'{a:g}' for a in applied)} HU)"
        lines.append(f"CT calcium threshold {params['threshold_hu']:g} HU{note}; minimum "
                     f"in-plane area {params.get('min_area_mm2', 0):g} mm²; minimum "
                     f"contrast-to-noise {params.get('min_cnr', 0):g}.")
    lines.append(f"Software: {findings.software.get('name', '')} "
                 f"{findings.software.get('version', '')}.")
    header = ["Series", "Modality", "Grid", "Slice thickness", "Kernel", "kVp", "Contrast"]
    return [Block(tables=[Table(header, rows, key="technique")], paragraphs=lines)]


def _series_row(entry: Any, image: Volume | Radiograph | None,
                anonymize: bool = False) -> list[str]:
    info = image.info if image is not None else None
    # descriptions are free text an anonymised export leaves out (PS3.15 Basic Profile)
    description = ("" if anonymize else (info.series_description if info else "")) or \
        entry.series_instance_uid
    if entry.kind == "radiograph":
        description += f" ({entry.view or 'view not stated'})"
    grid = " × ".join(str(n) for n in entry.shape)
    if entry.spacing_mm:
        grid += f" at {' × '.join(f'{s:.2f}' for s in entry.spacing_mm)} mm"
    thickness = f"{entry.slice_thickness_mm:g} mm" if entry.slice_thickness_mm else "—"
    return [description, entry.modality or "?", grid, thickness,
            (info.kernel if info else "") or "not stated",
            f"{info.kvp:g}" if info is not None and info.kvp else "not stated",
            _contrast(entry, info)]


def _contrast(entry: Any, info: Any) -> str:
    """What the header states, and for an analysed CT the phase measured in the aorta."""
    stated = (info.contrast_agent if info else "") or "none stated"
    measured = (getattr(entry, "contrast", None) or {}).get("description")
    return f"{stated}; measured: {measured}" if measured else stated


def _scrub(content: ReportContent, secrets: list[str], uid_map: dict[str, str]) -> None:
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return anonymize_text(value, secrets, uid_map)
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, tuple):
            return tuple(clean(v) for v in value)
        if hasattr(value, "__dataclass_fields__"):
            for f in fields(value):
                if f.name not in ("png",):
                    setattr(value, f.name, clean(getattr(value, f.name)))
        return value

    clean(content)
