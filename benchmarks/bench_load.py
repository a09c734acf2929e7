"""Load-speed and memory benchmark: napari-calcinosis vs SimpleITK vs a plain pydicom loop.

Run: ``.venv/bin/python benchmarks/bench_load.py`` (about 2-4 minutes; the series are cached).

Measures, in one run, on a seeded 300 x 512 x 512 int16 CT series with shuffled names and an
RLE-compressed copy (see ``_make_series.py``):

* whole-process time: each loader in a fresh interpreter (imports + load), best of 3;
* in-process time: warm (files cached, modules imported), best of 3;
* peak memory of the load above the interpreter's baseline after imports, in a fresh
  process, as a multiple of the volume's size (``ru_maxrss``).

and prints the ratios plugin / SimpleITK next to the targets of issue 2.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _make_series import make_series  # noqa: E402

REPEATS = 3
TARGETS = {"whole-process": 0.7, "in-process": 0.5, "RLE in-process": 0.2,
           "RLE whole-process": 0.2}
MEMORY_TARGET = 1.5


def _import(name: str) -> None:
    if name == "plugin":
        import napari_calcinosis.dicom._load  # noqa: F401
    elif name == "simpleitk":
        import SimpleITK  # noqa: F401
    else:
        import pydicom  # noqa: F401


def load_plugin(folder: Path) -> np.ndarray:
    from napari_calcinosis.dicom import load_study

    (volume,) = load_study(folder).volumes
    return volume.hu


def load_simpleitk(folder: Path) -> np.ndarray:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayFromImage(reader.Execute())


def load_pydicom(folder: Path) -> np.ndarray:
    """What a careful script would do with pydicom alone: read all, sort, stack, rescale."""
    import pydicom

    datasets = [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
    normal = np.cross(*np.reshape([float(v) for v in datasets[0].ImageOrientationPatient], (2, 3)))
    datasets.sort(key=lambda d: float(np.dot(normal, [float(v) for v in d.ImagePositionPatient])))
    stack = np.stack([d.pixel_array for d in datasets])
    slope, intercept = float(datasets[0].RescaleSlope), float(datasets[0].RescaleIntercept)
    return (stack * slope + intercept).astype(np.int16)


LOADERS = {"plugin": load_plugin, "simpleitk": load_simpleitk, "pydicom": load_pydicom}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(name: str, folder: Path) -> None:
    """Run one loader in this (fresh) process and print its load time and peak memory."""
    _import(name)
    baseline = _peak_mib()
    start = time.perf_counter()
    array = LOADERS[name](folder)
    elapsed = time.perf_counter() - start
    print(json.dumps({"load_s": elapsed, "peak_mib": _peak_mib() - baseline,
                      "volume_mib": array.nbytes / 2**20}))


def whole_process(name: str, folder: Path) -> tuple[float, dict]:
    best, report = float("inf"), {}
    for _ in range(REPEATS):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--child", name, str(folder)],
                             capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
        if wall < best:
            best, report = wall, json.loads(out.stdout.strip().splitlines()[-1])
    return best, report


def in_process(name: str, folder: Path) -> tuple[float, np.ndarray]:
    array = LOADERS[name](folder)  # warm: imports done, files in the page cache
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        array = LOADERS[name](folder)
        best = min(best, time.perf_counter() - start)
    return best, array


def _print_row(label: str, times: dict[str, float]) -> None:
    cells = "  ".join(f"{n:>9}: {t:6.2f} s" for n, t in times.items())
    print(f"{label:<18} {cells}")


def main() -> None:
    plain, rle = make_series()
    print(f"series: {plain} (and {rle.name}), 300 x 512 x 512 int16\n")
    results: dict[str, dict[str, float]] = {}
    arrays = {}
    memory = {}
    for label, folder, names in (("whole-process", plain, LOADERS),
                                 ("RLE whole-process", rle, ("plugin", "simpleitk"))):
        results[label] = {}
        for name in names:
            results[label][name], report = whole_process(name, folder)
            if folder is plain:
                memory[name] = report["peak_mib"] / report["volume_mib"]
        _print_row(label, results[label])
    for label, folder, names in (("in-process", plain, LOADERS),
                                 ("RLE in-process", rle, ("plugin", "simpleitk"))):
        results[label] = {}
        for name in names:
            results[label][name], arrays[(label, name)] = in_process(name, folder)
        _print_row(label, results[label])
    reference = arrays[("in-process", "simpleitk")]
    for key, array in arrays.items():
        if not np.array_equal(array, reference):
            print(f"WARNING: {key} differs from SimpleITK's volume")
    print("\npeak memory above baseline, x volume size: " + "  ".join(
        f"{n}: {m:.2f}x" for n, m in memory.items()))
    print("\nratio plugin / SimpleITK (target):")
    for label, target in TARGETS.items():
        ratio = results[label]["plugin"] / results[label]["simpleitk"]
        verdict = "ok" if ratio <= target else "MISSED"
        print(f"  {label:<18} {ratio:5.2f}x  (<= {target}x)  {verdict}")
    mem_ok = "ok" if memory["plugin"] <= MEMORY_TARGET else "MISSED"
    print(f"  {'peak memory':<18} {memory['plugin']:5.2f}x volume (<= {MEMORY_TARGET}x)  {mem_ok}")
    pyd = results["in-process"]["pydicom"] / results["in-process"]["simpleitk"]
    print(f"  (plain pydicom loop in-process: {pyd:.2f}x SimpleITK)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("LOADER", "FOLDER"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
    else:
        main()
