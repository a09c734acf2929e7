"""Lesion review: select lesions, set their tissue layer and morphology, accept, reject,
restore, add by painting or clicking, and step through them with N / Shift-N.

Selection is the selection of the lesion centroid Points layer (click a point, drag a box,
or pick rows in napari's features table); every edit goes through the viewer's
:class:`~napari_calcinosis._qt.session.StudySession`, which saves it at once.
"""

from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, Label, PushButton, Select, TextEdit

from napari_calcinosis.annotations import lesion_origin
from napari_calcinosis.types.findings import LAYERS, MORPHOLOGIES

from .result_layers import summary_text
from .session import follow, get_session

if TYPE_CHECKING:
    import napari

MIXED = "(mixed)"
NONE = "(no selection)"
NEXT_KEY, PREVIOUS_KEY = "N", "Shift-N"
#: The tissue layers a reader may set (the contract's words), ``unknown`` last.
LAYER_CHOICES = tuple(layer for layer in LAYERS if layer != "unknown") + ("unknown",)


class LesionReviewWidget(Container):
    """Review the detected lesions of the current study (see the module docstring)."""

    def __init__(self, viewer: "napari.viewer.Viewer"):
        super().__init__(labels=False)
        self._viewer = viewer
        self.session = get_session(viewer)
        self._updating = False
        self._rejected: list = []
        self.selection = Label(value="")
        self.layer = ComboBox(label="Tissue layer", choices=[NONE, MIXED, *LAYER_CHOICES])
        self.morphology = ComboBox(label="Morphology", choices=[NONE, MIXED, *MORPHOLOGIES])
        self.accept_button = PushButton(text="Accept")
        self.reject_button = PushButton(text="Reject")
        self.rejected = Select(choices=[], allow_multiple=True)
        self.restore_button = PushButton(text="Restore selected")
        self.paint_button = PushButton(text="Paint a new lesion")
        self.click_button = PushButton(text="Click to add lesions")
        self.previous_button = PushButton(text=f"◀ Previous ({PREVIOUS_KEY})")
        self.next_button = PushButton(text=f"Next ({NEXT_KEY}) ▶")
        self.summary = TextEdit(value="")
        self.summary.native.setReadOnly(True)
        self.help = Label(value="Select lesions: click a centroid point, drag a box in the "
                                "points layer's select mode, or pick rows in the features "
                                "table.")
        self.help.native.setWordWrap(True)
        self.selection.native.setWordWrap(True)
        self.extend([
            self.help, self.selection,
            Container(widgets=[self.layer, self.morphology], labels=True),
            Container(widgets=[self.accept_button, self.reject_button], layout="horizontal"),
            Label(value="Rejected lesions (not counted):"), self.rejected, self.restore_button,
            Container(widgets=[self.paint_button, self.click_button], layout="horizontal"),
            Container(widgets=[self.previous_button, self.next_button], layout="horizontal"),
            Label(value="Findings as reviewed:"), self.summary])
        self.max_width = 440
        self.rejected.native.setMaximumHeight(110)
        self._connect(viewer)
        self.refresh()

    def reset_choices(self, *_: Any) -> None:
        """Choices here are fixed; napari's reset on every layer change must not re-emit
        the current values (that would store them again as the reader's)."""

    def _connect(self, viewer: "napari.viewer.Viewer") -> None:
        self.layer.changed.connect(lambda v: self._set("layer", v))
        self.morphology.changed.connect(lambda v: self._set("morphology", v))
        self.accept_button.changed.connect(lambda: self._set_state("accepted"))
        self.reject_button.changed.connect(lambda: self._set_state("rejected"))
        self.restore_button.changed.connect(self.restore_selected)
        self.paint_button.changed.connect(self.start_painting)
        self.click_button.changed.connect(self.start_clicking)
        self.next_button.changed.connect(lambda: self.step(1))
        self.previous_button.changed.connect(lambda: self.step(-1))
        follow(self, self.session.changed, self.refresh)
        follow(self, self.session.selection_changed, self._show_selection)
        viewer.mouse_drag_callbacks.append(self._click_select)
        viewer.bind_key(NEXT_KEY, lambda _v: self.step(1), overwrite=True)
        viewer.bind_key(PREVIOUS_KEY, lambda _v: self.step(-1), overwrite=True)

    # -- showing -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the session: rejected list, summary, selection."""
        review = self.session.review
        self._updating = True
        try:
            self._rejected = [] if review is None else review.rejected
            self.rejected.choices = [(_describe(les), n) for n, les in enumerate(self._rejected)]
            if review is None:
                self.summary.value = "No study open."
            else:
                self.summary.value = summary_text(review.effective.summary) + _edits(review)
        finally:
            self._updating = False
        self._show_selection()

    def _show_selection(self) -> None:
        review, ids = self.session.review, self.session.selected_ids()
        lesions = [les for i in ids if review is not None and (les := review.lesion(i))]
        self._updating = True
        try:
            for combo, name in ((self.layer, "layer"), (self.morphology, "morphology")):
                values = {getattr(les, name) for les in lesions}
                combo.value = NONE if not lesions else values.pop() if len(values) == 1 \
                    else MIXED
            if not lesions:
                self.selection.value = "No lesion selected."
            else:
                shown = ", ".join(f"#{les.id}" for les in lesions[:12])
                more = f" and {len(lesions) - 12} more" if len(lesions) > 12 else ""
                first = lesions[0]
                detail = (f" — {first.layer}, {first.morphology}, {first.region} "
                          f"{first.side}, {lesion_origin(first)}") if len(lesions) == 1 \
                    else ""
                self.selection.value = f"Selected {len(lesions)}: {shown}{more}{detail}"
        finally:
            self._updating = False

    # -- actions -----------------------------------------------------------------------------
    def _set(self, name: str, value: str) -> None:
        ids = self.session.selected_ids()
        if self._updating or value in (NONE, MIXED) or not ids:
            return
        self.session.edit(ids, **{name: value})

    def _set_state(self, state: str) -> None:
        ids = self.session.selected_ids()
        if ids:
            self.session.set_state(ids, state)

    def restore_selected(self) -> None:
        """Bring back the lesions picked in the rejected list."""
        chosen = [self._rejected[n] for n in self.rejected.value if n < len(self._rejected)]
        if chosen:
            self.session.restore(chosen)

    def step(self, direction: int) -> int | None:
        """Select and centre the next (+1) or previous (-1) lesion; returns its id."""
        ids = self.session.ordered_ids()
        if not ids:
            return None
        current = self.session.selected_ids()
        if not current:
            target = ids[0] if direction > 0 else ids[-1]
        else:
            position = ids.index(current[0]) if current[0] in ids else -1
            target = ids[(position + direction) % len(ids)]
        self.session.select([target])
        return target

    def _click_select(self, viewer: Any, event: Any):
        """A click (no drag) on a lesion's voxels selects it, unless adding or painting."""
        active = viewer.layers.selection.active
        if event.button != 1 or getattr(active, "mode", "pan_zoom") not in ("pan_zoom",
                                                                           "select"):
            return
        moved = False
        yield
        while event.type == "mouse_move":
            moved = True
            yield
        lesion_id = None if moved else self.session.lesion_at(event.position)
        if lesion_id is not None:
            self.session.select([lesion_id], center=False)

    def start_painting(self) -> None:
        """Make the lesion labels active, in paint mode, with a label no lesion uses."""
        pair = self._first_pair("labels")
        if pair is None:
            return
        labels = pair.labels
        labels.selected_label = int(max(labels.data.max(), max(pair.row_ids, default=0))) + 1
        labels.mode = "paint"
        self._viewer.layers.selection.active = labels
        self.session.prepare_adding(pair.uid)

    def start_clicking(self) -> None:
        """Make the lesion points active in add mode: a click adds the deposit under it."""
        pair = self._first_pair("points")
        if pair is not None:
            pair.points.mode = "add"
            self._viewer.layers.selection.active = pair.points
            self.session.prepare_adding(pair.uid)

    def _first_pair(self, what: str) -> Any:
        pairs = [p for p in self.session.layer_pairs() if getattr(p, what) is not None]
        if not pairs:
            from napari.utils.notifications import show_info

            show_info("Detect calcifications first: lesions are added to the result layers.")
            return None
        active = self._viewer.layers.selection.active
        return next((p for p in pairs if active in (p.image, p.points, p.labels)), pairs[0])


def _describe(lesion: Any) -> str:
    origin = lesion_origin(lesion)
    return (f"#{lesion.id} {lesion.layer} {lesion.region} {lesion.side}"
            f"{'' if origin == 'auto' else f' ({origin})'}")


def _edits(review: Any) -> str:
    info = review.effective.parameters.get("annotations", {})
    if not info:
        return ""
    return (f"\nReader: {info.get('rejected_lesions', 0)} rejected, "
            f"{info.get('edited_lesions', 0)} edited, {info.get('manual_lesions', 0)} added.")
