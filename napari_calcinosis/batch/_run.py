"""Running many studies on Dask: one task per study, outputs per study, cohort tables.

Each study is one task (:func:`analyze_source`) on a ``dask.distributed`` cluster: a local
one of ``workers`` processes with one thread each (so a worker holds one study at a time,
within ``memory_limit``), or an existing cluster by its scheduler address. The task runs
exactly what ``analyze`` runs (:func:`napari_calcinosis.run.run_analysis`) into
``OUT/<study>/`` and records ``batch.json`` there (the software version and parameters it
ran with, its row and its lesions); a study that fails writes ``error.txt`` instead. A task
whose worker dies is retried once (Dask's ``retries``; the nanny replaces the worker),
then recorded as failed. ``resume`` skips studies whose ``batch.json`` has the same
signature and whose outputs are all there. The driver holds only the rows. A study on a
PACS (:mod:`._pacs`) is retrieved by its worker first and, with ``send``, its DICOM
outputs are stored back in the same study (a refusal makes the study's row failed).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_calcinosis import __version__
from napari_calcinosis.files import atomic_write_text
from napari_calcinosis.report import WRITERS
from napari_calcinosis.run import run_analysis
from napari_calcinosis.types import CalcinosisError, NoImageSeriesError, UsageError

from ._clinical import load_clinical_csv
from ._discover import StudySource, discover_studies
from ._pacs import pacs_sources, retrieve_source, send_outputs
from ._tables import LESION_COLUMNS, STUDY_COLUMNS, lesion_rows, study_row

__all__ = ["BatchOptions", "BatchSummary", "analyze_source", "run_batch"]

BATCH_FILE = "batch.json"
ERROR_FILE = "error.txt"


@dataclass
class BatchOptions:
    """What ``napari-calcinosis batch`` was asked to do."""

    out: Path
    formats: list[str]
    workers: int = 2
    scheduler: str | None = None
    resume: bool = False
    anonymize: bool = False
    clinical_dir: Path | None = None
    clinical_csv: Path | None = None
    threshold_hu: float | None = None
    memory_limit: str = "4GiB"
    retries: int = 1
    send: bool = False

    def signature(self) -> dict[str, Any]:
        """What a study's outputs depend on: equal signatures mean equal outputs."""
        signature = {"software": __version__, "formats": sorted(self.formats),
                     "anonymize": self.anonymize, "threshold_hu": self.threshold_hu,
                     "clinical_dir": None if self.clinical_dir is None else
                     str(Path(self.clinical_dir).resolve()),
                     "clinical_csv": None if self.clinical_csv is None else
                     _digest(Path(self.clinical_csv))}
        if self.send:  # a study done without --send must be done (and sent) again
            signature["send"] = True
        return signature


@dataclass
class BatchSummary:
    """How the batch went."""

    studies: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    tables: list[Path] = field(default_factory=list)


def _clinical_for(source: StudySource, clinical_dir: Path | None) -> Path | None:
    if clinical_dir is None:
        return None
    for name in (source.study_uid, source.patient_id):
        if name and (Path(clinical_dir) / f"{name}.json").is_file():
            return Path(clinical_dir) / f"{name}.json"
    return None


def _digest(path: Path) -> str:
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return str(path)


def analyze_source(source: StudySource, options: BatchOptions,
                   clinical_data: dict[str, Any] | None = None) -> dict[str, Any]:
    """One study, as ``analyze`` would do it, into ``OUT/<study>/`` (runs on a worker);
    ``clinical_data`` is its row of the clinical CSV, if any."""
    key = source.key(options.anonymize)
    folder = Path(options.out) / key
    start = time.monotonic()
    try:
        paths = retrieve_source(source) if source.pacs_server else source.paths
        written = run_analysis(paths, folder, formats=options.formats,
                               clinical_path=None if clinical_data is not None else
                               _clinical_for(source, options.clinical_dir),
                               clinical_data=clinical_data,
                               threshold_hu=options.threshold_hu,
                               anonymize=options.anonymize,
                               study_uid=source.study_uid or None)
        doc = json.loads((folder / "findings.json").read_text(encoding="utf-8"))
        sent = send_outputs(source, written) if options.send and source.pacs_server else []
    except CalcinosisError as exc:
        return failed(source, options, str(exc), time.monotonic() - start)
    except Exception as exc:  # noqa: BLE001 - one study never stops the batch
        return failed(source, options, f"Unexpected {type(exc).__name__}: {exc}",
                      time.monotonic() - start)
    seconds = time.monotonic() - start
    uid = "" if options.anonymize else source.study_uid
    row = study_row(key, doc, status="ok", seconds=seconds, study_uid=uid)
    if options.anonymize:
        row["study_instance_uid"] = doc["study"].get("study_instance_uid", "")
    record = {"signature": options.signature(), "row": row,
              "lesions": lesion_rows(key, doc),
              "files": sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))}
    if sent:
        record["sent"] = sent
    (folder / ERROR_FILE).unlink(missing_ok=True)
    atomic_write_text(folder / BATCH_FILE, json.dumps(record, indent=1, default=str))
    return record


def failed(source: StudySource, options: BatchOptions, error: str,
           seconds: float = 0.0) -> dict[str, Any]:
    """The record of a study that failed; its ``error.txt`` says why."""
    key = source.key(options.anonymize)
    folder = Path(options.out) / key
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / ERROR_FILE, error + "\n")
        (folder / BATCH_FILE).unlink(missing_ok=True)
    except OSError:
        pass
    uid = "" if options.anonymize else source.study_uid
    return {"row": study_row(key, None, status="failed", error=error, seconds=seconds,
                             study_uid=uid), "lesions": []}


