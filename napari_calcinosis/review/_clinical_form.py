"""The clinical input form as plain data: typed text -> the contract's document, lab flags.

The napari form keeps only strings and choices; this module turns them into the clinical
document of ``docs/contract.md`` (an empty field means unknown and is left out; a field that is
not a number is reported and left out, so the rest still counts) and describes each lab's
status against its reference range in the unit the reader chose.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from napari_calcinosis.clinical import (
    CANONICAL_UNITS,
    LAB_UNITS,
    ClinicalInput,
    convert,
    reading_number,
)

__all__ = ["FormFields", "LabFields", "TRI_STATE", "convert_typed", "display_units",
           "document_from_fields", "fields_from_clinical", "lab_flag", "parse_number"]

#: History flags as the form shows them; ``unknown`` leaves the item out of the document.
TRI_STATE = {"unknown": None, "yes": True, "no": False}
_MICRO = "\u00b5mol/L"


def display_units(name: str) -> list[str]:
    """The units the form offers for a lab (spelling variants of µmol/L shown once)."""
    return [u for u in LAB_UNITS[name] if u not in ("\u03bcmol/L", "umol/L")]


def parse_number(text: str) -> float | None:
    """A typed number (comma or point as decimal mark); ``None`` for an empty field.

    Raises
    ------
    ValueError
        When the text is not a finite number.
    """
    text = text.strip().replace(",", ".")
    if not text:
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def convert_typed(name: str, text: str, old_unit: str, new_unit: str) -> str:
    """A typed value carried over to another unit (10.9 mg/dL -> 2.72 mmol/L for calcium),
    so that changing the unit never reinterprets the number; text that is not a number is
    left as it is."""
    try:
        value = parse_number(text)
    except ValueError:
        return text
    if value is None or old_unit == new_unit:
        return text
    return reading_number(convert(name, value, old_unit, new_unit))


@dataclass
class LabFields:
    """One lab row: value, unit and the lab's own range as typed."""

    value: str = ""
    unit: str = ""
    lower: str = ""
    upper: str = ""


@dataclass
class FormFields:
    """Everything the form holds, as typed or chosen."""

    age: str = ""
    sex: str = "unknown"
    labs: dict[str, LabFields] = field(default_factory=dict)
    history: dict[str, str] = field(default_factory=dict)


def document_from_fields(form: FormFields) -> tuple[dict[str, Any], dict[str, str]]:
    """The contract's clinical document, and the fields that could not be read.

    Returns
    -------
    tuple
        ``(document, errors)``; ``errors`` maps a field (``"age"``, ``"calcium"``,
        ``"calcium.lower"``) to a short message. Unreadable fields are left out.
    """
    doc: dict[str, Any] = {}
    errors: dict[str, str] = {}
    age = _number(form.age, "age", errors)
    if age is not None:
        doc["age"] = int(age) if float(age).is_integer() else age
    if form.sex in ("M", "F"):
        doc["sex"] = form.sex
    labs: dict[str, Any] = {}
    for name, row in form.labs.items():
        value = _number(row.value, name, errors)
        if value is None:
            continue
        item: dict[str, Any] = {"value": value, "unit": row.unit or CANONICAL_UNITS[name]}
        for key, text in (("lower_limit", row.lower), ("upper_limit", row.upper)):
            limit = _number(text, f"{name}.{key.split('_')[0]}", errors)
            if limit is not None:
                item[key] = limit
        labs[name] = item
    if labs:
        doc["labs"] = labs
    history = {key: _history_value(key, choice) for key, choice in form.history.items()
               if choice != "unknown"}
    if history:
        doc["history"] = history
    return doc, errors


def _number(text: str, where: str, errors: dict[str, str]) -> float | None:
    try:
        return parse_number(text)
    except ValueError:
        errors[where] = f"not a number: {text.strip()!r}"
        return None


def _history_value(key: str, choice: str) -> bool | str:
    return choice if key == "connective_tissue_disease" else bool(TRI_STATE[choice])


def fields_from_clinical(clinical: ClinicalInput | None,
                         units: Mapping[str, str] | None = None) -> FormFields:
    """The form's fields for a stored clinical input (the inverse of the document)."""
    form = FormFields()
    units = dict(units or {})
    for name in LAB_UNITS:
        form.labs[name] = LabFields(unit=units.get(name, CANONICAL_UNITS[name]))
    if clinical is None:
        return form
    form.age = "" if clinical.age_years is None else f"{clinical.age_years:g}"
    form.sex = clinical.sex or "unknown"
    for name, lab in clinical.labs.items():
        unit = _MICRO if lab.unit in ("\u03bcmol/L", "umol/L") else lab.unit
        form.labs[name] = LabFields(f"{lab.value:g}", unit, _text(lab.lower_limit),
                                    _text(lab.upper_limit))
    for key, value in clinical.history.items():
        form.history[key] = value if isinstance(value, str) else ("yes" if value else "no")
    return form


def _text(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def lab_flag(clinical: ClinicalInput | None, name: str, unit: str) -> tuple[str, str]:
    """A lab's status (``low``/``normal``/``high``/``unknown``) and a short text with its range.

    The range is shown in ``unit`` (the unit chosen in the form).
    """
    status = "unknown" if clinical is None else clinical.lab_status(name)
    if clinical is None or clinical.lab(name) is None:
        return status, "unknown"
    low, high, _ = clinical.reference_range(name)
    canonical = CANONICAL_UNITS[name]
    shown = [None if v is None else convert(name, v, canonical, unit) for v in (low, high)]
    if shown[0] is not None and shown[1] is not None:
        limits = f"{shown[0]:.3g}–{shown[1]:.3g}"
    elif shown[1] is not None:
        limits = f"≤ {shown[1]:.3g}"
    elif shown[0] is not None:
        limits = f"≥ {shown[0]:.3g}"
    else:
        limits = "no range"
    if status == "unknown":
        return status, f"? (sex decides; {limits})"
    return status, f"{status} ({limits})"
