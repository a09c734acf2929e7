"""Property tests of the classification over seeded random inputs (numpy RNG, no hypothesis).

Properties: a lab crossing its upper limit moves metastatic calcinosis as the gate says; a
lab's own range beats the default; unit conversions round-trip and do not change any score; no
rule reads a missing value as normal; the reader's overrides win and are explained.
"""

from __future__ import annotations

import re
from typing import Any

import classify_cases as cc
import numpy as np
import pytest

from napari_calcinosis.classify import (
    CEILING,
    LAB_LABELS,
    REGISTRY,
    ReaderMarks,
    classify,
    evaluate_rules,
)
from napari_calcinosis.clinical import (
    CANONICAL_UNITS,
    CONNECTIVE_TISSUE_DISEASES,
    HISTORY_FLAGS,
    LAB_NAMES,
    LAB_UNITS,
    convert,
    parse_clinical,
)
from napari_calcinosis.summary import form_of

LAYOUTS = (cc.seed_groups, cc.ssc_fingertip_groups, cc.dm_fascial_groups,
           cc.metastatic_groups, cc.tumoral_groups, cc.gluteal_injection_groups,
           cc.calciphylaxis_groups, cc.iv_calcium_groups, cc.myositis_groups,
           cc.tendinitis_groups, cc.vascular_groups, cc.chondromatosis_groups,
           cc.cysticercosis_groups, cc.lupus_groups)
# Canonical-unit span each random lab value is drawn from (covers low, normal and high).
SPANS = {"calcium": (7.0, 13.0), "phosphate": (1.5, 9.0), "pth": (5.0, 700.0),
         "creatinine": (0.3, 9.0), "egfr": (5.0, 120.0), "ck": (30.0, 3000.0),
         "aldolase": (2.0, 30.0)}
UPPER = {"calcium": 10.2, "phosphate": 4.5}
N_CASES = 40


def random_lab(rng: np.random.Generator, name: str, value: float | None = None,
               own_range: bool | None = None) -> dict[str, Any]:
    """A contract lab object for ``name`` in a random accepted unit (value in canonical)."""
    if value is None:
        value = float(rng.uniform(*SPANS[name]))
    unit = str(rng.choice(list(LAB_UNITS[name])))
    lab: dict[str, Any] = {"value": round(convert(name, value, CANONICAL_UNITS[name], unit), 6),
                           "unit": unit}
    if own_range if own_range is not None else rng.random() < 0.2:
        low, high = SPANS[name]
        lab["upper_limit"] = round(convert(name, low + 0.45 * (high - low),
                                           CANONICAL_UNITS[name], unit), 6)
    return lab


def random_clinical_doc(rng: np.random.Generator) -> dict[str, Any]:
    """A contract clinical document with random labs and history, some keys left out."""
    history: dict[str, Any] = {k: bool(rng.random() < 0.25) for k in HISTORY_FLAGS
                               if rng.random() < 0.8}
    if rng.random() < 0.8:
        history["connective_tissue_disease"] = str(rng.choice(CONNECTIVE_TISSUE_DISEASES))
    doc = {"labs": {name: random_lab(rng, name) for name in LAB_NAMES if rng.random() < 0.8},
           "history": history}
    if rng.random() < 0.8:
        doc["age"] = int(rng.integers(5, 95))
    if rng.random() < 0.8:
        doc["sex"] = str(rng.choice(["M", "F"]))
    return doc


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    layout = LAYOUTS[seed % len(LAYOUTS)]
    return rng, cc.build_findings(layout()), random_clinical_doc(rng)


def _without(doc: dict[str, Any], key: str) -> dict[str, Any]:
    out = {"labs": dict(doc.get("labs", {})), "history": dict(doc.get("history", {})),
           **{k: v for k, v in doc.items() if k not in ("labs", "history")}}
    out["labs"].pop(key, None)
    out["history"].pop(key, None)
    if key in ("age", "sex"):
        out.pop(key, None)
    return out


def _value_phrase(name: str) -> re.Pattern[str]:
    # Every lab statement in the evidence is "<label> <value> <unit>".
    return re.compile(rf"(?<![\w-]){re.escape(LAB_LABELS[name])} \d")


