"""Linked orthogonal views of the CT: the axial plane in napari's canvas, the coronal and the
sagittal plane in two more canvases (napari#662 asks for them).

Each extra view is a napari ``ViewerModel`` shown by a ``QtViewer`` (as napari's
multiple-viewer example does), holding layers that share the CT's array and its lesion
labels (no copy), placed in the same world (patient LPS in mm, ``z, y, x``): the coronal view
slices along ``y`` and shows ``z`` up and the patient's left on the right, the sagittal
view slices along ``x`` and shows ``z`` up and the front on the left. The *current point*
is the main viewer's ``dims.point``: stepping to a lesion sets it (``center_on``), so both
views move to the lesion's planes, and a cross-hair in each marks it. A click (press and
release without dragging) in any of the three views moves the current point there.
"""

import weakref
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.components import ViewerModel
from napari.layers import Image, Labels, Shapes
from napari.qt import QtViewer
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from .result_layers import SOURCE_KEY, camera, center_on, is_ct_layer, series_of
from .session import follow, get_session

if TYPE_CHECKING:
    import napari

#: (view name, world axis it slices along, dims order: sliced axis first, then rows, columns).
VIEWS = (("coronal", 1, (1, 0, 2)), ("sagittal", 2, (2, 0, 1)))
CROSS_COLOR = "#00e5ff"
#: The views draw their layers in order without a depth test: with napari's default
#: ("translucent", depth-tested) the CT hid every layer above it in these extra canvases.
BLENDING = "translucent_no_depth"
LEFT_BUTTON = 1


def current_ct(viewer: "napari.viewer.Viewer") -> Any:
    """The CT the views show: the selected layer's series' CT, else the top visible CT."""
    cts = [layer for layer in viewer.layers if is_ct_layer(layer)]
    active = viewer.layers.selection.active
    uid = None if active is None else series_of(active)
    for layer in cts:
        if uid is not None and series_of(layer) == uid:
            return layer
    visible = [layer for layer in cts if layer.visible]
    return (visible or cts or [None])[-1]


def _lesion_labels(viewer: "napari.viewer.Viewer", ct: Any) -> Any:
    uid = series_of(ct)
    return next((layer for layer in viewer.layers if isinstance(layer, Labels)
                 and layer.metadata.get(SOURCE_KEY, {}).get("kind") == "lesion_labels"
                 and series_of(layer) == uid), None)


def _placement(layer: Any) -> dict[str, Any]:
    return {"scale": layer.scale, "translate": layer.translate, "rotate": layer.rotate,
            "shear": layer.shear, "affine": layer.affine, "units": layer.units}


def cross_lines(point: np.ndarray, axis: int, low: np.ndarray, high: np.ndarray) -> list:
    """The cross-hair of the view slicing along ``axis`` at ``point``: a line along each
    displayed axis through the point, across the extent ``low..high`` (any one frame: the
    views draw it in the CT's voxel grid, so that it lies on the voxel shown)."""
    lines = []
    for along in (a for a in range(3) if a != axis):
        start, end = np.array(point, float), np.array(point, float)
        start[along], end[along] = low[along], high[along]
        lines.append(np.stack([start, end]))
    return lines


class ClickToPoint:
    """A mouse-drag callback: a left click that does not drag calls ``on_click(world)``
    (a drag still pans). It holds the method weakly: the main viewer's callback list must
    not keep the views (and their canvases) alive."""

    def __init__(self, on_click: Any):
        self._on_click = weakref.WeakMethod(on_click)

    def on_click(self, world: np.ndarray) -> None:
        method = self._on_click()
        if method is not None:
            method(world)

    def __call__(self, viewer: Any, event: Any) -> Generator[None, None, None]:
        if getattr(event, "button", None) != LEFT_BUTTON or event.modifiers:
            return
        start = np.asarray(event.pos, float)
        position = np.asarray(event.position, float)
        moved = False
        yield
        while event.type == "mouse_move":
            moved = moved or float(np.abs(np.asarray(event.pos, float) - start).max()) > 2
            yield
        if not moved:
            self.on_click(position)


