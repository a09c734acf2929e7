"""The bundled sample study in a real viewer: File > Open Sample, and as a folder."""

from __future__ import annotations

import numpy as np
import pytest
from napari.settings import get_settings

from napari_calcinosis._napari import reader as _reader
from napari_calcinosis._napari.layer_data import VOLUME_KEY
from napari_calcinosis._qt import preferences

pytestmark = [pytest.mark.qt, pytest.mark.slow]  # the first use generates the study (~10 s)

PLUGIN = "napari-calcinosis"


@pytest.fixture(scope="module")
def sample_path():
    from napari_calcinosis.phantom import sample_study_path

    return sample_study_path("generalized")


@pytest.fixture
def no_autodetect(monkeypatch):
    monkeypatch.setitem(preferences._state, "enabled", False)


def _check_study_layers(viewer):
    names = [layer.name for layer in viewer.layers]
    ct, frontal, lateral = viewer.layers[:3]
    assert ct.metadata["calcinosis"]["kind"] == "volume" and ct.visible
    assert [frontal.metadata["acquisition"]["view"], lateral.metadata["acquisition"]["view"]] \
        == ["frontal", "lateral"], names
    assert not frontal.visible and not lateral.visible  # no shared frame with the CT
    volume = ct.metadata[VOLUME_KEY]
    np.testing.assert_allclose(ct.scale, volume.spacing_zyx_mm)
    np.testing.assert_allclose(ct.translate, volume.origin_lps_mm[::-1])
    np.testing.assert_allclose(ct.contrast_limits, (-160.0, 240.0))
    corner = np.array(volume.shape) - 1
    np.testing.assert_allclose(ct.data_to_world(corner), volume.index_to_lps(corner)[::-1],
                               atol=1e-6)
    for xray in (frontal, lateral):
        spacing = xray.metadata["acquisition"]["pixel_spacing_mm"]
        np.testing.assert_allclose(xray.scale, spacing)
    return ct


def test_open_sample_menu_entry(make_napari_viewer, sample_path, no_autodetect):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "generalized")
    assert len(viewer.layers) == 3
    _check_study_layers(viewer)


def test_sample_folder_by_name_and_with_plugin_none(make_napari_viewer, sample_path,
                                                   no_autodetect, monkeypatch):
    import napari.utils.notifications as notifications

    shown: list[str] = []
    monkeypatch.setattr(notifications, "show_warning", shown.append)
    viewer = make_napari_viewer(show=True)
    viewer.open(sample_path, plugin=PLUGIN)
    _check_study_layers(viewer)
    assert (sample_path / "truth.json").is_file()
    assert not [m for m in shown if "non-DICOM" in m], shown  # the sample's own truth.json
    viewer.layers.clear()
    _reader.prefer_this_reader_for_dicom()  # what activating the plugin does
    assert get_settings().plugins.extension2reader[_reader.sample_folders_pattern()] == PLUGIN
    viewer.open(sample_path, plugin=None)
    ct = _check_study_layers(viewer)
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=False, flash=False)
    assert shot[..., :3].std() > 10
    canvas = viewer.screenshot(canvas_only=True, flash=False)
    ct.visible = False
    assert np.abs(canvas.astype(int)
                  - viewer.screenshot(canvas_only=True, flash=False).astype(int)).mean() > 5
