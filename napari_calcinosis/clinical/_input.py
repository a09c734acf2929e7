"""Clinical input: labs and history, their units, reference ranges and status.

The file format is the one in ``docs/contract.md`` (``--clinical FILE``; the panels save the same).
Every key is optional: a missing key is *unknown*, never normal. An unknown key, unit or value
raises :class:`~napari_calcinosis.types.errors.ClinicalInputError` naming it.

Conversions and default ranges follow ``docs/clinical.md``. Values are kept as given (value and
unit); comparisons happen in one canonical unit per lab (mg/dL, pg/mL, mL/min/1.73m2, U/L).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_calcinosis.files import parse_json
from napari_calcinosis.types import ClinicalInputError

__all__ = [
    "CANONICAL_UNITS", "CONNECTIVE_TISSUE_DISEASES", "HISTORY_FLAGS", "HISTORY_KEYS",
    "LAB_NAMES", "LAB_UNITS", "ClinicalInput", "LabValue", "convert", "load_clinical",
    "parse_clinical",
]

#: Accepted units per lab, each with its factor to the lab's canonical (first) unit.
LAB_UNITS: dict[str, dict[str, float]] = {
    "calcium": {"mg/dL": 1.0, "mmol/L": 1.0 / 0.2495},
    "phosphate": {"mg/dL": 1.0, "mmol/L": 1.0 / 0.3229},
    "pth": {"pg/mL": 1.0, "ng/L": 1.0, "pmol/L": 1.0 / 0.106},
    # U+00B5 MICRO SIGN as in the contract, U+03BC GREEK MU (looks the same), and ASCII "u".
    "creatinine": {"mg/dL": 1.0, "\u00b5mol/L": 1.0 / 88.4, "\u03bcmol/L": 1.0 / 88.4,
                   "umol/L": 1.0 / 88.4},
    "egfr": {"mL/min/1.73m2": 1.0},
    "ck": {"U/L": 1.0},
    "aldolase": {"U/L": 1.0},
}
LAB_NAMES = tuple(LAB_UNITS)
CANONICAL_UNITS = {name: next(iter(units)) for name, units in LAB_UNITS.items()}

CONNECTIVE_TISSUE_DISEASES = ("none", "systemic_sclerosis", "dermatomyositis", "lupus",
                              "mixed", "other")
HISTORY_FLAGS = ("chronic_kidney_disease", "dialysis", "trauma_or_surgery", "injections",
                 "iv_calcium", "malignancy", "vitamin_d_excess", "sarcoidosis",
                 "pain_or_ulceration")
HISTORY_KEYS = ("connective_tissue_disease", *HISTORY_FLAGS)

_TOP_KEYS = ("age", "sex", "labs", "history")
_LAB_KEYS = ("value", "unit", "lower_limit", "upper_limit")
_SEXES = ("M", "F")

# Default ranges in canonical units, (low, high); None = no limit on that side.
# Aldolase: docs/clinical.md says "against the lab's upper limit" without a default; 7.5 U/L is the
# common adult upper limit (also the contract's example) and is a design choice.
_DEFAULT_RANGES: dict[str, tuple[float | None, float | None]] = {
    "calcium": (8.5, 10.2),
    "phosphate": (2.5, 4.5),
    "pth": (15.0, 65.0),
    "egfr": (60.0, None),
    "aldolase": (None, 7.5),
}
_BY_SEX_RANGES: dict[str, dict[str, tuple[float | None, float | None]]] = {
    "creatinine": {"M": (0.61, 1.24), "F": (0.44, 1.00)},
    "ck": {"M": (None, 300.0), "F": (None, 200.0)},
}


def reading_number(value: float) -> str:
    """A lab number as a reader writes it: three significant digits, never an exponent
    (1850 U/L, 8.82 mg/dL, 0.0123)."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    digits = max(0, 2 - int(math.floor(math.log10(abs(value)))))
    text = f"{round(value, digits):.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def convert(name: str, value: float, from_unit: str, to_unit: str) -> float:
    """Convert a value of lab ``name`` between two of its accepted units.

    Parameters
    ----------
    name : str
        Lab name (one of :data:`LAB_NAMES`).
    value : float
        The value in ``from_unit``.
    from_unit, to_unit : str
        Accepted units of that lab (:data:`LAB_UNITS`).

    Returns
    -------
    float
        The value in ``to_unit``.
    """
    units = _units_of(name)
    for unit in (from_unit, to_unit):
        if unit not in units:
            raise ClinicalInputError(
                f"Unknown unit {unit!r} for lab {name!r}; accepted: {', '.join(units)}.")
    return value * units[from_unit] / units[to_unit]


