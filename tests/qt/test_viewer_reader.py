"""A real napari viewer opens DICOM through the plugin (run under xvfb-run)."""

from __future__ import annotations

import numpy as np
import pytest
from dicom_factory import write_ct_series, write_radiograph
from napari.errors import MultipleReaderError
from napari.settings import get_settings

from napari_calcinosis._napari import reader as _reader
from napari_calcinosis._napari.layer_data import VOLUME_KEY

pytestmark = pytest.mark.qt

PLUGIN = "napari-calcinosis"


@pytest.fixture(autouse=True)
def _no_autodetect(monkeypatch):
    """These tests are about reading: detection on open is tested in test_detection_widget."""
    from napari_calcinosis._qt import preferences

    monkeypatch.setenv(preferences.ENV_VAR, "0")
    monkeypatch.setitem(preferences._state, "enabled", None)


@pytest.fixture
def notes(monkeypatch):
    """Record the notifications the reader shows, by severity."""
    import napari.utils.notifications as notifications

    seen: dict[str, list[str]] = {"error": [], "warning": []}
    for module in (notifications, _reader):  # the reader holds its own references
        monkeypatch.setattr(module, "show_error", lambda msg: seen["error"].append(msg))
        monkeypatch.setattr(module, "show_warning", lambda msg: seen["warning"].append(msg))
    return seen


@pytest.fixture
def ct_folder(tmp_path):
    return write_ct_series(tmp_path / "study")


@pytest.fixture
def plugin_preferences():
    """napari's reader preferences as the plugin sets them when it is activated."""
    from npe2 import PluginManager

    PluginManager.instance().activate(PLUGIN)  # runs the manifest's on_activate once
    _reader.prefer_this_reader_for_dicom()  # idempotent; survives settings resets
    return get_settings().plugins.extension2reader


def _expected_world_zyx(index, *, origin=(-10.0, -20.0, 100.0), spacing=(2.5, 0.7, 0.8)):
    k, i, j = index
    lps = np.asarray(origin) + k * spacing[0] * np.array([0, 0, 1.0]) \
        + i * spacing[1] * np.array([0, 1.0, 0]) + j * spacing[2] * np.array([1.0, 0, 0])
    return lps[::-1]


def _check_ct_layer(layer, hu):
    assert layer.name == "CT Chest soft tissue #3"  # modality, description, number; no patient
    np.testing.assert_array_equal(np.asarray(layer.data), hu)
    np.testing.assert_allclose(layer.scale, (2.5, 0.7, 0.8))
    np.testing.assert_allclose(layer.translate, (100.0, -20.0, -10.0))
    np.testing.assert_allclose(layer.contrast_limits, (-160.0, 240.0))  # soft-tissue window
    assert layer.colormap.name == "gray"
    for index in [(0, 0, 0), (5, 23, 19), (2, 6, 10)]:
        np.testing.assert_allclose(layer.data_to_world(index), _expected_world_zyx(index),
                                   atol=1e-6)
    meta = layer.metadata
    assert meta["calcinosis"]["kind"] == "volume"
    assert meta[VOLUME_KEY].info.series_instance_uid == meta["calcinosis"]["series_instance_uid"]
    assert meta["kernel"] == "B30f" and meta["kvp"] == 120 and meta["slice_thickness_mm"] == 2.5


def test_ct_folder_by_plugin_name(make_napari_viewer, ct_folder, notes):
    folder, hu = ct_folder
    viewer = make_napari_viewer()
    layers = viewer.open(folder, plugin=PLUGIN)
    assert len(layers) == 1 and len(viewer.layers) == 1
    _check_ct_layer(viewer.layers[0], hu)
    assert notes == {"error": [], "warning": []}


def test_dcm_file_with_plugin_none_goes_to_this_plugin(make_napari_viewer, tmp_path,
                                                       plugin_preferences):
    """napari's builtin imageio reader also claims *.dcm; the plugin's preference wins."""
    assert {plugin_preferences[p] for p in ("*.dcm", "*.DCM", "*.dicom")} == {PLUGIN}
    path, _ = write_radiograph(tmp_path / "chest.DCM", photometric="MONOCHROME2")
    viewer = make_napari_viewer()
    viewer.open(path, plugin=None)
    assert len(viewer.layers) == 1
    assert viewer.layers[0].metadata["calcinosis"]["kind"] == "radiograph"


