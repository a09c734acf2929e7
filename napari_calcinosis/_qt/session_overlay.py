"""Draw a study review's effective lesions into the detection panel's result layers.

The same drawing serves a CT (3-D points and labels in the volume's display layout) and a
radiograph (2-D points ``[row, col]`` and labels on the stored pixel grid, with the
radiograph's lesion table).

The centroid Points layer shows one point per effective lesion (rejected ones gone, manual
ones as squares), coloured by the lesion's tissue layer (the reader's when set), with the
lesion table as ``features``; the lesion Labels layer shows the effective label image
(rejected lesions cleared, painted ones drawn) with the same colours.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_calcinosis._napari.layer_data import (
    RADIOGRAPH_KEY,
    VOLUME_KEY,
    display_axes,
    to_display,
)

from .result_layers import label_colormap, lesion_features, overlay_color

MANUAL_SYMBOL = "square"
AUTO_SYMBOL = "disc"


@dataclass
class LayerPair:
    """The image, lesion points and lesion labels of one series, and what is drawn."""

    uid: str
    image: Any = None
    points: Any = None
    labels: Any = None
    row_ids: list[int] = field(default_factory=list)
    drawn: Any = None
    point_size: float | None = None

    @property
    def is_empty(self) -> bool:
        return self.image is None and self.points is None and self.labels is None

    def forget(self, layer: Any) -> bool:
        """Drop ``layer`` if it is one of the pair's; True when it was."""
        for name in ("image", "points", "labels"):
            if getattr(self, name) is layer:
                setattr(self, name, None)
                if name == "labels":
                    self.drawn = None
                return True
        return False

    @property
    def is_radiograph(self) -> bool:
        """True when the series is a radiograph (2-D overlay)."""
        if self.image is not None:
            return RADIOGRAPH_KEY in self.image.metadata
        layer = self.points if self.points is not None else self.labels
        return layer is not None and layer.ndim == 2

    @property
    def axes(self) -> tuple[int, ...]:
        if self.is_radiograph:
            return (0, 1)
        volume = None if self.image is None else self.image.metadata.get(VOLUME_KEY)
        return (0, 1, 2) if volume is None else display_axes(volume)

    def selected_ids(self) -> list[int]:
        if self.points is None:
            return []
        return [self.row_ids[i] for i in sorted(self.points.selected_data)
                if i < len(self.row_ids)]

    def select(self, wanted: set[int]) -> list[int]:
        """Select the rows of the wanted lesion ids; returns those rows."""
        if self.points is None:
            return []
        rows = [row for row, lesion_id in enumerate(self.row_ids) if lesion_id in wanted]
        self.points.selected_data = set(rows)
        return rows

    def row_world(self, row: int) -> np.ndarray:
        return np.asarray(self.points.data_to_world(self.points.data[row]))

    def world_to_index(self, world: np.ndarray) -> np.ndarray:
        """Storage-layout index (z, y, x; row, col on a radiograph) of a world point."""
        layer = self.image if self.image is not None else self.points
        ndim = len(self.axes)
        shown = np.asarray(layer.world_to_data(np.asarray(world, float)), float)[-ndim:]
        index = np.empty(ndim)
        index[list(self.axes)] = shown
        return index


def from_display(array: np.ndarray, pair: LayerPair) -> np.ndarray:
    """A display-layout array back in the volume's storage layout (a view)."""
    axes = pair.axes
    return array if axes == (0, 1, 2) else array.transpose(np.argsort(axes))


def draw_points(pair: LayerPair, review: Any, uid: str) -> None:
    """Points at the effective lesions of series ``uid`` (selection kept by lesion id)."""
    points = pair.points
    if points is None:
        return
    if pair.point_size is None:
        pair.point_size = float(np.median(points.size)) if len(points.data) else 10.0
    keep = set(pair.selected_ids())
    lesions = review.lesions_of(uid)
    axes = list(pair.axes)
    coords = np.array([np.asarray(les.centroid_index, float)[axes] for les in lesions])
    points.data = coords.reshape(-1, len(axes))
    points.features = lesion_features(lesions, radiograph=pair.is_radiograph)
    if lesions:
        points.border_color = [overlay_color(les.layer, radiograph=pair.is_radiograph)
                               for les in lesions]
        points.symbol = [MANUAL_SYMBOL if "annotation_uid" in les.extra else AUTO_SYMBOL
                         for les in lesions]
        points.size = pair.point_size
    pair.row_ids = [int(les.id) for les in lesions]
    points.selected_data = {row for row, i in enumerate(pair.row_ids) if i in keep}


def draw_labels(pair: LayerPair, review: Any, uid: str) -> None:
    """The effective label image (redrawn only when the lesion set changed) and colours."""
    labels = pair.labels
    if labels is None:
        return
    offset = review.runs[uid].id_offset
    lesions = review.lesions_of(uid)
    fingerprint = _drawn_fingerprint(review, uid)
    if fingerprint != pair.drawn:
        image = review.effective_labels(uid)
        if image is not None:
            top = int(image.max(initial=0))
            dtype = labels.data.dtype if top <= np.iinfo(labels.data.dtype).max else np.int32
            image = image.astype(dtype, copy=False)
            labels.data = image if pair.is_radiograph else to_display(image, _volume(pair))
        pair.drawn = fingerprint
    labels.colormap = label_colormap(lesions, offset, radiograph=pair.is_radiograph)
    features = lesion_features(lesions, radiograph=pair.is_radiograph).rename(
        columns={"id": "index"})
    features["index"] = [les.id - offset for les in lesions]
    labels.features = features


def _volume(pair: LayerPair) -> Any:
    return pair.image.metadata[VOLUME_KEY]


def _drawn_fingerprint(review: Any, uid: str) -> tuple:
    """What decides the effective label image: the run, rejections and manual masks."""
    record = review.record
    rejected = tuple(sorted(les.id for les in review.rejected))
    manual = tuple((m.uid, m.state, m.modified) for m in record.manual_lesions
                   if m.lesion.series_instance_uid == uid)
    return id(review.runs[uid].result), rejected, manual
