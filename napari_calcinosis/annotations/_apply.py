"""Apply the reader's record to a detection run: the effective lesions and label images.

Matching (which decision belongs to which new lesion) is :mod:`._match`; this
module turns the matches into the effective lesion list (rejected removed, overrides
applied, manual lesions appended) and moves decisions onto a new run (:func:`rekey`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_calcinosis.types import Lesion

from ._match import (
    LabelsArg,
    MatchParams,
    MatchResult,
    SeriesLabels,
    labels_by_series,
    match_decisions,
    series_runs,
)
from ._record import AUTO_FIELDS, AnnotationRecord, LesionDecision, LesionKey, ManualLesion

__all__ = ["AppliedAnnotations", "apply", "lesion_origin", "manual_lesions", "rekey"]


def lesion_origin(lesion: Lesion) -> str:
    """Where a lesion comes from: ``"manual"`` (added by hand), ``"auto, edited"`` (found
    by the detector, then changed by the reader: its contract ``source`` is ``manual``, the
    detector's values kept in ``extra["auto_<field>"]``) or ``"auto"``."""
    if "annotation_uid" in lesion.extra:
        return "manual"
    if lesion.source == "manual" and any(key.startswith("auto_") for key in lesion.extra):
        return "auto, edited"
    return lesion.source


@dataclass
class AppliedAnnotations:
    """A detection run with the reader's record applied.

    Attributes
    ----------
    lesions : list of Lesion
        Effective lesions: rejected ones removed, overrides applied (an edited lesion keeps
        its id, becomes ``source = "manual"`` and carries ``extra["auto_<field>"]``), manual
        lesions appended with new ids and ``extra["annotation_uid"]``.
    lesion_labels : numpy.ndarray or dict or None
        The label image(s) in the form given, with rejected lesions cleared and painted
        manual lesions drawn in (manual voxels win over automatic ones).
    rejected : list of Lesion
        The rejected lesions (automatic and manual), as they were, for a restore list.
    match : MatchResult
    warnings : list of str
    """

    lesions: list[Lesion]
    lesion_labels: np.ndarray | dict[str, np.ndarray | SeriesLabels] | None
    rejected: list[Lesion]
    match: MatchResult
    warnings: list[str] = field(default_factory=list)

    @property
    def orphaned(self) -> list[LesionDecision]:
        """Decisions that found no lesion in this run."""
        return self.match.orphaned


def apply(record: AnnotationRecord, lesions: Sequence[Lesion],
          lesion_labels: LabelsArg = None, *,
          spacing_mm: Mapping[str, Sequence[float] | None] | None = None,
          params: MatchParams | None = None) -> AppliedAnnotations:
    """Apply the reader's record to a detection run (the record is not changed).

    Parameters
    ----------
    record : AnnotationRecord
        The study's record (not modified).
    lesions : sequence of Lesion
        The run's automatic lesions (not modified).
    lesion_labels : numpy.ndarray or mapping, optional
        The run's label image(s); enables overlap matching and an effective label image.
    spacing_mm : mapping, optional
        Spacing per series for index centroids.
    params : MatchParams, optional
        Matching tolerances (defaults when omitted).

    Returns
    -------
    AppliedAnnotations
    """
    match = match_decisions(record, lesions, lesion_labels, spacing_mm=spacing_mm,
                            params=params)
    by_lesion = {lid: d for d in record.decisions
                 if (lid := match.matched.get(d.uid)) is not None}
    effective, rejected = [], []
    for lesion in lesions:
        decision = by_lesion.get(int(lesion.id))
        if decision is not None and decision.state == "rejected":
            rejected.append(copy.deepcopy(lesion))
        else:
            effective.append(_edited(lesion, decision))
    manual_ids: dict[str, int] = {}
    for item, lesion in manual_lesions(record, lesions):
        manual_ids[item.uid] = int(lesion.id)
        (rejected if item.state == "rejected" else effective).append(lesion)
    warnings = [f"{len(match.orphaned)} of the reader's lesion decisions found no lesion in "
                "this detection run; they are kept in the annotation record."
                ] if match.orphaned else []
    labels = _effective_labels(record, lesions, lesion_labels, rejected, manual_ids, warnings)
    return AppliedAnnotations(effective, labels, rejected, match, warnings)


def manual_lesions(record: AnnotationRecord, lesions: Sequence[Lesion]
                   ) -> list[tuple[ManualLesion, Lesion]]:
    """The record's manual lesions as lesions of a run, with ids after the run's largest.

    Every manual lesion (rejected ones too) takes the next id in record order, so ids are the
    same for :func:`apply` and the classifier's marks.
    """
    next_id = max([0, *(int(les.id) for les in lesions)]) + 1
    out = []
    for number, item in enumerate(record.manual_lesions):
        lesion = copy.deepcopy(item.lesion)
        lesion.id, lesion.source = next_id + number, "manual"
        lesion.extra["annotation_uid"] = item.uid
        out.append((item, lesion))
    return out


def _edited(lesion: Lesion, decision: LesionDecision | None) -> Lesion:
    out = copy.deepcopy(lesion)
    if decision is None:
        return out
    for name, value in decision.overrides.items():
        if getattr(out, name) != value:
            out.extra[f"auto_{name}"] = getattr(out, name)
            setattr(out, name, value)
            out.source = "manual"
    if decision.state == "accepted":
        out.extra["reader_accepted"] = True
    return out


def _effective_labels(record: AnnotationRecord, lesions: Sequence[Lesion], labels: LabelsArg,
                      rejected: list[Lesion], manual_ids: dict[str, int],
                      warnings: list[str]) -> np.ndarray | dict | None:
    if labels is None:
        return None
    by_series = {uid: SeriesLabels(item.labels.copy(), item.id_offset)
                 for uid, item in labels_by_series(lesions, labels).items()}
    if isinstance(labels, np.ndarray) and not by_series:
        uids = {m.lesion.series_instance_uid for m in record.manual_lesions}
        by_series = {uid: SeriesLabels(labels.copy()) for uid in list(uids)[:1]}
    for uid, item in by_series.items():
        values = [int(les.id) - item.id_offset for les in rejected
                  if les.series_instance_uid == uid and "annotation_uid" not in les.extra]
        top = int(item.labels.max(initial=0))
        values = [v for v in values if 0 < v <= top]
        if values:  # a lookup table clears many labels in one pass (np.isin sorts)
            table = np.arange(top + 1, dtype=item.labels.dtype)
            table[values] = 0
            item.labels = table[item.labels]
    for manual in record.manual_lesions:
        item = by_series.get(manual.lesion.series_instance_uid)
        if manual.state == "rejected" or manual.mask is None or item is None:
            continue
        if tuple(item.labels.shape) != manual.mask.shape:
            warnings.append(f"Manual lesion {manual.uid} was painted on an image of shape "
                            f"{manual.mask.shape}, not {tuple(item.labels.shape)}; it is "
                            "listed but not drawn.")
            continue
        item.labels.ravel()[manual.mask.flat_indices()] = manual_ids[manual.uid] - item.id_offset
    if isinstance(labels, np.ndarray):
        return next(iter(by_series.values())).labels if by_series else labels.copy()
    return {uid: (item.labels if isinstance(labels[uid], np.ndarray) else item)
            for uid, item in by_series.items()}


def rekey(record: AnnotationRecord, lesions: Sequence[Lesion],
          lesion_labels: LabelsArg = None, *,
          spacing_mm: Mapping[str, Sequence[float] | None] | None = None,
          params: MatchParams | None = None) -> MatchResult:
    """Move the record's decisions onto a new run (call after a re-run, then save).

    Matched decisions take the new lesion's key (centroid, size, id) and, when the label
    image is given, its voxels, so later edits find them and the next re-run matches against
    this run. Unmatched decisions are flagged ``orphaned`` and kept; ``auto`` keeps the values
    the reader saw when deciding.

    Returns
    -------
    MatchResult
        ``modified`` of the record is stamped only when something changed, so re-opening
        the same run does not make the record look edited.
    """
    match = match_decisions(record, lesions, lesion_labels, spacing_mm=spacing_mm,
                            params=params)
    by_id = {int(les.id): les for les in lesions}
    runs = series_runs(lesions, lesion_labels, {})
    changed = False
    for decision in record.decisions:
        before = (decision.orphaned, decision.key, decision.mask, dict(decision.auto))
        decision.orphaned = decision.uid not in match.matched
        if not decision.orphaned:
            lesion = by_id[match.matched[decision.uid]]
            decision.key = LesionKey.of(lesion)
            run = runs[lesion.series_instance_uid]
            if run.item is not None:
                decision.mask = run.mask(int(lesion.id) - run.item.id_offset)
            for name in AUTO_FIELDS:
                decision.auto.setdefault(name, getattr(lesion, name))
        changed |= before != (decision.orphaned, decision.key, decision.mask, decision.auto)
    if changed:
        record.touch()
    return match
