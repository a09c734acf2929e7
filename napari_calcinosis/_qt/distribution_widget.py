"""Distribution and symmetry: regions x sides with counts and burden, the automatic symmetry
index and call per region and overall, and the reader's calls beside them.

Each call has a combo box whose first entry is ``auto``; choosing another value stores the
reader's override (saved at once), shown in bold amber, and the automatic value stays
visible in the column beside it. When the reader's extent makes the form follow (a
localized extent gives circumscripta), the automatic column shows the change
(``universalis → circumscripta``) and the form's combo box the value in effect.
"""

import textwrap
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, Label

from napari_calcinosis.types.findings import EXTENTS, FORMS, SYMMETRY_CALLS

from .session import follow, get_session

if TYPE_CHECKING:
    import napari

AUTO = "auto"
OVERRIDE_STYLE = "font-weight: bold; color: #e8a33d"
_WIDTHS = (96, 58, 58, 80, 96)
_HEADER = ("Region", "Left\nn, mm³", "Right\nn, mm³", "Automatic\n(index)", "Reader's\ncall")
_OVERALL_WIDTHS = (96, 164, 112)
_SPACING = 4
_TEXT_CHARS = 54  # characters per line of the panel's text
_OVERALL = {"symmetry_call": ("Symmetry call", SYMMETRY_CALLS),
            "extent": ("Extent", EXTENTS), "form": ("Form", FORMS)}


def _cell(text: str, width: int, *, bold: bool = False) -> Label:
    # Line breaks are put in the text (:func:`_lines`), not left to word wrap: a row
    # gives a word-wrapped label one line and clips the rest.
    label = Label(value=text)
    label.native.setFixedWidth(width)
    if bold:
        label.native.setStyleSheet("font-weight: bold")
    return label


def _lines(text: str, chars: int = 12) -> str:
    """``text`` broken into lines of about ``chars`` characters, at spaces."""
    return textwrap.fill(text, chars, break_long_words=False)


def _row(cells: list) -> Container:
    row = Container(widgets=cells, layout="horizontal", labels=False)
    row.margins = (0, 0, 0, 0)
    row.native.layout().setSpacing(_SPACING)
    row.native.layout().addStretch(1)  # fixed-width cells stay aligned at the left
    return row


