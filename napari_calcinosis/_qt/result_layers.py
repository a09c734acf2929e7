"""Detection results -> napari layers (lesion labels, centroid points, tissue compartments).

Every result layer of a CT takes the geometry of the CT it came from
(:func:`napari_calcinosis._napari.layer_data.layer_geometry`) and the same display layout of
the array, so it lies exactly on the image in patient coordinates. Result layers of a
radiograph take the ``scale`` and ``translate`` of the radiograph's own layer
(:func:`image_geometry`): the reader shifts a radiograph next to a CT, and the overlay must
follow it.
"""

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from napari_calcinosis._napari.layer_data import (
    RADIOGRAPH_KEY,
    LayerDataTuple,
    display_axes,
    layer_geometry,
    to_display,
)
from napari_calcinosis.annotations import lesion_origin
from napari_calcinosis.types import Lesion, Radiograph, Summary, Volume
from napari_calcinosis.types.findings import LAYER_COLORS, SIDES

if TYPE_CHECKING:
    import napari

#: Colours of the tissue compartments (core.tissue names); same hues as the layers they hold.
TISSUE_COLORS: dict[str, str] = {
    "outside": "transparent",
    "skin": LAYER_COLORS["skin"],
    "subcutaneous_fat": LAYER_COLORS["subcutaneous"],
    "intermuscular_fat": LAYER_COLORS["fascia"],
    "muscle": LAYER_COLORS["muscle"],
    "bone": "#f0f0f0",
    "cavity": "#6a7fd8",
    "lung": "#34b3a6",
}
#: Key in result layers' metadata naming the CT series they belong to.
SOURCE_KEY = "calcinosis"
FEATURE_COLUMNS = ("id", "layer", "side", "region", "morphology", "volume_mm3", "peak_hu",
                   "depth_mm", "source")
#: Columns of a radiograph's lesion table: area instead of volume, the dot's contrast, whether it
#: lies tangential at the body outline (surely superficial) or en face, and whether a CT of the
#: study confirms it (``napari_calcinosis.fusion._link``; empty without a CT link).
XRAY_FEATURE_COLUMNS = ("id", "layer", "side", "region", "morphology", "area_mm2", "contrast",
                        "tangential", "ct_confirmation", "source")
#: Diameter (mm) of the ring drawn round each lesion centroid.
POINT_RING_MM = 12.0
#: Outline width (pixels) of a radiograph's lesion labels.
RADIOGRAPH_LABEL_CONTOUR = 1
#: Overlay colour of a lesion of unknown layer on a radiograph: the shared white
#: (``LAYER_COLORS["unknown"]``) vanishes on bright bone and abdomen, and most dots seen en
#: face on a projection are of unknown layer.
RADIOGRAPH_UNKNOWN_COLOR = "#ff40ff"


def overlay_color(layer: str, *, radiograph: bool = False) -> str:
    """Overlay colour of a lesion's tissue layer (``LAYER_COLORS``; on a radiograph,
    :data:`RADIOGRAPH_UNKNOWN_COLOR` for ``unknown``)."""
    if radiograph and layer == "unknown":
        return RADIOGRAPH_UNKNOWN_COLOR
    return LAYER_COLORS.get(layer, "#ffffff")


def is_ct_layer(layer: object) -> bool:
    """True for an Image layer this plugin made from a CT series (values in HU)."""
    from napari.layers import Image

    if not isinstance(layer, Image):
        return False
    meta = layer.metadata
    return meta.get("modality") == "CT" and meta.get("calcinosis", {}).get("kind") == "volume"


def is_radiograph_layer(layer: object) -> bool:
    """True for an Image layer this plugin made from a radiograph (CR, DX)."""
    from napari.layers import Image

    return (isinstance(layer, Image) and RADIOGRAPH_KEY in layer.metadata
            and layer.metadata.get("calcinosis", {}).get("kind") == "radiograph")


def study_of(layer: Any) -> str:
    """The StudyInstanceUID of a calcinosis image layer (its series UID when it has none)."""
    meta = layer.metadata
    return str(meta.get("study_instance_uid") or "") or \
        f"series:{meta.get(SOURCE_KEY, {}).get('series_instance_uid', '')}"


def series_of(layer: Any) -> str | None:
    """The SeriesInstanceUID a calcinosis layer (image or result) belongs to."""
    return getattr(layer, "metadata", {}).get(SOURCE_KEY, {}).get("series_instance_uid")


def is_detectable_layer(layer: object) -> bool:
    """True for a CT or radiograph layer of this plugin (what detection runs on)."""
    return is_ct_layer(layer) or is_radiograph_layer(layer)


