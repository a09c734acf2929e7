"""The reader's record applied to findings: the effective lesions, summary and marks."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from napari_calcinosis.classify import ReaderMarks
from napari_calcinosis.summary import form_of, summarize, summary_series
from napari_calcinosis.types import CTParams, Findings, Lesion, Summary

from ._apply import AppliedAnnotations, apply, manual_lesions
from ._match import LabelsArg, MatchParams, match_decisions
from ._record import (
    AnnotationRecord,
)
from ._store import AnnotationStore

__all__ = ["apply_to_findings", "default_store", "effective_summary", "summary_overrides",
           "to_reader_marks"]


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
    """The record as the classifier's :class:`~napari_calcinosis.classify.ReaderMarks` for one run.

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