def _completed(source: StudySource, options: BatchOptions) -> dict[str, Any] | None:
    """The record of a study done before with the same signature, outputs all present."""
    folder = Path(options.out) / source.key(options.anonymize)
    try:
        record = json.loads((folder / BATCH_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("signature") != options.signature():
        return None
    if not all((folder / name).exists() for name in record.get("files", [])):
        return None
    return record


def _connect(options: BatchOptions, log: Callable[[str], None]):
    from dask.distributed import Client, LocalCluster

    if options.scheduler:
        try:
            client = Client(options.scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise CalcinosisError(f"Cannot reach the Dask scheduler at {options.scheduler} "
                                  f"({exc}).") from exc
        return client, None
    import dask

    dashboard = ":0" if _has_bokeh() else None
    # a study whose worker dies is tried once more, then recorded as failed
    with dask.config.set({"distributed.scheduler.allowed-failures": options.retries}):
        cluster = LocalCluster(n_workers=max(1, options.workers), threads_per_worker=1,
                               processes=True, memory_limit=options.memory_limit,
                               dashboard_address=dashboard, silence_logs=logging.ERROR)
    return Client(cluster), cluster


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


def run_batch(archives: list[Path], options: BatchOptions, *,
              log: Callable[[str], None] | None = None,
              pacs_studies: Sequence[tuple[str, str]] = ()) -> BatchSummary:
    """Discover, analyse on Dask and tabulate (module docstring); ``pacs_studies`` adds
    (server, StudyInstanceUID) pairs retrieved from a PACS by the workers.

    Raises
    ------
    UsageError
        Unknown formats or a missing archive.
    NoImageSeriesError
        When no study is found.
    """
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    unknown = [f for f in options.formats if f not in WRITERS]
    if unknown:
        raise UsageError(f"Unknown format {unknown[0]!r} in --formats.")
    start = time.monotonic()
    sources, warnings = discover_studies(archives) if archives else ([], [])
    for warning in warnings:
        log(f"warning: {warning}")
    remote, missing = pacs_sources(pacs_studies) if pacs_studies else ([], [])
    local = {s.key() for s in sources}
    sources += [s for s in remote if s.key() not in local]  # a local copy wins
    if not sources and not missing:
        raise NoImageSeriesError("No DICOM study found in "
                                 f"{', '.join(str(a) for a in archives)}.")
    Path(options.out).mkdir(parents=True, exist_ok=True)
    clinical = {} if options.clinical_csv is None else load_clinical_csv(options.clinical_csv)
    records: dict[int, dict[str, Any]] = {}
    for source, error in missing:
        records[len(sources)] = failed(source, options, error)
        sources.append(source)
    todo = []
    for index, source in enumerate(sources):
        if index in records:
            continue
        previous = _completed(source, options) if options.resume else None
        if previous is not None:
            records[index] = previous
        else:
            todo.append(index)
    summary = BatchSummary(studies=len(sources), skipped=len(records) - len(missing),
                           failed=len(missing))
    log(f"{len(sources)} studies found; {len(todo)} to analyse"
        + (f", {summary.skipped} already done (--resume)" if summary.skipped else "")
        + (f", {len(missing)} not on the PACS" if missing else ""))
    if todo:
        _analyse_all(sources, todo, options, records, summary, log, clinical)
    summary.seconds = time.monotonic() - start
    summary.tables = _write_tables([records[i] for i in range(len(sources))], options.out)
    log(f"done: {summary.done} analysed, {summary.failed} failed, {summary.skipped} "
        f"skipped, in {summary.seconds:.0f} s; tables in {options.out}")
    return summary


def _analyse_all(sources, todo, options, records, summary, log, clinical) -> None:
    from dask.distributed import as_completed

    client, cluster = _connect(options, log)
    try:
        link = getattr(client, "dashboard_link", None)
        if link and (cluster is None or _has_bokeh()):
            log(f"Dask dashboard: {link}")
        futures = {client.submit(analyze_source, sources[i], options,
                                 clinical.get(sources[i].study_uid)
                                 or clinical.get(f"patient:{sources[i].patient_id}"),
                                 pure=False,
                                 retries=options.retries,
                                 key=f"calcinosis-{i}-{os.getpid()}-{time.time_ns()}"): i
                   for i in todo}
        begun = time.monotonic()
        for n, future in enumerate(as_completed(futures), start=1):
            index = futures[future]
            try:
                record = future.result()
            except Exception as exc:  # noqa: BLE001 - a worker died twice, or worse
                record = failed(sources[index], options,
                                f"the analysis did not finish ({type(exc).__name__}: {exc})")
            records[index] = record
            if record["row"]["status"] == "ok":
                summary.done += 1
            else:
                summary.failed += 1
            rate = n / max(time.monotonic() - begun, 1e-6)
            left = (len(todo) - n) / rate
            log(f"[{n}/{len(todo)}] {summary.done} done, {summary.failed} failed, "
                f"{rate:.2f} studies/s, about {left:.0f} s left")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _write_tables(records: list[dict[str, Any]], out: Path) -> list[Path]:
    import pandas as pd

    out = Path(out)
    studies = pd.DataFrame([r["row"] for r in records], columns=STUDY_COLUMNS)
    lesions = pd.DataFrame([row for r in records for row in r["lesions"]],
                           columns=LESION_COLUMNS)
    written = []
    for frame, name, kind in ((studies, "studies.csv", "csv"),
                              (studies, "studies.parquet", "parquet"),
                              (lesions, "lesions.parquet", "parquet")):
        path = out / name
        tmp = out / f".{name}.tmp"
        if kind == "csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
        written.append(path)
    return written
