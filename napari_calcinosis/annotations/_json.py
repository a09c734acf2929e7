"""Annotation records to and from JSON: schema validation and migration of older versions.

Version history of the file format:

* **v0** (``{"version": 0, ...}``, no ``schema`` key): the first layout. ``study_uid``;
  ``saved`` (one timestamp); ``lesions``: decisions as ``{"series_uid", "centroid_index",
  "centroid_mm", "volume_mm3", "area_mm2", "rejected": bool, "layer"?, "morphology"?}`` with
  no voxels and no automatic values; ``manual``: lesion dicts with ``series_uid``;
  ``symmetry`` / ``extent`` / ``form``: bare strings; ``clinical``; ``params``.
* **v1** (``napari-calcinosis/annotations/v1``): this package's format, described by
  ``schemas/annotations_v1.json``.

Reading runs the migrations in order up to the current version, then validates against the
schema and the clinical-input rules. Writing always produces the current version.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from dataclasses import fields
from importlib import resources
from typing import Any

from napari_calcinosis import __version__
from napari_calcinosis.clinical import parse_clinical
from napari_calcinosis.files import parse_json
from napari_calcinosis.types import CalcinosisError, ClinicalInputError, Lesion

from ._mask import VoxelMask
from ._record import (
    RECORD_SCHEMA_ID,
    RECORD_VERSION,
    AnnotationRecord,
    LesionDecision,
    LesionKey,
    ManualLesion,
    Override,
    plain_json,
)

__all__ = ["AnnotationFileError", "MIGRATIONS", "lesion_from_dict", "lesion_to_dict", "migrate",
           "record_from_dict", "record_from_json", "record_to_dict", "record_to_json",
           "validate_record_doc"]


class AnnotationFileError(CalcinosisError):
    """An annotation file cannot be read as a record (names the file and the problem)."""


def record_to_dict(record: AnnotationRecord) -> dict[str, Any]:
    """The record as a schema-v1 JSON document (plain Python objects)."""
    return {
        "schema": RECORD_SCHEMA_ID,
        "version": RECORD_VERSION,
        "software": {"name": "napari-calcinosis",
                     "version": record.software_version or __version__},
        "study_instance_uid": record.study_instance_uid,
        "created": record.created,
        "modified": record.modified,
        "decisions": [_decision_to_dict(d) for d in record.decisions],
        "manual_lesions": [_manual_to_dict(m) for m in record.manual_lesions],
        "summary_overrides": {k: _override_to_dict(v)
                              for k, v in record.summary_overrides.items()},
        "region_symmetry_overrides": {k: _override_to_dict(v)
                                      for k, v in record.region_symmetry_overrides.items()},
        "clinical": plain_json(record.clinical),
        "detection_parameters": plain_json(record.detection_parameters),
    }


def record_to_json(record: AnnotationRecord, *, validate: bool = True) -> str:
    """The exact text an annotation file holds.

    Parameters
    ----------
    record : AnnotationRecord
        The record to serialise.
    validate : bool
        Check the text against the schema. The store skips this on its frequent saves (a
        record with a thousand painted lesions takes about 0.3 s to validate); the tests
        validate what the writer produces, and every load validates.
    """
    doc = record_to_dict(record)
    text = json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    if validate:
        validate_record_doc(json.loads(text))
    return text


def record_from_json(text: str, *, source: str = "annotation text") -> AnnotationRecord:
    """Parse, migrate and validate the text of an annotation file.

    Parameters
    ----------
    text : str
        The file's content.
    source : str
        How to name the file in error messages.

    Raises
    ------
    AnnotationFileError
        When the text is not JSON, not a record, from a newer version, or invalid.
    """
    doc = parse_json(text, what=f"Annotation file {source}", error=AnnotationFileError)
    return record_from_dict(doc, source=source)


def record_from_dict(doc: Any, *, source: str = "annotation document") -> AnnotationRecord:
    """Migrate, validate and build a record from a parsed JSON document.

    Raises
    ------
    AnnotationFileError
        Naming ``source`` and the first problem.
    """
    try:
        current, notes = migrate(doc)
        validate_record_doc(current)
        record = _build(current)
    except (AnnotationFileError, ClinicalInputError, KeyError, TypeError, ValueError) as exc:
        message = str(exc)
        raise AnnotationFileError(f"Annotation file {source} cannot be used: "
                                  f"{message[:1].lower()}{message[1:]}") from exc
    record.warnings.extend(f"Annotation file {source}: {note}" for note in notes)
    return record


def migrate(doc: Any) -> tuple[dict[str, Any], list[str]]:
    """Bring a record document of any known version to the current one.

    Returns
    -------
    tuple
        ``(document in the current version, notes on what was migrated)``.

    Raises
    ------
    AnnotationFileError
        When the document is not a record or comes from a newer version.
    """
    if not isinstance(doc, dict):
        raise AnnotationFileError("the document is not a JSON object")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise AnnotationFileError("the document has no integer 'version', so it is not an "
                                  "annotation record")
    if version > RECORD_VERSION:
        raise AnnotationFileError(
            f"it was written by a newer napari-calcinosis (record version {version}; this "
            f"version reads up to {RECORD_VERSION})")
    notes = []
    doc = copy.deepcopy(doc)
    while version < RECORD_VERSION:
        if version not in MIGRATIONS:
            raise AnnotationFileError(f"record version {version} is not known")
        doc = MIGRATIONS[version](doc)
        notes.append(f"record version {version} was migrated to version {version + 1}")
        version += 1
    return doc, notes


def _v0_to_v1(doc: dict[str, Any]) -> dict[str, Any]:
    saved = doc.get("saved") or "1970-01-01T00:00:00.000+00:00"
    decisions = []
    for number, old in enumerate(doc.get("lesions", [])):
        key = {"series_instance_uid": old["series_uid"],
               "centroid_index": old["centroid_index"],
               "centroid_mm": old.get("centroid_mm"),
               "volume_mm3": old.get("volume_mm3"), "area_mm2": old.get("area_mm2"),
               "max_diameter_mm": old.get("max_diameter_mm"), "lesion_id": old.get("id")}
        overrides = {k: old[k] for k in ("layer", "morphology") if old.get(k) is not None}
        decisions.append({"uid": f"v0-{number}", "key": key, "mask": None,
                          "state": "rejected" if old.get("rejected") else "accepted",
                          "overrides": overrides, "auto": {}, "orphaned": False,
                          "modified": saved})
    manual = []
    for number, old in enumerate(doc.get("manual", [])):
        lesion = {k: v for k, v in old.items() if k != "series_uid"}
        lesion["series_instance_uid"] = old["series_uid"]
        lesion.setdefault("id", 0)
        lesion["source"] = "manual"
        lesion.setdefault("extra", {})
        for name in ("layer", "side", "region", "morphology"):
            lesion.setdefault(name, {"side": "midline"}.get(name, "unknown"))
        manual.append({"uid": f"m-v0-{number}", "state": "accepted", "created": saved,
                       "modified": saved, "mask": None, "lesion": lesion})
    overrides = {new: {"value": doc[old], "auto": None, "modified": saved}
                 for old, new in (("extent", "extent"), ("form", "form"),
                                  ("symmetry", "symmetry_call")) if doc.get(old)}
    return {"schema": RECORD_SCHEMA_ID, "version": 1, "study_instance_uid": doc["study_uid"],
            "created": saved, "modified": saved, "decisions": decisions,
            "manual_lesions": manual, "summary_overrides": overrides,
            "region_symmetry_overrides": {}, "clinical": doc.get("clinical") or {},
            "detection_parameters": doc.get("params") or {}}


def lesion_to_dict(lesion: Lesion) -> dict[str, Any]:
    """A lesion as JSON, with ``extra`` kept apart (unlike ``findings.json``)."""
    out = {f.name: plain_json(getattr(lesion, f.name)) for f in fields(Lesion)}
    out["extra"] = plain_json(lesion.extra)
    return out


def lesion_from_dict(data: dict[str, Any]) -> Lesion:
    """Inverse of :func:`lesion_to_dict`."""
    known = {f.name for f in fields(Lesion)}
    return Lesion(**{k: copy.deepcopy(v) for k, v in data.items() if k in known})


#: ``version -> function`` turning a document of that version into the next version.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _v0_to_v1}


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema

    resource = resources.files("napari_calcinosis").joinpath("schemas", "annotations_v1.json")
    schema = json.loads(resource.read_text(encoding="utf-8"))
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    return validator_cls(schema)


def validate_record_doc(doc: dict[str, Any]) -> None:
    """Check a current-version document against ``schemas/annotations_v1.json``.

    Raises
    ------
    AnnotationFileError
        Naming the first offending location.
    """
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/" + "/".join(str(p) for p in first.absolute_path)
        raise AnnotationFileError(
            f"it does not match schema {RECORD_SCHEMA_ID} at {where}: {first.message}")


def _build(doc: dict[str, Any]) -> AnnotationRecord:
    parse_clinical(doc["clinical"])  # raises ClinicalInputError naming the bad item
    return AnnotationRecord(
        study_instance_uid=doc["study_instance_uid"],
        created=doc["created"], modified=doc["modified"],
        decisions=[_decision_from_dict(d) for d in doc["decisions"]],
        manual_lesions=[_manual_from_dict(m) for m in doc["manual_lesions"]],
        summary_overrides={k: Override(**v) for k, v in doc["summary_overrides"].items()},
        region_symmetry_overrides={k: Override(**v)
                                   for k, v in doc["region_symmetry_overrides"].items()},
        clinical=doc["clinical"], detection_parameters=doc["detection_parameters"],
        software_version=doc.get("software", {}).get("version", ""))


def _mask_from(data: dict[str, Any] | None) -> VoxelMask | None:
    return None if data is None else VoxelMask.from_dict(data)


def _decision_to_dict(decision: LesionDecision) -> dict[str, Any]:
    return {"uid": decision.uid, "key": plain_json(vars(decision.key)),
            "mask": None if decision.mask is None else decision.mask.to_dict(),
            "state": decision.state, "overrides": dict(decision.overrides),
            "auto": plain_json(decision.auto), "orphaned": decision.orphaned,
            "modified": decision.modified}


def _decision_from_dict(data: dict[str, Any]) -> LesionDecision:
    return LesionDecision(key=LesionKey(**data["key"]), mask=_mask_from(data.get("mask")),
                          state=data["state"], overrides=dict(data["overrides"]),
                          auto=dict(data["auto"]), orphaned=data["orphaned"],
                          uid=data["uid"], modified=data["modified"])


def _manual_to_dict(manual: ManualLesion) -> dict[str, Any]:
    return {"uid": manual.uid, "state": manual.state, "created": manual.created,
            "modified": manual.modified, "lesion": lesion_to_dict(manual.lesion),
            "mask": None if manual.mask is None else manual.mask.to_dict()}


def _manual_from_dict(data: dict[str, Any]) -> ManualLesion:
    lesion = lesion_from_dict(data["lesion"])
    lesion.extra["annotation_uid"] = data["uid"]
    return ManualLesion(lesion, _mask_from(data.get("mask")), data["state"], data["uid"],
                        data["created"], data["modified"])


def _override_to_dict(override: Override) -> dict[str, Any]:
    return {"value": override.value, "auto": override.auto, "modified": override.modified}
