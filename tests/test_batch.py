"""``napari-calcinosis batch`` on a real Dask cluster (2 worker processes, loopback).

Six studies made of the real CT slab (``tests/data/realct``), each with its own UIDs: two
plain folders, one split across two folders, one in a zip, one broken (its slices say MR:
nothing can be analysed), one more plain. Every row is present, the broken one with its
error; each study's findings are those ``analyze`` writes for it; ``--resume`` repeats
nothing; a study whose worker dies is retried, then recorded as failed.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pydicom
import pytest
from pydicom.uid import generate_uid

from napari_calcinosis import cli
from napari_calcinosis.batch import LESION_COLUMNS, STUDY_COLUMNS, discover_studies

SLAB = Path(__file__).resolve().parent / "data" / "realct" / "pancreas-ct-cbct-seg-001-slab8"


def _write_study(folders: list[Path], seed: str, modality: str = "CT") -> str:
    """The slab with new UIDs, its slices spread over ``folders``; returns the study UID."""
    study = generate_uid(entropy_srcs=[seed, "study"])
    series = generate_uid(entropy_srcs=[seed, "series"])
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for k, path in enumerate(sorted(SLAB.glob("*.dcm"))):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[seed, str(k)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID = f"PAT-{seed}"
        ds.Modality = modality
        ds.save_as(folders[k % len(folders)] / path.name)
    return study


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("archive")
    uids = {"a": _write_study([root / "a"], "a"), "b": _write_study([root / "b"], "b"),
            "split": _write_study([root / "left" / "x", root / "right" / "y"], "split"),
            "broken": _write_study([root / "broken"], "broken", modality="MR"),
            "f": _write_study([root / "f"], "f")}
    zipped = tmp_path_factory.mktemp("zipsrc")
    uids["zip"] = _write_study([zipped / "z"], "zip")
    with zipfile.ZipFile(root / "z.zip", "w") as archive_zip:
        for path in sorted((zipped / "z").iterdir()):
            archive_zip.write(path, f"z/{path.name}")
    return root, uids


def test_discovery_brings_each_study_together(archive):
    root, uids = archive
    sources, warnings = discover_studies([root])
    assert warnings == []
    by_uid = {s.study_uid: s for s in sources}
    assert set(by_uid) == set(uids.values())
    assert by_uid[uids["split"]].n_files == 8 and len(by_uid[uids["split"]].paths) == 8
    assert by_uid[uids["zip"]].paths == [root / "z.zip"]


@pytest.mark.slow
def test_batch_on_a_local_dask_cluster(archive, tmp_path, capsys):
    root, uids = archive
    out = tmp_path / "out"
    table = tmp_path / "clinical.csv"
    table.write_text("patient_id,age,sex,calcium,calcium_unit,dialysis\n"
                     "PAT-f,54,F,2.9,mmol/L,yes\n", encoding="utf-8")
    status = cli.main(["batch", str(root), "--out", str(out), "--workers", "2",
                       "--formats", "json,csv,html", "--clinical-csv", str(table)])
    err = capsys.readouterr().err
    assert status == 1 and "1 of 6 studies failed" in err  # the broken one
    assert "[6/6]" in err
    studies = pd.read_parquet(out / "studies.parquet")
    assert list(studies.columns) == STUDY_COLUMNS
    assert pd.read_csv(out / "studies.csv").shape == studies.shape
    rows = studies.set_index("study_instance_uid")
    assert set(rows.index) == set(uids.values())
    broken = rows.loc[uids["broken"]]
    assert broken["status"] == "failed" and "modality MR" in broken["error"]
    assert "modality MR" in (out / uids["broken"] / "error.txt").read_text()
    ok = rows[rows["status"] == "ok"]
    assert len(ok) == 5 and (ok["series_analysed"] == 1).all()
    lesions = pd.read_parquet(out / "lesions.parquet")
    assert list(lesions.columns) == LESION_COLUMNS
    for uid in ok.index:
        doc = json.loads((out / uid / "findings.json").read_text())
        assert (lesions["study"] == uid).sum() == len(doc["lesions"])
        assert rows.loc[uid, "lesion_count"] == doc["summary"]["lesion_count"]

    # each study's findings are what `analyze` writes for it
    single = tmp_path / "single"
    assert cli.main(["analyze", str(root / "a"), "--out", str(single), "--quiet",
                     "--formats", "json"]) == 0
    assert (single / "findings.json").read_text() == \
        (out / uids["a"] / "findings.json").read_text()
    split = json.loads((out / uids["split"] / "findings.json").read_text())
    assert split["series"][0]["shape"][0] == 8  # both halves of the split study
    # the clinical CSV's row reached its study (by PatientID), and only that one
    with_labs = (out / uids["f"] / "report.html").read_text(encoding="utf-8")
    without = (out / uids["b"] / "report.html").read_text(encoding="utf-8")
    assert "11.6 mg/dL" in with_labs and "11.6 mg/dL" not in without  # 2.9 mmol/L

    # --resume repeats nothing that is complete; the broken study is tried again
    stamp = (out / uids["a"] / "findings.json").stat().st_mtime_ns
    status = cli.main(["batch", str(root), "--out", str(out), "--workers", "2",
                       "--formats", "json,csv,html", "--resume", "--clinical-csv",
                       str(table)])
    err = capsys.readouterr().err
    assert status == 1 and "1 to analyse, 5 already done" in err
    assert (out / uids["a"] / "findings.json").stat().st_mtime_ns == stamp
    assert pd.read_parquet(out / "studies.parquet").shape == studies.shape


from distributed import WorkerPlugin  # noqa: E402


class _KillOnStudy(WorkerPlugin):
    """A worker plugin that ends its worker's process when a task of one study starts: a
    worker dying mid-study, as an out-of-memory kill does."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def setup(self, worker):
        self.worker = worker

    def transition(self, key, start, finish, *args, **kwargs):
        import os

        if finish == "executing" and str(key).startswith(self.prefix):
            os._exit(1)


