"""Projection radiographs (CR, DX and other single-frame images without a patient position).

The image is returned after the modality LUT, with MONOCHROME1 inverted so that a larger
value always means more attenuation (brighter on screen). The inversion maps the stored range
onto itself (``low + high - value``), so the display window can be converted exactly.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pydicom.pixels
from pydicom.dataset import Dataset

from napari_calcinosis.types import Radiograph

from ._header import FileHeader, series_info
from ._pixels import decode_file

RADIOGRAPH_MODALITIES = {"CR", "DX", "RG", "MG", "IO", "PX", "RF", "XA", "DF"}
PERCENTILE_WINDOW = (0.5, 99.5)
_LATERAL_WORDS = re.compile(r"\b(LAT|LATERAL|LL|RL|LLD|RLD|SEITLICH)\b")
_FRONTAL_WORDS = re.compile(r"\b(PA|AP|FRONTAL|P\.A\.|A\.P\.|AP/PA|PA/AP)\b")


def _modality_range(ds: Dataset) -> tuple[float, float]:
    """Lowest and highest value the modality LUT can produce from the stored bit range."""
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    ends = np.array([-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] if signed else [0, 2**bits - 1])
    mapped = np.asarray(pydicom.pixels.apply_modality_lut(ends, ds), dtype=float)
    return float(mapped.min()), float(mapped.max())


def _file_window(ds: Dataset) -> tuple[float, float] | None:
    """``(low, high)`` in modality units from the VOI LUT sequence or the first window."""
    for item in ds.get("VOILUTSequence") or []:
        descriptor = item.get("LUTDescriptor")
        if descriptor and len(descriptor) == 3:
            entries = int(descriptor[0]) or 65536
            first = int(descriptor[1])
            return float(first), float(first + entries - 1)
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None:
        return None
    try:
        center = float(center[0] if isinstance(center, (list, tuple, pydicom.multival.MultiValue))
                       else center)
        width = float(width[0] if isinstance(width, (list, tuple, pydicom.multival.MultiValue))
                      else width)
    except (TypeError, ValueError, IndexError):
        return None
    if not (np.isfinite(center) and np.isfinite(width) and width > 0):
        return None
    return center - width / 2.0, center + width / 2.0


def _spacing(ds: Dataset, warnings: list[str], name: str) -> tuple[tuple[float, float] | None,
                                                                   str]:
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(key)
        if value is None:
            continue
        try:
            pair = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            pair = ()
        if len(pair) == 2 and all(np.isfinite(v) and v > 0 for v in pair):
            if key == "ImagerPixelSpacing":
                warnings.append(
                    f"{name}: spacing from ImagerPixelSpacing ({pair[0]:g} x {pair[1]:g} mm), "
                    f"measured at the detector, so sizes are magnified (too large)"
                )
            return (pair[0], pair[1]), key
        warnings.append(f"{name}: {key} {list(value)} is invalid and was ignored")
    warnings.append(f"{name}: no valid pixel spacing; measurements are in pixels")
    return None, "none"


def _view(ds: Dataset) -> str | None:
    position = str(ds.get("ViewPosition", "") or "").upper().strip()
    if position in ("PA", "AP"):
        return "frontal"
    if position in ("LL", "RL", "LAT", "LATERAL", "LLD", "RLD"):
        return "lateral"
    for item in ds.get("ViewCodeSequence") or []:
        meaning = str(item.get("CodeMeaning", "")).lower()
        if "lateral" in meaning:
            return "lateral"
        if "posterior" in meaning or "anterior" in meaning or "frontal" in meaning:
            return "frontal"
    for key in ("SeriesDescription", "ProtocolName", "AcquisitionDeviceProcessingDescription"):
        text = str(ds.get(key, "") or "").upper()
        lateral, frontal = _LATERAL_WORDS.search(text), _FRONTAL_WORDS.search(text)
        if bool(lateral) != bool(frontal):
            return "lateral" if lateral else "frontal"
    return None


def _strings(value: object) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return tuple(str(v) for v in value)
    return (str(value),)


def build_radiograph(header: FileHeader) -> Radiograph:
    """Decode a single-frame projection image into a :class:`Radiograph`.

    Parameters
    ----------
    header : FileHeader
        The file's header (its pixel data are read here).

    Returns
    -------
    Radiograph
        ``image`` float32 after the modality LUT (MONOCHROME1 inverted), the display window,
        pixel spacing with its source, and the view.
    """
    ds = header.ds
    stored = decode_file(header)
    if stored.ndim == 3:
        stored = stored[0]
    image = np.asarray(pydicom.pixels.apply_modality_lut(stored, ds), dtype=np.float32)
    window = _file_window(ds)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if photometric == "MONOCHROME1":
        low, high = _modality_range(ds)
        image = np.float32(low + high) - image
        if window is not None:
            window = (low + high - window[1], low + high - window[0])
    if window is None:
        sample = image[::4, ::4]
        window = tuple(float(v) for v in np.percentile(sample, PERCENTILE_WINDOW))
    warnings: list[str] = []
    spacing, source = _spacing(ds, warnings, header.name)
    return Radiograph(
        image=image, info=series_info(ds), photometric=photometric,
        window=(float(window[0]), float(window[1])), pixel_spacing_mm=spacing,
        spacing_source=source, view=_view(ds),
        view_position=str(ds.get("ViewPosition", "") or "").strip(),
        patient_orientation=_strings(ds.get("PatientOrientation")),
        image_laterality=str(ds.get("ImageLaterality", "") or "").strip(),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")), file=Path(header.name),
        header=ds, warnings=warnings,
    )
