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
from report_study import export_context, make_result

from napari_calcinosis.report import write_findings_json
from napari_calcinosis.report.dicom import _codes as dc
from napari_calcinosis.report.dicom import (
    build_segmentation,
    plan_segmentations,
    write_seg,
    write_sr,
)
from napari_calcinosis.types import AnalysisError
from napari_calcinosis.types.findings import LAYERS

DCIODVFY = shutil.which("dciodvfy") or ("/usr/bin/dciodvfy"
                                        if Path("/usr/bin/dciodvfy").exists() else None)


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
    return {"seg": seg_paths, "sr": sr_paths, "doc": doc, "findings": findings, "out": out}


def _ct_item(result):
    return next(item for item in result.series if item.ct is not None)


def _expected_layer_masks(result, doc) -> dict[str, np.ndarray]:
    """Independent of the exporter: lesion labels + id offset -> findings.json layers."""
    item = _ct_item(result)
    layer_of = {les["id"]: les["layer"] for les in doc["lesions"]}
    ids = item.ct.lesion_labels.astype(np.int64) + item.id_offset
    ids[item.ct.lesion_labels == 0] = 0
    masks: dict[str, np.ndarray] = {}
    for lesion_id in np.unique(ids[ids > 0]):
        if int(lesion_id) in layer_of:
            layer = layer_of[int(lesion_id)]
            masks.setdefault(layer, np.zeros(ids.shape, bool))
            masks[layer] |= ids == lesion_id
    return masks


def dciodvfy_errors(path: Path) -> list[str]:
    run = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=120)
    return [line for line in (run.stdout + run.stderr).splitlines()
            if line.startswith("Error")]


@pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (Debian dicom3tools) not installed")
def test_seg_and_sr_pass_dciodvfy(exported):
    for path in [*exported["seg"], *exported["sr"]]:
        assert dciodvfy_errors(path) == [], path.name


def test_seg_segments_codes_and_voxel_exact_mask(result, exported):
    (seg_path,) = exported["seg"]
    seg = hd.seg.segread(seg_path)
    expected = _expected_layer_masks(result, exported["doc"])
    layers = [lay for lay in LAYERS if lay in expected]
    assert len(expected) >= 2  # the phantom has skin and subcutaneous deposits at least
    assert seg.number_of_segments == len(layers)
    item = _ct_item(result)
    uids = item.image.sop_instance_uids
    for number, layer in enumerate(layers, start=1):
        description = seg.get_segment_description(number)
        assert description.segmented_property_category.value == "49755003"
        assert description.segmented_property_type.value == "18115005"
        assert description.anatomic_regions[0].value == dc.LAYER_SITES[layer].value
        pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=[number])
        assert pixels.shape == (len(uids), *item.image.shape[1:], 1)
        # frames map back to slices through the referenced SOP instance UIDs
        assert np.array_equal(pixels[..., 0] > 0, expected[layer]), layer
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == item.image.info.series_instance_uid
    assert {i.ReferencedSOPInstanceUID for i in referenced.ReferencedInstanceSequence} \
        <= set(uids)


def test_sr_groups_measurements_and_references(result, exported):
    doc, (sr_path,), (seg_path,) = exported["doc"], exported["sr"], exported["seg"]
    sr = hd.sr.srread(sr_path)
    seg = hd.seg.segread(seg_path)
    report = sr.content
    assert isinstance(report, hd.sr.MeasurementReport)
    groups = report.get_volumetric_roi_measurement_groups()
    ct_uid = _ct_item(result).image.info.series_instance_uid
    counted = {}
    for les in doc["lesions"]:
        if les["series_instance_uid"] == ct_uid:
            counted.setdefault(f"{les['layer']} / {les['region']} / {les['side']}",
                               []).append(les)
    assert len(groups) == len(counted)
    for group in groups:
        label = group.tracking_identifier
        lesions = counted[label]
        volume = group.get_measurements(name=codes.SCT.Volume)[0]
        assert volume.value == pytest.approx(sum(les["volume_mm3"] for les in lesions))
        assert volume.unit.value == "mm3"
        number = group.get_measurements(name=codes.DCM.NumberOfCalcifications)[0]
        assert number.value == len(lesions)
        assert group.finding_type.value == "18115005"
        layer, region, side = label.split(" / ")
        sites = group.finding_sites
        assert sites[0].value.value == dc.REGION_SITES[region][0].value
        if side in ("left", "right"):
            assert sites[0].laterality.value == {"left": "7771000", "right": "24028007"}[side]
        assert sites[1].value.value == dc.LAYER_SITES[layer].value
        segment = group.referenced_segment
        assert segment.referenced_sop_instance_uid == seg.SOPInstanceUID
        (number,) = segment.referenced_segment_numbers
        described = seg.get_segment_description(number)
        assert described.anatomic_regions[0].value == dc.LAYER_SITES[layer].value
        assert set(_texts(group[0], "111001")) == {"napari-calcinosis"}
        assert set(_texts(group[0], "111003")) == {doc["software"]["version"]}
        morphology = group.get_qualitative_evaluations(name=dc.MORPHOLOGY_NAME)
        assert morphology and morphology[0].value.value in {
            c.value for c in dc.MORPHOLOGY_CODES.values()}


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
