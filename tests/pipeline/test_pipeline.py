"""Study -> findings orchestration, on hand-built studies with known answers."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pytest
from scipy import ndimage

import napari_calcinosis
from napari_calcinosis.clinical import parse_clinical
from napari_calcinosis.pipeline import DETECTORS, analyze_study, series_entry
from napari_calcinosis.report import anonymize_findings, findings_to_json
from napari_calcinosis.types import (
    CTParams,
    Lesion,
    NoImageSeriesError,
    Radiograph,
    SeriesInfo,
    Study,
    Volume,
    XrayParams,
)

# Not under pydicom's UID root: new UIDs (root + random digits) must never contain it by chance.
STUDY_UID = "1.2.3.4.77"


def ct_volume(uid: str, hu: np.ndarray, *, spacing=(2.0, 0.8, 0.8), thickness=2.0,
              modality="CT", description="") -> Volume:
    info = SeriesInfo(series_instance_uid=uid, study_instance_uid=STUDY_UID,
                      modality=modality, slice_thickness_mm=thickness,
                      series_description=description, patient_name="ROE^RICHARD",
                      patient_id="ID-99")
    return Volume(hu=hu, spacing_zyx_mm=spacing, origin_lps_mm=np.array([-10.0, -20.0, 30.0]),
                  direction_lps=np.eye(3)[:, ::-1], info=info)


def radiograph(uid: str, *, view="frontal", spacing=(0.15, 0.15), dots=()) -> Radiograph:
    info = SeriesInfo(series_instance_uid=uid, study_instance_uid=STUDY_UID, modality="CR")
    image = np.zeros((300, 200), np.float32)
    for row, col in dots:
        image[row, col] = 1.0
    return Radiograph(image=image, info=info, view=view,
                      pixel_spacing_mm=spacing, warnings=["radiograph warning"])


def hu_with_spots(shape, spots) -> np.ndarray:
    hu = np.full(shape, 40, np.int16)
    for z, y, x in spots:
        hu[z, y, x] = 400
    return hu


@dataclass
class FakeCTResult:
    lesions: list
    lesion_labels: np.ndarray
    summary: object
    params: CTParams
    warnings: list = field(default_factory=list)
    tissue_labels: np.ndarray | None = None


def _threshold_detector(volume, *, params=None, progress=None):
    """A known-answer stand-in for CT detection: every connected blob above threshold."""
    from napari_calcinosis.summary import summarize

    params = params or CTParams()
    labels, count = ndimage.label(volume.hu >= params.threshold_hu)
    lesions = []
    for lesion_id, centroid in enumerate(ndimage.center_of_mass(labels > 0, labels,
                                                                range(1, count + 1)), 1):
        side = "left" if centroid[2] > volume.hu.shape[2] / 2 else "right"
        lesions.append(Lesion(id=lesion_id, series_instance_uid="", layer="subcutaneous",
                              side=side, region="gluteal", morphology="punctate",
                              centroid_index=list(centroid),
                              centroid_mm=volume.index_to_lps(centroid).tolist(),
                              volume_mm3=float(np.prod(volume.spacing_zyx_mm)),
                              peak_hu=400.0, max_diameter_mm=0.8))
    if progress is not None:
        progress(1.0, "fake detection done")
    return FakeCTResult(lesions, labels, summarize(lesions, params=params), params,
                        warnings=["detector warning"])


@dataclass
class FakeXrayResult:
    lesions: list
    lesion_labels: np.ndarray
    summary: object
    warnings: list = field(default_factory=list)


def _bright_pixel_detector(rad, *, params=None, progress=None):
    """A known-answer stand-in for radiograph detection: every pixel above 0.5 is a dot."""
    from napari_calcinosis.summary import summarize

    rows, cols = np.nonzero(rad.image > 0.5)
    lesions = [Lesion(id=k, series_instance_uid="", centroid_index=[float(r), float(c)],
                      side="left" if c > rad.image.shape[1] / 2 else "right",
                      region="axilla", area_mm2=0.02, morphology="punctate")
               for k, (r, c) in enumerate(zip(rows, cols), 1)]
    labels = np.zeros(rad.image.shape, np.int32)
    labels[rows, cols] = np.arange(1, len(lesions) + 1)
    return FakeXrayResult(lesions, labels, summarize(lesions, source="radiograph"),
                          ["xray detector warning"])


@pytest.fixture
def fake_detector(monkeypatch):
    """Known-answer stand-ins for both detectors (orchestration is tested, not detection)."""
    monkeypatch.setitem(DETECTORS, "ct", replace(DETECTORS["ct"], run=_threshold_detector))
    monkeypatch.setitem(DETECTORS, "radiograph",
                        replace(DETECTORS["radiograph"], run=_bright_pixel_detector))


def test_empty_study_raises():
    with pytest.raises(NoImageSeriesError):
        analyze_study(Study())


def test_radiograph_only_study_is_summarised_from_the_frontal_view(fake_detector):
    lateral = radiograph("1.2.3.2", view="lateral", spacing=None, dots=[(10, 10)])
    frontal = radiograph("1.2.3.1", dots=[(50, 20), (60, 150), (70, 160)])
    study = Study(radiographs=[lateral, frontal], warnings=["study warning"])
    result = analyze_study(study)
    findings = result.findings
    assert findings.software == {"name": "napari-calcinosis",
                                 "version": napari_calcinosis.__version__}
    assert findings.study == {"study_instance_uid": STUDY_UID, "modalities": ["CR"]}
    assert [(s.kind, s.shape, s.spacing_mm, s.view) for s in findings.series] == [
        ("radiograph", [300, 200], None, "lateral"),
        ("radiograph", [300, 200], [0.15, 0.15], "frontal")]
    assert [(les.id, les.series_instance_uid) for les in findings.lesions] == [
        (1, "1.2.3.2"), (2, "1.2.3.1"), (3, "1.2.3.1"), (4, "1.2.3.1")]
    assert [s.id_offset for s in result.series] == [0, 1]
    summary = findings.summary
    assert summary.source == "radiograph" and summary.lesion_count == 3
    assert summary.by_side == {"right": 1, "left": 2}
    assert findings.differential and findings.differential[0]["form"] == "circumscripta"
    assert findings.warnings[0] == "study warning"
    assert any("radiograph warning" in w for w in findings.warnings)
    assert any("xray detector warning" in w for w in findings.warnings)
    assert any("summary comes from the frontal radiograph (1.2.3.1)" in w
               for w in findings.warnings)
    assert findings.parameters["threshold_hu"] == CTParams().threshold_hu
    assert findings.parameters["radiograph"] == XrayParams().to_dict()
    findings_to_json(findings)  # schema-valid


def test_an_unusable_radiograph_is_a_warning_not_a_failure():
    # The real radiograph detector refuses a blank image; the study still gets findings.
    result = analyze_study(Study(radiographs=[radiograph("1.2.3.1")]))
    findings = result.findings
    assert findings.lesions == [] and result.series[0].analysed is False
    assert findings.summary.source == "radiograph" and findings.summary.extent == "none"
    assert any("not analysed" in w and "blank" in w for w in findings.warnings)
    findings_to_json(findings)


def test_series_entry_of_a_volume():
    entry = series_entry(ct_volume("1.2.3.9", np.zeros((5, 6, 7), np.int16), spacing=(
        3.0, 0.5, 0.6), thickness=None))
    assert (entry.kind, entry.shape, entry.spacing_mm, entry.slice_thickness_mm, entry.view) == (
        "volume", [5, 6, 7], [3.0, 0.5, 0.6], None, None)


def test_ct_lesions_get_study_wide_ids_and_series_uids(fake_detector):
    first = ct_volume("1.2.3.10", hu_with_spots((4, 20, 20), [(1, 5, 5), (2, 10, 15)]))
    second = ct_volume("1.2.3.20", hu_with_spots((4, 20, 20), [(1, 5, 15), (3, 3, 3),
                                                               (0, 18, 12)]))
    messages = []
    result = analyze_study(Study(volumes=[first, second],
                                 radiographs=[radiograph("1.2.3.30", dots=[(5, 5)])]),
                           progress=lambda f, m: messages.append((f, m)))
    findings = result.findings
    assert [les.id for les in findings.lesions] == [1, 2, 3, 4, 5, 6]
    assert [les.series_instance_uid for les in findings.lesions] == ["1.2.3.10"] * 2 + [
        "1.2.3.20"] * 3 + ["1.2.3.30"]
    assert [s.id_offset for s in result.series] == [0, 2, 5]
    assert [s.analysed for s in result.series] == [True, True, True]
    # Label value v of the second series' label image is lesion id v + 2.
    labels = result.series[1].ct.lesion_labels
    assert labels[3, 3, 3] + result.series[1].id_offset in {les.id for les in findings.lesions
                                                            if les.series_instance_uid
                                                            == "1.2.3.20"}
    # The summary comes from one series only: two CT series of a study are usually
    # reconstructions of one scan (same thickness here: the first), and the radiograph dot
    # is not counted again either.
    summary = findings.summary
    assert summary.source == "CT" and summary.lesion_count == 2
    assert summary == result.series[0].ct.summary
    assert any("summary comes from the CT series" in w for w in findings.warnings)
    assert findings.study["modalities"] == ["CT", "CR"]
    assert sum(w.endswith(": detector warning") for w in findings.warnings) == 2
    fractions = [f for f, _ in messages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("fake detection done" in m for _, m in messages)
    findings_to_json(findings)


def test_single_ct_summary_comes_from_its_result(fake_detector):
    volume = ct_volume("1.2.3.10", hu_with_spots((3, 20, 20), [(1, 5, 5)]))
    result = analyze_study(Study(volumes=[volume]), params=CTParams(threshold_hu=300.0))
    assert result.findings.summary == result.series[0].ct.summary
    assert result.findings.summary is not result.series[0].ct.summary
    assert result.findings.parameters["threshold_hu"] == 300.0
    # Raising the threshold above the spots finds nothing.
    none = analyze_study(Study(volumes=[volume]), params=CTParams(threshold_hu=500.0))
    assert none.findings.lesions == [] and none.findings.summary.extent == "none"


def test_thick_slices_warn_and_non_ct_volumes_are_not_searched(fake_detector):
    thick = ct_volume("1.2.3.10", hu_with_spots((3, 20, 20), []), thickness=5.0,
                      description="Abdomen 5mm")
    thin_by_spacing = ct_volume("1.2.3.11", hu_with_spots((3, 20, 20), []), spacing=(
        1.0, 0.7, 0.7), thickness=None)
    mr = ct_volume("1.2.3.12", hu_with_spots((3, 20, 20), [(1, 1, 1)]), modality="MR")
    result = analyze_study(Study(volumes=[thick, thin_by_spacing, mr]))
    warnings = result.findings.warnings
    thick_warnings = [w for w in warnings if "thick" in w]
    assert len(thick_warnings) == 1 and "'Abdomen 5mm'" in thick_warnings[0]
    assert "5 mm" in thick_warnings[0] and "partial volume" in thick_warnings[0]
    assert any("MR" in w and "not CT" in w for w in warnings)
    assert result.findings.lesions == []  # the MR spot was not searched
    assert [s.analysed for s in result.series] == [True, True, False]


def test_clinical_input_is_kept_on_the_result_not_in_findings(fake_detector):
    clinical = parse_clinical({"sex": "F"})
    volume = ct_volume("1.2.3.10", hu_with_spots((3, 20, 20), []))
    result = analyze_study(Study(volumes=[volume]), clinical=clinical)
    assert result.clinical is clinical
    assert "clinical" not in findings_to_json(result.findings)
    assert result.findings.differential == []  # no soft-tissue lesion: empty differential


NORMAL_LABS = {"calcium": {"value": 9.4, "unit": "mg/dL"},
               "phosphate": {"value": 3.5, "unit": "mg/dL"},
               "pth": {"value": 40, "unit": "pg/mL"},
               "creatinine": {"value": 0.9, "unit": "mg/dL"},
               "egfr": {"value": 85, "unit": "mL/min/1.73m2"},
               "ck": {"value": 120, "unit": "U/L"}, "aldolase": {"value": 5, "unit": "U/L"}}


def test_differential_follows_the_clinical_input(fake_detector):
    spots = [(1, 5, 5), (1, 5, 15), (2, 14, 4), (2, 14, 16), (3, 9, 9)]
    study = Study(volumes=[ct_volume("1.2.3.10", hu_with_spots((4, 20, 20), spots))])
    normal = analyze_study(study, clinical=parse_clinical({"sex": "M", "labs": NORMAL_LABS}))
    high_ca_p = dict(NORMAL_LABS, calcium={"value": 11.5, "unit": "mg/dL"},
                     phosphate={"value": 7.0, "unit": "mg/dL"})
    metastatic = analyze_study(study, clinical=parse_clinical({
        "sex": "M", "labs": high_ca_p, "history": {"dialysis": True}}))
    for result in (normal, metastatic):
        differential = result.findings.differential
        assert differential and differential == result.differential.to_json_list()
        assert [d["score"] for d in differential] == sorted(
            (d["score"] for d in differential), reverse=True)
        findings_to_json(result.findings)  # the differential is schema-valid

    def score(result, diagnosis):
        return next(d["score"] for d in result.findings.differential
                    if d["diagnosis"] == diagnosis)

    assert score(metastatic, "metastatic_calcinosis_cutis") > score(
        normal, "metastatic_calcinosis_cutis")
    assert metastatic.findings.differential[0]["diagnosis"] == "metastatic_calcinosis_cutis"
    unknown = analyze_study(study)  # no clinical input: labs are missing, never normal
    assert "calcium" in " ".join(unknown.findings.differential[0]["missing"])


def test_anonymize_findings(fake_detector):
    volume = ct_volume("1.2.3.10", hu_with_spots((3, 20, 20), [(1, 5, 5)]))
    study = Study(volumes=[volume],
                  warnings=["ignored 1 non-DICOM file: /data/ROE_RICHARD/ID-99/x.txt",
                            "series 1.2.3.10 has a gap"])
    findings = analyze_study(study).findings
    anonymous, uid_map = anonymize_findings(findings, study)
    assert set(uid_map) == {STUDY_UID, "1.2.3.10"}
    assert anonymous.study["study_instance_uid"] == uid_map[STUDY_UID]
    assert anonymous.series[0].series_instance_uid == uid_map["1.2.3.10"]
    assert anonymous.lesions[0].series_instance_uid == uid_map["1.2.3.10"]
    text = findings_to_json(anonymous)
    for secret in (STUDY_UID, "1.2.3.10", "ROE", "RICHARD", "ID-99"):
        assert secret not in text, secret
    assert f"series {uid_map['1.2.3.10']} has a gap" in anonymous.warnings
    assert findings.series[0].series_instance_uid == "1.2.3.10"  # the original is untouched
    again, _ = anonymize_findings(findings, study, uid_map=uid_map)
    assert again.series[0].series_instance_uid == anonymous.series[0].series_instance_uid
