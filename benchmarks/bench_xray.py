"""Radiograph analysis speed against SimpleITK reading the 300-slice CT series (one run).

Issue 4's speed criterion: a 2000 x 2000 radiograph analysed in less time than SimpleITK
takes to read the 300-slice 512 x 512 CT series of ``bench_load.py``.

Builds a seeded frontal (PA) chest radiograph projected from the project's CT phantom at
0.225 mm pixels, centre-cropped to exactly 2000 x 2000 (the spacing stays the projection's),
and measures in the same process, warm (modules imported, one untimed run first, the series
in the page cache), best of ``--repeat``:

* ``radiograph``: :func:`napari_calcinosis.xray._detect.analyze_radiograph`;
* ``simpleitk``: ``ImageSeriesReader`` reading the series of ``_make_series.py`` (written
  once and cached, as for ``bench_load.py``) up to the numpy array.

Prints both times and the ratio radiograph / SimpleITK (target < 1.0).

Usage::

    .venv/bin/python benchmarks/bench_xray.py [--repeat 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _make_series import make_series  # noqa: E402

SIZE = 2000
PIXEL_MM = 0.225  # 460 mm of chest / 0.225 mm is a little over 2000 pixels both ways
TARGET = 1.0


def make_radiograph(seed: int):
    """A seeded 2000 x 2000 frontal phantom chest radiograph as a ``Radiograph``."""
    from napari_calcinosis.phantom import (
        PhantomSpec,
        ProjectionParams,
        make_ct_phantom,
        project_radiograph,
    )
    from napari_calcinosis.types import Radiograph, SeriesInfo

    ct = make_ct_phantom(PhantomSpec(seed=seed, z_range_mm=(100.0, 600.0),
                                     pixel_spacing_mm=2.8, slice_thickness_mm=5.0))
    xray = project_radiograph(ct, view="frontal", params=ProjectionParams(
        pixel_spacing_mm=PIXEL_MM, z_range_mm=(140.0, 600.0), seed=seed))
    rows, cols = xray.image.shape
    if rows < SIZE or cols < SIZE:
        raise SystemExit(f"projection is {rows} x {cols}, smaller than {SIZE} x {SIZE}")
    top, left = (rows - SIZE) // 2, (cols - SIZE) // 2
    image = xray.image[top:top + SIZE, left:left + SIZE].astype(np.float32)
    return Radiograph(
        image=np.ascontiguousarray(image),
        info=SeriesInfo(series_instance_uid="2.25.4", body_part="CHEST"),
        photometric="MONOCHROME2", view=xray.view, view_position=xray.view_position,
        patient_orientation=tuple(xray.patient_orientation),
        pixel_spacing_mm=tuple(float(v) for v in xray.pixel_spacing_mm),
        spacing_source="PixelSpacing")


def read_simpleitk(folder: Path) -> np.ndarray:
    """The same SimpleITK read as ``bench_load.py``: file names, Execute, array."""
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayFromImage(reader.Execute())


def best_of(repeat: int, work) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls after one untimed warm-up call, and the last result."""
    result = work()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from napari_calcinosis.xray import analyze_radiograph

    plain, _ = make_series()
    rad = make_radiograph(args.seed)
    print(f"radiograph: {rad.image.shape[0]} x {rad.image.shape[1]} float32, "
          f"{rad.pixel_spacing_mm[0]:.3f} mm pixels, frontal PA phantom (seed {args.seed})")
    print(f"series:     {plain}, 300 x 512 x 512 int16\n")

    xray_s, result = best_of(args.repeat, lambda: analyze_radiograph(rad))
    sitk_s, volume = best_of(args.repeat, lambda: read_simpleitk(plain))
    print(f"analyze_radiograph (2000 x 2000):     {xray_s:6.2f} s  "
          f"({len(result.lesions)} lesions, {len(result.warnings)} warnings)")
    print(f"SimpleITK read {volume.shape[0]} x {volume.shape[1]} x {volume.shape[2]}:"
          f"         {sitk_s:6.2f} s")
    ratio = xray_s / sitk_s
    verdict = "ok" if ratio < TARGET else "MISSED"
    print(f"\nratio radiograph / SimpleITK: {ratio:.2f}x  (< {TARGET}x)  {verdict}")


if __name__ == "__main__":
    main()
