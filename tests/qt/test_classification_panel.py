"""The differential panel in a real viewer: ranked with score bars, reasons on demand, missing
inputs that jump to the clinical form, live updates on labs, marks and the study."""

from __future__ import annotations

import json

import pytest
from review_helpers import SEED_HISTORY, SEED_LABS, dock, open_and_detect, write_small_study

from napari_calcinosis._qt import preferences
from napari_calcinosis._qt.classification_panel import HIDE
from napari_calcinosis.annotations import DATA_DIR_ENV
from napari_calcinosis.classify import DISCLAIMER

pytestmark = pytest.mark.qt
IDIOPATHIC, METASTATIC = "idiopathic_calcinosis_cutis", "metastatic_calcinosis_cutis"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_small_study(tmp_path_factory.mktemp("panel") / "ct")


def _ranked(panel) -> list[str]:
    return [view.diagnosis for view in panel.views if view.visible]


def test_panel_ranks_explains_and_follows_labs(make_napari_viewer, qtbot, study, tmp_path,
                                               monkeypatch):
    monkeypatch.setitem(preferences._state, "enabled", False)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    viewer = make_napari_viewer(show=True)
    viewer.open(study, plugin="napari-calcinosis")
    panel = dock(viewer, "Differential")
    assert "Waiting for detection" in panel.status.value and not _ranked(panel)
    session = open_and_detect(viewer, qtbot, None)  # detection finishing fills the panel
    first_study = session.study_uid
    assert _ranked(panel) and panel.disclaimer.value == DISCLAIMER

    top = panel.views[0]
    assert top.missing.visible and "calcium" in top.missing_buttons()
    top.missing_buttons()["calcium"].clicked.emit()  # jumps to the clinical form
    form = viewer.window._wrapped_dock_widgets["Clinical input (napari-calcinosis)"] \
        .inner_widget()
    assert form.focused_key == "calcium"
    assert "border" in form.labs["calcium"].value.native.styleSheet()

    clinical = tmp_path / "seed.json"
    clinical.write_text(json.dumps({"age": 78, "sex": "M", "labs": SEED_LABS,
                                    "history": SEED_HISTORY}))
    assert form.load_file(clinical)
    ranked = _ranked(panel)
    assert ranked[0] == IDIOPATHIC
    assert "universalis" in panel.views[0].title.value and panel.views[0].bar.value > 50
    assert panel.heading.value == "Form: universalis (extent generalized)"
    metastatic_before = ranked.index(METASTATIC) if METASTATIC in ranked else len(ranked)

    panel.views[0].toggle.clicked.emit()
    assert panel.views[0].details.visible and panel.views[0].toggle.text == HIDE
    assert "For:" in panel.views[0].reasons.value
    assert "What would change it" in panel.views[0].reasons.value

    form.labs["calcium"].value.value = "13.1"  # mg/dL: high, typed live
    ranked = _ranked(panel)
    assert METASTATIC in ranked and ranked.index(METASTATIC) < metastatic_before
    assert ranked[0] != IDIOPATHIC
    idio = panel.views[ranked.index(IDIOPATHIC)] if IDIOPATHIC in ranked else None
    assert idio is None or idio.details.visible  # the reader's expanded item stays open
    form.labs["calcium"].value.value = "9.4"
    assert _ranked(panel)[0] == IDIOPATHIC

    soft = [les.id for les in session.review.effective.lesions if les.is_soft_tissue]
    session.edit(soft[:8], layer="muscle")  # a mark changes the ranking live
    assert panel.views[0].note.visible or _ranked(panel)[0] != IDIOPATHIC
    assert any(view.note.visible for view in panel.views if view.visible)
    viewer.layers.clear()  # the study goes away
    assert not _ranked(panel) and "Open a study" in panel.status.value
    assert not form.enabled

    other = write_small_study(tmp_path / "other", seed=11, scenario="localized")
    open_and_detect(viewer, qtbot, other)  # another study: its own (empty) clinical input
    assert session.study_uid != first_study and _ranked(panel)
    assert form.enabled and form.labs["calcium"].value.value == "" and form.age.value == ""
    assert panel.status.value.endswith("0 of 7 labs known.")


def test_changing_a_labs_unit_converts_the_typed_number(make_napari_viewer, qtbot, study,
                                                        tmp_path, monkeypatch):
    """10.9 mg/dL switched to mmol/L becomes 2.72 mmol/L (it was kept as 10.9 mmol/L)."""
    from napari_calcinosis.review import convert_typed

    assert convert_typed("calcium", "10.9", "mg/dL", "mmol/L") == "2.72"
    assert convert_typed("calcium", "abc", "mg/dL", "mmol/L") == "abc"
    monkeypatch.setitem(preferences._state, "enabled", False)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    viewer = make_napari_viewer(show=True)
    viewer.open(study, plugin="napari-calcinosis")
    open_and_detect(viewer, qtbot, None)
    form = dock(viewer, "Clinical input")
    row = form.labs["calcium"]
    row.unit.value = "mg/dL"
    row.value.value = "10.9"
    row.upper.value = "10.2"
    row.unit.value = "mmol/L"
    assert (row.value.value, row.upper.value) == ("2.72", "2.54")
    assert form.form_fields().labs["calcium"].unit == "mmol/L"
