"""Writers of small synthetic DICOM series with known values and geometry (no tests here).

Used by the ``test_dicom_*`` files: ``write_series`` writes one single-frame file per slice
from a known stored array, with chosen orientation, origin, spacing, rescale and file names,
and returns where every slice is so tests can check geometry against the files themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


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
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = (
        study_uid, series_uid, frame_uid)
    ds.Modality = modality
    ds.PatientName, ds.PatientID, ds.PatientSex = "Synthetic^Test", "SYN001", "F"
    ds.SeriesDescription, ds.SeriesNumber = "synthetic", 3
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ConvolutionKernel, ds.KVP, ds.SliceThickness = "B30f", 120, 1.0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
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
