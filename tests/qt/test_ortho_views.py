"""Linked orthogonal views in a real viewer: stepping to a lesion puts the coronal and the
sagittal view on the lesion's voxel with the cross-hair on it; a click in one view moves
the others."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from review_helpers import dock, write_small_study

from napari_calcinosis._qt import preferences
from napari_calcinosis._qt.ortho_views import OrthoViews
from napari_calcinosis._qt.session import get_session
from napari_calcinosis.annotations import DATA_DIR_ENV

pytestmark = pytest.mark.qt
SHOTS = os.environ.get("CALCINOSIS_SHOTS", "")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_small_study(tmp_path_factory.mktemp("ortho") / "ct")


@pytest.fixture
def opened(make_napari_viewer, qtbot, study, monkeypatch, tmp_path):
    monkeypatch.setitem(preferences._state, "enabled", False)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    viewer = make_napari_viewer(show=True)
    room = dock(viewer, "Reading room")  # the views' tab, beside the room's other panels
    viewer.open(study, plugin="napari-calcinosis")
    session = get_session(viewer)
    detection = room.panels["Calcinosis detection"]
    detection.run(viewer.layers[0])
    qtbot.waitUntil(lambda: not detection.is_running and session.review is not None
                    and bool(session.review.runs), timeout=60_000)
    views = room.panels["Orthogonal views"]
    views.parent_room = room
    room.show_panel("Orthogonal views")
    assert isinstance(views, OrthoViews)
    qtbot.waitUntil(lambda: all("lesions" in m.layers for m in views.models.values()),
                    timeout=10_000)
    return viewer, session, views


def _click(model, world, *, drag: bool = False):
    """Drive a view's mouse-drag callbacks as napari does: press, (move,) release."""
    event = SimpleNamespace(button=1, type="mouse_press", pos=np.array([100.0, 100.0]),
                            position=tuple(world), modifiers=())
    running = [cb(model, event) for cb in model.mouse_drag_callbacks]
    running = [gen for gen in running if gen is not None and next(gen, "done") != "done"]
    if drag:
        event.type, event.pos = "mouse_move", np.array([150.0, 100.0])
        for gen in running:
            next(gen, None)
    event.type = "mouse_release"
    for gen in running:
        next(gen, None)


def test_stepping_to_a_lesion_puts_both_views_on_its_voxel(opened, qtbot):
    viewer, session, views = opened
    ct = viewer.layers[0]
    coronal, sagittal = views.models["coronal"], views.models["sagittal"]
    # the views share the CT's and the labels' arrays and show z up
    assert coronal.layers["ct"].data is ct.data
    assert coronal.dims.displayed == (0, 2) and sagittal.dims.displayed == (0, 1)
    review = views.parent_room.panels["Lesion review"]
    for _ in range(2):  # the first lesion, then the next one
        lesion = session.review.lesion(review.step(1))
        row, col = (int(round(v)) for v in lesion.centroid_index[1:])
        assert views.slice_indices() == {"coronal": row, "sagittal": col}
        voxel = np.asarray(lesion.centroid_index, float)  # the CT's data (display = stored)
        for name in ("coronal", "sagittal"):
            cross = views.models[name].layers["cross-hair"]
            assert tuple(cross.scale) == tuple(ct.scale)  # drawn in the CT's voxel grid

            shown = np.round(voxel)
            assert len(cross.data) == 2
            for line in cross.data:  # each line of the cross passes through the lesion's voxel
                hits = [np.allclose(np.delete(p, k), np.delete(shown, k)) for p in line
                        for k in range(3)]
                assert any(hits), (name, line, shown)
    if SHOTS:
        window = viewer.window._qt_window
        window.resize(1600, 1000)
        views.parent_room.show_panel("Orthogonal views")
        qtbot.wait(300)
        views.grab().save(str(Path(SHOTS) / "ortho_views.png"))
        window.grab().save(str(Path(SHOTS) / "ortho_window.png"))


def test_a_click_in_one_view_moves_the_others(opened, qtbot):
    viewer, session, views = opened
    ct = viewer.layers[0]
    coronal, sagittal = views.models["coronal"], views.models["sagittal"]
    low, high = ct.extent.world
    target = low + (high - low) * np.array([0.3, 0.5, 0.7])
    # a click in the coronal view (sliced at the current y): z and x come from the click
    y = float(coronal.dims.point[1])
    _click(coronal, (target[0], y, target[2]))
    voxel = np.round(ct.world_to_data((target[0], y, target[2]))).astype(int)
    shown = np.round(ct.world_to_data(viewer.dims.point)).astype(int)
    assert shown[0] == voxel[0]  # the axial slice moved to the clicked one
    assert views.slice_indices()["sagittal"] == voxel[2]
    assert views.slice_indices()["coronal"] == voxel[1]  # unchanged
    # a drag pans, it does not move the point
    before = tuple(viewer.dims.point)
    _click(sagittal, (target[0] + 20, y - 30, target[2]), drag=True)
    assert tuple(viewer.dims.point) == before
    # a click in the main (axial) view moves the coronal and sagittal planes
    _click(viewer, (float(viewer.dims.point[0]), target[1], target[2] - 40))
    voxel = np.round(ct.world_to_data((viewer.dims.point[0], target[1], target[2] - 40)))
    assert views.slice_indices() == {"coronal": int(voxel[1]), "sagittal": int(voxel[2])}
    # the coronal view's own slider moves the current point (and the sagittal cross-hair)
    coronal.dims.set_current_step(1, int(voxel[1]) + 10)
    assert views.slice_indices()["coronal"] == int(voxel[1]) + 10
    assert np.round(ct.world_to_data(viewer.dims.point))[1] == int(voxel[1]) + 10
    (vertical, horizontal) = sagittal.layers["cross-hair"].data
    assert {vertical[0][1], horizontal[0][1]} >= {int(voxel[1]) + 10}