def test_folder_with_plugin_none(make_napari_viewer, ct_folder, plugin_preferences):
    """Folders are claimed by napari's builtin reader too: napari asks once, then remembers."""
    folder, hu = ct_folder
    viewer = make_napari_viewer()
    with pytest.raises(MultipleReaderError) as info:
        viewer.open(folder, plugin=None)
    assert PLUGIN in info.value.available_plugins
    # What napari's reader dialog stores when the user ticks "remember" for this folder:
    settings = get_settings().plugins
    settings.extension2reader = {**settings.extension2reader,
                                 str(folder.resolve()) + "/": PLUGIN}
    viewer.open(folder, plugin=None)
    _check_ct_layer(viewer.layers[0], hu)


def test_user_reader_choice_is_not_overwritten():
    settings = get_settings().plugins
    settings.extension2reader = {**settings.extension2reader, "*.dicom": "napari"}
    try:
        added = _reader.prefer_this_reader_for_dicom()
        assert "*.dicom" not in added
        assert settings.extension2reader["*.dicom"] == "napari"
    finally:
        settings.extension2reader = {**settings.extension2reader, "*.dicom": PLUGIN}


def test_png_tif_jpg_are_not_claimed(tmp_path):
    for name in ("a.png", "b.tif", "c.tiff", "d.jpg", "e.jpeg"):
        (tmp_path / name).write_bytes(b"\x89PNG")
        assert _reader.napari_get_reader(str(tmp_path / name)) is None
    assert _reader.napari_get_reader([str(tmp_path / "a.png"), str(tmp_path)]) is None


