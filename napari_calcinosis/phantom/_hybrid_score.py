"""Scoring a detector's lesions against the truth of a hybrid study.

A deposit is *found* when a soft-tissue lesion (a layer of the body wall or the limbs, see
``SOFT_LAYERS``) covers one of its voxels. A soft-tissue lesion that covers no deposit is a
*false call*: either something of the real anatomy, or a part of a deposit that came apart.
The figures follow the targets of the CT detector: sensitivity over the *eligible* deposits
(at least 2 mm, peak after blur at least ``ELIGIBLE_PEAK_HU``), PPV over the soft-tissue
lesions, the layer and the side exact among the found eligible deposits (``periarticular``
deposits are right when called ``mass``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_calcinosis.types import Lesion
from napari_calcinosis.types.findings import SOFT_TISSUE_LAYERS

from ._hybrid import HybridStudy

__all__ = ["SOFT_LAYERS", "HybridScore", "score_hybrid"]

#: Layers of the body wall and the limbs (the contract's words): what calcinosis is.
SOFT_LAYERS = SOFT_TISSUE_LAYERS


@dataclass
class HybridScore:
    """Counts for one hybrid (add them up over a set of hybrids with ``+``)."""

    eligible: int = 0
    found: int = 0
    layer_exact: int = 0
    side_exact: int = 0
    soft_calls: int = 0
    true_calls: int = 0
    misses: list[int] = field(default_factory=list)
    false_calls: list[int] = field(default_factory=list)

    def __add__(self, other: HybridScore) -> HybridScore:
        return HybridScore(self.eligible + other.eligible, self.found + other.found,
                           self.layer_exact + other.layer_exact,
                           self.side_exact + other.side_exact,
                           self.soft_calls + other.soft_calls,
                           self.true_calls + other.true_calls,
                           self.misses + other.misses, self.false_calls + other.false_calls)

    @property
    def sensitivity(self) -> float:
        return self.found / self.eligible if self.eligible else float("nan")

    @property
    def ppv(self) -> float:
        return self.true_calls / self.soft_calls if self.soft_calls else float("nan")

    @property
    def layer_accuracy(self) -> float:
        return self.layer_exact / self.found if self.found else float("nan")

    @property
    def side_accuracy(self) -> float:
        return self.side_exact / self.found if self.found else float("nan")


def _layer_matches(truth: str, lesion: Lesion) -> bool:
    if truth == "periarticular":
        return lesion.morphology == "mass" or lesion.layer == "periarticular"
    return lesion.layer == truth


def score_hybrid(study: HybridStudy, lesions: list[Lesion],
                 lesion_labels: np.ndarray) -> HybridScore:
    """Score ``lesions`` (ids as in ``lesion_labels``, a volume of lesion ids) on ``study``.

    Parameters
    ----------
    study : HybridStudy
        The hybrid and its deposits (:func:`make_hybrid`).
    lesions : list of Lesion
        What the detector reported on ``study.volume``.
    lesion_labels : numpy.ndarray
        Lesion id per voxel (0 none), the shape of ``study.volume.hu``.
    """
    if lesion_labels.shape != study.volume.hu.shape:
        raise ValueError(f"lesion labels of shape {lesion_labels.shape} do not match the "
                         f"hybrid's volume {study.volume.hu.shape}")
    by_id = {les.id: les for les in lesions}
    flat = lesion_labels.ravel()
    score = HybridScore()
    covered: set[int] = set()
    for dep in study.deposits:
        ids = {int(v) for v in np.unique(flat[dep.voxels])} - {0}
        hits = [by_id[i] for i in ids if i in by_id and by_id[i].layer in SOFT_LAYERS]
        covered |= {les.id for les in hits}
        if not dep.eligible:
            continue
        score.eligible += 1
        if not hits:
            score.misses.append(dep.id)
            continue
        score.found += 1
        score.layer_exact += any(_layer_matches(dep.layer, les) for les in hits)
        score.side_exact += any(les.side == dep.side for les in hits)
    soft = [les for les in lesions if les.layer in SOFT_LAYERS]
    score.soft_calls = len(soft)
    score.true_calls = sum(1 for les in soft if les.id in covered)
    score.false_calls = [les.id for les in soft if les.id not in covered]
    return score
