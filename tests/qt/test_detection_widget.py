"""Opening a CT starts detection in the background; the panel re-runs it; results are shown."""

from __future__ import annotations

import numpy as np
import pytest
from dicom_factory import write_volume
from qtpy.QtCore import QTimer

from napari_calcinosis._qt import autodetect, preferences
from napari_calcinosis._qt.detection_widget import DetectionWidget
from napari_calcinosis._qt.result_layers import camera
from napari_calcinosis.phantom import PhantomSpec, make_ct_phantom

pytestmark = pytest.mark.qt

PLUGIN = "napari-calcinosis"
RESULT_KINDS = ("lesion_labels", "lesion_points", "tissue_labels")


@pytest.fixture(scope="module")
def phantom_folder(tmp_path_factory):
    spec = PhantomSpec(scenario="generalized", seed=3, pixel_spacing_mm=2.0, fov_mm=460.0,
                       slice_thickness_mm=5.0, z_range_mm=(150.0, 560.0))
    ct = make_ct_phantom(spec)
    return write_volume(tmp_path_factory.mktemp("phantom") / "ct", ct.as_volume())


@pytest.fixture(autouse=True)
def _own_records(monkeypatch, tmp_path):
    """The panel's study session reads the reader's records: never the user's own."""
    from napari_calcinosis.annotations import DATA_DIR_ENV

    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))


@pytest.fixture
def autodetect_on(monkeypatch):
    monkeypatch.delenv(preferences.ENV_VAR, raising=False)
    monkeypatch.setitem(preferences._state, "enabled", None)


def _results(viewer):
    return {layer.metadata["calcinosis"]["kind"]: layer for layer in viewer.layers
            if layer.metadata.get("calcinosis", {}).get("kind") in RESULT_KINDS}


def _panel(viewer) -> DetectionWidget:
    dock = viewer.window._wrapped_dock_widgets[f"{autodetect.DETECTION_WIDGET} ({PLUGIN})"]
    return dock.inner_widget()


def test_opening_a_ct_starts_detection_in_the_background(make_napari_viewer, qtbot,
                                                         phantom_folder, autodetect_on):
    viewer = make_napari_viewer(show=True)
    viewer.open(phantom_folder, plugin=PLUGIN)
    (image,) = viewer.layers
    assert _results(viewer) == {}  # the reader returned at once; detection comes later
    seen = {"ticks_while_running": 0, "progress": []}

    def tick():
        panel = viewer.window._wrapped_dock_widgets.get(f"{autodetect.DETECTION_WIDGET} "
                                                        f"({PLUGIN})")
        if panel is not None and panel.inner_widget().is_running:
            seen["ticks_while_running"] += 1
            assert not panel.inner_widget().run_button.enabled

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(10)
    # the result layers come with the worker's "returned" signal, the button back with its
    # "finished" one (a separate event): wait for both
    qtbot.waitUntil(lambda: len(_results(viewer)) == 2 and not _panel(viewer).is_running,
                    timeout=120_000)
    timer.stop()
    panel = _panel(viewer)
    assert seen["ticks_while_running"] >= 2  # the event loop kept turning: viewer responsive
    assert panel.run_button.enabled and not panel.progress.visible
    results = _results(viewer)
    for layer in results.values():
        np.testing.assert_allclose(layer.scale, image.scale)
        np.testing.assert_allclose(layer.translate, image.translate)
    points = results["lesion_points"]
    assert len(points.data) > 0
    assert set(points.features["layer"]) >= {"subcutaneous"}
    assert "Extent:" in panel.summary.value and "Symmetry: index" in panel.summary.value
    assert "tissue_labels" not in results  # made only when asked for
    panel.show_tissue.value = True
    tissue = _results(viewer)["tissue_labels"]
    np.testing.assert_allclose(tissue.scale, image.scale)
    tissue.visible = False

    # the overlay changes what a person sees
    panel.go_to_lesion(int(points.features["id"].iloc[0]))
    camera(viewer).zoom = 4
    shot = viewer.screenshot(canvas_only=True, flash=False)
    results["lesion_labels"].visible = points.visible = False
    bare = viewer.screenshot(canvas_only=True, flash=False)
    assert np.any(np.abs(shot.astype(int) - bare.astype(int)) > 30)


def test_rerun_with_a_higher_threshold_finds_fewer(make_napari_viewer, qtbot, phantom_folder,
                                                   monkeypatch):
    monkeypatch.setitem(preferences._state, "enabled", False)
    viewer = make_napari_viewer()
    viewer.open(phantom_folder, plugin=PLUGIN)
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, autodetect.DETECTION_WIDGET)
    assert panel.image.value is viewer.layers[0]
    counts = []
    for threshold in (130.0, 400.0):
        panel.threshold_hu.value = threshold
        panel.run_button.clicked.emit()
        qtbot.waitUntil(lambda: not panel.is_running and len(_results(viewer)) == 2,
                        timeout=120_000)
        counts.append(len(_results(viewer)["lesion_points"].data))
        assert f"threshold {threshold:.0f} HU" in panel.status.value
    assert len(_results(viewer)) == 2  # the re-run replaced the earlier result layers
    assert counts[1] < counts[0]


def test_autodetect_can_be_switched_off(make_napari_viewer, qtbot, phantom_folder,
                                        monkeypatch):
    monkeypatch.setitem(preferences._state, "enabled", None)
    monkeypatch.setenv(preferences.ENV_VAR, "0")
    assert not preferences.autodetect_enabled()
    viewer = make_napari_viewer()
    viewer.open(phantom_folder, plugin=PLUGIN)
    qtbot.wait(200)
    assert _results(viewer) == {}
    assert f"{autodetect.DETECTION_WIDGET} ({PLUGIN})" not in viewer.window._wrapped_dock_widgets
    # and the panel's checkbox turns it back on for the session
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, autodetect.DETECTION_WIDGET)
    assert not panel.autodetect.value
    panel.autodetect.value = True
    assert preferences.autodetect_enabled()
