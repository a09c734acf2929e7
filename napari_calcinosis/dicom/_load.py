"""Open a DICOM study: find, classify, group and decode series into Volumes and Radiographs.

``load_study`` is the one entry point the command line and the napari reader share. It
accepts a DICOM file (any name), a folder (searched recursively, files recognised by
content), a DICOMDIR or a ``.zip`` of those. Bad files inside a folder never stop the study
from opening: they are skipped with a warning naming the file and the problem.

The work is split across modules: :mod:`._find` (files), :mod:`._header` (headers and
frames), :mod:`._series` (sorting, geometry, volumes), :mod:`._pixels` (decoding) and
:mod:`._radiograph` (radiographs).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.uid import generate_uid

from napari_calcinosis.types import (
    CalcinosisError,
    DicomReadError,
    Progress,
    SetAside,
    Study,
    sub_progress,
)

from ._find import ScanResult, opened, scan
from ._header import (
    FileHeader,
    Frame,
    frames_of,
    implausible_reason,
    is_dicomdir,
    is_localizer,
    non_image_reason,
    number_of_frames,
    read_header,
)
from ._radiograph import RADIOGRAPH_MODALITIES, build_radiograph
from ._series import build_volume, series_label, split_stacks

__all__ = ["load_study"]

HEADER_SHARE = 0.3  # fraction of the progress bar spent reading headers
_NAMED_EXAMPLES = 5


@dataclass
class _Sorted:
    """Headers sorted into what will become radiographs, volumes and set-asides."""

    radiographs: list[FileHeader] = field(default_factory=list)
    series: dict[str, list[Frame]] = field(default_factory=dict)


def _set_aside(study: Study, header: FileHeader, reason: str) -> None:
    ds = header.ds
    study.set_aside.append(SetAside(
        path=Path(header.name), reason=reason, sop_class=str(ds.get("SOPClassUID", "")),
        series_instance_uid=str(ds.get("SeriesInstanceUID", "")),
    ))


def _has_geometry(header: FileHeader) -> bool:
    ds = header.ds
    return "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds


def _is_enhanced(header: FileHeader) -> bool:
    ds = header.ds
    return "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds


def _classify(header: FileHeader, study: Study, found: _Sorted) -> None:
    ds = header.ds
    if is_dicomdir(ds):
        return  # a DICOMDIR index inside a folder: its images are found by the folder scan
    reason = non_image_reason(header) or implausible_reason(header)
    if reason is not None:
        _set_aside(study, header, reason)
        return
    if header.inferred_syntax:
        study.warnings.append(f"{header.name}: no DICOM Part-10 file meta (an ACR-NEMA style "
                              f"file); read as {header.inferred_syntax}")
    enhanced = _is_enhanced(header)
    if is_localizer(ds) and not enhanced:
        _set_aside(study, header, "localizer (scout) image: set apart from the volume")
        return
    frames = number_of_frames(ds)
    modality = str(ds.get("Modality", "") or "").upper()
    if not enhanced and frames == 1 and (modality in RADIOGRAPH_MODALITIES
                                         or not _has_geometry(header)):
        found.radiographs.append(header)
    elif not enhanced and frames > 1:
        _set_aside(study, header, f"multi-frame {modality or 'image'} without per-frame "
                                  f"geometry (e.g. cine): not supported")
    else:
        uid = str(ds.get("SeriesInstanceUID", "") or "").strip() or _blank_uid_key(ds)
        found.series.setdefault(uid, []).extend(frames_of(header))


#: Prefix of the grouping key of images whose SeriesInstanceUID is blank or missing.
_BLANK = "blank-series:"


def _blank_uid_key(ds) -> str:
    """Images without a SeriesInstanceUID (common in anonymised research data) are grouped
    by what one series shares: study, frame of reference, modality, series number,
    orientation, pixel spacing and matrix."""
    parts = [ds.get(k, "") for k in ("StudyInstanceUID", "FrameOfReferenceUID", "Modality",
                                     "SeriesNumber", "Rows", "Columns")]
    for k in ("ImageOrientationPatient", "PixelSpacing"):
        value = ds.get(k)
        try:
            parts.append(tuple(round(float(v), 3) for v in value) if value else "")
        except (TypeError, ValueError):
            parts.append("")
    return _BLANK + "|".join(str(p) for p in parts)


@contextlib.contextmanager
def _warnings_as_sentences(study: Study, name: str):
    """pydicom's warnings about a file (invalid values, an unexpected VR) become one
    sentence each in the study's warnings, naming the file, instead of raw Python warnings
    on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen = set()
    for item in caught:
        text = str(item.message).split(" Please see <")[0].strip()
        if text and text not in seen:
            seen.add(text)
            study.warnings.append(f"{name}: {text}")


