"""Finding the studies of an archive: every DICOM file's StudyInstanceUID, read alone.

Folders are searched recursively (DICOMDIRs through their folder), zips member by member;
the files of one study spread over several folders or zips are brought together. A zip is
handed to the analysis whole (it is extracted there), so a zip that holds several studies
is read once per study and each keeps its own images. Files without a StudyInstanceUID
form one study per folder.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from napari_calcinosis.dicom import find_dicom_files
from napari_calcinosis.types import DicomReadError

__all__ = ["StudySource", "discover_studies"]

_TAGS = ["StudyInstanceUID", "PatientID"]


@dataclass
class StudySource:
    """One study and where its files are; a study on a PACS names its server in
    ``pacs_server`` and has no paths until a worker retrieves it."""

    study_uid: str
    paths: list[Path] = field(default_factory=list)
    patient_id: str = ""
    n_files: int = 0
    pacs_server: str = ""

    def key(self, anonymize: bool = False) -> str:
        """The study's output folder name: its UID, or a hash of it when anonymised (and
        for studies known only by their folder)."""
        if self.study_uid and not anonymize:
            return self.study_uid
        seed = self.study_uid or "|".join(str(p) for p in self.paths)
        return "study-" + hashlib.sha256(seed.encode()).hexdigest()[:16]


def _uid_of(fp) -> tuple[str, str]:
    ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True, specific_tags=_TAGS)
    return (str(ds.get("StudyInstanceUID", "") or "").strip(),
            str(ds.get("PatientID", "") or "").strip())


def discover_studies(archives: list[Path]) -> tuple[list[StudySource], list[str]]:
    """The studies under ``archives`` (folders, files, DICOMDIRs, zips), in a stable order,
    and sentences about what could not be read."""
    studies: dict[str, StudySource] = {}
    warnings: list[str] = []

    def add(uid: str, patient: str, path: Path, where: Path) -> None:
        key = uid or f"folder:{where}"
        source = studies.setdefault(key, StudySource(uid, patient_id=patient))
        if path not in source.paths:
            source.paths.append(path)
        source.n_files += 1

    for archive in archives:
        archive = Path(archive)
        if not archive.exists():
            warnings.append(f"{archive}: no such file or folder")
            continue
        zips = [archive] if archive.is_file() and zipfile.is_zipfile(archive) else []
        if not zips:
            try:
                files = find_dicom_files(archive)
            except DicomReadError as exc:
                warnings.append(str(exc))
                continue
            for path in files:
                try:
                    uid, patient = _uid_of(path)
                except Exception as exc:  # noqa: BLE001 - one bad file never stops a batch
                    warnings.append(f"{path}: not readable ({exc})")
                    continue
                add(uid, patient, path, path.parent)
            if archive.is_dir():
                zips = sorted(p for p in archive.rglob("*.zip") if zipfile.is_zipfile(p))
        for zpath in zips:
            _add_zip(zpath, add, warnings)
    ordered = sorted(studies.values(), key=lambda s: (s.study_uid == "", s.study_uid,
                                                      str(s.paths[0])))
    return ordered, warnings


def _add_zip(zpath: Path, add, warnings: list[str]) -> None:
    try:
        with zipfile.ZipFile(zpath) as archive:
            for info in archive.infolist():
                if info.is_dir() or info.file_size == 0:
                    continue
                with archive.open(info) as member:
                    head = member.read(64 * 1024)
                try:
                    uid, patient = _uid_of(io.BytesIO(head))
                except Exception:  # noqa: BLE001 - not DICOM, or cut short
                    continue
                if uid:
                    add(uid, patient, zpath, zpath)
    except (zipfile.BadZipFile, OSError) as exc:
        warnings.append(f"{zpath}: the zip archive cannot be read ({exc})")
