"""A process killed while saving annotations never leaves a broken record behind.

A child process opens the study's record (as a restarted viewer would), then saves a large
record over and over; the parent kills it with SIGKILL at seeded random moments. After every
kill the file on disk must be a complete, valid record (the previous or the new one), the
saves must never go backwards, and at most the one temporary file being written may be left,
which the next load removes.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest

from napari_calcinosis.annotations import AnnotationStore, validate_record_doc

STUDY = "1.2.826.0.1.3680043.8.498.99"
N_MANUAL = 300
KILLS = 6

CHILD = f"""
import sys
import numpy as np
from napari_calcinosis.annotations._findings import AnnotationRecord, AnnotationStore
from napari_calcinosis.types.findings import Lesion

store = AnnotationStore(sys.argv[1])
record = store.open({STUDY!r})
if not record.manual_lesions:
    rng = np.random.default_rng(int(sys.argv[2]))
    for k in range({N_MANUAL}):
        mask = np.zeros((40, 64, 64), dtype=bool)
        z, y, x = (int(v) for v in rng.integers(5, 35, size=3))
        mask[z - 4:z + 4, y - 4:y + 4, x - 4:x + 4] = rng.random((8, 8, 8)) > 0.5
        record.add_manual(Lesion(id=0, series_instance_uid="1.2.3.4",
                                 centroid_index=[z, y, x], centroid_mm=[x, y, z],
                                 volume_mm3=float(mask.sum()), layer="skin"), mask)
iteration = int(record.detection_parameters.get("iteration", 0))
while True:
    iteration += 1
    record.set_detection_parameters({{"iteration": iteration, "echo": iteration * 7}})
    record.override_summary("extent", ("localized", "generalized")[iteration % 2])
    store.save(record)
    print(iteration, flush=True)
"""


def _temp_files(root):
    return [p for p in root.iterdir() if p.name.endswith(".tmp")]


def _check_record_file(root) -> int:
    path = AnnotationStore(root).path_for(STUDY)
    doc = json.loads(path.read_text(encoding="utf-8"))  # complete JSON, never truncated
    validate_record_doc(doc)
    assert doc["study_instance_uid"] == STUDY and len(doc["manual_lesions"]) == N_MANUAL
    iteration = doc["detection_parameters"]["iteration"]
    assert doc["detection_parameters"]["echo"] == iteration * 7
    assert doc["summary_overrides"]["extent"]["value"] == (
        "localized", "generalized")[iteration % 2]
    return iteration


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_killed_while_saving_leaves_a_valid_record(tmp_path):
    rng = random.Random(20240501)
    last_seen = 0
    kills_after_progress = 0
    for kill in range(KILLS):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), "7"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = child.stdout.readline()  # the child opened the record and saved once
            assert first.strip().isdigit(), child.stderr.read()
            assert int(first) > last_seen  # it continued from the record it found
            time.sleep(rng.uniform(0.0, 0.5))
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
            child.stderr.close()
        assert child.returncode == -signal.SIGKILL, f"kill {kill}: the child ended by itself"
        on_disk = _check_record_file(tmp_path)
        assert on_disk >= last_seen  # the previous or a newer record, never older
        kills_after_progress += on_disk > int(first)
        last_seen = on_disk
        assert len(_temp_files(tmp_path)) <= 1  # only the one being written when killed
    assert kills_after_progress >= 1  # some kills landed in the middle of the save loop
    record = AnnotationStore(tmp_path).load(STUDY)  # a restart: stale temp files go
    assert record is not None and record.detection_parameters["iteration"] == last_seen
    assert _temp_files(tmp_path) == []
    assert not [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
