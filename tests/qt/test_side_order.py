"""Left and right in one order: the distribution panel, the detection panel's summary and
every table of the exported report list the patient's left before the right."""

from __future__ import annotations

import re

import pytest
from qtpy.QtWidgets import QLabel
from review_helpers import dock, open_and_detect, write_small_study

from napari_calcinosis._qt import preferences, report_widget
from napari_calcinosis.annotations import DATA_DIR_ENV

pytestmark = pytest.mark.qt


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_small_study(tmp_path_factory.mktemp("sides") / "ct")


def _before(text: str, first: str, second: str) -> bool:
    return 0 <= text.index(first) < text.index(second)


def test_panels_and_report_list_left_before_right(make_napari_viewer, qtbot, study, tmp_path,
                                                 monkeypatch):
    monkeypatch.setitem(preferences._state, "enabled", False)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.setattr(report_widget, "_LAST", {})
    viewer = make_napari_viewer()
    viewer.open(study, plugin="napari-calcinosis")
    session = open_and_detect(viewer, qtbot, None)
    sides = {les.side for les in session.review.effective.lesions if les.is_soft_tissue}
    assert {"left", "right"} <= sides  # the generalized phantom: both sides
    # the distribution panel's header, and the detection panel's summary
    panel = dock(viewer, "Distribution and symmetry")
    header = [label.text() for label in panel.table.native.findChildren(QLabel)][:5]
    assert header[1].startswith("Left") and header[2].startswith("Right"), header
    summary = dock(viewer, "Calcinosis detection").summary.value
    (by_side,) = [line for line in summary.splitlines() if line.startswith("By side:")]
    assert _before(by_side, "left", "right"), by_side
    # the report, exported from its panel: every table with both sides has left first
    report = dock(viewer, "Report")
    for name, box in report.format_boxes.items():
        if box.enabled:
            box.value = name == "html"
    report.folder.value = tmp_path / "out"
    report.export_button.clicked.emit()
    qtbot.waitUntil(lambda: not report.is_running, timeout=60_000)
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    heads = re.findall(r"<tr>((?:<th>[^<]*</th>)+)</tr>", html)
    with_sides = [h for h in heads if "Left" in h and "Right" in h]
    assert with_sides, heads  # the symmetry table
    for head in with_sides:
        assert _before(head, "Left", "Right"), head
    assert "L left, R right" in html  # the region x layer table's legend, cells "2 L, 1 R"
