"""Lesion review, distribution table and clinical form driven in a real viewer.

What a person sees is checked on the layers: points and label voxels of rejected lesions go
away, colours follow the reader's tissue layer, added lesions appear as squares, the
summary and the table follow every change, and labs are flagged as they are typed.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from napari.utils.colormaps.standardize_color import transform_color
from qtpy.QtCore import Qt
from review_helpers import (
    SEED_HISTORY,
    SEED_LABS,
    dock,
    empty_body_voxel,
    key_click,
    open_and_detect,
    result_layer,
    write_small_study,
)

from napari_calcinosis._qt import preferences
from napari_calcinosis._qt import session as session_module
from napari_calcinosis._qt.result_layers import LAYER_COLORS, camera
from napari_calcinosis.annotations import DATA_DIR_ENV

pytestmark = pytest.mark.qt


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_small_study(tmp_path_factory.mktemp("widgets") / "ct")


@pytest.fixture
def viewer_session(make_napari_viewer, qtbot, study, monkeypatch, tmp_path):
    monkeypatch.setitem(preferences._state, "enabled", False)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    viewer = make_napari_viewer(show=True)
    return viewer, open_and_detect(viewer, qtbot, study)


def _rows(points, lesion_id):
    return np.flatnonzero(points.features["id"].to_numpy() == lesion_id)


def test_select_mark_reject_restore(viewer_session):
    viewer, session = viewer_session
    panel = dock(viewer, "Lesion review")
    points, labels = result_layer(viewer, "lesion_points"), result_layer(viewer, "lesion_labels")
    soft = [les.id for les in session.review.effective.lesions if les.is_soft_tissue]
    points.selected_data = {int(_rows(points, i)[0]) for i in soft[:3]}  # a box selection
    assert panel.selection.value.startswith("Selected 3:")
    panel.layer.value = "muscle"
    muscle = transform_color(LAYER_COLORS["muscle"])[0]
    for lesion_id in soft[:3]:
        np.testing.assert_allclose(points.border_color[_rows(points, lesion_id)[0]], muscle)
        np.testing.assert_allclose(labels.colormap.map(np.array([lesion_id]))[0], muscle)
    assert "muscle 3" in panel.summary.value
    assert set(points.selected_data) == {int(_rows(points, i)[0]) for i in soft[:3]}
    # an edited automatic lesion stays automatic to the eye: its origin is not "manual"
    assert points.features["source"][_rows(points, soft[0])[0]] == "auto, edited"
    points.selected_data = {int(_rows(points, soft[0])[0])}
    assert panel.selection.value.endswith("auto, edited")

    points.selected_data = {int(_rows(points, soft[3])[0])}
    panel.reject_button.clicked.emit()
    assert _rows(points, soft[3]).size == 0 and not np.any(labels.data == soft[3])
    assert "1 rejected" in panel.summary.value
    assert [c for c in panel.rejected.choices] == [0]
    panel.rejected.value = [0]
    panel.restore_button.clicked.emit()
    assert _rows(points, soft[3]).size == 1 and np.any(labels.data == soft[3])

    points.selected_data = {int(_rows(points, soft[5])[0])}  # Delete in the points layer
    points.remove_selected()
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()
    assert [les.id for les in session.review.rejected] == [soft[5]]
    assert not np.any(labels.data == soft[5])
    # the detection panel describes the findings as reviewed, not as first detected
    detection = dock(viewer, "Calcinosis detection")
    (run,) = session.review.runs.values()
    assert f"After the reader's review: {len(run.result.lesions) - 1}." in \
        detection.status.value
    count = session.review.effective.summary.lesion_count
    assert count == run.result.summary.lesion_count - 1
    assert f"Soft-tissue lesions: {count} " in detection.summary.value

    # a click (press and release, no drag) on a lesion's voxels selects it
    assert panel._click_select in viewer.mouse_drag_callbacks
    voxel = np.argwhere(labels.data == soft[6])[0]
    world = np.asarray(labels.data_to_world(voxel))
    viewer.dims.set_point(0, world[0])  # the click happens on the slice shown
    event = SimpleNamespace(button=1, type="mouse_press", position=world)
    clicks = panel._click_select(viewer, event)
    next(clicks)
    event.type = "mouse_release"
    with pytest.raises(StopIteration):
        next(clicks)
    assert session.selected_ids() == [soft[6]] and f"#{soft[6]}" in panel.selection.value


def test_add_by_click_and_paint_and_step_with_keys(viewer_session, qtbot, monkeypatch):
    viewer, session = viewer_session
    panel = dock(viewer, "Lesion review")
    points, labels = result_layer(viewer, "lesion_points"), result_layer(viewer, "lesion_labels")
    count = len(points.data)
    (run,) = session.review.runs.values()
    deposit = next(les for les in run.result.lesions if les.is_soft_tissue)
    session.set_state([deposit.id], "rejected")  # the reader removes it, then clicks it again
    panel.click_button.clicked.emit()
    assert points.mode == "add" and viewer.layers.selection.active is points
    uid = next(iter(session.review.runs))
    qtbot.waitUntil(lambda: session.review.measuring_ready(uid), timeout=20_000)  # in a thread
    points.add(np.asarray(deposit.centroid_index) + [0, 1, 0])
    qtbot.waitUntil(lambda: len(session.review.record.manual_lesions) == 1, timeout=5000)
    added = next(les for les in session.review.effective.lesions if les.source == "manual")
    assert added.volume_mm3 == deposit.volume_mm3 and added.layer == deposit.layer
    row = _rows(points, added.id)[0]
    assert len(points.data) == count and points.symbol[row].value == "square"
    assert np.sum(labels.data == added.id) == deposit.extra["n_voxels"]

    panel.paint_button.clicked.emit()
    labels.brush_size = 3
    new_label = labels.selected_label
    labels.paint(empty_body_voxel(session), new_label)
    qtbot.waitUntil(lambda: len(session.review.record.manual_lesions) == 2, timeout=5000)
    painted = session.review.lesion(new_label)
    assert painted is not None and painted.extra["n_voxels"] == np.sum(labels.data == new_label)
    labels.paint(empty_body_voxel(session), 0)  # erased again: the lesion is gone
    qtbot.waitUntil(lambda: len(session.review.record.manual_lesions) == 1, timeout=5000)

    # a stroke in the air beside the patient is refused with a sentence, and undone
    errors: list[str] = []
    monkeypatch.setattr(session_module, "show_error", errors.append)
    air = np.array([labels.data.shape[0] // 2, 1, 1])
    assert run.volume.hu[tuple(air)] < -900
    labels.paint(air, labels.selected_label)
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert "outside the body" in errors[0] and errors[0].endswith("it was not added.")
    assert len(session.review.record.manual_lesions) == 1 and labels.data[tuple(air)] == 0
    # and a click inside the spine's bone
    bone = np.argwhere(run.volume.hu[air[0]] > 600)
    spine = np.array([air[0], *bone[len(bone) // 2]])
    points.add(points.world_to_data(labels.data_to_world(spine)))
    qtbot.waitUntil(lambda: len(errors) == 2, timeout=5000)
    assert "inside bone" in errors[1] and len(session.review.record.manual_lesions) == 1
    assert len(points.data) == count

    viewer.layers.selection.active = points
    points.mode = "pan_zoom"
    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    ids = session.ordered_ids()
    points.selected_data = set()
    key_click(qtbot, canvas, Qt.Key.Key_N)
    assert session.selected_ids() == [ids[0]]
    key_click(qtbot, canvas, Qt.Key.Key_N)
    assert session.selected_ids() == [ids[1]]
    key_click(qtbot, canvas, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)
    assert session.selected_ids() == [ids[0]]
    centre = np.asarray(camera(viewer).center)[-2:]
    np.testing.assert_allclose(centre, points.data_to_world(points.data[_rows(points,
                                                                                ids[0])[0]])[-2:])


def test_distribution_overrides_and_clinical_form(viewer_session, tmp_path):
    viewer, session = viewer_session
    table, form = dock(viewer, "Distribution and symmetry"), dock(viewer, "Clinical input")
    rows = session.review.region_rows()
    assert list(table.region_combos) == [r.region for r in rows]
    region = rows[0].region
    table.region_combos[region].value = "asymmetric"
    assert session.review.record.region_symmetry_overrides[region].value == "asymmetric"
    # the automatic call stays beside the reader's, in the column before the combo box
    assert table.region_combos[region].native.itemText(0) == "auto"
    assert table._region_cells[region][3].value.startswith(rows[0].auto_call)
    table.overall_combos["extent"].value = "localized"
    assert session.review.effective.summary.form == "circumscripta"
    assert "universalis →\ncircumscripta" in table._overall_cells["form"][1].value
    # the form's box shows what is in effect, never "auto (universalis)" meanwhile
    form_box = table.overall_combos["form"].native
    assert form_box.currentText() == "auto → circumscripta"
    assert "universalis" not in form_box.currentText()
    table.overall_combos["extent"].value = "auto"
    assert session.review.effective.summary.form == "universalis"
    assert form_box.currentText() == "auto"

    row = form.labs["calcium"]
    row.unit.value = "mmol/L"
    row.value.value = "2.9"
    assert row.flag.value == "high (2.12–2.54)" and "bold" in row.flag.native.styleSheet()
    row.value.value = "2.3"
    assert row.flag.value.startswith("normal")
    form.labs["pth"].value.value = "4o"
    assert form.labs["pth"].flag.value == "not a number"
    assert session.review.record.clinical["labs"] == {"calcium": {"value": 2.3,
                                                                  "unit": "mmol/L"}}
    path = tmp_path / "clinical.json"
    path.write_text(json.dumps({"age": 70, "sex": "F", "labs": SEED_LABS,
                                "history": SEED_HISTORY}))
    assert form.load_file(path)
    assert form.labs["ck"].value.value == "120" and form.labs["ck"].upper.value == "200"
    assert form.history["dialysis"].value == "no" and form.sex.value == "F"
    assert session.review.clinical().labs["phosphate"].unit == "mmol/L"
    form.history["dialysis"].value = "yes"
    out = tmp_path / "saved.json"
    assert form.save_file(out)
    saved = json.loads(out.read_text())
    assert saved["history"]["dialysis"] is True and saved["labs"] == SEED_LABS
    bad = tmp_path / "bad.json"
    bad.write_text('{"labs": {"calcium": {"value": 2, "unit": "mmol"}}}')
    assert not form.load_file(bad)  # an error notification, the form unchanged
    assert form.labs["ck"].value.value == "120"
