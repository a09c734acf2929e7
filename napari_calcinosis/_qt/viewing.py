"""What a radiologist expects of any viewer: the value under the cursor in HU, window and
level by dragging with the right mouse button (with a W/L readout), a scale bar in mm, and
a lesion shown at a field of view where a 3 mm deposit is more than a few pixels.

napari has no window/level drag of its own (napari#3388): :class:`WindowLevelDrag` is a
viewer mouse-drag callback that changes the contrast limits of the CT under the cursor;
while it drags, the camera's own right-drag zoom is switched off.
"""

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_calcinosis.review import limits_of, window_level

from .result_layers import camera, is_ct_layer, is_radiograph_layer

if TYPE_CHECKING:
    import napari

#: Window width / level change (HU) per screen pixel dragged: across a 500 px canvas the
#: window goes from soft tissue (400) to bone (about 1500).
HU_PER_PIXEL = 2.0
#: The narrowest window a drag may reach (HU).
MIN_WIDTH_HU = 1.0
#: Field of view (mm) around a lesion the viewer steps to: the deposit and its neighbourhood.
LESION_FIELD_MM = 60.0
RIGHT_BUTTON = 2


def window_text(layer: Any) -> str:
    """The W/L readout of an image layer (``W 400 L 40 HU`` on a CT)."""
    width, level = window_level(tuple(layer.contrast_limits))
    unit = " HU" if is_ct_layer(layer) else ""
    return f"W {width:.0f}  L {level:.0f}{unit}"


def set_window(layer: Any, width: float, level: float) -> None:
    """Set a layer's window, widening its slider range when the window reaches beyond it."""
    low, high = limits_of(max(float(width), MIN_WIDTH_HU), float(level))
    range_low, range_high = layer.contrast_limits_range
    if low < range_low or high > range_high:
        layer.contrast_limits_range = (min(range_low, low), max(range_high, high))
    layer.contrast_limits = (low, high)


def image_under(viewer: "napari.viewer.Viewer", *, active_first: bool = True) -> Any:
    """The CT or radiograph the reader is looking at: the active layer when it is one, else
    the top visible one."""
    active = viewer.layers.selection.active
    if active_first and (is_ct_layer(active) or is_radiograph_layer(active)) and active.visible:
        return active
    for layer in reversed(list(viewer.layers)):
        if layer.visible and (is_ct_layer(layer) or is_radiograph_layer(layer)):
            return layer
    return None


def value_text(viewer: "napari.viewer.Viewer", world: Any) -> str:
    """The value under a world point with its unit (``-45 HU`` on a CT; a radiograph's
    stored pixel value has no unit), or ``""`` outside the images."""
    layer = image_under(viewer)
    if layer is None:
        return ""
    value = layer.get_value(np.asarray(world, float), world=True)
    if value is None or not np.isscalar(value) or not np.isfinite(value):
        return ""
    if is_ct_layer(layer):
        return f"{float(value):.0f} HU"
    return f"{float(value):.0f} (pixel value, no unit)"


class WindowLevelDrag:
    """A viewer mouse-drag callback: right-drag sets the window of the CT being read
    (left/right: width, up/down: level, as on a reading workstation).

    Parameters
    ----------
    on_change : callable, optional
        Called with the layer after each change (the readout follows).
    """

    def __init__(self, on_change: Any = None):
        self.on_change = on_change

    def __call__(self, viewer: Any, event: Any) -> Generator[None, None, None]:
        if getattr(event, "button", None) != RIGHT_BUTTON:
            return
        layer = image_under(viewer)
        if layer is None:
            return
        start = np.asarray(event.pos, float)
        width, level = window_level(tuple(layer.contrast_limits))
        cam = camera(viewer)
        panning = cam.mouse_pan
        cam.mouse_pan = False  # the camera would zoom on the same right-drag
        try:
            yield
            while event.type == "mouse_move":
                dx, dy = np.asarray(event.pos, float) - start
                set_window(layer, width + dx * HU_PER_PIXEL, level - dy * HU_PER_PIXEL)
                if self.on_change is not None:
                    self.on_change(layer)
                yield
        finally:
            cam.mouse_pan = panning


def zoom_to(viewer: "napari.viewer.Viewer", field_mm: float = LESION_FIELD_MM) -> None:
    """Zoom so that ``field_mm`` fills the shorter side of the canvas (2-D view)."""
    if viewer.dims.ndisplay != 2:
        return
    canvas = getattr(viewer, "canvas", None)  # napari >= 0.9
    size = getattr(canvas, "size", None) or (600, 600)
    shorter = float(min(size)) if min(size) > 0 else 600.0
    camera(viewer).zoom = shorter / float(field_mm)


def scale_bar(viewer: "napari.viewer.Viewer") -> Any:
    """napari's scale bar overlay (``viewer.canvas.overlays`` since 0.9)."""
    canvas = getattr(viewer, "canvas", None)
    return canvas.overlays["scale_bar"] if canvas is not None else viewer.scale_bar


def show_scale_bar(viewer: "napari.viewer.Viewer") -> None:
    """napari's scale bar, in the layers' units (mm for this plugin's images)."""
    bar = scale_bar(viewer)
    bar.visible = True
    bar.ticks = True
