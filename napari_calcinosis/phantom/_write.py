"""Write a phantom as a DICOM study: a CT series, DX radiographs and ``truth.json``.

``write_study(ct, folder, *, xray_views=('frontal',), ...) -> Path`` writes::

    folder/ct/0001.dcm ...      CT Image Storage, one file per slice (explicit VR little
                                endian, or RLE Lossless with ``compress=True``)
    folder/xray/frontal.dcm     Digital X-Ray Image Storage - For Presentation (PA, LL)
    folder/truth.json           ground truth (see ``sample_data/README.md``)

UIDs are derived deterministically from the phantom's spec (``generate_uid`` with entropy
sources), so the same spec always gives the same files. Every CT slice shares the
StudyInstanceUID and FrameOfReferenceUID; the radiographs share the study. CT pixels are stored
unsigned with RescaleIntercept -1024 (12 bits) or, with ``signed=True``, signed 16-bit with the
same intercept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, RLELossless, generate_uid

from napari_calcinosis import __version__
from napari_calcinosis.types import CalcinosisError

from ._spec import PhantomCT
from ._truth import truth_document
from ._xray import project_radiographs

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
_STUDY_DATE, _STUDY_TIME = "20250115", "101500"
_VIEW_CODES = {"PA": ("272479007", "postero-anterior"), "LL": ("399173006", "left lateral")}


class _Uids:
    """Deterministic UIDs from the phantom spec."""

    def __init__(self, ct: PhantomCT) -> None:
        self.root = ["napari-calcinosis-phantom", repr(ct.spec)]

    def __call__(self, *parts: object) -> str:
        return generate_uid(entropy_srcs=self.root + [str(p) for p in parts])


def _version() -> str:
    return str(__version__)


def _common(ds: Dataset, ct: PhantomCT, uids: _Uids, patient_name: str, patient_id: str) -> None:
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19470301"
    ds.PatientSex = "M"
    ds.PatientAge = "078Y"
    ds.StudyInstanceUID = uids("study")
    ds.StudyDate = ds.ContentDate = ds.SeriesDate = _STUDY_DATE
    ds.StudyTime = ds.ContentTime = ds.SeriesTime = _STUDY_TIME
    ds.StudyID = "1"
    ds.AccessionNumber = f"PH{ct.spec.seed:06d}"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = f"Synthetic phantom ({ct.spec.scenario})"
    ds.Manufacturer = "napari-calcinosis"
    ds.ManufacturerModelName = "phantom"
    ds.SoftwareVersions = _version()
    ds.InstitutionName = "Synthetic"
    ds.BurnedInAnnotation = "NO"


def _file_meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def _ct_series_header(ct: PhantomCT, uids: _Uids, patient_name: str, patient_id: str,
                      signed: bool) -> Dataset:
    ds = Dataset()
    _common(ds, ct, uids, patient_name, patient_id)
    ds.SOPClassUID = CTImageStorage
    ds.Modality = "CT"
    ds.SeriesInstanceUID = uids("ct-series")
    ds.SeriesNumber = 2
    ds.SeriesDescription = (f"Phantom CT {ct.spec.scenario} {ct.slice_thickness_mm:g} mm")
    ds.FrameOfReferenceUID = uids("frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.PatientPosition = "HFS"
    ds.BodyPartExamined = "CHEST"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.AcquisitionNumber = 1
    ds.KVP = 120
    ds.ConvolutionKernel = "STANDARD"
    ds.SliceThickness = f"{ct.slice_thickness_mm:g}"
    ds.SpacingBetweenSlices = f"{ct.spacing_zyx_mm[0]:g}"
    ds.PixelSpacing = [f"{ct.spacing_zyx_mm[1]:g}", f"{ct.spacing_zyx_mm[2]:g}"]
    ds.ImageOrientationPatient = [f"{v:g}" for v in (*ct.direction_lps[:, 2],
                                                     *ct.direction_lps[:, 1])]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = ct.shape[1], ct.shape[2]
    ds.BitsAllocated = 16
    ds.BitsStored = 16 if signed else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.WindowCenterWidthExplanation = "SOFT TISSUE"
    return ds


def _save(ds: Dataset, path: Path, compress: bool) -> None:
    if compress:
        ds.compress(RLELossless, encoding_plugin="pylibjpeg")
    ds.save_as(path, enforce_file_format=True)


def write_ct_series(ct: PhantomCT, folder: Path, *, patient_name: str, patient_id: str,
                    compress: bool = False, signed: bool = False, progress=None) -> list[Path]:
    """Write the CT as one file per slice (``0001.dcm`` ...); return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    uids = _Uids(ct)
    header = _ct_series_header(ct, uids, patient_name, patient_id, signed)
    stored = ct.hu.astype(np.int32) + 1024
    dtype = np.int16 if signed else np.uint16
    paths = []
    for k in range(ct.shape[0]):
        ds = header.copy()
        ds.SOPInstanceUID = uids("ct", k)
        ds.file_meta = _file_meta(CTImageStorage, ds.SOPInstanceUID)
        ds.InstanceNumber = k + 1
        position = ct.index_to_lps([k, 0, 0])
        ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
        ds.SliceLocation = f"{position[2]:.4f}"
        ds.PixelData = stored[k].astype(dtype).tobytes()
        path = folder / f"{k + 1:04d}.dcm"
        _save(ds, path, compress)
        paths.append(path)
        if progress is not None and k % 16 == 0:
            progress(k / ct.shape[0], "writing CT slices")
    return paths