@dataclass(frozen=True)
class LabValue:
    """One lab result as given: value, unit and optionally the lab's own range (same unit)."""

    name: str
    value: float
    unit: str
    lower_limit: float | None = None
    upper_limit: float | None = None

    def value_in(self, unit: str | None = None) -> float:
        """The value converted to ``unit`` (default: the lab's canonical unit)."""
        return convert(self.name, self.value, self.unit, unit or CANONICAL_UNITS[self.name])

    def to_dict(self) -> dict[str, Any]:
        """The contract's lab object."""
        out: dict[str, Any] = {"value": self.value, "unit": self.unit}
        if self.lower_limit is not None:
            out["lower_limit"] = self.lower_limit
        if self.upper_limit is not None:
            out["upper_limit"] = self.upper_limit
        return out


@dataclass
class ClinicalInput:
    """Age, sex, labs and history; ``None`` / absent means unknown.

    Attributes
    ----------
    age_years : float or None
    sex : {"M", "F"} or None
    labs : dict of str to LabValue
        Only the labs that were given.
    history : dict of str to bool or str
        Only the history items that were given (``connective_tissue_disease`` is a string).
    """

    age_years: float | None = None
    sex: str | None = None
    labs: dict[str, LabValue] = field(default_factory=dict)
    history: dict[str, bool | str] = field(default_factory=dict)

    def lab(self, name: str) -> LabValue | None:
        """The lab result ``name`` or ``None`` when unknown."""
        _units_of(name)
        return self.labs.get(name)

    def lab_value(self, name: str, unit: str | None = None) -> float | None:
        """Value of lab ``name`` in ``unit`` (default canonical), ``None`` when unknown."""
        lab = self.lab(name)
        return None if lab is None else lab.value_in(unit)

    def reference_range(self, name: str) -> tuple[float | None, float | None, str]:
        """The range that judges lab ``name``, in its canonical unit, and where it came from.

        The lab's own limits win, each side separately; missing sides come from the defaults
        of ``docs/clinical.md`` (by sex for creatinine and CK). With sex unknown, a sex-specific
        limit is the one that makes the fewest claims: the wider of the two.

        Returns
        -------
        tuple
            ``(low, high, source)``; ``low``/``high`` are ``None`` when that side has no limit;
            ``source`` is ``"lab"``, ``"default"``, ``"lab+default"`` or ``"none"``.
        """
        default_low, default_high = self._default_range(name)
        lab = self.lab(name)
        low, high, sources = default_low, default_high, set()
        if lab is not None and lab.lower_limit is not None:
            low = convert(name, lab.lower_limit, lab.unit, CANONICAL_UNITS[name])
            sources.add("lab")
        elif default_low is not None:
            sources.add("default")
        if lab is not None and lab.upper_limit is not None:
            high = convert(name, lab.upper_limit, lab.unit, CANONICAL_UNITS[name])
            sources.add("lab")
        elif default_high is not None:
            sources.add("default")
        source = "+".join(sorted(sources)) if sources else "none"
        return low, high, source

    def lab_status(self, name: str) -> str:
        """``"low"``, ``"normal"``, ``"high"`` or ``"unknown"`` for lab ``name``.

        Unknown when the lab was not given, or when its value falls between the two sexes'
        default limits and the sex is unknown (then neither reading can be claimed).
        """
        value = self.lab_value(name)
        if value is None:
            return "unknown"
        low, high, _ = self.reference_range(name)
        if low is not None and value < low:
            return "low"
        if high is not None and value > high:
            return "high"
        if self._ambiguous_without_sex(name, value):
            return "unknown"
        return "normal"

    def ca_x_p_mg2_dl2(self) -> float | None:
        """Calcium x phosphate product in mg²/dL² when both are known, else ``None``."""
        calcium, phosphate = self.lab_value("calcium"), self.lab_value("phosphate")
        if calcium is None or phosphate is None:
            return None
        return calcium * phosphate

    def missing_labs(self) -> list[str]:
        """Labs not given, in the contract's order."""
        return [name for name in LAB_NAMES if name not in self.labs]

    def missing_history(self) -> list[str]:
        """History items not given, in the contract's order."""
        return [key for key in HISTORY_KEYS if key not in self.history]

    def to_dict(self) -> dict[str, Any]:
        """The contract's clinical-input document (unknowns omitted); inverse of parsing."""
        out: dict[str, Any] = {}
        if self.age_years is not None:
            out["age"] = self.age_years
        if self.sex is not None:
            out["sex"] = self.sex
        if self.labs:
            out["labs"] = {name: self.labs[name].to_dict() for name in LAB_NAMES
                           if name in self.labs}
        if self.history:
            out["history"] = {key: self.history[key] for key in HISTORY_KEYS
                              if key in self.history}
        return out

    def _default_range(self, name: str) -> tuple[float | None, float | None]:
        if name in _DEFAULT_RANGES:
            return _DEFAULT_RANGES[name]
        if name not in _BY_SEX_RANGES:
            return None, None
        by_sex = _BY_SEX_RANGES[name]
        if self.sex in by_sex:
            return by_sex[self.sex]
        lows = [r[0] for r in by_sex.values() if r[0] is not None]
        highs = [r[1] for r in by_sex.values() if r[1] is not None]
        return (min(lows) if lows else None), (max(highs) if highs else None)

    def _ambiguous_without_sex(self, name: str, value: float) -> bool:
        if name not in _BY_SEX_RANGES or self.sex in _SEXES:
            return False
        lab = self.labs[name]
        # Wherever the lab gave its own limit, that limit decides and sex does not matter.
        ranges = _BY_SEX_RANGES[name].values()
        if lab.lower_limit is None:
            lows = [r[0] for r in ranges if r[0] is not None]
            if lows and value < max(lows):
                return True
        if lab.upper_limit is None:
            highs = [r[1] for r in ranges if r[1] is not None]
            if highs and value > min(highs):
                return True
        return False


