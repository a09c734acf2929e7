"""Seeded generator of the benchmark CT series (300 x 512 x 512 int16) and its RLE copy.

The series is written once into a cache folder and reused while its parameters match.
File names are shuffled and extension-less so that no loader can rely on them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, RLELossless, generate_uid

SLICES, ROWS, COLUMNS = 300, 512, 512
SPACING_ZYX_MM = (1.25, 0.7, 0.7)
SEED = 20240611
VERSION = "v1"


def cache_dir() -> Path:
    """Where the series live (``$CALCINOSIS_BENCH_CACHE`` or the system temp folder)."""
    root = os.environ.get("CALCINOSIS_BENCH_CACHE") or tempfile.gettempdir()
    return Path(root) / f"calcinosis-bench-{VERSION}-{SEED}"


def _slice_hu(k: int, rng: np.random.Generator) -> np.ndarray:
    """A torso-like slice: air, a fat ring, muscle, a spine, lungs, with noise."""
    y, x = np.mgrid[0:ROWS, 0:COLUMNS].astype(np.float32)
    cy, cx = ROWS / 2, COLUMNS / 2
    body = ((y - cy) / 170) ** 2 + ((x - cx) / 230) ** 2
    hu = np.full((ROWS, COLUMNS), -1000, np.float32)
    hu[body < 1.0] = -100
    hu[body < 0.8] = 45
    for side in (-1, 1):
        lung = ((y - cy + 10) / 110) ** 2 + ((x - cx - side * 110) / 80) ** 2
        hu[lung < 1.0 - 0.3 * abs(np.sin(k / 60))] = -850
    hu[((y - cy - 110) / 25) ** 2 + ((x - cx) / 25) ** 2 < 1.0] = 700
    hu += rng.normal(0, 15, size=hu.shape).astype(np.float32)
    return hu


def _dataset(stored: np.ndarray, k: int, uids: dict[str, str]) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = uids["study"]
    ds.SeriesInstanceUID = uids["series"]
    ds.FrameOfReferenceUID = uids["frame"]
    ds.Modality, ds.PatientName, ds.PatientID = "CT", "Bench^Mark", "BENCH"
    ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = "benchmark", 1, k + 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SliceThickness, ds.KVP, ds.ConvolutionKernel = SPACING_ZYX_MM[0], 120, "B30f"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [-179.2, -179.2, -200.0 + k * SPACING_ZYX_MM[0]]
    ds.PixelSpacing = list(SPACING_ZYX_MM[1:])
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = ROWS, COLUMNS
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.PixelData = stored.tobytes()
    return ds


def make_series() -> tuple[Path, Path]:
    """Return ``(plain_folder, rle_folder)``, writing them first if not cached."""
    root = cache_dir()
    plain, rle = root / "plain", root / "rle"
    done = root / "complete"
    if done.exists():
        return plain, rle
    plain.mkdir(parents=True, exist_ok=True)
    rle.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    names = [f"{n:08X}" for n in rng.permutation(10**6)[:SLICES]]
    uids = {"study": generate_uid(), "series": generate_uid(), "frame": generate_uid()}
    for k in range(SLICES):
        stored = np.clip(np.rint(_slice_hu(k, rng)) + 1024, -32768, 32767).astype(np.int16)
        ds = _dataset(stored, k, uids)
        ds.save_as(plain / names[k], enforce_file_format=True)
        ds.compress(RLELossless, stored, encoding_plugin="pylibjpeg")
        ds.save_as(rle / names[k], enforce_file_format=True)
    done.write_text(f"{SLICES} slices\n")
    return plain, rle


if __name__ == "__main__":
    for folder in make_series():
        size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
        print(f"{folder}: {len(list(folder.iterdir()))} files, {size:.0f} MiB")
    print(pydicom.dcmread(next(folder.iterdir())).file_meta.TransferSyntaxUID.name)
