"""Finding DICOM files under a path: single files, folders, DICOMDIR and ``.zip`` archives.

Files are recognised by their content (the ``DICM`` marker, or a plausible preamble-less
dataset start), never by their name, and only a few bytes of each are read so that a folder
of thousands of unrelated files is scanned quickly. The non-DICOM files found are reported,
except this project's own side files (a sample study's ``truth.json``, known by its name and
by the schema its first bytes name): they belong in the folder.
"""

from __future__ import annotations

import os
import shutil
import stat
import struct
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from napari_calcinosis.types import DicomReadError

_PREFIX_BYTES = 132
# Groups a dataset without preamble usually starts with: file meta (0002) or identifying (0008).
_FIRST_GROUPS = (0x0002, 0x0008)
_MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
#: Non-DICOM files this project writes into a study folder: file name -> schema prefix that its
#: first bytes hold (the phantom writer's ``truth.json``,
#: ``napari_calcinosis.phantom._truth.SCHEMA``).
OWN_SIDE_FILES = {"truth.json": "napari-calcinosis/phantom-truth/"}


def _read_prefix(path: Path, size: int = _PREFIX_BYTES) -> bytes:
    """Return the first ``size`` bytes of a file (the only read a scan does per file)."""
    with open(path, "rb") as fp:
        return fp.read(size)


def _looks_like_dicom(prefix: bytes) -> bool:
    if len(prefix) >= _PREFIX_BYTES and prefix[128:132] == b"DICM":
        return True
    if len(prefix) < 8:
        return False
    group, element = struct.unpack("<HH", prefix[:4])
    if group not in _FIRST_GROUPS or element > 0x0100:
        return False
    vr = prefix[4:6]
    if vr.isalpha() and vr.isupper():
        return True  # explicit VR little endian
    (length,) = struct.unpack("<I", prefix[4:8])
    return length < 0x10000  # implicit VR: a short first element


def is_dicom_file(path: str | os.PathLike[str]) -> bool:
    """Tell from its first bytes whether a file is DICOM.

    Parameters
    ----------
    path : str or path-like
        File to test; its name does not matter.

    Returns
    -------
    bool
        True for ``DICM`` at offset 128, or a plausible little-endian dataset without
        preamble. False for anything else, including folders and unreadable files.
    """
    try:
        return _looks_like_dicom(_read_prefix(Path(path)))
    except OSError:
        return False


def _is_dicomdir(path: Path) -> bool:
    if path.name.upper() == "DICOMDIR":
        return True
    try:
        prefix = _read_prefix(path, 1024)
    except OSError:
        return False
    return _MEDIA_STORAGE_DIRECTORY.encode() in prefix


@dataclass
class ScanResult:
    """DICOM files found under a path, plus what was passed over and why."""

    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    non_dicom: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    side_files: list[Path] = field(default_factory=list)  # OWN_SIDE_FILES: not reported


def _is_own_side_file(path: Path, prefix: bytes) -> bool:
    schema = OWN_SIDE_FILES.get(path.name)
    return schema is not None and f'"schema": "{schema}'.encode() in prefix


def _scan_folder(folder: Path, result: ScanResult) -> None:
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = Path(root) / name
            try:
                if not stat.S_ISREG(path.stat().st_mode):  # a pipe would block the read
                    result.skipped.append(f"{path}: not a regular file (a pipe, socket or "
                                          "device)")
                    continue
                prefix = _read_prefix(path)
            except OSError as exc:
                result.skipped.append(f"{path}: cannot be read ({exc.strerror or exc})")
                continue
            if not prefix:
                result.skipped.append(f"{path}: empty file")
            elif _looks_like_dicom(prefix):
                result.files.append(path)
            elif _is_own_side_file(path, prefix):
                result.side_files.append(path)
            else:
                result.non_dicom.append(path)


def _scan_dicomdir(path: Path, result: ScanResult) -> None:
    import pydicom

    try:
        index = pydicom.dcmread(path, force=True)
        records = list(index.DirectoryRecordSequence)
    except Exception as exc:  # noqa: BLE001 - any parse failure means "read the folder instead"
        result.warnings.append(
            f"{path}: DICOMDIR could not be read ({exc}); searching its folder instead"
        )
        _scan_folder(path.parent, result)
        return
    for record in records:
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else list(file_id)
        member = path.parent.joinpath(*parts)
        if member.is_file():
            result.files.append(member)
        else:
            result.skipped.append(f"{member}: listed in the DICOMDIR but missing")


