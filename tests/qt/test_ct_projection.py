"""CT lesions projected onto the frontal radiograph in a real viewer (the generalized sample:
CT + PA + lateral): the Points layer appears once both are detected, lies on the radiograph's
geometry, carries the CT lesion table, follows the radiograph's visibility, and a screenshot
is kept for a person to look at."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from napari_calcinosis._qt import preferences, report_widget
from napari_calcinosis._qt.ct_projection import (
    FEATURE_COLUMNS,
    KIND,
    SEEN_COLOR,
    UNSEEN_COLOR,
    projected_lesions,
)
from napari_calcinosis._qt.result_layers import SOURCE_KEY, camera, is_radiograph_layer
from napari_calcinosis._qt.session import get_session
from napari_calcinosis.annotations import DATA_DIR_ENV
from napari_calcinosis.fusion import _link as xray_ct_link
from napari_calcinosis.phantom import sample_study_path

pytestmark = pytest.mark.qt
PLUGIN = "napari-calcinosis"
SCREENSHOT = Path("/work/notes/screenshots/ct_on_radiograph.png")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.setattr(report_widget, "_LAST", {})
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(preferences.ENV_VAR, raising=False)
    monkeypatch.setitem(preferences._state, "enabled", None)


def _projection_layers(viewer):
    return [layer for layer in viewer.layers
            if layer.metadata.get(SOURCE_KEY, {}).get("kind") == KIND]


def _rgba(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)] + [1.0])


def test_ct_lesions_are_drawn_on_the_frontal_radiograph(make_napari_viewer, qtbot,
                                                        monkeypatch):
    on_main_thread = _record_registrations(monkeypatch)
    viewer = make_napari_viewer(show=True)
    viewer.open(str(sample_study_path("generalized")), plugin=PLUGIN)
    images = [layer for layer in viewer.layers if is_radiograph_layer(layer)]
    frontal = next(layer for layer in images if "PA" in layer.name)
    qtbot.waitUntil(lambda: len(_projection_layers(viewer)) == 1, timeout=120_000)
    session = get_session(viewer)
    qtbot.waitUntil(lambda: all(session.result_of(layer) is not None for layer in images),
                    timeout=60_000)
    (points,) = _projection_layers(viewer)  # one frontal radiograph: one layer, lateral none
    assert points.name == f"CT lesions on {frontal.name}"
    np.testing.assert_allclose(points.scale, frontal.scale)
    np.testing.assert_allclose(points.translate, frontal.translate)

    review = get_session(viewer).review
    uid = frontal.metadata[SOURCE_KEY]["series_instance_uid"]
    lesions = projected_lesions(review.effective.lesions)[uid]
    assert len(lesions) >= 10 and all(les.centroid_mm is not None for les in lesions)
    table = points.features
    assert tuple(table.columns) == FEATURE_COLUMNS
    assert table["ct_lesion_id"].tolist() == [les.id for les in lesions]
    assert table["layer"].tolist() == [les.layer for les in lesions]
    for row, lesion in enumerate(lesions):
        proj = lesion.extra["radiograph_projection"]
        np.testing.assert_allclose(points.data[row], [proj["row"], proj["col"]])
        seen = bool(lesion.extra["radiograph_lesion_ids"])
        assert table["seen_on_radiograph"][row] == seen
        np.testing.assert_allclose(points.face_color[row],
                                   _rgba(SEEN_COLOR if seen else UNSEEN_COLOR), atol=0.01)
        for dot_id in lesion.extra["radiograph_lesion_ids"]:  # the dot says it, too
            dot = review.lesion(dot_id)
            assert dot.extra["ct_confirmation"] == "confirmed"
            assert lesion.id in dot.extra["confirmed_by_ct_lesions"]
    assert table["seen_on_radiograph"].any() and not table["seen_on_radiograph"].all()
    _dots_say_their_confirmation(viewer, review, uid)

    # The registration (about a second) ran once, in the detection worker: the main thread,
    # assembling the study as each run joins, found it done and never blocked on it.
    assert on_main_thread == [False]

    frontal.visible = False
    assert not points.visible
    frontal.visible = True
    assert points.visible
    _screenshot(viewer, frontal, qtbot)


def _record_registrations(monkeypatch) -> list[bool]:
    """Whether each CT-to-radiograph registration ran on the main (GUI) thread."""
    register, calls = xray_ct_link.register_drr, []

    def recorded(*args, **kwargs):
        calls.append(threading.current_thread() is threading.main_thread())
        return register(*args, **kwargs)

    monkeypatch.setattr(xray_ct_link, "register_drr", recorded)
    monkeypatch.setattr(xray_ct_link, "_RECENT", [])
    return calls


def _dots_say_their_confirmation(viewer, review, uid: str) -> None:
    """The radiograph's own lesion tables (points and labels) carry ``ct_confirmation``."""
    layers = [layer for layer in viewer.layers
              if layer.metadata.get(SOURCE_KEY, {}).get("series_instance_uid") == uid
              and layer.metadata[SOURCE_KEY].get("kind") in ("lesion_points", "lesion_labels")]
    expected = [les.extra["ct_confirmation"] for les in review.lesions_of(uid)]
    assert len(layers) == 2 and "confirmed" in expected
    for layer in layers:
        assert layer.features["ct_confirmation"].tolist() == expected


def _screenshot(viewer, frontal, qtbot) -> None:
    """The frontal radiograph alone with its dots and the projected CT lesions."""
    uid = frontal.metadata[SOURCE_KEY]["series_instance_uid"]
    for layer in viewer.layers:
        meta = layer.metadata.get(SOURCE_KEY, {})
        layer.visible = layer is frontal or uid in (meta.get("series_instance_uid"),
                                                    meta.get("radiograph_series_instance_uid"))
    viewer.window.resize(1500, 1000)
    qtbot.wait(100)
    extent = np.asarray(frontal.extent.world)[:, -2:]
    view = camera(viewer)
    view.center = tuple(extent.mean(axis=0))
    canvas = np.asarray(viewer.window._qt_viewer.canvas.size[::-1], float)  # (height, width)
    view.zoom = 0.95 * float(np.min(canvas / (extent[1] - extent[0])))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    image = viewer.screenshot(str(SCREENSHOT), canvas_only=True)
    assert image.shape[0] > 100 and np.ptp(image[..., :3]) > 50  # not a blank canvas
