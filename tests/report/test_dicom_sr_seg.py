"""DICOM SEG and TID 1500 SR exports: validator verdicts, read-back, voxel-exact masks."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from report_study import export_context, make_result

from napari_calcinosis.report import write_findings_json
from napari_calcinosis.report.dicom import _codes as dc
from napari_calcinosis.report.dicom import (
    build_segmentation,
    plan_segmentations,
    segment_label,
    write_seg,
    write_sr,
)
from napari_calcinosis.types import AnalysisError

DCIODVFY = shutil.which("dciodvfy") or ("/usr/bin/dciodvfy"
                                        if Path("/usr/bin/dciodvfy").exists() else None)
DSRDUMP = shutil.which("dsrdump")
_DIAMETER = Code("81827009", "SCT", "Diameter")


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return make_result(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def exported(result, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    findings, context = export_context(result)
    seg_paths = write_seg(findings, out, context)
    sr_paths = write_sr(findings, out, context)
    doc = json.loads(write_findings_json(findings, out).read_text())
    return {"seg": seg_paths, "sr": sr_paths, "doc": doc, "findings": findings, "out": out,
            "result": result}


def _ct_item(result):
    return next(item for item in result.series if item.ct is not None)


def _expected_lesion_masks(result, doc) -> dict[int, np.ndarray]:
    """Independent of the exporter: lesion labels + id offset -> findings.json lesion ids."""
    item = _ct_item(result)
    listed = {les["id"] for les in doc["lesions"]}
    ids = item.ct.lesion_labels.astype(np.int64) + item.id_offset
    ids[item.ct.lesion_labels == 0] = 0
    return {int(i): ids == i for i in np.unique(ids[ids > 0]) if int(i) in listed}


def dciodvfy_findings(path: Path) -> tuple[list[str], str]:
    """The "Error" and "Warning" lines dciodvfy prints for a file, and its whole output."""
    run = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=120)
    output = run.stdout + run.stderr
    return [line for line in output.splitlines()
            if line.startswith(("Error", "Warning"))], output


#: dcmtk 3.6.7 says this of any UTF-8 file (its VR checker lacks UTF-8), not of ours.
_DCMTK_UTF8_NOTE = "W: The VR checker does not support this Specific Character Set: ISO_IR 192"


@pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (Debian dicom3tools) not installed")
@pytest.mark.parametrize("anonymize", [False, True], ids=["plain", "anonymized"])
def test_seg_and_sr_are_dciodvfy_clean(result, tmp_path, anonymize):
    """No error and no warning at all, with the patient's identity or without it."""
    findings, context = export_context(result, anonymize=anonymize)
    paths = [*write_seg(findings, tmp_path, context), *write_sr(findings, tmp_path, context)]
    assert [p.name for p in paths] == ["seg.dcm", "sr.dcm"]
    for path in paths:
        complaints, output = dciodvfy_findings(path)
        assert complaints == [], f"dciodvfy {path.name}:\n{output}"


@pytest.mark.skipif(DSRDUMP is None, reason="dsrdump (Debian dcmtk) not installed")
def test_sr_opens_in_dcmtk(exported):
    (path,) = exported["sr"]
    run = subprocess.run([DSRDUMP, str(path)], capture_output=True, text=True, timeout=120)
    complaints = [line for line in run.stderr.splitlines() if line != _DCMTK_UTF8_NOTE]
    assert run.returncode == 0 and complaints == [], run.stderr
    assert "Comprehensive 3D SR Document" in run.stdout
    assert run.stdout.count('"Tracking Identifier")="Lesion ') == len(
        _expected_lesion_masks(exported["result"], exported["doc"]))


def test_seg_one_segment_per_lesion_voxel_exact(result, exported):
    (seg_path,) = exported["seg"]
    seg = hd.seg.segread(seg_path)
    expected = _expected_lesion_masks(result, exported["doc"])
    layer_of = {les["id"]: les["layer"] for les in exported["doc"]["lesions"]}
    assert len(expected) >= 5 and len(set(layer_of.values())) >= 2
    assert seg.number_of_segments == len(expected)
    item = _ct_item(result)
    uids = item.image.sop_instance_uids
    for number, lesion_id in enumerate(sorted(expected), start=1):
        description = seg.get_segment_description(number)
        layer = layer_of[lesion_id]
        assert description.segment_label == segment_label(lesion_id, layer)
        assert description.segment_label.startswith(f"Lesion {lesion_id} (")
        assert description.segmented_property_category.value == "49755003"
        assert description.segmented_property_type.value == "18115005"
        assert description.anatomic_regions[0].value == dc.LAYER_SITES[layer].value
        pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=[number])
        assert pixels.shape == (len(uids), *item.image.shape[1:], 1)
        # frames map back to slices through the referenced SOP instance UIDs
        assert np.array_equal(pixels[..., 0] > 0, expected[lesion_id]), lesion_id
    # a frame only where a segment has voxels: the sum of each lesion's slices, no more
    assert int(seg.NumberOfFrames) == sum(int(m.any(axis=(1, 2)).sum()) for m in
                                          expected.values())
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == item.image.info.series_instance_uid
    assert {i.ReferencedSOPInstanceUID for i in referenced.ReferencedInstanceSequence} \
        <= set(uids)


