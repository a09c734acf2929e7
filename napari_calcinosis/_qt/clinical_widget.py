"""Clinical input: age, sex, the seven labs with units and optional ranges, and the history.

Every field starts unknown (an empty value, ``unknown`` in a choice) and unknown is never
read as normal. Each change is stored in the study's annotation record at once (and the
differential follows); a lab out of its range is flagged as you type. A clinical file in
the contract's format can be loaded and saved.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, Label, LineEdit, PushButton
from napari.utils.notifications import show_error, show_info

from napari_calcinosis._napari.messages import toast_text
from napari_calcinosis.classify import HISTORY_LABELS, LAB_LABELS
from napari_calcinosis.clinical import (
    CONNECTIVE_TISSUE_DISEASES,
    HISTORY_FLAGS,
    LAB_NAMES,
    load_clinical,
    parse_clinical,
)
from napari_calcinosis.files import atomic_write_text
from napari_calcinosis.review import (
    TRI_STATE,
    FormFields,
    LabFields,
    convert_typed,
    display_units,
    document_from_fields,
    fields_from_clinical,
    lab_flag,
)
from napari_calcinosis.types import CalcinosisError

from .session import follow, get_session

if TYPE_CHECKING:
    import napari

UNKNOWN = "unknown"
FLAG_STYLES = {"high": "color: #ff5c5c; font-weight: bold",
               "low": "color: #ffa53d; font-weight: bold",
               "normal": "color: #5cc46a", "unknown": "color: #9a9a9a",
               "error": "color: #ff5c5c"}
HIGHLIGHT = "border: 2px solid #ffd500"


def _sized(widget: Any, width: int, placeholder: str = "") -> Any:
    widget.native.setFixedWidth(width)
    if placeholder:
        widget.native.setPlaceholderText(placeholder)
    return widget


def _row(widgets: list) -> Container:
    row = Container(widgets=widgets, layout="horizontal", labels=False)
    row.margins = (0, 0, 0, 0)
    row.native.layout().addStretch(1)  # keep fixed-width cells at the left, aligned
    return row


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _heading(text: str) -> Label:
    label = Label(value=text)
    label.native.setStyleSheet("font-weight: bold")
    return label


class LabRow(Container):
    """One lab: value, unit, the lab's own low/high limits and the status flag."""

    def __init__(self, name: str):
        super().__init__(layout="horizontal", labels=False)
        self.name = name
        self.title = _sized(Label(value=LAB_LABELS[name]), 78)
        self.value = _sized(LineEdit(), 46, "value")
        self.unit = _sized(ComboBox(choices=display_units(name)), 88)
        self.unit.native.setToolTip("Unit: changing it converts the typed numbers")
        self.lower = _sized(LineEdit(), 38, "low")
        self.upper = _sized(LineEdit(), 38, "high")
        for field in (self.lower, self.upper):
            field.native.setToolTip("The lab's own reference range (empty: the usual one)")
        self.flag = _sized(Label(value="unknown"), 90)
        self.flag.native.setWordWrap(True)  # "normal" over its range: two short lines
        self.extend([self.title, self.value, self.unit, self.lower, self.upper, self.flag])
        self.margins = (0, 0, 0, 0)
        self.native.layout().setSpacing(4)
        self.native.layout().addStretch(1)
        self._unit = self.unit.value
        self._showing = False
        self.unit.changed.connect(self._unit_changed)

    def _unit_changed(self, unit: str) -> None:
        """A new unit carries the typed numbers over (10.9 mg/dL -> 2.72 mmol/L): the
        number is never reinterpreted in the new unit."""
        old, self._unit = self._unit, unit
        if self._showing or old == unit:
            return
        for field in (self.value, self.lower, self.upper):
            field.value = convert_typed(self.name, field.value, old, unit)

    def fields(self) -> LabFields:
        return LabFields(self.value.value, self.unit.value, self.lower.value, self.upper.value)

    def show(self, fields: LabFields) -> None:
        self._showing = True  # a record's values come with their own unit
        try:
            self.value.value, self.lower.value, self.upper.value = (
                fields.value, fields.lower, fields.upper)
            if fields.unit in self.unit.choices:
                self.unit.value = fields.unit
        finally:
            self._showing = False


