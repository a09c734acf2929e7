"""`analyze --anonymize` against DICOM PS3.15's Basic Application Level Confidentiality Profile.

A phantom study (CT + frontal radiograph) gets a distinctive value for every attribute of the
profile's table (E.1-1) that a CT or radiograph commonly carries: names, IDs, dates, times,
descriptions, institution, physicians, operators, device serial, addresses, comments. The
anonymised run must not show any of them, in any form, in any output (findings.json, the CSV,
HTML and PDF reports, key images, SR and SEG) nor on stdout/stderr; every original UID must be
gone and the new UIDs must be the same wherever two outputs name the same object.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from report_study import PATIENT_ID, PATIENT_NAME, SPEC, XRAY

from napari_calcinosis import cli
from napari_calcinosis.phantom import make_ct_phantom, write_study

#: Profile attribute -> the distinctive value the inputs get (ASCII, unlikely anywhere else).
PROFILE_VALUES: dict[str, str] = {
    "PatientName": PATIENT_NAME,
    "PatientID": PATIENT_ID,
    "PatientBirthDate": "19470301",
    "PatientBirthTime": "041516",
    "OtherPatientIDs": "OPID-QX7731",
    "OtherPatientNames": "ZELLWEGER^ODALYS",
    "PatientBirthName": "VANTONGER^MIRELLE",
    "PatientMotherBirthName": "PRZYBYL^HORTENSE",
    "PatientAddress": "17 Quillfeather Lane, Brackwater",
    "PatientTelephoneNumbers": "+44-7700-913377",
    "MedicalRecordLocator": "MRL-ZK4410",
    "PatientComments": "Tattoo of a kestrel on the left forearm",
    "AdditionalPatientHistory": "Fell from a hay loft in Tullybrack",
    "Occupation": "Lamplighter Qv",
    "MilitaryRank": "Wing Commander Qelt",
    "AccessionNumber": "ACCZ-558190",
    "StudyID": "STQ-88121",
    "StudyDate": "20190412",
    "StudyTime": "231759.482913",
    "SeriesDate": "20190413",
    "SeriesTime": "224401.173355",
    "AcquisitionDate": "20190414",
    "AcquisitionTime": "213302.661244",
    "ContentDate": "20190415",
    "ContentTime": "202203.559122",
    "InstanceCreationDate": "20190416",
    "InstanceCreationTime": "191104.448011",
    "AcquisitionDateTime": "20190417181905.337",
    "StudyDescription": "Quixotic thoracic survey",
    "SeriesDescription": "Zorblat axial sweep",
    "ProtocolName": "Protoqux nine",
    "ImageComments": "Motion near the xiphoid, Vellacott",
    "RequestedProcedureDescription": "Calcium hunt for Dr Ombrage",
    "ReasonForStudy": "Lumps near the scapula, Kesselring",
    "InstitutionName": "Saint Quimby Infirmary",
    "InstitutionAddress": "4 Harrowgate Row, Dunmoraig",
    "InstitutionalDepartmentName": "Department of Xylography",
    "StationName": "CTQX-STATION-9",
    "DeviceSerialNumber": "SN-77Q1ZV",
    "ReferringPhysicianName": "WOLFSTAN^OSKAR",
    "PerformingPhysicianName": "PERFQUIN^ALDOUS",
    "NameOfPhysiciansReadingStudy": "READVIK^ZEBEDEE",
    "PhysiciansOfRecord": "RECORDIX^BEATRIX",
    "OperatorsName": "OPERZANE^MILOSZ",
    "RequestingPhysician": "REQUELLO^FAUSTINE",
    "AdmissionID": "ADM-Q4471",
    "PerformedProcedureStepID": "PPS-ZQ8812",
    "PerformedProcedureStepDescription": "Pps text Hallbjorn",
    "PerformedProcedureStepStartDate": "20190418",
    "PerformedProcedureStepStartTime": "171707.121212",
}
#: UIDs of the profile (action U): the inputs' own values are collected after writing.
PROFILE_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                "FrameOfReferenceUID")

PDFTOTEXT = shutil.which("pdftotext")


def _forms(keyword: str, value: str) -> list[str]:
    """The ways an output may show a value: as is, names reordered, dates and times
    formatted, the parts of a name on their own."""
    forms = {value}
    vr = pydicom.datadict.dictionary_VR(keyword)
    if vr == "PN":
        parts = [p for p in value.split("^") if p]
        forms |= set(parts) | {" ".join(parts), " ".join(reversed(parts)),
                               ", ".join(parts)}
    if vr in ("DA", "DT"):
        forms |= {value[:8], f"{value[:4]}-{value[4:6]}-{value[6:8]}",
                  f"{value[6:8]}.{value[4:6]}.{value[:4]}",
                  f"{value[4:6]}/{value[6:8]}/{value[:4]}"}
    if vr == "TM":
        forms |= {value, f"{value[:2]}:{value[2:4]}:{value[4:6]}"}
    if vr == "DT":
        forms.add(f"{value[8:10]}:{value[10:12]}:{value[12:14]}")
    return sorted(f for f in forms if len(f) >= 4)


def _personalise(folder: Path) -> dict[str, str]:
    """Give every file of the study the profile values; return the inputs' UIDs."""
    uids: dict[str, str] = {}
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix != ".json"]
    for path in files:
        try:
            ds = pydicom.dcmread(path)
        except pydicom.errors.InvalidDicomError:
            continue
        for keyword, value in PROFILE_VALUES.items():
            setattr(ds, keyword, value)
        ds.save_as(path, enforce_file_format=True)
        for keyword in PROFILE_UIDS:
            if keyword in ds:
                uids[str(ds.get(keyword))] = keyword
    return uids


