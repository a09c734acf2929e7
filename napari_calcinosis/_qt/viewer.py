"""``napari-calcinosis view``: napari with a study open and every panel of the plugin docked."""

from pathlib import Path
from typing import Any

import napari
from npe2 import PluginManager

from napari_calcinosis.types import CalcinosisError

PLUGIN = "napari-calcinosis"


def launch_viewer(study_path: Path, *, clinical: Any = None, run: bool = True) -> Any:
    """Open napari with the study (through this plugin's reader) and the plugin's panels.

    Panels that have a ``set_clinical(ClinicalInput)`` method receive ``clinical``.
    Returns the viewer (``run=False`` returns before entering the event loop, for tests).
    """
    viewer = napari.Viewer()
    viewer.open(str(study_path), plugin=PLUGIN)
    for display_name in _plugin_widget_names():
        _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, display_name)
        if clinical is not None and hasattr(widget, "set_clinical"):
            widget.set_clinical(clinical)
    if run:
        napari.run()
    return viewer


def _plugin_widget_names() -> list[str]:
    try:
        manifest = PluginManager.instance().get_manifest(PLUGIN)
    except KeyError as exc:
        raise CalcinosisError(f"The {PLUGIN} plugin is not registered with napari "
                              "(is the package installed?).") from exc
    return [w.display_name for w in (manifest.contributions.widgets or [])]
