"""Anonymization shared by every exporter (``--anonymize``).

One ``uid_map`` (old UID -> new UID) is shared by all the writers of one export, so the SR, the
SEG and ``findings.json`` name the same new study, series and instance UIDs. New UIDs are random
(``pydicom.uid.generate_uid``): nothing of the original UID can be recovered from them.

A header copy keeps what the outputs need (geometry, modality, acquisition) and loses the
patient's identity: the patient's name becomes ``ANONYMOUS``, the patient ID ``ANONYMOUS``;
birth date, other IDs, addresses, accession number, institution, physicians, operators, dates
and times, free-text descriptions (study, series, protocol, comments) and private tags go;
every instance UID is replaced; the patient's identifying values are removed from any
remaining text (DICOM PS3.15 Basic Application Level Confidentiality Profile). Age and sex
are kept, as the profile's Retain Patient Characteristics Option allows (they matter for the
differential). Study date, study time and study ID (action "Z" of the profile: empty or a
dummy value) get the dummy values :data:`DUMMY_DATE`, :data:`DUMMY_TIME` and ``ANONYMOUS``,
because archives and DICOMDIRs key studies on them; :func:`dummy_dates` gives the SR's and
SEG's own dates (their creation) the same dummies, so no date of the run is left either.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from napari_calcinosis.types import Findings, SeriesInfo, Study

__all__ = ["ANONYMOUS", "DUMMY_DATE", "DUMMY_TIME", "REMOVED", "anonymize_findings",
           "anonymize_header", "anonymize_text", "dummy_dates", "ensure_anonymous_findings",
           "identifying_values",
           "mapped_uid", "study_identifying_values"]

ANONYMOUS = "ANONYMOUS"
REMOVED = "[removed]"
#: Dummy study date and time of an anonymized export (PS3.15 action "Z" allows a dummy).
DUMMY_DATE = "19000101"
DUMMY_TIME = "000000"
#: UIDs under the DICOM root are SOP classes, transfer syntaxes and coding schemes: kept.
_DICOM_ROOT = "1.2.840.10008."
#: Attributes that are emptied (type 2 in most modules, so they must stay present).
_EMPTIED = (
    "PatientBirthDate", "PatientBirthTime", "AccessionNumber", "ReferringPhysicianName",
    "SeriesDate", "AcquisitionDate", "ContentDate",
    "AcquisitionDateTime", "InstanceCreationDate",
)
#: Attributes that are deleted outright.
_DELETED = (
    "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "PatientBirthName",
    "PatientMotherBirthName", "PatientAddress", "PatientTelephoneNumbers", "MilitaryRank",
    "BranchOfService", "MedicalRecordLocator", "PatientComments", "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "InstitutionCodeSequence", "StationName",
    "DeviceSerialNumber", "PerformingPhysicianName", "OperatorsName", "PhysiciansOfRecord",
    "NameOfPhysiciansReadingStudy", "RequestingPhysician", "RequestAttributesSequence",
    "ReferencedPatientSequence", "ReferencedStudySequence", "AdmissionID",
    "CurrentPatientLocation", "PatientInstitutionResidence", "RequestedProcedureID",
    "PerformedProcedureStepID", "ScheduledProcedureStepID", "PatientSize", "PatientWeight",
    "EthnicGroup", "Occupation", "AdditionalPatientHistory", "ReasonForStudy",
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers",
    "ReferringPhysicianIdentificationSequence", "PatientState", "PregnancyStatus",
    "InstanceCreatorUID", "PerformedProcedureStepStartDate", "PerformedProcedureStepEndDate",
    # free-text descriptions (PS3.15 Basic Profile: X)
    "StudyDescription", "SeriesDescription", "ProtocolName", "ImageComments",
    "RequestedProcedureDescription", "PerformedProcedureStepDescription",
    "AdmittingDiagnosesDescription", "DerivationDescription", "StudyComments",
    "AcquisitionComments", "PerformedProcedureStepStartTime",
    "PerformedProcedureStepEndTime",
)
_TEXT_VRS = ("LO", "SH", "ST", "LT", "UT", "PN", "UC", "CS")
_DATE_VRS = ("DA", "DT", "TM")  # dates and times (StudyTime, SeriesTime, ...) emptied


def mapped_uid(uid: str, uid_map: dict[str, str]) -> str:
    """The new UID of ``uid`` (made on first use and remembered in ``uid_map``).

    Empty UIDs and the DICOM root's own UIDs (SOP classes, transfer syntaxes) are returned as
    they are.
    """
    uid = str(uid or "")
    if not uid or uid.startswith(_DICOM_ROOT):
        return uid
    if uid in uid_map.values():  # already a new one (a header anonymized twice)
        return uid
    if uid not in uid_map:
        uid_map[uid] = generate_uid()
    return uid_map[uid]


def identifying_values(info: SeriesInfo) -> list[str]:
    """The identifying strings of one series (name and its parts, ID, birth date, ...).

    Returns
    -------
    list of str
        Longest first, each at least 3 characters, for :func:`anonymize_text`.
    """
    values = {str(v or "").strip() for v in (
        info.patient_name, info.patient_id, info.patient_birth_date, info.accession_number,
        info.referring_physician, info.institution_name)}
    parts = [p.strip() for p in str(info.patient_name or "").split("^")]
    values.update(parts)
    values.add(" ".join(p for p in parts if p))
    values.add(", ".join(p for p in parts[:2] if p))
    return sorted((v for v in values if len(v) >= 3 and v != ANONYMOUS), key=len, reverse=True)


def study_identifying_values(study: Study | None) -> list[str]:
    """:func:`identifying_values` of every series of a study, merged (longest first)."""
    if study is None:
        return []
    values: set[str] = set()
    for image in [*study.volumes, *study.radiographs]:
        values.update(identifying_values(image.info))
        # free-text descriptions go too (PS3.15 Basic Profile), wherever they are quoted
        values.update(v.strip() for v in (image.info.study_description,
                                          image.info.series_description)
                      if len(v.strip()) >= 3)
    return sorted(values, key=len, reverse=True)


def anonymize_text(text: str, secrets: Iterable[str], uid_map: dict[str, str] | None = None
                   ) -> str:
    """``text`` with each secret replaced (a known old UID by its new UID, else ``[removed]``)."""
    uid_map = uid_map or {}
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, uid_map.get(secret, REMOVED))
    for old in sorted(uid_map, key=len, reverse=True):
        if old in text:
            text = text.replace(old, uid_map[old])
    return text


def anonymize_header(ds: Dataset, uid_map: dict[str, str], *,
                     secrets: Iterable[str] = ()) -> Dataset:
    """A de-identified deep copy of a header (pixel data, if any, is left out).

    Parameters
    ----------
    ds : pydicom.Dataset
        Source header; not modified.
    uid_map : dict
        Shared old -> new UID map; new UIDs are added to it.
    secrets : iterable of str
        Identifying strings to remove from any text left (see :func:`identifying_values`).

    Returns
    -------
    pydicom.Dataset
    """
    out = copy.deepcopy(ds)
    if "PixelData" in out:
        del out.PixelData
    secrets = sorted(set(secrets), key=len, reverse=True)
    _clean(out, uid_map, secrets)
    # "ANONYMOUS^": the family-name component, so the PN is not read as a retired form.
    out.PatientName = f"{ANONYMOUS}^"
    out.PatientID = ANONYMOUS
    for keyword in _EMPTIED:
        if keyword in out:
            setattr(out, keyword, "")
    out.StudyDate, out.StudyTime, out.StudyID = DUMMY_DATE, DUMMY_TIME, ANONYMOUS
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = "napari-calcinosis: identity, dates and UIDs replaced"
    if getattr(out, "file_meta", None) is not None and "MediaStorageSOPInstanceUID" in \
            out.file_meta:
        out.file_meta.MediaStorageSOPInstanceUID = mapped_uid(
            out.file_meta.MediaStorageSOPInstanceUID, uid_map)
    return out


def dummy_dates(ds: Dataset) -> Dataset:
    """Every date, time and date-time of ``ds`` (nested ones too) set to the dummies, in place.

    For the SR and SEG of an anonymized export: their series and content dates are the day of
    the run, which would tell when the patient was scanned within days.
    """
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                dummy_dates(item)
        elif element.VR == "DA" and element.value:
            element.value = DUMMY_DATE
        elif element.VR == "TM" and element.value:
            element.value = DUMMY_TIME
        elif element.VR == "DT" and element.value:
            element.value = DUMMY_DATE + DUMMY_TIME
    return ds


def _clean(ds: Dataset, uid_map: dict[str, str], secrets: list[str]) -> None:
    ds.remove_private_tags()
    for keyword in _DELETED:
        if keyword in ds:
            delattr(ds, keyword)
    for element in list(ds):
        if element.VR == "SQ":
            for item in element.value:
                _clean(item, uid_map, secrets)
        elif element.VR == "UI" and element.value:
            element.value = _map_uids(element.value, uid_map)
        elif element.VR in _DATE_VRS and element.value:
            element.value = ""
        elif element.VR in _TEXT_VRS and element.value and secrets:
            element.value = _scrub_value(element.value, secrets)


def _map_uids(value: Any, uid_map: dict[str, str]) -> Any:
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(
            value, str):
        return [mapped_uid(str(v), uid_map) for v in value]
    return mapped_uid(str(value), uid_map)


def _scrub_value(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return anonymize_text(str(value), secrets)
    return [anonymize_text(str(v), secrets) for v in value]


def ensure_anonymous_findings(findings: Any, context: Any) -> Any:
    """The findings as an anonymized export must show them.

    The command line anonymizes the findings before calling the writers; a caller that did
    not (a widget, a script) still gets new UIDs and scrubbed warnings here, mapped through
    the same ``context.uid_map``. Without ``context.anonymize`` the findings are returned.
    """
    if not getattr(context, "anonymize", False):
        return findings
    uid_map = context.uid_map
    if str(findings.study.get("study_instance_uid", "")) not in set(uid_map.values()):
        study = getattr(getattr(context, "result", None), "study", None)
        findings, _ = anonymize_findings(findings, study, uid_map=uid_map)
    return findings


def anonymize_findings(findings: Findings, study: Study | None = None,
                       *, uid_map: dict[str, str] | None = None
                       ) -> tuple[Findings, dict[str, str]]:
    """A copy of the findings with new UIDs and identifying values removed from the text.

    Study and series UIDs are replaced by new ones (the same old UID always gets the same new
    one, also across exporters that share ``uid_map``). Patient name (and its parts), ID,
    birth date, accession number, referring physician and institution found in the study's
    headers are replaced by ``[removed]`` wherever they appear in warnings.

    Returns
    -------
    tuple
        ``(anonymized findings, uid_map)``.
    """
    uid_map = {} if uid_map is None else uid_map
    out = copy.deepcopy(findings)
    out.study["study_instance_uid"] = mapped_uid(out.study.get("study_instance_uid", ""),
                                                 uid_map)
    for entry in out.series:
        entry.series_instance_uid = mapped_uid(entry.series_instance_uid, uid_map)
    for lesion in out.lesions:
        lesion.series_instance_uid = mapped_uid(lesion.series_instance_uid, uid_map)
    secrets = study_identifying_values(study)
    out.warnings = [anonymize_text(w, secrets, uid_map) for w in out.warnings]
    # extra lesion keys and the parameters may name series too (the CT-to-radiograph link)
    for lesion in out.lesions:
        lesion.extra = _scrub_tree(lesion.extra, secrets, uid_map)
    out.parameters = _scrub_tree(out.parameters, secrets, uid_map)
    return out, uid_map


def _scrub_tree(value: Any, secrets: list[str], uid_map: dict[str, str]) -> Any:
    """:func:`anonymize_text` applied to every string inside nested dicts, lists and tuples."""
    if isinstance(value, str):
        return anonymize_text(value, secrets, uid_map)
    if isinstance(value, dict):
        return {key: _scrub_tree(item, secrets, uid_map) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub_tree(item, secrets, uid_map) for item in value)
    return value
