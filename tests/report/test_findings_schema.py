"""The findings.json schema, its writer and the lesions.csv writer."""

from __future__ import annotations

import copy
import csv
import json

import jsonschema
import numpy as np
import pytest

from napari_calcinosis.report import (
    BASE_COLUMNS,
    FindingsSchemaError,
    findings_schema,
    findings_to_json,
    validate_findings,
    write_findings_json,
    write_lesions_csv,
)
from napari_calcinosis.types import Findings, Lesion, SeriesEntry, Summary, Symmetry
from napari_calcinosis.types import findings as fmod

CT_UID, CR_UID = "1.2.3.4.10", "1.2.3.4.20"

# The contract's example, with its "..." filled in.
CONTRACT_DOC = {
    "schema": "napari-calcinosis/findings/v1",
    "software": {"name": "napari-calcinosis", "version": "0.1.0"},
    "study": {"study_instance_uid": "1.2.3", "modalities": ["CT", "CR"]},
    "series": [{"series_instance_uid": CT_UID, "modality": "CT", "kind": "volume",
                "shape": [120, 256, 256], "spacing_mm": [2.0, 0.8, 0.8],
                "slice_thickness_mm": 2.0, "view": None}],
    "lesions": [{
        "id": 1, "series_instance_uid": CT_UID, "source": "auto",
        "centroid_mm": [12.5, -80.0, 1040.0], "centroid_index": [33, 120, 148],
        "volume_mm3": 14.2, "area_mm2": None, "peak_hu": 512, "max_diameter_mm": 3.4,
        "layer": "subcutaneous", "side": "left", "region": "chest_wall_anterior",
        "morphology": "punctate"}],
    "summary": {
        "lesion_count": 57, "total_volume_mm3": 410.0,
        "by_layer": {"skin": 12, "subcutaneous": 45},
        "by_region": {"chest_wall_anterior": 20, "shoulder_girdle": 18, "gluteal": 19},
        "extent": "generalized", "form": "universalis",
        "symmetry": {"index": 0.86, "call": "symmetric"},
        "deep_involvement": {"muscle": False, "vessel": False, "visceral": False},
        "incidental": {"costal_cartilage": 4, "vessel_wall": 9, "visceral": 0},
        "source": "CT"},
    "differential": [{
        "diagnosis": "idiopathic_calcinosis_cutis", "form": "universalis", "score": 0.82,
        "supporting": ["all labs normal"], "against": [], "missing": ["aldolase"],
        "explanation": "Diffuse symmetric skin and subcutaneous deposits."}],
    "warnings": ["a warning"],
}


def make_findings() -> Findings:
    """A CT lesion with extras and a radiograph lesion, as the model builds them."""
    ct = Lesion(id=1, series_instance_uid=CT_UID, centroid_index=[3.0, 20.5, 11.0],
                layer="skin", side="right", region="gluteal", morphology="nodular",
                centroid_mm=[-40.0, 10.0, 150.5], volume_mm3=np.float32(12.5),
                peak_hu=np.int16(480), max_diameter_mm=3.0,
                extra={"mean_hu": 260.0, "depth_mm": 1.5, "agatston_weight": np.int64(4)})
    cr = Lesion(id=2, series_instance_uid=CR_UID, centroid_index=[100, 220],
                layer="unknown", side="left", region="axilla", area_mm2=4.0, source="manual")
    return Findings(
        software={"name": "napari-calcinosis", "version": "0.1.0"},
        study={"study_instance_uid": "1.2.3", "modalities": ["CT", "CR"]},
        series=[SeriesEntry(CT_UID, "CT", "volume", [10, 64, 64], [2.5, 0.7, 0.7], 2.5),
                SeriesEntry(CR_UID, "CR", "radiograph", [512, 400], [0.2, 0.2], None,
                            "frontal")],
        lesions=[ct, cr],
        summary=Summary(lesion_count=1, total_volume_mm3=12.5, by_layer={"skin": 1},
                        by_region={"gluteal": 1}, by_side={"right": 1}, extent="localized",
                        form="circumscripta", symmetry=Symmetry(None, "insufficient")),
        warnings=["w"], parameters={"threshold_hu": 130.0},
    )


def test_schema_is_valid_draft_2020_12():
    schema = findings_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_contract_example_validates():
    validate_findings(CONTRACT_DOC)


def test_schema_vocabularies_match_the_model():
    defs = findings_schema()["$defs"]
    lesion = defs["lesion"]["properties"]
    assert lesion["layer"]["enum"] == list(fmod.LAYERS)
    assert lesion["side"]["enum"] == list(fmod.SIDES)
    assert lesion["region"]["enum"] == list(fmod.REGIONS)
    assert lesion["morphology"]["enum"] == list(fmod.MORPHOLOGIES)
    summary = defs["summary"]["properties"]
    assert summary["extent"]["enum"] == list(fmod.EXTENTS)
    assert summary["form"]["enum"] == list(fmod.FORMS)
    assert summary["symmetry"]["properties"]["call"]["enum"] == list(fmod.SYMMETRY_CALLS)
    # Every field of the model's summary is allowed by the (closed) summary schema.
    assert set(Summary().__dataclass_fields__) == set(summary)


