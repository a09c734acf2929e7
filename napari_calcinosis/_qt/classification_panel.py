"""Classification panel: the ranked differential with a score bar per conclusion, reasons
for and against (expandable), missing inputs that jump to the clinical form, the form and
the decision-support disclaimer. It follows the viewer's study session, so it updates when
detection finishes, when a mark or a lab changes and when the study changes.
"""

from typing import TYPE_CHECKING, Any

from magicgui.widgets import Container, Label, ProgressBar, PushButton

from napari_calcinosis.classify import DISCLAIMER, PART_TITLES, input_label
from napari_calcinosis.clinical import HISTORY_KEYS, LAB_NAMES

from .panels import find_panel
from .session import follow, get_session

if TYPE_CHECKING:
    import napari

CLINICAL_WIDGET = "Clinical input"
CLICKABLE = (*LAB_NAMES, *HISTORY_KEYS, "age", "sex")
SHOW, HIDE = "Reasons ▸", "Reasons ▾"


TEXT_WIDTH = 360
#: Width a row of missing-input buttons may take (they wrap to the next row beyond it).
MISSING_ROW_PX = TEXT_WIDTH - 60


def _set_text(label: Label, text: str) -> None:
    """Set a wrapped label's text and reserve its height (see :func:`_fit`)."""
    label.value = text
    _fit(label)


def _fit(label: Label) -> None:
    """Reserve the height a wrapped label needs: in a scroll area it is otherwise given less
    and clipped. Polished first, so that the viewer's (larger) font is measured."""
    native = label.native
    native.ensurePolished()
    width = min(native.width(), TEXT_WIDTH) if native.isVisible() else TEXT_WIDTH
    native.setMinimumHeight(native.heightForWidth(width) if label.value else 0)


def _wrapped(text: str = "", style: str = "") -> Label:
    label = Label(value=text)
    label.native.setWordWrap(True)
    # A wrapped label asks for little width; without a floor it wraps after a few words.
    label.native.setMinimumWidth(TEXT_WIDTH)
    if style:
        label.native.setStyleSheet(style)
    return label


class ConclusionView(Container):
    """One conclusion: rank and title, score bar, reasons (hidden until asked), missing."""

    def __init__(self, panel: "ClassificationPanel"):
        super().__init__(labels=False)
        self._panel = panel
        self.diagnosis: str | None = None
        self.title = _wrapped(style="font-weight: bold")
        self.bar = ProgressBar(min=0, max=100, value=0)
        self.note = _wrapped(style="color: #e8a33d")
        self.toggle = PushButton(text=SHOW)
        self.reasons = _wrapped()
        self.missing = Container(labels=False)
        self.details = Container(widgets=[self.reasons], labels=False)
        self.details.visible = False
        self.extend([self.title, self.bar, self.note, self.toggle, self.details,
                     self.missing])
        self.toggle.changed.connect(self._toggle)

    def show_conclusion(self, rank: int, conclusion: Any, expanded: bool) -> None:
        self.diagnosis = conclusion.diagnosis
        form = f", {conclusion.form}" if conclusion.form and conclusion.form != "none" else ""
        _set_text(self.title, f"{rank}. {conclusion.title}{form}")
        self.bar.value = int(round(100 * conclusion.score))
        self.bar.native.setFormat(f"score {conclusion.score:.2f}")
        _set_text(self.note, "Rests on the reader's override (automatic score "
                  f"{conclusion.automatic_score:.2f})." if conclusion.rests_on_override else "")
        self.note.visible = conclusion.rests_on_override
        _set_text(self.reasons, _reasons_text(conclusion))
        self._set_expanded(expanded)
        self._show_missing(conclusion.missing)

    def _show_missing(self, missing: list[str]) -> None:
        self.missing.clear()
        keys = [m for m in missing if m in CLICKABLE]
        if not keys:
            self.missing.visible = False
            return
        self.missing.visible = True
        self.missing.append(Label(value="Missing (click to fill in):"))
        row, used = None, 0
        for key in keys:
            button = PushButton(text=input_label(key))
            button.tooltip = f"Go to {input_label(key)} in the clinical form"
            button.changed.connect(lambda _=None, k=key: self._panel.jump_to(k))
            # measured with the panel's font: the buttons are not shown yet
            width = self.native.fontMetrics().horizontalAdvance(button.text) + 24
            if row is None or used + width > MISSING_ROW_PX:
                row, used = Container(layout="horizontal", labels=False), 0
                row.margins = (0, 0, 0, 0)
                self.missing.append(row)
            row.append(button)
            used += width + 6

    def missing_buttons(self) -> dict[str, PushButton]:
        """The clickable missing inputs shown, by their label."""
        rows = [w for w in self.missing if isinstance(w, Container)]
        return {button.text: button for row in rows for button in row}

    def _set_expanded(self, expanded: bool) -> None:
        self.details.visible = expanded
        if expanded:
            _fit(self.reasons)
        self.toggle.text = HIDE if expanded else SHOW

    def _toggle(self) -> None:
        expanded = not self.details.visible
        self._set_expanded(expanded)
        self._panel.remember(self.diagnosis, expanded)


