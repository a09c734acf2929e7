"""The reader's whole review survives closing the viewer: opened again, everything is back."""

from __future__ import annotations

import numpy as np
import pytest
from review_helpers import dock, empty_body_voxel, open_and_detect, result_layer, write_small_study

from napari_calcinosis._qt import preferences
from napari_calcinosis.annotations import DATA_DIR_ENV, AnnotationStore

pytestmark = pytest.mark.qt


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_small_study(tmp_path_factory.mktemp("review") / "ct")


@pytest.fixture(autouse=True)
def quiet(monkeypatch, tmp_path):
    monkeypatch.setitem(preferences._state, "enabled", False)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))


def _state(viewer, session):
    review = session.review
    points = result_layer(viewer, "lesion_points")
    labels = result_layer(viewer, "lesion_labels")
    return {
        "lesions": sorted((les.id, les.layer, les.morphology, les.source)
                          for les in review.effective.lesions
                          if "annotation_uid" not in les.extra),
        "manual": [(les.layer, les.volume_mm3, les.extra["n_voxels"])
                   for les in review.effective.lesions if "annotation_uid" in les.extra],
        "rejected": sorted(les.id for les in review.rejected),
        "points": sorted(points.features["id"].tolist()),
        "drawn": sorted(np.unique(labels.data).tolist()),
        "calls": review.overall_rows(),
        "regions": review.region_rows(),
        "clinical": review.record.clinical,
    }


def _describes_the_review(detection, session):
    """The detection panel shows the findings as reviewed, not the run's own summary."""
    summary = session.review.effective.summary
    assert summary.extent == "regional"  # the reader's call
    assert f"Soft-tissue lesions: {summary.lesion_count} " in detection.summary.value
    assert "Extent: regional" in detection.summary.value


def test_review_comes_back_in_a_new_viewer(make_napari_viewer, qtbot, study, tmp_path):
    viewer = make_napari_viewer()
    session = open_and_detect(viewer, qtbot, study)
    lesions_panel, table, form = (dock(viewer, name) for name in
                                  ("Lesion review", "Distribution and symmetry",
                                   "Clinical input"))
    # napari hands each plugin widget a proxy of the viewer: all must share one session
    assert lesions_panel.session is table.session is form.session is session
    soft = [les.id for les in session.review.effective.lesions if les.is_soft_tissue]
    before = session.review.effective.summary.lesion_count

    session.select(soft[:3])  # layers marked on several lesions at once
    lesions_panel.layer.value = "muscle"
    session.select([soft[3]])
    lesions_panel.morphology.value = "sheet"
    session.select([soft[4]])
    lesions_panel.reject_button.clicked.emit()
    assert session.review.effective.summary.lesion_count == before - 1
    assert soft[4] not in result_layer(viewer, "lesion_points").features["id"].tolist()

    lesions_panel.paint_button.clicked.emit()  # a new label in paint mode
    labels = result_layer(viewer, "lesion_labels")
    assert labels.mode == "paint" and labels.selected_label not in soft
    labels.brush_size = 3
    labels.paint(empty_body_voxel(session), labels.selected_label)
    qtbot.waitUntil(lambda: len(session.review.record.manual_lesions) == 1, timeout=5000)

    region = table.region_combos and next(iter(table.region_combos))
    table.region_combos[region].value = "asymmetric"
    table.overall_combos["extent"].value = "regional"
    form.age.value, form.sex.value = "78", "M"
    form.labs["calcium"].unit.value = "mmol/L"
    form.labs["calcium"].value.value = "2.35"
    form.labs["phosphate"].unit.value = "mmol/L"
    form.labs["phosphate"].value.value = "1.1"
    expected = _state(viewer, session)
    assert expected["manual"] and expected["rejected"] == [soft[4]]
    detection = dock(viewer, "Calcinosis detection")
    _describes_the_review(detection, session)
    assert expected["clinical"]["labs"]["calcium"] == {"value": 2.35, "unit": "mmol/L"}
    store = AnnotationStore()
    assert store.path_for(session.study_uid).is_file()
    viewer.close()

    again = make_napari_viewer()
    session2 = open_and_detect(again, qtbot, study)
    lesions2, table2, form2 = (dock(again, name) for name in
                               ("Lesion review", "Distribution and symmetry", "Clinical input"))
    assert session2 is not session
    assert _state(again, session2) == expected
    _describes_the_review(dock(again, "Calcinosis detection"), session2)
    assert table2.region_combos[region].value == "asymmetric"
    assert table2.overall_combos["extent"].value == "regional"
    assert form2.labs["calcium"].unit.value == "mmol/L"
    assert form2.labs["calcium"].value.value == "2.35" and form2.age.value == "78"
    assert "rejected" in lesions2.summary.value or "1 rejected" in lesions2.summary.value
    assert len(lesions2.rejected.choices) == 1
