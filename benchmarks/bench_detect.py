"""CT analysis speed and memory against SimpleITK loading the same series (one run).

Builds a seeded 300-slice 512 x 512 phantom series (1 mm slices, generalized scenario),
writes it as single-frame DICOM into a temporary folder with SimpleITK, then measures in the
same process:

* ``load``: SimpleITK ``ImageSeriesReader`` reading the series (best of ``--repeat``, after a
  warm-up read so that both sides run from the page cache);
* ``analysis``: :func:`napari_calcinosis.core.detect_ct.analyze_volume` on the volume
  (tissue model, candidates, lesion table, summary; loading excluded), best of ``--repeat``;
* ``peak``: the largest extra memory numpy allocated during one analysis (tracemalloc).

Prints the times, the ratio analysis / load (target <= 3) and peak / volume bytes
(target <= 4).

Usage::

    .venv/bin/python benchmarks/bench_detect.py [--slices 300] [--size 512] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np


def make_volume(slices: int, size: int, seed: int):
    """The seeded phantom as a :class:`Volume` (1 mm slices around the chest)."""
    from napari_calcinosis.core.phantom import PhantomSpec, make_ct_phantom

    spec = PhantomSpec(scenario="generalized", seed=seed, noise_sd_hu=15.0,
                       slice_thickness_mm=1.0, pixel_spacing_mm=460.0 / size, fov_mm=460.0,
                       z_range_mm=(250.0, 250.0 + slices - 1.0),
                       shape_zyx=(slices, size, size))
    return make_ct_phantom(spec).as_volume()


def write_series(volume, folder: Path) -> None:
    """Write the volume as single-frame CT DICOM files with SimpleITK."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(volume.hu)
    dz, dy, dx = volume.spacing_zyx_mm
    image.SetSpacing((float(dx), float(dy), float(dz)))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    origin = volume.origin_lps_mm
    for k in range(volume.hu.shape[0]):
        plane = image[:, :, k]
        tags = {"0008|0060": "CT", "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
                "0020|000e": "1.2.826.0.1.3680043.2.1125.2", "0020|0013": str(k + 1),
                "0020|0037": "1\\0\\0\\0\\1\\0", "0028|1052": "0", "0028|1053": "1",
                "0020|0032": "\\".join(f"{v:.4f}" for v in (origin[0], origin[1],
                                                            origin[2] + k * dz))}
        for key, value in tags.items():
            plane.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"slice{k:04d}.dcm"))
        writer.Execute(plane)


def time_load(folder: Path, repeat: int) -> float:
    """Best wall time of SimpleITK reading the series into an array."""
    import SimpleITK as sitk

    best = np.inf
    for _ in range(repeat + 1):  # the first read warms the page cache and is not counted
        start = time.perf_counter()
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
        array = sitk.GetArrayFromImage(reader.Execute())
        elapsed = time.perf_counter() - start
        del array
        best = min(best, elapsed) if _ else best
    return best


def time_analysis(volume, repeat: int) -> tuple[float, object]:
    """Best wall time of the whole CT analysis."""
    from napari_calcinosis.core.detect_ct import analyze_volume

    analyze_volume(volume)  # warm-up: imports, thread pool start
    best, result = np.inf, None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = analyze_volume(volume)
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_memory(volume) -> int:
    """Largest extra memory (bytes) traced during one analysis."""
    from napari_calcinosis.core.detect_ct import analyze_volume

    gc.collect()
    tracemalloc.start()
    result = analyze_volume(volume)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    volume = make_volume(args.slices, args.size, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
        folder = Path(tmp)
        write_series(volume, folder)
        load = time_load(folder, args.repeat)
    analysis, result = time_analysis(volume, args.repeat)
    peak = peak_memory(volume)
    nbytes = volume.hu.nbytes
    print(f"series: {args.slices} x {args.size} x {args.size} int16 "
          f"({nbytes / 2**20:.0f} MiB), {len(result.lesions)} lesions found")
    print(f"SimpleITK load (best of {args.repeat}): {load:.3f} s")
    print(f"analysis        (best of {args.repeat}): {analysis:.3f} s")
    print(f"ratio analysis / load: {analysis / load:.2f}  (target <= 3)")
    print(f"peak memory of the analysis: {peak / 2**20:.0f} MiB = {peak / nbytes:.2f} x the "
          "volume  (target <= 4)")


if __name__ == "__main__":
    main()
