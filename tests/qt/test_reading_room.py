"""``napari-calcinosis view``: one dock that fits a 1600 x 1000 screen, and --clinical FILE."""

from __future__ import annotations

import json

import napari
import pytest
from qtpy.QtWidgets import QApplication
from review_helpers import SEED_HISTORY, SEED_LABS, result_layer, write_small_study

from napari_calcinosis import cli
from napari_calcinosis._qt import viewer as qt_viewer
from napari_calcinosis._qt.reading_room import TABS, ReadingRoom
from napari_calcinosis._qt.session import get_session

pytestmark = pytest.mark.qt

SCREEN = (1600, 1000)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_small_study(tmp_path_factory.mktemp("room") / "ct")


@pytest.fixture(autouse=True)
def _own_app(own_napari_app):
    """``view`` makes its viewer directly: it gets an app model of its own (conftest)."""
    yield


@pytest.fixture(autouse=True)
def _own_records(monkeypatch, tmp_path):
    from napari_calcinosis.annotations import DATA_DIR_ENV
    from napari_calcinosis._qt import preferences

    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.delenv(preferences.ENV_VAR, raising=False)  # detection on open
    monkeypatch.setitem(preferences._state, "enabled", None)


def _view(argv, monkeypatch):
    """Run ``napari-calcinosis view ...`` up to the event loop; the viewer it opened."""
    monkeypatch.setattr(qt_viewer.napari, "run", lambda: None)
    assert cli.main([str(a) for a in argv]) == 0
    return napari.current_viewer()


def _room(viewer) -> ReadingRoom:
    (widget,) = viewer.window.dock_widgets.values()  # the one dock of the plugin
    assert isinstance(widget, ReadingRoom)
    return widget


def _settle(qtbot, ms: int = 200) -> None:
    qtbot.wait(ms)
    QApplication.processEvents()


def test_the_reading_room_fits_a_1600_by_1000_screen(study, qtbot, monkeypatch, tmp_path):
    viewer = _view(["view", study], monkeypatch)
    try:
        session = get_session(viewer)
        qtbot.waitUntil(lambda: result_layer(viewer, "lesion_points") is not None
                        and session.review is not None and bool(session.review.runs),
                        timeout=60_000)
        room = _room(viewer)
        # reading order, and detection on open ran in the room's own detection panel
        assert [room.tabs.tabText(i) for i in range(room.tabs.count())] == \
            ["Findings", "Views", "Review", "Clinical", "Differential", "Report", "PACS"] \
            == [t for t, _ in TABS]
        assert " calcifications on " in room.panels["Calcinosis detection"].status.value
        window = viewer.window._qt_window
        window.showNormal()
        window.resize(*SCREEN)
        _settle(qtbot)
        hint = window.minimumSizeHint()
        assert hint.width() <= SCREEN[0] and hint.height() <= SCREEN[1], hint
        assert (window.width(), window.height()) == SCREEN
        canvas = viewer.window._qt_viewer.canvas.native
        assert canvas.width() >= SCREEN[0] / 2, canvas.width()
        window.grab().save(str(tmp_path / "reading_room.png"))
        for index in range(room.tabs.count()):  # every tab: nothing cut off at the right
            room.tabs.setCurrentIndex(index)
            _settle(qtbot, 50)
            page = room.tabs.widget(index)
            content = page.widget() if hasattr(page, "widget") else page
            width = page.viewport().width() if hasattr(page, "viewport") else page.width()
            assert content.minimumSizeHint().width() <= width, room.tabs.tabText(index)
            window.grab().save(str(tmp_path / f"tab{index}.png"))
        # the differential's missing inputs jump to the form: its tab comes to the front
        differential = room.panels["Differential"]
        assert differential.jump_to("calcium")
        assert room.current_tab() == "Clinical"
        assert room.panels["Clinical input"].focused_key == "calcium"
    finally:
        viewer.close()


def test_view_loads_the_clinical_file_into_the_form_and_the_differential(
        study, qtbot, monkeypatch, tmp_path):
    path = tmp_path / "clinical.json"
    path.write_text(json.dumps({"age": 61, "sex": "F", "labs": SEED_LABS,
                                "history": SEED_HISTORY}), encoding="utf-8")
    viewer = _view(["view", study, "--clinical", path], monkeypatch)
    try:
        session = get_session(viewer)
        form = _room(viewer).panels["Clinical input"]
        assert form.age.value == "61" and form.sex.value == "F"
        assert form.labs["ck"].value.value == "120"
        assert form.history["dialysis"].value == "no"
        clinical = session.review.clinical()
        assert clinical is not None and clinical.age_years == 61
        assert set(clinical.labs) == set(SEED_LABS)
        qtbot.waitUntil(lambda: bool(session.review.runs), timeout=60_000)
        panel = _room(viewer).panels["Differential"]
        _settle(qtbot)
        assert f"{len(SEED_LABS)} of 7 labs known" in panel.status.value
        # the differential reads the file's history: no missing-input button for dialysis
        missing = {text for view in panel.views if view.visible
                   for text in view.missing_buttons()}
        assert "dialysis" not in missing and "calcium" not in missing
    finally:
        viewer.close()
