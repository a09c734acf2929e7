"""Classification engine: registry, reader's marks, tally, listing, explanation and JSON shape."""

from __future__ import annotations

import copy

import classify_cases as cc
import pytest

from napari_calcinosis.classify import (
    CEILING,
    DISCLAIMER,
    REGISTRY,
    ClassifyParams,
    Facts,
    ReaderMarks,
    RuleResult,
    Tally,
    apply_marks,
    classify,
    evaluate_rules,
    register,
)
from napari_calcinosis.classify import _classify as cmod
from napari_calcinosis.clinical import HISTORY_KEYS, LAB_NAMES
from napari_calcinosis.report import load_schema
from napari_calcinosis.types import AnalysisError, Lesion

CONTRACT_DIAGNOSES = load_schema("findings_v1")["$defs"]["conclusion"]["properties"][
    "diagnosis"]["enum"]
CUTIS_TYPES = {"idiopathic_calcinosis_cutis", "dystrophic_calcinosis_cutis",
               "metastatic_calcinosis_cutis", "iatrogenic_calcinosis_cutis", "calciphylaxis"}


# --- Registry ---------------------------------------------------------------------------------

def test_registry_has_the_fifteen_conclusions_in_contract_words():
    assert len(REGISTRY) == 15
    assert {e.diagnosis for e in REGISTRY.values()} == set(CONTRACT_DIAGNOSES)
    assert [e.order for e in REGISTRY.values()] == list(range(15))
    dystrophic = [e for e in REGISTRY.values() if e.diagnosis == "dystrophic_calcinosis_cutis"]
    assert {e.subtype for e in dystrophic} == {"connective_tissue", "local"}
    for entry in REGISTRY.values():
        assert entry.description and entry.references and entry.would_change and entry.title
        assert set(entry.inputs) <= {*LAB_NAMES, *HISTORY_KEYS, "age", "sex"}
        assert entry.calcinosis_cutis == (entry.diagnosis in CUTIS_TYPES)


def test_registry_rejects_a_duplicate_key_and_unknown_inputs():
    with pytest.raises(AnalysisError):
        register("idiopathic", diagnosis="idiopathic_calcinosis_cutis", title="x",
                 description="x", references=(), would_change="x")
    with pytest.raises(AnalysisError):
        register("new_rule", diagnosis="calciphylaxis", title="x", description="x",
                 references=(), inputs=("vitamin_k",), would_change="x")


@pytest.fixture
def extra_rules():
    """Register temporary rules and remove them afterwards."""
    added: list[str] = []

    def add(key: str, score: float, diagnosis: str = "calciphylaxis") -> None:
        def rule(facts: Facts) -> RuleResult:
            return RuleResult(score, [f"constant {score}"], [], [])

        register(key, diagnosis=diagnosis, title=key, description="test rule",
                 references=("test",), would_change="nothing")(rule)
        added.append(key)

    yield add
    for key in added:
        REGISTRY.pop(key, None)


def test_adding_a_rule_is_adding_one_entry(extra_rules):
    findings = cc.build_findings(cc.seed_groups())
    extra_rules("always_first", 0.96, diagnosis="vascular_calcification")
    diff = classify(findings, cc.make_clinical())
    # The new entry outranks the real vascular rule and takes its diagnosis slot.
    assert [c.rule for c in diff].count("always_first") == 1
    assert diff.top.rule == "always_first" and diff.top.supporting == ["constant 0.96"]
    assert diff.scores["always_first"] == 0.96 and "vascular_calcification" in diff.scores
    assert [c.diagnosis for c in diff].count("vascular_calcification") == 1


def test_equal_scores_keep_registry_order(extra_rules):
    findings = cc.build_findings(cc.seed_groups())
    extra_rules("tie_a", 0.965, diagnosis="phleboliths")
    extra_rules("tie_b", 0.965, diagnosis="cysticercosis")
    for _ in range(3):
        diff = classify(findings, cc.make_clinical())
        assert [c.rule for c in diff][:2] == ["tie_a", "tie_b"]


