"""Known-answer tests of the study-level summary rules (docs/contract.md ``summary``)."""

from __future__ import annotations

import pytest

from napari_calcinosis.summary import (
    ADJACENT_REGIONS,
    extent_of,
    form_of,
    regions_adjacent,
    summarize,
)
from napari_calcinosis.types import Lesion
from napari_calcinosis.types.findings import EXTENTS, REGIONS


def lesion(i, region, side, layer="subcutaneous", volume=10.0, morphology="punctate", **extra):
    return Lesion(id=i, series_instance_uid="1.2", centroid_index=[0, 0, 0], layer=layer,
                  side=side, region=region, morphology=morphology, volume_mm3=volume,
                  extra=dict(extra))


def test_adjacency_is_symmetric_and_uses_contract_words():
    for region, others in ADJACENT_REGIONS.items():
        assert region in REGIONS
        for other in others:
            assert region in ADJACENT_REGIONS[other]
    assert regions_adjacent("axilla", "axilla")
    assert not regions_adjacent("shoulder_girdle", "gluteal")


@pytest.mark.parametrize(("spec", "extent"), [
    ([], "none"),
    ([("gluteal", "left")], "localized"),
    ([("gluteal", "left"), ("gluteal", "right")], "localized"),
    ([("gluteal", "left"), ("lower_back", "right")], "regional"),
    ([("axilla", "left"), ("chest_wall_lateral", "left"), ("shoulder_girdle", "left")],
     "regional"),
    ([("axilla", "left"), ("chest_wall_lateral", "left"), ("shoulder_girdle", "left"),
      ("flank", "left")], "generalized"),
    # two non-adjacent regions, each on both sides
    ([("shoulder_girdle", "left"), ("shoulder_girdle", "right"), ("gluteal", "left"),
      ("gluteal", "right")], "generalized"),
    # two adjacent bilateral regions stay regional
    ([("shoulder_girdle", "left"), ("shoulder_girdle", "right"), ("axilla", "left"),
      ("axilla", "right")], "regional"),
    # non-adjacent but one of them one-sided only
    ([("shoulder_girdle", "left"), ("shoulder_girdle", "right"), ("gluteal", "left")],
     "regional"),
    ([("unknown", "left")], "localized"),
])
def test_extent_rules(spec, extent):
    lesions = [lesion(i + 1, r, s) for i, (r, s) in enumerate(spec)]
    assert extent_of(lesions) == extent
    assert extent in EXTENTS


def test_form_follows_extent():
    assert [form_of(e) for e in EXTENTS] == ["none", "circumscripta", "circumscripta",
                                             "universalis"]


def test_incidental_layers_never_count():
    lesions = [lesion(1, "chest_wall_anterior", "left", layer="cartilage"),
               lesion(2, "unknown", "midline", layer="vessel"),
               lesion(3, "unknown", "right", layer="vessel"),
               lesion(4, "unknown", "left", layer="visceral"),
               lesion(5, "gluteal", "left", volume=7.5)]
    summary = summarize(lesions)
    assert summary.lesion_count == 1
    assert summary.total_volume_mm3 == pytest.approx(7.5)
    assert summary.by_layer == {"subcutaneous": 1}
    assert summary.by_region == {"gluteal": 1}
    assert summary.by_side == {"left": 1}
    assert summary.extent == "localized" and summary.form == "circumscripta"
    assert summary.incidental == {"costal_cartilage": 1, "vessel_wall": 2, "visceral": 1}
    # one visceral calcification (a granuloma) is incidental, not visceral involvement
    assert summary.deep_involvement == {"muscle": False, "vessel": False, "visceral": False}
    more = lesions + [lesion(6 + i, "unknown", "left", layer="visceral") for i in range(2)]
    assert summarize(more).deep_involvement["visceral"] is True
    assert summary.symmetry.call == "insufficient"


def test_only_incidental_gives_none():
    summary = summarize([lesion(1, "unknown", "left", layer="vessel")])
    assert summary.lesion_count == 0
    assert summary.extent == "none" and summary.form == "none"


def test_deep_involvement_muscle_and_vessel_pattern():
    summary = summarize([lesion(1, "flank", "left", layer="muscle"),
                         lesion(2, "flank", "right", morphology="reticular")])
    assert summary.deep_involvement["muscle"] is True
    assert summary.deep_involvement["vessel"] is True
    summary = summarize([lesion(1, "flank", "left", follows_vessel=True)])
    assert summary.deep_involvement["vessel"] is True
    assert summary.deep_involvement["muscle"] is False


def test_universalis_symmetric_summary():
    lesions = []
    for i, region in enumerate(["shoulder_girdle", "chest_wall_anterior", "gluteal",
                                "lower_back"]):
        for side, sign in (("left", 1), ("right", -1)):
            lesions.append(lesion(len(lesions) + 1, region, side, volume=10 + i,
                                  midplane_mm=[sign * 60.0, 0.0, 10.0 * i, 100.0]))
    summary = summarize(lesions, source="CT")
    assert summary.extent == "generalized" and summary.form == "universalis"
    assert summary.symmetry.call == "symmetric"
    assert summary.symmetry.index == pytest.approx(1.0)
    assert summary.symmetry.matched_fraction == pytest.approx(1.0)
    assert summary.source == "CT"
