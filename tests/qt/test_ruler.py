"""The ruler in a real viewer: lines on a CT (in-plane and through-plane) and on radiographs
(mm with PixelSpacing, at the detector with ImagerPixelSpacing, pixels without a spacing to
believe), with the length on the line and in the Findings panel."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from napari.layers import Layer
from review_helpers import dock, write_small_study

from napari_calcinosis._napari.layer_data import radiograph_layer_data
from napari_calcinosis._qt.ruler import is_ruler, lengths
from napari_calcinosis.types import Radiograph, SeriesInfo

pytestmark = pytest.mark.qt
PLUGIN = "napari-calcinosis"
#: Screenshots to look at (``CALCINOSIS_SHOTS``, default: the test's own temp folder).
SHOTS = os.environ.get("CALCINOSIS_SHOTS", "")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_small_study(tmp_path_factory.mktemp("ruler") / "ct")


@pytest.fixture(autouse=True)
def _no_detection(monkeypatch, tmp_path):
    from napari_calcinosis._qt import preferences
    from napari_calcinosis.annotations import DATA_DIR_ENV

    monkeypatch.setitem(preferences._state, "enabled", False)  # no detection on open
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))


def _text(layer) -> list[str]:
    """The strings napari draws on the ruler's lines of the current slice."""
    return [str(t) for t in layer._view_text]


def test_the_ruler_measures_a_ct_in_mm_in_plane_and_through_plane(
        make_napari_viewer, qtbot, study):
    viewer = make_napari_viewer(show=True)
    viewer.open(study, plugin=PLUGIN)
    ct = viewer.layers[0]
    dz, dy, dx = (float(s) for s in ct.scale)
    assert (dy, dx) == (2.0, 2.0) and dz == 5.0  # the small study's spacing
    panel = dock(viewer, "CT window presets")
    panel.ruler_button.native.click()
    ruler = viewer.layers.selection.active
    assert is_ruler(ruler) and ruler.mode == "add_line"
    assert [str(u) for u in ruler.units] == ["millimeter"] * 3
    assert panel.lengths.value == "Drag on the image to measure."
    z = int(round((viewer.dims.point[0] - ct.translate[0]) / dz))
    # 50 columns: 100 mm; then 3-4-5 pixels in plane: 5 px = 10 mm
    ruler.add_lines(np.array([[z, 40, 30], [z, 40, 80]], float))
    ruler.add_lines(np.array([[z, 60, 60], [z, 63, 64]], float))
    qtbot.wait(50)
    assert panel.lengths.value == "Lengths: 1: 100.0 mm, 2: 10.0 mm"
    assert _text(ruler) == ["100.0 mm", "10.0 mm"]
    assert list(ruler.features["length"]) == pytest.approx([100.0, 10.0])
    # through-plane: 4 slices of 5 mm and 15 rows of 2 mm: sqrt(20² + 30²)
    ruler.add_lines(np.array([[z, 50, 50], [z + 4, 65, 50]], float))
    assert lengths(ruler)[-1] == pytest.approx(np.hypot(20.0, 30.0))
    assert panel.lengths.value.endswith(f"3: {np.hypot(20.0, 30.0):.1f} mm")
    # a vertex moved by hand is measured again
    data = [np.array(s) for s in ruler.data]
    data[0][1, 2] = 55.0  # 25 columns now
    ruler.data = data
    assert panel.lengths.value.startswith("Lengths: 1: 50.0 mm, ")
    # the button again: the same ruler, not a second one
    viewer.layers.selection.active = ct
    panel.ruler_button.native.click()
    assert sum(is_ruler(layer) for layer in viewer.layers) == 1
    viewer.layers.selection.active = ruler
    if SHOTS:
        viewer.window._qt_window.resize(1600, 1000)
        qtbot.wait(100)
        viewer.window._qt_window.grab().save(str(Path(SHOTS) / "ruler.png"))


def _radiograph(spacing, source: str, uid: str) -> Radiograph:
    image = np.zeros((400, 300), np.float32)
    image[100:300, 80:220] = 1000.0
    return Radiograph(image=image, info=SeriesInfo(uid, modality="CR"),
                      window=(0.0, 1000.0), pixel_spacing_mm=spacing, spacing_source=source,
                      view="frontal")


@pytest.mark.parametrize(("spacing", "source", "text", "note"), [
    ((0.5, 0.5), "PixelSpacing", "Lengths: 1: 40.0 mm", ""),
    ((0.5, 0.5), "ImagerPixelSpacing", "Lengths: 1: 40.0 mm", "at the detector"),
    (None, "none", "Lengths: 1: 80 px", "in pixels"),
    ((0.01, 0.01), "PixelSpacing", "Lengths: 1: 80 px", "in pixels"),  # a 4 mm "chest film"
])
def test_the_ruler_on_a_radiograph_names_its_unit_and_doubts(
        make_napari_viewer, qtbot, spacing, source, text, note):
    viewer = make_napari_viewer()
    data, kwargs, kind = radiograph_layer_data(_radiograph(spacing, source, "2.25.77"))
    if kwargs["scale"] == (0.01, 0.01):  # the reader's layer, measured in its pixels
        kwargs["scale"] = (1.0, 1.0)
        kwargs.pop("units", None)
    viewer.add_layer(Layer.create(data, kwargs, kind))
    panel = dock(viewer, "CT window presets")
    panel.ruler_button.native.click()
    ruler = viewer.layers.selection.active
    ruler.add_lines(np.array([[100, 100], [180, 100]], float))  # 80 rows
    first, *rest = panel.lengths.value.split("\n")
    assert first == text
    assert (note in rest[0]) if note else not rest
    assert _text(ruler) == [text.split(": ")[-1]]
