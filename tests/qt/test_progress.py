"""Progress and results as they are ready, in a real viewer: building a sample study on
first use shows napari's progress bar; on a CT + radiograph study the CT's lesions are on
screen before the CT is registered to the radiograph, and the registration shows a busy bar."""

from __future__ import annotations

import pytest
from napari.utils import progress as napari_progress
from review_helpers import dock

from napari_calcinosis._napari import reader, sample_data
from napari_calcinosis._qt import detection_widget, preferences
from napari_calcinosis._qt.result_layers import is_radiograph_layer
from napari_calcinosis.annotations import DATA_DIR_ENV
from napari_calcinosis.phantom import PhantomSpec, make_ct_phantom, write_study

pytestmark = pytest.mark.qt
PLUGIN = "napari-calcinosis"
SPEC = PhantomSpec(scenario="generalized", seed=3, pixel_spacing_mm=2.0, fov_mm=460.0,
                   slice_thickness_mm=5.0, z_range_mm=(300.0, 500.0))


def _record_bars(monkeypatch, module) -> list[list[tuple[int, str]]]:
    """napari's own progress bar in ``module``, each bar's redraws noted (value, text)."""
    bars: list[list[tuple[int, str]]] = []

    class Recorded(napari_progress):
        def __init__(self, *args, **kwargs):
            self.seen: list[tuple[int, str]] = []
            bars.append(self.seen)
            super().__init__(*args, **kwargs)

        def refresh(self, *args, **kwargs):
            self.seen.append((int(self.n), str(self.desc)))
            return super().refresh(*args, **kwargs)

    monkeypatch.setattr(module, "napari_progress", Recorded)
    return bars


@pytest.fixture(autouse=True)
def _records(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))


@pytest.mark.slow  # builds the localized sample (several seconds)
def test_building_a_sample_on_first_use_shows_napari_progress(
        make_napari_viewer, monkeypatch, tmp_path):
    monkeypatch.setitem(preferences._state, "enabled", False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # nothing built yet
    bars = _record_bars(monkeypatch, sample_data)
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "localized")
    assert len(viewer.layers) == 3
    (seen,) = bars
    values = [n for n, _ in seen]
    assert values == sorted(values) and values[-1] >= 95 and len(set(values)) >= 10
    text = " ".join(desc for _, desc in seen)
    assert "Building the localized sample study (first use)" in text
    assert "rendering the torso" in text and "writing CT slices" in text
    viewer.layers.clear()
    viewer.open_sample(PLUGIN, "localized")  # cached now: opens without a bar
    assert len(bars) == 1 and len(viewer.layers) == 3


def test_reading_shows_a_bar_only_when_it_lasts_and_redraws_it_sparingly(
        make_napari_viewer, monkeypatch, ct_and_radiograph):
    monkeypatch.setitem(preferences._state, "enabled", False)
    bars = _record_bars(monkeypatch, reader)
    viewer = make_napari_viewer(show=True)
    viewer.open(ct_and_radiograph, plugin=PLUGIN)  # a small study: read in well under 0.5 s
    assert len(viewer.layers) == 2 and bars == []
    viewer.layers.clear()
    monkeypatch.setattr(reader, "SHOW_AFTER_S", 0.0)  # as if the read lasted
    monkeypatch.setattr(reader, "REDRAW_S", 3600.0)
    viewer.open(ct_and_radiograph, plugin=PLUGIN)
    (seen,) = bars
    assert len(viewer.layers) == 2
    # the first report opens and draws the bar (napari redraws on opening and on a new
    # text); none of the loader's other reports (one per file) redraws it
    assert seen and len({n for n, _ in seen[1:]}) == 1, seen
    assert {text for _, text in seen[1:]} == {"read 1 of 42 headers: "}, seen


@pytest.fixture(scope="module")
def ct_and_radiograph(tmp_path_factory):
    return write_study(make_ct_phantom(SPEC), tmp_path_factory.mktemp("progress") / "study")


def test_ct_lesions_are_on_screen_before_the_registration(
        make_napari_viewer, qtbot, monkeypatch, ct_and_radiograph):
    monkeypatch.setitem(preferences._state, "enabled", True)  # detection on open
    events: list[str] = []
    real_link = detection_widget._prepare_ct_link

    def link(image, result, others):  # runs in the worker thread
        events.append("registration starts")
        done = real_link(image, result, others)
        events.append("registration ends")
        return done

    monkeypatch.setattr(detection_widget, "_prepare_ct_link", link)
    viewer = make_napari_viewer()
    panel = dock(viewer, "Calcinosis detection")
    steps: list[tuple] = []
    real_progress = panel._on_progress

    def on_progress(step):
        steps.append((step, panel.progress.max))
        real_progress(step)
        if step[0] is None:
            steps.append(("busy", panel.progress.max))

    panel._on_progress = on_progress  # (magicgui containers cannot undo a monkeypatch)

    def on_inserted(event):
        meta = event.value.metadata.get("calcinosis", {})
        if meta.get("kind") == "lesion_points":
            events.append("radiograph lesions" if meta["series_instance_uid"] in xray_uids
                          else "CT lesions")

    viewer.layers.events.inserted.connect(on_inserted)
    viewer.open(ct_and_radiograph, plugin=PLUGIN)
    xray_uids = {layer.metadata["calcinosis"]["series_instance_uid"]
                 for layer in viewer.layers if is_radiograph_layer(layer)}
    assert len(xray_uids) == 1  # the frontal film
    qtbot.waitUntil(lambda: "radiograph lesions" in events and not panel.is_running,
                    timeout=120_000)
    assert events.index("CT lesions") < events.index("registration starts")
    assert events.index("registration ends") < events.index("radiograph lesions")
    assert ("busy", 0) in steps  # the registration: a busy bar ...
    assert any(step[0] == (None, detection_widget.REGISTERING) for step in steps)
    assert any(isinstance(s[0], tuple) and s[0][0] not in (None, 0.0)
               for s in steps)  # ... the detectors: fractions
