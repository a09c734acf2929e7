"""CT analysis speed and memory against SimpleITK loading the same series (one run).

Builds a seeded 300-slice 512 x 512 phantom series (1 mm slices, generalized scenario),
writes it as single-frame DICOM into a temporary folder with SimpleITK, then measures in the
same process:

* ``load``: SimpleITK ``ImageSeriesReader`` reading the series (best of ``--repeat``, after a
  warm-up read so that both sides run from the page cache);
* ``analysis``: :func:`napari_calcinosis.ct._detect.analyze_volume` on the volume
  (tissue model, candidates, lesion table, summary; loading excluded), best of ``--repeat``;
* ``peak``: the extra peak resident memory of one analysis, in a fresh process that has
  loaded the volume (Linux ``VmHWM``; tracemalloc elsewhere).

Prints the times, the ratio analysis / load (target <= 3) and peak / volume bytes
(target <= 4).

Usage::

    .venv/bin/python benchmarks/bench_detect.py [--slices 300] [--size 512] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np


def make_volume(slices: int, size: int, seed: int):
    """The seeded phantom as a :class:`Volume` (1 mm slices around the chest)."""
    from napari_calcinosis.phantom import PhantomSpec, make_ct_phantom

    spec = PhantomSpec(scenario="generalized", seed=seed, noise_sd_hu=15.0,
                       slice_thickness_mm=1.0, pixel_spacing_mm=460.0 / size, fov_mm=460.0,
                       z_range_mm=(250.0, 250.0 + slices - 1.0),
                       shape_zyx=(slices, size, size))
    return make_ct_phantom(spec).as_volume()


def write_series(volume, folder: Path) -> None:
    """Write the volume as single-frame CT DICOM files with SimpleITK."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
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
    from napari_calcinosis.ct import analyze_volume

    analyze_volume(volume)  # warm-up: imports, thread pool start
    best, result = np.inf, None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = analyze_volume(volume)
        best = min(best, time.perf_counter() - start)
    return best, result


_CHILD = """
import sys, numpy as np
from napari_calcinosis.ct._detect import analyze_volume
from napari_calcinosis.types.model import SeriesInfo, Volume
data = np.load(sys.argv[1])
volume = Volume(hu=data["hu"], spacing_zyx_mm=tuple(data["spacing"]),
                origin_lps_mm=data["origin"], direction_lps=data["direction"],
                info=SeriesInfo(series_instance_uid="2.25.1", modality="CT"))
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
before = status("VmRSS:")
analyze_volume(volume)
print(status("VmHWM:") - before)
"""


def peak_memory(volume, folder: Path) -> tuple[int, str]:
    """Extra peak resident memory (bytes) of one analysis, measured in a fresh process.

    Resident memory counts what the analysis really touches (including memory-mapped
    buffers that tracemalloc does not see); the child reads its own peak (VmHWM) after
    loading the volume. Falls back to tracemalloc where /proc is missing.
    """
    if not Path("/proc/self/status").exists():
        from napari_calcinosis.ct import analyze_volume

        gc.collect()
        tracemalloc.start()
        analyze_volume(volume)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak, "tracemalloc"
    path = folder / "volume.npz"
    np.savez(path, hu=volume.hu, spacing=np.asarray(volume.spacing_zyx_mm),
             origin=volume.origin_lps_mm, direction=volume.direction_lps)
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True,
                         text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]), "peak resident memory"


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
        write_series(volume, folder / "series")
        load = time_load(folder / "series", args.repeat)
        analysis, result = time_analysis(volume, args.repeat)
        peak, how = peak_memory(volume, folder)
    nbytes = volume.hu.nbytes
    print(f"series: {args.slices} x {args.size} x {args.size} int16 "
          f"({nbytes / 2**20:.0f} MiB), {len(result.lesions)} lesions found")
    print(f"SimpleITK load (best of {args.repeat}): {load:.3f} s")
    print(f"analysis        (best of {args.repeat}): {analysis:.3f} s")
    print(f"ratio analysis / load: {analysis / load:.2f}  (target <= 3)")
    print(f"extra peak memory of the analysis ({how}): {peak / 2**20:.0f} MiB = "
          f"{peak / nbytes:.2f} x the volume  (target <= 4)")


if __name__ == "__main__":
    main()