#: Largest clinical-input file read (a real one is a few KiB).
MAX_CLINICAL_BYTES = 1024 * 1024


def load_clinical(path: str | Path) -> ClinicalInput:
    """Read and validate a clinical-input JSON file.

    Parameters
    ----------
    path : str or Path
        The file (UTF-8 JSON in the format of ``docs/contract.md``).

    Returns
    -------
    ClinicalInput

    Raises
    ------
    ClinicalInputError
        When the file cannot be read, is not JSON, or holds an unknown key, unit or value;
        the message names the file and the item.
    """
    path = Path(path)
    try:
        if not path.is_file():
            raise ClinicalInputError(f"Cannot read clinical file {path}: it is not a regular "
                                     "file.")
        with path.open("rb") as handle:
            raw = handle.read(MAX_CLINICAL_BYTES + 1)
        if len(raw) > MAX_CLINICAL_BYTES:
            raise ClinicalInputError(
                f"Clinical file {path} is larger than {MAX_CLINICAL_BYTES // 1024} KiB: a "
                "clinical-input file holds a few labs and answers, so this is not one.")
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ClinicalInputError(f"Cannot read clinical file {path}: {reason}.") from exc
    data = parse_json(text, what=f"Clinical file {path}", error=ClinicalInputError)
    try:
        return parse_clinical(data)
    except ClinicalInputError as exc:
        message = str(exc)
        raise ClinicalInputError(
            f"Clinical file {path}: {message[:1].lower()}{message[1:]}") from exc
    except (ValueError, OverflowError, TypeError, RecursionError) as exc:
        raise ClinicalInputError(f"Clinical file {path} holds a value that cannot be used "
                                 f"({exc}).") from exc


