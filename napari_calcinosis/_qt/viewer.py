"""``napari-calcinosis view``: napari with a study open and the plugin's reading room docked."""

from pathlib import Path
from typing import Any

import napari
from npe2 import PluginManager

from napari_calcinosis.types import CalcinosisError

from .panels import PLUGIN

#: The one dock ``view`` opens: every panel as tabs in reading order (``_qt.reading_room``).
READING_ROOM = "Reading room"


def launch_viewer(study_path: Path, *, clinical: Any = None, run: bool = True) -> Any:
    """Open napari with the study (through this plugin's reader) and the reading room.

    ``clinical`` (a ``ClinicalInput``, from ``--clinical FILE``) fills the clinical form and
    is stored as the study's clinical input, so the differential uses it from the start:
    every docked panel with a ``set_clinical(ClinicalInput)`` method receives it.
    Returns the viewer (``run=False`` returns before entering the event loop, for tests).
    """
    viewer = napari.Viewer()
    # Docked before the study opens: detection on open then runs in the reading room's
    # detection panel instead of docking a second one.
    widgets = [viewer.window.add_plugin_dock_widget(PLUGIN, name)[1]
               for name in _docked_widget_names()]
    viewer.open(str(study_path), plugin=PLUGIN)
    for widget in widgets:
        if clinical is not None and hasattr(widget, "set_clinical"):
            widget.set_clinical(clinical)
    if run:
        napari.run()
    return viewer


def _docked_widget_names() -> list[str]:
    """The reading room when the manifest has it (it holds every panel), else every panel."""
    names = _plugin_widget_names()
    return [READING_ROOM] if READING_ROOM in names else names


def _plugin_widget_names() -> list[str]:
    try:
        manifest = PluginManager.instance().get_manifest(PLUGIN)
    except KeyError as exc:
        raise CalcinosisError(f"The {PLUGIN} plugin is not registered with napari "
                              "(is the package installed?).") from exc
    return [w.display_name for w in (manifest.contributions.widgets or [])]
