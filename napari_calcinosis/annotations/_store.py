"""One JSON file per study in the user's data folder, written atomically on every change.

File name: ``study-<first 32 hex digits of SHA-256(StudyInstanceUID)>.json``, so neither the
UID nor any patient data appears in the folder listing. Writes go through
:func:`napari_calcinosis.files.atomic_write_text` (temporary file, fsync, ``os.replace``): a crash
leaves either the previous or the new record under the final name. A writer holds an
advisory lock on ``.lock`` in the folder (POSIX ``flock``) while it writes; any temporary file
of a record found while holding the lock belongs to a writer that died, and is deleted.

A file that cannot be read as a record is never overwritten: it is renamed to
``<name>.corrupt-<UTC timestamp>.json`` and a warning says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from napari_calcinosis.files import atomic_write_text

from ._json import AnnotationFileError, record_from_json, record_to_json
from ._record import AnnotationRecord

__all__ = ["DATA_DIR_ENV", "EXPORT_FILENAME", "AnnotationStore", "default_root",
           "record_filename"]

#: Environment variable naming the plugin's data folder (annotations go in ``annotations/``).
DATA_DIR_ENV = "NAPARI_CALCINOSIS_DATA_DIR"
EXPORT_FILENAME = "calcinosis-annotations.json"
_APP_NAME = "napari-calcinosis"
# Without flock (Windows) a temporary file counts as stale only when this old.
_STALE_WITHOUT_LOCK_S = 600.0


def default_root() -> Path:
    """The default annotation folder.

    ``$NAPARI_CALCINOSIS_DATA_DIR/annotations`` when the variable is set, else
    ``<user data dir>/napari-calcinosis/annotations`` (``platformdirs``: on Linux
    ``$XDG_DATA_HOME`` or ``~/.local/share``; on macOS ``~/Library/Application Support``; on
    Windows ``%LOCALAPPDATA%``).
    """
    base = os.environ.get(DATA_DIR_ENV)
    if not base:
        import platformdirs

        base = platformdirs.user_data_dir(_APP_NAME, appauthor=False)
    return Path(base).expanduser() / "annotations"


def record_filename(study_instance_uid: str) -> str:
    """The file name of a study's record (a hash of the UID, nothing identifying)."""
    digest = hashlib.sha256(study_instance_uid.strip().encode("utf-8")).hexdigest()
    return f"study-{digest[:32]}.json"


def _timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