def scan(path: str | os.PathLike[str]) -> ScanResult:
    """Find the DICOM files of a file, folder or DICOMDIR (not a ``.zip``; see :func:`opened`).

    Raises
    ------
    DicomReadError
        When the path does not exist or is not readable.
    """
    path = Path(path)
    result = ScanResult()
    if path.is_dir():
        if not os.access(path, os.R_OK | os.X_OK):
            raise DicomReadError(f"{path}: folder is not readable")
        _scan_folder(path, result)
    elif path.is_file():
        if not os.access(path, os.R_OK):
            raise DicomReadError(f"{path}: file is not readable")
        if _is_dicomdir(path):
            _scan_dicomdir(path, result)
        elif is_dicom_file(path):
            result.files.append(path)
        else:
            result.non_dicom.append(path)
    else:
        raise DicomReadError(f"{path}: no such file or folder")
    return result


def find_dicom_files(path: str | os.PathLike[str]) -> list[Path]:
    """List the DICOM files under a path, recognised by content.

    Parameters
    ----------
    path : str or path-like
        A DICOM file, a folder (searched recursively), a DICOMDIR (its referenced files) or a
        ``.zip`` archive (members are returned as ``archive.zip/member`` names, which only
        :func:`opened` can read).

    Returns
    -------
    list of Path
        Sorted by path; DICOMDIR index files themselves are left out.

    Raises
    ------
    DicomReadError
        When the path does not exist or is not readable.
    """
    path = Path(path)
    if zipfile.is_zipfile(path) if path.is_file() else False:
        return _zip_dicom_members(path)
    files = scan(path).files
    return [f for f in files if not (f.name.upper() == "DICOMDIR" and _is_dicomdir(f))]


def _zip_dicom_members(path: Path) -> list[Path]:
    members = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            with archive.open(info) as fp:
                if _looks_like_dicom(fp.read(_PREFIX_BYTES)):
                    members.append(path / info.filename)
    return sorted(members)


@contextmanager
def opened(path: str | os.PathLike[str]) -> Iterator[tuple[Path, Path | None]]:
    """Yield ``(readable_path, archive)``: a ``.zip`` is extracted to a temporary folder.

    The folder is removed on exit. ``archive`` is the zip path (None otherwise), so callers
    can name extracted files as ``archive/member`` in messages.

    Raises
    ------
    DicomReadError
        When the path does not exist, or is a damaged ``.zip``.
    """
    path = Path(path)
    if not path.exists():
        raise DicomReadError(f"{path}: no such file or folder")
    if not (path.is_file() and zipfile.is_zipfile(path)):
        yield path, None
        return
    tmp = Path(tempfile.mkdtemp(prefix="calcinosis-zip-"))
    try:
        try:
            with zipfile.ZipFile(path) as archive:
                _extract_capped(archive, path, tmp)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
            raise DicomReadError(f"{path}: the zip archive cannot be extracted ({exc})") from exc
        yield tmp, path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#: Caps on what a zip may unpack to: total bytes, entries, and the compression ratio of an
#: entry larger than 1 MiB (DICOM images compress a few times; a zip bomb by thousands).
ZIP_MAX_BYTES = 16 * 1024**3
ZIP_MAX_ENTRIES = 200_000
ZIP_MAX_RATIO = 200.0
_CHUNK = 1024 * 1024


def _extract_capped(archive: zipfile.ZipFile, path: Path, dest: Path) -> None:
    """Extract every entry, refusing archives beyond the caps before and while writing
    (the sizes a zip declares can lie, so the bytes written are counted too)."""
    entries = [info for info in archive.infolist() if not info.is_dir()]
    if len(entries) > ZIP_MAX_ENTRIES:
        raise DicomReadError(f"{path}: the zip archive holds {len(entries)} files, more than "
                             f"the {ZIP_MAX_ENTRIES} a study can hold; not extracted")
    declared = sum(info.file_size for info in entries)
    if declared > ZIP_MAX_BYTES:
        raise DicomReadError(f"{path}: the zip archive would unpack to "
                             f"{declared / 1024**3:.1f} GiB, more than "
                             f"{ZIP_MAX_BYTES // 1024**3} GiB; not extracted")
    written = 0
    for info in entries:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _CHUNK and ratio > ZIP_MAX_RATIO:
            raise DicomReadError(f"{path}: entry {info.filename} would unpack {ratio:.0f} "
                                 "times larger than it is stored (a zip bomb?); not extracted")
        target = dest.joinpath(*_safe_parts(info.filename))
        if target == dest:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        with archive.open(info) as src, open(target, "wb") as out:
            while chunk := src.read(_CHUNK):
                size += len(chunk)
                written += len(chunk)
                if size > info.file_size or written > ZIP_MAX_BYTES:
                    raise DicomReadError(f"{path}: entry {info.filename} unpacks to more "
                                         "than the archive declares; not extracted")
                out.write(chunk)


def _safe_parts(name: str) -> list[str]:
    """The parts of an entry's name without drive, root or '..' (as ``extractall`` does)."""
    parts = name.replace("\\", "/").split("/")
    return [p for p in parts if p not in ("", ".", "..") and not p.endswith(":")]
