"""Scenario table: realistic findings + clinical input -> expected top conclusion and form.

Each case is built the way a radiologist would describe it (``classify_cases``), with the
summary computed by the real ``distribution.summarize``. The table is the acceptance test of the
rule weights; ``test_scenario_table_text`` prints it (``pytest -s``) for the project note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import classify_cases as cc
import pytest

from napari_calcinosis.classify import ReaderMarks, classify
from napari_calcinosis.clinical import LAB_NAMES
from napari_calcinosis.report import validate_findings
from napari_calcinosis.types import Findings

MG = "mg/dL"
KIDNEY_FAILURE = {"creatinine": {"value": 7.5, "unit": MG},
                  "egfr": {"value": 8, "unit": "mL/min/1.73m2"}}
ON_DIALYSIS = {"dialysis": True, "chronic_kidney_disease": True}


@dataclass
class Scenario:
    name: str
    groups: Callable[[], list[cc.Group]]
    clinical: dict[str, Any] | None
    top: str
    form: str | None
    rule: str | None = None  # registry key when the subtype matters (dystrophic)
    source: str = "CT"
    marks: ReaderMarks | None = None
    idiopathic_at_most: float | None = None
    missing: tuple[str, ...] = ()
    margin: float = 0.05  # the top must lead the second by at least this much
    extra: dict[str, Any] = field(default_factory=dict)


def _c(labs=None, history=None, **kw) -> dict[str, Any]:
    return {"labs": labs, "history": history, **kw}


SCENARIOS = [
    Scenario("seed case: elderly man, normal labs, diffuse symmetric skin + subcutis",
             cc.seed_groups, _c(age=78), "idiopathic_calcinosis_cutis", "universalis"),
    Scenario("seed case, aldolase not measured (contract example)", cc.seed_groups,
             _c(age=78, drop=("aldolase",)), "idiopathic_calcinosis_cutis", "universalis",
             missing=("aldolase",)),
    Scenario("seed pattern, no labs at all, history negative", cc.seed_groups,
             _c(drop=LAB_NAMES, age=78), "metastatic_calcinosis_cutis", "universalis",
             idiopathic_at_most=0.2, missing=("calcium", "phosphate", "pth", "egfr"),
             margin=0.05),
    Scenario("seed pattern, nothing known (no labs, no history)", cc.seed_groups, None,
             "dystrophic_calcinosis_cutis", "universalis", rule="dystrophic_connective_tissue",
             idiopathic_at_most=0.2, missing=("connective_tissue_disease", "ck", "aldolase"),
             margin=0.02),
    Scenario("seed pattern, calcium and phosphate missing, rest normal", cc.seed_groups,
             _c(drop=("calcium", "phosphate")), "metastatic_calcinosis_cutis", "universalis",
             idiopathic_at_most=0.2, missing=("calcium", "phosphate"), margin=0.05),
    Scenario("seed pattern with primary hyperparathyroidism (high Ca, high PTH)",
             cc.seed_groups, _c({"calcium": {"value": 11.6, "unit": MG},
                                 "pth": {"value": 21, "unit": "pmol/L"}}),
             "metastatic_calcinosis_cutis", "universalis", idiopathic_at_most=0.1),
    Scenario("fingertip/periarticular cluster, systemic sclerosis", cc.ssc_fingertip_groups,
             _c(history={"connective_tissue_disease": "systemic_sclerosis"}, sex="F"),
             "dystrophic_calcinosis_cutis", "circumscripta",
             rule="dystrophic_connective_tissue"),
    Scenario("fascial sheets, dermatomyositis, high CK and aldolase", cc.dm_fascial_groups,
             _c({"ck": {"value": 2500, "unit": "U/L"}, "aldolase": {"value": 20, "unit": "U/L"}},
                {"connective_tissue_disease": "dermatomyositis"}, age=12, sex="F"),
             "dystrophic_calcinosis_cutis", "universalis", rule="dystrophic_connective_tissue"),
    Scenario("generalized subcutaneous nodules, lupus", cc.lupus_groups,
             _c(history={"connective_tissue_disease": "lupus"}, sex="F", age=40),
             "dystrophic_calcinosis_cutis", "universalis", rule="dystrophic_connective_tissue"),
    Scenario("dialysis, Ca x P > 70, high PTH, periarticular deposits", cc.metastatic_groups,
             _c({"calcium": {"value": 10.6, "unit": MG}, "phosphate": {"value": 2.3,
                 "unit": "mmol/L"}, "pth": {"value": 650, "unit": "ng/L"}, **KIDNEY_FAILURE},
                ON_DIALYSIS), "metastatic_calcinosis_cutis", "universalis"),
    Scenario("lobulated periarticular hip mass, young, normal labs", cc.tumoral_groups,
             _c(age=19), "tumoral_calcinosis", None,
             missing=("imaging: fluid-calcium levels (not assessable from these findings)",)),
    Scenario("lobulated periarticular mass on dialysis, Ca and P normal", cc.tumoral_groups,
             _c(KIDNEY_FAILURE, ON_DIALYSIS, age=50), "tumoral_calcinosis", None),
    Scenario("gluteal subcutaneous nodules after injections", cc.gluteal_injection_groups,
             _c(history={"injections": True}, sex="F", age=66), "dystrophic_calcinosis_cutis",
             "circumscripta", rule="dystrophic_local"),
    Scenario("net-like skin deposits, painful ulcers, dialysis", cc.calciphylaxis_groups,
             _c({"calcium": {"value": 9.8, "unit": MG}, "phosphate": {"value": 6.2, "unit": MG},
                 "pth": {"value": 420, "unit": "pg/mL"}, **KIDNEY_FAILURE},
                {**ON_DIALYSIS, "pain_or_ulceration": True}), "calciphylaxis", "circumscripta",
             margin=0.02),
    Scenario("forearm deposits after IV calcium", cc.iv_calcium_groups,
             _c(history={"iv_calcium": True}), "iatrogenic_calcinosis_cutis", "circumscripta"),
    Scenario("single intramuscular mass after trauma", cc.myositis_groups,
             _c(history={"trauma_or_surgery": True}, age=25), "myositis_ossificans", None),
    Scenario("tendon deposit at the shoulder", cc.tendinitis_groups,
             _c(history={"pain_or_ulceration": True}, age=50, sex="F"), "calcific_tendinitis",
             None),
    Scenario("tram-tracks along leg vessels, CKD, no skin deposits", cc.vascular_groups,
             _c({"egfr": {"value": 40, "unit": "mL/min/1.73m2"}},
                {"chronic_kidney_disease": True}), "vascular_calcification", None),
    Scenario("round pelvic dots on a radiograph", cc.phlebolith_groups, _c(),
             "phleboliths", None, source="radiograph"),
    Scenario("many similar bodies at one hip", cc.chondromatosis_groups, _c(age=45),
             "synovial_chondromatosis", None),
    Scenario("many rice-grain deposits in muscles", cc.cysticercosis_groups, _c(age=35),
             "cysticercosis", None),
    Scenario("single mass in the chest wall, known malignancy", cc.tumour_groups,
             _c(history={"malignancy": True}), "mineralized_soft_tissue_tumor", None),
    Scenario("dense periarticular hip masses after surgery", cc.heterotopic_groups,
             _c(history={"trauma_or_surgery": True}, age=70), "heterotopic_ossification", None),
    Scenario("seed case, reader overrides extent to localized", cc.seed_groups, _c(age=78),
             "idiopathic_calcinosis_cutis", "circumscripta",
             marks=ReaderMarks(extent="localized")),
    Scenario("shoulder deposit: reader moves it from periarticular to tendon",
             lambda: [cc.Group(1, "shoulder_girdle", sides=("right",), layer="periarticular",
                               morphology="nodular", diameter_mm=12.0)],
             _c(history={"pain_or_ulceration": True}), "calcific_tendinitis", None,
             marks=ReaderMarks(layers={1: "tendon"})),
]


def _run(case: Scenario):
    findings = cc.build_findings(case.groups(), source=case.source)
    clinical = None if case.clinical is None else cc.make_clinical(**case.clinical)
    return findings, classify(findings, clinical, marks=case.marks)


@pytest.mark.parametrize("case", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(case: Scenario):
    findings, diff = _run(case)
    top = diff.top
    assert top is not None
    assert (top.diagnosis, top.form) == (case.top, case.form), _table_row(case, diff)
    if case.rule:
        assert top.rule == case.rule
    assert top.score - diff[1].score >= case.margin, _table_row(case, diff)
    by_diagnosis = {c.diagnosis: c for c in diff}
    if case.idiopathic_at_most is not None:
        idiopathic = by_diagnosis.get("idiopathic_calcinosis_cutis")
        assert idiopathic is None or idiopathic.score <= case.idiopathic_at_most
        if idiopathic is not None:
            assert set(LAB_NAMES) - {k for k in LAB_NAMES if k in _labs_given(case)} \
                <= set(idiopathic.missing)
    assert set(case.missing) <= set(top.missing)
    if case.marks is not None:
        assert "reader's override" in top.explanation
    # Every listed item is the contract's object and the whole document validates.
    findings.differential = diff.to_json_list()
    validate_findings(findings.to_json_dict())


def _labs_given(case: Scenario) -> set[str]:
    if case.clinical is None:
        return set()
    return set(cc.make_clinical(**case.clinical).labs)


def test_at_least_fifteen_scenarios_cover_every_conclusion():
    assert len(SCENARIOS) >= 15
    tops = {s.top for s in SCENARIOS}
    from napari_calcinosis.classify import REGISTRY

    assert tops == {e.diagnosis for e in REGISTRY.values()}
    assert {s.rule for s in SCENARIOS if s.rule} == {"dystrophic_connective_tissue",
                                                      "dystrophic_local"}


def test_seed_case_reads_like_the_seed_report():
    _, diff = _run(SCENARIOS[0])
    top = diff.top
    assert top.score >= 0.85 and top.missing == []
    parts = top.explanation.split("\n")
    assert [p.split(":")[0] for p in parts[:4]] == ["What was seen", "What the tests say",
                                                     "What the history says",
                                                     "What would change it"]
    assert "40 soft-tissue calcifications" in parts[0] and "universalis" in parts[0]
    assert "no muscle, vessel or visceral involvement" in parts[0]
    assert "all labs normal" in parts[1] and "aldolase 5 U/L is normal" in parts[1]
    assert "no connective-tissue disease" in parts[2]
    assert top.explanation.endswith(diff.disclaimer)
    assert diff.disclaimer.startswith("Decision support, not a diagnosis")


def test_missing_labs_listed_in_tests_part_and_what_would_change():
    _, diff = _run(SCENARIOS[2])
    idiopathic = next(c for c in diff if c.diagnosis == "idiopathic_calcinosis_cutis")
    assert "Not known: calcium, phosphate, PTH" in idiopathic.parts["What the tests say"]
    assert "never read as normal" in idiopathic.parts["What the tests say"]
    assert "Missing inputs: calcium" in idiopathic.parts["What would change it"]


def test_only_the_better_dystrophic_subtype_is_listed():
    for case in SCENARIOS:
        _, diff = _run(case)
        diagnoses = [c.diagnosis for c in diff]
        assert len(diagnoses) == len(set(diagnoses))
        dystrophic = [c for c in diff if c.diagnosis == "dystrophic_calcinosis_cutis"]
        if dystrophic:
            better = max(("dystrophic_connective_tissue", "dystrophic_local"),
                         key=lambda k: (diff.scores[k], k == "dystrophic_connective_tissue"))
            assert dystrophic[0].rule == better
            assert dystrophic[0].score == diff.scores[better]


def test_scenario_table_text(capsys):
    rows = [_table_row(case, _run(case)[1]) for case in SCENARIOS]
    print("\n".join(["| scenario | expected | got (score) | form | second (score) |",
                     "|---|---|---|---|---|", *rows]))
    assert len(rows) == len(SCENARIOS)


def _table_row(case: Scenario, diff) -> str:
    top, second = diff[0], diff[1]
    label = top.diagnosis + (f" ({top.subtype})" if top.subtype else "")
    return (f"| {case.name} | {case.top} / {case.form} | {label} ({top.score:.2f}) | "
            f"{top.form} | {second.diagnosis} ({second.score:.2f}) |")


def test_empty_without_soft_tissue_lesions():
    only_vessels = cc.build_findings([cc.Group(5, "pelvis", layer="vessel",
                                               morphology="linear")])
    assert only_vessels.summary.lesion_count == 0
    diff = classify(only_vessels, cc.make_clinical())
    assert len(diff) == 0 and diff.to_json_list() == [] and diff.top is None
    empty = Findings(software={}, study={})
    assert classify(empty, None).to_json_list() == []
