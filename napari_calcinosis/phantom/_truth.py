"""The ``truth.json`` document of a written phantom study (internal to the DICOM writer).

Besides every truth lesion and look-alike (patient mm, voxel index, radiograph pixels), the
document carries the calls a perfect reader would make, derived from the truth with the rules of
``docs/contract.md`` and ``docs/clinical.md``: extent and form by the contract's rules as
:func:`napari_calcinosis.summary.extent_of` and :func:`napari_calcinosis.summary.form_of` apply
them (one region localized, two or three regional, four or more, or two or more non-adjacent
regions involved on both sides, generalized), and symmetry (per region, SI = 1 - |L - R| / (L + R)
of the volume; symmetric when SI >= 0.7 in at least two thirds of the involved regions;
``insufficient`` with fewer than 5 lesions).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from napari_calcinosis.summary import extent_of, form_of
from napari_calcinosis.types import Lesion
from napari_calcinosis.types.findings import SOFT_TISSUE_LAYERS

from ._spec import LANDMARKS, REGION_BOXES, Z_OFFSET_MM, PhantomCT

SCHEMA = "napari-calcinosis/phantom-truth/v1"


def _extent(lesions) -> tuple[str, str]:
    """Extent and form of truth lesions by the contract's rules (the detector's own code)."""
    as_found = [Lesion(id=lesion.id, series_instance_uid="", centroid_index=[0.0, 0.0, 0.0],
                       layer=lesion.layer, side=lesion.side, region=lesion.region)
                for lesion in lesions]
    extent = extent_of(as_found)
    return extent, form_of(extent)


def _symmetry(lesions) -> dict[str, Any]:
    if len(lesions) < 5:
        return {"call": "insufficient", "index": None, "by_region": {}}
    by_region: dict[str, dict[str, float]] = {}
    for lesion in lesions:
        sides = by_region.setdefault(lesion.region, {"left": 0.0, "right": 0.0})
        if lesion.side in sides:
            sides[lesion.side] += lesion.volume_mm3
    indices = {region: 1.0 - abs(v["left"] - v["right"]) / max(v["left"] + v["right"], 1e-9)
               for region, v in by_region.items()}
    good = sum(si >= 0.7 for si in indices.values())
    call = "symmetric" if good >= 2 / 3 * len(indices) else "asymmetric"
    mean = sum(indices.values()) / len(indices)
    return {"call": call, "index": round(mean, 3),
            "by_region": {k: round(v, 3) for k, v in sorted(indices.items())}}


def expected_summary(ct: PhantomCT) -> dict[str, Any]:
    """The study-level calls the truth implies (see the module docstring)."""
    soft = [lesion for lesion in ct.truth if lesion.layer in SOFT_TISSUE_LAYERS]
    regions = sorted({lesion.region for lesion in soft})
    extent, form = _extent(soft)
    layers = Counter(lesion.layer for lesion in ct.truth)
    kinds = Counter(look.kind for look in ct.lookalikes)
    return {
        "lesion_count": len(soft), "extent": extent, "form": form, "regions": regions,
        "by_layer": dict(sorted(layers.items())),
        "by_side": dict(sorted(Counter(lesion.side for lesion in soft).items())),
        "symmetry": _symmetry(soft),
        "deep_involvement": {"muscle": layers.get("muscle", 0) > 0, "vessel": False,
                             "visceral": False},
        "incidental": {"costal_cartilage": kinds.get("costal_cartilage", 0),
                       "vessel_wall": kinds.get("vessel_wall", 0),
                       "visceral": kinds.get("granuloma", 0)},
    }


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _radiograph_entry(xray, ds, path: Path, root: Path) -> dict[str, Any]:
    return {
        "file": _rel(path, root), "sop_instance_uid": str(ds.SOPInstanceUID),
        "series_instance_uid": str(ds.SeriesInstanceUID), "view": xray.view,
        "view_position": xray.view_position,
        "patient_orientation": list(xray.patient_orientation),
        "photometric": xray.photometric, "shape": list(xray.image.shape),
        "pixel_spacing_mm": list(xray.pixel_spacing_mm) if "PixelSpacing" in ds else None,
        "imager_pixel_spacing_mm": list(xray.imager_pixel_spacing_mm),
        "geometry": xray.geometry,
        "lesions": [asdict(spot) for spot in xray.truth],
        "lookalikes": [asdict(look) for look in xray.lookalikes],
    }


def truth_document(ct: PhantomCT, *, ct_uid: str, ct_files: list[Path],
                   radiographs: list, root: Path) -> dict[str, Any]:
    """The JSON-ready truth of a written study (format in ``sample_data/README.md``)."""
    spec = asdict(ct.spec)
    return {
        "schema": SCHEMA,
        "spec": spec,
        "ct": {
            "series_instance_uid": ct_uid, "folder": _rel(ct_files[0].parent, root),
            "shape": list(ct.shape), "spacing_zyx_mm": list(ct.spacing_zyx_mm),
            "slice_thickness_mm": ct.slice_thickness_mm,
            "origin_lps_mm": [float(v) for v in ct.origin_lps_mm],
            "direction_lps": ct.direction_lps.tolist(), "midline_x_mm": ct.midline_x_mm,
        },
        "anatomy": {"z_offset_mm": Z_OFFSET_MM, "landmarks_s_mm": LANDMARKS,
                    "region_boxes": {k: {"s_mm": list(v[0]), "phi_deg": list(v[1])}
                                     for k, v in REGION_BOXES.items()}},
        "lesions": [asdict(lesion) for lesion in ct.truth],
        "lookalikes": [asdict(look) for look in ct.lookalikes],
        "radiographs": [_radiograph_entry(x, ds, p, root) for x, ds, p in radiographs],
        "expected": expected_summary(ct),
    }