def parse_clinical(data: dict[str, Any]) -> ClinicalInput:
    """Validate a clinical-input document (already parsed from JSON) into a ClinicalInput.

    ``null`` counts as absent (unknown) everywhere.

    Raises
    ------
    ClinicalInputError
        Naming the first unknown key, unit or invalid value found.
    """
    _require_object(data, "the clinical input")
    _reject_unknown_keys(data, _TOP_KEYS, "top-level key")
    clinical = ClinicalInput(age_years=_parse_age(data.get("age")),
                             sex=_parse_sex(data.get("sex")))
    clinical.labs = _section(data, "labs", LAB_NAMES, "lab", _parse_lab)
    clinical.history = _section(data, "history", HISTORY_KEYS, "history key",
                                _parse_history_item)
    return clinical


def _section(data: dict[str, Any], key: str, allowed: tuple[str, ...], what: str,
             parse: Any) -> dict[str, Any]:
    """The known, non-null items of one object of the document, each parsed."""
    section = data.get(key)
    if section is None:
        return {}
    _require_object(section, f"'{key}'")
    _reject_unknown_keys(section, allowed, what)
    return {name: parse(name, item) for name, item in section.items() if item is not None}


def _units_of(name: str) -> dict[str, float]:
    if name not in LAB_UNITS:
        raise ClinicalInputError(f"Unknown lab {name!r}; known labs: {', '.join(LAB_NAMES)}.")
    return LAB_UNITS[name]


def _require_object(value: Any, what: str) -> None:
    if not isinstance(value, dict):
        raise ClinicalInputError(f"{what} must be a JSON object, not {_json_type(value)}.")


def _reject_unknown_keys(data: dict, allowed: tuple[str, ...], what: str) -> None:
    for key in data:
        if key not in allowed:
            raise ClinicalInputError(
                f"Unknown {what} {key!r}; allowed: {', '.join(allowed)}.")


def _parse_number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ClinicalInputError(f"{what} must be a finite number, not {value!r}.")
    return value


def _parse_age(value: Any) -> float | None:
    if value is None:
        return None
    age = _parse_number(value, "'age'")
    if not 0 <= age <= 130:
        raise ClinicalInputError(f"'age' must be between 0 and 130 years, not {value!r}.")
    return age


def _parse_sex(value: Any) -> str | None:
    if value is None:
        return None
    if value not in _SEXES:
        raise ClinicalInputError(f"Unknown value {value!r} for 'sex'; allowed: M, F.")
    return value


def _parse_lab(name: str, item: Any) -> LabValue:
    _require_object(item, f"lab {name!r}")
    _reject_unknown_keys(item, _LAB_KEYS, f"key in lab {name!r}")
    units = LAB_UNITS[name]
    if "value" not in item or item["value"] is None:
        raise ClinicalInputError(f"Lab {name!r} has no 'value' (leave the lab out if unknown).")
    value = _parse_number(item["value"], f"the value of lab {name!r}")
    unit = item.get("unit")
    if unit is None and len(units) == 1:
        unit = next(iter(units))
    if unit not in units:
        raise ClinicalInputError(
            f"Unknown unit {unit!r} for lab {name!r}; accepted: {', '.join(units)}.")
    limits = [None if item.get(k) is None else _parse_number(item[k], f"{k} of lab {name!r}")
              for k in ("lower_limit", "upper_limit")]
    for number, what in ((value, "value"), *zip(limits, ("lower_limit", "upper_limit"))):
        if number is not None and number < 0:
            raise ClinicalInputError(f"The {what} of lab {name!r} is negative ({number!r}).")
    if None not in limits and limits[0] >= limits[1]:
        raise ClinicalInputError(
            f"Lab {name!r} has lower_limit {limits[0]!r} not below upper_limit {limits[1]!r}.")
    return LabValue(name, value, unit, limits[0], limits[1])


def _parse_history_item(key: str, value: Any) -> bool | str:
    if key == "connective_tissue_disease":
        if value not in CONNECTIVE_TISSUE_DISEASES:
            raise ClinicalInputError(
                f"Unknown value {value!r} for 'connective_tissue_disease'; allowed: "
                f"{', '.join(CONNECTIVE_TISSUE_DISEASES)}.")
        return value
    if not isinstance(value, bool):
        raise ClinicalInputError(
            f"History item {key!r} must be true or false, not {value!r}.")
    return value


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
