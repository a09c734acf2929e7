"""``findings.json``: the contract's document, schema-validated and written atomically."""

from __future__ import annotations

import functools
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from napari_calcinosis.files import atomic_write_text
from napari_calcinosis.types import Findings
from napari_calcinosis.types.findings import SCHEMA_ID

__all__ = ["FINDINGS_FILENAME", "FindingsSchemaError", "findings_schema", "findings_to_json",
           "load_schema", "validate_findings", "write_findings_json"]

FINDINGS_FILENAME = "findings.json"


class FindingsSchemaError(ValueError):
    """A findings document does not match the package's schema (a bug, not bad input)."""


def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``name`` (e.g. ``"findings_v1"``) shipped in the package."""
    resource = resources.files("napari_calcinosis").joinpath("schemas", f"{name}.json")
    return json.loads(resource.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _findings_validator():
    import jsonschema

    schema = load_schema("findings_v1")
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    return validator_cls(schema)


def findings_schema() -> dict[str, Any]:
    """The JSON Schema of ``napari-calcinosis/findings/v1`` (draft 2020-12)."""
    return _findings_validator().schema


def validate_findings(doc: dict[str, Any]) -> None:
    """Check a findings document against the schema.

    Raises
    ------
    FindingsSchemaError
        Naming the first offending location and what is wrong there.
    """
    errors = sorted(_findings_validator().iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/" + "/".join(str(p) for p in first.absolute_path)
        raise FindingsSchemaError(
            f"The findings document does not match schema {SCHEMA_ID} at {where}: "
            f"{first.message} ({len(errors)} problem{'s' if len(errors) > 1 else ''} in all).")


def findings_to_json(findings: Findings) -> str:
    """Serialise and validate: the exact text that ``findings.json`` holds."""
    doc = _plain(findings.to_json_dict(), "")
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    validate_findings(json.loads(text))
    return text


def write_findings_json(findings: Findings, out: str | Path) -> Path:
    """Write ``findings.json`` atomically after validating it.

    Parameters
    ----------
    findings : Findings
        The study's findings.
    out : str or Path
        A folder (the file is ``findings.json`` inside it) or a file name ending in ``.json``.

    Returns
    -------
    Path
        The file written.
    """
    out = Path(out)
    path = out if out.suffix.lower() == ".json" else out / FINDINGS_FILENAME
    return atomic_write_text(path, findings_to_json(findings))


def _plain(value: Any, where: str) -> Any:
    # Detectors hand back numpy scalars and tuples; JSON wants plain Python values, and a NaN
    # or infinity would be written as invalid JSON, so it is reported with its location.
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}/{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v, f"{where}/{i}") for i, v in enumerate(value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            raise FindingsSchemaError(
                f"The findings document holds a non-finite number ({number}) at {where or '/'}.")
        return number
    return value
