"""Tiny synthetic DICOM files for viewer tests (written with pydicom, known geometry)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

DX_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation


def _base(sop_class: str, modality: str, study_uid: str, series_uid: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = modality
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PID12345"
    ds.PatientBirthDate = "19470101"
    ds.SamplesPerPixel = 1
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    return ds


def ct_hu(shape_zyx: tuple[int, int, int]) -> np.ndarray:
    """A known HU pattern: air around a soft-tissue disc with a bright 'calcification' voxel."""
    nz, ny, nx = shape_zyx
    yy, xx = np.mgrid[:ny, :nx]
    disc = (yy - ny / 2) ** 2 + (xx - nx / 2) ** 2 < (min(ny, nx) * 0.4) ** 2
    hu = np.full(shape_zyx, -1000, np.int16)
    hu[:, disc] = 40
    hu[:, ny // 4, nx // 2] = 600
    hu += np.arange(nz, dtype=np.int16)[:, None, None]  # each slice tells its index
    return hu


def write_ct_series(
    folder: Path,
    *,
    shape_zyx: tuple[int, int, int] = (6, 24, 20),
    spacing_zyx_mm: tuple[float, float, float] = (2.5, 0.7, 0.8),
    origin_lps_mm: tuple[float, float, float] = (-10.0, -20.0, 100.0),
    row_cosine: tuple[float, float, float] = (1.0, 0.0, 0.0),
    col_cosine: tuple[float, float, float] = (0.0, 1.0, 0.0),
    suffix: str = ".dcm",
    description: str = "Chest soft tissue",
    series_number: int = 3,
) -> tuple[Path, np.ndarray]:
    """Write a CT series (files in shuffled order, rescaled int16) and return (folder, HU)."""
    folder.mkdir(parents=True, exist_ok=True)
    hu = ct_hu(shape_zyx)
    row, col = np.asarray(row_cosine, float), np.asarray(col_cosine, float)
    normal = np.cross(row, col)
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    order = np.random.default_rng(7).permutation(shape_zyx[0])
    for k in order:
        ds = _base(CTImageStorage, "CT", study_uid, series_uid)
        ds.SeriesDescription = description
        ds.FrameOfReferenceUID = frame_uid
        ds.SeriesNumber = series_number
        ds.InstanceNumber = int(shape_zyx[0] - k)  # deliberately not the spatial order
        ds.ImagePositionPatient = [float(v) for v in
                                   np.asarray(origin_lps_mm) + k * spacing_zyx_mm[0] * normal]
        ds.ImageOrientationPatient = [*map(float, row), *map(float, col)]
        ds.PixelSpacing = [spacing_zyx_mm[1], spacing_zyx_mm[2]]
        ds.SliceThickness = spacing_zyx_mm[0]
        ds.KVP = 120
        ds.ConvolutionKernel = "B30f"
        ds.Rows, ds.Columns = shape_zyx[1], shape_zyx[2]
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelRepresentation = 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = (hu[k].astype(np.int32) + 1024).astype(np.uint16).tobytes()
        ds.save_as(folder / f"s{k * 7919 % 1000:03d}{suffix}", enforce_file_format=True)
    return folder, hu


def write_radiograph(
    path: Path,
    *,
    photometric: str = "MONOCHROME1",
    pixel_spacing_mm: tuple[float, float] | None = (0.2, 0.25),
    view_position: str = "PA",
) -> tuple[Path, np.ndarray]:
    """Write a DX image whose body (centre) is dense: returns (path, stored pixel values).

    With MONOCHROME1 the dense body is stored with LOW values (it must still display bright).
    """
    rows, cols = 40, 30
    density = np.zeros((rows, cols), np.uint16)
    density[8:32, 6:24] = 3000  # the body attenuates
    stored = (4095 - density) if photometric == "MONOCHROME1" else density + 100
    ds = _base(DX_STORAGE, "DX", generate_uid(), generate_uid())
    ds.SeriesDescription = "Chest"
    ds.SeriesNumber = 1
    ds.ViewPosition = view_position
    ds.PatientOrientation = ["L", "F"]
    ds.Rows, ds.Columns = rows, cols
    ds.PhotometricInterpretation = photometric
    ds.PixelRepresentation = 0
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    if pixel_spacing_mm is not None:
        ds.ImagerPixelSpacing = list(pixel_spacing_mm)
    ds.PixelData = stored.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path, stored


def write_volume(folder: Path, volume, *, description: str = "Phantom torso") -> Path:
    """Write a core ``Volume`` (axial, int16 HU) as a CT series, one file per slice."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    direction = np.asarray(volume.direction_lps, float)
    row_cosine, col_cosine = direction[:, 2], direction[:, 1]
    dz, dy, dx = volume.spacing_zyx_mm
    for k in range(volume.shape[0]):
        ds = _base(CTImageStorage, "CT", study_uid, series_uid)
        ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = description, 2, k + 1
        ds.FrameOfReferenceUID = frame_uid
        ds.ImagePositionPatient = [float(v) for v in volume.index_to_lps(np.array([k, 0, 0]))]
        ds.ImageOrientationPatient = [*map(float, row_cosine), *map(float, col_cosine)]
        ds.PixelSpacing, ds.SliceThickness = [float(dy), float(dx)], float(dz)
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[2]
        ds.PhotometricInterpretation, ds.PixelRepresentation = "MONOCHROME2", 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = np.ascontiguousarray(volume.hu[k], dtype=np.int16).tobytes()
        ds.save_as(folder / f"{k:04d}.dcm", enforce_file_format=True)
    return folder
