"""What body part a radiograph's header says it shows: the detector is built for the chest.

The evidence is BodyPartExamined and the study and series descriptions, read as words.
A chest word anywhere wins ("CHEST ABDOMEN" is a chest film); otherwise a word naming
another part (teeth, a limb, the abdomen, the spine, ...) makes the film "other"; a header
that names nothing leaves the decision to the image (two lung fields, :mod:`._anatomy`).
"""

from __future__ import annotations

import re

from napari_calcinosis.types import SeriesInfo

__all__ = ["CHEST_WORDS", "part_of", "stated_part"]

#: Word stems that mark a chest film (as a part of any word of the header's texts).
CHEST_WORDS = ("CHEST", "THORAX", "TORAX", "THORAC", "LUNG", "CXR", "RIBS", "STERN")

#: Whole words that name a part other than the chest (DICOM's BodyPartExamined defined
#: terms and the words of common study descriptions).
OTHER_PARTS = frozenset("""
    TEETH TOOTH DENTAL PANORAMIC PANO OPG ORTHOPANTOMOGRAM MANDIBLE MAXILLA JAW TMJ SKULL HEAD
    SINUS SINUSES FACE ORBIT ORBITS NECK CSPINE TSPINE LSPINE SSPINE SPINE LUMBAR CERVICAL
    SACRUM COCCYX HAND HANDS FINGER FINGERS THUMB WRIST FOREARM ELBOW HUMERUS ARM SHOULDER
    CLAVICLE SCAPULA KNEE KNEES LEG LEGS TIBIA FIBULA FEMUR FOOT FEET ANKLE TOE TOES HEEL
    CALCANEUS HIP HIPS PELVIS ABDOMEN ABD KUB BREAST MAMMO MAMMOGRAPHY EXTREMITY
""".split())


def part_of(text: str) -> str:
    """``"chest"``, ``"other"`` or ``""``: what one header text names (see the module)."""
    words = [w for w in re.split(r"[^A-Z]+", (text or "").upper()) if w]
    if any(stem in word for word in words for stem in CHEST_WORDS):
        return "chest"
    return "other" if any(word in OTHER_PARTS for word in words) else ""


def stated_part(info: SeriesInfo) -> tuple[str, str]:
    """``("chest" | "other" | "", evidence)``: what the header says the film shows.

    ``evidence`` names the attribute and its value, for the sentence a reader gets.
    """
    fields = (("BodyPartExamined", info.body_part), ("StudyDescription", info.study_description),
              ("SeriesDescription", info.series_description))
    other = ""
    for name, value in fields:
        part = part_of(value)
        if part == "chest":
            return "chest", f"{name} {value.strip()!r}"
        if part == "other" and not other:
            other = f"{name} {value.strip()!r}"
    return ("other", other) if other else ("", "")