def _broken(path: list, value) -> dict:
    doc = copy.deepcopy(CONTRACT_DOC)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize("path, value, where", [
    (["schema"], "napari-calcinosis/findings/v2", "/schema"),
    (["extra_top_level"], 1, "/"),
    (["summary", "extent"], "widespread", "/summary/extent"),
    (["summary", "by_layer", "bone"], 3, "/summary/by_layer"),
    (["summary", "symmetry", "index"], 1.5, "/summary/symmetry/index"),
    (["summary", "deep_involvement", "bone"], False, "/summary/deep_involvement"),
    (["summary", "incidental"], KeyError, "/summary"),
    (["lesions", 0, "layer"], "bone", "/lesions/0/layer"),
    (["lesions", 0, "region"], "thorax", "/lesions/0/region"),
    (["lesions", 0, "id"], 0, "/lesions/0/id"),
    (["lesions", 0, "centroid_mm"], None, "/lesions/0/centroid_mm"),
    (["lesions", 0, "morphology"], KeyError, "/lesions/0"),
    (["series", 0, "kind"], "stack", "/series/0/kind"),
    (["series", 0, "shape"], [256, 256], "/series/0/shape"),
    (["series", 0, "pixel_spacing"], [1, 1], "/series/0"),
    (["study", "patient_name"], "DOE^JOHN", "/study"),
    (["differential", 0, "diagnosis"], "gout", "/differential/0/diagnosis"),
    (["warnings", 0], 3, "/warnings/0"),
])
def test_schema_rejects_contract_violations(path, value, where):
    with pytest.raises(FindingsSchemaError) as info:
        validate_findings(_broken(path, value))
    assert f"at {where}" in str(info.value)


def test_lesions_accept_extra_measurements_and_radiograph_shape():
    doc = _broken(["lesions", 0, "mean_hu"], 240.0)
    doc["lesions"].append({
        "id": 2, "series_instance_uid": CR_UID, "source": "manual", "centroid_mm": None,
        "centroid_index": [100, 220], "volume_mm3": None, "area_mm2": 4.0, "peak_hu": None,
        "max_diameter_mm": 2.0, "layer": "unknown", "side": "right", "region": "axilla",
        "morphology": "punctate"})
    validate_findings(doc)
    doc["lesions"][1]["centroid_mm"] = [1.0, 2.0, 3.0]  # a radiograph has no mm centroid
    with pytest.raises(FindingsSchemaError, match="/lesions/1/centroid_mm"):
        validate_findings(doc)


def test_writer_output_is_schema_valid_and_plain(tmp_path):
    findings = make_findings()
    path = write_findings_json(findings, tmp_path)
    assert path == tmp_path / "findings.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(doc, findings_schema(), cls=jsonschema.Draft202012Validator)
    assert doc["lesions"][0]["volume_mm3"] == 12.5 and doc["lesions"][0]["peak_hu"] == 480
    assert doc["lesions"][0]["agatston_weight"] == 4
    assert doc["series"][1] == {"series_instance_uid": CR_UID, "modality": "CR",
                                "kind": "radiograph", "shape": [512, 400],
                                "spacing_mm": [0.2, 0.2], "slice_thickness_mm": None,
                                "view": "frontal"}
    assert doc["parameters"] == {"threshold_hu": 130.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["findings.json"]


def test_writer_refuses_invalid_findings_and_keeps_the_old_file(tmp_path):
    old = write_findings_json(make_findings(), tmp_path / "out.json").read_text(encoding="utf-8")
    bad = make_findings()
    bad.lesions[0].layer = "bone"
    with pytest.raises(FindingsSchemaError, match="/lesions/0/layer"):
        write_findings_json(bad, tmp_path / "out.json")
    nan = make_findings()
    nan.lesions[0].max_diameter_mm = float("nan")
    with pytest.raises(FindingsSchemaError, match="/lesions/0/max_diameter_mm"):
        findings_to_json(nan)
    assert (tmp_path / "out.json").read_text(encoding="utf-8") == old
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_lesions_csv_has_the_same_fields(tmp_path):
    findings = make_findings()
    path = write_lesions_csv(findings, tmp_path)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns = list(rows[0])
    assert columns == [*BASE_COLUMNS, "agatston_weight", "depth_mm", "mean_hu"]
    doc = json.loads(findings_to_json(findings))
    for row, lesion in zip(rows, doc["lesions"]):
        for key in ("id", "series_instance_uid", "source", "layer", "side", "region",
                    "morphology", "volume_mm3", "area_mm2", "peak_hu", "max_diameter_mm"):
            expected = "" if lesion[key] is None else lesion[key]
            assert row[key] == ("" if expected == "" else str(expected)) or (
                float(row[key]) == pytest.approx(expected)), key
    ct, cr = rows
    assert [float(ct[f"centroid_mm_{a}"]) for a in "xyz"] == [-40.0, 10.0, 150.5]
    assert [float(ct[f"centroid_index_{a}"]) for a in ("slice", "row", "column")] == [
        3.0, 20.5, 11.0]
    assert cr["centroid_index_slice"] == "" and cr["centroid_mm_x"] == ""
    assert (float(cr["centroid_index_row"]), float(cr["centroid_index_column"])) == (100, 220)
    assert ct["mean_hu"] == "260.0" and cr["mean_hu"] == ""


def test_empty_lesions_csv_is_header_only(tmp_path):
    findings = make_findings()
    findings.lesions = []
    path = write_lesions_csv(findings, tmp_path / "x.csv")
    assert path.read_text(encoding="utf-8") == ",".join(BASE_COLUMNS) + "\n"
