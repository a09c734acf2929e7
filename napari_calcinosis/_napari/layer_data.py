"""Core image objects -> napari LayerData tuples (no Qt, no viewer).

World coordinates of a CT layer are DICOM patient coordinates in mm, ordered ``(z, y, x)``
(see :mod:`napari_calcinosis.types.model`), so a position napari shows is the patient LPS
position of that voxel. Radiographs have no patient frame: their world unit is mm on the image
(or pixels when the file gives no spacing).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from napari_calcinosis.review import DEFAULT_WINDOW, WINDOW_PRESETS, contrast_limits
from napari_calcinosis.types import Radiograph, SeriesInfo, Study, Volume

LayerDataTuple = tuple[Any, dict[str, Any], str]

#: Private ``layer.metadata`` keys holding the core objects for later steps.
VOLUME_KEY = "_calcinosis_volume"
RADIOGRAPH_KEY = "_calcinosis_radiograph"
#: ``metadata["calcinosis"]`` key of the loaded study's own warnings (``Study.warnings``).
STUDY_WARNINGS = "study_warnings"

_AIR_HU = -1000.0


def _patient_tokens(info: SeriesInfo) -> list[str]:
    """Words of the patient's name, ID and birth date (never allowed into a layer name)."""
    words = re.split(r"[\^\s,]+", info.patient_name)
    words += [info.patient_id, info.patient_birth_date]
    return [w for w in words if len(w) >= 2]


def safe_description(info: SeriesInfo) -> str:
    """SeriesDescription with any word of the patient's name, ID or birth date removed."""
    text = info.series_description
    for token in _patient_tokens(info):
        text = re.sub(re.escape(token), "", text, flags=re.IGNORECASE)
    return " ".join(text.split())


def layer_name(info: SeriesInfo, view: str = "") -> str:
    """Layer name from modality, view, series description and number; no patient data."""
    description = safe_description(info)
    modality = info.modality or "DICOM"
    if description.split(" ", 1)[0].upper() == modality.upper():
        modality = ""  # "CT CT thorax" reads badly
    parts = [modality, view, description]
    name = " ".join(p for p in parts if p)
    if info.series_number is not None:
        name += f" #{info.series_number}"
    return name


def _shown_hu(volume: Volume) -> np.ndarray:
    """The HU array with padding voxels shown as air (no copy when they already are)."""
    # -1024 (the usual value) already looks like air: copy a large volume only when needed.
    if volume.padding_mask is None or abs(volume.padding_value_hu - _AIR_HU) <= 50:
        return volume.hu
    return np.where(volume.padding_mask, np.asarray(_AIR_HU, volume.hu.dtype), volume.hu)


#: Units of a layer's world axes (z, y, x) when its geometry is in mm.
MM_UNITS = ("mm", "mm", "mm")


def display_axes(volume: Volume) -> tuple[int, int, int]:
    """Data axis shown along each world axis (z, y, x): the identity for axial series.

    A coronal or sagittal series is shown through a transposed *view* of its array so that napari
    slices it along world axes (an affine that permutes axes makes napari slice non-orthogonally).
    """
    lin = np.abs(volume.napari_affine()[:3, :3])
    order = tuple(int(a) for a in np.argmax(lin, axis=1))
    return order if sorted(order) == [0, 1, 2] else (0, 1, 2)  # type: ignore[return-value]


def to_display(array: np.ndarray, volume: Volume) -> np.ndarray:
    """``array`` laid out like ``volume.hu`` -> the layout the napari layer shows (a view)."""
    axes = display_axes(volume)
    return array if axes == (0, 1, 2) else array.transpose(axes)


def layer_geometry(volume: Volume) -> dict[str, Any]:
    """napari kwargs placing the display array in patient coordinates (z, y, x), in mm.

    ``scale``/``translate`` when the grid is axis aligned (napari shows plain scale), otherwise
    the full ``affine``; ``units`` in mm (napari's scale bar and status show mm). Layers of
    results on this volume (labels, ...) take the same kwargs.
    """
    affine = volume.napari_affine()
    affine[:3, :3] = affine[:3, :3][:, list(display_axes(volume))]
    lin = affine[:3, :3]
    if np.allclose(lin, np.diag(np.diag(lin)), atol=1e-4) and np.all(np.diag(lin) > 0):
        return {"scale": tuple(np.diag(lin)), "translate": tuple(affine[:3, 3]),
                "units": MM_UNITS}
    return {"affine": affine, "units": MM_UNITS}


def volume_metadata(volume: Volume, *, window: str | None = DEFAULT_WINDOW) -> dict[str, Any]:
    """``layer.metadata`` of a CT layer: series facts, acquisition facts, calcinosis keys."""
    meta = volume.info.as_metadata()
    meta["acquisition"] = {
        "shape_zyx": list(volume.shape),
        "spacing_zyx_mm": [float(s) for s in volume.spacing_zyx_mm],
        "origin_lps_mm": [float(v) for v in volume.origin_lps_mm],
        "direction_lps": np.asarray(volume.direction_lps, float).tolist(),
        "gantry_tilt_deg": float(volume.gantry_tilt_deg),
        "slice_count": int(volume.shape[0]),
        "warnings": list(volume.warnings),
    }
    meta["calcinosis"] = {
        "kind": "volume",
        "series_instance_uid": volume.info.series_instance_uid,
        "window": window,
        "window_presets": {k: p.limits_hu for k, p in WINDOW_PRESETS.items()},
    }
    meta[VOLUME_KEY] = volume
    return meta


