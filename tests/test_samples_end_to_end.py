"""``analyze`` on each bundled sample study with a clinical file: the expected conclusion."""

from __future__ import annotations

import json

import pytest

from napari_calcinosis import cli
from napari_calcinosis.phantom import SAMPLE_CLINICAL

NORMAL_LABS = SAMPLE_CLINICAL["generalized"]["labs"]
NEGATIVE_HISTORY = SAMPLE_CLINICAL["generalized"]["history"]

CASES = {
    # The seed case: normal labs, no history, diffuse symmetric skin/subcutis deposits.
    "generalized": (SAMPLE_CLINICAL["generalized"],
                    "idiopathic_calcinosis_cutis", "universalis", "generalized"),
    # A one-sided cluster in one region after local trauma or surgery, labs normal.
    "localized": ({"age": 55, "sex": "F", "labs": NORMAL_LABS,
                   "history": {**NEGATIVE_HISTORY, "trauma_or_surgery": True}},
                  "dystrophic_calcinosis_cutis", "circumscripta", "localized"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_sample_study_gives_the_expected_top_conclusion(name, tmp_path):
    from napari_calcinosis.phantom import sample_study_path

    clinical, diagnosis, form, extent = CASES[name]
    clinical_file = tmp_path / "clinical.json"
    clinical_file.write_text(json.dumps(clinical), encoding="utf-8")
    status = cli.main(["analyze", str(sample_study_path(name)), "--out", str(tmp_path / "out"),
                       "--formats", "json", "--clinical", str(clinical_file), "--quiet",
                       "--ignore-annotations"])
    assert status == 0
    doc = json.loads((tmp_path / "out" / "findings.json").read_text(encoding="utf-8"))
    assert doc["summary"]["extent"] == extent and doc["summary"]["form"] == form
    top, second = doc["differential"][:2]
    assert (top["diagnosis"], top["form"]) == (diagnosis, form)
    assert top["score"] > second["score"]
    assert top["explanation"] and top["supporting"]
