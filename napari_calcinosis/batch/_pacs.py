"""Studies of a batch that live on a PACS (``batch pacs://SERVER --uids FILE --send``).

The driver asks the server about each StudyInstanceUID (one query each: the study is there,
and its PatientID picks a clinical row or file) and hands the workers
:class:`~napari_calcinosis.batch.StudySource` objects that name the server only: a worker
reads the server's settings and credentials from its own servers file and environment
(credentials never travel with the task), retrieves the study into its PACS cache, and
with ``--send`` stores the study's DICOM outputs back in the same study.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from napari_calcinosis.pacs import STUDY_UID, PacsClient
from napari_calcinosis.types import UsageError

from ._discover import StudySource

__all__ = ["pacs_sources", "read_uid_list", "retrieve_source", "send_outputs"]


def read_uid_list(path: Path) -> list[str]:
    """StudyInstanceUIDs from a text file: one a line; blank lines and ``#`` comments are
    skipped.

    Raises
    ------
    UsageError
        Naming the file and the line that is not a UID.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"Cannot read the UID list {path} ({exc}).") from exc
    uids = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not STUDY_UID.match(text) or len(text) > 64:
            raise UsageError(f"Line {number} of {path} is not a StudyInstanceUID: "
                             f"{text[:70]!r}.")
        uids.append(text)
    if not uids:
        raise UsageError(f"The UID list {path} names no study.")
    return uids


def pacs_sources(studies: Sequence[tuple[str, str]]
                 ) -> tuple[list[StudySource], list[tuple[StudySource, str]]]:
    """The (server, study UID) pairs as study sources, each looked up on its server; and
    those the server does not hold, each with a sentence.

    Raises
    ------
    UsageError
        An unknown server name.
    PacsError
        A server that cannot be reached or refuses (nothing is analysed then).
    """
    clients: dict[str, PacsClient] = {}
    found, missing = [], []
    for server, uid in dict.fromkeys(studies):
        if server not in clients:
            clients[server] = PacsClient.named(server)
        hits = clients[server].find_studies(study_uid=uid)
        source = StudySource(uid, pacs_server=server)
        if not hits:
            missing.append((source, f"PACS {server} has no study {uid}."))
            continue
        source.patient_id = hits[0].patient_id
        source.n_files = hits[0].instances or 0
        found.append(source)
    return found, missing


def retrieve_source(source: StudySource) -> list[Path]:
    """The study's files, retrieved from its PACS into this worker's cache."""
    return [PacsClient.named(source.pacs_server).retrieve_study(source.study_uid)]


def send_outputs(source: StudySource, written: Sequence[Path]) -> list[str]:
    """Store the study's DICOM outputs (SR, SEG, key images) on its PACS; their names.

    Raises
    ------
    PacsError
        When the analysis wrote no DICOM object, or the PACS refused (a sentence).
    """
    return PacsClient.named(source.pacs_server).store_outputs(written)