def volume_layer_data(volume: Volume, *, window: str = DEFAULT_WINDOW) -> LayerDataTuple:
    """One CT series as an Image LayerData tuple in HU, placed in patient coordinates.

    Parameters
    ----------
    volume : Volume
        The CT series.
    window : str
        Name of the initial window preset (see :mod:`napari_calcinosis.review._windows`).

    Returns
    -------
    tuple
        ``(data, kwargs, "image")``.
    """
    is_ct = volume.info.modality == "CT"
    kwargs: dict[str, Any] = {
        "name": layer_name(volume.info),
        "colormap": "gray",
        # HU windows mean nothing for other modalities (an MR series, say).
        "contrast_limits": list(contrast_limits(window)) if is_ct else _robust_limits(volume.hu),
        "metadata": volume_metadata(volume, window=window if is_ct else None),
        **layer_geometry(volume),
    }
    return (to_display(_shown_hu(volume), volume), kwargs, "image")


def _robust_limits(image: np.ndarray) -> list[float]:
    """The 0.5 and 99.5 percentiles (of a subsample for large arrays)."""
    flat = image.ravel()
    sample = flat[:: max(1, flat.size // 1_000_000)]
    low, high = np.percentile(sample, [0.5, 99.5])
    return [float(low), float(high) if high > low else float(low) + 1.0]


def _radiograph_limits(radiograph: Radiograph) -> list[float]:
    """The file's window, else the 0.5..99.5 percentiles of the image."""
    if radiograph.window is not None and radiograph.window[1] > radiograph.window[0]:
        return [float(radiograph.window[0]), float(radiograph.window[1])]
    return _robust_limits(radiograph.image)


def radiograph_metadata(radiograph: Radiograph) -> dict[str, Any]:
    """``layer.metadata`` of a radiograph layer."""
    meta = radiograph.info.as_metadata()
    meta["acquisition"] = {
        "shape_rc": list(radiograph.image.shape),
        "pixel_spacing_mm": (list(radiograph.pixel_spacing_mm)
                             if radiograph.pixel_spacing_mm else None),
        "spacing_source": radiograph.spacing_source,
        "photometric": radiograph.photometric,
        "view": radiograph.view,
        "view_position": radiograph.view_position,
        "patient_orientation": list(radiograph.patient_orientation),
        "image_laterality": radiograph.image_laterality,
        "warnings": list(radiograph.warnings),
    }
    meta["calcinosis"] = {
        "kind": "radiograph",
        "series_instance_uid": radiograph.info.series_instance_uid,
        "sop_instance_uid": radiograph.sop_instance_uid,
        "view": radiograph.view,
    }
    meta[RADIOGRAPH_KEY] = radiograph
    return meta


def radiograph_layer_data(radiograph: Radiograph) -> LayerDataTuple:
    """One radiograph as an Image LayerData tuple, scaled in mm (or pixels)."""
    view = radiograph.view or radiograph.view_position or "radiograph"
    scale = radiograph.pixel_spacing_mm or (1.0, 1.0)
    kwargs: dict[str, Any] = {
        "name": layer_name(radiograph.info, view),
        "colormap": "gray",
        "contrast_limits": _radiograph_limits(radiograph),
        "scale": tuple(float(s) for s in scale),
        "metadata": radiograph_metadata(radiograph),
    }
    if radiograph.pixel_spacing_mm:  # without a spacing the axes stay in pixels
        kwargs["units"] = MM_UNITS[1:]
    return (radiograph.image, kwargs, "image")


def study_layer_data(study: Study, *, window: str = DEFAULT_WINDOW) -> list[LayerDataTuple]:
    """Every series of a study as LayerData: CT volumes first, then radiographs.

    Radiographs share no frame with the CT, so they start hidden when a CT is present, and only
    the first radiograph starts visible otherwise (views of one patient would overlap). With a
    CT, each radiograph is shifted (``translate``) so that its centre lies on the CT's in-plane
    centre: the world extent, and so napari's home view, stays on the CT. Overlays on a
    radiograph must take that layer's ``scale`` and ``translate``. Every layer's axes are in
    mm (``units``) unless a radiograph has no pixel spacing: then none names a unit.
    """
    layers = [volume_layer_data(v, window=window) for v in study.volumes]
    for index, radiograph in enumerate(study.radiographs):
        data, kwargs, kind = radiograph_layer_data(radiograph)
        kwargs["visible"] = not study.volumes and index == 0
        if study.volumes:
            size_mm = np.asarray(radiograph.image.shape, float) * np.asarray(kwargs["scale"])
            kwargs["translate"] = tuple(_in_plane_centre(study.volumes[0]) - size_mm / 2)
        layers.append((data, kwargs, kind))
    for _, kwargs, _ in layers:
        # What the study (not one series) warned about, for the findings of an export.
        kwargs["metadata"]["calcinosis"][STUDY_WARNINGS] = list(study.warnings)
    if not all("units" in kwargs for _, kwargs, _ in layers):
        # A radiograph without pixel spacing is in pixels: napari wants one kind of unit for
        # the whole world (else it warns on every layer), so none is named.
        for _, kwargs, _ in layers:
            kwargs.pop("units", None)
    return layers


def _in_plane_centre(volume: Volume) -> np.ndarray:
    """World ``(y, x)`` of the centre of a volume's grid."""
    centre_index = (np.asarray(volume.shape, float) - 1) / 2
    return volume.index_to_lps(centre_index)[::-1][1:]


def study_messages(study: Study) -> list[str]:
    """Every warning of a study, its series and its set-aside files, once each, in order.

    (``core.dicom`` already warns about a radiograph without pixel spacing.)
    """
    messages = list(study.warnings)
    for item in [*study.volumes, *study.radiographs]:
        messages.extend(item.warnings)
    messages.extend(study.set_aside_messages())
    return list(dict.fromkeys(messages))