class OrthoViews(QWidget):
    """The coronal and sagittal views of the CT being read, linked to napari's axial view.

    Attributes
    ----------
    models : dict
        View name (``coronal``, ``sagittal``) -> its ``ViewerModel``.
    """

    def __init__(self, viewer: "napari.viewer.Viewer"):
        super().__init__()
        self._viewer = viewer
        self.native = self  # the reading room takes panels' ``native``
        self.models: dict[str, ViewerModel] = {}
        self._qt_viewers: list[QtViewer] = []
        self._ct: Any = None
        self._cross: dict[str, Shapes] = {}
        self._closed = False
        self._pending = False  # a sync is scheduled
        self._stale = True  # the study changed while the views were hidden
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        for name, _axis, _order in VIEWS:
            model = ViewerModel(title=name)
            model.mouse_drag_callbacks.append(ClickToPoint(self.move_to))
            # the view's own slider (or wheel) moves the current point along its axis
            model.dims.events.point.connect(self._from_view)
            qt_viewer = QtViewer(model)
            qt_viewer.setMinimumSize(200, 160)
            layout.addWidget(QLabel(name.capitalize()))
            layout.addWidget(qt_viewer, 1)
            self.models[name] = model
            self._qt_viewers.append(qt_viewer)
        self._main_click = ClickToPoint(self.move_to)
        viewer.mouse_drag_callbacks.append(self._main_click)
        viewer.dims.events.point.connect(self.follow_point)
        viewer.layers.events.inserted.connect(self._later)
        viewer.layers.events.removed.connect(self._later)
        viewer.layers.selection.events.active.connect(self._later)
        self._session = get_session(viewer)
        follow(self, self._session.changed, self._later)
        self.destroyed.connect(self._disconnecter())
        self._close_with(viewer)
        self.sync_layers()

    # -- layers ------------------------------------------------------------------------------
    def _later(self, *_: Any) -> None:
        """Sync once after a burst of events (opening a study sends dozens)."""
        if not self._pending:
            self._pending = True
            QTimer.singleShot(0, self._sync_if_alive)

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        if self._stale:  # hidden (another tab in front) while the study changed
            self._later()

    def _hidden(self) -> bool:
        """True while no view can be seen: the work waits for :meth:`showEvent`."""
        if self.isVisible():
            return False
        self._stale = True
        return True

    def _alive(self) -> bool:
        """False once napari's window (and with it this widget) has gone."""
        try:
            self.status.objectName()
        except RuntimeError:  # deleted with the window in the meantime
            return False
        return not self._closed

    def _sync_if_alive(self) -> None:
        self._pending = False
        if self._alive():
            self.sync_layers()

    def sync_layers(self) -> None:
        """Show the current CT and its lesion labels in both views (arrays shared); while
        the views are hidden this waits until they are shown."""
        if self._hidden():
            return
        self._stale = False
        try:
            ct = current_ct(self._viewer)
        except RuntimeError:  # the viewer is closing
            return
        if ct is None:
            for model in self.models.values():
                model.layers.clear()
            self._ct, self._cross = None, {}
            if self._alive():  # (napari's window may be closing: the layers go first)
                self.status.setText("Open a CT to see its coronal and sagittal planes here.")
            return
        labels = _lesion_labels(self._viewer, ct)
        for name, axis, order in VIEWS:
            self._fill(self.models[name], name, ct, labels, order)
        if ct is not self._ct:
            ct.events.contrast_limits.connect(self._follow_window)
            self._ct = ct
            self.fit()
        self.status.setText(f"{ct.name}: click in any view to move the others there.")
        self.follow_point()

    def _fill(self, model: ViewerModel, name: str, ct: Any, labels: Any,
              order: tuple[int, ...]) -> None:
        layers = model.layers
        image = layers["ct"] if "ct" in layers else None
        if image is None or image.data is not ct.data:
            layers.clear()
            image = Image(ct.data, name="ct", colormap="gray", blending=BLENDING,
                          contrast_limits=ct.contrast_limits, **_placement(ct))
            layers.append(image)
            # on the CT's grid: the views' slider steps stay on the CT's voxels
            # (one voxel wide: a line along x is one slice thick, the axial slice shown)
            self._cross[name] = Shapes(ndim=3, name="cross-hair", shape_type="line",
                                       edge_color=CROSS_COLOR, edge_width=1.0, opacity=0.7,
                                       blending=BLENDING, **_placement(ct))
            layers.append(self._cross[name])
            model.dims.order = order
            camera(model).orientation2d = ("up", "right")
        old = layers["lesions"] if "lesions" in layers else None
        if labels is None:
            if old is not None:
                layers.remove(old)
        elif old is None or old.data is not labels.data:
            if old is not None:
                layers.remove(old)
            layers.insert(1, Labels(labels.data, name="lesions", colormap=labels.colormap,
                                    opacity=labels.opacity, blending=BLENDING,
                                    metadata={"colormap_of": labels.colormap},
                                    **_placement(labels)))
        elif old.metadata.get("colormap_of") is not labels.colormap:  # recoloured lesions
            old.colormap = labels.colormap
            old.metadata["colormap_of"] = labels.colormap
        self._follow_window()

    def fit(self) -> None:
        """Show the whole CT in each view (after the canvases got their size)."""
        for model in self.models.values():
            model.reset_view()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        QTimer.singleShot(0, self._fit_if_alive)  # napari learns the canvas size meanwhile

    def _fit_if_alive(self) -> None:
        if self._alive():
            self.fit()

    def _follow_window(self, *_: Any) -> None:
        ct = self._ct if self._ct is not None else current_ct(self._viewer)
        for model in self.models.values():
            if "ct" in model.layers and ct is not None:
                image = model.layers["ct"]
                if list(image.contrast_limits) != list(ct.contrast_limits):  # else no redraw
                    image.contrast_limits_range = ct.contrast_limits_range
                    image.contrast_limits = ct.contrast_limits

    # -- the current point -------------------------------------------------------------------
    def current_point(self) -> np.ndarray:
        """The current point in world coordinates (z, y, x) in mm."""
        return np.asarray(self._viewer.dims.point[-3:], float)

    def follow_point(self, *_: Any) -> None:
        """Slice both views at the current point and draw the cross-hairs there."""
        if self._ct is None or self._hidden():
            return
        point = self.current_point()
        voxel = np.round(self._ct.world_to_data(point))  # the voxel the views show
        low, high = self._ct.extent.data
        for name, axis, _ in VIEWS:
            model = self.models[name]
            model.dims.set_point(axis, float(point[axis]))
            cross = self._cross.get(name)
            lines = cross_lines(voxel, axis, low, high)
            if cross is not None and not (len(cross.data) == len(lines) and all(
                    np.array_equal(a, b) for a, b in zip(cross.data, lines))):
                cross.data = lines
                cross.shape_type = "line"

    def _from_view(self, event: Any) -> None:
        """A view's slider moved: the current point follows along the view's axis."""
        for name, axis, _ in VIEWS:
            model = self.models[name]
            if event.source is model.dims and self._ct is not None:
                value = float(model.dims.point[axis])
                if abs(float(self._viewer.dims.point[axis]) - value) > 1e-6:
                    self._viewer.dims.set_point(axis, value)

    def move_to(self, world: np.ndarray) -> None:
        """Make ``world`` (a clicked point, z y x) the current point of the three views."""
        world = np.asarray(world, float)[-3:]
        if world.size != 3 or self._ct is None:
            return
        center_on(self._viewer, world)

    def slice_indices(self) -> dict[str, int]:
        """The voxel index each view shows along its sliced axis (the CT's data index)."""
        shown: dict[str, int] = {}
        for name, axis, _ in VIEWS:
            model = self.models[name]
            if "ct" in model.layers:
                world = np.asarray(model.dims.point, float)
                index = model.layers["ct"].world_to_data(world)
                shown[name] = int(np.round(index[axis]))
        return shown

    def _close_with(self, viewer: "napari.viewer.Viewer") -> None:
        """Close the views' own canvases when napari closes its own (else their GL
        canvases and QtViewers outlive the window)."""
        window = getattr(getattr(viewer, "__wrapped__", viewer), "window", None)
        main = getattr(window, "_qt_viewer", None)
        if main is None:
            return
        qt_viewers = [weakref.ref(qt_viewer) for qt_viewer in self._qt_viewers]
        me = weakref.ref(self)

        def _close(*_: Any) -> None:
            views = me()
            if views is not None:  # napari's window keeps its docks' widgets a while
                views._qt_viewers.clear()
                views._closed = True
            for ref in qt_viewers:
                qt_viewer = ref()
                try:
                    if qt_viewer is not None:
                        qt_viewer.close()
                except RuntimeError:  # already deleted with the window
                    pass

        main.destroyed.connect(_close)

    def _disconnecter(self) -> Any:
        """What to undo in the main viewer when this widget goes (a closure: Qt does not
        call a slot of the object being destroyed)."""
        viewer, click = self._viewer, self._main_click
        links = ((viewer.dims.events.point, self.follow_point),
                 (viewer.layers.events.inserted, self._later),
                 (viewer.layers.events.removed, self._later),
                 (viewer.layers.selection.events.active, self._later))

        def _disconnect(*_: Any) -> None:
            for emitter, callback in links:
                emitter.disconnect(callback)
            if click in viewer.mouse_drag_callbacks:
                viewer.mouse_drag_callbacks.remove(click)

        return _disconnect
