"""``analyze`` reads the reader's saved annotations of a study, so CLI and viewer agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from napari_calcinosis import cli
from napari_calcinosis.annotations import AnnotationRecord, default_store
from napari_calcinosis.types import Lesion


@pytest.fixture(scope="module")
def localized_sample() -> Path:
    from napari_calcinosis.phantom import sample_study_path

    return sample_study_path("localized")


def analyze(study: Path, out: Path, *extra: str) -> dict:
    status = cli.main(["analyze", str(study), "--out", str(out), "--formats", "json",
                       "--quiet", *extra])
    assert status == 0
    return json.loads((out / "findings.json").read_text(encoding="utf-8"))


def lesion_from_json(doc: dict) -> Lesion:
    fields = {k: doc[k] for k in ("id", "series_instance_uid", "centroid_index", "layer",
                                  "side", "region", "morphology", "source", "centroid_mm",
                                  "volume_mm3", "area_mm2", "peak_hu", "max_diameter_mm")}
    return Lesion(**fields)


@pytest.mark.slow
def test_analyze_applies_saved_marks_and_can_ignore_them(localized_sample, tmp_path):
    auto = analyze(localized_sample, tmp_path / "auto")
    soft = [les for les in auto["lesions"] if les["layer"] in ("skin", "subcutaneous")]
    assert len(soft) >= 3, "the localized sample should give several soft-tissue lesions"
    rejected, marked = lesion_from_json(soft[0]), lesion_from_json(soft[1])

    record = AnnotationRecord(auto["study"]["study_instance_uid"])
    record.reject(rejected)
    record.edit(marked, layer="muscle")
    record.set_clinical({"age": 70, "labs": {"calcium": {"value": 2.3, "unit": "mmol/L"}}})
    default_store().save(record)

    marked_run = analyze(localized_sample, tmp_path / "marked")
    by_id = {les["id"]: les for les in marked_run["lesions"]}
    assert rejected.id not in by_id
    assert by_id[marked.id]["layer"] == "muscle" and by_id[marked.id]["source"] == "manual"
    assert marked_run["summary"]["lesion_count"] == auto["summary"]["lesion_count"] - 1
    assert marked_run["summary"]["deep_involvement"]["muscle"] is True
    # The saved clinical input reached the differential: calcium is no longer missing.
    assert all("calcium" not in item["missing"] for item in marked_run["differential"])

    ignored = analyze(localized_sample, tmp_path / "ignored", "--ignore-annotations")
    assert ignored["lesions"] == auto["lesions"]
    assert ignored["summary"] == auto["summary"]


def test_unusable_saved_annotations_are_said_first_everywhere(tmp_path, capsys):
    """A corrupted record: the CLI, findings.json (first warning) and the report (first
    section) say the reader's edits were not applied; the file is left for recovery."""
    import pydicom

    from napari_calcinosis.types import ANNOTATIONS_NOT_APPLIED

    slab = Path(__file__).resolve().parent / "data" / "realct" / \
        "pancreas-ct-cbct-seg-001-slab8"
    uid = pydicom.dcmread(next(slab.glob("*.dcm")), stop_before_pixels=True).StudyInstanceUID
    path = default_store().path_for(uid)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"schema": "napari-calcinosis/annotations/v1", "rejected": [', "utf-8")
    try:
        out = tmp_path / "out"
        assert cli.main(["analyze", str(slab), "--out", str(out), "--quiet",
                         "--formats", "json,html"]) == 0
        err = capsys.readouterr().err
        assert ANNOTATIONS_NOT_APPLIED in err and str(path) in err
        doc = json.loads((out / "findings.json").read_text(encoding="utf-8"))
        assert doc["warnings"][0].startswith(ANNOTATIONS_NOT_APPLIED)
        html = (out / "report.html").read_text(encoding="utf-8")
        notice = html.index("the reader&#x27;s annotations were not applied") \
            if "&#x27;" in html else html.index("the reader's annotations were not applied")
        assert notice < html.index("Patient and exam")
        assert path.read_text("utf-8").endswith('"rejected": [')  # kept as it was
    finally:
        path.unlink(missing_ok=True)
