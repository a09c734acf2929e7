"""Start detection by itself when the reader has opened a CT series or a radiograph.

The reader only returns LayerData; the layers appear in the viewer after it returns. So after
a read (:func:`detect_after_read`, registered by :mod:`.activate`) the Qt event loop is asked
to find the new CT and radiograph layers in the current viewer and hand them to the Detection
widget (docked if needed), which runs them one after the other in a worker thread.

Switched off by ``NAPARI_CALCINOSIS_AUTODETECT=0`` or by the widget's checkbox
(:mod:`.preferences`).
"""

import napari
from qtpy.QtCore import QTimer

from napari_calcinosis.pipeline import detector_for
from napari_calcinosis.types import Study

from .detection_widget import DetectionWidget
from .panels import find_panel
from .preferences import autodetect_enabled
from .result_layers import is_detectable_layer, series_of

DETECTION_WIDGET = "Calcinosis detection"


def detect_after_read(study: Study) -> None:
    """Detect on every series of a study just read that has a detector."""
    schedule_after_open([image.info.series_instance_uid
                         for image in [*study.volumes, *study.radiographs]
                         if detector_for(image) is not None])


def schedule_after_open(series_uids: list[str]) -> None:
    """Ask for detection on the CT and radiograph layers of these series once napari has
    added them."""
    if not series_uids or not autodetect_enabled():
        return
    viewer = napari.current_viewer()
    if viewer is None:
        return
    QTimer.singleShot(0, lambda: _start_pending(viewer, list(series_uids)))


def _start_pending(viewer: "napari.viewer.Viewer", series_uids: list[str]) -> None:
    layers = [layer for layer in viewer.layers
              if is_detectable_layer(layer) and series_of(layer) in series_uids]
    if not layers or not autodetect_enabled():
        return
    try:
        # the reading room's detection panel when it is docked (never a second one)
        widget = find_panel(viewer, DETECTION_WIDGET)
    except RuntimeError:  # the viewer was closed in the meantime
        return
    if isinstance(widget, DetectionWidget):
        for layer in layers:
            widget.run(layer)
