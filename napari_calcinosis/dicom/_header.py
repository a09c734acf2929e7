"""Reading DICOM headers once, and turning them into per-frame records.

A header is read with ``stop_before_pixels`` and the byte offset of the pixel data is kept,
so native pixel data can later be read straight into a preallocated array. Each image frame
(one per single-frame file, ``NumberOfFrames`` per enhanced multi-frame file) becomes a
:class:`Frame` with its own geometry and rescale, so single-frame series and enhanced
multi-frame objects are grouped and sorted by the same code.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from napari_calcinosis.types import DicomReadError, SeriesInfo

_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
_UNDEFINED_LENGTH = 0xFFFFFFFF

# SOP class UID prefixes of objects that carry no image to show (PS3.4 Annex B).
_NON_IMAGE_SOP_PREFIXES = {
    "1.2.840.10008.5.1.4.1.1.88.59": "key object selection (KOS)",
    "1.2.840.10008.5.1.4.1.1.88.": "structured report (SR)",
    "1.2.840.10008.5.1.4.1.1.11.": "presentation state",
    "1.2.840.10008.5.1.4.1.1.66.4": "segmentation (SEG)",
    "1.2.840.10008.5.1.4.1.1.66": "registration, fiducials or raw data",
    "1.2.840.10008.5.1.4.1.1.481.": "radiotherapy object",
    "1.2.840.10008.5.1.4.1.1.104.": "encapsulated document",
    "1.2.840.10008.5.1.4.1.1.9.": "waveform",
}
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"


@dataclass
class FileHeader:
    """One file's dataset (without pixel data) and where its pixel data lie.

    ``pixel_offset`` is the byte offset of the first pixel byte when the data are native
    (not encapsulated) and little endian; otherwise None and pydicom decodes the file.
    """

    path: Path
    name: str
    ds: Dataset
    has_pixels: bool
    pixel_offset: int | None
    pixel_length: int
    encapsulated: bool
    #: The transfer syntax had to be inferred (no Part-10 file meta: ACR-NEMA style).
    inferred_syntax: str = ""


def read_header(path: str | os.PathLike[str], *, name: str | None = None) -> FileHeader:
    """Read a DICOM file's header (everything before the pixel data).

    Parameters
    ----------
    path : str or path-like
        The file.
    name : str, optional
        How to name the file in messages (e.g. ``archive.zip/member``); default the path.

    Returns
    -------
    FileHeader

    Raises
    ------
    DicomReadError
        When the file cannot be parsed as DICOM or its pixel data are truncated.
    """
    path = Path(path)
    label = name or str(path)
    try:
        with open(path, "rb") as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
            start = fp.tell()
            element = fp.read(12)
            size = os.fstat(fp.fileno()).st_size
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on garbage input
        raise DicomReadError(f"{label}: not a readable DICOM file ({exc})") from exc
    if "SOPClassUID" not in ds and "Rows" not in ds and not is_dicomdir(ds):
        raise DicomReadError(f"{label}: not a DICOM file (no SOP class and no image)")
    header = FileHeader(path, label, ds, False, None, 0, False)
    _locate_pixels(header, start, element, size)
    _infer_transfer_syntax(header)
    return header


def _infer_transfer_syntax(header: FileHeader) -> None:
    """A file without Part-10 meta (or without its TransferSyntaxUID) is read with the
    encoding pydicom found in it; the loader warns that it did so."""
    ds = header.ds
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = ds.original_encoding
    if implicit is None:
        return
    syntax = (pydicom.uid.ImplicitVRLittleEndian if implicit else
              pydicom.uid.ExplicitVRLittleEndian if little else pydicom.uid.ExplicitVRBigEndian)
    if meta is None:
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    header.inferred_syntax = syntax.name


def _locate_pixels(header: FileHeader, start: int, element: bytes, size: int) -> None:
    if len(element) < 8:
        return
    implicit, little = header.ds.original_encoding
    if not little:
        header.has_pixels = struct.unpack(">I", element[:4])[0] in _PIXEL_TAGS
        return
    group, elem = struct.unpack("<HH", element[:4])
    if (group << 16 | elem) not in _PIXEL_TAGS:
        return
    header.has_pixels = True
    if implicit:
        (length,), value_at = struct.unpack("<I", element[4:8]), start + 8
    else:
        if len(element) < 12:
            raise DicomReadError(f"{header.name}: pixel data truncated")
        (length,), value_at = struct.unpack("<I", element[8:12]), start + 12
    header.pixel_length = length
    if length == _UNDEFINED_LENGTH:
        header.encapsulated = True
        return
    if value_at + length > size:
        raise DicomReadError(
            f"{header.name}: pixel data truncated ({size - value_at} of {length} bytes)"
        )
    header.pixel_offset = value_at


def is_dicomdir(ds: Dataset) -> bool:
    """True for a DICOMDIR (media storage directory) index."""
    meta = getattr(ds, "file_meta", None) or {}
    sop = str(meta.get("MediaStorageSOPClassUID", "") or ds.get("SOPClassUID", ""))
    return sop == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds


def non_image_reason(header: FileHeader) -> str | None:
    """Why a file is not an image the plugin shows, or None when it is one."""
    ds = header.ds
    sop = str(ds.get("SOPClassUID", ""))
    for prefix, what in _NON_IMAGE_SOP_PREFIXES.items():
        if sop.startswith(prefix):
            return f"{what}: not an image; kept for reference"
    if not header.has_pixels:
        return f"no pixel data ({_sop_name(sop)})"
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2") or "MONOCHROME2")
    samples, bits = _int(ds, "SamplesPerPixel", 1), _int(ds, "BitsAllocated", 16)
    if samples is None or bits is None:
        return "SamplesPerPixel or BitsAllocated is not a whole number"
    if samples != 1 or not photometric.startswith("MONOCHROME"):
        return f"colour image ({photometric.strip()}): not supported"
    if bits not in (8, 16, 32):
        return f"{ds.get('BitsAllocated')}-bit pixel data (a mask, not an image)"
    return None


def _int(ds: Dataset, keyword: str, default: int) -> int | None:
    """A whole-number attribute (``default`` when absent), None when it is not one."""
    value = ds.get(keyword)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if np.isfinite(number) and number == int(number) else None


#: Bounds of what a real image header can say (beyond them the file is set aside).
MAX_MATRIX = 16384
SPACING_RANGE_MM = (0.01, 50.0)
MAX_POSITION_MM = 1e5
MAX_RESCALE = 1e4


#: Numeric attributes (IS, DS: the VRs whose conversion can raise) that the loader and the
#: detectors read after this check: each must at least convert to a value. Text VRs only
#: warn on bad values (those warnings become sentences, see ``_load``).
_READ_KEYWORDS = (
    "InstanceNumber", "SeriesNumber", "NumberOfFrames", "ImagePositionPatient",
    "ImageOrientationPatient", "PixelSpacing", "ImagerPixelSpacing", "SliceThickness",
    "SpacingBetweenSlices", "SliceLocation", "RescaleSlope", "RescaleIntercept",
    "WindowCenter", "WindowWidth", "KVP", "GantryDetectorTilt", "PixelPaddingValue")
_READ_TAGS = tuple((k, pydicom.datadict.tag_for_keyword(k)) for k in _READ_KEYWORDS)


def implausible_reason(header: FileHeader) -> str | None:
    """Why an image header cannot describe a real image (checked before any pixel is
    read or allocated), or None. Also when its pixel data are shorter than it says, or
    when an attribute the plugin reads cannot be converted to a value."""
    ds = header.ds
    for keyword, tag in _READ_TAGS:
        if tag in ds:  # a dict look-up; the conversion below is cached in the dataset
            try:
                ds[tag]
            except Exception as exc:  # noqa: BLE001 - pydicom's conversions raise many types
                return f"its {keyword} cannot be read ({exc})"
    rows, columns = _int(ds, "Rows", 0), _int(ds, "Columns", 0)
    bits, samples = _int(ds, "BitsAllocated", 16), _int(ds, "SamplesPerPixel", 1)
    if None in (rows, columns, bits, samples):
        return "Rows, Columns, BitsAllocated or SamplesPerPixel is not a whole number"
    if rows < 1 or columns < 1:
        return f"Rows x Columns is {rows} x {columns}: no image"
    if rows > MAX_MATRIX or columns > MAX_MATRIX:
        return (f"Rows x Columns is {rows} x {columns}, larger than any real image "
                f"({MAX_MATRIX})")
    frames = _declared_frames(ds)
    if frames is None:
        return f"NumberOfFrames {ds.get('NumberOfFrames')!r} is not a positive number"
    expected = rows * columns * frames * samples * bits // 8
    if header.pixel_length and not header.encapsulated and header.pixel_length < expected:
        return (f"its pixel data hold {header.pixel_length} bytes, fewer than the "
                f"{expected} its header describes ({frames} frame(s) of {rows} x {columns})")
    for keyword, low, high in (("PixelSpacing", *SPACING_RANGE_MM),
                               ("ImagerPixelSpacing", *SPACING_RANGE_MM)):
        values = _float_list(ds.get(keyword), 2) if keyword in ds else None
        if keyword in ds and ds.get(keyword) not in (None, "") and (
                values is None or not np.all((values >= low) & (values <= high))):
            if values is not None and np.all(values == 0):
                continue  # "0\\0" is a common way of saying "unknown": read as no spacing
            return f"{keyword} {_shown(ds.get(keyword))} mm is not a real pixel size"
    if "ImagePositionPatient" in ds and ds.get("ImagePositionPatient") not in (None, ""):
        position = _float_list(ds.get("ImagePositionPatient"), 3)
        if position is None or np.abs(position).max() > MAX_POSITION_MM:
            return (f"ImagePositionPatient {_shown(ds.get('ImagePositionPatient'))} is not a "
                    "position in a scanner")
    for keyword in ("RescaleSlope", "RescaleIntercept"):
        if str(ds.get(keyword, "") or "").strip() and _number(ds.get(keyword), None) is None:
            return f"{keyword} {_shown(ds.get(keyword))} is not a number"
    slope = _number(ds.get("RescaleSlope"), 1.0)
    intercept = _number(ds.get("RescaleIntercept"), 0.0)
    if slope is None or not np.isfinite(slope) or slope <= 0 or slope > MAX_RESCALE:
        return f"RescaleSlope {_shown(ds.get('RescaleSlope'))} is not a usable rescale"
    if intercept is None or not np.isfinite(intercept) or abs(intercept) > MAX_RESCALE:
        return f"RescaleIntercept {_shown(ds.get('RescaleIntercept'))} is not a usable rescale"
    return None


def _declared_frames(ds: Dataset) -> int | None:
    value = ds.get("NumberOfFrames")
    if value in (None, ""):
        return 1
    try:
        frames = int(value)
    except (TypeError, ValueError):
        return None
    return frames if frames >= 1 else None


def _shown(value: Any) -> str:
    text = "\\".join(str(v) for v in value) if isinstance(value, (list, tuple)) or \
        type(value).__name__ == "MultiValue" else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _sop_name(sop: str) -> str:
    if not sop:
        return "no SOP class"
    return pydicom.uid.UID(sop).name


def is_localizer(ds: Dataset) -> bool:
    """True when ImageType says LOCALIZER (a CT scout / MR survey image)."""
    image_type = ds.get("ImageType") or []
    if isinstance(image_type, str):
        image_type = [image_type]
    return any(str(v).upper() == "LOCALIZER" for v in image_type)


def number_of_frames(ds: Dataset) -> int:
    """NumberOfFrames, 1 when absent or invalid."""
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


@dataclass
class Frame:
    """One image frame with the geometry and rescale that apply to it."""

    header: FileHeader
    index: int
    position: np.ndarray | None
    orientation: np.ndarray | None
    pixel_spacing: tuple[float, float] | None
    slope: float
    intercept: float
    rows: int
    columns: int

    @property
    def normal(self) -> np.ndarray:
        """Unit normal: row cosines x column cosines."""
        assert self.orientation is not None
        normal = np.cross(self.orientation[:3], self.orientation[3:])
        return normal / np.linalg.norm(normal)

    def stacks_with(self, other: Frame, *, tolerance: float = 1e-3) -> bool:
        """True when both frames can be slices of one volume.

        Same size and pixel type, and orientation cosines and pixel spacing equal within
        ``tolerance`` (so the rounding jitter of decimal strings does not split a series).
        """
        a, b = self.header.ds, other.header.ds
        if (self.rows, self.columns, a.get("BitsAllocated"), a.get("PixelRepresentation")) != (
                other.rows, other.columns, b.get("BitsAllocated"), b.get("PixelRepresentation")):
            return False
        for mine, theirs, scale in ((self.orientation, other.orientation, 1.0),
                                    (self.pixel_spacing, other.pixel_spacing, None)):
            if (mine is None) != (theirs is None):
                return False
            if mine is not None:
                mine, theirs = np.asarray(mine), np.asarray(theirs)
                limit = tolerance * (scale or float(np.abs(mine).max()))
                if np.abs(mine - theirs).max() > limit:
                    return False
        return True


def _float_list(value: Any, count: int) -> np.ndarray | None:
    try:
        arr = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        return None
    if arr.shape != (count,) or not np.all(np.isfinite(arr)):
        return None
    return arr


def _group_item(ds: Dataset, frame_groups: Dataset | None, sequence: str) -> Dataset | None:
    """The item of a functional group sequence for a frame: per-frame first, then shared."""
    for source in (frame_groups, ds.get("SharedFunctionalGroupsSequence", [None])[0]):
        if source is not None and sequence in source and len(source[sequence].value):
            return source[sequence][0]
    return None


def frames_of(header: FileHeader) -> list[Frame]:
    """Frames of an image file, each with its own position, orientation and rescale."""
    ds = header.ds
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    count = number_of_frames(ds)
    if per_frame is None and "SharedFunctionalGroupsSequence" not in ds:
        return [_frame(header, 0, ds, ds, ds, ds)]
    frames = []
    for k in range(count):
        groups = per_frame[k] if per_frame is not None and k < len(per_frame) else None
        frames.append(_frame(
            header, k,
            _group_item(ds, groups, "PlanePositionSequence"),
            _group_item(ds, groups, "PlaneOrientationSequence"),
            _group_item(ds, groups, "PixelMeasuresSequence"),
            _group_item(ds, groups, "PixelValueTransformationSequence") or ds,
        ))
    return frames


def _frame(header: FileHeader, index: int, pos: Dataset | None, orient: Dataset | None,
           measures: Dataset | None, rescale: Dataset) -> Frame:
    spacing = None if measures is None else _float_list(measures.get("PixelSpacing"), 2)
    if spacing is not None and not np.all(spacing > 0):
        spacing = None
    orientation = None if orient is None else _float_list(
        orient.get("ImageOrientationPatient"), 6)
    if orientation is not None and np.linalg.norm(
            np.cross(orientation[:3], orientation[3:])) < 0.5:
        orientation = None  # degenerate cosines: treat as no orientation
    return Frame(
        header=header, index=index,
        position=None if pos is None else _float_list(pos.get("ImagePositionPatient"), 3),
        orientation=orientation,
        pixel_spacing=None if spacing is None else (float(spacing[0]), float(spacing[1])),
        slope=_number(rescale.get("RescaleSlope"), 1.0) or 1.0,
        intercept=_number(rescale.get("RescaleIntercept"), 0.0),
        rows=int(header.ds.get("Rows", 0) or 0),
        columns=int(header.ds.get("Columns", 0) or 0),
    )


def _number(value: Any, default: float | None) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if np.isfinite(out) else default


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _nested(ds: Dataset, sequence: str, keyword: str) -> Any:
    for source in (ds.get("SharedFunctionalGroupsSequence", [None])[0],
                   (ds.get("PerFrameFunctionalGroupsSequence") or [None])[0]):
        if source is not None and sequence in source and len(source[sequence].value):
            value = source[sequence][0].get(keyword)
            if value is not None:
                return value
    return None


def series_info(ds: Dataset) -> SeriesInfo:
    """Patient, study, series and acquisition facts from a header."""
    thickness = _number(ds.get("SliceThickness"), None)
    if thickness is None:
        thickness = _number(_nested(ds, "PixelMeasuresSequence", "SliceThickness"), None)
    kernel = ds.get("ConvolutionKernel") or _nested(
        ds, "CTReconstructionSequence", "ConvolutionKernel")
    kvp = _number(ds.get("KVP"), None)
    if kvp is None:
        kvp = _number(_nested(ds, "CTXRayDetailsSequence", "KVP"), None)
    number = _number(ds.get("SeriesNumber"), None)
    return SeriesInfo(
        series_instance_uid=_text(ds.get("SeriesInstanceUID")),
        study_instance_uid=_text(ds.get("StudyInstanceUID")),
        modality=_text(ds.get("Modality")),
        series_description=_text(ds.get("SeriesDescription")),
        series_number=None if number is None else int(number),
        patient_name=_text(ds.get("PatientName")),
        patient_id=_text(ds.get("PatientID")),
        patient_birth_date=_text(ds.get("PatientBirthDate")),
        patient_sex=_text(ds.get("PatientSex")),
        patient_age=_text(ds.get("PatientAge")),
        study_date=_text(ds.get("StudyDate")),
        study_time=_text(ds.get("StudyTime")),
        study_description=_text(ds.get("StudyDescription")),
        accession_number=_text(ds.get("AccessionNumber")),
        referring_physician=_text(ds.get("ReferringPhysicianName")),
        institution_name=_text(ds.get("InstitutionName")),
        manufacturer=_text(ds.get("Manufacturer")),
        manufacturer_model=_text(ds.get("ManufacturerModelName")),
        body_part=_text(ds.get("BodyPartExamined")),
        frame_of_reference_uid=_text(ds.get("FrameOfReferenceUID")),
        slice_thickness_mm=thickness,
        kernel=_text(kernel),
        kvp=kvp,
        contrast_agent=_contrast(ds),
    )


def _contrast(ds: Dataset) -> str:
    agent = _text(ds.get("ContrastBolusAgent"))
    if agent:
        return agent
    for item in ds.get("ContrastBolusAgentSequence") or []:
        meaning = _text(item.get("CodeMeaning"))
        if meaning:
            return meaning
    return ""
