"""Core objects -> napari layers: geometry, windows, names and metadata (no viewer needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from napari.layers import Image

from napari_calcinosis._napari.layer_data import (
    VOLUME_KEY,
    display_axes,
    layer_name,
    radiograph_layer_data,
    study_layer_data,
    study_messages,
    volume_layer_data,
)
from napari_calcinosis.review import WINDOW_PRESETS, contrast_limits, matching_window
from napari_calcinosis.types import Radiograph, SeriesInfo, SetAside, Study, Volume


def _info(**kw) -> SeriesInfo:
    base = dict(series_instance_uid="1.2.3", modality="CT", series_description="Thorax 1.0 B30f",
                series_number=4, patient_name="Doe^Jane", patient_id="PID12345")
    base.update(kw)
    return SeriesInfo(**base)


def _volume(direction: np.ndarray, **kw) -> Volume:
    hu = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    return Volume(hu=hu, spacing_zyx_mm=(3.0, 0.5, 0.75), origin_lps_mm=np.array([10., -5., 80.]),
                  direction_lps=direction, info=_info(), **kw)


# Columns: slice direction, direction of increasing row, of increasing column (LPS).
AXIAL = np.column_stack([(0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)])
_ROW_COSINE = np.array([1.0, 0.0, 0.0])  # direction of increasing column index
_COL_COSINE = np.array([0.0, np.cos(np.deg2rad(20)), -np.sin(np.deg2rad(20))])  # tilted rows
OBLIQUE = np.column_stack([np.cross(_ROW_COSINE, _COL_COSINE), _COL_COSINE, _ROW_COSINE])


FEET_FIRST = np.column_stack([(0.0, 0.0, -1.0), (0.0, 1.0, 0.0), (-1.0, 0.0, 0.0)])
CORONAL = np.column_stack([(0.0, 1.0, 0.0), (0.0, 0.0, -1.0), (1.0, 0.0, 0.0)])
ORIENTATIONS = {"axial": AXIAL, "feet_first": FEET_FIRST, "coronal": CORONAL,
                "oblique": OBLIQUE}


def _layer(data, kwargs, orientation):
    if orientation != "oblique":
        return Image(data, **kwargs)
    # napari cannot slice obliquely in 2-D and says so once; the geometry stays exact.
    with pytest.warns(UserWarning, match="Non-orthogonal slicing"):
        return Image(data, **kwargs)


@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_voxel_world_coordinate_is_patient_coordinate(orientation):
    volume = _volume(ORIENTATIONS[orientation])
    data, kwargs, kind = volume_layer_data(volume)
    assert kind == "image"
    if orientation == "axial":
        assert "affine" not in kwargs
        assert kwargs["scale"] == pytest.approx((3.0, 0.5, 0.75))
        assert kwargs["translate"] == pytest.approx((80.0, -5.0, 10.0))
    else:
        assert "scale" not in kwargs and kwargs["affine"].shape == (4, 4)
    layer = _layer(data, kwargs, orientation)
    axes = list(display_axes(volume))
    for index in [(0, 0, 0), (3, 4, 5), (1, 2, 3)]:
        shown_index = tuple(np.asarray(index)[axes])
        assert data[shown_index] == volume.hu[index]
        world = np.asarray(layer.data_to_world(shown_index))
        expected_lps = volume.index_to_lps(np.array(index))
        np.testing.assert_allclose(world, expected_lps[::-1], atol=1e-9)


def test_coronal_series_is_shown_through_a_transposed_view():
    volume = _volume(CORONAL)
    data, kwargs, _ = volume_layer_data(volume)
    assert display_axes(volume) == (1, 0, 2)
    assert data.base is volume.hu or np.shares_memory(data, volume.hu)
    lin = kwargs["affine"][:3, :3]
    assert np.allclose(lin, np.diag(np.diag(lin)))  # orthogonal for napari: no warning


def test_ct_defaults_soft_tissue_window_and_metadata():
    volume = _volume(AXIAL)
    data, kwargs, _ = volume_layer_data(volume)
    assert kwargs["contrast_limits"] == [-160.0, 240.0]
    assert kwargs["colormap"] == "gray"
    meta = kwargs["metadata"]
    assert meta["calcinosis"]["kind"] == "volume"
    assert meta["calcinosis"]["series_instance_uid"] == "1.2.3"
    assert meta["calcinosis"]["window_presets"]["calcium"] == (0.0, 600.0)
    assert meta[VOLUME_KEY] is volume
    assert meta["acquisition"]["spacing_zyx_mm"] == [3.0, 0.5, 0.75]
    assert meta["patient_id"] == "PID12345"  # patient facts live in metadata ...
    assert "Doe" not in kwargs["name"] and "PID" not in kwargs["name"]  # ... never in names
    assert kwargs["name"] == "CT Thorax 1.0 B30f #4"
    assert data is volume.hu  # no copy of a large volume


def test_padding_is_shown_as_air():
    volume = _volume(AXIAL, padding_value_hu=-2000.0)
    mask = np.zeros(volume.shape, bool)
    mask[:, 0, :] = True
    volume.padding_mask = mask
    volume.hu[mask] = -2000
    data, _, _ = volume_layer_data(volume)
    assert np.all(data[mask] == -1000) and np.array_equal(data[~mask], volume.hu[~mask])


def test_layer_name_strips_patient_data_from_description():
    info = _info(series_description="CT DOE JANE pid12345 thorax", series_number=None)
    assert layer_name(info) == "CT thorax"


def test_window_presets():
    assert contrast_limits("soft_tissue") == (-160.0, 240.0)
    assert contrast_limits("bone") == (-500.0, 1300.0)
    assert contrast_limits("lung") == (-1350.0, 150.0)
    assert contrast_limits("calcium") == (0.0, 600.0)
    assert matching_window((-500.0, 1300.0)) == "bone"
    assert matching_window((1.0, 2.0)) is None
    with pytest.raises(KeyError, match="soft_tissue"):
        contrast_limits("brain")
    assert set(WINDOW_PRESETS) == {"soft_tissue", "bone", "lung", "calcium"}


def _radiograph(**kw) -> Radiograph:
    image = np.linspace(0, 4000, 30 * 20, dtype=np.float32).reshape(30, 20)
    info = _info(modality="DX", series_description="Chest", series_number=1)
    return Radiograph(image=image, info=info, **kw)


def test_radiograph_scale_window_and_view():
    rg = _radiograph(window=(100.0, 3000.0), pixel_spacing_mm=(0.143, 0.15),
                     spacing_source="PixelSpacing", view="frontal", view_position="PA")
    data, kwargs, kind = radiograph_layer_data(rg)
    assert kind == "image" and data is rg.image
    assert kwargs["scale"] == (0.143, 0.15)
    assert kwargs["contrast_limits"] == [100.0, 3000.0]
    assert kwargs["name"] == "DX frontal Chest #1"
    assert kwargs["metadata"]["acquisition"]["view_position"] == "PA"
    assert kwargs["metadata"]["calcinosis"]["kind"] == "radiograph"


def test_radiograph_without_spacing_or_window_is_in_pixels_with_robust_limits():
    rg = _radiograph(view="lateral", warnings=["x.dcm: no valid pixel spacing"])
    _, kwargs, _ = radiograph_layer_data(rg)
    assert kwargs["scale"] == (1.0, 1.0)
    low, high = kwargs["contrast_limits"]
    assert 0 < low < 100 and 3900 < high < 4000  # 0.5 and 99.5 percentiles of a ramp
    assert study_messages(Study(radiographs=[rg])) == ["x.dcm: no valid pixel spacing"]


def test_study_layers_order_visibility_and_messages():
    frontal = _radiograph(view="frontal", pixel_spacing_mm=(0.2, 0.2))
    lateral = _radiograph(view="lateral", pixel_spacing_mm=(0.2, 0.2))
    study = Study(volumes=[_volume(AXIAL)], radiographs=[frontal, lateral],
                  set_aside=[SetAside(Path(f"/x/sr{i}.dcm"), "structured report")
                             for i in range(5)],
                  warnings=["gap between slices 3 and 4"])
    layers = study_layer_data(study)
    assert [kw["name"].split()[1] for _, kw, _ in layers[1:]] == ["frontal", "lateral"]
    assert [kw.get("visible", True) for _, kw, _ in layers] == [True, False, False]
    alone = study_layer_data(Study(radiographs=[frontal, lateral]))
    assert [kw.get("visible", True) for _, kw, _ in alone] == [True, False]
    assert "translate" not in alone[0][1]  # world = mm on the image
    # with a CT, the radiographs are centred on the CT's in-plane centre (home view on the CT)
    volume = study.volumes[0]
    centre_yx = volume.index_to_lps((np.array(volume.shape) - 1) / 2)[::-1][1:]
    for _, kw, _ in layers[1:]:
        size = np.array(frontal.image.shape) * np.array(kw["scale"])
        np.testing.assert_allclose(np.array(kw["translate"]) + size / 2, centre_yx)
    # every layer's axes in mm; with a radiograph in pixels none names a unit (napari wants
    # one kind of unit in its world and warns on every layer otherwise)
    assert {kw["units"] for _, kw, _ in layers} == {("mm", "mm", "mm"), ("mm", "mm")}
    unscaled = study_layer_data(Study(volumes=[_volume(AXIAL)], radiographs=[
        frontal, _radiograph(view="lateral")]))
    assert all("units" not in kw for _, kw, _ in unscaled)
    messages = study_messages(study)
    assert messages[0] == "gap between slices 3 and 4"
    assert "Set aside sr0.dcm, sr1.dcm, sr2.dcm and 2 more: structured report" in messages
