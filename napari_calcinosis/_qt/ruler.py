"""The ruler: lines drawn on the image, each with its length on the line and in the panel.

One Shapes layer of lines per image (:func:`ruler_layer`), placed like the image, so its
world coordinates are the image's: mm on a CT (the in-plane and the through-plane spacing
alike; a line drawn in a coronal or sagittal view measures across slices) and on a
radiograph with a pixel spacing. A radiograph without a spacing that can be believed
measures in pixels, and says so (:func:`napari_calcinosis.review.radiograph_ruler_unit`).
"""

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from napari.layers import Shapes

from napari_calcinosis._napari.layer_data import RADIOGRAPH_KEY
from napari_calcinosis.review import (
    MM,
    RulerUnit,
    length_text,
    path_length,
    radiograph_ruler_unit,
)

from .result_layers import SOURCE_KEY, is_radiograph_layer, series_of

if TYPE_CHECKING:
    import napari

RULER_KIND = "ruler"
RULER_COLOR = "#ffd400"


def ruler_unit(image: Any) -> RulerUnit:
    """What a ruler on ``image`` measures in (mm, or pixels with a note)."""
    if is_radiograph_layer(image):
        return radiograph_ruler_unit(image.metadata[RADIOGRAPH_KEY])
    units = {str(u) for u in getattr(image, "units", ())}
    return MM if units == {"millimeter"} else RulerUnit("px", "Lengths in pixels: the image "
                                                              "has no spacing in mm.")


def is_ruler(layer: Any) -> bool:
    """True for a ruler layer of this plugin."""
    return isinstance(layer, Shapes) and \
        layer.metadata.get(SOURCE_KEY, {}).get("kind") == RULER_KIND


def ruler_of(viewer: "napari.viewer.Viewer", image: Any) -> Shapes | None:
    """The ruler layer already drawn on ``image`` (``None`` when there is none)."""
    uid = series_of(image)
    return next((layer for layer in viewer.layers
                 if is_ruler(layer) and series_of(layer) == uid), None)


def ruler_layer(viewer: "napari.viewer.Viewer", image: Any) -> Shapes:
    """The ruler of ``image``: the one it has, or a new empty one placed on it."""
    layer = ruler_of(viewer, image)
    if layer is not None:
        return layer
    unit = ruler_unit(image)
    template = "{length:.0f} px" if unit.unit == "px" else "{length:.1f} mm"
    layer = Shapes(
        ndim=image.ndim, name=f"{image.name} ruler", shape_type="line",
        edge_color=RULER_COLOR, edge_width=1.0, face_color="transparent",
        features=pd.DataFrame({"length": np.zeros(0)}), feature_defaults={"length": 0.0},
        text={"string": template, "color": RULER_COLOR, "size": 11, "anchor": "upper_left"},
        scale=image.scale, translate=image.translate, rotate=image.rotate, shear=image.shear,
        affine=image.affine, units=image.units,
        metadata={SOURCE_KEY: {"kind": RULER_KIND, "unit": unit.unit, "note": unit.note,
                               "series_instance_uid": series_of(image)}},
    )
    layer.events.data.connect(lambda _event: measure(layer))
    viewer.layers.append(layer)
    return layer


def lengths(layer: Shapes) -> list[float]:
    """The length of every line of a ruler, in its unit (world units: mm, or pixels)."""
    return [path_length([layer.data_to_world(vertex) for vertex in shape])
            for shape in layer.data]


def measure(layer: Shapes) -> list[float]:
    """Write each line's length into the ruler's features (its text shows them)."""
    values = lengths(layer)
    layer.features = pd.DataFrame({"length": np.asarray(values, float)})
    return values


def lengths_text(layer: Shapes | None, *, last: int = 4) -> str:
    """The panel's line: the ruler's latest lengths and, when there is one, its note."""
    if layer is None:
        return ""
    meta = layer.metadata.get(SOURCE_KEY, {})
    unit = RulerUnit(meta.get("unit", "mm"), meta.get("note", ""))
    values = lengths(layer)
    if not values:
        text = "Drag on the image to measure."
    else:
        shown = values[-last:]
        first = len(values) - len(shown) + 1
        text = "Lengths: " + ", ".join(f"{first + i}: {length_text(v, unit)}"
                                       for i, v in enumerate(shown))
    return text + (f"\n{unit.note}" if unit.note else "")
