"""CT window presets in the viewer: a combo box and Alt-1..Alt-4 shortcuts; window/level by
right-drag on the image with a W/L readout, the value under the cursor in HU, the scale
bar in mm (:mod:`.viewing`), and the ruler (:mod:`.ruler`)."""

import weakref
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, Label, PushButton
from napari.utils.notifications import show_info

from napari_calcinosis.review import (
    DEFAULT_WINDOW,
    WINDOW_PRESETS,
    contrast_limits,
    matching_window,
)

from .result_layers import is_ct_layer, is_radiograph_layer
from .ruler import is_ruler, lengths_text, ruler_layer, ruler_of
from .viewing import WindowLevelDrag, image_under, show_scale_bar, value_text, window_text

if TYPE_CHECKING:
    import napari
    from napari.layers import Image

#: Keyboard shortcut of each preset, in the order of WINDOW_PRESETS.
SHORTCUTS = {name: f"Alt-{number}" for number, name in enumerate(WINDOW_PRESETS, start=1)}


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
        self.help = Label(value=f"Selected CT layers (or all). {keys}. Right-drag on the "
                                "image: window (left/right) and level (up/down).")
        self.help.native.setWordWrap(True)  # keep the dock narrow
        self.readout = Label(label="Window", value="")
        self.cursor = Label(label="Cursor", value="")
        self.ruler_button = PushButton(text="Ruler: drag on the image to measure")
        self.lengths = Label(value="")  # no label: a wrapped line needs the full width
        self.lengths.native.setWordWrap(True)
        self.extend([self.preset, self.help, self.readout, self.cursor, self.ruler_button,
                     self.lengths])
        self.max_width = 400
        self.preset.changed.connect(self._on_preset)
        self.ruler_button.changed.connect(self.start_ruler)
        viewer.layers.selection.events.active.connect(self._sync_to_active)
        viewer.layers.selection.events.active.connect(self._show_lengths)
        self._bind_keys()
        self._connect_viewing(viewer)

    # -- window/level drag, readouts ---------------------------------------------------------
    def _connect_viewing(self, viewer: "napari.viewer.Viewer") -> None:
        callbacks = viewer.mouse_drag_callbacks
        if not any(isinstance(cb, WindowLevelDrag) for cb in callbacks):
            callbacks.append(WindowLevelDrag())  # one per viewer, whatever the panels
        viewer.mouse_move_callbacks.append(self._on_move)
        viewer.layers.events.inserted.connect(self._watch_layers)
        self._watch_layers()
        show_scale_bar(viewer)
        me = weakref.ref(self)

        def _disconnect(*_: object) -> None:
            widget = me()
            if widget is not None and widget._on_move in viewer.mouse_move_callbacks:
                viewer.mouse_move_callbacks.remove(widget._on_move)
            viewer.layers.events.inserted.disconnect(self._watch_layers)
            viewer.layers.selection.events.active.disconnect(self._show_lengths)

        self.native.destroyed.connect(_disconnect)

    def _watch_layers(self, *_: object) -> None:
        for layer in self._viewer.layers:
            if is_ct_layer(layer) or is_radiograph_layer(layer):
                # once: napari ignores repeated connections
                layer.events.contrast_limits.connect(self.show_window)
        self.show_window()

    def show_window(self, *_: object) -> None:
        """The W/L readout of the image being read."""
        layer = image_under(self._viewer)
        self.readout.value = "" if layer is None else window_text(layer)

    def _on_move(self, viewer: "napari.viewer.Viewer", event: object) -> None:
        self.cursor.value = value_text(viewer, getattr(event, "position", ()))

    # -- the ruler ----------------------------------------------------------------------------
    def start_ruler(self, *_: object) -> object:
        """Select the ruler of the image being read (made on first use) in line mode: the
        next drag on the image draws a line and shows its length. Returns the ruler layer."""
        image = image_under(self._viewer)
        if image is None:
            show_info("Open a CT or a radiograph with napari-calcinosis to measure on it.")
            return None
        layer = ruler_layer(self._viewer, image)
        layer.events.data.connect(self._show_lengths)  # once: napari ignores repeats
        layer.visible = True
        self._viewer.layers.selection.active = layer
        layer.mode = "add_line"
        self._show_lengths()
        return layer

    def _show_lengths(self, *_: object) -> None:
        """The lengths of the active ruler, else of the ruler of the image being read."""
        active = self._viewer.layers.selection.active
        if is_ruler(active):
            layer = active
        else:
            image = image_under(self._viewer)
            layer = None if image is None else ruler_of(self._viewer, image)
        self.lengths.value = lengths_text(layer)

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
