"""Finding a panel of the plugin in a viewer, wherever it is docked.

The panels may be docked one by one (each from the Plugins menu) or together in the reading
room (:mod:`.reading_room`, what ``napari-calcinosis view`` docks). A panel that needs
another one (detection on open needs the detection panel, the differential jumps to the
clinical form) asks :func:`find_panel`: the reading room's copy is shown when there is one,
so a viewer never holds two detection panels that both run.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import napari

PLUGIN = "napari-calcinosis"


def docked_panel(viewer: "napari.viewer.Viewer", display_name: str) -> Any:
    """The panel ``display_name`` already docked in ``viewer`` (alone or in the reading
    room, whose tab is then brought to the front), else ``None``."""
    window = viewer.window
    docked = window.dock_widgets
    for name in list(docked):
        widget = docked[name]
        panels = getattr(widget, "panels", None)
        if isinstance(panels, dict) and display_name in panels:
            widget.show_panel(display_name)
            _raise(widget)
            return panels[display_name]
    for name in list(docked):
        if name.startswith(f"{display_name} ("):
            _raise(docked[name])
            return docked[name]
    return None


def find_panel(viewer: "napari.viewer.Viewer", display_name: str) -> Any:
    """The panel ``display_name`` of the plugin in ``viewer``: the docked one (see
    :func:`docked_panel`), else a newly docked one."""
    panel = docked_panel(viewer, display_name)
    if panel is None:
        _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, display_name)
    return panel


def _raise(widget: Any) -> None:
    native = getattr(widget, "native", widget)
    dock = native.parent()
    if dock is not None and hasattr(dock, "raise_"):
        dock.show()
        dock.raise_()
