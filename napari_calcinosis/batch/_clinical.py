"""Clinical input for a cohort from one CSV file (``batch --clinical-csv``).

One row per study or per patient: a key column, ``study_instance_uid`` or ``patient_id``
(either may be blank), then any of ``age``, ``sex``, for each lab ``<lab>`` (the value),
``<lab>_unit`` (default: the lab's first unit in ``docs/contract.md``),
``<lab>_lower_limit`` and ``<lab>_upper_limit``, and the history keys
(``connective_tissue_disease`` by name, the flags as true/false/yes/no/1/0). Blank cells
are unknown. Each row is checked exactly as a clinical file is.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from napari_calcinosis.clinical import (
    CANONICAL_UNITS,
    HISTORY_FLAGS,
    LAB_NAMES,
    MAX_CLINICAL_BYTES,
    parse_clinical,
)
from napari_calcinosis.types import ClinicalInputError

__all__ = ["load_clinical_csv"]

_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}
_MAX_CSV_BYTES = 200 * MAX_CLINICAL_BYTES


def load_clinical_csv(path: Path) -> dict[str, dict[str, Any]]:
    """Clinical documents keyed by StudyInstanceUID and by ``patient:<PatientID>``.

    Raises
    ------
    ClinicalInputError
        Naming the file, the row and the cell that cannot be used.
    """
    path = Path(path)
    try:
        if path.stat().st_size > _MAX_CSV_BYTES:
            raise ClinicalInputError(f"Clinical CSV {path} is larger than "
                                     f"{_MAX_CSV_BYTES // 1024**2} MiB.")
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ClinicalInputError(f"Cannot read clinical CSV {path}: {exc}.") from exc
    out: dict[str, dict[str, Any]] = {}
    for number, row in enumerate(rows, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        keys = [row.get("study_instance_uid", ""),
                f"patient:{row['patient_id']}" if row.get("patient_id") else ""]
        if not any(keys):
            raise ClinicalInputError(f"Clinical CSV {path}, row {number}: neither "
                                     "study_instance_uid nor patient_id is given.")
        document = _document(row, path, number)
        try:
            parse_clinical(document)
        except (ClinicalInputError, ValueError, TypeError, OverflowError) as exc:
            raise ClinicalInputError(f"Clinical CSV {path}, row {number}: {exc}") from exc
        for key in filter(None, keys):
            out[key] = document
    return out


def _document(row: dict[str, str], path: Path, number: int) -> dict[str, Any]:
    def number_of(column: str) -> float:
        try:
            return float(row[column])
        except ValueError as exc:
            raise ClinicalInputError(f"Clinical CSV {path}, row {number}: {column} "
                                     f"{row[column]!r} is not a number.") from exc

    document: dict[str, Any] = {}
    if row.get("age"):
        document["age"] = number_of("age")
    if row.get("sex"):
        document["sex"] = row["sex"].upper()
    labs = {}
    for lab in LAB_NAMES:
        if not row.get(lab):
            continue
        entry: dict[str, Any] = {"value": number_of(lab),
                                 "unit": row.get(f"{lab}_unit") or CANONICAL_UNITS[lab]}
        for limit in ("lower_limit", "upper_limit"):
            if row.get(f"{lab}_{limit}"):
                entry[limit] = number_of(f"{lab}_{limit}")
        labs[lab] = entry
    if labs:
        document["labs"] = labs
    history: dict[str, Any] = {}
    if row.get("connective_tissue_disease"):
        history["connective_tissue_disease"] = row["connective_tissue_disease"]
    for flag in HISTORY_FLAGS:
        value = row.get(flag, "").lower()
        if value in _TRUE:
            history[flag] = True
        elif value in _FALSE:
            history[flag] = False
        elif value:
            raise ClinicalInputError(f"Clinical CSV {path}, row {number}: {flag} "
                                     f"{row[flag]!r} is not true or false.")
    if history:
        document["history"] = history
    return document
