"""Find the reader's decisions again in a detection run, and apply the record to it.

Matching (one-to-one, greedy by strength; see :mod:`napari_calcinosis.core.annotations`):

1. *Same lesion*: same series, same centroid (1 µm / 0.001 px) and same volume or area.
2. *Voxel overlap*: when the decision stored the lesion's voxels and the run's label image of
   that series has the same shape, the new lesion with the greatest Dice overlap (at least
   ``min_dice``). When the voxels are known, overlap alone decides: no overlap, no match.
3. *Nearest centroid* (only when voxels are not available): the nearest lesion of the same
   series within ``max(min_tolerance_mm, diameter_fraction x max diameter)``; CT centroids in
   patient mm, radiograph centroids as indices scaled by the pixel spacing (1 mm per pixel
   when the spacing is unknown).

Decisions without a partner are *orphaned*: reported, kept in the record, tried again on the
next run. Manual lesions are never matched; they are always appended.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .annotations_record import (
    AUTO_FIELDS,
    AnnotationRecord,
    LesionDecision,
    LesionKey,
    ManualLesion,
)
from .findings import Lesion

__all__ = ["AppliedAnnotations", "MatchParams", "MatchResult", "SeriesLabels", "apply",
           "manual_lesions", "match_decisions", "rekey"]


@dataclass(frozen=True)
class MatchParams:
    """How decisions are matched to the lesions of a new run (design choices).

    Attributes
    ----------
    min_dice : float
        Smallest Dice overlap between stored and new voxels that counts as the same lesion.
    min_tolerance_mm : float
        Smallest centroid distance accepted when matching without voxels.
    diameter_fraction : float
        The centroid tolerance grows to this fraction of the lesion's largest diameter.
    """

    min_dice: float = 0.05
    min_tolerance_mm: float = 3.0
    diameter_fraction: float = 0.5


@dataclass
class SeriesLabels:
    """A run's label image of one series: value ``v`` is lesion id ``v + id_offset``."""

    labels: np.ndarray
    id_offset: int = 0


LabelsArg = np.ndarray | Mapping[str, "np.ndarray | SeriesLabels"] | None


@dataclass
class MatchResult:
    """Which decision went to which lesion id, and which found none."""

    matched: dict[str, int] = field(default_factory=dict)
    how: dict[str, str] = field(default_factory=dict)
    orphaned: list[LesionDecision] = field(default_factory=list)


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


def _labels_by_series(lesions: Sequence[Lesion], labels: LabelsArg) -> dict[str, SeriesLabels]:
    if labels is None:
        return {}
    if isinstance(labels, np.ndarray):
        uids = {les.series_instance_uid for les in lesions}
        if len(uids) > 1:
            raise ValueError("lesions of several series need lesion_labels as a mapping "
                             "series_instance_uid -> label image")
        return {uid: SeriesLabels(labels) for uid in uids}
    return {uid: item if isinstance(item, SeriesLabels) else SeriesLabels(np.asarray(item))
            for uid, item in labels.items()}


def match_decisions(record: AnnotationRecord, lesions: Sequence[Lesion],
                    lesion_labels: LabelsArg = None, *,
                    spacing_mm: Mapping[str, Sequence[float] | None] | None = None,
                    params: MatchParams | None = None) -> MatchResult:
    """Pair each decision of ``record`` with at most one lesion of a run.

    Parameters
    ----------
    record : AnnotationRecord
        The study's record.
    lesions : sequence of Lesion
        The run's automatic lesions.
    lesion_labels : numpy.ndarray or mapping, optional
        The run's label image (one series) or ``{series uid: array or SeriesLabels}``.
    spacing_mm : mapping, optional
        Pixel/voxel spacing per series, for index centroids (radiographs).
    params : MatchParams, optional
        Matching tolerances (defaults when omitted).

    Returns
    -------
    MatchResult
        ``matched`` maps decision uid to lesion id; ``how`` says ``same``, ``overlap`` or
        ``centroid``.
    """
    params = params or MatchParams()
    by_series = _labels_by_series(lesions, lesion_labels)
    sizes = {uid: np.bincount(item.labels.ravel()) for uid, item in by_series.items()
             if np.issubdtype(item.labels.dtype, np.integer) and item.labels.min() >= 0}
    pairs: list[tuple[int, float, int, int]] = []
    for d_index, decision in enumerate(record.decisions):
        pairs.extend(_candidate_pairs(d_index, decision, lesions, by_series, sizes,
                                      spacing_mm or {}, params))
    pairs.sort(key=lambda p: (p[0], -p[1]))
    result, used_lesions = MatchResult(), set()
    names = {0: "same", 1: "overlap", 2: "centroid"}
    for kind, _score, d_index, l_index in pairs:
        uid = record.decisions[d_index].uid
        if uid in result.matched or l_index in used_lesions:
            continue
        result.matched[uid] = int(lesions[l_index].id)
        result.how[uid] = names[kind]
        used_lesions.add(l_index)
    result.orphaned = [d for d in record.decisions if d.uid not in result.matched]
    return result


