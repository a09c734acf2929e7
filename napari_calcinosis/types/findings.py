"""The findings object: the single truth the panels, the CLI and every exporter share.

Field names and vocabularies follow ``docs/contract.md`` (schema
``napari-calcinosis/findings/v1``).
``Findings.to_json_dict`` produces exactly the contract's document; extra, non-contract
fields a lesion carries (mean HU, Agatston weight, depth, ...) are kept in ``Lesion.extra`` and
written under the lesion only where the schema allows additional properties.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_ID = "napari-calcinosis/findings/v1"

LAYERS = (
    "skin", "subcutaneous", "fascia", "muscle", "tendon", "periarticular",
    "cartilage", "vessel", "visceral", "unknown",
)
#: Layers that are soft tissue: only these count toward extent, form and symmetry.
SOFT_TISSUE_LAYERS = ("skin", "subcutaneous", "fascia", "muscle", "tendon", "periarticular",
                      "unknown")
SIDES = ("left", "right", "midline")
#: How ``findings.json`` ``warnings`` (first) and the report (at the top) say that the
#: reader's saved annotations of the study could not be applied.
ANNOTATIONS_NOT_APPLIED = "The reader's saved annotations of this study were NOT applied"
MORPHOLOGIES = ("punctate", "nodular", "linear", "sheet", "reticular", "mass", "unknown")
REGIONS = (
    "head_neck", "shoulder_girdle", "axilla", "chest_wall_anterior", "chest_wall_lateral",
    "chest_wall_posterior", "breast", "abdominal_wall", "flank", "lower_back", "gluteal",
    "pelvis", "upper_limb", "lower_limb", "hand", "foot", "unknown",
)
#: Display colour of each tissue layer, shared by the napari overlays, key images, the HTML
#: report and the DICOM SEG segments, chosen to read on a grey CT.
LAYER_COLORS: dict[str, str] = {
    "skin": "#ff7f0e", "subcutaneous": "#ffd500", "fascia": "#2ca02c", "muscle": "#d62728",
    "tendon": "#e377c2", "periarticular": "#9467bd", "cartilage": "#17becf",
    "vessel": "#1f77b4", "visceral": "#8c8c8c", "unknown": "#ffffff",
}
EXTENTS = ("none", "localized", "regional", "generalized")
FORMS = ("none", "circumscripta", "universalis")
SYMMETRY_CALLS = ("symmetric", "asymmetric", "insufficient")


@dataclass
class Lesion:
    """One calcification (CT: 3-D component; radiograph: 2-D spot)."""

    id: int
    series_instance_uid: str
    centroid_index: list[float]
    layer: str = "unknown"
    side: str = "midline"
    region: str = "unknown"
    morphology: str = "unknown"
    source: str = "auto"
    centroid_mm: list[float] | None = None
    volume_mm3: float | None = None
    area_mm2: float | None = None
    peak_hu: float | None = None
    max_diameter_mm: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_soft_tissue(self) -> bool:
        return self.layer in SOFT_TISSUE_LAYERS

    def to_json_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "extra"}
        out.update(self.extra)
        return out


@dataclass
class SeriesEntry:
    """One analysed image series as listed in ``findings.json``."""

    series_instance_uid: str
    modality: str
    kind: str  # "volume" or "radiograph"
    shape: list[int]
    spacing_mm: list[float] | None
    slice_thickness_mm: float | None = None
    view: str | None = None
    #: CT only, when analysed: the contrast phase measured in the aorta
    #: (``phase``, ``blood_hu``, ``slices_measured``).
    contrast: dict[str, Any] | None = None
    #: CT only, when analysed: the candidates set aside as look-alikes, each with its
    #: ``reason`` and ``explanation`` (not lesions; listed so the reader can check them).
    set_aside: list[dict[str, Any]] | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The entry as ``findings.json`` lists it (the CT-only keys only when known)."""
        out = asdict(self)
        for key in ("contrast", "set_aside"):
            if out[key] is None:
                del out[key]
        return out


@dataclass
class Symmetry:
    index: float | None = None
    call: str = "insufficient"
    matched_fraction: float | None = None
    by_region: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Summary:
    lesion_count: int = 0
    total_volume_mm3: float = 0.0
    by_layer: dict[str, int] = field(default_factory=dict)
    by_region: dict[str, int] = field(default_factory=dict)
    by_side: dict[str, int] = field(default_factory=dict)
    extent: str = "none"
    form: str = "none"
    symmetry: Symmetry = field(default_factory=Symmetry)
    deep_involvement: dict[str, bool] = field(
        default_factory=lambda: {"muscle": False, "vessel": False, "visceral": False})
    incidental: dict[str, int] = field(
        default_factory=lambda: {"costal_cartilage": 0, "vessel_wall": 0, "visceral": 0})
    source: str = "CT"


@dataclass
class Findings:
    """Everything found in one study (the document ``findings.json`` serialises)."""

    software: dict[str, str]
    study: dict[str, Any]
    series: list[SeriesEntry] = field(default_factory=list)
    lesions: list[Lesion] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)
    differential: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """The contract's ``findings.json`` document as plain Python objects."""
        doc: dict[str, Any] = {
            "schema": SCHEMA_ID,
            "software": dict(self.software),
            "study": dict(self.study),
            "series": [s.to_json_dict() for s in self.series],
            "lesions": [lesion.to_json_dict() for lesion in self.lesions],
            "summary": asdict(self.summary),
            "differential": list(self.differential),
            "warnings": list(self.warnings),
        }
        if self.parameters:
            doc["parameters"] = dict(self.parameters)
        return doc
