"""Find the reader's decisions again in a detection run, and apply the record to it.

Matching (one-to-one, greedy by strength; see :mod:`napari_calcinosis.annotations._findings`):

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_calcinosis.types import Lesion

from ._mask import VoxelMask, mask_in_box
from ._record import AnnotationRecord, LesionDecision, LesionKey

__all__ = ["LabelsArg", "MatchParams", "MatchResult", "SeriesLabels", "labels_by_series",
           "match_decisions", "series_runs"]


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


def labels_by_series(lesions: Sequence[Lesion], labels: LabelsArg) -> dict[str, SeriesLabels]:
    """``lesion_labels`` as ``{series uid: SeriesLabels}`` (one array: the lesions' series)."""
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
    runs = series_runs(lesions, lesion_labels, spacing_mm or {})
    pairs: list[tuple[int, float, int, int]] = []
    for d_index, decision in enumerate(record.decisions):
        run = runs.get(decision.key.series_instance_uid)
        if run is not None:
            pairs.extend((kind, score, d_index, l_index)
                         for kind, score, l_index in run.candidates(decision, params))
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


def series_runs(lesions: Sequence[Lesion], lesion_labels: LabelsArg,
                spacing_mm: Mapping[str, Sequence[float] | None]) -> dict[str, _SeriesRun]:
    """The run's lesions grouped by series, with their label images, ready for matching."""
    by_series = labels_by_series(lesions, lesion_labels)
    positions: dict[str, list[int]] = {}
    for i, lesion in enumerate(lesions):
        positions.setdefault(lesion.series_instance_uid, []).append(i)
    return {uid: _SeriesRun(lesions, where, by_series.get(uid), spacing_mm.get(uid))
            for uid, where in positions.items()}


def _nan_or(value: float | None) -> float:
    return np.nan if value is None else float(value)


class _SeriesRun:
    """The lesions and label image of one series in a run, as arrays for fast matching."""

    def __init__(self, lesions: Sequence[Lesion], positions: list[int],
                 item: SeriesLabels | None, spacing: Sequence[float] | None) -> None:
        chosen = [lesions[i] for i in positions]
        self.positions = np.asarray(positions)
        self.item = item
        self.spacing = spacing
        self.index_of = {} if item is None else {
            int(les.id) - item.id_offset: i for les, i in zip(chosen, positions, strict=True)}
        self.mm = np.array([les.centroid_mm if les.centroid_mm is not None
                            and len(les.centroid_mm) == 3 else [np.nan] * 3
                            for les in chosen], dtype=float).reshape(-1, 3)
        self.centroids = [np.asarray(les.centroid_index, dtype=float) for les in chosen]
        self.diameter = np.array([_nan_or(les.max_diameter_mm) for les in chosen])
        self.sizes = np.array([[_nan_or(les.volume_mm3), _nan_or(les.area_mm2)]
                               for les in chosen]).reshape(-1, 2)
        self._boxes: list | None = None

    def candidates(self, decision: LesionDecision,
                   params: MatchParams) -> list[tuple[int, float, int]]:
        """``(kind, score, position)``: 0 same lesion, 1 voxel overlap, 2 near centroid."""
        key = decision.key
        distance = self._distances_mm(key)
        exact = self._same_place(key) & self._same_size(key)
        pairs = [(0, 1.0, int(p)) for p in self.positions[exact]]
        mask = decision.mask
        if mask is not None and self.item is not None and \
                tuple(self.item.labels.shape) == mask.shape:
            for value, dice in self._dice_scores(mask):
                if dice >= params.min_dice and value in self.index_of:
                    pairs.append((1, dice, self.index_of[value]))
            return pairs
        diameter = np.nan_to_num(self.diameter) if key.max_diameter_mm is None else \
            key.max_diameter_mm
        tolerance = np.maximum(params.min_tolerance_mm, params.diameter_fraction * diameter)
        near = np.isfinite(distance) & (distance <= tolerance)
        pairs.extend((2, -float(d), int(p))
                     for d, p in zip(distance[near], self.positions[near], strict=True))
        return pairs

    def _index_matrix(self, length: int) -> np.ndarray:
        return np.array([c if c.size == length else np.full(length, np.nan)
                         for c in self.centroids]).reshape(-1, length)

    def _distances_mm(self, key: LesionKey) -> np.ndarray:
        index = np.asarray(key.centroid_index, dtype=float)
        step = np.ones(index.size) if self.spacing is None else np.asarray(self.spacing, float)
        by_index = np.linalg.norm((self._index_matrix(index.size) - index) * step, axis=1)
        if key.centroid_mm is None:
            return by_index
        by_mm = np.linalg.norm(self.mm - np.asarray(key.centroid_mm, float), axis=1)
        return np.where(np.isfinite(by_mm), by_mm, by_index)

    def _same_place(self, key: LesionKey) -> np.ndarray:
        if key.centroid_mm is not None:
            gap = np.abs(self.mm - np.asarray(key.centroid_mm, float))
        else:
            index = np.asarray(key.centroid_index, dtype=float)
            gap = np.abs(self._index_matrix(index.size) - index)
        return np.all(gap <= 1e-3, axis=1)

    def _same_size(self, key: LesionKey) -> np.ndarray:
        ok = np.ones(len(self.positions), dtype=bool)
        for column, value in enumerate((key.volume_mm3, key.area_mm2)):
            have = self.sizes[:, column]
            if value is None:
                ok &= np.isnan(have)
            else:
                ok &= np.isclose(have, value, rtol=1e-6, atol=1e-9)
        return ok

    def boxes(self) -> list:
        """Bounding boxes of every label value (``scipy.ndimage.find_objects``), cached."""
        if self._boxes is None:
            from scipy import ndimage as ndi

            self._boxes = ndi.find_objects(self.item.labels)
        return self._boxes

    def voxel_count(self, value: int) -> int:
        """Voxels of label ``value`` in this run."""
        box = self.boxes()[value - 1]
        return int(np.count_nonzero(self.item.labels[box] == value))

    def mask(self, value: int) -> VoxelMask | None:
        """The voxels of label ``value`` (``None`` when absent)."""
        boxes = self.boxes()
        if not 0 < value <= len(boxes) or boxes[value - 1] is None:
            return None
        return mask_in_box(self.item.labels, value, boxes[value - 1])

    def _dice_scores(self, mask: VoxelMask) -> list[tuple[int, float]]:
        values = self.item.labels.ravel()[mask.flat_indices()]
        values = values[values > 0]
        if values.size == 0:
            return []
        found, inter = np.unique(values, return_counts=True)
        old = mask.voxel_count
        return [(int(v), 2.0 * n / (old + self.voxel_count(int(v))))
                for v, n in zip(found, inter, strict=True)]