def lesion_features(lesions: list[Lesion], *, radiograph: bool = False) -> pd.DataFrame:
    """One row per lesion with the columns napari's features table shows (a radiograph's
    columns when ``radiograph``)."""
    if radiograph:
        rows = [{
            "id": lesion.id, "layer": lesion.layer, "side": lesion.side,
            "region": lesion.region, "morphology": lesion.morphology,
            "area_mm2": _num(lesion.area_mm2), "contrast": _num(lesion.extra.get("contrast"), 4),
            "tangential": bool(lesion.extra.get("tangential", False)),
            "ct_confirmation": str(lesion.extra.get("ct_confirmation", "")),
            "source": lesion_origin(lesion),
        } for lesion in lesions]
        return pd.DataFrame(rows, columns=list(XRAY_FEATURE_COLUMNS))
    rows = [{
        "id": lesion.id, "layer": lesion.layer, "side": lesion.side, "region": lesion.region,
        "morphology": lesion.morphology,
        "volume_mm3": _num(lesion.volume_mm3), "peak_hu": _num(lesion.peak_hu),
        "depth_mm": _num(lesion.extra.get("depth_mm")),
        "source": lesion_origin(lesion),
    } for lesion in lesions]
    return pd.DataFrame(rows, columns=list(FEATURE_COLUMNS))


def _num(value: Any, digits: int = 2) -> float:
    return float("nan") if value is None else round(float(value), digits)


def _meta(image: Volume | Radiograph, role: str) -> dict[str, Any]:
    return {SOURCE_KEY: {"kind": role,
                         "series_instance_uid": image.info.series_instance_uid}}


def image_geometry(layer: Any) -> dict[str, tuple[float, ...]]:
    """``scale``, ``translate`` and ``units`` of an image layer, for overlays that must lie
    on it."""
    return {"scale": tuple(float(s) for s in layer.scale),
            "translate": tuple(float(t) for t in layer.translate),
            "units": tuple(str(u) for u in layer.units)}


def label_colormap(lesions: list[Lesion], offset: int = 0, *, radiograph: bool = False) -> Any:
    """Label value ``lesion.id - offset`` -> the lesion's :func:`overlay_color`."""
    from napari.utils.colormaps import DirectLabelColormap

    colors: dict[int | None, Any] = {None: "#bbbbbb", 0: "transparent"}
    colors.update({lesion.id - offset: overlay_color(lesion.layer, radiograph=radiograph)
                   for lesion in lesions})
    return DirectLabelColormap(color_dict=colors)


def radiograph_labels_data(radiograph: Radiograph, lesion_labels: np.ndarray,
                           lesions: list[Lesion], *, name: str,
                           geometry: dict[str, Any]) -> LayerDataTuple:
    """Labels layer of a radiograph's lesion pixels, each lesion coloured by its layer.

    ``geometry`` is the radiograph layer's :func:`image_geometry`.
    """
    features = lesion_features(lesions, radiograph=True).rename(columns={"id": "index"})
    kwargs = {"name": name, "colormap": label_colormap(lesions, radiograph=True),
              "features": features, "opacity": 0.9,
              "metadata": _meta(radiograph, "lesion_labels"), **geometry}
    return (_compact(lesion_labels), kwargs, "labels")


def outline_labels(layer: Any) -> None:
    """Draw a radiograph's lesion labels as outlines (napari takes ``contour`` only after
    the layer is made): a dot a few pixels across would vanish under its filled label."""
    layer.contour = RADIOGRAPH_LABEL_CONTOUR


def radiograph_point_size(radiograph: Radiograph) -> float:
    """Ring diameter in pixels: :data:`POINT_RING_MM`, or about that on a chest-sized
    image without pixel spacing."""
    if radiograph.pixel_spacing_mm:
        return POINT_RING_MM / float(min(radiograph.pixel_spacing_mm))
    return POINT_RING_MM * max(radiograph.image.shape) / 400.0


def radiograph_points_data(radiograph: Radiograph, lesions: list[Lesion], *, name: str,
                           geometry: dict[str, Any]) -> LayerDataTuple:
    """Points at a radiograph's lesion centroids ``[row, col]`` with the lesion table as
    ``features``, on the radiograph layer's ``geometry``."""
    coords = np.array([np.asarray(lesion.centroid_index, float)[:2] for lesion in lesions])
    colors = [overlay_color(lesion.layer, radiograph=True) for lesion in lesions]
    kwargs = {"name": name, "features": lesion_features(lesions, radiograph=True),
              "symbol": "disc", "size": radiograph_point_size(radiograph),
              "face_color": "transparent", "border_color": colors if lesions else "white",
              "border_width": 0.15, "border_width_is_relative": True,
              "metadata": _meta(radiograph, "lesion_points"), **geometry}
    return (coords.reshape(-1, 2), kwargs, "points")


def lesion_labels_data(volume: Volume, lesion_labels: np.ndarray, lesions: list[Lesion], *,
                       name: str) -> LayerDataTuple:
    """Labels layer of the lesion-id image, each lesion coloured by its tissue layer."""
    # With an "index" column napari shows the lesion's row in the status bar on hover.
    features = lesion_features(lesions).rename(columns={"id": "index"})
    kwargs = {"name": name, "colormap": label_colormap(lesions),
              "features": features, "opacity": 0.85, "metadata": _meta(volume, "lesion_labels"),
              **layer_geometry(volume)}
    return (to_display(_compact(lesion_labels), volume), kwargs, "labels")