class ClinicalWidget(Container):
    """The clinical form of the current study (see the module docstring)."""

    def __init__(self, viewer: "napari.viewer.Viewer"):
        super().__init__(labels=False)
        self.session = get_session(viewer)
        self._updating = False
        self._shown_study: Any = object()
        self.focused_key: str | None = None
        self.age = _sized(LineEdit(), 58, "unknown")
        self.sex = _sized(ComboBox(choices=[UNKNOWN, "M", "F"]), 122)
        self.labs = {name: LabRow(name) for name in LAB_NAMES}
        self.history = {"connective_tissue_disease": ComboBox(
            choices=[UNKNOWN, *CONNECTIVE_TISSUE_DISEASES])}
        self.history.update({key: ComboBox(choices=list(TRI_STATE)) for key in HISTORY_FLAGS})
        self.message = Label(value="")
        self.message.native.setWordWrap(True)
        self.message.native.setMinimumWidth(240)
        self.load_button = PushButton(text="Load clinical file…")
        self.save_button = PushButton(text="Save clinical file…")
        self.clear_button = PushButton(text="Clear")
        self.extend([
            _row([_sized(Label(value="Age (years)"), 92), self.age,
                  _sized(Label(value="Sex"), 44), self.sex]),
            _heading("Labs (empty = unknown)"),
            *self.labs.values(),
            _heading("History (unknown until answered)"),
            *[_row([_sized(Label(value=_first_upper(HISTORY_LABELS[key])), 190),
                    _sized(combo, 160)]) for key, combo in self.history.items()],
            self.message,
            Container(widgets=[self.load_button, self.save_button, self.clear_button],
                      layout="horizontal")])
        for widget in self._inputs():
            widget.changed.connect(self._edited)
        self.load_button.changed.connect(self._choose_load)
        self.save_button.changed.connect(self._choose_save)
        self.clear_button.changed.connect(self.clear)
        follow(self, self.session.changed, self._study_maybe_changed)
        self._study_maybe_changed()

    def reset_choices(self, *_: Any) -> None:
        """Choices here are fixed; napari's reset on every layer change must not re-emit
        the current values (that would store them again as the reader's)."""

    def _inputs(self) -> list[Any]:
        rows = [w for row in self.labs.values()
                for w in (row.value, row.unit, row.lower, row.upper)]
        return [self.age, self.sex, *rows, *self.history.values()]

    # -- form <-> record ---------------------------------------------------------------------
    def form_fields(self) -> FormFields:
        """What the form holds, as typed."""
        return FormFields(self.age.value, self.sex.value,
                          {name: row.fields() for name, row in self.labs.items()},
                          {key: combo.value for key, combo in self.history.items()})

    def _edited(self, *_: Any) -> None:
        if self._updating:
            return
        doc, errors = document_from_fields(self.form_fields())
        try:
            clinical = parse_clinical(doc)
        except CalcinosisError as exc:
            self._flag(None, errors, str(exc))
            return
        self._flag(clinical, errors, "")
        if self.session.review is not None:
            self.session.set_clinical(clinical if doc else None)

    def _flag(self, clinical: Any, errors: dict[str, str], message: str) -> None:
        for name, row in self.labs.items():
            status, text = lab_flag(clinical, name, row.unit.value)
            if name in errors or f"{name}.lower" in errors or f"{name}.upper" in errors:
                status, text = "error", "not a number"
            row.flag.value = text
            row.flag.native.setStyleSheet(FLAG_STYLES[status])
        self.age.native.setStyleSheet(FLAG_STYLES["error"] if "age" in errors else "")
        self.message.value = message
        self.message.native.setStyleSheet(FLAG_STYLES["error"] if message else "")

    def show_clinical(self, clinical: Any) -> None:
        """Fill the form from a clinical input (``None``: all unknown)."""
        units = {name: row.unit.value for name, row in self.labs.items()}
        form = fields_from_clinical(clinical, units)
        self._updating = True
        try:
            self.age.value, self.sex.value = form.age, form.sex
            for name, row in self.labs.items():
                row.show(form.labs[name])
            for key, combo in self.history.items():
                combo.value = form.history.get(key, UNKNOWN)
        finally:
            self._updating = False
        self._flag(clinical, {}, "")

    def set_clinical(self, clinical: Any) -> None:
        """Show ``clinical`` (a ``ClinicalInput``, e.g. from ``view --clinical FILE``) in
        the form and store it as the study's clinical input: the differential follows."""
        self.show_clinical(clinical)
        if self.session.review is not None:
            self.session.set_clinical(clinical)

    def _study_maybe_changed(self) -> None:
        review = self.session.review
        study = None if review is None else review.study_instance_uid
        if study != self._shown_study:
            self._shown_study = study
            self.show_clinical(None if review is None else review.clinical())
        self.enabled = review is not None

    # -- files -------------------------------------------------------------------------------
    def load_file(self, path: str | Path) -> bool:
        """Read a clinical file into the form and the record; False (and a message) if bad."""
        try:
            clinical = load_clinical(path)
        except CalcinosisError as exc:
            show_error(toast_text(str(exc)))
            return False
        self.show_clinical(clinical)
        self.session.set_clinical(clinical)
        return True

    def save_file(self, path: str | Path) -> bool:
        """Write the form's clinical input as a contract clinical file."""
        doc, errors = document_from_fields(self.form_fields())
        try:
            parse_clinical(doc)
            atomic_write_text(Path(path), json.dumps(doc, indent=2) + "\n")
        except (CalcinosisError, OSError) as exc:
            show_error(f"Cannot save the clinical file {path}: {exc}")
            return False
        if errors:
            show_info(f"Saved without the unreadable fields: {', '.join(errors)}.")
        return True

    def clear(self) -> None:
        """Every field back to unknown."""
        self.show_clinical(None)
        self.session.set_clinical(None)

    def _choose_load(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self.native, "Load clinical file", "",
                                              "JSON (*.json)")
        if path:
            self.load_file(path)

    def _choose_save(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self.native, "Save clinical file",
                                              "clinical.json", "JSON (*.json)")
        if path:
            self.save_file(path)

    # -- jumping here from the classification panel ------------------------------------------
    def field_widget(self, key: str) -> Any:
        """The input for a clinical key (``age``, ``sex``, a lab or a history item)."""
        if key in self.labs:
            return self.labs[key].value
        return {"age": self.age, "sex": self.sex, **self.history}.get(key)

    def focus_field(self, key: str) -> bool:
        """Give the input of ``key`` the keyboard focus and highlight it."""
        widget = self.field_widget(key)
        if widget is None:
            return False
        from qtpy.QtCore import QTimer
        from qtpy.QtWidgets import QScrollArea

        native = widget.native
        parent = native.parentWidget()
        while parent is not None and not isinstance(parent, QScrollArea):
            parent = parent.parentWidget()
        if parent is not None:
            parent.ensureWidgetVisible(native)
        native.setFocus()
        native.setStyleSheet(HIGHLIGHT)
        timer = QTimer(native)  # a child: it dies with the field, never fires on a dead one
        timer.setSingleShot(True)
        timer.timeout.connect(lambda: native.setStyleSheet(""))
        timer.start(2500)
        self.focused_key = key
        return True
