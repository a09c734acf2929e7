"""A killed export never leaves a half-written file under a final name (docs/contract.md).

``analyze`` runs in a real process that is SIGKILLed at several moments while it writes its
outputs; afterwards every file with a final name must be complete and readable, and only
hidden temporary files (``.name.*.tmp``) and the run's hidden staging folder may be
incomplete. A second, uninterrupted run into the same folder then replaces everything, and
a run killed in that folder leaves those files as they were.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import pydicom
import pytest
from report_study import SPEC, XRAY

from napari_calcinosis.phantom import make_ct_phantom, write_study
from napari_calcinosis.run import STAGING_PREFIX


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("kill-study")
    write_study(make_ct_phantom(SPEC), folder, xray_views=("frontal",), xray_params=XRAY)
    return folder


def check_complete(path: Path) -> None:
    """Raise unless the file is a complete document of its kind."""
    data = path.read_bytes()
    suffix = path.suffix
    if suffix == ".json":
        json.loads(data)
    elif suffix == ".csv":
        rows = list(csv.reader(data.decode("utf-8").splitlines()))
        assert data.endswith(b"\n") and rows and all(len(r) == len(rows[0]) for r in rows)
    elif suffix == ".html":
        assert data.rstrip().endswith(b"</html>")
    elif suffix == ".pdf":
        assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")
    elif suffix == ".dcm":
        ds = pydicom.dcmread(path)
        assert "SOPInstanceUID" in ds
        if "PixelData" in ds:
            assert ds.pixel_array.size > 0
    elif suffix == ".png":
        assert iio.imread(path).size > 0
    else:
        raise AssertionError(f"unexpected output {path.name}")


def run_and_kill(study: Path, out: Path, delay_s: float) -> bool:
    """Start ``analyze``; SIGKILL it ``delay_s`` after its first output appears.

    Returns whether the process was still running when killed.
    """
    proc = subprocess.Popen([sys.executable, "-m", "napari_calcinosis", "analyze", str(study),
                             "--out", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and any(out.iterdir()):
            break
        time.sleep(0.002)
    time.sleep(delay_s)
    alive = proc.poll() is None
    if alive:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    return alive


@pytest.mark.slow
def test_killed_export_leaves_only_complete_files(study, tmp_path):
    killed = 0
    for number, delay_s in enumerate((0.0, 0.05, 0.3, 1.0, 2.0)):
        out = tmp_path / f"out{number}"
        killed += run_and_kill(study, out, delay_s)
        for path in sorted(out.iterdir()):
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                continue  # a temporary file: never under a final name
            if path.name.startswith(STAGING_PREFIX) and path.is_dir():
                continue  # the killed run's staging folder: nothing in it is an output
            check_complete(path)
    assert killed >= 3, "the export finished before most kills: the test proved nothing"

    # The folder of an interrupted run takes a complete run afterwards.
    out = tmp_path / "out0"
    subprocess.run([sys.executable, "-m", "napari_calcinosis", "analyze", str(study),
                    "--out", str(out), "--quiet"], check=True, capture_output=True)
    finals = list(out.iterdir())
    assert not [p for p in finals if p.name.startswith(".")], "staging left behind"
    assert {"findings.json", "report.pdf", "sr.dcm"} <= {p.name for p in finals}
    for path in finals:
        check_complete(path)

    # A run killed in a folder used before leaves the previous run's files as they were.
    before = {p.name: p.read_bytes() for p in finals}
    for delay_s in (0.0, 0.3, 1.0):
        if run_and_kill(study, out, delay_s):
            after = {p.name: p.read_bytes() for p in out.iterdir()
                     if not p.name.startswith(".")}
            assert after == before
