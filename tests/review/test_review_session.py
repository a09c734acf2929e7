"""Study review without a viewer: runs + record -> effective findings, tables, differential;
manual lesions measured like detected ones; the clinical form's text -> the contract."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcinosis.annotations import AnnotationStore
from napari_calcinosis.clinical import parse_clinical
from napari_calcinosis.ct import (
    analyze_volume,
    lesion_context,
    mask_from_click,
    measure_masks,
    placement_problem,
)
from napari_calcinosis.phantom import PhantomSpec, make_ct_phantom
from napari_calcinosis.pipeline import series_entry
from napari_calcinosis.review import (
    FormFields,
    LabFields,
    StudyReview,
    document_from_fields,
    fields_from_clinical,
    lab_flag,
    region_call,
)
from napari_calcinosis.types import AnalysisError, CTParams

SEED_LABS = {"calcium": {"value": 9.4, "unit": "mg/dL"}, "phosphate": {"value": 1.1, "unit":
             "mmol/L"}, "pth": {"value": 40, "unit": "pg/mL"},
             "creatinine": {"value": 0.9, "unit": "mg/dL"},
             "egfr": {"value": 85, "unit": "mL/min/1.73m2"},
             "ck": {"value": 120, "unit": "U/L"}, "aldolase": {"value": 5, "unit": "U/L"}}


CONTRACT_FIELDS = ("centroid_index", "centroid_mm", "layer", "side", "region", "morphology",
                   "volume_mm3", "peak_hu", "max_diameter_mm")


@pytest.fixture(scope="module")
def run():
    spec = PhantomSpec(scenario="generalized", seed=3, pixel_spacing_mm=2.0, fov_mm=460.0,
                       slice_thickness_mm=5.0, z_range_mm=(150.0, 560.0))
    volume = make_ct_phantom(spec).as_volume()
    return volume, analyze_volume(volume)


@pytest.fixture
def review(run, tmp_path):
    volume, result = run
    out = StudyReview("1.2.3.4", store=AnnotationStore(tmp_path))
    out.set_run(series_entry(volume), volume, result)
    return out


def _soft(review):
    return [les.id for les in review.effective.lesions if les.is_soft_tissue]


def test_untouched_review_is_the_detection_and_writes_nothing(review, run):
    assert [les.id for les in review.effective.lesions] == [les.id for les in run[1].lesions]
    assert review.effective.summary.lesion_count == run[1].summary.lesion_count
    assert not list(review.store.root.glob("study-*.json"))
    assert review.differential.top is not None


def test_reject_restore_edit_and_reopen(review, run, tmp_path):
    soft, before = _soft(review), review.effective.summary.lesion_count
    review.edit(soft[:2], layer="muscle")
    review.set_state([soft[2]], "rejected")
    uid = run[0].info.series_instance_uid
    assert review.effective.summary.lesion_count == before - 1
    assert review.effective.summary.deep_involvement["muscle"]
    assert not np.any(review.effective_labels(uid) == soft[2])
    assert [les.id for les in review.rejected] == [soft[2]]
    reopened = StudyReview("1.2.3.4", store=AnnotationStore(tmp_path))
    reopened.set_run(series_entry(run[0]), run[0], run[1])
    assert [reopened.lesion(i).layer for i in soft[:2]] == ["muscle", "muscle"]
    assert reopened.lesion(soft[2]) is None
    reopened.restore(reopened.rejected)
    assert reopened.effective.summary.lesion_count == before


def test_manual_lesion_is_measured_like_a_detected_one(review, run):
    volume, result = run
    detected = next(les for les in result.lesions if les.is_soft_tissue)
    mask = result.lesion_labels == detected.id
    review.set_state([detected.id], "rejected")
    added = review.add_manual(volume.info.series_instance_uid, mask)
    assert added.source == "manual" and added.id == max(les.id for les in result.lesions) + 1
    for name in CONTRACT_FIELDS:
        assert getattr(added, name) == getattr(detected, name), name
    assert np.array_equal(review.effective_labels(volume.info.series_instance_uid)
                          == added.id, mask)
    review.edit([added.id], layer="skin")
    grown = mask | np.roll(mask, 1, axis=2)
    review.update_manual(added.extra["annotation_uid"], grown)
    again = review.lesion(added.id)
    assert again.layer == "skin"  # the reader's value survives a re-measure
    assert again.extra["n_voxels"] == int(grown.sum()) > detected.extra["n_voxels"]


def test_measure_masks_reproduces_every_detected_lesion(run):
    volume, result = run
    ctx = lesion_context(volume, params=result.params)
    masks = [result.lesion_labels == les.id for les in result.lesions]
    measured = measure_masks(ctx, masks, ids=[les.id for les in result.lesions])
    assert measured == result.lesions  # every field, extras included


def test_click_finds_the_deposit_under_it(run):
    volume, result = run
    lesion = max((les for les in result.lesions if les.max_diameter_mm < 15),
                 key=lambda les: les.volume_mm3)
    beside = np.asarray(lesion.centroid_index) + [0, 1, 0]
    mask = mask_from_click(volume, beside, threshold_hu=result.threshold_hu)
    truth = result.lesion_labels == lesion.id
    assert (mask & truth).sum() == truth.sum()
    air = mask_from_click(volume, [0, 0, 0], threshold_hu=130.0)
    assert air.sum() == 1 and air[0, 0, 0]


def test_lesions_drawn_outside_the_body_or_in_bone_are_refused(review, run):
    volume, result = run
    uid = volume.info.series_instance_uid
    ctx = lesion_context(volume, params=result.params)
    # every deposit the detector found may also be drawn by hand
    assert all(placement_problem(ctx, result.lesion_labels == les.id) is None
               for les in result.lesions)
    k = volume.shape[0] // 2
    air = np.zeros(volume.shape, bool)
    air[k, 1:4, 1:4] = True  # a corner of the field of view
    assert "outside the body" in placement_problem(ctx, air)
    rows, cols = np.nonzero(volume.hu[k] > 100)
    lowest = np.argmax(rows)  # the table's curved top, under the patient's back
    table = mask_from_click(volume, [k, rows[lowest], cols[lowest]],
                            threshold_hu=result.threshold_hu)
    assert table.sum() > 1 and "outside the body" in placement_problem(ctx, table)
    dense = np.argwhere(volume.hu[k] > 600)
    spine = mask_from_click(volume, [k, *dense[len(dense) // 2]], threshold_hu=300.0)
    before = len(review.record.manual_lesions)
    with pytest.raises(AnalysisError, match=r"^The lesion drawn on slice \d+ lies inside bone"):
        review.add_manual(uid, spine)
    with pytest.raises(AnalysisError, match="outside the body"):
        review.add_manual(uid, table)
    assert len(review.record.manual_lesions) == before  # nothing added, nothing saved


def test_distribution_table_and_overrides(review):
    rows = review.region_rows()
    summary = review.effective.summary
    assert sum(r.left_count + r.right_count + r.midline_count for r in rows) == \
        summary.lesion_count
    by_region = summary.symmetry.by_region
    for row in rows:
        assert row.index == pytest.approx(by_region[row.region]["index"], abs=1e-3)
    region = rows[0].region
    review.override_region(region, "asymmetric")
    review.override_summary("extent", "localized")
    row = next(r for r in review.region_rows() if r.region == region)
    assert (row.auto_call, row.reader_call, row.call) == (rows[0].auto_call, "asymmetric",
                                                          "asymmetric")
    overall = {item.name: item for item in review.overall_rows()}
    assert (overall["extent"].auto, overall["extent"].value) == ("generalized", "localized")
    assert (overall["form"].auto, overall["form"].value) == ("universalis", "circumscripta")
    assert review.differential.top.form == "circumscripta"


@pytest.mark.parametrize(("index", "count", "call"), [
    (1.0, 1, "insufficient"), (None, 0, "insufficient"), (0.7, 2, "symmetric"),
    (0.69, 4, "asymmetric")])
def test_region_call(index, count, call):
    assert region_call(index, count, params=CTParams()) == call


def test_clinical_changes_move_the_differential(review):
    review.set_clinical(parse_clinical({"age": 78, "sex": "M", "labs": SEED_LABS}))
    assert review.differential.top.diagnosis == "idiopathic_calcinosis_cutis"
    rank = [c.diagnosis for c in review.differential].index("metastatic_calcinosis_cutis") \
        if "metastatic_calcinosis_cutis" in [c.diagnosis for c in review.differential] else 99
    labs = {**SEED_LABS, "calcium": {"value": 3.1, "unit": "mmol/L"}}
    review.set_clinical(parse_clinical({"age": 78, "sex": "M", "labs": labs}))
    ranked = [c.diagnosis for c in review.differential]
    assert ranked.index("metastatic_calcinosis_cutis") < rank
    assert review.record.clinical["labs"]["calcium"] == {"value": 3.1, "unit": "mmol/L"}


def test_form_fields_to_contract_and_back():
    form = FormFields(age="78", sex="M", labs={
        "calcium": LabFields("2,6", "mmol/L"), "ck": LabFields("250", "U/L", "", "200"),
        "pth": LabFields("abc", "pg/mL"), "egfr": LabFields("", "mL/min/1.73m2")},
        history={"dialysis": "yes", "injections": "no", "malignancy": "unknown",
                 "connective_tissue_disease": "none"})
    doc, errors = document_from_fields(form)
    assert doc == {"age": 78, "sex": "M",
                   "labs": {"calcium": {"value": 2.6, "unit": "mmol/L"},
                            "ck": {"value": 250.0, "unit": "U/L", "upper_limit": 200.0}},
                   "history": {"dialysis": True, "injections": False,
                               "connective_tissue_disease": "none"}}
    assert errors == {"pth": "not a number: 'abc'"}
    clinical = parse_clinical(doc)
    assert lab_flag(clinical, "calcium", "mmol/L") == ("high", "high (2.12–2.54)")
    assert lab_flag(clinical, "ck", "U/L") == ("high", "high (≤ 200)")
    assert lab_flag(clinical, "pth", "pg/mL") == ("unknown", "unknown")
    back = fields_from_clinical(clinical)
    assert (back.age, back.labs["calcium"], back.history["dialysis"]) == \
        ("78", LabFields("2.6", "mmol/L"), "yes")
    assert document_from_fields(back)[0] == doc
