"""Writers of small synthetic DICOM files with known values and geometry (no tests here).

* ``write_series``: one single-frame file per slice from a known stored array, with chosen
  orientation, origin, spacing, rescale and file names; returns where every slice is so the
  loader tests can check geometry against the files themselves (``known_stack`` gives a
  stack whose slices are recognisable, ``read_position`` reads a file's position back).
* ``write_ct_series`` (a known HU pattern, files shuffled), ``write_radiograph`` (a DX with
  a dense body, MONOCHROME1 or 2) and ``write_volume`` (a core ``Volume``): for the viewer
  tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
DX_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation


def _base(sop_class: str, modality: str, study_uid: str, series_uid: str, *,
          patient: tuple[str, str] = ("Doe^Jane", "PID12345"),
          birth_date: str | None = "19470101") -> Dataset:
    """The file meta, UIDs, patient (name, ID) and 16-bit single-sample pixel module."""
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
    ds.PatientName, ds.PatientID = patient
    if birth_date is not None:
        ds.PatientBirthDate = birth_date
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


@dataclass
class Written:
    """Files written and the patient position of each slice (in array order of ``stored``)."""

    paths: list[Path]
    positions: np.ndarray
    series_uid: str


def make_dataset(stored: np.ndarray, *, series_uid: str, study_uid: str, frame_uid: str,
                 modality: str = "CT", slope: float | None = 1.0,
                 intercept: float | None = -1024.0) -> Dataset:
    """A minimal valid single-frame image dataset holding ``stored`` (int16/uint16)."""
    ds = _base(CTImageStorage, modality, study_uid, series_uid,
               patient=("Synthetic^Test", "SYN001"), birth_date=None)
    ds.FrameOfReferenceUID, ds.PatientSex = frame_uid, "F"
    ds.SeriesDescription, ds.SeriesNumber = "synthetic", 3
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ConvolutionKernel, ds.KVP, ds.SliceThickness = "B30f", 120, 1.0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
    if slope is not None:
        ds.RescaleSlope = f"{slope:g}"
    if intercept is not None:
        ds.RescaleIntercept = f"{intercept:g}"
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    return ds


def write_series(folder: Path, stored: np.ndarray, *, orientation=AXIAL,
                 origin=(-10.0, -20.0, 30.0), spacing_zyx=(2.5, 0.7, 0.8),
                 slope: float | None = 1.0, intercept: float | None = -1024.0,
                 names: list[str] | None = None, instance_numbers: list[int] | None = None,
                 shear_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
                 skip: tuple[int, ...] = (), series_uid: str | None = None,
                 rng: np.random.Generator | None = None, modality: str = "CT") -> Written:
    """Write slice ``k`` of ``stored`` at ``origin + k*dz*normal + k*shear`` (LPS mm).

    ``names`` default to shuffled extension-less names when ``rng`` is given, else
    ``slice{k}.dcm``. Slices listed in ``skip`` are not written (a gap).
    """
    folder.mkdir(parents=True, exist_ok=True)
    row, col = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.cross(row, col)
    n = stored.shape[0]
    positions = np.array([np.asarray(origin) + k * spacing_zyx[0] * normal
                          + k * np.asarray(shear_mm) for k in range(n)])
    if names is None:
        order = rng.permutation(n) if rng is not None else np.arange(n)
        names = [f"IM{int(o):05d}" if rng is not None else f"slice{k}.dcm"
                 for k, o in enumerate(order)]
    uids = dict(series_uid=series_uid or generate_uid(), study_uid=generate_uid(),
                frame_uid=generate_uid())
    paths = []
    for k in range(n):
        if k in skip:
            continue
        ds = make_dataset(stored[k], slope=slope, intercept=intercept, modality=modality, **uids)
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in orientation]
        ds.ImagePositionPatient = [f"{v:.4f}" for v in positions[k]]
        ds.PixelSpacing = [f"{spacing_zyx[1]:g}", f"{spacing_zyx[2]:g}"]
        ds.InstanceNumber = instance_numbers[k] if instance_numbers else k + 1
        path = folder / names[k]
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return Written(paths, positions, uids["series_uid"])


def known_stack(n: int = 6, rows: int = 12, cols: int = 10, seed: int = 0) -> np.ndarray:
    """Stored int16 values where each slice is recognisable (slice k has k*100 added)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2000, size=(n, rows, cols), dtype=np.int16)
    return (base + (np.arange(n, dtype=np.int16) * 100)[:, None, None]).astype(np.int16)


def read_position(path: Path) -> np.ndarray:
    """ImagePositionPatient of a file, read independently of the loader."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return np.array([float(v) for v in ds.ImagePositionPatient])
