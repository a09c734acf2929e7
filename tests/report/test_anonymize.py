"""--anonymize: no identifying value in any output byte or file name; UIDs mapped consistently."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from report_study import BIRTH_DATE, PATIENT_ID, PATIENT_NAME, export_context, make_result

from napari_calcinosis.report import (
    anonymize_header,
    ensure_anonymous_findings,
    write_findings_json,
    write_lesions_csv,
)
from napari_calcinosis.report._anonymize import ANONYMOUS
from napari_calcinosis.report._html import write_html
from napari_calcinosis.report._key_images import write_png
from napari_calcinosis.report.dicom import write_seg, write_sr

DCIODVFY = shutil.which("dciodvfy")


def _writers():
    writers = [write_findings_json, write_lesions_csv, write_html, write_png, write_seg,
               write_sr]
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError):
        return writers
    from napari_calcinosis.report._pdf import write_pdf

    return [*writers, write_pdf]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return make_result(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def exported(result, tmp_path_factory):
    out = tmp_path_factory.mktemp("anonymized")
    return out, _export(result, out)


def _export(result, out: Path, *, anonymized_by_caller: bool = True) -> list[Path]:
    findings, context = export_context(result, anonymize=True)
    if not anonymized_by_caller:  # a caller that set the flag but passed raw findings
        findings = result.findings
    written = []
    for write in _writers():
        if write in (write_findings_json, write_lesions_csv):
            findings_out = ensure_anonymous_findings(findings, context)
            written.append(write(findings_out, out))
        else:
            written += write(findings, out, context)
    return written


def _secrets(result) -> list[bytes]:
    headers = [h for v in result.study.volumes for h in v.headers if h is not None]
    uids = {str(h.SOPInstanceUID) for h in headers} | {
        str(headers[0].StudyInstanceUID), str(headers[0].SeriesInstanceUID),
        str(headers[0].FrameOfReferenceUID)}
    uids |= {r.info.series_instance_uid for r in result.study.radiographs}
    family, given = PATIENT_NAME.split("^")
    plain = [PATIENT_NAME, family, given, PATIENT_ID, BIRTH_DATE,
             f"{BIRTH_DATE[:4]}-{BIRTH_DATE[4:6]}-{BIRTH_DATE[6:]}",
             str(headers[0].AccessionNumber)]
    return [s.encode() for s in plain] + [s.encode("utf-16-le") for s in plain[:4]] + \
        [u.encode() for u in uids]


@pytest.mark.parametrize("anonymized_by_caller", [True, False])
def test_no_identifying_value_in_any_output(result, exported, tmp_path, anonymized_by_caller):
    if anonymized_by_caller:
        tmp_path, written = exported
    else:
        written = _export(result, tmp_path, anonymized_by_caller=False)
    names = {p.name for p in written}
    assert {"findings.json", "lesions.csv", "report.html", "seg.dcm", "sr.dcm",
            "key_ct_axial_slab.png"} <= names
    secrets = _secrets(result)
    source = result.study.volumes[0].files[0].read_bytes()
    for secret in (PATIENT_NAME, PATIENT_ID, BIRTH_DATE):  # the scan finds them in the input
        assert secret.encode() in source
    for path in tmp_path.iterdir():
        data = path.read_bytes()
        for secret in secrets:
            assert secret not in data, (path.name, secret)
            assert secret.decode("utf-8", "ignore") not in path.name
    assert ANONYMOUS in (tmp_path / "report.html").read_text()


def test_sr_and_seg_share_new_uids(result, exported):
    tmp_path = exported[0]
    seg = pydicom.dcmread(tmp_path / "seg.dcm")
    sr = pydicom.dcmread(tmp_path / "sr.dcm")
    assert str(seg.PatientName) == str(sr.PatientName) == f"{ANONYMOUS}^"
    assert seg.PatientID == sr.PatientID == ANONYMOUS
    assert seg.PatientBirthDate == sr.PatientBirthDate == ""
    assert seg.StudyInstanceUID == sr.StudyInstanceUID
    assert seg.StudyInstanceUID != result.study.study_instance_uid
    evidence = {item.ReferencedSOPInstanceUID
                for study in sr.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence
                for item in series.ReferencedSOPSequence}
    referenced = {item.ReferencedSOPInstanceUID
                  for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced <= evidence and seg.SOPInstanceUID in evidence
    groups = hd.sr.srread(tmp_path / "sr.dcm").content.get_volumetric_roi_measurement_groups()
    assert {g.referenced_segment.referenced_sop_instance_uid for g in groups} == \
        {seg.SOPInstanceUID}
    source_series = {g.referenced_segment.source_series_for_segmentation.value for g in groups}
    assert source_series == {seg.ReferencedSeriesSequence[0].SeriesInstanceUID}


@pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (Debian dicom3tools) not installed")
def test_anonymized_dicom_passes_dciodvfy(exported):
    tmp_path = exported[0]
    for name in ("seg.dcm", "sr.dcm"):
        run = subprocess.run([DCIODVFY, str(tmp_path / name)], capture_output=True, text=True)
        errors = [ln for ln in (run.stdout + run.stderr).splitlines() if ln.startswith("Error")]
        assert errors == [], name


def test_anonymize_header_on_a_real_file(testdata):
    ds = pydicom.dcmread(testdata("CT_small.dcm"))
    uid_map: dict[str, str] = {}
    out = anonymize_header(ds, uid_map, secrets=[str(ds.PatientName)])
    assert ds.PatientName != out.PatientName == f"{ANONYMOUS}^"
    assert out.PatientID == ANONYMOUS and out.PatientIdentityRemoved == "YES"
    assert out.SOPClassUID == ds.SOPClassUID  # standard UIDs kept
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID",
                    "FrameOfReferenceUID"):
        assert getattr(out, keyword) == uid_map[getattr(ds, keyword)] != getattr(ds, keyword)
    assert "InstitutionName" not in out and out.SeriesDate == "" and out.StudyTime == "000000"
    assert (out.StudyDate, out.StudyID) == ("19000101", ANONYMOUS)  # dummies (PS3.15 "Z")
    assert not any(element.tag.is_private for element in out)
    again = anonymize_header(ds, uid_map)
    assert again.SOPInstanceUID == out.SOPInstanceUID  # one map, one new UID per old UID
    assert str(ds.PatientName).encode() not in str(out).encode()
