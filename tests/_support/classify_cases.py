"""Hand-built findings and clinical inputs for the classification tests (no test functions).

Lesions are laid out as a radiologist would describe them (count, region, side, layer,
morphology, size); the summary is computed from them with ``distribution.summarize`` so the
extent, form, symmetry and deep-involvement values are the ones the real pipeline would give.
Clinical inputs are dicts in the contract's format, parsed with ``clinical.parse_clinical``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from napari_calcinosis.clinical import ClinicalInput, parse_clinical
from napari_calcinosis.phantom import SAMPLE_CLINICAL
from napari_calcinosis.summary import summarize
from napari_calcinosis.types import Findings, Lesion, SeriesEntry

CT_UID, CR_UID = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"

#: The contract's clinical example (docs/contract.md), the seed case: a 78-year-old man with every
#: lab normal and no relevant history; the demo's clinical input for the generalized sample
#: is that document (test_clinical pins its values against docs/contract.md). A copy, so that no
#: test can change the package's constant.
CONTRACT_CLINICAL: dict[str, Any] = copy.deepcopy(SAMPLE_CLINICAL["generalized"])
NORMAL_LABS: dict[str, dict[str, Any]] = CONTRACT_CLINICAL["labs"]
NEGATIVE_HISTORY: dict[str, Any] = CONTRACT_CLINICAL["history"]


@dataclass
class Group:
    """``count`` lesions per side in one region, all alike."""

    count: int
    region: str
    sides: tuple[str, ...] = ("left", "right")
    layer: str = "subcutaneous"
    morphology: str = "punctate"
    diameter_mm: float = 2.5
    peak_hu: float = 350.0
    extra: dict[str, Any] = field(default_factory=dict)
    spread: float = 0.0  # relative size variation between lesions of the group


def build_lesions(groups: list[Group], *, uid: str = CT_UID) -> list[Lesion]:
    """Lesions of the groups with ids 1..n; mirrored sides get equal burden."""
    lesions: list[Lesion] = []
    for group in groups:
        for side in group.sides:
            for k in range(group.count):
                scale = 1.0 + group.spread * ((k % 3) - 1)
                diameter = group.diameter_mm * scale
                x_mm = {"left": 60.0, "right": -60.0}.get(side, 0.0)
                lesions.append(Lesion(
                    id=len(lesions) + 1, series_instance_uid=uid,
                    centroid_index=[float(k), 10.0, 10.0], layer=group.layer, side=side,
                    centroid_mm=[x_mm, 0.0, 1000.0 + 10.0 * k],
                    region=group.region, morphology=group.morphology,
                    volume_mm3=round(math.pi / 6.0 * diameter ** 3, 2),
                    peak_hu=group.peak_hu, max_diameter_mm=round(diameter, 2),
                    extra=dict(group.extra)))
    return lesions


def build_findings(groups: list[Group], *, source: str = "CT") -> Findings:
    """Findings with the summary the pipeline would compute for these lesions."""
    uid = CT_UID if source == "CT" else CR_UID
    kind = "volume" if source == "CT" else "radiograph"
    lesions = build_lesions(groups, uid=uid)
    for les in lesions:
        if source == "radiograph":
            les.area_mm2, les.volume_mm3 = les.volume_mm3, None
            les.centroid_mm, les.centroid_index, les.peak_hu = None, les.centroid_index[1:], None
    series = [SeriesEntry(uid, "CT", kind, [100, 256, 256], [2.0, 0.8, 0.8], 2.0)
              if source == "CT" else SeriesEntry(uid, "CR", kind, [2000, 1800], [0.2, 0.2],
                                                 view="PA")]
    return Findings(software={"name": "napari-calcinosis", "version": "test"},
                    study={"study_instance_uid": "1.2.3", "modalities": [series[0].modality]},
                    series=series, lesions=lesions,
                    summary=summarize(lesions, source=source))


def make_clinical(labs: dict[str, Any] | None = None, history: dict[str, Any] | None = None,
                  *, drop: tuple[str, ...] = (), age: float | None = 60,
                  sex: str | None = "M") -> ClinicalInput:
    """Contract-format clinical input: normal labs and negative history, updated and pruned.

    ``labs``/``history`` entries update the defaults (``None`` removes one); ``drop`` removes
    labs or history keys by name; ``labs={}`` keeps the defaults.
    """
    lab_doc = copy.deepcopy(NORMAL_LABS)
    history_doc = dict(NEGATIVE_HISTORY)
    lab_doc.update(labs or {})
    history_doc.update(history or {})
    doc: dict[str, Any] = {
        "labs": {k: v for k, v in lab_doc.items() if v is not None and k not in drop},
        "history": {k: v for k, v in history_doc.items() if v is not None and k not in drop},
    }
    if age is not None:
        doc["age"] = age
    if sex is not None:
        doc["sex"] = sex
    return parse_clinical(doc)


# --- Lesion layouts -------------------------------------------------------------------------

def seed_groups() -> list[Group]:
    """The seed case: 40 small skin and subcutaneous deposits, symmetric, in 6 regions."""
    regions = ("shoulder_girdle", "chest_wall_anterior", "chest_wall_lateral", "axilla",
               "gluteal", "abdominal_wall")
    groups = [Group(3, r, morphology="punctate", diameter_mm=2.5) for r in regions]
    groups.append(Group(1, "shoulder_girdle", layer="skin", morphology="nodular",
                        diameter_mm=4.0))
    groups.append(Group(1, "gluteal", layer="skin", morphology="nodular", diameter_mm=4.0))
    return groups  # 6 x 3 x 2 + 2 x 2 = 40


def ssc_fingertip_groups() -> list[Group]:
    return [Group(3, "hand", layer="subcutaneous", morphology="nodular", diameter_mm=5.0),
            Group(2, "hand", layer="periarticular", morphology="nodular", diameter_mm=7.0)]


def dm_fascial_groups() -> list[Group]:
    regions = ("shoulder_girdle", "upper_limb", "lower_limb", "chest_wall_lateral",
               "abdominal_wall", "gluteal")
    return [Group(2, r, layer="fascia", morphology="sheet", diameter_mm=35.0) for r in regions] \
        + [Group(1, r, layer="muscle", morphology="linear", diameter_mm=25.0) for r in regions]


def metastatic_groups() -> list[Group]:
    return [Group(2, "shoulder_girdle", layer="periarticular", morphology="nodular",
                  diameter_mm=9.0),
            Group(1, "hand", layer="periarticular", morphology="nodular", diameter_mm=6.0),
            Group(2, "pelvis", layer="periarticular", morphology="nodular", diameter_mm=12.0),
            Group(1, "lower_limb", layer="periarticular", morphology="nodular", diameter_mm=8.0),
            Group(2, "abdominal_wall", layer="subcutaneous", morphology="punctate",
                  diameter_mm=3.0)]


def tumoral_groups() -> list[Group]:
    return [Group(1, "pelvis", sides=("right",), layer="periarticular", morphology="mass",
                  diameter_mm=70.0),
            Group(1, "pelvis", sides=("right",), layer="periarticular", morphology="mass",
                  diameter_mm=40.0)]


def gluteal_injection_groups() -> list[Group]:
    return [Group(4, "gluteal", sides=("left",), morphology="nodular", diameter_mm=11.0,
                  spread=0.2),
            Group(3, "gluteal", sides=("right",), morphology="nodular", diameter_mm=9.0,
                  spread=0.2)]


def calciphylaxis_groups() -> list[Group]:
    net = {"follows_vessel": True}
    return [Group(3, "abdominal_wall", layer="skin", morphology="reticular", diameter_mm=18.0,
                  extra=net),
            Group(2, "abdominal_wall", layer="subcutaneous", morphology="reticular",
                  diameter_mm=22.0, extra=net),
            Group(2, "lower_limb", sides=("left",), layer="subcutaneous",
                  morphology="reticular", diameter_mm=20.0, extra=net)]


def iv_calcium_groups() -> list[Group]:
    return [Group(3, "upper_limb", sides=("right",), morphology="nodular", diameter_mm=7.0,
                  spread=0.25)]


def myositis_groups() -> list[Group]:
    return [Group(1, "lower_limb", sides=("left",), layer="muscle", morphology="mass",
                  diameter_mm=45.0)]


def tendinitis_groups() -> list[Group]:
    return [Group(1, "shoulder_girdle", sides=("right",), layer="tendon", morphology="nodular",
                  diameter_mm=12.0)]


def vascular_groups() -> list[Group]:
    along = {"follows_vessel": True}
    return [Group(2, "lower_limb", layer="muscle", morphology="linear", diameter_mm=45.0,
                  extra=along),
            Group(1, "lower_limb", layer="fascia", morphology="linear", diameter_mm=30.0,
                  extra=along),
            Group(4, "pelvis", layer="vessel", morphology="linear", diameter_mm=20.0)]


def phlebolith_groups() -> list[Group]:
    return [Group(3, "pelvis", sides=("left",), layer="unknown", morphology="nodular",
                  diameter_mm=5.0, spread=0.15),
            Group(2, "pelvis", sides=("right",), layer="unknown", morphology="nodular",
                  diameter_mm=4.5)]


def chondromatosis_groups() -> list[Group]:
    return [Group(12, "pelvis", sides=("right",), layer="periarticular", morphology="nodular",
                  diameter_mm=5.0, spread=0.1)]


def cysticercosis_groups() -> list[Group]:
    regions = ("shoulder_girdle", "upper_limb", "chest_wall_posterior", "lower_back",
               "gluteal", "lower_limb")
    return [Group(3, r, layer="muscle", morphology="linear", diameter_mm=7.0, spread=0.2)
            for r in regions]


def tumour_groups() -> list[Group]:
    return [Group(1, "chest_wall_lateral", sides=("left",), layer="muscle", morphology="mass",
                  diameter_mm=50.0)]


def heterotopic_groups() -> list[Group]:
    return [Group(1, "pelvis", sides=("right",), layer="periarticular", morphology="mass",
                  diameter_mm=50.0, peak_hu=1400.0),
            Group(1, "pelvis", sides=("right",), layer="periarticular", morphology="mass",
                  diameter_mm=35.0, peak_hu=1250.0)]


def lupus_groups() -> list[Group]:
    regions = ("upper_limb", "lower_limb", "gluteal", "chest_wall_anterior", "abdominal_wall")
    return [Group(3, r, morphology="nodular", diameter_mm=6.0) for r in regions]
