"""The CT detector on real patients' files (``tests/data/realct``, provenance there).

* An unmodified real slab (8 slices at the kidneys, arterial phase, no calcinosis): no
  soft-tissue call, extent ``none``; the bright arteries and the bowel are not called
  calcinosis of the body wall.
* Hybrids on the same slab (known deposits inserted into the real anatomy, scored by
  :func:`score_hybrid`): the deposits are found and none of the real anatomy is called.
  The bars are those measured when the test was written (seeds fixed), a little below, so
  that a change that loses deposits on real anatomy fails here.
* Single real axial images are refused with a sentence, not analysed as a volume.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_calcinosis.ct import analyze_volume
from napari_calcinosis.dicom import load_study
from napari_calcinosis.phantom import SOFT_LAYERS, make_hybrid, score_hybrid
from napari_calcinosis.types import AnalysisError

DATA = Path(__file__).resolve().parents[1] / "data" / "realct"
SLAB = DATA / "pancreas-ct-cbct-seg-001-slab8"


@pytest.fixture(scope="module")
def slab():
    study = load_study(SLAB)
    assert len(study.volumes) == 1
    return study.volumes[0]


def test_real_slab_without_calcinosis_gets_no_soft_tissue_call(slab):
    result = analyze_volume(slab)
    soft = [les for les in result.lesions if les.layer in SOFT_LAYERS]
    assert soft == []
    assert result.summary.extent == "none"
    # the enhancing arteries of the arterial phase are recognised as such
    assert any(item["reason"] == "contrast_vessel" for item in result.set_aside)


@pytest.mark.parametrize("scenario,seed,min_sensitivity", [
    ("scattered", 1, 0.65), ("scattered", 2, 0.75), ("localized", 2, 0.6)])
def test_hybrid_deposits_in_real_anatomy_are_found(slab, scenario, seed, min_sensitivity):
    study = make_hybrid(slab, scenario=scenario, seed=seed)
    assert study.deposits, "no site for a deposit was found in the real slab"
    result = analyze_volume(study.volume)
    score = score_hybrid(study, result.lesions, result.lesion_labels)
    assert score.eligible >= 5
    assert score.sensitivity >= min_sensitivity, score
    assert score.false_calls == [], score
    assert score.side_accuracy == 1.0, score
    assert score.layer_accuracy >= 0.5, score


def test_scorer_counts_a_perfect_answer_and_an_empty_one(slab):
    study = make_hybrid(slab, scenario="scattered", seed=3)
    truth = study.truth_labels()
    empty = score_hybrid(study, [], np.zeros_like(truth))
    eligible = sum(d.eligible for d in study.deposits)
    assert (empty.found, empty.eligible, empty.soft_calls) == (0, eligible, 0)
    from napari_calcinosis.types import Lesion
    perfect = [Lesion(id=d.id, series_instance_uid="x", centroid_index=d.centroid_index,
                      centroid_mm=d.centroid_mm, layer=d.layer if d.layer != "periarticular"
                      else "muscle", side=d.side, region="flank",
                      morphology="mass" if d.kind == "mass" else "punctate",
                      volume_mm3=1.0, peak_hu=d.peak_hu, max_diameter_mm=d.size_mm)
               for d in study.deposits]
    score = score_hybrid(study, perfect, truth)
    assert score.found == score.eligible == eligible
    assert score.layer_exact == score.side_exact == eligible
    assert score.ppv == 1.0 and score.false_calls == []


@pytest.mark.parametrize("name", sorted(p.name for p in (DATA / "covid19-ny-sbu-4-axial")
                                        .glob("*.dcm")))
def test_single_real_axial_image_is_refused_with_a_sentence(tmp_path, name):
    shutil.copy(DATA / "covid19-ny-sbu-4-axial" / name, tmp_path / name)
    volume = load_study(tmp_path).volumes[0]
    assert volume.hu.shape[0] == 1
    with pytest.raises(AnalysisError, match="needs a series of at least 3 slices"):
        analyze_volume(volume)


def test_real_series_with_blank_uids_is_one_series_and_exports(tmp_path):
    """Anonymised research data often blank the Study, Series and SOP UIDs: the slices are
    still one series, and findings, SR and SEG name the same derived UIDs."""
    import highdicom as hd
    import pydicom

    from napari_calcinosis import cli

    study = tmp_path / "study"
    study.mkdir()
    for path in sorted(SLAB.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        for key in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            setattr(ds, key, "")
        ds.save_as(study / path.name)
    out = tmp_path / "out"
    assert cli.main(["analyze", str(study), "--out", str(out)]) == 0
    import json
    findings = json.loads((out / "findings.json").read_text())
    (series,) = findings["series"]
    uid = series["series_instance_uid"]
    assert uid and series.get("n_slices", 8) == 8
    sr = hd.sr.srread(out / "sr.dcm")
    seg = hd.seg.segread(out / "seg.dcm")
    referenced = {item.SeriesInstanceUID for item in seg.ReferencedSeriesSequence}
    assert referenced == {uid}
    assert sr.StudyInstanceUID == seg.StudyInstanceUID == findings["study"]["study_instance_uid"]
    # what was set aside, and the contrast phase, are in the findings and the report
    assert series["contrast"]["phase"] in ("arterial", "portal_venous")
    reasons = {item["reason"] for item in series["set_aside"]}
    assert "contrast_vessel" in reasons
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "set aside, a tube no denser than the contrast in the blood" in html
    assert "measured: contrast-enhanced" in html
