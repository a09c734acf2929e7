"""Radiographs in a real viewer: detection when one opens, overlays on the radiograph's own
geometry with its lesion table, the review (reject, mark) on radiograph points, and the
Report panel's findings.json equal to ``napari-calcinosis analyze`` for a CT + radiograph
study."""

from __future__ import annotations

import json

import numpy as np
import pytest
from review_helpers import dock

from napari_calcinosis import cli
from napari_calcinosis._qt import autodetect, preferences, report_widget
from napari_calcinosis._qt.detection_widget import DetectionWidget
from napari_calcinosis._qt.result_layers import (
    XRAY_FEATURE_COLUMNS,
    is_radiograph_layer,
    overlay_color,
)
from napari_calcinosis._qt.session import get_session
from napari_calcinosis.annotations import DATA_DIR_ENV
from napari_calcinosis.phantom import PhantomSpec, make_ct_phantom, write_study
from napari_calcinosis.types.findings import LAYER_COLORS
from napari_calcinosis.xray import XrayResult

pytestmark = pytest.mark.qt
PLUGIN = "napari-calcinosis"
# A short generalized torso (41 slices of 230², a 401 x 917 frontal radiograph): the
# radiograph shows several deposits at the shoulders and the chest wall.
SPEC = PhantomSpec(scenario="generalized", seed=3, pixel_spacing_mm=2.0, fov_mm=460.0,
                   slice_thickness_mm=5.0, z_range_mm=(300.0, 500.0))
COMPARED = ("study", "series", "lesions", "summary", "differential", "warnings", "parameters")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = write_study(make_ct_phantom(SPEC), tmp_path_factory.mktemp("xray") / "study",
                         xray_views=("frontal",), patient_name="PHANTOM^XRAY")
    # A file the loader reports (the phantom's own truth.json is not): the study's warning.
    (folder / "notes.txt").write_text("not DICOM", encoding="utf-8")
    return folder


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.setattr(report_widget, "_LAST", {})
    monkeypatch.chdir(tmp_path)
    errors: list[str] = []
    monkeypatch.setattr(report_widget, "show_error", errors.append)
    return errors


@pytest.fixture
def autodetect_on(monkeypatch):
    monkeypatch.delenv(preferences.ENV_VAR, raising=False)
    monkeypatch.setitem(preferences._state, "enabled", None)


@pytest.fixture
def autodetect_off(monkeypatch):
    monkeypatch.setitem(preferences._state, "enabled", False)


def _overlay(viewer, image, kind: str):
    uid = image.metadata["calcinosis"]["series_instance_uid"]
    found = [layer for layer in viewer.layers
             if layer.metadata.get("calcinosis", {}).get("kind") == kind
             and layer.metadata["calcinosis"].get("series_instance_uid") == uid]
    return found[0] if len(found) == 1 else None


def _panel(viewer) -> DetectionWidget:
    return dock(viewer, autodetect.DETECTION_WIDGET)


def _detected(viewer, *images) -> bool:
    session = get_session(viewer)
    return all(session.result_of(image) is not None and _overlay(viewer, image, "lesion_points")
               is not None for image in images)


def _rgba(color):
    from napari.utils.colormaps.standardize_color import transform_color

    return transform_color(color)[0]