# --- Gates across the upper limit -------------------------------------------------------------

@pytest.mark.parametrize("name", ["calcium", "phosphate"])
def test_crossing_the_upper_limit_opens_the_metastatic_gate(name):
    rng = np.random.default_rng(11)
    other = "phosphate" if name == "calcium" else "calcium"
    for seed in range(N_CASES):
        _, findings, doc = random_case(1000 + seed)
        # The other one normal and low enough that Ca x P stays <= 55 below the limit.
        doc["labs"][other] = random_lab(rng, other, 2.6 if other == "phosphate" else 8.7,
                                        own_range=False)
        scores = {}
        for side, factor in (("below", 0.97), ("above", 1.03)):
            doc["labs"][name] = random_lab(rng, name, UPPER[name] * factor, own_range=False)
            results = evaluate_rules(findings, parse_clinical(doc))
            scores[side] = results
        below, above = scores["below"], scores["above"]
        assert below["metastatic"].score <= 0.1
        assert any("not high" in text for text in below["metastatic"].against)
        assert not any("not high" in text for text in above["metastatic"].against)
        assert above["metastatic"].score > below["metastatic"].score
        assert above["idiopathic"].score <= min(below["idiopathic"].score, 0.1)


def test_metastatic_rises_monotonically_with_calcium():
    rng = np.random.default_rng(5)
    for seed in range(10):
        _, findings, doc = random_case(2000 + seed)
        doc["labs"]["phosphate"] = random_lab(rng, "phosphate", 3.0, own_range=False)
        scores = []
        for calcium in np.linspace(8.6, 13.0, 12):
            doc["labs"]["calcium"] = random_lab(rng, "calcium", float(calcium), own_range=False)
            scores.append(evaluate_rules(findings, parse_clinical(doc))["metastatic"].score)
        assert all(b >= a for a, b in zip(scores, scores[1:])), scores
        assert scores[-1] > scores[0]


def test_the_labs_own_range_beats_the_default():
    findings = cc.build_findings(cc.seed_groups())
    rng = np.random.default_rng(3)
    for _ in range(N_CASES):
        value = float(rng.uniform(10.25, 11.0))  # above the default 10.2 mg/dL
        own = float(rng.uniform(value + 0.05, 12.0))
        default = cc.make_clinical({"calcium": {"value": value, "unit": "mg/dL"}})
        lab_range = cc.make_clinical({"calcium": {"value": value, "unit": "mg/dL",
                                                  "upper_limit": own}})
        assert default.lab_status("calcium") == "high"
        assert lab_range.lab_status("calcium") == "normal"
        d, r = evaluate_rules(findings, default), evaluate_rules(findings, lab_range)
        assert d["metastatic"].score > r["metastatic"].score
        assert r["idiopathic"].score > d["idiopathic"].score
        # ... and a stricter own limit flags a value the default calls normal.
        strict = cc.make_clinical({"calcium": {"value": 9.9, "unit": "mg/dL",
                                               "upper_limit": float(rng.uniform(9.0, 9.8))}})
        assert evaluate_rules(findings, strict)["idiopathic"].score <= 0.1


# --- Units ------------------------------------------------------------------------------------

def test_unit_conversions_round_trip():
    rng = np.random.default_rng(7)
    for name, units in LAB_UNITS.items():
        for value in rng.uniform(0.01, 1000.0, 50):
            for a in units:
                for b in units:
                    back = convert(name, convert(name, value, a, b), b, a)
                    assert back == pytest.approx(value, rel=1e-12)


def test_the_unit_a_lab_is_given_in_changes_no_score():
    for seed in range(N_CASES):
        rng, findings, doc = random_case(3000 + seed)
        reference = evaluate_rules(findings, parse_clinical(doc))
        for name, lab in doc["labs"].items():
            for unit in LAB_UNITS[name]:
                moved = dict(lab, unit=unit,
                             value=convert(name, lab["value"], lab["unit"], unit))
                for limit in ("lower_limit", "upper_limit"):
                    if limit in lab:
                        moved[limit] = convert(name, lab[limit], lab["unit"], unit)
                again = {**doc, "labs": {**doc["labs"], name: moved}}
                results = evaluate_rules(findings, parse_clinical(again))
                assert {k: r.score for k, r in results.items()} == \
                    {k: r.score for k, r in reference.items()}, (name, unit)