def test_monochrome1_radiograph_real_file(make_napari_viewer, testdata, notes):
    """RG1 is a real MONOCHROME1 PA chest with an invalid PixelSpacing of 0."""
    viewer = make_napari_viewer()
    viewer.open(testdata("RG1_UNCR.dcm"), plugin=PLUGIN)
    (layer,) = viewer.layers
    assert layer.name.startswith("CR frontal")
    np.testing.assert_allclose(layer.scale, (1.0, 1.0))  # pixels ...
    assert any("no valid pixel spacing" in m for m in notes["warning"])  # ... and says so
    data = np.asarray(layer.data)
    h, w = data.shape
    mediastinum = np.median(data[h // 3:h // 2, int(w * 0.45):int(w * 0.55)])
    lung = np.median(data[h // 3:h // 2, int(w * 0.2):int(w * 0.3)])
    low, high = layer.contrast_limits
    assert low < lung < mediastinum  # dense mediastinum brighter than air-filled lung
    assert layer.colormap.name == "gray"
    assert layer.metadata["acquisition"]["view_position"] == "PA"


def test_synthetic_monochrome1_radiograph_scale_and_polarity(make_napari_viewer, tmp_path):
    path, stored = write_radiograph(tmp_path / "dx.dcm", photometric="MONOCHROME1")
    viewer = make_napari_viewer()
    viewer.open(path, plugin=PLUGIN)
    (layer,) = viewer.layers
    np.testing.assert_allclose(layer.scale, (0.2, 0.25))  # ImagerPixelSpacing
    data = np.asarray(layer.data)
    assert data[20, 15] > data[2, 2]  # the body (stored low) displays bright


@pytest.mark.parametrize("kind", ["junk_folder", "corrupt_dcm", "empty_dcm", "truncated_ct"])
def test_bad_input_gives_no_layers_and_no_exception(make_napari_viewer, tmp_path, testdata,
                                                    notes, kind):
    if kind == "junk_folder":
        path = tmp_path / "junk"
        path.mkdir()
        for n in range(20):
            (path / f"f{n}.txt").write_bytes(np.random.default_rng(n).bytes(300))
    elif kind == "corrupt_dcm":
        path = tmp_path / "corrupt.dcm"
        path.write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 50)
    elif kind == "empty_dcm":
        path = tmp_path / "empty.dcm"
        path.write_bytes(b"")
    else:
        path = tmp_path / "cut.dcm"
        path.write_bytes(testdata("CT_small.dcm").read_bytes()[:5000])
    viewer = make_napari_viewer()
    viewer.open(path, plugin=PLUGIN)
    assert len(viewer.layers) == 0
    said = notes["error"] + notes["warning"]
    assert said and all("Traceback" not in m for m in said)
    assert any(path.name in m for m in said)
    if kind != "junk_folder":
        # a toast shows its start: the file's name and the problem, the folder at the end
        firsts = [m.split("\n")[0] for m in said]
        assert any(m.startswith(f"{path.name}: ") and m.rstrip(".").endswith(
            f"(in {path.parent})") for m in firsts), said


def test_one_unreadable_slice_is_skipped_and_named(make_napari_viewer, ct_folder, notes):
    folder, hu = ct_folder
    victim = sorted(folder.iterdir())[2]
    victim.write_bytes(victim.read_bytes()[:400])
    viewer = make_napari_viewer()
    viewer.open(folder, plugin=PLUGIN)
    assert len(viewer.layers) >= 1
    assert any(victim.name in m for m in notes["warning"])


def test_screenshot_shows_the_ct(make_napari_viewer, ct_folder):
    folder, _ = ct_folder
    viewer = make_napari_viewer(show=True)
    viewer.open(folder, plugin=PLUGIN)
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=False, flash=False)
    assert shot.ndim == 3 and shot[..., :3].std() > 10
    canvas = viewer.screenshot(canvas_only=True, flash=False)
    viewer.layers[0].visible = False
    empty = viewer.screenshot(canvas_only=True, flash=False)
    assert canvas[..., :3].std() > 10  # the disc and the air around it
    assert np.abs(canvas.astype(int) - empty.astype(int)).mean() > 5


def test_real_ct_slice_and_path_list(make_napari_viewer, testdata):
    viewer = make_napari_viewer()
    viewer.open(testdata("CT_small.dcm"), plugin=PLUGIN)
    (layer,) = viewer.layers
    assert layer.data.shape[0] == 1 and layer.name.startswith("CT")
    volume = layer.metadata[VOLUME_KEY]
    np.testing.assert_allclose(layer.data_to_world((0, 10, 20)),
                               volume.index_to_lps(np.array([0, 10, 20]))[::-1], atol=1e-6)
    layers = _reader.read_dicom([testdata("CT_small.dcm"), testdata("MR_small.dcm")])
    assert {kw["name"].split()[0] for _, kw, _ in layers} == {"CT", "MR"}
    (mr,) = [(data, kw) for data, kw, _ in layers if kw["name"].startswith("MR")]
    low, high = mr[1]["contrast_limits"]  # not an HU window: the MR's own range
    assert mr[0].min() <= low <= np.percentile(mr[0], 1) < high <= mr[0].max()


def test_window_widget_switches_presets(make_napari_viewer, ct_folder):
    folder, _ = ct_folder
    viewer = make_napari_viewer()
    viewer.open(folder, plugin=PLUGIN)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "CT window presets")
    layer = viewer.layers[0]
    widget.preset.value = "calcium"
    np.testing.assert_allclose(layer.contrast_limits, (0.0, 600.0))
    widget.preset.value = "bone"
    np.testing.assert_allclose(layer.contrast_limits, (-500.0, 1300.0))
    assert layer.metadata["calcinosis"]["window"] == "bone"
    # the keyboard shortcut reaches the same function
    from napari.utils.key_bindings import KeyBinding

    action = viewer.keymap[KeyBinding.from_str("Alt-3")]
    action(viewer)
    np.testing.assert_allclose(layer.contrast_limits, (-1350.0, 150.0))
    assert widget.preset.value == "lung"
    # a second panel (closed and reopened) takes the keys over without an error
    from napari_calcinosis._qt.window_widget import WindowPresetWidget

    again = WindowPresetWidget(viewer)
    viewer.keymap[KeyBinding.from_str("Alt-4")](viewer)
    assert again.preset.value == "calcium"
    np.testing.assert_allclose(layer.contrast_limits, (0.0, 600.0))


# Some MR series of that tree are oblique: napari says once that it slices them without the
# out-of-plane rotation (the geometry in the layer stays exact).
@pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning")
def test_dicomdir_tree_opens_through_its_folder(make_napari_viewer, testdata):
    folder = testdata("DICOMDIR").parent
    viewer = make_napari_viewer()
    viewer.open(folder, plugin=PLUGIN)
    kinds = [layer.metadata["calcinosis"]["kind"] for layer in viewer.layers]
    modalities = [layer.metadata["modality"] for layer in viewer.layers]
    assert kinds.count("volume") >= 2 and modalities.count("CT") >= 2
    assert all("Doe" not in layer.name for layer in viewer.layers)
    # npe2 lower-cases patterns but not the upper-case name DICOMDIR, so napari cannot route
    # the file itself to a reader; the reader function takes it when called directly.
    layers = _reader.read_dicom(testdata("DICOMDIR"))
    assert 2 <= len(layers) <= len(viewer.layers)  # the folder also holds unlisted files