@pytest.mark.slow
def test_a_dying_worker_is_replaced_and_its_study_recorded_failed(archive, tmp_path,
                                                                 capsys):
    import dask
    from dask.distributed import Client, LocalCluster

    root, uids = archive
    sources, _ = discover_studies([root])
    victim = next(i for i, s in enumerate(sources) if s.study_uid == uids["b"])
    # one retry after a worker's death (Dask's allowed-failures), as the CLI's own cluster
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            import sys

            import cloudpickle

            cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot
            client.register_plugin(_KillOnStudy(f"calcinosis-{victim}-"), name="kill")
            out = tmp_path / "out"
            status = cli.main(["batch", str(root), "--out", str(out), "--scheduler",
                               cluster.scheduler_address, "--formats", "json"])
            client.wait_for_workers(2, timeout=60)  # the nanny restarts it asynchronously
            alive = len(client.scheduler_info()["workers"])
    err = capsys.readouterr().err
    assert status == 1 and "2 of 6 studies failed" in err
    rows = pd.read_parquet(out / "studies.parquet").set_index("study_instance_uid")
    assert rows.loc[uids["b"], "status"] == "failed"
    assert "did not finish" in rows.loc[uids["b"], "error"]
    assert (rows["status"] == "ok").sum() == 4  # the other studies went on
    assert alive == 2  # the nanny replaced the worker


def _dask(*args: str, log: Path):
    import subprocess
    import sys

    script = Path(sys.executable).parent / "dask"
    with log.open("w") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([str(script), *args], stdout=handle,
                                stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_batch_on_a_scheduler_and_workers_started_by_hand_survives_a_killed_worker(
        archive, tmp_path, capsys):
    """``dask scheduler`` and two ``dask worker`` processes, as a user would start them;
    one worker is killed while the batch runs: the batch still completes."""
    import subprocess
    import threading
    import time

    root, uids = archive
    address_file = tmp_path / "scheduler.json"
    processes = [_dask("scheduler", "--host", "127.0.0.1", "--port", "0",
                       "--no-dashboard", "--scheduler-file", str(address_file),
                       log=tmp_path / "scheduler.log")]
    try:
        deadline = time.monotonic() + 60
        while not address_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(address_file.read_text())["address"]
        for n in range(2):
            processes.append(_dask("worker", address, "--nthreads", "1", "--nworkers", "1",
                                   "--no-nanny", "--no-dashboard",
                                   log=tmp_path / f"worker{n}.log"))
        out = tmp_path / "out"
        victim = processes[1]

        def kill_when_busy():  # as soon as the first study is done, one worker dies
            while time.monotonic() < deadline + 240:
                if list(out.glob("*/batch.json")):
                    victim.kill()
                    return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_when_busy, daemon=True)
        killer.start()
        status = cli.main(["batch", str(root), "--out", str(out), "--scheduler", address,
                           "--formats", "json"])
        killer.join(timeout=5)
        err = capsys.readouterr().err
        assert victim.poll() is not None, "the worker was not killed during the batch"
        assert status == 1 and "1 of 6 studies failed" in err, err  # only the broken one
        rows = pd.read_csv(out / "studies.csv")
        assert (rows["status"] == "ok").sum() == 5
    finally:
        for process in processes:
            process.kill()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass


@pytest.mark.slow
def test_resume_after_an_interrupted_batch_repeats_nothing_complete(archive, tmp_path):
    """The batch process is killed after its first studies; --resume does the rest only."""
    import signal
    import subprocess
    import sys
    import time

    root, uids = archive
    out = tmp_path / "out"
    command = [sys.executable, "-m", "napari_calcinosis", "batch", str(root), "--out",
               str(out), "--workers", "1", "--formats", "json", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(out.glob("*/batch.json"))) < 2:
        time.sleep(0.05)
    os_group = process.pid
    import os

    os.killpg(os_group, signal.SIGKILL)  # the driver and its local workers
    process.wait(timeout=30)
    done = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/batch.json")}
    assert 2 <= len(done) < 5, "the batch was not interrupted mid-way"
    stamps = {name: (out / name / "findings.json").stat().st_mtime_ns for name in done}
    finished = subprocess.run([*command, "--resume"], capture_output=True, text=True,
                              timeout=600)
    assert finished.returncode == 1  # the broken study
    for name, stamp in stamps.items():
        assert (out / name / "findings.json").stat().st_mtime_ns == stamp, name
    rows = pd.read_csv(out / "studies.csv")
    assert len(rows) == 6 and (rows["status"] == "ok").sum() == 5
