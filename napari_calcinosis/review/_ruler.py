"""The ruler's arithmetic, without Qt: the length of a drawn line and the unit it is in.

A line is measured in world coordinates, where this plugin's CT layers are placed in mm
(in-plane and through-plane spacing alike) and radiographs in mm on the image when the file
gives a pixel spacing. Whether that spacing can be believed is the radiograph's own story:
:func:`radiograph_ruler_unit` says so in a note beside the length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_calcinosis.types import Radiograph, XrayParams
from napari_calcinosis.xray import stored_spacing


@dataclass(frozen=True)
class RulerUnit:
    """What a ruler's lengths are in.

    Attributes
    ----------
    unit : str
        ``"mm"``, or ``"px"`` when the image has no spacing that can be believed.
    note : str
        A sentence for the reader when the length is not a plain length on the patient
        (``""`` otherwise).
    """

    unit: str
    note: str = ""


MM = RulerUnit("mm")


def path_length(world_points: np.ndarray) -> float:
    """Length of a polyline through ``world_points`` (``(n, ndim)``, in world units)."""
    points = np.asarray(world_points, float).reshape(len(world_points), -1)
    if len(points) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


def radiograph_ruler_unit(radiograph: Radiograph) -> RulerUnit:
    """The unit of a ruler on a radiograph: mm at the patient (PixelSpacing), mm at the
    detector (ImagerPixelSpacing: magnified), or pixels (no spacing, or one that gives a
    field no chest film has)."""
    _, believed, _ = stored_spacing(radiograph, XrayParams())
    if not believed or not radiograph.pixel_spacing_mm:
        return RulerUnit("px", "Lengths in pixels: the film has no pixel spacing that can "
                               "be believed.")
    if radiograph.spacing_source == "ImagerPixelSpacing":
        return RulerUnit("mm", "Lengths at the detector (ImagerPixelSpacing): about 5-15 % "
                               "longer than on the patient.")
    return MM


def length_text(length: float, unit: RulerUnit) -> str:
    """A length as the ruler shows it (``23.4 mm``, ``187 px``)."""
    return f"{length:.0f} px" if unit.unit == "px" else f"{length:.1f} mm"