class DistributionWidget(Container):
    """The region table and overall calls with the reader's overrides."""

    def __init__(self, viewer: "napari.viewer.Viewer"):
        super().__init__(labels=False)
        self.session = get_session(viewer)
        self._updating = False
        self.title = Label(value="")
        self.table = Container(labels=False)
        self.index = Label(value="")
        self.overall = Container(labels=False)
        self.table.margins = self.overall.margins = (0, 0, 0, 0)
        self.margins = (4, 4, 4, 4)
        # Lines broken here, not by word wrap: a word-wrapped label makes Qt size the panel
        # by height-for-width, which squeezed the rows of the table below their height.
        self.note = Label(value=_lines(
            "Left, right: number of lesions (n) and their volume in mm³ on each side. "
            "Per-region call: symmetric when the symmetry index is ≥ 0.7 with at least two "
            "lateral deposits; midline deposits are not paired. Bold amber: the reader's "
            "call (the automatic one stays beside).", _TEXT_CHARS))
        self.extend([self.title, self.table, self.index, self.overall, self.note])
        self.region_combos: dict[str, ComboBox] = {}
        self._region_cells: dict[str, list[Label]] = {}
        self.overall_combos: dict[str, ComboBox] = {}
        self._overall_cells: dict[str, list[Label]] = {}
        self._build_overall()
        follow(self, self.session.changed, self.refresh)
        self.refresh()

    # -- building ----------------------------------------------------------------------------
    def reset_choices(self, *_: Any) -> None:
        """Choices here are fixed; napari's reset on every layer change must not re-emit
        the current values (that would store them again as the reader's)."""

    def _combo(self, values: tuple[str, ...], width: int, on_change) -> ComboBox:
        combo = ComboBox(choices=[AUTO, *values], value=AUTO)
        combo.native.setFixedWidth(width)
        combo.changed.connect(lambda v: None if self._updating else on_change(v))
        return combo

    def _build_overall(self) -> None:
        self.overall.append(_row([_cell(t, w, bold=True) for t, w in
                                  zip(("Overall", "Automatic", "Reader's\ncall"),
                                      _OVERALL_WIDTHS)]))
        for name, (title, values) in _OVERALL.items():
            combo = self._combo(values, _OVERALL_WIDTHS[2],
                                lambda v, n=name: self._overall_changed(n, v))
            cells = [_cell(title, _OVERALL_WIDTHS[0]), _cell("", _OVERALL_WIDTHS[1])]
            self.overall_combos[name], self._overall_cells[name] = combo, cells
            self.overall.append(_row([*cells, combo]))

    def _build_regions(self, regions: list[str]) -> None:
        self.table.clear()
        self.region_combos, self._region_cells = {}, {}
        self.table.append(_row([_cell(t, w, bold=True) for t, w in zip(_HEADER, _WIDTHS)]))
        for region in regions:
            combo = self._combo(SYMMETRY_CALLS, _WIDTHS[4],
                                lambda v, r=region: self._region_changed(r, v))
            cells = [_cell("", w) for w in _WIDTHS[:4]]
            self.region_combos[region], self._region_cells[region] = combo, cells
            self.table.append(_row([*cells, combo]))

    # -- showing -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Show the session's effective findings (rows rebuilt only when regions change)."""
        review = self.session.review
        has_runs = review is not None and bool(review.runs)
        self.table.visible = self.overall.visible = has_runs
        if not has_runs:
            self.title.value = "No detection results for the current study yet."
            self.index.value = ""
            return
        rows = review.region_rows()
        if [r.region for r in rows] != list(self.region_combos):
            self._build_regions([r.region for r in rows])
        summary = review.effective.summary
        self.title.value = _lines(f"{summary.lesion_count} soft-tissue lesions in "
                                  f"{len(rows)} regions (from the {summary.source})",
                                  _TEXT_CHARS)
        self._updating = True
        try:
            for row in rows:
                mid = f" +{row.midline_count} mid" if row.midline_count else ""
                index = "" if row.index is None else f"\n({row.index:.2f})"
                texts = (_lines(row.region.replace("_", " ") + mid),
                         f"{row.left_count}, {row.left_burden:.0f}",
                         f"{row.right_count}, {row.right_burden:.0f}",
                         row.auto_call + index)
                for cell, text in zip(self._region_cells[row.region], texts):
                    cell.value = text
                self._show_call(self.region_combos[row.region], row.reader_call)
            for item in review.overall_rows():
                follows = item.reader is None and item.value != item.auto  # form follows extent
                self._overall_cells[item.name][1].value = \
                    f"{item.auto} →\n{item.value}" if follows else item.auto
                self._show_call(self.overall_combos[item.name], item.reader,
                                shown=item.value if follows else None)
        finally:
            self._updating = False
        sym = summary.symmetry
        index = "n/a" if sym.index is None else f"{sym.index:.2f}"
        matched = "" if sym.matched_fraction is None else \
            f"; lesions with a mirrored partner {100 * sym.matched_fraction:.0f}%"
        self.index.value = _lines(f"Overall symmetry index {index}{matched}", _TEXT_CHARS)

    @staticmethod
    def _show_call(combo: ComboBox, reader: str | None, *, shown: str | None = None) -> None:
        """The reader's call, else ``auto`` (or ``auto → <shown>`` when what is in effect
        is not the automatic call: the form that follows the reader's extent)."""
        combo.native.setItemText(0, AUTO if shown is None else f"{AUTO} → {shown}")
        combo.value = reader or AUTO
        combo.native.setStyleSheet(OVERRIDE_STYLE if reader else "")

    def _region_changed(self, region: str, value: str) -> None:
        self.session.override_region(region, None if value == AUTO else value)

    def _overall_changed(self, name: str, value: str) -> None:
        self.session.override_summary(name, None if value == AUTO else value)