# --- Tally ------------------------------------------------------------------------------------

def test_tally_scoring_rule():
    t = Tally(0.5)
    assert t.result().score == round(CEILING * 0.5, 3)
    t.support("imaging", "for", 50.0)
    assert t.result().score == CEILING
    t.need("calcium", factor=0.5)
    t.need("calcium", factor=0.5)  # listed once, counted once
    assert t.result().score == round(CEILING * 0.5, 3)
    assert t.result().missing == ["calcium"]
    t.cap(0.2, "labs", "gate")
    result = t.result()
    assert result.score == 0.2 and result.against == ["gate"] and result.supporting == ["for"]
    t.unseen("lucent centre")
    assert result.missing[0] == "calcium"
    assert t.result().missing[1] == ("imaging: lucent centre (not assessable from these "
                                     "findings)")
    with pytest.raises(AnalysisError):
        t.support("gossip", "x", 1.0)


def test_tally_reads_unknown_inputs_as_missing_only():
    facts = Facts(apply_marks(cc.build_findings(cc.seed_groups())),
                  cc.make_clinical(drop=("ck", "dialysis"), age=None))
    t = Tally(0.3)
    assert t.lab(facts, "ck") == "unknown"
    assert t.lab(facts, "calcium") == "normal"
    assert t.history(facts, "dialysis") is None
    assert t.history(facts, "injections") is False
    assert t.history(facts, "age") is None
    assert t.missing == ["ck", "dialysis", "age"]
    with pytest.raises(AnalysisError):
        t.history(facts, "diabetes")


# --- Reader's marks ---------------------------------------------------------------------------

def test_marks_validate_their_words_and_ids():
    marks = ReaderMarks.from_overrides({"layers": {"3": "muscle"}, "rejected": ["4"],
                                        "extent": "localized"})
    assert marks.layers == {3: "muscle"} and marks.rejected == {4}
    for bad in ({"layers": {1: "bone"}}, {"morphologies": {1: "spiky"}},
                {"extent": "everywhere"}, {"symmetry_call": "yes"}, {"form": "cutis"},
                {"layers": {"one": "skin"}}, {"colour": "red"}):
        with pytest.raises(AnalysisError):
            ReaderMarks.from_overrides(bad)
    assert ReaderMarks().is_empty and not marks.is_empty


def test_apply_marks_recomputes_the_summary_and_leaves_findings_alone():
    findings = cc.build_findings(cc.seed_groups())
    before = copy.deepcopy(findings)
    added = Lesion(id=99, series_instance_uid=cc.CT_UID, centroid_index=[1, 2, 3],
                   centroid_mm=[60.0, 0.0, 900.0], layer="muscle", side="left",
                   region="lower_limb", morphology="nodular", volume_mm3=30.0)
    marks = ReaderMarks(layers={1: "muscle", 2: "fascia"}, morphologies={3: "sheet"},
                        rejected={4, 5}, added=[added], symmetry_call="asymmetric")
    eff = apply_marks(findings, marks)
    assert findings.to_json_dict() == before.to_json_dict()
    assert eff.summary.lesion_count == 40 - 2 + 1
    assert eff.summary.by_layer["muscle"] == 2 and eff.summary.by_layer["fascia"] == 1
    assert eff.summary.deep_involvement["muscle"] is True
    assert "lower_limb" in eff.summary.by_region
    assert eff.summary.symmetry.call == "asymmetric"
    assert eff.marked_ids == {1, 2, 3}
    assert {les.source for les in eff.lesions if les.id in (1, 2, 3, 99)} == {"manual"}
    assert set(eff.overrides) == {"layers", "morphologies", "rejected", "added",
                                  "symmetry_call"}
    assert eff.overrides["symmetry_call"] == "symmetry call asymmetric instead of symmetric"


def test_marks_on_missing_lesions_are_reported_not_applied():
    findings = cc.build_findings(cc.tendinitis_groups())
    eff = apply_marks(findings, ReaderMarks(layers={7: "skin"}))
    assert eff.warnings == ["Reader mark on lesion 7 ignored: no lesion has that id."]
    assert eff.summary.by_layer == {"tendon": 1}
    diff = classify(findings, None, marks=ReaderMarks(layers={7: "skin"}))
    assert diff.warnings == tuple(eff.warnings)