class AnnotationStore:
    """Annotation records on disk, one file per study.

    Parameters
    ----------
    root : str or Path, optional
        The folder (created on first save); :func:`default_root` when omitted.

    Attributes
    ----------
    warnings : list of str
        Every warning since the store was made (files set aside, migrations); callers show
        them and may clear the list.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.warnings: list[str] = []

    def path_for(self, study_instance_uid: str) -> Path:
        """Where the record of a study lives."""
        return self.root / record_filename(study_instance_uid)

    def save(self, record: AnnotationRecord) -> Path:
        """Write the record atomically (call it after every change).

        Raises
        ------
        AnnotationFileError
            When the folder cannot be created or written (names it).
        """
        text = record_to_json(record, validate=False)
        path = self.path_for(record.study_instance_uid)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with self._lock():
                self._remove_stale_temps(path)
                atomic_write_text(path, text)
        except OSError as exc:
            raise AnnotationFileError(
                f"Cannot save the annotations of study {record.study_instance_uid} to "
                f"{path}: {exc.strerror or exc}.") from exc
        return path

    def load(self, study_instance_uid: str, *,
             set_aside: bool = True) -> AnnotationRecord | None:
        """The saved record of a study, or ``None`` when there is none (or it was unusable).

        An unusable file (not JSON, invalid, another study's, from a newer version) is
        renamed aside (with ``set_aside=False``, for read-only users such as the command
        line, it is left in place) and a warning is added to :attr:`warnings`; :meth:`open`
        returns a fresh record that carries the warning.
        """
        path = self.path_for(study_instance_uid)
        if self.root.is_dir():
            with self._lock():
                self._remove_stale_temps(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self._unusable(path, f"it cannot be read ({exc})", set_aside)
            return None
        try:
            record = record_from_json(text, source=str(path))
        except AnnotationFileError as exc:
            self._unusable(path, str(exc), set_aside)
            return None
        if record.study_instance_uid != study_instance_uid:
            self._unusable(path, f"it belongs to another study "
                                 f"({record.study_instance_uid!r})", set_aside)
            return None
        self.warnings.extend(record.warnings)
        return record

    def open(self, study_instance_uid: str) -> AnnotationRecord:
        """The saved record of a study, or a new empty one (not yet saved).

        Warnings about the file (set aside, migrated) are in the record's ``warnings``.
        """
        before = len(self.warnings)
        record = self.load(study_instance_uid)
        if record is None:
            record = AnnotationRecord(study_instance_uid)
        record.warnings = list(dict.fromkeys([*self.warnings[before:], *record.warnings]))
        return record

    def delete(self, study_instance_uid: str) -> bool:
        """Remove a study's record file; False when there was none."""
        try:
            self.path_for(study_instance_uid).unlink()
        except FileNotFoundError:
            return False
        return True

    def export(self, record: AnnotationRecord, path: str | os.PathLike) -> Path:
        """Write a copy of the record for sharing, e.g. next to the study.

        Parameters
        ----------
        record : AnnotationRecord
            The record to write.
        path : str or Path
            A folder (the file is ``calcinosis-annotations.json`` in it) or a ``.json`` name.
        """
        path = Path(path)
        if path.is_dir() or path.suffix.lower() != ".json":
            path = path / EXPORT_FILENAME
        try:
            return atomic_write_text(path, record_to_json(record))
        except OSError as exc:
            raise AnnotationFileError(
                f"Cannot export the annotations to {path}: {exc.strerror or exc}.") from exc

    def import_(self, path: str | os.PathLike, *, save: bool = True) -> AnnotationRecord:
        """Read an exported (or older-version) record and, by default, store it.

        A different record already stored for the same study is kept as
        ``<name>.replaced-<timestamp>.json`` with a warning: nothing is overwritten silently.

        Raises
        ------
        AnnotationFileError
            When the file cannot be read or is not a valid record; the file is left as it is.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise AnnotationFileError(f"Cannot read annotation file {path}: {exc}.") from exc
        record = record_from_json(text, source=str(path))
        if save:
            self._keep_replaced(record)
            self.save(record)
        return record

    # -- internals ----------------------------------------------------------------------------
    def _keep_replaced(self, record: AnnotationRecord) -> None:
        target = self.path_for(record.study_instance_uid)
        if not target.exists() or target.read_text(encoding="utf-8") == record_to_json(record):
            return
        kept = target.with_name(f"{target.stem}.replaced-{_timestamp()}.json")
        os.replace(target, kept)
        message = (f"The annotations stored for study {record.study_instance_uid} were "
                   f"replaced by an imported file; the previous ones are kept as {kept}.")
        self.warnings.append(message)
        record.warnings.append(message)

    def _unusable(self, path: Path, reason: str, set_aside: bool) -> None:
        if set_aside:
            self._set_aside(path, reason)
        else:
            self.warnings.append(f"Annotation file {path} is unusable ({reason}); it was "
                                 "ignored and left as it is.")

    def _set_aside(self, path: Path, reason: str) -> None:
        aside = path.with_name(f"{path.stem}.corrupt-{_timestamp()}.json")
        try:
            os.replace(path, aside)
        except OSError as exc:
            self.warnings.append(f"Annotation file {path} is unusable ({reason}) and could "
                                 f"not be moved aside ({exc}); it was left in place.")
            raise AnnotationFileError(
                f"Annotation file {path} is unusable and cannot be moved aside: {exc}.") from exc
        self.warnings.append(f"Annotation file {path} was unusable ({reason}); it was kept "
                             f"as {aside.name} and the study starts with no annotations.")

    def _remove_stale_temps(self, path: Path) -> None:
        # io_utils names its temporaries ".<final name>.<random>.tmp" in the same folder.
        have_lock = _flock is not None
        now = time.time()
        for temp in self.root.glob(f".{path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                if have_lock or now - temp.stat().st_mtime > _STALE_WITHOUT_LOCK_S:
                    temp.unlink()

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        if _flock is None:
            yield
            return
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _flock(fd, True)
            yield
        finally:
            _flock(fd, False)
            os.close(fd)


def _posix_flock():
    try:
        import fcntl
    except ImportError:
        return None

    def flock(fd: int, lock: bool) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX if lock else fcntl.LOCK_UN)

    return flock


_flock = _posix_flock()