def _candidate_pairs(d_index: int, decision: LesionDecision, lesions: Sequence[Lesion],
                     by_series: dict[str, SeriesLabels], sizes: dict[str, np.ndarray],
                     spacing_mm: Mapping[str, Sequence[float] | None],
                     params: MatchParams) -> list[tuple[int, float, int, int]]:
    key = decision.key
    same_series = [i for i, les in enumerate(lesions)
                   if les.series_instance_uid == key.series_instance_uid]
    pairs = [(0, 1.0, d_index, i) for i in same_series if key.same_as(lesions[i])]
    item = by_series.get(key.series_instance_uid)
    mask = decision.mask
    if mask is not None and item is not None and tuple(item.labels.shape) == mask.shape \
            and key.series_instance_uid in sizes:
        index_of = {int(lesions[i].id) - item.id_offset: i for i in same_series}
        for value, dice in _dice_scores(mask, item.labels, sizes[key.series_instance_uid]):
            if dice >= params.min_dice and value in index_of:
                pairs.append((1, dice, d_index, index_of[value]))
        return pairs
    spacing = spacing_mm.get(key.series_instance_uid)
    for i in same_series:
        distance = _centroid_distance_mm(key, lesions[i], spacing)
        if distance is not None and distance <= _tolerance_mm(key, lesions[i], params):
            pairs.append((2, -distance, d_index, i))
    return pairs


def _dice_scores(mask, labels: np.ndarray, sizes: np.ndarray) -> list[tuple[int, float]]:
    values = labels.ravel()[mask.flat_indices()]
    values = values[values > 0]
    if values.size == 0:
        return []
    found, inter = np.unique(values, return_counts=True)
    old = mask.voxel_count
    return [(int(v), 2.0 * n / (old + sizes[v])) for v, n in zip(found, inter, strict=True)]


def _centroid_distance_mm(key: LesionKey, lesion: Lesion,
                          spacing: Sequence[float] | None) -> float | None:
    if key.centroid_mm is not None and lesion.centroid_mm is not None:
        return float(np.linalg.norm(np.subtract(key.centroid_mm, lesion.centroid_mm)))
    if len(key.centroid_index) != len(lesion.centroid_index):
        return None
    step = np.ones(len(key.centroid_index)) if spacing is None else np.asarray(spacing, float)
    delta = np.subtract(key.centroid_index, lesion.centroid_index) * step
    return float(np.linalg.norm(delta))


def _tolerance_mm(key: LesionKey, lesion: Lesion, params: MatchParams) -> float:
    diameter = key.max_diameter_mm if key.max_diameter_mm is not None else \
        lesion.max_diameter_mm
    return max(params.min_tolerance_mm, params.diameter_fraction * (diameter or 0.0))


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
                 for uid, item in _labels_by_series(lesions, labels).items()}
    if isinstance(labels, np.ndarray) and not by_series:
        uids = {m.lesion.series_instance_uid for m in record.manual_lesions}
        by_series = {uid: SeriesLabels(labels.copy()) for uid in list(uids)[:1]}
    for lesion in rejected:
        item = by_series.get(lesion.series_instance_uid)
        if item is not None and "annotation_uid" not in lesion.extra:
            item.labels[item.labels == int(lesion.id) - item.id_offset] = 0
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
    """
    from .annotations_mask import label_mask

    match = match_decisions(record, lesions, lesion_labels, spacing_mm=spacing_mm,
                            params=params)
    by_id = {int(les.id): les for les in lesions}
    by_series = _labels_by_series(lesions, lesion_labels)
    for decision in record.decisions:
        decision.orphaned = decision.uid not in match.matched
        if decision.orphaned:
            continue
        lesion = by_id[match.matched[decision.uid]]
        decision.key = LesionKey.of(lesion)
        item = by_series.get(lesion.series_instance_uid)
        if item is not None:
            decision.mask = label_mask(item.labels, int(lesion.id) - item.id_offset)
        for name in AUTO_FIELDS:
            decision.auto.setdefault(name, getattr(lesion, name))
    record.touch()
    return match
