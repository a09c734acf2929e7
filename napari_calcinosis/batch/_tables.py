"""The cohort tables: one row per study, one row per lesion (``docs/contract.md``, "batch")."""

from __future__ import annotations

from typing import Any

from napari_calcinosis.types.findings import LAYERS, REGIONS

__all__ = ["LESION_COLUMNS", "STUDY_COLUMNS", "lesion_rows", "study_row"]

#: Columns of ``studies.csv`` / ``studies.parquet``, in order.
STUDY_COLUMNS = (
    ["study", "study_instance_uid", "status", "error", "seconds", "series_analysed",
     "lesion_count", "total_volume_mm3", "extent", "form", "symmetry", "symmetry_index",
     "deep_muscle", "deep_vessel", "deep_visceral"]
    + [f"layer_{name}" for name in LAYERS]
    + [f"region_{name}" for name in REGIONS]
    + [f"{what}_{k}" for k in (1, 2, 3) for what in ("diagnosis", "score")]
    + ["warnings", "software_version"])

#: Columns of ``lesions.parquet``, in order.
LESION_COLUMNS = ["study", "id", "series_instance_uid", "source", "layer", "side", "region",
                  "morphology", "volume_mm3", "area_mm2", "peak_hu", "max_diameter_mm",
                  "centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]


def study_row(study: str, doc: dict[str, Any] | None, *, status: str, error: str = "",
              seconds: float = 0.0, study_uid: str = "") -> dict[str, Any]:
    """One study's row from its ``findings.json`` document (``None`` when it failed)."""
    row: dict[str, Any] = {c: None for c in STUDY_COLUMNS}
    row.update(study=study, study_instance_uid=study_uid, status=status, error=error,
               seconds=round(float(seconds), 2))
    if doc is None:
        return row
    summary = doc["summary"]
    row.update(
        study_instance_uid=doc["study"].get("study_instance_uid", study_uid),
        series_analysed=sum(1 for s in doc["series"] if "contrast" in s or
                            s["kind"] == "radiograph"),
        lesion_count=summary["lesion_count"], total_volume_mm3=summary["total_volume_mm3"],
        extent=summary["extent"], form=summary["form"],
        symmetry=summary["symmetry"]["call"], symmetry_index=summary["symmetry"]["index"],
        deep_muscle=summary["deep_involvement"].get("muscle"),
        deep_vessel=summary["deep_involvement"].get("vessel"),
        deep_visceral=summary["deep_involvement"].get("visceral"),
        warnings=len(doc["warnings"]), software_version=doc["software"]["version"])
    for name in LAYERS:
        row[f"layer_{name}"] = int(summary["by_layer"].get(name, 0))
    for name in REGIONS:
        row[f"region_{name}"] = int(summary["by_region"].get(name, 0))
    for k, item in enumerate(doc["differential"][:3], start=1):
        row[f"diagnosis_{k}"] = item["diagnosis"]
        row[f"score_{k}"] = item["score"]
    return row


def lesion_rows(study: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per lesion of a study's ``findings.json`` document."""
    rows = []
    for lesion in doc["lesions"]:
        centre = lesion.get("centroid_mm") or [None, None, None]
        row = {c: lesion.get(c) for c in LESION_COLUMNS[1:12]}
        row.update(study=study, centroid_x_mm=centre[0], centroid_y_mm=centre[1],
                   centroid_z_mm=centre[2])
        rows.append({c: row.get(c) for c in LESION_COLUMNS})
    return rows
