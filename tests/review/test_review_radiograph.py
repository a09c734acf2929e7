"""Study review with radiograph runs, without a viewer: the review assembles its runs as
``analyze`` does (ids across series in series order whatever order the runs came in, the
summary from the CT when there is one, else the radiograph, the same warnings), and the
reader's decisions work on radiograph lesions."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcinosis.annotations import AnnotationStore
from napari_calcinosis.dicom import load_study
from napari_calcinosis.phantom import PhantomSpec, make_ct_phantom, write_study
from napari_calcinosis.pipeline import assemble_result, detect_series
from napari_calcinosis.review import StudyReview
from napari_calcinosis.types import AnalysisError, Study

SPEC = PhantomSpec(scenario="generalized", seed=3, pixel_spacing_mm=2.0, fov_mm=460.0,
                   slice_thickness_mm=5.0, z_range_mm=(300.0, 500.0))


@pytest.fixture(scope="module")
def detected(tmp_path_factory):
    folder = write_study(make_ct_phantom(SPEC), tmp_path_factory.mktemp("study") / "s",
                         xray_views=("frontal",))
    study = load_study(folder)
    series = detect_series(study)
    assert series[1].xray is not None and series[1].xray.lesions
    return study, series


def _review(study, series, tmp_path, order) -> StudyReview:
    review = StudyReview(study.study_instance_uid, store=AnnotationStore(tmp_path))
    review.set_study_warnings(study.warnings)
    for item in series:  # the viewer lists every open series first
        review.add_series(item.entry, item.image)
    for n in order:
        item = series[n]
        review.set_run(item.entry, item.image, item.result)
    return review


def test_runs_in_any_order_assemble_as_analyze_does(detected, tmp_path):
    study, series = detected
    expected = assemble_result(study, series).findings.to_json_dict()
    review = _review(study, series, tmp_path, order=[1, 0])  # radiograph detected first
    got = review.findings.to_json_dict()
    for key in ("study", "series", "lesions", "summary", "warnings", "parameters"):
        assert got[key] == expected[key], key
    ct_max = max(les.id for les in series[0].ct.lesions)
    xray_uid = series[1].entry.series_instance_uid
    assert review.runs[xray_uid].id_offset == ct_max
    assert got["summary"]["source"] == "CT"
    assert review.differential.to_json_list() == expected["differential"]


def test_radiograph_alone_is_summarised_from_it(detected, tmp_path):
    study, series = detected
    alone = Study(radiographs=[series[1].image], warnings=list(study.warnings))
    review = _review(alone, [series[1]], tmp_path, order=[0])
    summary = review.findings.summary
    assert summary.source == "radiograph"
    assert summary.lesion_count == series[1].xray.summary.lesion_count
    assert [les.id for les in review.findings.lesions] == \
        [les.id for les in series[1].xray.lesions]


def test_reject_and_mark_radiograph_lesions(detected, tmp_path):
    study, series = detected
    review = _review(study, series, tmp_path, order=[0, 1])
    uid = series[1].entry.series_instance_uid
    offset = review.runs[uid].id_offset
    ids = [les.id for les in review.lesions_of(uid)]
    review.set_state([ids[0]], "rejected")
    assert review.lesion(ids[0]) is None and [les.id for les in review.rejected] == [ids[0]]
    assert not np.any(review.effective_labels(uid) == ids[0] - offset)
    if len(ids) > 1:
        review.edit([ids[1]], layer="skin")
        assert review.lesion(ids[1]).layer == "skin"
    # the CT summary does not move: the radiograph's lesions are not counted in it
    assert review.effective.summary.lesion_count == review.findings.summary.lesion_count
    reopened = _review(study, series, tmp_path, order=[1, 0])
    assert reopened.lesion(ids[0]) is None
    with pytest.raises(AnalysisError, match="CT series only"):
        review.add_manual(uid, np.zeros(series[1].image.image.shape, bool))
