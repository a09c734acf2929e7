"""Batch throughput: the serial ``analyze`` loop against ``batch`` with 1 and 2 workers.

Makes ``--studies`` copies of the real CT slab of the tests (each with its own UIDs) in a
temporary folder, then in one run times: ``analyze`` of each study one after the other in
this process (the loop a script would write), and ``napari-calcinosis batch`` on the whole
folder with ``--workers 1`` and ``--workers 2`` (a fresh local Dask cluster each, its
start-up included). Prints studies per minute, the ratios to the serial loop, and the
driver's peak resident memory (this process: the batch holds only the rows).

Usage::

    .venv/bin/python benchmarks/bench_batch.py [--studies 12] [--stack 6]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

SLAB = Path(__file__).resolve().parents[1] / "tests" / "data" / "realct" / \
    "pancreas-ct-cbct-seg-001-slab8"


def make_studies(root: Path, count: int, stack: int = 1) -> list[Path]:
    """``count`` studies, each the slab's 8 slices stacked ``stack`` times along z."""
    folders = []
    for n in range(count):
        folder = root / f"study{n:03d}"
        folder.mkdir(parents=True)
        study = generate_uid(entropy_srcs=["bench", str(n)])
        series = generate_uid(entropy_srcs=["bench", str(n), "series"])
        slices = sorted(SLAB.glob("*.dcm"))
        for copy in range(stack):
            for k, path in enumerate(slices):
                ds = pydicom.dcmread(path)
                ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
                ds.SOPInstanceUID = generate_uid(entropy_srcs=["bench", str(n), str(copy),
                                                               str(k)])
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                position = [float(v) for v in ds.ImagePositionPatient]
                position[2] += copy * len(slices) * float(ds.SliceThickness)
                ds.ImagePositionPatient = position
                ds.InstanceNumber = copy * len(slices) + k + 1
                ds.save_as(folder / f"{copy:02d}-{path.name}")
        folders.append(folder)
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=12)
    parser.add_argument("--stack", type=int, default=6,
                        help="slab copies stacked per study (8 slices each)")
    args = parser.parse_args()
    from napari_calcinosis import cli
    from napari_calcinosis.run import run_analysis

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        studies = make_studies(root / "archive", args.studies, args.stack)
        times = {}
        for workers in (1, 2):
            start = time.perf_counter()
            status = cli.main(["batch", str(root / "archive"), "--out",
                               str(root / f"batch{workers}"), "--workers", str(workers),
                               "--formats", "json,csv,html", "--quiet"])
            times[workers] = time.perf_counter() - start
            if status != 0:
                sys.exit(f"batch with {workers} worker(s) failed ({status})")
        # the batches ran first: this process's peak so far is the driver's alone
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        for n, folder in enumerate(studies):
            run_analysis(folder, root / "serial" / str(n), formats=["json", "csv", "html"],
                         use_annotations=False)
        serial = time.perf_counter() - start
    rate = {name: args.studies / seconds * 60 for name, seconds in
            (("serial", serial), ("1", times[1]), ("2", times[2]))}
    print(f"{args.studies} studies ({8 * args.stack} slices of real CT each)")
    print(f"serial analyze loop: {serial:6.1f} s  {rate['serial']:6.1f} studies/min")
    for workers in (1, 2):
        print(f"batch, {workers} worker(s): {times[workers]:6.1f} s  "
              f"{rate[str(workers)]:6.1f} studies/min  "
              f"ratio to serial {rate[str(workers)] / rate['serial']:.2f}x")
    print(f"batch driver peak resident memory: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