def test_opening_a_study_detects_on_its_radiograph(make_napari_viewer, qtbot, study,
                                                   autodetect_on):
    viewer = make_napari_viewer(show=True)
    viewer.open(study, plugin=PLUGIN)
    ct, xray = viewer.layers
    assert is_radiograph_layer(xray) and not xray.visible  # no shared frame with the CT
    # the reader returned at once; detection comes later
    assert get_session(viewer).result_of(xray) is None
    qtbot.waitUntil(lambda: _detected(viewer, ct, xray), timeout=120_000)
    panel = _panel(viewer)
    qtbot.waitUntil(lambda: not panel.is_running, timeout=60_000)
    result = get_session(viewer).result_of(xray)
    assert isinstance(result, XrayResult) and result.lesions, "no dot on the radiograph"
    _check_view_after_detection(viewer, panel, ct, xray)

    points, labels = (_overlay(viewer, xray, k) for k in ("lesion_points", "lesion_labels"))
    assert np.any(np.asarray(xray.translate) != 0)  # centred on the CT by the reader
    for layer in (points, labels):
        assert layer.ndim == 2
        np.testing.assert_allclose(layer.scale, xray.scale)
        np.testing.assert_allclose(layer.translate, xray.translate)
        assert not layer.visible  # hidden with the radiograph
    np.testing.assert_array_equal(labels.data, result.lesion_labels)

    review = get_session(viewer).review
    uid = xray.metadata["calcinosis"]["series_instance_uid"]
    ct_ids = [les.id for les in get_session(viewer).result_of(ct).lesions]
    offset = review.runs[uid].id_offset
    assert offset == max(ct_ids, default=0)  # radiograph ids follow the CT's
    table = points.features
    assert tuple(table.columns) == XRAY_FEATURE_COLUMNS
    assert table["id"].tolist() == [les.id + offset for les in result.lesions]
    for row, lesion in enumerate(result.lesions):
        assert table["area_mm2"][row] == pytest.approx(lesion.area_mm2)
        assert table["contrast"][row] == pytest.approx(lesion.extra["contrast"], abs=1e-4)
        assert bool(table["tangential"][row]) == lesion.extra["tangential"]
        assert table["layer"][row] == lesion.layer
        # the point lies on the lesion's pixels, in the world the radiograph is shown in
        np.testing.assert_allclose(points.data_to_world(points.data[row]),
                                   xray.data_to_world(lesion.centroid_index), atol=1e-6)
        colour = _rgba(overlay_color(lesion.layer, radiograph=True))  # unknown: not white
        np.testing.assert_allclose(points.border_color[row], colour)
        np.testing.assert_allclose(labels.colormap.map(lesion.id), colour, atol=0.01)
        assert np.count_nonzero(labels.data == lesion.id) == lesion.extra["area_px"]

    # the summary follows the contract: from the CT when there is one
    assert review.findings.summary.source == "CT"
    assert panel.summary.value.endswith("Summary from: the CT")
    xray.visible = True
    assert points.visible and labels.visible
    ct.visible = False  # the CT's rings would otherwise lie over the radiograph
    assert not _overlay(viewer, ct, "lesion_points").visible
    ct.visible = True
    assert _overlay(viewer, ct, "lesion_labels").visible
    viewer.layers.selection.active = xray
    assert xray in panel.image.choices
    panel.image.value = xray
    assert not panel.threshold_hu.enabled  # an HU threshold means nothing on a radiograph
    assert panel.status.value.startswith(f"{len(result.lesions)} calcifications on {xray.name}")
    assert "summary below comes from the CT" in panel.status.value
    panel.image.value = ct
    assert panel.threshold_hu.enabled


def _check_view_after_detection(viewer, panel, ct, xray):
    """After detection on open: the CT's lesions are active and shown, the panel describes
    the selected layer's series, and its lesion table lists that series' lesions."""
    ct_points, xray_points = (_overlay(viewer, image, "lesion_points") for image in (ct, xray))
    # the visible series' lesion layer, not the hidden radiograph's points
    assert viewer.layers.selection.active is ct_points
    first = int(np.argmin(ct_points.features["id"].to_numpy()))
    world = ct_points.data_to_world(ct_points.data[first])
    assert abs(viewer.dims.point[0] - world[0]) <= ct.scale[0] / 2  # the first one's slice
    assert panel.image.value is ct and panel.status.value.startswith(
        f"{len(get_session(viewer).result_of(ct).lesions)} calcifications on {ct.name}")
    viewer.layers.selection.active = xray_points
    assert panel.image.value is xray and f"on {xray.name}" in panel.status.value
    # the lesion table, asked for while the CT image (not its points) is selected
    viewer.layers.selection.active = ct
    assert panel.image.value is ct
    panel.table_button.clicked.emit()
    assert viewer.layers.selection.active is ct_points
    _, table = viewer.window.add_plugin_dock_widget("napari", "Features table widget")
    assert table.table.model().rowCount() == len(ct_points.data) > 0