def test_extent_override_sets_form_unless_form_is_given():
    findings = cc.build_findings(cc.seed_groups())
    assert apply_marks(findings, ReaderMarks(extent="regional")).summary.form == "circumscripta"
    both = apply_marks(findings, ReaderMarks(extent="regional", form="universalis"))
    assert (both.summary.extent, both.summary.form) == ("regional", "universalis")
    same = apply_marks(findings, ReaderMarks(extent="generalized"))
    assert same.overrides == {"extent": "extent generalized as detected"}


def test_marks_recompute_only_the_summary_source():
    ct = cc.build_findings(cc.seed_groups())
    cr_lesion = Lesion(id=500, series_instance_uid=cc.CR_UID, centroid_index=[5, 5],
                       layer="subcutaneous", side="left", region="foot", area_mm2=4.0)
    ct.lesions.append(cr_lesion)
    ct.series.append(cc.build_findings(cc.phlebolith_groups(), source="radiograph").series[0])
    eff = apply_marks(ct, ReaderMarks(rejected={1}))
    assert eff.summary.lesion_count == 39 and "foot" not in eff.summary.by_region


def test_rejecting_every_lesion_empties_the_differential():
    findings = cc.build_findings(cc.tendinitis_groups())
    diff = classify(findings, cc.make_clinical(), marks=ReaderMarks(rejected={1}))
    assert len(diff) == 0 and evaluate_rules(findings, None, marks=ReaderMarks(rejected={1})) \
        == {}


def test_manual_lesion_alone_gives_a_differential_that_rests_on_it():
    findings = cc.build_findings([])
    manual = Lesion(id=1, series_instance_uid=cc.CT_UID, centroid_index=[1, 1, 1],
                    centroid_mm=[-40.0, 0.0, 900.0], layer="tendon", side="right",
                    region="shoulder_girdle", morphology="nodular", max_diameter_mm=10.0)
    diff = classify(findings, cc.make_clinical(), marks=ReaderMarks(added=[manual]))
    assert diff.top.diagnosis == "calcific_tendinitis"
    assert diff.top.rests_on_override and diff.top.automatic_score == 0.0
    assert "1 lesion added by the reader" in diff.top.explanation


def test_overrides_change_the_ranking_and_the_explanation_says_so():
    findings = cc.build_findings(cc.seed_groups())
    clinical = cc.make_clinical()
    auto = classify(findings, clinical)
    ids = [les.id for les in findings.lesions]
    marks = ReaderMarks(layers={i: "muscle" for i in ids}, morphologies={i: "linear" for i in ids})
    marked = classify(findings, clinical, marks=marks)
    assert auto.top.diagnosis == "idiopathic_calcinosis_cutis"
    assert marked.top.diagnosis == "cysticercosis"
    assert marked.top.rests_on_override
    assert "rests on the reader's overrides" in marked.top.parts["What was seen"]
    assert "40 lesion layers set by the reader" in marked.top.explanation
    assert marked.scores["idiopathic"] < auto.scores["idiopathic"]
    # Empty marks are no marks: same result, no override sentence.
    plain = classify(findings, clinical, marks=ReaderMarks())
    assert plain.to_json_list() == auto.to_json_list()
    assert "override" not in plain.top.explanation


def test_unchanged_score_under_marks_is_said_too():
    findings = cc.build_findings(cc.tumoral_groups())
    diff = classify(findings, cc.make_clinical(age=19),
                    marks=ReaderMarks(symmetry_call="insufficient"))
    assert not diff.top.rests_on_override
    assert "do not change this score" in diff.top.explanation


# --- Output -----------------------------------------------------------------------------------