@pytest.fixture(scope="module")
def anonymised_run(tmp_path_factory):
    study = tmp_path_factory.mktemp("study")
    write_study(make_ct_phantom(SPEC), study, xray_views=("frontal",), xray_params=XRAY,
                patient_name=PATIENT_NAME, patient_id=PATIENT_ID)
    uids = _personalise(study)
    out = tmp_path_factory.mktemp("out") / "anonymised"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = cli.main(["analyze", str(study), "--out", str(out), "--anonymize",
                           "--formats", "json,csv,html,pdf,sr,seg,png,sc"])
    assert status == 0, stderr.getvalue()
    return {"out": out, "uids": uids, "study": study,
            "console": stdout.getvalue() + stderr.getvalue()}


def _texts_of(path: Path) -> list[str]:
    """What a reader of the file can see: its bytes as text, and a PDF's extracted text."""
    data = path.read_bytes()
    texts = [data.decode("latin-1"), data.decode("utf-16-le", "ignore")]
    if path.suffix == ".pdf" and PDFTOTEXT:
        run = subprocess.run([PDFTOTEXT, str(path), "-"], capture_output=True, text=True,
                             timeout=120)
        texts.append(run.stdout)
    return texts


def test_inputs_carry_every_profile_value(anonymised_run):
    """The check below could fail: every value is in the inputs, and the CT's description
    and institution are read (a run without --anonymize shows them)."""
    ds = pydicom.dcmread(next((anonymised_run["study"] / "ct").iterdir()))
    for keyword, value in PROFILE_VALUES.items():
        assert str(ds.get(keyword)) == value, keyword
    assert len(anonymised_run["uids"]) > 10


def test_expected_outputs_were_written(anonymised_run):
    names = {p.name for p in anonymised_run["out"].iterdir()}
    assert {"findings.json", "lesions.csv", "report.html", "report.pdf", "sr.dcm",
            "seg.dcm"} <= names
    assert any(n.endswith(".png") for n in names)
    assert any(n.startswith("key_") and n.endswith(".dcm") for n in names)  # the opt-in sc


def test_no_profile_value_in_any_output(anonymised_run):
    assert "findings.json" in anonymised_run["console"]  # the console was captured
    leaks = []
    outputs = sorted(anonymised_run["out"].iterdir())
    seen = [(p.name, _texts_of(p)) for p in outputs] + [
        ("stdout/stderr", [anonymised_run["console"]])]
    for name, texts in seen:
        for keyword, value in PROFILE_VALUES.items():
            for form in _forms(keyword, value):
                if any(form in text for text in texts) or form in name:
                    leaks.append(f"{name}: {keyword} as {form!r}")
        for uid, keyword in anonymised_run["uids"].items():
            if any(uid in text for text in texts):
                leaks.append(f"{name}: original {keyword} {uid}")
    assert leaks == [], "\n".join(leaks)


def test_dicom_outputs_follow_the_profile(anonymised_run):
    """In SR and SEG each profile attribute is absent, empty or a dummy; the de-identification
    is declared."""
    dicom = ["sr.dcm", "seg.dcm"] + sorted(
        p.name for p in anonymised_run["out"].glob("key_*.dcm"))
    assert len(dicom) > 2
    for name in dicom:
        ds = pydicom.dcmread(anonymised_run["out"] / name)
        for keyword, value in PROFILE_VALUES.items():
            if keyword in ds:
                assert str(ds.get(keyword)) != value, (name, keyword)
        assert ds.PatientIdentityRemoved == "YES", name
        assert str(ds.PatientName).rstrip("^") == ds.PatientID == "ANONYMOUS"
        for keyword in PROFILE_UIDS:
            if keyword in ds:
                assert str(ds.get(keyword)) not in anonymised_run["uids"], (name, keyword)


def test_new_uids_are_consistent_across_outputs(anonymised_run):
    out = anonymised_run["out"]
    doc = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    sr, seg = pydicom.dcmread(out / "sr.dcm"), pydicom.dcmread(out / "seg.dcm")
    study_uid = doc["study"]["study_instance_uid"]
    assert sr.StudyInstanceUID == seg.StudyInstanceUID == study_uid
    ct_uid = next(s["series_instance_uid"] for s in doc["series"] if s["modality"] == "CT")
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == ct_uid
    groups = hd.sr.srread(out / "sr.dcm").content.get_volumetric_roi_measurement_groups()
    assert groups and {g.referenced_segment.source_series_for_segmentation.value
                       for g in groups} == {ct_uid}
    assert {g.referenced_segment.referenced_sop_instance_uid for g in groups} == \
        {seg.SOPInstanceUID}
    evidence = {(series.SeriesInstanceUID, item.ReferencedSOPInstanceUID)
                for study in sr.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence
                for item in series.ReferencedSOPSequence}
    referenced = {(ct_uid, item.ReferencedSOPInstanceUID)
                  for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced <= evidence  # the same new instance UIDs in SR and SEG
    csv = (out / "lesions.csv").read_text(encoding="utf-8")
    for lesion in doc["lesions"]:
        assert lesion["series_instance_uid"] in {s["series_instance_uid"]
                                                 for s in doc["series"]}
        assert lesion["series_instance_uid"] in csv
    new = {study_uid, *(s["series_instance_uid"] for s in doc["series"])}
    assert not new & set(anonymised_run["uids"])
