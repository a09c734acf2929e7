"""The clinical input: age, sex, labs with their units and ranges, and the history.

The format is the contract's (``docs/contract.md``, clinical input): every key optional, a
missing key unknown and never normal, an unknown key, unit or value an error that names it.
:func:`load_clinical` / :func:`parse_clinical` read it into a :class:`ClinicalInput`, which
converts units and says whether each lab is low, normal or high (:mod:`._input`).
"""

from ._input import (
    CANONICAL_UNITS,
    CONNECTIVE_TISSUE_DISEASES,
    HISTORY_FLAGS,
    HISTORY_KEYS,
    LAB_NAMES,
    LAB_UNITS,
    MAX_CLINICAL_BYTES,
    ClinicalInput,
    LabValue,
    convert,
    load_clinical,
    parse_clinical,
    reading_number,
)

__all__ = ["CANONICAL_UNITS", "CONNECTIVE_TISSUE_DISEASES", "HISTORY_FLAGS", "HISTORY_KEYS",
           "LAB_NAMES", "LAB_UNITS", "MAX_CLINICAL_BYTES", "ClinicalInput", "LabValue",
           "convert", "load_clinical", "parse_clinical", "reading_number"]
