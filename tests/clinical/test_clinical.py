"""Clinical input: parsing, validation, units, reference ranges, status."""

from __future__ import annotations

import json

import jsonschema
import pytest
from classify_cases import CONTRACT_CLINICAL as CONTRACT_EXAMPLE

from napari_calcinosis.clinical import (
    CANONICAL_UNITS,
    HISTORY_KEYS,
    LAB_NAMES,
    LAB_UNITS,
    ClinicalInput,
    convert,
    load_clinical,
    parse_clinical,
)
from napari_calcinosis.report import load_schema
from napari_calcinosis.types import ClinicalInputError


def _labs(**labs) -> ClinicalInput:
    return parse_clinical({"labs": labs})


def test_contract_example_parses_and_round_trips():
    # the values docs/contract.md gives (the document is shared with the demo's sample)
    assert CONTRACT_EXAMPLE["labs"]["phosphate"] == {"value": 1.1, "unit": "mmol/L"}
    assert CONTRACT_EXAMPLE["labs"]["ck"] == {"value": 120, "unit": "U/L", "upper_limit": 200}
    assert CONTRACT_EXAMPLE["labs"]["calcium"] == {"value": 9.4, "unit": "mg/dL"}
    clinical = parse_clinical(CONTRACT_EXAMPLE)
    assert clinical.age_years == 78 and clinical.sex == "M"
    assert set(clinical.labs) == set(LAB_NAMES)
    assert clinical.history["connective_tissue_disease"] == "none"
    assert clinical.to_dict() == CONTRACT_EXAMPLE
    assert parse_clinical(clinical.to_dict()) == clinical
    assert all(clinical.lab_status(name) == "normal" for name in LAB_NAMES)