def test_items_have_exactly_the_contract_keys_and_forms():
    findings = cc.build_findings(cc.seed_groups())
    diff = classify(findings, cc.make_clinical(), params=ClassifyParams(min_listed_score=0.0))
    assert len(diff) == 14  # every diagnosis once
    for item, conclusion in zip(diff.to_json_list(), diff):
        assert list(item) == ["diagnosis", "form", "score", "supporting", "against", "missing",
                              "explanation"]
        assert 0.0 <= item["score"] <= CEILING
        if item["diagnosis"] in CUTIS_TYPES:
            assert item["form"] == findings.summary.form == "universalis"
        else:
            assert item["form"] is None
        assert conclusion.references == REGISTRY[conclusion.rule].references
    scores = [c.score for c in diff]
    assert scores == sorted(scores, reverse=True)


def test_listing_threshold_and_minimum_count():
    findings = cc.build_findings(cc.seed_groups())
    clinical = cc.make_clinical()
    default = classify(findings, clinical)
    assert len(default) >= 3
    assert all(c.score >= 0.05 for c in default.conclusions[3:])
    strict = classify(findings, clinical, params=ClassifyParams(min_listed_score=0.9,
                                                                min_listed=2))
    assert len(strict) == 2 and strict[0].score >= 0.9 > strict[1].score
    unlisted = set(default.scores) - {c.rule for c in default}
    assert all(default.scores[k] < 0.05 or REGISTRY[k].diagnosis in
               {c.diagnosis for c in default} for k in unlisted)


def test_explanation_has_four_labelled_parts_and_the_disclaimer():
    findings = cc.build_findings(cc.calciphylaxis_groups())
    diff = classify(findings, cc.make_clinical(drop=("pth",), history={"dialysis": True}))
    for conclusion in diff:
        lines = conclusion.explanation.split("\n")
        assert [line.split(":")[0] for line in lines[:4]] == list(cmod.PART_TITLES)
        assert lines[4] == DISCLAIMER
        assert conclusion.title in lines[0]
        for title in cmod.PART_TITLES:
            assert conclusion.parts[title]
    top = diff.top
    assert top.diagnosis == "calciphylaxis"
    assert "on dialysis" in top.parts["What the history says"]
    assert "Not known: PTH" in top.parts["What the tests say"]
    assert "Missing inputs: PTH" in top.parts["What would change it"]


def test_lab_phrases_name_value_unit_status_and_range_source():
    clinical = cc.make_clinical({"phosphate": {"value": 2.0, "unit": "mmol/L",
                                               "upper_limit": 1.6}})
    facts = Facts(apply_marks(cc.build_findings(cc.seed_groups())), clinical)
    text = facts.lab_phrase("phosphate")
    assert text.startswith("phosphate 2 mmol/L (= 6.19 mg/dL) is high")
    assert "lab's own + default" in text
    assert "lab's own" in facts.lab_phrase("ck") and "default" in facts.lab_phrase("calcium")


def test_not_assessable_features_are_listed_not_invented():
    findings = cc.build_findings(cc.tumoral_groups())
    results = evaluate_rules(findings, cc.make_clinical(age=19))
    unseen = {key: [m for m in r.missing if m.startswith("imaging:")]
              for key, r in results.items()}
    assert any("fluid-calcium levels" in m for m in unseen["tumoral_calcinosis"])
    assert any("zonal" in m for m in unseen["myositis_ossificans"])
    assert any("lucent centre" in m for m in unseen["phleboliths"])
    assert any("organised bone" in m for m in unseen["heterotopic_ossification"])
    assert results["heterotopic_ossification"].score <= 0.75
    assert results["mineralized_soft_tissue_tumor"].score <= 0.7


def test_classify_is_deterministic_and_does_not_touch_inputs():
    findings = cc.build_findings(cc.metastatic_groups())
    clinical = cc.make_clinical({"calcium": {"value": 11, "unit": "mg/dL"}})
    doc, clin = findings.to_json_dict(), clinical.to_dict()
    first = classify(findings, clinical).to_json_list()
    assert classify(findings, clinical).to_json_list() == first
    assert findings.to_json_dict() == doc and clinical.to_dict() == clin