def _voxel_mm3(seg) -> float:
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    rows, cols = (float(v) for v in measures.PixelSpacing)
    depth = float(measures.get("SpacingBetweenSlices") or measures.SliceThickness)
    return rows * cols * depth


def test_sr_group_volume_equals_its_segment_volume(result, exported):
    """Read back with highdicom only: each lesion group's volume is its own segment's."""
    doc, (sr_path,), (seg_path,) = exported["doc"], exported["sr"], exported["seg"]
    sr = hd.sr.srread(sr_path)
    seg = hd.seg.segread(seg_path)
    groups = sr.content.get_volumetric_roi_measurement_groups()
    lesions = {f"Lesion {les['id']}": les for les in doc["lesions"]
               if les["series_instance_uid"] == _ct_item(result).image.info.series_instance_uid}
    assert sorted(g.tracking_identifier for g in groups) == sorted(lesions)
    voxel_mm3 = _voxel_mm3(seg)
    numbers = set()
    for group in groups:
        segment = group.referenced_segment
        assert segment.referenced_sop_instance_uid == seg.SOPInstanceUID
        (number,) = segment.referenced_segment_numbers
        numbers.add(number)
        assert seg.get_segment_description(number).segment_label.startswith(
            f"{group.tracking_identifier} (")
        mask = seg.get_pixels_by_source_instance(
            [i.ReferencedSOPInstanceUID for i in
             seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence],
            segment_numbers=[number])
        volume = group.get_measurements(name=codes.SCT.Volume)[0]
        assert volume.unit.value == "mm3"
        assert volume.value == pytest.approx(int(mask.sum()) * voxel_mm3, abs=1e-3), \
            group.tracking_identifier
        assert volume.value == pytest.approx(lesions[group.tracking_identifier]["volume_mm3"])
    assert numbers == set(range(1, seg.number_of_segments + 1))  # one group per segment


def test_sr_lesion_groups_sites_and_measurements(exported):
    doc, (sr_path,) = exported["doc"], exported["sr"]
    groups = hd.sr.srread(sr_path).content.get_volumetric_roi_measurement_groups()
    by_label = {f"Lesion {les['id']}": les for les in doc["lesions"]}
    for group in groups:
        les = by_label[group.tracking_identifier]
        assert group.finding_type.value == "18115005"
        sites = group.finding_sites
        assert sites[0].value.value == dc.REGION_SITES[les["region"]][0].value
        if les["side"] in ("left", "right"):
            assert sites[0].laterality.value == {"left": "7771000",
                                                 "right": "24028007"}[les["side"]]
        assert sites[1].value.value == dc.LAYER_SITES[les["layer"]].value
        diameter = group.get_measurements(name=_DIAMETER)[0]
        assert diameter.value == pytest.approx(les["max_diameter_mm"])
        peak = group.get_measurements(name=codes.DCM.AttenuationCoefficient)[0]
        assert peak.value == pytest.approx(les["peak_hu"])
        assert set(_texts(group[0], "111001")) == {"napari-calcinosis"}
        assert set(_texts(group[0], "111003")) == {doc["software"]["version"]}
        (morphology,) = group.get_qualitative_evaluations(name=dc.MORPHOLOGY_NAME)
        assert morphology.value.value == dc.MORPHOLOGY_CODES[les["morphology"]].value


def test_sr_uses_standard_coding_schemes_only(exported):
    """dciodvfy warns about any private designator, so the SR has none; the distribution is
    text under standard concept names."""
    sr = pydicom.dcmread(exported["sr"][0])
    designators = set()

    def walk(ds):
        for element in ds:
            if element.VR == "SQ":
                for item in element.value:
                    if "CodingSchemeDesignator" in item:
                        designators.add(str(item.CodingSchemeDesignator))
                    walk(item)

    walk(sr)
    assert designators <= {"DCM", "SCT", "LN", "UCUM", "RFC5646"}, designators
    summary = exported["doc"]["summary"]
    texts = _texts(sr)
    assert any(t.startswith(summary["extent"]) for t in _texts(sr, "260858005"))
    assert f"Left-right symmetry: {summary['symmetry']['call']}" in " ".join(texts)
    form = {"none": "none", "circumscripta": "calcinosis circumscripta",
            "universalis": "calcinosis universalis"}[summary["form"]]
    assert f"Form: {form}" in texts


def test_sr_copies_patient_and_study_and_states_the_differential(result, exported):
    sr = pydicom.dcmread(exported["sr"][0])
    source = next(h for h in _ct_item(result).image.headers if h is not None)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                    "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber",
                    "StudyID", "ReferringPhysicianName"):
        assert sr.get(keyword) == source.get(keyword), keyword
    assert sr.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    assert sr.ConceptNameCodeSequence[0].CodeValue == "126000"
    texts = _texts(sr)
    impressions = _texts(sr, codes.DCM.Impression.value)
    expected = [d["diagnosis"].replace("_", " ") for d in exported["doc"]["differential"]]
    assert [t.split(". ", 1)[1].split(",")[0].split(" (")[0] for t in impressions] == expected
    assert any(t.startswith("Decision support, not a diagnosis") for t in texts)