def test_contract_example_is_valid_against_the_clinical_schema():
    schema = load_schema("clinical_v1")
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(CONTRACT_EXAMPLE, schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("doc, name", [
    ({"weight": 70}, "weight"),
    ({"labs": {"sodium": {"value": 140, "unit": "mmol/L"}}}, "sodium"),
    ({"labs": {"calcium": {"value": 9, "unit": "mg/dl"}}}, "mg/dl"),
    ({"labs": {"pth": {"value": 9, "unit": "ng/mL"}}}, "ng/mL"),
    ({"labs": {"calcium": {"value": 9, "unit": "mg/dL", "ref": 3}}}, "ref"),
    ({"labs": {"calcium": {"value": "high", "unit": "mg/dL"}}}, "high"),
    ({"labs": {"calcium": {"unit": "mg/dL"}}}, "calcium"),
    ({"labs": {"calcium": {"value": 9}}}, "calcium"),
    ({"history": {"lupus": True}}, "lupus"),
    ({"history": {"connective_tissue_disease": "scleroderma"}}, "scleroderma"),
    ({"history": {"dialysis": "yes"}}, "dialysis"),
    ({"history": {"dialysis": 1}}, "dialysis"),
    ({"sex": "X"}, "X"),
    ({"age": -3}, "age"),
])
def test_unknown_key_unit_or_value_is_an_error_naming_it(doc, name):
    with pytest.raises(ClinicalInputError, match=name):
        parse_clinical(doc)
    # The package's JSON Schema rejects the same documents (it documents the same format).
    schema = load_schema("clinical_v1")
    assert not jsonschema.Draft202012Validator(schema).is_valid(doc)


def test_inverted_lab_range_is_an_error():
    # (JSON Schema cannot compare two values, so only the parser checks this.)
    with pytest.raises(ClinicalInputError, match="'ck' has lower_limit 300"):
        parse_clinical({"labs": {"ck": {"value": 100, "lower_limit": 300, "upper_limit": 200}}})


def test_missing_labs_stay_unknown_never_normal():
    clinical = parse_clinical({"sex": "F", "labs": {"calcium": {"value": 9.0, "unit": "mg/dL"}}})
    for name in LAB_NAMES:
        expected = "normal" if name == "calcium" else "unknown"
        assert clinical.lab_status(name) == expected, name
    assert clinical.missing_labs() == [n for n in LAB_NAMES if n != "calcium"]
    assert clinical.missing_history() == list(HISTORY_KEYS)
    assert clinical.ca_x_p_mg2_dl2() is None
    empty = parse_clinical({})
    assert empty.to_dict() == {}
    assert {empty.lab_status(n) for n in LAB_NAMES} == {"unknown"}


def test_null_means_unknown():
    clinical = parse_clinical({"age": None, "labs": {"pth": None},
                               "history": {"dialysis": None}})
    assert clinical.age_years is None and clinical.labs == {} and clinical.history == {}


@pytest.mark.parametrize("name, unit, value, expected_canonical", [
    ("calcium", "mmol/L", 2.495, 10.0),          # DOMAIN: mg/dL x 0.2495 = mmol/L
    ("phosphate", "mmol/L", 0.3229 * 4, 4.0),
    ("pth", "pmol/L", 10.6, 100.0),              # pg/mL x 0.106 = pmol/L
    ("pth", "ng/L", 55.0, 55.0),                 # ng/L = pg/mL
    ("creatinine", "\u00b5mol/L", 88.4, 1.0),    # mg/dL x 88.4 = umol/L
    ("creatinine", "umol/L", 176.8, 2.0),
    ("creatinine", "\u03bcmol/L", 44.2, 0.5),
])
def test_known_answer_conversions(name, unit, value, expected_canonical):
    assert convert(name, value, unit, CANONICAL_UNITS[name]) == pytest.approx(expected_canonical)
    clinical = _labs(**{name: {"value": value, "unit": unit}})
    assert clinical.lab_value(name) == pytest.approx(expected_canonical)
    assert clinical.lab_value(name, unit) == pytest.approx(value)


@pytest.mark.parametrize("name", LAB_NAMES)
def test_unit_round_trips(name):
    for unit_a in LAB_UNITS[name]:
        for unit_b in LAB_UNITS[name]:
            there = convert(name, 7.3, unit_a, unit_b)
            assert convert(name, there, unit_b, unit_a) == pytest.approx(7.3, rel=1e-12)


def test_unknown_unit_in_convert_is_named():
    with pytest.raises(ClinicalInputError, match="mmol/L"):
        convert("pth", 1.0, "pg/mL", "mmol/L")


@pytest.mark.parametrize("lab, expected", [
    ({"value": 8.4, "unit": "mg/dL"}, "low"),
    ({"value": 8.5, "unit": "mg/dL"}, "normal"),
    ({"value": 10.2, "unit": "mg/dL"}, "normal"),
    ({"value": 10.3, "unit": "mg/dL"}, "high"),
    ({"value": 2.60, "unit": "mmol/L"}, "high"),   # 10.42 mg/dL
    ({"value": 2.30, "unit": "mmol/L"}, "normal"),
    ({"value": 2.00, "unit": "mmol/L"}, "low"),    # 8.02 mg/dL
    # The lab's own range wins over the default (same unit as the value).
    ({"value": 10.3, "unit": "mg/dL", "upper_limit": 10.5}, "normal"),
    ({"value": 2.50, "unit": "mmol/L", "upper_limit": 2.45}, "high"),
    ({"value": 8.6, "unit": "mg/dL", "lower_limit": 8.8}, "low"),
])
def test_calcium_status(lab, expected):
    assert _labs(calcium=lab).lab_status("calcium") == expected


def test_egfr_below_60_is_low_and_has_no_upper_limit():
    assert _labs(egfr={"value": 45, "unit": "mL/min/1.73m2"}).lab_status("egfr") == "low"
    assert _labs(egfr={"value": 130}).lab_status("egfr") == "normal"


@pytest.mark.parametrize("sex, value, expected", [
    ("M", 1.2, "normal"), ("F", 1.2, "high"), ("M", 0.5, "low"), ("F", 0.5, "normal"),
    (None, 0.8, "normal"), (None, 1.1, "unknown"), (None, 0.5, "unknown"),
    (None, 1.3, "high"), (None, 0.4, "low"),
])
def test_creatinine_by_sex(sex, value, expected):
    clinical = parse_clinical({"sex": sex, "labs": {
        "creatinine": {"value": value * 88.4, "unit": "umol/L"}}})
    assert clinical.lab_status("creatinine") == expected


@pytest.mark.parametrize("sex, value, upper, expected", [
    ("F", 250, None, "high"), ("M", 250, None, "normal"), (None, 250, None, "unknown"),
    (None, 150, None, "normal"), (None, 350, None, "high"), ("M", 250, 220, "high"),
    (None, 250, 260, "normal"),
])
def test_ck_against_upper_limit(sex, value, upper, expected):
    lab = {"value": value, "unit": "U/L"}
    if upper is not None:
        lab["upper_limit"] = upper
    clinical = parse_clinical({"sex": sex, "labs": {"ck": lab}})
    assert clinical.lab_status("ck") == expected


def test_reference_range_source():
    clinical = _labs(calcium={"value": 2.3, "unit": "mmol/L", "upper_limit": 2.6},
                     pth={"value": 40, "unit": "pg/mL"})
    low, high, source = clinical.reference_range("calcium")
    assert low == 8.5 and high == pytest.approx(2.6 / 0.2495) and source == "default+lab"
    assert clinical.reference_range("pth") == (15.0, 65.0, "default")
    with pytest.raises(ClinicalInputError, match="sodium"):
        clinical.lab_status("sodium")


def test_ca_x_p_product_in_mg2_per_dl2():
    clinical = _labs(calcium={"value": 2.5, "unit": "mmol/L"},
                     phosphate={"value": 2.0, "unit": "mmol/L"})
    assert clinical.ca_x_p_mg2_dl2() == pytest.approx((2.5 / 0.2495) * (2.0 / 0.3229))
    assert clinical.ca_x_p_mg2_dl2() > 55


def test_load_clinical_file(tmp_path):
    path = tmp_path / "clinical.json"
    path.write_text(json.dumps(CONTRACT_EXAMPLE, ensure_ascii=False), encoding="utf-8")
    assert load_clinical(path).to_dict() == CONTRACT_EXAMPLE


@pytest.mark.parametrize("content, words", [
    (None, "Cannot read"), ("{not json", "not valid JSON"), ("[1, 2]", "JSON object"),
    ('{"labs": {"calcium": {"value": 9, "unit": "mg"}}}', "'mg'"),
])
def test_load_clinical_errors_name_the_file(tmp_path, content, words):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ClinicalInputError) as info:
        load_clinical(path)
    message = str(info.value)
    assert str(path) in message and words in message and "\n" not in message
