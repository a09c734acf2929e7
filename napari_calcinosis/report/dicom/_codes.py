"""Coded concepts of the DICOM SR and SEG exports, in one place.

Every SNOMED CT (``SCT``) and DICOM (``DCM``) code below was checked against pydicom's
concept dictionary (``pydicom.sr._concepts_dict``, generated from DICOM PS3.16) and uses the
meaning given there. No private coding scheme is used: the validator the project tests with
(dicom3tools' ``dciodvfy``) warns about every private designator, even one declared in the
Coding Scheme Identification Sequence, so what PS3.16 has no code for (the extent, form and
left-right symmetry of the distribution, in the project's own words) is written as text
items under standard concept names (:data:`EXTENT_NAME`, :data:`FINDING`).
"""

from __future__ import annotations

from pydicom.sr.coding import Code

__all__ = ["CALCIFIED_STRUCTURE", "CATEGORY", "EXTENT_NAME", "FINDING", "LATERALITY",
           "LAYER_SITES", "MORPHOLOGY_CODES", "MORPHOLOGY_NAME", "REGION_SITES"]


#: Segmented property category and type, SR finding and finding category.
CATEGORY = Code("49755003", "SCT", "Morphologically Abnormal Structure")
CALCIFIED_STRUCTURE = Code("18115005", "SCT", "Pathologic calcification, calcified structure")

#: Tissue layer (contract word) -> anatomic structure (SEG anatomic region, SR finding site).
LAYER_SITES: dict[str, Code] = {
    "skin": Code("39937001", "SCT", "Skin"),
    "subcutaneous": Code("71966008", "SCT", "Subcutaneous tissue"),
    "fascia": Code("120576005", "SCT", "Fascial layer"),
    "muscle": Code("127954009", "SCT", "Skeletal muscle"),
    "tendon": Code("13024002", "SCT", "Tendon"),
    "periarticular": Code("39352004", "SCT", "Joint"),
    "cartilage": Code("50016007", "SCT", "Costal Cartilage"),
    "vessel": Code("59820001", "SCT", "Blood Vessel"),
    "visceral": Code("113343008", "SCT", "Body organ structure"),
    "unknown": Code("87784001", "SCT", "Soft tissue"),
}

_CHEST_WALL = Code("78904004", "SCT", "Chest wall")
_ANTERIOR = Code("255549009", "SCT", "Anterior")
_LATERAL = Code("49370004", "SCT", "Lateral")
_POSTERIOR = Code("255551008", "SCT", "Posterior")

#: Body region (contract word) -> (anatomic location, topographical modifier or None).
REGION_SITES: dict[str, tuple[Code, Code | None]] = {
    "head_neck": (Code("774007", "SCT", "Head and Neck"), None),
    "shoulder_girdle": (Code("26444007", "SCT", "Shoulder girdle structure"), None),
    "axilla": (Code("91470000", "SCT", "Axilla"), None),
    "chest_wall_anterior": (_CHEST_WALL, _ANTERIOR),
    "chest_wall_lateral": (_CHEST_WALL, _LATERAL),
    "chest_wall_posterior": (_CHEST_WALL, _POSTERIOR),
    "breast": (Code("76752008", "SCT", "Breast"), None),
    "abdominal_wall": (Code("818981001", "SCT", "Abdomen"), _ANTERIOR),
    "flank": (Code("58602004", "SCT", "Flank"), None),
    "lower_back": (Code("52612000", "SCT", "Lumbar region"), None),
    "gluteal": (Code("46862004", "SCT", "Buttock"), None),
    "pelvis": (Code("816092008", "SCT", "Pelvis"), None),
    "upper_limb": (Code("53120007", "SCT", "Upper limb"), None),
    "lower_limb": (Code("61685007", "SCT", "Lower limb"), None),
    "hand": (Code("85562004", "SCT", "Hand"), None),
    "foot": (Code("56459004", "SCT", "Foot"), None),
    "unknown": (Code("38266002", "SCT", "Entire body"), None),
}

#: Side (contract word) -> laterality value (SCT 272741003); midline has none.
LATERALITY: dict[str, Code | None] = {
    "left": Code("7771000", "SCT", "Left"),
    "right": Code("24028007", "SCT", "Right"),
    "bilateral": Code("51440002", "SCT", "Bilateral"),
    "midline": None,
}

MORPHOLOGY_NAME = Code("116676008", "SCT", "Associated morphology (attribute)")
#: Morphology (contract word) -> value of the "associated morphology" evaluation.
MORPHOLOGY_CODES: dict[str, Code] = {
    "punctate": Code("129755006", "SCT", "Punctate calcification"),
    "nodular": Code("255288007", "SCT", "Nodular"),
    "linear": Code("112150", "DCM", "Linear"),
    "sheet": Code("1522000", "SCT", "Plaque"),  # a sheet of calcium: plaque-like
    "reticular": Code("112113", "DCM", "Reticular pattern"),
    "mass": Code("4147007", "SCT", "Mass"),
    "unknown": Code("261665006", "SCT", "Unknown"),
}

#: Concept names of the text items (distribution words, symmetry) of the summary group.
EXTENT_NAME = Code("260858005", "SCT", "Extent (attribute)")
FINDING = Code("121071", "DCM", "Finding")