def _reasons_text(conclusion: Any) -> str:
    lines = ["For:"] + [f"  + {s}" for s in conclusion.supporting] if conclusion.supporting \
        else ["For: nothing specific."]
    lines += ["Against:"] + [f"  – {s}" for s in conclusion.against] if conclusion.against \
        else ["Against: nothing found."]
    for title in PART_TITLES:
        text = conclusion.parts.get(title)
        if text:
            lines += ["", f"{title}: {text}"]
    return "\n".join(lines)


class ClassificationPanel(Container):
    """The ranked, explained differential of the current study."""

    def __init__(self, viewer: "napari.viewer.Viewer"):
        super().__init__(labels=False)
        self._viewer = viewer
        self.session = get_session(viewer)
        self._expanded: set[str] = set()
        self.heading = _wrapped(style="font-weight: bold")
        self.status = _wrapped()
        self.list = Container(labels=False)
        self.views: list[ConclusionView] = []
        self.disclaimer = _wrapped(DISCLAIMER, "color: #9a9a9a; font-style: italic")
        self.extend([self.heading, self.status, self.disclaimer])
        self._scroll = _scroll_area(self.list)
        self.native.layout().insertWidget(2, self._scroll, 1)
        self.min_width = TEXT_WIDTH + 40
        follow(self, self.session.changed, self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Show the session's current differential."""
        review = self.session.review
        differential = None if review is None else review.differential
        conclusions = [] if differential is None else list(differential)
        while len(self.views) < len(conclusions):
            view = ConclusionView(self)
            self.views.append(view)
            self.list.append(view)
        for rank, (view, conclusion) in enumerate(zip(self.views, conclusions), start=1):
            view.show_conclusion(rank, conclusion, conclusion.diagnosis in self._expanded)
            view.visible = True
        for view in self.views[len(conclusions):]:
            view.visible = False
        self.heading.value, self.status.value = _heading(review)
        if differential is not None:
            self.disclaimer.value = differential.disclaimer

    def remember(self, diagnosis: str | None, expanded: bool) -> None:
        if diagnosis is not None:
            (self._expanded.add if expanded else self._expanded.discard)(diagnosis)

    def jump_to(self, key: str) -> bool:
        """Open (or raise) the clinical form and put the cursor in the field of ``key``."""
        try:
            widget = find_panel(self._viewer, CLINICAL_WIDGET)  # the reading room's tab
        except (KeyError, ValueError, RuntimeError):
            return False
        return bool(widget.focus_field(key))


def _scroll_area(content: Container) -> Any:
    """A vertical scroll area around a container (napari docks a magicgui ``Container``'s
    inner widget, so ``scrollable=True`` would lose its scroll bars)."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QFrame, QScrollArea

    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(content.native)
    scroll.setMinimumWidth(TEXT_WIDTH + 20)
    return scroll


def _heading(review: Any) -> tuple[str, str]:
    if review is None:
        return "Differential", "Open a study with napari-calcinosis."
    summary = review.effective.summary
    if not review.runs:
        return "Differential", "Waiting for detection results."
    if not review.differential.conclusions:
        return "Differential", "No soft-tissue calcification: no differential."
    clinical = review.clinical()
    known = 0 if clinical is None else len(clinical.labs)
    heading = f"Form: {summary.form} (extent {summary.extent})"
    status = (f"{summary.lesion_count} soft-tissue lesions, symmetry {summary.symmetry.call}; "
              f"{known} of {len(LAB_NAMES)} labs known.")
    return heading, status
