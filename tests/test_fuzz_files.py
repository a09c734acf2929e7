"""Fuzz: real files and 400 mutations never cost a study, never hang, never trace back.

``tests/_support/fuzz_dicom.py`` runs ``analyze`` on (a) every DICOM file pydicom and
pydicom-data ship, each alone, and (b) 400 seeded mutations of one slice of a real CT
(``tests/data/realct``), each alone and mixed into the other 7 valid slices, in a child
process (each run bounded by an alarm). Here: no traceback, no "Unexpected" error, no
timeout, exit codes of the contract, no raw Python warning on stderr, the valid series
analysed in every mixed run, and the child's peak memory under 2 GB.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SLAB = HERE / "data" / "realct" / "pancreas-ct-cbct-seg-001-slab8"
RUNNER = HERE / "_support" / "fuzz_dicom.py"
RAW_WARNING = re.compile(r"(Warning: |warn_and_log|^\s+File \"|Traceback)")


def _check(run: dict, label: str) -> list[str]:
    problems = []
    if run["outcome"] != "exit" or run["status"] not in (0, 1, 2, 3):
        problems.append(f"{label}: {run['outcome']} {run['status']}")
    if "Unexpected" in run["stderr"] or any(RAW_WARNING.search(line)
                                            for line in run["stderr"].splitlines()):
        problems.append(f"{label}: {run['stderr'][-300:]}")
    return problems


@pytest.mark.slow
def test_every_real_file_alone(tmp_path):
    subprocess.run([sys.executable, str(RUNNER), "--files", str(tmp_path)], check=True,
                   timeout=1800, stdout=subprocess.DEVNULL)
    report = json.loads((tmp_path / "files.json").read_text(encoding="utf-8"))
    assert len(report["runs"]) >= 100
    problems = [p for run in report["runs"] for p in _check(run, run["name"])]
    assert problems == []
    assert report["peak_mb"] < 2048


@pytest.mark.slow
def test_400_mutations_alone_and_mixed_into_a_real_series(tmp_path):
    subprocess.run([sys.executable, str(RUNNER), str(SLAB), str(tmp_path), "400", "1"],
                   check=True, timeout=3600, stdout=subprocess.DEVNULL)
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    runs = report["runs"]
    assert len(runs) == 400 and not [r for r in runs if "skipped" in r]
    problems = []
    for run in runs:
        problems += _check(run["alone"], f"{run['name']} alone")
        problems += _check(run["mixed"], f"{run['name']} mixed")
        mixed = run["mixed"]
        if mixed["status"] != 0 or not mixed.get("ct_analysed"):
            problems.append(f"{run['name']}: the valid series was not analysed")
    assert problems == []
    assert report["peak_mb"] < 2048