def test_a_radiograph_alone_is_summarised_from_the_radiograph(make_napari_viewer, qtbot, study,
                                                              autodetect_on):
    viewer = make_napari_viewer()
    viewer.open(study / "xray" / "frontal.dcm", plugin=PLUGIN)
    (xray,) = viewer.layers
    qtbot.waitUntil(lambda: _detected(viewer, xray), timeout=60_000)
    panel = _panel(viewer)
    qtbot.waitUntil(lambda: not panel.is_running, timeout=60_000)
    points = _overlay(viewer, xray, "lesion_points")
    np.testing.assert_allclose(points.translate, (0.0, 0.0))
    np.testing.assert_allclose(points.scale, xray.metadata["acquisition"]["pixel_spacing_mm"])
    assert points.visible
    review = get_session(viewer).review
    summary = review.findings.summary
    assert summary.source == "radiograph"
    assert summary.lesion_count == get_session(viewer).result_of(xray).summary.lesion_count
    assert panel.summary.value.endswith("Summary from: the radiograph")
    assert "mm³" not in panel.summary.value.splitlines()[0]  # a projection has no volume


def _export(viewer, qtbot, out) -> dict:
    widget = dock(viewer, "Report")
    widget.folder.value = out
    for name, box in widget.format_boxes.items():
        if box.enabled:
            box.value = name == "csv"
    widget.export_button.clicked.emit()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=60_000)
    assert widget.outcome is not None and not widget.outcome.failed
    return json.loads((out / "findings.json").read_text())


def _analyze(study, out) -> dict:
    assert cli.main(["analyze", str(study), "--out", str(out), "--formats", "json",
                     "--quiet"]) == 0
    return json.loads((out / "findings.json").read_text())


def _assert_same(doc: dict, expected: dict) -> None:
    for key in COMPARED:
        assert doc[key] == expected[key], key


def test_review_on_radiograph_points_and_export_equals_analyze(
        make_napari_viewer, qtbot, study, tmp_path, autodetect_off, isolated):
    viewer = make_napari_viewer()
    viewer.open(study, plugin=PLUGIN)
    ct, xray = viewer.layers
    session = get_session(viewer)
    panel = _panel(viewer)
    panel.run(xray)  # the radiograph first: ids still follow the series order
    qtbot.waitUntil(lambda: _detected(viewer, xray) and not panel.is_running, timeout=60_000)
    report = dock(viewer, "Report")
    assert "Radiographs not analysed" not in report.scope.value
    panel.run(ct)
    qtbot.waitUntil(lambda: _detected(viewer, ct) and not panel.is_running, timeout=120_000)
    review = session.review
    assert set(review.runs) == {layer.metadata["calcinosis"]["series_instance_uid"]
                                for layer in (ct, xray)}

    plain = _export(viewer, qtbot, tmp_path / "plain")
    expected = _analyze(study, tmp_path / "cli-plain")
    _assert_same(plain, expected)
    assert plain["summary"]["source"] == "CT"
    assert any("summary comes from the CT" in w for w in plain["warnings"])
    assert any("non-DICOM" in w for w in plain["warnings"])  # the study's own warning
    xray_doc = [les for les in plain["lesions"] if les["centroid_mm"] is None]
    assert xray_doc and all(len(les["centroid_index"]) == 2 and les["area_mm2"]
                            for les in xray_doc)

    # reject a radiograph lesion by deleting its point, mark another one as skin
    points = _overlay(viewer, xray, "lesion_points")
    ids = points.features["id"].tolist()
    rejected = ids[0]
    viewer.layers.selection.active = points
    points.selected_data = {0}
    points.remove_selected()
    qtbot.waitUntil(lambda: [les.id for les in review.rejected] == [rejected], timeout=5_000)
    assert rejected not in points.features["id"].tolist()
    assert not np.any(_overlay(viewer, xray, "lesion_labels").data
                      == rejected - review.runs[xray_doc[0]["series_instance_uid"]].id_offset)
    if len(ids) > 1:
        session.edit([ids[1]], layer="skin")
        row = points.features["id"].tolist().index(ids[1])
        assert points.features["layer"][row] == "skin"
        np.testing.assert_allclose(points.border_color[row], _rgba(LAYER_COLORS["skin"]))

    reviewed = _export(viewer, qtbot, tmp_path / "reviewed")
    exported_ids = [les["id"] for les in reviewed["lesions"]]
    assert rejected not in exported_ids and len(exported_ids) == len(plain["lesions"]) - 1
    if len(ids) > 1:
        marked = next(les for les in reviewed["lesions"] if les["id"] == ids[1])
        assert (marked["layer"], marked["source"]) == ("skin", "manual")
    assert reviewed["parameters"]["annotations"]["rejected_lesions"] == 1
    _assert_same(reviewed, _analyze(study, tmp_path / "cli-reviewed"))  # reads the record
    assert not isolated  # no error shown
