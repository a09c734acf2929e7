"""Start detection by itself when the reader has opened a CT series or a radiograph.

The reader only returns LayerData; the layers appear in the viewer after it returns. So the
reader schedules :func:`_start_pending` on the Qt event loop, which finds the new CT and
radiograph layers in the current viewer and hands them to the Detection widget (docked if
needed), which runs them one after the other in a worker thread.

Switched off by ``NAPARI_CALCINOSIS_AUTODETECT=0`` or by the widget's checkbox (this session).
"""

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import napari

ENV_VAR = "NAPARI_CALCINOSIS_AUTODETECT"
DETECTION_WIDGET = "Calcinosis detection"
_state = {"enabled": None}


def is_enabled() -> bool:
    """True unless the environment variable is ``0`` or the user unticked the checkbox."""
    if _state["enabled"] is None:
        return os.environ.get(ENV_VAR, "1").strip() not in ("0", "false", "no", "off")
    return bool(_state["enabled"])


def set_enabled(enabled: bool) -> None:
    """Turn automatic detection on or off for this session."""
    _state["enabled"] = bool(enabled)


def schedule_after_open(series_uids: list[str]) -> None:
    """Ask for detection on the CT and radiograph layers of these series once napari has
    added them."""
    if not series_uids or not is_enabled():
        return
    import napari
    from qtpy.QtCore import QTimer

    viewer = napari.current_viewer()
    if viewer is None:
        return
    QTimer.singleShot(0, lambda: _start_pending(viewer, list(series_uids)))


def _start_pending(viewer: "napari.viewer.Viewer", series_uids: list[str]) -> None:
    from .detection_widget import DetectionWidget
    from .layers import is_detectable_layer

    layers = [layer for layer in viewer.layers if is_detectable_layer(layer)
              and layer.metadata["calcinosis"]["series_instance_uid"] in series_uids]
    if not layers or not is_enabled():
        return
    try:
        _, widget = viewer.window.add_plugin_dock_widget("napari-calcinosis", DETECTION_WIDGET)
    except RuntimeError:  # the viewer was closed in the meantime
        return
    if isinstance(widget, DetectionWidget):
        for layer in layers:
            widget.run(layer)
