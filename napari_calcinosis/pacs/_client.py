"""Talking to a PACS: DICOMweb (dicomweb-client) or DIMSE (pynetdicom), one sentence per
failure, retrieved studies kept in a size-limited cache."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from napari_calcinosis.types import UsageError

from ._config import PacsError, PacsServer, load_servers, servers_file

__all__ = ["DEFAULT_CACHE_BYTES", "PacsClient", "StudyHit"]

#: Largest size of the cache of retrieved studies before the oldest are removed.
DEFAULT_CACHE_BYTES = 20 * 1024**3
_FIELDS = ["StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "StudyDescription",
           "ModalitiesInStudy", "AccessionNumber", "NumberOfStudyRelatedInstances"]


@dataclass
class StudyHit:
    """One study a query found."""

    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    modalities: str = ""
    description: str = ""
    accession: str = ""
    instances: int | None = None

    @classmethod
    def from_dataset(cls, ds: Dataset) -> StudyHit:
        modalities = ds.get("ModalitiesInStudy", "")
        if not isinstance(modalities, str):
            modalities = "\\".join(str(m) for m in modalities)
        count = ds.get("NumberOfStudyRelatedInstances")
        return cls(study_uid=str(ds.get("StudyInstanceUID", "")),
                   patient_id=str(ds.get("PatientID", "") or ""),
                   patient_name=str(ds.get("PatientName", "") or ""),
                   study_date=str(ds.get("StudyDate", "") or ""),
                   modalities=modalities, description=str(ds.get("StudyDescription", "") or ""),
                   accession=str(ds.get("AccessionNumber", "") or ""),
                   instances=None if count in (None, "") else int(count))


class PacsClient:
    """Find, retrieve and store on one server (module docstring).

    ``protocol`` is ``"dicomweb"``, ``"dimse"`` or ``"auto"`` (DICOMweb when the server has
    a DICOMweb URL).
    """

    def __init__(self, server: PacsServer, *, protocol: str = "auto",
                 cache_dir: Path | None = None,
                 cache_limit_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.server = server
        if protocol == "auto":
            protocol = "dicomweb" if server.dicomweb_url else "dimse"
        if protocol == "dicomweb" and not server.dicomweb_url:
            raise PacsError(f"PACS {server.name} has no DICOMweb URL in the servers file.")
        if protocol == "dimse" and not (server.host and server.port and server.aet):
            raise PacsError(f"PACS {server.name} has no DICOM address (aet, host, port) in "
                            "the servers file.")
        self.protocol = protocol
        self.cache_dir = Path(cache_dir) if cache_dir is not None else _default_cache()
        self.cache_limit_bytes = cache_limit_bytes
        self._web = None

    @classmethod
    def named(cls, name: str, *, protocol: str = "auto",
              cache_dir: Path | None = None) -> PacsClient:
        """A client of the server called ``name`` in the servers file.

        Raises
        ------
        UsageError
            When the servers file has no server of that name.
        """
        servers = load_servers()
        if name not in servers:
            raise UsageError(f"No PACS named {name!r} in {servers_file()} (known: "
                             f"{', '.join(servers) or 'none'}).")
        return cls(servers[name], protocol=protocol, cache_dir=cache_dir)

    # -- queries ---------------------------------------------------------------------------
    def find_studies(self, *, patient_id: str = "", patient_name: str = "",
                     accession: str = "", date_from: str = "", date_to: str = "",
                     modality: str = "", study_uid: str = "") -> list[StudyHit]:
        """Studies matching every criterion given (dates as YYYYMMDD, a range when both)."""
        filters = {k: v for k, v in (("PatientID", patient_id), ("PatientName", patient_name),
                                     ("AccessionNumber", accession),
                                     ("ModalitiesInStudy", modality),
                                     ("StudyInstanceUID", study_uid)) if v}
        if date_from or date_to:
            filters["StudyDate"] = f"{date_from}-{date_to}" if date_from != date_to \
                else date_from
        if self.protocol == "dicomweb":
            answers = self._call(lambda web: web.search_for_studies(
                search_filters=filters, fields=_FIELDS), "search")
            return [StudyHit.from_dataset(Dataset.from_json(a)) for a in answers]
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        for keyword in _FIELDS:
            setattr(query, keyword, "")
        for keyword, value in filters.items():
            setattr(query, keyword, value)
        return [StudyHit.from_dataset(ds) for ds in self._dimse_find(query)]

    # -- retrieval -------------------------------------------------------------------------
    def retrieve_study(self, study_uid: str, *,
                       progress: Callable[[float, str], None] | None = None) -> Path:
        """The study's instances as files in the cache (``<cache>/<uid>/``), retrieved now;
        ``progress(fraction, message)`` follows the images as they arrive."""
        report = progress or (lambda fraction, message: None)
        folder = self.cache_dir / study_uid
        partial = self.cache_dir / f".{study_uid}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            count = self._web_retrieve(study_uid, partial, report) \
                if self.protocol == "dicomweb" else self._dimse_get(study_uid, partial, report)
            if count == 0:
                raise PacsError(f"PACS {self.server.name} has no instance of study "
                                f"{study_uid}.")
            shutil.rmtree(folder, ignore_errors=True)
            partial.rename(folder)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        self._trim_cache(keep=folder)
        return folder

    # -- storage ---------------------------------------------------------------------------
    def store(self, paths: Sequence[Path]) -> int:
        """Store DICOM files (an SR, a SEG) on the server; returns how many were stored.
        Either every file is accepted or a :class:`PacsError` names the ones refused."""
        datasets = [pydicom.dcmread(p) for p in paths]
        if self.protocol == "dicomweb":
            answer = self._call(lambda web: web.store_instances(datasets=datasets), "store")
            failed = answer.get("FailedSOPSequence") if answer is not None else None
            if failed:
                raise PacsError(f"PACS {self.server.name} refused {len(failed)} of "
                                f"{len(datasets)} files.")
            return len(datasets)
        return self._dimse_store(datasets)

    def store_outputs(self, written: Sequence[Path]) -> list[str]:
        """Store the DICOM files among an analysis's outputs (SR, SEG, key images) in their
        study on the server; returns their names.

        Raises
        ------
        PacsError
            When the outputs hold no DICOM file, or the server refused (one sentence).
        """
        dicom = [Path(p) for p in written if Path(p).suffix == ".dcm"]
        if not dicom:
            raise PacsError(f"Nothing to send to PACS {self.server.name}: the analysis wrote "
                            "no DICOM object (SR and SEG need an analysed CT, key images the "
                            "sc format).")
        self.store(dicom)
        return [p.name for p in dicom]

    # -- DICOMweb --------------------------------------------------------------------------
    def _client(self):
        if self._web is None:
            import requests
            from dicomweb_client.api import DICOMwebClient

            session = requests.Session()
            if self.server.username:
                session.auth = (self.server.username, self.server.password)
            session.verify = self.server.verify_tls
            timeout = float(self.server.timeout_s)
            self._web = DICOMwebClient(url=self.server.dicomweb_url, session=session,
                                       timeout=(min(5.0, timeout), timeout))
            self._web.set_http_retry_params(retry=False)
        return self._web

    def _call(self, action, what: str):
        import requests

        name, url = self.server.name, self.server.dicomweb_url
        try:
            return action(self._client())
        except requests.exceptions.ConnectTimeout as exc:
            raise PacsError(f"PACS {name} at {url} did not accept a connection within "
                            f"{self.server.timeout_s:g} s.") from exc
        except requests.exceptions.ReadTimeout as exc:
            raise PacsError(f"PACS {name} at {url} did not answer the {what} within "
                            f"{self.server.timeout_s:g} s.") from exc
        except requests.exceptions.SSLError as exc:
            raise PacsError(f"PACS {name} at {url}: the TLS connection failed "
                            "(certificate not trusted?).") from exc
        except requests.exceptions.ConnectionError as exc:
            raise PacsError(f"Cannot reach PACS {name} at {url} (connection refused or "
                            "no route).") from exc
        except requests.exceptions.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else 0
            if code in (401, 403):
                raise PacsError(f"PACS {name} at {url} refused the credentials (HTTP "
                                f"{code}); set NAPARI_CALCINOSIS_PACS_<NAME>_USER and "
                                "_PASSWORD.") from exc
            if code == 404:
                raise PacsError(f"PACS {name} at {url} has nothing for this {what} "
                                "(HTTP 404).") from exc
            raise PacsError(f"PACS {name} at {url} answered the {what} with HTTP "
                            f"{code}.") from exc

    def _web_retrieve(self, study_uid: str, folder: Path, report) -> int:
        instances = self._call(lambda web: web.search_for_instances(
            study_instance_uid=study_uid,
            fields=["SeriesInstanceUID", "SOPInstanceUID"]), "search")
        count = 0
        for item in instances:
            report(count / max(len(instances), 1),
                   f"Retrieving image {count + 1} of {len(instances)}")
            ds = Dataset.from_json(item)
            series, sop = str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)
            instance = self._call(lambda web, series=series, sop=sop: web.retrieve_instance(
                study_instance_uid=study_uid, series_instance_uid=series,
                sop_instance_uid=sop), "retrieval")
            instance.save_as(folder / f"{sop}.dcm", enforce_file_format=True)
            count += 1
        return count

    # -- DIMSE -----------------------------------------------------------------------------
    def _ae(self):
        from pynetdicom import AE

        ae = AE(ae_title=self.server.calling_aet)
        timeout = float(self.server.timeout_s)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
        ae.connection_timeout = min(5.0, timeout)
        return ae

    def _associate(self, ae, **kwargs):
        logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
        server = self.server
        assoc = ae.associate(server.host, int(server.port), ae_title=server.aet, **kwargs)
        if assoc.is_established:
            return assoc
        where = f"PACS {server.name} ({server.aet} at {server.host}:{server.port})"
        if assoc.is_rejected:
            primitive = assoc.acceptor.primitive
            reason = getattr(primitive, "reason_str", "") if primitive is not None else ""
            raise PacsError(f"{where} refused the association"
                            + (f": {reason.lower()}" if reason else "")
                            + f" (calling AE title {server.calling_aet}).")
        raise PacsError(f"Cannot reach {where}: no answer within {server.timeout_s:g} s or "
                        "the connection was refused.")

    def _dimse_find(self, query: Dataset) -> list[Dataset]:
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as Find

        ae = self._ae()
        ae.add_requested_context(Find)
        assoc = self._associate(ae)
        hits = []
        try:
            for status, identifier in assoc.send_c_find(query, Find):
                code = getattr(status, "Status", None)
                if code is None:
                    raise PacsError(f"PACS {self.server.name} aborted the query.")
                if code in (0xFF00, 0xFF01) and identifier is not None:
                    hits.append(identifier)
                elif code != 0x0000:
                    raise PacsError(f"PACS {self.server.name} answered the query with "
                                    f"status 0x{code:04X}.")
        finally:
            assoc.release()
        return hits

    def _dimse_get(self, study_uid: str, folder: Path, report) -> int:
        from pynetdicom import build_role, evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as Get

        ae = self._ae()
        ae.add_requested_context(Get)
        roles = []
        for sop in _STORAGE_CLASSES:
            ae.add_requested_context(sop)
            roles.append(build_role(sop, scp_role=True))
        received = []

        def on_store(event):
            ds = event.dataset
            ds.file_meta = event.file_meta
            ds.save_as(folder / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
            received.append(ds.SOPInstanceUID)
            return 0x0000

        assoc = self._associate(ae, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)])
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study_uid
        final = None
        try:
            for status, _ in assoc.send_c_get(query, Get):
                final = getattr(status, "Status", None)
                left = getattr(status, "NumberOfRemainingSuboperations", None)
                if left is not None:
                    total = len(received) + int(left)
                    report(len(received) / max(total, 1),
                           f"Retrieved {len(received)} of {total} images")
        finally:
            assoc.release()
        if final not in (0x0000, 0xB000) and not received:
            raise PacsError(f"PACS {self.server.name} did not send study {study_uid} "
                            f"(C-GET status {'none' if final is None else f'0x{final:04X}'}).")
        return len(received)

    def _dimse_store(self, datasets: list[Dataset]) -> int:
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

        ae = self._ae()
        for sop in sorted({str(ds.SOPClassUID) for ds in datasets}):
            ae.add_requested_context(sop, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        assoc = self._associate(ae)
        refused = []
        try:
            for ds in datasets:
                status = assoc.send_c_store(ds)
                if getattr(status, "Status", None) != 0x0000:
                    refused.append(str(ds.SOPInstanceUID))
        finally:
            assoc.release()
        if refused:
            raise PacsError(f"PACS {self.server.name} refused {len(refused)} of "
                            f"{len(datasets)} files.")
        return len(datasets)

    # -- cache -----------------------------------------------------------------------------
    def _trim_cache(self, keep: Path) -> None:
        """Remove the least recently retrieved studies while the cache is over its limit."""
        studies = [p for p in self.cache_dir.iterdir() if p.is_dir() and
                   not p.name.startswith(".")]
        sizes = {p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
                 for p in studies}
        total = sum(sizes.values())
        for folder in sorted(studies, key=lambda p: p.stat().st_mtime):
            if total <= self.cache_limit_bytes:
                break
            if folder != keep:
                shutil.rmtree(folder, ignore_errors=True)
                total -= sizes[folder]


def _default_cache() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("napari-calcinosis")) / "pacs"


_STORAGE_CLASSES = [
    "1.2.840.10008.5.1.4.1.1.2",      # CT Image
    "1.2.840.10008.5.1.4.1.1.2.1",    # Enhanced CT Image
    "1.2.840.10008.5.1.4.1.1.1",      # Computed Radiography Image
    "1.2.840.10008.5.1.4.1.1.1.1",    # Digital X-Ray Image, for presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray Image, for processing
    "1.2.840.10008.5.1.4.1.1.7",      # Secondary Capture Image
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.66.4",   # Segmentation
]

