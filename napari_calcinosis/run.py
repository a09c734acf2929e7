"""Load a study, analyse it and write the outputs: the job behind ``napari-calcinosis analyze``.

:func:`run_analysis` is what the command line's ``analyze`` and ``demo`` run, and what a
script or a batch of studies can call: the clinical file is read first (a bad one stops
before any work), the study is loaded and analysed with the reader's saved annotations, and
each chosen format is written (``docs/contract.md``, "Command line").
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from napari_calcinosis.annotations import AnnotationRecord, default_store
from napari_calcinosis.clinical import load_clinical, parse_clinical
from napari_calcinosis.dicom import load_study
from napari_calcinosis.pipeline import analyze_study, detector_for, not_analysed_reason
from napari_calcinosis.report import WRITERS, ExportContext, anonymize_findings
from napari_calcinosis.types import (
    ANNOTATIONS_NOT_APPLIED,
    CalcinosisError,
    CTParams,
    Findings,
    NoImageSeriesError,
    Progress,
    Study,
    UsageError,
    no_progress,
    sub_progress,
)

__all__ = ["MAX_THRESHOLD_HU", "run_analysis"]

#: Largest ``--threshold-hu`` accepted (calcium is usually 130 HU).
MAX_THRESHOLD_HU = 3000.0


def run_analysis(study_path: Path | Sequence[Path], out_dir: Path, *,
                 formats: Sequence[str],
                 clinical_path: Path | None = None, clinical_data: dict | None = None,
                 series_uids: Sequence[str] = (),
                 threshold_hu: float | None = None, anonymize: bool = False,
                 use_annotations: bool = True,
                 progress: Progress | None = None,
                 warn: Callable[[str], None] | None = None,
                 study_uid: str | None = None) -> list[Path]:
    """Load, analyse and write: the body of ``napari-calcinosis analyze`` (and of ``demo``
    and of each study of ``batch``).

    ``progress(fraction, message)`` follows every step; ``warn(sentence)`` receives what the
    reader must see even when progress is silenced (an unusable annotation file).
    ``study_path`` may be several paths (one study's files spread over folders);
    ``study_uid`` keeps only the images of that study.

    Returns
    -------
    list of Path
        The files written, in the order of ``formats``.
    """
    report = progress or no_progress
    warn = warn or (lambda message: None)
    _check_threshold(threshold_hu)
    clinical = (load_clinical(clinical_path) if clinical_path is not None else
                parse_clinical(clinical_data) if clinical_data is not None else None)
    paths = [study_path] if isinstance(study_path, (str, Path)) else list(study_path)
    for path in paths:
        if not Path(path).exists():
            raise UsageError(f"STUDY {path} does not exist.")
    study_path = paths[0] if len(paths) == 1 else Path(os.path.commonpath(paths))
    _check_out_dir(out_dir)
    report(0.0, f"Reading {study_path}")
    study = load_study(paths[0] if len(paths) == 1 else paths,
                       series_uids=list(series_uids) or None,
                       progress=sub_progress(report, 0.0, 0.3, "Reading: "))
    if study_uid is not None:
        _keep_study(study, study_uid)
    for message in [*study.warnings, *study.set_aside_messages()]:
        warn(message)  # every file skipped or set aside is named, even with --quiet
    _check_series(study, study_path, series_uids)
    params = CTParams() if threshold_hu is None else CTParams(threshold_hu=threshold_hu)
    unusable: list[str] = []
    record = _saved_annotations(study, report, warn, unusable) if use_annotations else None
    result = analyze_study(study, params=params, clinical=clinical, annotations=record,
                           progress=sub_progress(report, 0.3, 0.9, "Analysing: "))
    # the reader must not take automatic findings for their reviewed ones: say it first
    result.findings.warnings[:0] = [f"{ANNOTATIONS_NOT_APPLIED}: {w} The lesions, summary "
                                    "and differential are the automatic detection only."
                                    for w in unusable]
    context = ExportContext(result=result, anonymize=anonymize, progress=report)
    findings = result.findings
    if anonymize:
        findings, context.uid_map = anonymize_findings(findings, study)
    return _write_outputs(findings, out_dir, formats, context, report)


def _keep_study(study: Study, study_uid: str) -> None:
    """Only the images of one study (a folder or a zip may hold several)."""
    study.volumes = [v for v in study.volumes if v.info.study_instance_uid == study_uid]
    study.radiographs = [r for r in study.radiographs
                         if r.info.study_instance_uid == study_uid]


def _saved_annotations(study: Study, progress: Progress, warn: Callable[[str], None],
                       unusable: list[str]) -> AnnotationRecord | None:
    """The reader's saved record of this study (what the viewer saved), or ``None``; the
    sentences about a saved record that could not be used go to ``unusable``."""
    store = default_store()
    # Read-only here: an unusable file is reported, never moved (the viewer handles it).
    record = store.load(study.study_instance_uid, set_aside=False)
    for warning in store.warnings:
        warn(f"{ANNOTATIONS_NOT_APPLIED}: {warning}")
    if record is None:
        unusable.extend(store.warnings)
    if record is not None:
        progress(0.3, "Using the reader's saved annotations of this study "
                      "(--ignore-annotations to analyse without them)")
    return record


def _check_series(study: Study, study_path: Path, series_uids: Sequence[str]) -> None:
    found = {img.info.series_instance_uid for img in [*study.volumes, *study.radiographs]}
    missing = [uid for uid in series_uids if uid not in found]
    if missing:
        raise NoImageSeriesError(
            f"No usable image series with UID {', '.join(missing)} in {study_path}.")
    if study.is_empty:
        why = [*study.set_aside_messages(), *study.warnings][:3]
        raise NoImageSeriesError(f"No usable image series found in {study_path}"
                                 + (f" ({'; '.join(why)})." if why else "."))
    images = [*study.volumes, *study.radiographs]
    if not any(detector_for(image) for image in images):
        reasons = "; ".join(dict.fromkeys(not_analysed_reason(image) or "" for image in images))
        raise NoImageSeriesError(f"Nothing in {study_path} can be analysed ({reasons}).")


def _check_threshold(threshold_hu: float | None) -> None:
    if threshold_hu is not None and not 0 < threshold_hu <= MAX_THRESHOLD_HU:
        raise UsageError(f"--threshold-hu must be between 0 and {MAX_THRESHOLD_HU:g} HU "
                         f"(calcium is usually 130), not {threshold_hu:g}.")


def _check_out_dir(out_dir: Path) -> None:
    # Fail before the (long) analysis rather than after it.
    if out_dir.exists() and not out_dir.is_dir():
        raise CalcinosisError(f"Cannot create the output folder {out_dir}: a file of that "
                              "name exists.")


def _write_outputs(findings: Findings, out_dir: Path, formats: Sequence[str],
                   context: ExportContext, progress: Progress) -> list[Path]:
    """Write every format into a hidden staging folder inside ``out_dir``, then move the
    finished set into place: a run that fails or is killed leaves the previous run's files
    as they were (and at most its staging folder, removed by the next run)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CalcinosisError(f"Cannot create the output folder {out_dir}: "
                              f"{exc.strerror or exc}.") from exc
    _remove_stale_staging(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_dir))
    try:
        staged: list[Path] = []
        for number, name in enumerate(formats):
            writer = WRITERS[name]
            progress(0.9 + 0.1 * number / len(formats), f"Writing {writer.files}")
            try:
                staged.extend(writer.write(findings, staging, context))
            except OSError as exc:
                raise CalcinosisError(f"Cannot write {writer.files} in {out_dir}: "
                                      f"{exc.strerror or exc}.") from exc
        written = [_move_into_place(path, staging, out_dir) for path in staged]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(1.0, f"Done: {len(written)} file{'s' if len(written) != 1 else ''} in {out_dir}")
    return written


#: Name prefix of the hidden folder a run writes into before its files are moved in place.
STAGING_PREFIX = ".calcinosis-run-"


def _remove_stale_staging(out_dir: Path) -> None:
    """Staging folders left by killed runs (nothing in them was ever an output)."""
    for old in out_dir.glob(STAGING_PREFIX + "*"):
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)


def _move_into_place(path: Path, staging: Path, out_dir: Path) -> Path:
    target = out_dir / path.relative_to(staging)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(path, target)
    except OSError as exc:
        raise CalcinosisError(f"Cannot move {target.name} into {out_dir}: "
                              f"{exc.strerror or exc}.") from exc
    return target