# --- Unknown is never normal ------------------------------------------------------------------

def test_no_rule_reads_a_missing_value_as_normal():
    checked = 0
    for seed in range(N_CASES):
        _, findings, doc = random_case(4000 + seed)
        given = [*doc["labs"], *doc["history"], *(k for k in ("age", "sex") if k in doc)]
        for key in given:
            results = evaluate_rules(findings, parse_clinical(_without(doc, key)))
            for rule, result in results.items():
                if key in REGISTRY[rule].inputs:
                    assert key in result.missing, (rule, key)
                    checked += 1
                if key in LAB_LABELS:
                    texts = [*result.supporting, *result.against]
                    assert not any(_value_phrase(key).search(t) for t in texts), (rule, key)
                if rule == "idiopathic" and key in LAB_LABELS:
                    assert not any(t.startswith("all labs normal") for t in result.supporting)
    assert checked > 500


def test_removing_a_normal_lab_never_raises_idiopathic_and_lists_it():
    for seed in range(N_CASES):
        rng, findings, doc = random_case(5000 + seed)
        # Every lab present and normal, so that "normal" is what gets removed.
        doc["labs"] = {k: dict(v) for k, v in cc.NORMAL_LABS.items()}
        full = evaluate_rules(findings, parse_clinical(doc))["idiopathic"]
        for name in rng.permutation(LAB_NAMES):
            doc = _without(doc, str(name))
            fewer = evaluate_rules(findings, parse_clinical(doc))["idiopathic"]
            assert fewer.score <= full.score and str(name) in fewer.missing
            full = fewer


def test_unknown_calcium_or_phosphate_never_closes_the_metastatic_gate():
    for seed in range(N_CASES):
        _, findings, doc = random_case(6000 + seed)
        doc["labs"].update({k: dict(cc.NORMAL_LABS[k]) for k in ("calcium", "phosphate")})
        normal = evaluate_rules(findings, parse_clinical(doc))["metastatic"]
        for name in ("calcium", "phosphate"):
            unknown = evaluate_rules(findings, parse_clinical(_without(doc, name)))["metastatic"]
            assert unknown.score >= normal.score and name in unknown.missing
            assert not any("not high" in text for text in unknown.against)


# --- Invariants and overrides -----------------------------------------------------------------

def test_scores_and_ranking_invariants():
    for seed in range(N_CASES):
        _, findings, doc = random_case(7000 + seed)
        diff = classify(findings, parse_clinical(doc))
        scores = [c.score for c in diff]
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 <= s <= CEILING for s in diff.scores.values())
        assert len({c.diagnosis for c in diff}) == len(diff) >= 3
        assert diff.top.score == max(diff.scores.values())


def test_overrides_win_and_are_mentioned():
    extents = ("localized", "regional", "generalized")
    calls = ("symmetric", "asymmetric", "insufficient")
    layers = ("skin", "subcutaneous", "fascia", "muscle", "tendon", "periarticular")
    for seed in range(N_CASES):
        rng, findings, doc = random_case(8000 + seed)
        ids = [les.id for les in findings.lesions if les.is_soft_tissue]
        chosen = rng.choice(ids, size=max(1, len(ids) // 3), replace=False)
        marks = ReaderMarks(extent=str(rng.choice(extents)),
                            symmetry_call=str(rng.choice(calls)),
                            layers={int(i): str(rng.choice(layers)) for i in chosen})
        diff = classify(findings, parse_clinical(doc), marks=marks)
        assert diff.overrides["extent"].startswith(f"extent {marks.extent}")
        for conclusion in diff:
            text = conclusion.parts["What was seen"]
            assert f"extent {marks.extent} (reader's override)" in text
            assert re.search(rf"symmetry {marks.symmetry_call}( \(index [\d.]+\))? "
                             r"\(reader's override\)", text), text
            assert ("rests on the reader's overrides" in text
                    or "do not change this score" in text)
            expected_form = form_of(marks.extent) if REGISTRY[conclusion.rule].calcinosis_cutis \
                else None
            assert conclusion.form == expected_form