def _compact(labels: np.ndarray) -> np.ndarray:
    """The label image as uint16 when its ids fit (less to upload than int32; uint8 would
    leave too few ids for lesions added by hand)."""
    top = int(labels.max(initial=0))
    for dtype in (np.uint16,):
        if top <= np.iinfo(dtype).max:
            return labels.astype(dtype)
    return labels


def lesion_points_data(volume: Volume, lesions: list[Lesion], *, name: str) -> LayerDataTuple:
    """Points at the lesion centroids (display index space) with the lesion table as features."""
    axes = list(display_axes(volume))
    coords = np.array([np.asarray(lesion.centroid_index, float)[axes] for lesion in lesions])
    coords = coords.reshape(-1, 3)
    colors = [LAYER_COLORS.get(lesion.layer, "#ffffff") for lesion in lesions]
    # A hollow circle about 12 mm across, whatever the in-plane spacing: the deposit stays
    # visible inside it and its colour tells the tissue layer.
    size = POINT_RING_MM / float(min(volume.spacing_zyx_mm[1:]))
    kwargs = {"name": name, "features": lesion_features(lesions), "symbol": "disc",
              "size": size, "face_color": "transparent",
              "border_color": colors if lesions else "white",
              "border_width": 0.15, "border_width_is_relative": True,
              "metadata": _meta(volume, "lesion_points"), **layer_geometry(volume)}
    return (coords, kwargs, "points")


def tissue_labels_data(volume: Volume, tissue_labels: np.ndarray, names: dict[int, str], *,
                       name: str) -> LayerDataTuple:
    """Labels layer of the tissue compartments (a check of the model, shown on request)."""
    meta = _meta(volume, "tissue_labels")
    meta[SOURCE_KEY]["names"] = {int(k): str(v) for k, v in names.items()}
    from napari.utils.colormaps import DirectLabelColormap

    features = pd.DataFrame({"index": list(names), "compartment": list(names.values())})
    colors: dict[int | None, Any] = {None: "#bbbbbb", 0: "transparent"}
    colors.update({int(k): TISSUE_COLORS.get(v, "#bbbbbb") for k, v in names.items() if k})
    kwargs = {"name": name, "opacity": 0.35, "metadata": meta,
              "colormap": DirectLabelColormap(color_dict=colors), "features": features,
              **layer_geometry(volume)}
    return (to_display(tissue_labels, volume), kwargs, "labels")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) \
        or "none"


def _by_side(counts: dict[str, int]) -> str:
    """Counts per side in the one order of every panel and the report (left, right,
    midline), not by count."""
    return ", ".join(f"{side} {counts[side]}" for side in SIDES if counts.get(side)) or "none"


def summary_text(summary: Summary) -> str:
    """The study summary in plain lines: counts, extent, symmetry, deep and incidental."""
    sym = summary.symmetry
    index = "n/a" if sym.index is None else f"{sym.index:.2f}"
    deep = [k for k, v in summary.deep_involvement.items() if v]
    # A projection has areas, not volumes: no total volume from a radiograph.
    volume = f" ({summary.total_volume_mm3:.0f} mm³)" if summary.source == "CT" else ""
    lines = [
        f"Soft-tissue lesions: {summary.lesion_count}{volume}",
        f"By layer: {_counts(summary.by_layer)}",
        f"By region: {_counts(summary.by_region)}",
        f"By side: {_by_side(summary.by_side)}",
        f"Extent: {summary.extent}; form: {summary.form}",
        f"Symmetry: index {index}, {sym.call}",
        f"Deep involvement: {', '.join(deep) if deep else 'none'}",
        f"Incidental: {_counts({k: v for k, v in summary.incidental.items() if v})}",
        f"Summary from: {'the CT' if summary.source == 'CT' else 'the radiograph'}",
    ]
    return "\n".join(lines)


def center_on(viewer: "napari.viewer.Viewer", world_point: np.ndarray) -> None:
    """Move the slider(s) to a world point and centre the camera on it."""
    world_point = np.asarray(world_point, float)
    offset = viewer.dims.ndim - world_point.size  # world axes are right-aligned in napari
    for axis, value in enumerate(world_point):
        if offset + axis >= 0:
            viewer.dims.set_point(offset + axis, float(value))
    point = viewer.dims.point
    camera(viewer).center = tuple(
        float(world_point[axis - offset]) if axis >= offset else point[axis]
        for axis in viewer.dims.displayed
    )


def camera(viewer: "napari.viewer.Viewer") -> Any:
    """The viewer's camera (``viewer.scene.camera`` since napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera
