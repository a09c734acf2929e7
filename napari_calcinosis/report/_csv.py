"""``lesions.csv``: one row per lesion with the fields of ``findings.json``.

The centroids are flattened to columns (``centroid_mm_x/_y/_z`` in LPS mm,
``centroid_index_slice/_row/_column``; a radiograph lesion has no slice index and no mm
centroid). A lesion's extra measurements follow the contract's fields, sorted by name; an
empty cell means "not known / not applicable".
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from napari_calcinosis.files import atomic_open
from napari_calcinosis.types import Findings, Lesion

__all__ = ["BASE_COLUMNS", "LESIONS_FILENAME", "lesion_rows", "write_lesions_csv"]

LESIONS_FILENAME = "lesions.csv"

BASE_COLUMNS = (
    "id", "series_instance_uid", "source",
    "centroid_mm_x", "centroid_mm_y", "centroid_mm_z",
    "centroid_index_slice", "centroid_index_row", "centroid_index_column",
    "volume_mm3", "area_mm2", "peak_hu", "max_diameter_mm",
    "layer", "side", "region", "morphology",
)


def lesion_rows(findings: Findings) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and one row dict per lesion, in the order of ``findings.lesions``."""
    extra_columns = sorted({key for lesion in findings.lesions for key in lesion.extra}
                           - set(BASE_COLUMNS))
    rows = [_row(lesion, extra_columns) for lesion in findings.lesions]
    return [*BASE_COLUMNS, *extra_columns], rows


def write_lesions_csv(findings: Findings, out: str | Path) -> Path:
    """Write ``lesions.csv`` atomically.

    Parameters
    ----------
    findings : Findings
        The study's findings.
    out : str or Path
        A folder (the file is ``lesions.csv`` inside it) or a file name ending in ``.csv``.

    Returns
    -------
    Path
        The file written (a header line only when there are no lesions).
    """
    out = Path(out)
    path = out if out.suffix.lower() == ".csv" else out / LESIONS_FILENAME
    columns, rows = lesion_rows(findings)
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return path


def _row(lesion: Lesion, extra_columns: list[str]) -> dict[str, Any]:
    mm = list(lesion.centroid_mm) if lesion.centroid_mm is not None else [None] * 3
    index = [float(v) for v in lesion.centroid_index]
    if len(index) == 2:  # radiograph: [row, column]
        index = [None, *index]
    row: dict[str, Any] = {
        "id": lesion.id, "series_instance_uid": lesion.series_instance_uid,
        "source": lesion.source,
        "centroid_mm_x": mm[0], "centroid_mm_y": mm[1], "centroid_mm_z": mm[2],
        "centroid_index_slice": index[0], "centroid_index_row": index[1],
        "centroid_index_column": index[2],
        "volume_mm3": lesion.volume_mm3, "area_mm2": lesion.area_mm2,
        "peak_hu": lesion.peak_hu, "max_diameter_mm": lesion.max_diameter_mm,
        "layer": lesion.layer, "side": lesion.side, "region": lesion.region,
        "morphology": lesion.morphology,
    }
    row.update({key: lesion.extra.get(key) for key in extra_columns})
    return row


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=float)
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    return value