def _texts(ds, code: str | None = None) -> list[str]:
    out = []
    if "TextValue" in ds and (code is None or ds.ConceptNameCodeSequence[0].CodeValue == code):
        out.append(ds.TextValue)
    for item in ds.get("ContentSequence", []):
        out += _texts(item, code)
    return out


def test_sr_alone_references_the_same_seg(result, exported, tmp_path):
    findings, context = export_context(result)
    (path,) = write_sr(findings, tmp_path, context)
    first = hd.sr.srread(exported["sr"][0]).content.get_volumetric_roi_measurement_groups()
    again = hd.sr.srread(path).content.get_volumetric_roi_measurement_groups()
    assert [g.referenced_segment.referenced_sop_instance_uid for g in again] == \
        [g.referenced_segment.referenced_sop_instance_uid for g in first]


def test_gap_slices_are_not_referenced(result, exported):
    findings, context = export_context(result)
    plan = plan_segmentations(findings, context)[0]
    empty = int(np.flatnonzero(~plan.segment_index.any(axis=(1, 2)))[0])
    headers = list(plan.volume.headers)
    headers[empty] = None
    plan.volume = dataclasses.replace(plan.volume, headers=headers)
    seg = build_segmentation(plan, software_version="test")
    referenced = {i.ReferencedSOPInstanceUID
                  for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert plan.volume.sop_instance_uids[empty] not in referenced
    lesion_slice = int(np.flatnonzero(plan.segment_index.any(axis=(1, 2)))[0])
    headers[lesion_slice] = None
    plan.volume = dataclasses.replace(plan.volume, headers=headers)
    with pytest.raises(AnalysisError, match="gap"):
        build_segmentation(plan, software_version="test")


def test_no_ct_writes_no_sr_or_seg(result, tmp_path):
    findings, context = export_context(result)
    only_xray = dataclasses.replace(result, series=[s for s in result.series if s.ct is None])
    context.result = only_xray
    assert write_seg(findings, tmp_path, context) == []
    assert write_sr(findings, tmp_path, context) == []
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_leaves_no_file(result, tmp_path, monkeypatch):
    findings, context = export_context(result)

    def half_then_die(self, filename, **kwargs):
        Path(filename).write_bytes(b"DICM partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(hd.seg.Segmentation, "save_as", half_then_die)
    with pytest.raises(KeyboardInterrupt):
        write_seg(findings, tmp_path, context)
    assert list(tmp_path.iterdir()) == []


def test_applied_annotation_labels_win(result):
    """A reader's applied label image (a lesion cleared, one painted) is what the SEG holds."""
    from types import SimpleNamespace

    from napari_calcinosis.annotations import SeriesLabels

    findings, context = export_context(result)
    item = _ct_item(result)
    labels = item.ct.lesion_labels.copy()
    cleared = int(labels[labels > 0][0])
    labels[labels == cleared] = 0
    painted = np.zeros_like(labels, dtype=bool)
    painted[0, :2, :2] = True  # a painted manual lesion at the corner of slice 0
    labels[painted] = cleared
    applied = SimpleNamespace(lesion_labels={
        item.entry.series_instance_uid: SeriesLabels(labels, item.id_offset)})
    context.result = dataclasses.replace(result, applied=applied)
    plan = plan_segmentations(findings, context)[0]
    assert np.array_equal(plan.segment_index > 0, labels > 0)
    assert plan.segment_index[0, 0, 0] > 0


def test_vendor_procedure_codes_are_not_copied(result):
    """A source's Procedure Code Sequence with a vendor's private scheme (a real Siemens CT
    carries SECTRA's) would make the SEG and SR warn: only its standard codes are copied."""
    findings, context = export_context(result)
    plan = plan_segmentations(findings, context)[0]
    headers = []
    for header in plan.volume.headers:
        header = header.copy()
        vendor, loinc = pydicom.Dataset(), pydicom.Dataset()
        vendor.CodeValue, vendor.CodingSchemeDesignator = "NPONKINF", "SECTRA"
        vendor.CodeMeaning = "PET/CT Onko/Infekt"
        loinc.CodeValue, loinc.CodingSchemeDesignator = "24627-2", "LN"
        loinc.CodeMeaning = "CT Chest"
        header.ProcedureCodeSequence = [vendor, loinc]
        headers.append(header)
    plan.volume = dataclasses.replace(plan.volume, headers=headers)
    seg = build_segmentation(plan, software_version="test")
    assert [item.CodingSchemeDesignator for item in seg.ProcedureCodeSequence] == ["LN"]
    assert plan.volume.headers[0].ProcedureCodeSequence[0].CodingSchemeDesignator == "SECTRA"
