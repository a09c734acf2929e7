"""CT window presets in the viewer: a combo box and Alt-1..Alt-4 shortcuts."""

import weakref
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, Label

from napari_calcinosis.review import (
    DEFAULT_WINDOW,
    WINDOW_PRESETS,
    contrast_limits,
    matching_window,
)

if TYPE_CHECKING:
    import napari
    from napari.layers import Image

#: Keyboard shortcut of each preset, in the order of WINDOW_PRESETS.
SHORTCUTS = {name: f"Alt-{number}" for number, name in enumerate(WINDOW_PRESETS, start=1)}


def is_ct_layer(layer: object) -> bool:
    """True for an Image layer this plugin made from a CT series (values in HU)."""
    from napari.layers import Image

    if not isinstance(layer, Image):
        return False
    meta = layer.metadata
    return meta.get("modality") == "CT" and meta.get("calcinosis", {}).get("kind") == "volume"


def target_layers(viewer: "napari.viewer.Viewer") -> list["Image"]:
    """The selected CT layers, or every CT layer when none of them is selected."""
    selected = [layer for layer in viewer.layers.selection if is_ct_layer(layer)]
    return selected or [layer for layer in viewer.layers if is_ct_layer(layer)]


def apply_window(viewer: "napari.viewer.Viewer", name: str) -> list["Image"]:
    """Set the window ``name`` on the target CT layers (see :func:`target_layers`).

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose layers change.
    name : str
        A key of ``WINDOW_PRESETS``.

    Returns
    -------
    list of Image
        The layers that changed.
    """
    low, high = contrast_limits(name)
    layers = target_layers(viewer)
    for layer in layers:
        range_low, range_high = layer.contrast_limits_range
        # A window may reach beyond the data (e.g. bone on a small phantom): widen the slider.
        layer.contrast_limits_range = (min(range_low, low), max(range_high, high))
        layer.contrast_limits = (low, high)
        layer.metadata.setdefault("calcinosis", {})["window"] = name
    return layers


class WindowPresetWidget(Container):
    """Choose a CT window (soft tissue, bone, lung, calcium) for the selected CT layers."""

    def __init__(self, viewer: "napari.viewer.Viewer"):
        super().__init__(labels=True)
        self._viewer = viewer
        self.preset = ComboBox(
            label="CT window",
            choices=[(p.label, p.name) for p in WINDOW_PRESETS.values()],
            value=DEFAULT_WINDOW,
        )
        keys = ", ".join(f"{key} {WINDOW_PRESETS[n].label.split(' (')[0].lower()}"
                         for n, key in SHORTCUTS.items())
        self.help = Label(value=f"Selected CT layers (or all). {keys}.")
        self.help.native.setWordWrap(True)  # keep the dock narrow
        self.extend([self.preset, self.help])
        self.max_width = 360
        self.preset.changed.connect(self._on_preset)
        viewer.layers.selection.events.active.connect(self._sync_to_active)
        self._bind_keys()

    def _on_preset(self, name: str) -> None:
        apply_window(self._viewer, name)

    def _sync_to_active(self, event: object = None) -> None:
        """Show the window of the newly active CT layer without re-applying it."""
        layer = self._viewer.layers.selection.active
        if not is_ct_layer(layer):
            return
        name = matching_window(tuple(layer.contrast_limits))
        if name is not None and name != self.preset.value:
            with self.preset.changed.blocked():
                self.preset.value = name

    def _bind_keys(self) -> None:
        me = weakref.ref(self)
        for name, key in SHORTCUTS.items():

            def choose(viewer: "napari.viewer.Viewer", _name: str = name) -> None:
                widget = me()
                if widget is not None:
                    widget.preset.value = _name
                apply_window(viewer, _name)

            # A reopened panel takes the keys over from the closed one.
            self._viewer.bind_key(key, choose, overwrite=True)
