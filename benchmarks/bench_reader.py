"""Reading a 300-slice CT through napari's reader (npe2) against SimpleITK loading it.

Run: ``.venv/bin/python benchmarks/bench_reader.py [--repeat 7]`` (about a minute; the
series of ``bench_load.py`` is cached, see ``_make_series.py``).

What File > Open does up to the layer data: ``npe2.read([folder], plugin_name=
"napari-calcinosis")`` (npe2 picks the plugin's reader command, the reader loads the study
and turns it into ``(data, kwargs, "image")`` tuples), timed against SimpleITK's
``ImageSeriesReader`` (``GetGDCMSeriesFileNames`` + ``Execute`` + ``GetArrayFromImage``)
on the same series, in the same process, warm (modules imported, files in the page cache),
interleaved, best of ``--repeat``. The plugin's loader alone (``dicom.load_study``) is
timed beside them, so the cost of the path from loaded volume to layer data shows.
Issue 16's target: reader <= 0.6x SimpleITK.

``--viewer`` shows a napari viewer first (run it under a display or ``xvfb-run``): the
reader's progress bar is then napari's Qt one in the activity panel, as in the application,
where every redraw also runs Qt's event loop.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _make_series import make_series  # noqa: E402
from bench_load import load_plugin, load_simpleitk  # noqa: E402

TARGET = 0.6
# the benchmark must not write napari's reader preferences into the user's settings
os.environ.setdefault("NAPARI_CALCINOSIS_PREFER_READER", "0")


def read_npe2(folder: Path) -> np.ndarray:
    import npe2

    layers = npe2.read([str(folder)], stack=False, plugin_name="napari-calcinosis")
    (data, _kwargs, kind), = layers
    assert kind == "image"
    return np.asarray(data)


RUNS = {"npe2 reader": read_npe2, "plugin loader": load_plugin, "SimpleITK": load_simpleitk}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--viewer", action="store_true",
                        help="read with a napari viewer shown (its Qt progress bar)")
    args = parser.parse_args()
    import npe2

    if args.viewer:
        import napari

        viewer = napari.Viewer(show=True)  # noqa: F841 - kept open while measuring

    npe2.PluginManager.instance().discover()
    plain, _ = make_series()
    where = "a napari viewer shown" if args.viewer else "no viewer"
    print(f"series: {plain}, 300 x 512 x 512 int16; best of {args.repeat}, warm, "
          f"interleaved; {where}")
    arrays = {name: run(plain) for name, run in RUNS.items()}  # warm-up, and the check
    for name, array in arrays.items():
        if not np.array_equal(array, arrays["SimpleITK"]):
            print(f"WARNING: {name} differs from SimpleITK's volume")
    best = dict.fromkeys(RUNS, float("inf"))
    for _ in range(args.repeat):
        for name, run in RUNS.items():
            start = time.perf_counter()
            run(plain)
            best[name] = min(best[name], time.perf_counter() - start)
    for name, seconds in best.items():
        print(f"  {name:<14} {seconds:6.3f} s")
    ratio = best["npe2 reader"] / best["SimpleITK"]
    extra = best["npe2 reader"] - best["plugin loader"]
    print(f"ratio npe2 reader / SimpleITK: {ratio:.2f}x  (<= {TARGET}x)  "
          f"{'ok' if ratio <= TARGET else 'MISSED'}")
    print(f"loader alone / SimpleITK: {best['plugin loader'] / best['SimpleITK']:.2f}x; "
          f"reader minus loader: {1000 * extra:+.0f} ms")


if __name__ == "__main__":
    main()
