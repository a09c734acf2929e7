"""Result layers on a real viewer, from the phantom's ground truth as a known-answer result.

The detector itself is tested in core; here the question is whether what napari shows lies on
the right voxels, carries the right table, and whether selecting a lesion brings it into view.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from napari.layers import Layer
from scipy import ndimage

from napari_calcinosis._napari.layer_data import volume_layer_data
from napari_calcinosis._qt.detection_widget import DetectionWidget
from napari_calcinosis._qt.result_layers import FEATURE_COLUMNS, LAYER_COLORS, camera, summary_text
from napari_calcinosis._qt.session import get_session
from napari_calcinosis.phantom import PhantomSpec, Tissue, make_ct_phantom
from napari_calcinosis.summary import summarize
from napari_calcinosis.types import Lesion

pytestmark = pytest.mark.qt


@pytest.fixture(scope="module")
def phantom():
    spec = PhantomSpec(scenario="generalized", seed=3, pixel_spacing_mm=2.5, fov_mm=450.0,
                       slice_thickness_mm=5.0, z_range_mm=(150.0, 560.0))
    ct = make_ct_phantom(spec)
    volume = ct.as_volume()
    lesions = [Lesion(id=t.id, series_instance_uid=volume.info.series_instance_uid,
                      centroid_index=list(t.center_index_zyx), centroid_mm=list(t.center_lps_mm),
                      layer=t.layer, side=t.side, region=t.region, morphology=t.morphology,
                      volume_mm3=t.volume_mm3, peak_hu=t.peak_hu_expected,
                      extra={"depth_mm": t.depth_mm}) for t in ct.truth]
    result = SimpleNamespace(
        lesions=lesions, lesion_labels=ct.lesion_mask.astype(np.int32),
        tissue_labels=np.asarray(ct.tissue_labels, np.uint8),
        tissue_names={int(t): t.name.lower() for t in Tissue},
        summary=summarize(lesions), warnings=[])
    return volume, result


@pytest.fixture
def shown(make_napari_viewer, phantom, monkeypatch, tmp_path):
    from napari_calcinosis._qt import preferences
    from napari_calcinosis.annotations import DATA_DIR_ENV

    monkeypatch.setitem(preferences._state, "enabled", False)
    # the panel's study session reads the reader's records: never the user's own
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    volume, result = phantom
    viewer = make_napari_viewer(show=True)
    image = viewer.add_layer(Layer.create(*volume_layer_data(volume)))
    widget = DetectionWidget(viewer)
    widget._on_result(image, result)
    return viewer, image, widget, volume, result


def _by_kind(viewer, kind):
    (layer,) = [lyr for lyr in viewer.layers
                if lyr.metadata.get("calcinosis", {}).get("kind") == kind]
    return layer


def test_overlays_share_the_image_geometry(shown):
    viewer, image, widget, volume, result = shown
    labels = _by_kind(viewer, "lesion_labels")
    points = _by_kind(viewer, "lesion_points")
    assert not any(lyr.metadata.get("calcinosis", {}).get("kind") == "tissue_labels"
                   for lyr in viewer.layers)  # optional check of the model: made on request
    widget.show_tissue.value = True
    tissue = _by_kind(viewer, "tissue_labels")
    assert tissue.visible and viewer.layers.index(tissue) == viewer.layers.index(image) + 1
    for layer in (labels, points, tissue):
        np.testing.assert_allclose(layer.scale, image.scale)
        np.testing.assert_allclose(layer.translate, image.translate)
        np.testing.assert_allclose(layer.affine.affine_matrix, image.affine.affine_matrix)
    assert labels.data.shape == image.data.shape == tissue.data.shape
    skin = int(Tissue.SKIN)  # the phantom's truth labels stand in for the detector's here
    assert tissue.features.set_index("index").loc[skin, "compartment"] == "skin"
    np.testing.assert_array_equal(labels.data, result.lesion_labels)  # axial: no transpose
    boxes = ndimage.find_objects(result.lesion_labels)
    checked = 0
    for lesion, position in zip(result.lesions, points.data):
        world = np.asarray(points.data_to_world(position))
        np.testing.assert_allclose(world, np.asarray(lesion.centroid_mm)[::-1], atol=1e-6)
        box = boxes[lesion.id - 1] if lesion.id <= len(boxes) else None
        if box is not None:  # the point lies on the lesion's voxels
            assert all(s.start - 1 <= c <= s.stop for s, c in zip(box, position))
            checked += 1
    assert checked >= len(result.lesions) // 2


def test_lesions_coloured_by_tissue_layer_and_table(shown):
    viewer, _, widget, _, result = shown
    labels = _by_kind(viewer, "lesion_labels")
    points = _by_kind(viewer, "lesion_points")
    for lesion in result.lesions[:10]:
        expected = np.asarray(_rgba(LAYER_COLORS[lesion.layer]))
        np.testing.assert_allclose(labels.colormap.map(lesion.id)[:3], expected[:3], atol=0.01)
    assert tuple(points.features.columns) == FEATURE_COLUMNS
    assert points.features["id"].tolist() == [lesion.id for lesion in result.lesions]
    assert set(points.features["layer"]) <= set(LAYER_COLORS)
    assert widget.summary.value == summary_text(result.summary)
    assert "Extent: generalized" in widget.summary.value


def _rgba(color):
    from napari.utils.colormaps.standardize_color import transform_color

    return transform_color(color)[0]


def test_table_row_takes_the_viewer_to_the_lesion(shown, qtbot):
    viewer, _, widget, _, result = shown
    points = _by_kind(viewer, "lesion_points")
    viewer.layers.selection.active = points
    widget.table_button.clicked.emit()  # docks napari's own features table
    _, table = viewer.window.add_plugin_dock_widget("napari", "Features table widget")
    assert table.table.model().rowCount() == len(result.lesions)
    row = len(result.lesions) // 2
    table.table.selectRow(row)
    lesion = result.lesions[row]
    target = np.asarray(lesion.centroid_mm)[::-1]
    assert points.selected_data == {row}
    assert abs(viewer.dims.point[0] - target[0]) <= 2.5  # within half a slice
    np.testing.assert_allclose(camera(viewer).center[-2:], target[1:], atol=1e-6)
    # and by id, from code (the report panel uses this)
    other = result.lesions[0]
    assert widget.go_to_lesion(other.id)
    np.testing.assert_allclose(camera(viewer).center[-2:],
                               np.asarray(other.centroid_mm)[::-1][1:], atol=1e-6)


def test_overlay_changes_what_is_seen(shown):
    viewer, _, widget, _, result = shown
    lesion = result.lesions[0]
    widget.go_to_lesion(lesion.id)
    camera(viewer).zoom = 4
    with_overlay = viewer.screenshot(canvas_only=True, flash=False)
    for kind in ("lesion_labels", "lesion_points"):
        _by_kind(viewer, kind).visible = False
    without = viewer.screenshot(canvas_only=True, flash=False)
    assert with_overlay.shape == without.shape
    changed = np.any(np.abs(with_overlay.astype(int) - without.astype(int)) > 30, axis=-1)
    assert changed.mean() > 0.001  # coloured rings and labels are visible


def test_rerun_replaces_previous_results(shown):
    viewer, image, widget, _, result = shown
    before = len(viewer.layers)
    widget._on_result(image, result)
    assert len(viewer.layers) == before
    widget.show_tissue.value = True
    assert _by_kind(viewer, "tissue_labels").visible
    widget.show_tissue.value = False
    assert not _by_kind(viewer, "tissue_labels").visible
    widget._on_result(image, result)  # a re-run keeps the choice: no tissue layer now
    assert not any(lyr.metadata.get("calcinosis", {}).get("kind") == "tissue_labels"
                   for lyr in viewer.layers)
    assert get_session(viewer).result_of(image) is result