def _read_headers(files: list[Path], names: list[str], study: Study,
                  progress: Progress | None) -> list[FileHeader]:
    headers = []
    for k, (path, name) in enumerate(zip(files, names)):
        try:
            with _warnings_as_sentences(study, name):
                headers.append(read_header(path, name=name))
        except DicomReadError as exc:
            study.warnings.append(f"skipped {exc}")
        if progress is not None and (k % 50 == 0 or k == len(files) - 1):
            progress(HEADER_SHARE * (k + 1) / len(files), f"read {k + 1} of {len(files)} headers")
    return headers


def _report_scan(study: Study, skipped: list[str], non_dicom: list[Path],
                 names: Callable[[Path], str]) -> None:
    study.warnings.extend(f"skipped {msg}" for msg in skipped)
    if non_dicom:
        examples = ", ".join(names(p) for p in non_dicom[:_NAMED_EXAMPLES])
        more = "" if len(non_dicom) <= _NAMED_EXAMPLES else ", ..."
        study.warnings.append(f"ignored {len(non_dicom)} non-DICOM file"
                              f"{'s' if len(non_dicom) > 1 else ''}: {examples}{more}")


def load_study(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
               series_uids: Collection[str] | None = None,
               progress: Progress | None = None) -> Study:
    """Read every usable image series under a path (or several).

    Parameters
    ----------
    path : str, path-like, or sequence of them
        A DICOM file (any name), a folder (recursive), a DICOMDIR, or a ``.zip`` of those;
        or several such paths (napari passes the files a user selected together), whose
        files are grouped into series together.
    series_uids : collection of str, optional
        Decode only these SeriesInstanceUIDs (default: all).
    progress : callable, optional
        ``progress(fraction, message)`` with ``fraction`` from 0 to 1.

    Returns
    -------
    Study
        Volumes, radiographs, set-aside objects and warnings; possibly empty. Series-level
        warnings (gaps, duplicates, tilt, spacing source) are on each Volume/Radiograph.

    Raises
    ------
    DicomReadError
        When a path does not exist or is not readable, or a single file given is not DICOM.
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths:
        raise DicomReadError("no file or folder was given")
    study = Study()
    with contextlib.ExitStack() as stack:
        found, names = _scan_all(paths, stack)
        lone = Path(paths[0]) if len(paths) == 1 else None
        if lone is not None and lone.is_file() and lone not in names and not found.files:
            reason = "empty file" if lone.stat().st_size == 0 else "not a DICOM file"
            raise DicomReadError(f"{lone}: {reason}")
        if lone is not None and found.files == [lone]:
            headers = [read_header(lone)]  # a lone bad file is an error, not a warning
        else:
            _report_scan(study, found.skipped, found.non_dicom, lambda p: names.get(p, str(p)))
            study.warnings.extend(found.warnings)
            headers = _read_headers(found.files, [names.get(p, str(p)) for p in found.files],
                                    study, progress)
        sorted_ = _Sorted()
        for header in headers:
            with _warnings_as_sentences(study, header.name):
                try:
                    _classify(header, study, sorted_)
                except Exception as exc:  # noqa: BLE001 - one bad header never costs the study
                    _set_aside(study, header, f"its header cannot be interpreted ({exc})")
        _decode(study, sorted_, series_uids, progress)
    if progress is not None:
        progress(1.0, "done")
    return study


def _scan_all(paths: list, stack: contextlib.ExitStack) -> tuple[ScanResult, dict[Path, str]]:
    """Scan every path into one result; files extracted from a ``.zip`` get display names."""
    found = ScanResult()
    names: dict[Path, str] = {}
    for item in paths:
        root, archive = stack.enter_context(opened(item))
        part = scan(root)
        if archive is not None:
            for f in [*part.files, *part.non_dicom]:
                names[f] = str(archive / f.relative_to(root))
        seen = set(found.files)
        found.files.extend(f for f in part.files if f not in seen)
        found.skipped.extend(part.skipped)
        found.non_dicom.extend(part.non_dicom)
        found.warnings.extend(part.warnings)
    return found, names


def _wanted(uid: str, series_uids: Collection[str] | None) -> bool:
    return series_uids is None or uid in series_uids


def _decode(study: Study, found: _Sorted, series_uids: Collection[str] | None,
            progress: Progress | None) -> None:
    radiographs = [h for h in found.radiographs
                   if _wanted(str(h.ds.get("SeriesInstanceUID", "")), series_uids)]
    series = {uid: fr for uid, fr in found.series.items() if _wanted(uid, series_uids)}
    total = max(1, len(radiographs) + len(series))
    done = 0
    for header in radiographs:
        try:
            with _warnings_as_sentences(study, header.name):
                study.radiographs.append(build_radiograph(header))
            _name_blank_radiograph(study, study.radiographs[-1], header)
        except (CalcinosisError, Exception) as exc:  # noqa: BLE001 - bad data never crashes
            study.warnings.append(f"skipped {header.name}: image unreadable ({exc})")
        done += 1
        _report(progress, done, total)
    for key, frames in series.items():
        before = len(study.volumes)
        with _warnings_as_sentences(study, series_label(frames[0])):
            _decode_series(study, frames, _scaled(progress, done, total))
        if key.startswith(_BLANK):
            _name_blank_series(study, study.volumes[before:], key, frames)
        done += 1
        _report(progress, done, total)


def _scaled(progress: Progress | None, done: int, total: int) -> Progress | None:
    if progress is None:
        return None
    share = (1.0 - HEADER_SHARE) / total
    return sub_progress(progress, HEADER_SHARE + share * done, HEADER_SHARE + share * (done + 1))


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(HEADER_SHARE + (1.0 - HEADER_SHARE) * done / total,
                 f"decoded {done} of {total} series")


def _name_blank_series(study: Study, volumes: list, key: str, frames: list[Frame]) -> None:
    """Give series read without a SeriesInstanceUID (and without a StudyInstanceUID) UIDs
    derived from what grouped them, the same on every run, and say so."""
    for n, volume in enumerate(volumes):
        info = volume.info
        info.series_instance_uid = generate_uid(entropy_srcs=[key, str(n)])
        if not (info.study_instance_uid or "").strip():
            info.study_instance_uid = generate_uid(entropy_srcs=[key, "study"])
        study.warnings.append(
            f"{len(frames)} image(s) without a SeriesInstanceUID (first: "
            f"{frames[0].header.name}) were read as one series by their study, frame of "
            f"reference, orientation and spacing, and given the UID "
            f"{info.series_instance_uid}")


def _name_blank_radiograph(study: Study, radiograph, header: FileHeader) -> None:
    """A radiograph without a SeriesInstanceUID gets one derived from its file, with a
    warning (and a StudyInstanceUID when that is blank too)."""
    info = radiograph.info
    if (info.series_instance_uid or "").strip():
        return
    key = f"{header.name}|{header.ds.get('SOPInstanceUID', '')}"
    info.series_instance_uid = generate_uid(entropy_srcs=[key, "series"])
    if not (info.study_instance_uid or "").strip():
        info.study_instance_uid = generate_uid(entropy_srcs=[key, "study"])
    study.warnings.append(f"{header.name}: no SeriesInstanceUID; given the UID "
                          f"{info.series_instance_uid}")


def _decode_series(study: Study, frames: list[Frame], progress: Progress | None) -> None:
    stacks, localizers, warnings = split_stacks(frames)
    study.warnings.extend(warnings)
    for frame in localizers:
        _set_aside(study, frame.header, "localizer (scout) image: set apart from the volume")
    for stack in stacks:
        try:
            study.volumes.append(build_volume(stack, progress=progress))
        except Exception as exc:  # noqa: BLE001 - one bad series must not stop the study
            study.warnings.append(f"{series_label(stack[0])} could not be loaded ({exc})")
