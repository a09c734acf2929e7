"""CT lesions projected onto the frontal radiograph, as a Points layer on that radiograph.

When the study's findings hold a CT linked to a frontal radiograph
(:mod:`napari_calcinosis.fusion._link`: every CT lesion's ``radiograph_projection``),
a Points layer "CT lesions on <radiograph layer>" shows where each CT lesion falls on it:
crosses, cyan where a radiograph dot lies on the lesion (the CT confirms that dot), amber
where the radiograph shows nothing there. Its features table gives the CT lesion id, layer,
region, side and the radiograph lesion ids it confirms. The layer lies on the radiograph
layer's ``scale`` and ``translate`` and is shown and hidden with it.
"""

from typing import Any

import numpy as np
import pandas as pd

from napari_calcinosis._napari.layer_data import RADIOGRAPH_KEY
from napari_calcinosis.types import Lesion

from .result_layers import SOURCE_KEY, image_geometry, radiograph_point_size

KIND = "ct_projection"
SEEN_COLOR = "#00e5ff"
UNSEEN_COLOR = "#ffb000"
FEATURE_COLUMNS = ("ct_lesion_id", "layer", "region", "side", "confirms_radiograph_lesions",
                   "seen_on_radiograph")


def projected_lesions(lesions: list[Lesion]) -> dict[str, list[Lesion]]:
    """CT lesions that project inside a radiograph, by the radiograph's series UID."""
    out: dict[str, list[Lesion]] = {}
    for lesion in lesions:
        proj = lesion.extra.get("radiograph_projection")
        if proj and proj.get("inside_image"):
            out.setdefault(proj["series_instance_uid"], []).append(lesion)
    return out


def projection_features(lesions: list[Lesion]) -> pd.DataFrame:
    """The features table of the projected CT lesions."""
    rows = [{"ct_lesion_id": int(les.id), "layer": les.layer, "region": les.region,
             "side": les.side,
             "confirms_radiograph_lesions": ", ".join(
                 str(i) for i in les.extra.get("radiograph_lesion_ids", [])),
             "seen_on_radiograph": bool(les.extra.get("radiograph_lesion_ids"))}
            for les in lesions]
    return pd.DataFrame(rows, columns=list(FEATURE_COLUMNS))


def _coords_colors(lesions: list[Lesion]) -> tuple[np.ndarray, list[str]]:
    coords = np.array([[les.extra["radiograph_projection"]["row"],
                        les.extra["radiograph_projection"]["col"]] for les in lesions], float)
    colors = [SEEN_COLOR if les.extra.get("radiograph_lesion_ids") else UNSEEN_COLOR
              for les in lesions]
    return coords.reshape(-1, 2), colors


def draw_ct_projections(viewer: Any, review: Any, pairs: dict[str, Any]) -> None:
    """Add, update or remove the projection layers to match the review's findings.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer (``None``: nothing to do).
    review : StudyReview
        Its ``effective`` findings carry the projections.
    pairs : dict of str to LayerPair
        The session's layers by series UID (the radiograph's image layer is ``pair.image``).
    """
    if viewer is None:
        return
    existing = {layer.metadata[SOURCE_KEY].get("radiograph_series_instance_uid"): layer
                for layer in viewer.layers
                if layer.metadata.get(SOURCE_KEY, {}).get("kind") == KIND}
    findings = getattr(review, "effective", None)
    for uid, lesions in projected_lesions(findings.lesions if findings else []).items():
        image = getattr(pairs.get(uid), "image", None)
        if image is None:
            continue
        layer = existing.pop(uid, None)
        if layer is None:
            _add(viewer, image, uid, lesions)
        else:
            _update(layer, lesions)
    for layer in existing.values():
        viewer.layers.remove(layer)


def _add(viewer: Any, image: Any, uid: str, lesions: list[Lesion]) -> None:
    coords, colors = _coords_colors(lesions)
    radiograph = image.metadata.get(RADIOGRAPH_KEY)
    size = 0.8 * radiograph_point_size(radiograph) if radiograph is not None else 20.0
    layer = viewer.add_points(
        coords, name=f"CT lesions on {image.name}", symbol="cross", size=size,
        face_color=colors, border_color="black", border_width=0.08,
        border_width_is_relative=True, features=projection_features(lesions),
        metadata={SOURCE_KEY: {"kind": KIND, "radiograph_series_instance_uid": uid}},
        visible=bool(image.visible), **image_geometry(image))

    def follow_image(event: Any) -> None:
        if layer in viewer.layers:
            layer.visible = bool(image.visible)

    image.events.visible.connect(follow_image)


def _update(layer: Any, lesions: list[Lesion]) -> None:
    coords, colors = _coords_colors(lesions)
    layer.data = coords
    layer.features = projection_features(lesions)
    if lesions:
        layer.face_color = colors
