"""The reader's judgement on a study, kept as one record and never lost.

Automatic detection is a proposal; the reader decides. Everything the reader decides about a
study forms one :class:`AnnotationRecord`, keyed by the StudyInstanceUID:

* decisions on automatic lesions: accepted / rejected (a rejected lesion leaves the lesion
  list and every count, and can be restored) and overrides of layer, morphology, side and
  region, each stored beside the automatic value the reader saw;
* manual lesions (painted or clicked) with their measurements and their voxels, compactly
  run-length encoded (:class:`VoxelMask`), so a painted lesion survives a restart;
* the reader's symmetry call per body region and overall extent, form and symmetry call,
  stored beside (never instead of) the automatic value;
* the clinical input (the ``CONTRACT.md`` format) and the detection parameters used.

Storage (:class:`AnnotationStore`): one JSON file per study (schema
``napari-calcinosis/annotations/v1``) in ``$NAPARI_CALCINOSIS_DATA_DIR/annotations`` or the
user's data folder, named by a hash of the UID. Every save is atomic (temporary file, fsync,
rename); stale temporary files of a killed writer are removed on the next save or load; an
unusable file is renamed ``*.corrupt-<time>.json`` with a warning; older record versions are
migrated on reading (:func:`migrate`).

Matching across detection runs
------------------------------
A decision on an automatic lesion is keyed by the lesion's series UID, centroid (patient mm
on CT, pixel index on a radiograph) and volume (area), and by its voxels when the label image
was at hand. When detection is re-run with other parameters, every decision is paired with at
most one new lesion, strongest evidence first:

1. the very same lesion (same series, centroid and size: the same run re-opened);
2. otherwise, when its voxels are stored, the new lesion of the same series with the greatest
   Dice overlap (at least ``MatchParams.min_dice`` = 0.05); a lesion that grew or shrank with
   the threshold is found again, one that vanished is not (voxels decide alone);
3. otherwise, without voxels, the nearest new centroid within
   ``max(3 mm, 0.5 x largest diameter)``.

Decisions that find no lesion are *orphaned*: reported (:attr:`AppliedAnnotations.orphaned`
and a warning) and kept in the record, so they apply again if a later run finds the lesion.
Manual lesions are always kept and appended with new ids. :func:`rekey` moves the decisions
onto the new run (new centroids and voxels) so that chains of re-runs keep matching.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from .annotations_apply import AppliedAnnotations, apply, manual_lesions, rekey
from .annotations_json import (
    MIGRATIONS,
    AnnotationFileError,
    migrate,
    record_from_dict,
    record_from_json,
    record_to_dict,
    record_to_json,
    validate_record_doc,
)
from .annotations_mask import VoxelMask, label_mask
from .annotations_match import (
    LabelsArg,
    MatchParams,
    MatchResult,
    SeriesLabels,
    match_decisions,
)
from .annotations_record import (
    EDITABLE_FIELDS,
    RECORD_SCHEMA_ID,
    RECORD_VERSION,
    SUMMARY_FIELDS,
    AnnotationRecord,
    LesionDecision,
    LesionKey,
    ManualLesion,
    Override,
)
from .annotations_store import (
    DATA_DIR_ENV,
    EXPORT_FILENAME,
    AnnotationStore,
    default_root,
    record_filename,
)
from .distribution import form_of
from .findings import Findings, Lesion, Summary
from .params import CTParams

if TYPE_CHECKING:
    from .classify_marks import ReaderMarks

__all__ = [
    "DATA_DIR_ENV", "EDITABLE_FIELDS", "EXPORT_FILENAME", "MIGRATIONS", "RECORD_SCHEMA_ID",
    "RECORD_VERSION", "SUMMARY_FIELDS", "AnnotationFileError", "AnnotationRecord",
    "AnnotationStore", "AppliedAnnotations", "LesionDecision", "LesionKey", "ManualLesion",
    "MatchParams", "MatchResult", "Override", "SeriesLabels", "VoxelMask", "apply",
    "apply_to_findings", "default_root", "default_store", "effective_summary", "label_mask",
    "manual_lesions", "match_decisions", "migrate", "record_filename", "record_from_dict",
    "record_from_json", "record_to_dict", "record_to_json", "rekey", "summary_overrides",
    "to_reader_marks", "validate_record_doc",
]


def default_store() -> AnnotationStore:
    """The store in the default folder (``$NAPARI_CALCINOSIS_DATA_DIR`` or user data)."""
    return AnnotationStore()


def summary_overrides(record: AnnotationRecord,
                      summary: Summary | None = None) -> dict[str, Any]:
    """The reader's summary overrides beside the automatic values.

    Parameters
    ----------
    record : AnnotationRecord
        The study's record.
    summary : Summary, optional
        The automatic summary of the current run; without it, ``auto`` is the automatic
        value the reader saw when overriding.

    Returns
    -------
    dict
        ``{"extent": {"reader": ..., "auto": ...}, "form": ..., "symmetry_call": ...,
        "by_region": {region: {"reader": call, "auto": call or None}}}``, with only the
        overridden items present (``by_region`` always present).
    """
    auto_now = {} if summary is None else {
        "extent": summary.extent, "form": summary.form, "symmetry_call": summary.symmetry.call}
    out: dict[str, Any] = {
        name: {"reader": item.value, "auto": auto_now.get(name, item.auto)}
        for name, item in record.summary_overrides.items()}
    regions = {} if summary is None else summary.symmetry.by_region
    out["by_region"] = {
        region: {"reader": item.value,
                 "auto": regions.get(region, {}).get("call", item.auto)}
        for region, item in record.region_symmetry_overrides.items()}
    return out


def effective_summary(summary: Summary, record: AnnotationRecord) -> Summary:
    """A copy of ``summary`` with the reader's extent, form and symmetry calls.

    The automatic values stay beside them: a region entry of ``symmetry.by_region`` gets
    ``call`` (the reader's) and ``auto_call``; the overall values are listed by
    :func:`summary_overrides`.
    """
    out = copy.deepcopy(summary)
    overrides = record.summary_overrides
    if "extent" in overrides:
        # The contract derives the form from the extent; an explicit form override wins.
        out.extent = overrides["extent"].value
        out.form = form_of(out.extent)
    if "form" in overrides:
        out.form = overrides["form"].value
    if "symmetry_call" in overrides:
        out.symmetry.call = overrides["symmetry_call"].value
    for region, item in record.region_symmetry_overrides.items():
        entry = out.symmetry.by_region.setdefault(region, {})
        entry["auto_call"] = entry.get("call", item.auto)
        entry["call"] = item.value
        entry["call_source"] = "reader"
    return out


def apply_to_findings(findings: Findings, record: AnnotationRecord, *,
                      lesion_labels: LabelsArg = None,
                      match_params: MatchParams | None = None
                      ) -> tuple[Findings, AppliedAnnotations]:
    """The study's findings as the reader left them (what the CLI and the panels share).

    Lesions: rejected removed, overrides applied, manual lesions appended (see
    :func:`apply`). The summary is recomputed from the effective lesions of its source (CT
    volumes or radiographs) when the record changed the lesion set, then the reader's
    overrides are applied. ``parameters["annotations"]`` records what the reader changed
    (with the automatic values) and a warning lists orphaned decisions.

    Parameters
    ----------
    findings : Findings
        The automatic findings (not modified).
    record : AnnotationRecord
        The study's record.
    lesion_labels : numpy.ndarray or mapping, optional
        Label images per series (enables voxel matching and effective labels).
    match_params : MatchParams, optional
        Matching tolerances (defaults when omitted).

    Returns
    -------
    tuple
        ``(effective findings, AppliedAnnotations)``.
    """
    spacing = {s.series_instance_uid: s.spacing_mm for s in findings.series}
    applied = apply(record, findings.lesions, lesion_labels, spacing_mm=spacing,
                    params=match_params)
    out = copy.deepcopy(findings)
    out.lesions = applied.lesions
    if _lesion_set_changed(applied):
        out.summary = _recomputed_summary(out, findings.parameters)
    auto_summary = out.summary
    out.summary = effective_summary(auto_summary, record)
    out.warnings = [*out.warnings, *applied.warnings]
    out.parameters = {**out.parameters, "annotations": {
        "record_modified": record.modified,
        "rejected_lesions": len(applied.rejected),
        "edited_lesions": sum(1 for les in applied.lesions
                              if les.source == "manual" and "annotation_uid" not in les.extra),
        "manual_lesions": sum(1 for les in applied.lesions if "annotation_uid" in les.extra),
        "orphaned_decisions": len(applied.orphaned),
        "summary_overrides": summary_overrides(record, auto_summary),
    }}
    return out, applied


def to_reader_marks(record: AnnotationRecord, lesions: Sequence[Lesion],
                    lesion_labels: LabelsArg = None, *,
                    spacing_mm: Mapping[str, Sequence[float] | None] | None = None,
                    match_params: MatchParams | None = None) -> ReaderMarks:
    """The record as the classifier's :class:`~.classify_marks.ReaderMarks` for one run.

    ``ReaderMarks`` names lesions by their id in the run, so the decisions are matched to
    ``lesions`` first (as :func:`apply` does; orphaned decisions give no mark). Pass the
    *automatic* findings and these marks to ``classify``; never the effective findings of
    :func:`apply_to_findings` as well, or rejected and manual lesions count twice.

    Parameters
    ----------
    record : AnnotationRecord
        The study's record.
    lesions : sequence of Lesion
        The run's automatic lesions (``findings.lesions``).
    lesion_labels : numpy.ndarray or mapping, optional
        The run's label images (voxel matching).
    spacing_mm : mapping, optional
        Spacing per series for index centroids.
    match_params : MatchParams, optional
        Matching tolerances.

    Returns
    -------
    ReaderMarks
        ``layers`` / ``morphologies`` of matched, not rejected, edited lesions; ``rejected``
        ids; ``added``: the accepted manual lesions with the ids :func:`apply` gives them;
        ``extent`` / ``form`` / ``symmetry_call`` overrides. Per-region symmetry calls have no
        place in ``ReaderMarks`` (see :func:`summary_overrides`).
    """
    from .classify_marks import ReaderMarks

    match = match_decisions(record, lesions, lesion_labels, spacing_mm=spacing_mm,
                            params=match_params)
    layers, morphologies, rejected = {}, {}, set()
    for decision in record.decisions:
        lesion_id = match.matched.get(decision.uid)
        if lesion_id is None:
            continue
        if decision.state == "rejected":
            rejected.add(lesion_id)
            continue
        if "layer" in decision.overrides:
            layers[lesion_id] = decision.overrides["layer"]
        if "morphology" in decision.overrides:
            morphologies[lesion_id] = decision.overrides["morphology"]
    added = [les for item, les in manual_lesions(record, lesions) if item.state != "rejected"]
    overall = {name: item.value for name, item in record.summary_overrides.items()}
    return ReaderMarks(layers=layers, morphologies=morphologies, rejected=rejected,
                       added=added, **overall)


def _lesion_set_changed(applied: AppliedAnnotations) -> bool:
    return bool(applied.rejected) or any(les.source == "manual" for les in applied.lesions)


def _recomputed_summary(findings: Findings, parameters: Mapping[str, Any]) -> Summary:
    from .distribution import summarize, summary_series

    kind = "volume" if findings.summary.source == "CT" else "radiograph"
    primary = summary_series([s for s in findings.series if s.kind == kind])
    uid = primary.series_instance_uid if primary is not None else None
    lesions = [les for les in findings.lesions if les.series_instance_uid == uid]
    return summarize(lesions, params=_ct_params(parameters), source=findings.summary.source)


def _ct_params(parameters: Mapping[str, Any]) -> CTParams:
    known = {f.name for f in fields(CTParams)}
    values = {k: tuple(v) if isinstance(v, list) else v
              for k, v in parameters.items() if k in known}
    try:
        return CTParams(**values)
    except (TypeError, ValueError):
        return CTParams()
