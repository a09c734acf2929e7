"""Viewer basics in a real viewer: HU under the cursor, window/level by right-drag with its
readout and the presets, layers and scale bar in mm, stepping zooms to the lesion."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from review_helpers import dock, open_and_detect, write_small_study

from napari_calcinosis._napari.layer_data import VOLUME_KEY
from napari_calcinosis._qt import preferences
from napari_calcinosis._qt.result_layers import camera
from napari_calcinosis._qt.viewing import (
    HU_PER_PIXEL,
    LESION_FIELD_MM,
    WindowLevelDrag,
    scale_bar,
)
from napari_calcinosis.annotations import DATA_DIR_ENV
from napari_calcinosis.review import contrast_limits, window_level

pytestmark = pytest.mark.qt


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_small_study(tmp_path_factory.mktemp("viewing") / "ct")


@pytest.fixture
def opened(make_napari_viewer, qtbot, study, monkeypatch, tmp_path):
    monkeypatch.setitem(preferences._state, "enabled", False)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    viewer = make_napari_viewer(show=True)
    session = open_and_detect(viewer, qtbot, study)
    return viewer, session, viewer.layers[0], dock(viewer, "CT window presets")


def _drag(viewer, start, *moves):
    """Drive the viewer's right-drag callbacks as napari does: press, moves, release."""
    event = SimpleNamespace(button=2, type="mouse_press", pos=np.asarray(start, float),
                            position=tuple(viewer.dims.point), modifiers=[])
    running = [cb(viewer, event) for cb in viewer.mouse_drag_callbacks]
    running = [gen for gen in running if gen is not None and next(gen, "done") != "done"]
    for pos in moves:
        event.type, event.pos = "mouse_move", np.asarray(pos, float)
        for gen in running:
            next(gen, None)
    event.type = "mouse_release"
    for gen in running:
        next(gen, None)


def test_hu_under_the_cursor_and_window_level_by_right_drag(opened):
    viewer, session, ct, panel = opened
    volume = ct.metadata[VOLUME_KEY]
    # the value under the cursor, with its unit
    voxel = np.array([volume.shape[0] // 2, volume.shape[1] // 2, volume.shape[2] // 3])
    world = ct.data_to_world(voxel)
    viewer.dims.set_point(0, world[0])  # the cursor is on the slice shown
    panel._on_move(viewer, SimpleNamespace(position=world))
    assert panel.cursor.value == f"{float(volume.hu[tuple(voxel)]):.0f} HU"

    # presets, then a right-drag: right widens the window, up raises the level
    viewer.layers.selection.active = ct
    panel.preset.value = "soft_tissue"
    assert window_level(ct.contrast_limits) == pytest.approx((400, 40))
    assert panel.readout.value == "W 400  L 40 HU"
    assert sum(isinstance(cb, WindowLevelDrag) for cb in viewer.mouse_drag_callbacks) == 1
    _drag(viewer, (300, 300), (340, 300), (400, 250))
    width, level = window_level(ct.contrast_limits)
    assert width == pytest.approx(400 + 100 * HU_PER_PIXEL)
    assert level == pytest.approx(40 + 50 * HU_PER_PIXEL)
    assert panel.readout.value == f"W {width:.0f}  L {level:.0f} HU"
    assert camera(viewer).mouse_pan  # the camera's own drag is back after the release
    # a left drag pans as before: no window change
    before = tuple(ct.contrast_limits)
    event = SimpleNamespace(button=1, type="mouse_press", pos=np.zeros(2), position=world)
    assert WindowLevelDrag()(viewer, event) is not None
    assert next(WindowLevelDrag()(viewer, event), "done") == "done"
    assert tuple(ct.contrast_limits) == before
    panel.preset.value = "bone"  # a preset after a drag: the readout follows it too
    width, level = window_level(contrast_limits("bone"))
    assert panel.readout.value == f"W {width:.0f}  L {level:.0f} HU"


def test_layers_and_the_scale_bar_are_in_mm_and_stepping_zooms(opened, qtbot):
    viewer, session, ct, _ = opened
    for layer in viewer.layers:  # the CT and its result layers
        assert [str(u) for u in layer.units] == ["millimeter"] * 3, layer.name
    bar = scale_bar(viewer)
    assert bar.visible
    qtbot.wait(100)
    visual = viewer.window._qt_viewer.canvas._viewer_overlay_to_visual[bar][0]
    assert visual.node.text.text.endswith("mm"), visual.node.text.text

    review = dock(viewer, "Lesion review")
    first = review.step(1)
    lesion = session.review.lesion(first)
    target = np.asarray(lesion.centroid_mm)[::-1]  # LPS (x, y, z) -> world (z, y, x)
    np.testing.assert_allclose(camera(viewer).center[-2:], target[1:], atol=1e-6)
    shorter = min(viewer.canvas.size)
    assert camera(viewer).zoom == pytest.approx(shorter / LESION_FIELD_MM)
    assert shorter / camera(viewer).zoom == pytest.approx(LESION_FIELD_MM)  # 60 mm shown