def _code(value: str, meaning: str, scheme: str = "SCT") -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def write_radiograph(ct: PhantomCT, xray: Any, path: Path, *, patient_name: str,
                     patient_id: str, series_number: int, include_pixel_spacing: bool = True,
                     compress: bool = False) -> Dataset:
    """Write one projected radiograph as a DX image (For Presentation)."""
    uids = _Uids(ct)
    ds = Dataset()
    _common(ds, ct, uids, patient_name, patient_id)
    ds.SOPClassUID = DX_FOR_PRESENTATION
    ds.SOPInstanceUID = uids("dx", xray.view, xray.photometric, include_pixel_spacing)
    ds.file_meta = _file_meta(DX_FOR_PRESENTATION, ds.SOPInstanceUID)
    ds.Modality = "DX"
    ds.SeriesInstanceUID = uids("dx-series", xray.view, xray.photometric)
    ds.SeriesNumber = series_number
    ds.SeriesDescription = f"Phantom chest {xray.view_position}"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.InstanceNumber = 1
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.BodyPartExamined = "CHEST"
    ds.AnatomicRegionSequence = Sequence([_code("51185008", "Thoracic structure")])
    ds.ImageLaterality = "U"
    ds.ViewPosition = xray.view_position
    ds.ViewCodeSequence = Sequence([_code(*_VIEW_CODES[xray.view_position])])
    ds.PatientOrientation = list(xray.patient_orientation)
    ds.KVP = 120
    ds.DetectorType = "SCINTILLATOR"
    ds.PositionerType = ""
    ds.ImagerPixelSpacing = [f"{v:g}" for v in xray.imager_pixel_spacing_mm]
    if include_pixel_spacing:
        ds.PixelSpacing = [f"{v:g}" for v in xray.pixel_spacing_mm]
        ds.PixelSpacingCalibrationType = "GEOMETRY"
        ds.PixelSpacingCalibrationDescription = "parallel projection of a synthetic phantom"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = xray.photometric
    ds.PresentationLUTShape = "INVERSE" if xray.photometric == "MONOCHROME1" else "IDENTITY"
    ds.Rows, ds.Columns = xray.image.shape
    ds.BitsAllocated, ds.BitsStored = 16, xray.bits_stored
    ds.HighBit, ds.PixelRepresentation = xray.bits_stored - 1, 0
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = -1 if xray.photometric == "MONOCHROME1" else 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
    ds.WindowCenter = f"{xray.window[0]:.1f}"
    ds.WindowWidth = f"{xray.window[1]:.1f}"
    ds.LossyImageCompression = "00"
    ds.AcquisitionContextSequence = Sequence()
    ds.PixelData = xray.image.astype(np.uint16).tobytes()
    _save(ds, path, compress)
    return ds


def write_study(ct: PhantomCT, folder: str | Path, *, xray_views: tuple[str, ...] = ("frontal",),
                compress: bool = False, patient_name: str = "PHANTOM^CALCINOSIS",
                patient_id: str | None = None, photometric: str = "MONOCHROME2",
                include_pixel_spacing: bool = True, signed: bool = False, xray_params=None,
                progress=None) -> Path:
    """Write a phantom CT, its projected radiographs and ``truth.json`` into ``folder``.

    Parameters
    ----------
    ct : PhantomCT
        From :func:`~napari_calcinosis.phantom.make_ct_phantom`.
    folder : path
        Created if missing; existing files of the same names are overwritten.
    xray_views : tuple of str
        Radiographs to project and write (``'frontal'``, ``'lateral'``); empty for CT only.
    compress : bool
        RLE Lossless instead of uncompressed explicit VR little endian.
    patient_name, patient_id : str
        Patient identity written in every file (``patient_id`` defaults from the seed).
    photometric : str
        ``'MONOCHROME2'`` or ``'MONOCHROME1'`` for the radiographs.
    include_pixel_spacing : bool
        Write PixelSpacing on the radiographs (ImagerPixelSpacing is always written).
    signed : bool
        Store CT pixels as signed 16-bit instead of unsigned 12-bit.
    xray_params : ProjectionParams, optional
        Detector and processing parameters of the radiographs.
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    Path
        ``folder``.
    """
    folder = Path(folder)
    patient_id = patient_id or f"PHANTOM-{ct.spec.seed:04d}"
    try:
        ct_files = write_ct_series(ct, folder / "ct", patient_name=patient_name,
                                   patient_id=patient_id, compress=compress, signed=signed,
                                   progress=progress)
        radiographs = []
        if xray_views:
            (folder / "xray").mkdir(exist_ok=True)
        xrays = project_radiographs(ct, views=tuple(xray_views), params=xray_params,
                                    photometric=photometric)
        for n, (view, xray) in enumerate(zip(xray_views, xrays)):
            path = folder / "xray" / f"{view}.dcm"
            ds = write_radiograph(ct, xray, path, patient_name=patient_name,
                                  patient_id=patient_id, series_number=10 + n,
                                  include_pixel_spacing=include_pixel_spacing, compress=compress)
            radiographs.append((xray, ds, path))
        doc = truth_document(ct, ct_uid=pydicom.dcmread(ct_files[0], stop_before_pixels=True)
                             .SeriesInstanceUID, ct_files=ct_files, radiographs=radiographs,
                             root=folder)
        (folder / "truth.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    except OSError as exc:
        raise CalcinosisError(f"could not write the phantom study to {folder}: {exc}") from exc
    return folder
