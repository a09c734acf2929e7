"""Study-level summary of a lesion set: counts, extent, form, symmetry, deep and incidental.

The rules are the contract's (docs/contract.md, ``summary``); the region adjacency used for the
"two or more non-adjacent regions on both sides" rule of ``generalized`` is a design choice
written out in :data:`ADJACENT_REGIONS`. Works for CT and radiograph lesions alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import combinations

from napari_calcinosis.types import CTParams, Lesion, SeriesEntry, Summary

from ._symmetry import assess_symmetry

_ADJACENCY_PAIRS = (
    ("head_neck", "shoulder_girdle"),
    ("shoulder_girdle", "axilla"), ("shoulder_girdle", "chest_wall_anterior"),
    ("shoulder_girdle", "chest_wall_lateral"), ("shoulder_girdle", "chest_wall_posterior"),
    ("shoulder_girdle", "upper_limb"), ("shoulder_girdle", "breast"),
    ("axilla", "chest_wall_anterior"), ("axilla", "chest_wall_lateral"),
    ("axilla", "chest_wall_posterior"), ("axilla", "upper_limb"), ("axilla", "breast"),
    ("chest_wall_anterior", "chest_wall_lateral"), ("chest_wall_anterior", "breast"),
    ("chest_wall_anterior", "abdominal_wall"),
    ("chest_wall_lateral", "chest_wall_posterior"), ("chest_wall_lateral", "breast"),
    ("chest_wall_lateral", "flank"),
    ("chest_wall_posterior", "lower_back"),
    ("breast", "abdominal_wall"),
    ("abdominal_wall", "flank"), ("abdominal_wall", "pelvis"),
    ("flank", "lower_back"), ("flank", "pelvis"), ("flank", "gluteal"),
    ("lower_back", "gluteal"),
    ("gluteal", "pelvis"), ("gluteal", "lower_limb"),
    ("pelvis", "lower_limb"),
    ("upper_limb", "hand"), ("lower_limb", "foot"),
)

#: Which body regions touch each other (symmetric relation).
ADJACENT_REGIONS: dict[str, frozenset[str]] = {}
for _a, _b in _ADJACENCY_PAIRS:
    ADJACENT_REGIONS[_a] = ADJACENT_REGIONS.get(_a, frozenset()) | {_b}
    ADJACENT_REGIONS[_b] = ADJACENT_REGIONS.get(_b, frozenset()) | {_a}

INCIDENTAL_LAYERS = {"cartilage": "costal_cartilage", "vessel": "vessel_wall",
                     "visceral": "visceral"}


def regions_adjacent(a: str, b: str) -> bool:
    """True when two regions touch (a region is adjacent to itself)."""
    return a == b or b in ADJACENT_REGIONS.get(a, frozenset())


def extent_of(lesions: Sequence[Lesion]) -> str:
    """Extent of soft-tissue lesions: ``none``, ``localized``, ``regional``, ``generalized``.

    ``unknown`` regions do not count as a region of their own unless nothing else is known.
    """
    if not lesions:
        return "none"
    regions = {les.region for les in lesions if les.region != "unknown"}
    if len(regions) >= 4:
        return "generalized"
    sides: dict[str, set[str]] = {}
    for les in lesions:
        sides.setdefault(les.region, set()).add(les.side)
    bilateral = [r for r in regions if {"left", "right"} <= sides[r]]
    if any(not regions_adjacent(a, b) for a, b in combinations(bilateral, 2)):
        return "generalized"
    if len(regions) >= 2:
        return "regional"
    return "localized"


def form_of(extent: str) -> str:
    """Form from extent: ``universalis`` when generalized, else ``circumscripta``/``none``."""
    return {"none": "none", "generalized": "universalis"}.get(extent, "circumscripta")


def deep_involvement(lesions: Sequence[Lesion], *, visceral_min: int = 3) -> dict[str, bool]:
    """Muscle, vessel (within soft tissue) and visceral involvement.

    ``vessel`` is true only for soft-tissue calcification that follows vessels: lesions
    flagged ``extra["follows_vessel"]`` or net-like (``reticular``) in skin or fat, the
    pattern of calciphylaxis. Aortic plaque (layer ``vessel``) is incidental, not this.
    ``visceral`` needs at least ``visceral_min`` visceral calcifications: a single
    calcified granuloma is an incidental finding, many point to metastatic calcification.
    """
    soft = [les for les in lesions if les.is_soft_tissue]
    vessel = any(les.extra.get("follows_vessel") or
                 (les.morphology == "reticular" and les.layer in ("skin", "subcutaneous"))
                 for les in soft)
    return {"muscle": any(les.layer == "muscle" for les in soft),
            "vessel": bool(vessel),
            "visceral": sum(les.layer == "visceral" for les in lesions) >= visceral_min}


def summarize(lesions: Sequence[Lesion], *, params: CTParams | None = None,
              source: str = "CT") -> Summary:
    """Summarise lesions into the contract's ``summary``.

    Parameters
    ----------
    lesions : sequence of findings.Lesion
        All lesions of one source (CT or radiographs), incidental ones included.
    params : CTParams, optional
        Symmetry settings (SI cut, pair fraction, minimum deposits, partner distance) and
        ``visceral_min``.
    source : str
        ``"CT"`` or ``"radiograph"``.

    Returns
    -------
    findings.Summary
        Counts, volume, extent, form and symmetry over soft-tissue lesions only; incidental
        counts of cartilage, vessel-wall and visceral calcification.
    """
    params = params or CTParams()
    soft = [les for les in lesions if les.is_soft_tissue]
    extent = extent_of(soft)
    incidental = {name: 0 for name in INCIDENTAL_LAYERS.values()}
    for les in lesions:
        if les.layer in INCIDENTAL_LAYERS:
            incidental[INCIDENTAL_LAYERS[les.layer]] += 1
    return Summary(
        lesion_count=len(soft),
        total_volume_mm3=round(sum(les.volume_mm3 or 0.0 for les in soft), 3),
        by_layer=dict(Counter(les.layer for les in soft)),
        by_region=dict(Counter(les.region for les in soft)),
        by_side=dict(Counter(les.side for les in soft)),
        extent=extent,
        form=form_of(extent),
        symmetry=assess_symmetry(soft, params=params),
        deep_involvement=deep_involvement(lesions, visceral_min=params.visceral_min),
        incidental=incidental,
        source=source,
    )


def summary_series(entries: list[SeriesEntry]) -> SeriesEntry | None:
    """The one analysed series the study summary comes from, so no deposit counts twice.

    A CT when there is one (the thinnest slices, then the most slices: several CT series of
    one study are usually reconstructions of the same scan); else the frontal radiograph
    (else the first radiograph). Pass the analysed series (non-CT volumes are never
    analysed and are passed over).
    """
    cts = [e for e in entries if e.kind == "volume" and e.modality == "CT"]
    if cts:
        return min(cts, key=lambda e: (e.slice_thickness_mm or e.spacing_mm[0], -e.shape[0]))
    radiographs = [e for e in entries if e.kind == "radiograph"]
    return next((e for e in radiographs if e.view == "frontal"),
                radiographs[0] if radiographs else None)
