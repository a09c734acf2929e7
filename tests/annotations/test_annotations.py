"""The reader's annotation record: model, JSON, storage, migration, matching across runs."""

from __future__ import annotations

import json
import sys

import jsonschema
import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_calcinosis import annotations as ann
from napari_calcinosis.annotations import (
    AnnotationFileError,
    AnnotationRecord,
    AnnotationStore,
    MatchParams,
    SeriesLabels,
    VoxelMask,
    apply,
    apply_to_findings,
    effective_summary,
    label_mask,
    record_from_json,
    record_to_json,
    rekey,
    summary_overrides,
    to_reader_marks,
)
from napari_calcinosis.clinical import parse_clinical
from napari_calcinosis.report import load_schema, validate_findings
from napari_calcinosis.summary import summarize
from napari_calcinosis.types import CTParams, Findings, Lesion, SeriesEntry
from napari_calcinosis.types.findings import (
    EXTENTS,
    FORMS,
    LAYERS,
    MORPHOLOGIES,
    REGIONS,
    SIDES,
    SYMMETRY_CALLS,
)

STUDY = "1.2.826.0.1.3680043.8.498.1"
SERIES = "1.2.826.0.1.3680043.8.498.2"
SPACING = (1.0, 0.8, 0.8)  # z, y, x mm
ORIGIN_XYZ = (-19.2, -19.2, 100.0)
SHAPE = (24, 48, 48)
CLINICAL = {"age": 54, "sex": "F",
            "labs": {"calcium": {"value": 2.3, "unit": "mmol/L"},
                     "ck": {"value": 150, "unit": "U/L", "upper_limit": 170}},
            "history": {"connective_tissue_disease": "none", "dialysis": False}}

# (name, centre z/y/x in voxels, amplitude HU above 40 HU, sigma mm). The faint blob "D" is
# first in raster order, so every other lesion's id shifts when it vanishes.
BLOBS = (("D", (4, 10, 10), 105.0, 1.6),
         ("A", (8, 14, 34), 420.0, 2.5),
         ("B", (12, 34, 12), 380.0, 2.5),
         ("C", (17, 36, 36), 400.0, 3.0))


def _volume() -> np.ndarray:
    z, y, x = np.indices(SHAPE, dtype=float)
    hu = np.full(SHAPE, 40.0)
    for _name, (cz, cy, cx), amp, sigma in BLOBS:
        r2 = (((z - cz) * SPACING[0]) ** 2 + ((y - cy) * SPACING[1]) ** 2
              + ((x - cx) * SPACING[2]) ** 2)
        hu += amp * np.exp(-r2 / (2 * sigma ** 2))
    return hu


def detect(threshold_hu: float) -> tuple[list[Lesion], np.ndarray]:
    """A tiny known-answer detector: connected components above a threshold."""
    labels, count = ndi.label(_volume() >= threshold_hu)
    lesions = []
    for value in range(1, count + 1):
        mask = labels == value
        k, i, j = ndi.center_of_mass(mask)
        volume = float(mask.sum() * np.prod(SPACING))
        x_mm = ORIGIN_XYZ[0] + j * SPACING[2]
        lesions.append(Lesion(
            id=value, series_instance_uid=SERIES, centroid_index=[k, i, j],
            centroid_mm=[x_mm, ORIGIN_XYZ[1] + i * SPACING[1], ORIGIN_XYZ[2] + k * SPACING[0]],
            volume_mm3=volume, max_diameter_mm=2 * (3 * volume / (4 * np.pi)) ** (1 / 3),
            layer="subcutaneous", side="left" if x_mm > 0 else "right",
            region="chest_wall_anterior" if i < 24 else "gluteal", morphology="nodular"))
    return lesions, labels.astype(np.int32)


def by_blob(lesions: list[Lesion]) -> dict[str, Lesion]:
    """Name the lesions after the blob whose centre they hold."""
    out = {}
    for name, centre, _amp, _sigma in BLOBS:
        near = [les for les in lesions
                if np.linalg.norm(np.subtract(les.centroid_index, centre)) < 1.5]
        if near:
            out[name] = near[0]
    return out


def findings_of(lesions: list[Lesion]) -> Findings:
    return Findings(software={"name": "napari-calcinosis", "version": "test"},
                    study={"study_instance_uid": STUDY, "modalities": ["CT"]},
                    series=[SeriesEntry(SERIES, "CT", "volume", list(SHAPE), list(SPACING))],
                    lesions=lesions, summary=summarize(lesions),
                    parameters=CTParams().to_dict())


def painted_lesion() -> tuple[Lesion, np.ndarray]:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[20:22, 5:9, 40:44] = True
    lesion = Lesion(id=0, series_instance_uid=SERIES, centroid_index=[20.5, 6.5, 41.5],
                    centroid_mm=[14.0, -14.0, 120.5], volume_mm3=float(mask.sum() * 0.64),
                    layer="skin", side="left", region="chest_wall_anterior",
                    morphology="sheet", source="manual")
    return lesion, mask


def edited_record(lesions, labels, *, with_labels=True) -> AnnotationRecord:
    blob = by_blob(lesions)
    record = AnnotationRecord(STUDY)
    kw = {"lesion_labels": labels} if with_labels else {}
    record.edit(blob["A"], layer="muscle", morphology="mass", **kw)
    record.reject(blob["B"], **kw)
    record.accept(blob["C"], **kw)
    record.edit(blob["D"], layer="fascia", **kw)
    record.add_manual(*painted_lesion())
    record.override_summary("extent", "generalized", auto="regional")
    record.override_region_symmetry("gluteal", "asymmetric", auto="symmetric")
    record.set_clinical(parse_clinical(CLINICAL))
    record.set_detection_parameters(CTParams(threshold_hu=130).to_dict())
    return record


# -- the detector stand-in behaves as the matching tests assume -------------------------------
def test_synthetic_runs_have_the_known_answer():
    low, _ = detect(100.0)
    base, _ = detect(130.0)
    high, _ = detect(160.0)
    assert sorted(by_blob(base)) == ["A", "B", "C", "D"]
    assert sorted(by_blob(high)) == ["A", "B", "C"]  # D vanishes
    assert sorted(by_blob(low)) == ["A", "B", "C", "D"]
    for name in "ABC":
        assert by_blob(low)[name].volume_mm3 > by_blob(base)[name].volume_mm3 \
            > by_blob(high)[name].volume_mm3
    assert by_blob(base)["A"].id != by_blob(high)["A"].id  # ids shift: no matching by id


# -- voxel masks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_voxel_mask_round_trip(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((9, 11, 13), dtype=bool)
    mask[2:7, 3:9, 1:12] = rng.random((5, 6, 11)) > 0.5
    mask[2, 3, 1] = seed == 1  # box may start inside or outside
    encoded = VoxelMask.from_bool(mask)
    assert np.array_equal(encoded.to_bool(), mask)
    assert encoded.voxel_count == mask.sum()
    assert np.array_equal(np.sort(encoded.flat_indices()), np.flatnonzero(mask))
    again = VoxelMask.from_dict(json.loads(json.dumps(encoded.to_dict())))
    assert again == encoded
    assert VoxelMask.from_bool(np.zeros((3, 3), bool)) is None


def test_voxel_mask_is_compact_and_checked():
    mask = np.zeros((64, 256, 256), dtype=bool)
    z, y, x = np.ogrid[:64, :256, :256]
    mask |= (z - 30) ** 2 + (y - 100) ** 2 + (x - 120) ** 2 <= 8 ** 2
    encoded = VoxelMask.from_bool(mask)
    assert len(json.dumps(encoded.to_dict())) < 4000 < mask.sum() * 4
    bad = encoded.to_dict() | {"runs": [*encoded.runs, 5]}
    with pytest.raises(ValueError, match="runs"):
        VoxelMask.from_dict(bad)
    with pytest.raises(ValueError, match="outside"):
        VoxelMask.from_dict(encoded.to_dict() | {"offset": [60, 0, 0]})


def test_label_mask_picks_one_label():
    _, labels = detect(130.0)
    for value in (1, int(labels.max())):
        assert np.array_equal(label_mask(labels, value).to_bool(), labels == value)
    assert label_mask(labels, int(labels.max()) + 1) is None


def test_batch_edit_stores_every_mask_in_one_pass():
    lesions, labels = detect(130.0)
    assert len(lesions) == 4  # more than 3: the find_objects path of label_masks
    shifted = [Lesion(**{**vars(les), "id": les.id + 20}) for les in lesions]
    record = AnnotationRecord(STUDY)
    record.edit(shifted, layer="skin", lesion_labels=labels, label_offset=20)
    assert len(record.decisions) == 4
    for lesion, decision in zip(lesions, record.decisions, strict=True):
        assert np.array_equal(decision.mask.to_bool(), labels == lesion.id)
        assert decision.overrides == {"layer": "skin"} and decision.key.lesion_id == lesion.id + 20
    record.reject(shifted[:2])
    assert [d.state for d in record.decisions] == ["rejected", "rejected", "unreviewed",
                                                   "unreviewed"]


# -- the record and its JSON form ----------------------------------------------------------------
def test_record_round_trip_through_json():
    lesions, labels = detect(130.0)
    record = edited_record(lesions, labels)
    text = record_to_json(record)
    doc = json.loads(text)
    assert doc["schema"] == "napari-calcinosis/annotations/v1" and doc["version"] == 1
    assert doc["study_instance_uid"] == STUDY
    assert doc["clinical"] == parse_clinical(CLINICAL).to_dict()
    assert doc["detection_parameters"]["threshold_hu"] == 130
    assert doc["summary_overrides"]["extent"] == {
        "value": "generalized", "auto": "regional", "modified": doc["summary_overrides"][
            "extent"]["modified"]}
    back = record_from_json(text)
    assert back == record
    assert record_to_json(back) == text
    assert back.clinical_input() == parse_clinical(CLINICAL)
    assert doc["created"].endswith("+00:00") and doc["modified"] >= doc["created"]


def test_schema_vocabularies_follow_the_findings_model():
    schema = load_schema("annotations_v1")
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$defs"]["overrides"]["properties"] == {
        name: {"enum": list(vocab)} for name, vocab in ann.EDITABLE_FIELDS.items()}
    fields = schema["$defs"]["auto"]["properties"]
    assert fields["layer"]["enum"] == list(LAYERS)
    assert fields["morphology"]["enum"] == list(MORPHOLOGIES)
    assert fields["side"]["enum"] == list(SIDES)
    assert fields["region"]["enum"] == list(REGIONS)
    overall = schema["properties"]["summary_overrides"]["properties"]
    assert overall["extent"]["properties"]["value"]["enum"] == list(EXTENTS)
    assert overall["form"]["properties"]["value"]["enum"] == list(FORMS)
    assert overall["symmetry_call"]["properties"]["value"]["enum"] == list(SYMMETRY_CALLS)


def test_editing_validates_and_returns_to_auto():
    lesions, labels = detect(130.0)
    record = AnnotationRecord(STUDY)
    a = by_blob(lesions)["A"]
    with pytest.raises(ValueError, match="layer must be one of"):
        record.edit(a, layer="bone")
    with pytest.raises(ValueError, match="cannot be edited"):
        record.edit(a, volume_mm3="3")
    with pytest.raises(ValueError, match="extent"):
        record.override_summary("extent", "everywhere")
    record.edit(a, layer="muscle", lesion_labels=labels)
    assert record.decisions[0].overrides == {"layer": "muscle"}
    assert record.decisions[0].auto["layer"] == "subcutaneous"
    assert record.decisions[0].mask.voxel_count == (labels == a.id).sum()
    record.edit(a, layer="subcutaneous")  # back to the automatic value: no override left
    assert record.decisions[0].overrides == {}
    assert len(record.decisions) == 1


# -- storage -------------------------------------------------------------------------------------
def test_restore_after_restart(tmp_path):
    lesions, labels = detect(130.0)
    record = edited_record(lesions, labels)
    store = AnnotationStore(tmp_path)
    path = store.save(record)
    assert path.parent == tmp_path and STUDY not in path.name
    assert path.name == ann.record_filename(STUDY) and len(path.stem) == 6 + 32
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", path.name]
    ann.validate_record_doc(json.loads(path.read_text(encoding="utf-8")))  # saves skip it

    reopened = AnnotationStore(tmp_path).open(STUDY)  # "restart": a new store object
    assert reopened == record and reopened.warnings == []
    assert AnnotationStore(tmp_path).load("1.2.3.999") is None
    fresh = AnnotationStore(tmp_path).open("1.2.3.999")
    assert fresh.is_empty and fresh.study_instance_uid == "1.2.3.999"


def test_default_root_and_store(tmp_path, monkeypatch):
    monkeypatch.setenv(ann.DATA_DIR_ENV, str(tmp_path / "data"))
    assert ann.default_root() == tmp_path / "data" / "annotations"
    assert ann.default_store().root == tmp_path / "data" / "annotations"
    monkeypatch.delenv(ann.DATA_DIR_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert ann.default_root() == tmp_path / "xdg" / "napari-calcinosis" / "annotations"


@pytest.mark.parametrize("content, reason", [
    (b'{"schema": "napari-calcinosis/annotations/v1", "version": 1, "stu', "not valid JSON"),
    (b"\xff\xfe\x00garbage", "cannot be read"),
    (b'{"version": 1, "schema": "napari-calcinosis/annotations/v1"}', "does not match"),
    (b'{"version": 7, "study_instance_uid": "x"}', "newer napari-calcinosis"),
    (b'[1, 2, 3]', "not a JSON object"),
])
def test_corrupt_file_is_moved_aside_with_a_warning(tmp_path, content, reason):
    store = AnnotationStore(tmp_path)
    path = store.path_for(STUDY)
    path.write_bytes(content)
    record = store.open(STUDY)
    assert record.is_empty
    assert len(record.warnings) == 1 and reason in record.warnings[0]
    assert "kept as" in record.warnings[0] and store.warnings == record.warnings
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == content  # kept, not overwritten
    assert not path.exists()
    record.override_summary("form", "universalis")
    store.save(record)
    assert store.load(STUDY) == record
    assert aside[0].read_bytes() == content


def test_read_only_load_leaves_an_unusable_file_in_place(tmp_path):
    store = AnnotationStore(tmp_path)
    path = store.path_for(STUDY)
    path.write_text("{", encoding="utf-8")
    assert store.load(STUDY, set_aside=False) is None
    assert "left as it is" in store.warnings[0] and path.read_text() == "{"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", path.name]


def test_invalid_clinical_in_a_record_is_set_aside(tmp_path):
    record = AnnotationRecord(STUDY)
    doc = json.loads(record_to_json(record))
    doc["clinical"] = {"labs": {"calcium": {"value": 9, "unit": "g/L"}}}
    store = AnnotationStore(tmp_path)
    store.path_for(STUDY).write_text(json.dumps(doc), encoding="utf-8")
    assert store.load(STUDY) is None
    assert "g/L" in store.warnings[0]


def test_a_record_of_another_study_is_not_used(tmp_path):
    store = AnnotationStore(tmp_path)
    other = AnnotationRecord("1.2.3.4")
    store.path_for(STUDY).write_text(record_to_json(other), encoding="utf-8")
    assert store.load(STUDY) is None and "another study" in store.warnings[0]


def test_export_and_import(tmp_path):
    lesions, labels = detect(130.0)
    record = edited_record(lesions, labels)
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    exported = AnnotationStore(tmp_path / "a").export(record, study_dir)
    assert exported == study_dir / "calcinosis-annotations.json"
    other = AnnotationStore(tmp_path / "b")
    earlier = AnnotationRecord(STUDY)
    earlier.override_summary("form", "circumscripta")
    other.save(earlier)
    imported = other.import_(exported)
    assert imported == record and other.load(STUDY) == record
    kept = [p for p in (tmp_path / "b").iterdir() if ".replaced-" in p.name]
    assert len(kept) == 1 and record_from_json(kept[0].read_text()) == earlier
    assert "kept as" in imported.warnings[0]
    broken = study_dir / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(AnnotationFileError, match="broken.json"):
        other.import_(broken)
    assert broken.read_text() == "{"  # an imported file is never moved


def test_stale_temp_files_are_cleaned(tmp_path):
    store = AnnotationStore(tmp_path)
    record = AnnotationRecord(STUDY)
    name = store.path_for(STUDY).name
    for n in range(3):  # what a writer killed mid-write leaves behind
        (tmp_path / f".{name}.dead{n}.tmp").write_text("{\"half", encoding="utf-8")
    (tmp_path / ".other.json.x.tmp").write_text("", encoding="utf-8")
    store.save(record)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".lock", ".other.json.x.tmp", name]
    (tmp_path / f".{name}.dead.tmp").write_text("", encoding="utf-8")
    assert AnnotationStore(tmp_path).load(STUDY) == record
    assert not (tmp_path / f".{name}.dead.tmp").exists()


# -- an older record version ---------------------------------------------------------------------
def v0_document(lesions: list[Lesion]) -> dict:
    """The first layout (see core.annotations_json): old key names, no voxels."""
    blob = by_blob(lesions)
    return {
        "version": 0, "study_uid": STUDY, "saved": "2024-03-01T10:00:00+00:00",
        "lesions": [
            {"series_uid": SERIES, "centroid_index": blob["A"].centroid_index,
             "centroid_mm": blob["A"].centroid_mm, "volume_mm3": blob["A"].volume_mm3,
             "layer": "muscle"},
            {"series_uid": SERIES, "centroid_index": blob["B"].centroid_index,
             "centroid_mm": blob["B"].centroid_mm, "volume_mm3": blob["B"].volume_mm3,
             "rejected": True}],
        "manual": [{"series_uid": SERIES, "centroid_index": [20, 6, 41],
                    "centroid_mm": [14.0, -14.0, 120.0], "volume_mm3": 20.0,
                    "layer": "skin", "side": "left", "region": "chest_wall_anterior"}],
        "symmetry": "symmetric",
        "clinical": {"age": 61, "labs": {"phosphate": {"value": 1.1, "unit": "mmol/L"}}},
        "params": {"threshold_hu": 130},
    }


def test_old_version_record_loads(tmp_path):
    lesions, labels = detect(130.0)
    store = AnnotationStore(tmp_path)
    store.path_for(STUDY).write_text(json.dumps(v0_document(lesions)), encoding="utf-8")
    record = store.open(STUDY)
    assert any("version 0 was migrated" in w for w in record.warnings)
    assert record.summary_overrides["symmetry_call"].value == "symmetric"
    assert record.clinical_input().lab_value("phosphate", "mmol/L") == pytest.approx(1.1)
    assert record.detection_parameters == {"threshold_hu": 130}
    applied = apply(record, lesions, labels)
    blob = by_blob(applied.lesions)
    assert "B" not in blob and blob["A"].layer == "muscle" and blob["A"].source == "manual"
    assert [les.layer for les in applied.lesions if les.extra.get("annotation_uid")] == ["skin"]
    store.save(record)  # written back in the current version
    assert json.loads(store.path_for(STUDY).read_text())["version"] == 1
    assert not [p for p in tmp_path.iterdir() if "corrupt" in p.name]


# -- matching across re-runs ---------------------------------------------------------------------
@pytest.mark.parametrize("with_labels, how", [(True, "overlap"), (False, "centroid")])
def test_decisions_survive_a_rerun_with_another_threshold(with_labels, how):
    lesions, labels = detect(130.0)
    record = edited_record(lesions, labels, with_labels=with_labels)
    new_lesions, new_labels = detect(160.0)
    applied = apply(record, new_lesions, new_labels)
    blob = by_blob(applied.lesions)
    assert "B" not in blob and "D" not in blob  # B rejected, D vanished
    assert blob["A"].layer == "muscle" and blob["A"].morphology == "mass"
    assert blob["A"].source == "manual" and blob["A"].extra["auto_layer"] == "subcutaneous"
    assert blob["A"].id == by_blob(new_lesions)["A"].id  # an edit keeps the id
    assert blob["C"].source == "auto" and blob["C"].extra["reader_accepted"] is True
    assert [d.auto["layer"] for d in applied.orphaned] == ["subcutaneous"]
    assert applied.orphaned[0].overrides == {"layer": "fascia"}  # D's decision, kept
    assert applied.warnings and "1 of the reader's lesion decisions" in applied.warnings[0]
    assert set(applied.match.how.values()) == {how}
    manual = [les for les in applied.lesions if "annotation_uid" in les.extra]
    assert [m.id for m in manual] == [max(les.id for les in new_lesions) + 1]
    assert [les.id for les in applied.rejected] == [by_blob(new_lesions)["B"].id]


def test_overlap_matching_when_lesions_grow():
    lesions, labels = detect(130.0)
    record = edited_record(lesions, labels)
    grown, grown_labels = detect(100.0)
    match = ann.match_decisions(record, grown, grown_labels)
    names = {d.uid: n for d, n in zip(record.decisions, "ABCD", strict=True)}
    got = {names[uid]: lid for uid, lid in match.matched.items()}
    assert got == {n: les.id for n, les in by_blob(grown).items()}
    assert match.orphaned == [] and set(match.how.values()) == {"overlap"}


def test_voxels_decide_alone_when_known():
    lesions, labels = detect(130.0)
    record = AnnotationRecord(STUDY)
    record.edit(by_blob(lesions)["D"], layer="skin", lesion_labels=labels)
    new_lesions, new_labels = detect(160.0)
    # A lesion appears right next to where D was, not overlapping it: voxels say "not D".
    a = by_blob(new_lesions)["A"]
    moved = Lesion(**{**vars(a), "id": 99, "centroid_index": [4, 10, 14],
                      "centroid_mm": list(np.add(by_blob(lesions)["D"].centroid_mm,
                                                 [2.0, 0, 0]))})
    assert ann.match_decisions(record, [moved]).matched  # without labels: centroid says yes
    assert not ann.match_decisions(record, [*new_lesions, moved], new_labels).matched


def test_rekey_follows_a_chain_of_reruns():
    lesions, labels = detect(130.0)
    record = edited_record(lesions, labels)
    for threshold in (160.0, 190.0):
        new_lesions, new_labels = detect(threshold)
        match = rekey(record, new_lesions, new_labels)
        assert sorted(match.matched.values()) == sorted(
            by_blob(new_lesions)[n].id for n in "ABC")
    orphan = [d for d in record.decisions if d.orphaned]
    assert len(orphan) == 1 and orphan[0].overrides == {"layer": "fascia"}
    a = by_blob(new_lesions)["A"]
    assert record.decision_for(a).overrides == {"layer": "muscle", "morphology": "mass"}
    assert record.decision_for(a).mask.voxel_count == (new_labels == a.id).sum()
    # the orphan comes back when a later run finds its lesion again
    back, back_labels = detect(130.0)
    assert rekey(record, back, back_labels).orphaned == []
    stamp = record.modified = "2000-01-01T00:00:00.000+00:00"
    rekey(record, back, back_labels)  # the same run again: nothing changes
    assert record.modified == stamp


def test_radiograph_matching_by_index_with_spacing():
    uid = "1.2.3.77"
    old = Lesion(id=1, series_instance_uid=uid, centroid_index=[100.0, 200.0],
                 area_mm2=4.0, max_diameter_mm=2.0)
    record = AnnotationRecord(STUDY)
    record.edit(old, layer="skin")
    near = Lesion(id=5, series_instance_uid=uid, centroid_index=[102.0, 203.0], area_mm2=5.0)
    assert ann.match_decisions(record, [near], spacing_mm={uid: [0.2, 0.2]}).matched == {
        record.decisions[0].uid: 5}
    assert ann.match_decisions(record, [near], spacing_mm={uid: [1.0, 1.0]}).matched == {}
    other_series = Lesion(id=6, series_instance_uid="9.9", centroid_index=[100.0, 200.0])
    assert ann.match_decisions(record, [other_series]).matched == {}


# -- rejected lesions, counts, restore, manual lesions -------------------------------------------
def test_rejected_lesions_leave_the_counts_and_restore_brings_them_back():
    lesions, labels = detect(130.0)
    findings = findings_of(lesions)
    assert findings.summary.lesion_count == 4
    record = AnnotationRecord(STUDY)
    b = by_blob(lesions)["B"]
    record.reject(b, lesion_labels=labels)
    out, applied = apply_to_findings(findings, record, lesion_labels=labels)
    assert out.summary.lesion_count == 3 and b.id not in [les.id for les in out.lesions]
    assert out.summary.by_region == {"chest_wall_anterior": 2, "gluteal": 1}
    assert not (applied.lesion_labels == b.id).any() and (labels == b.id).any()
    assert out.parameters["annotations"]["rejected_lesions"] == 1
    validate_findings(json.loads(json.dumps(out.to_json_dict())))
    assert findings.summary.lesion_count == 4 and len(findings.lesions) == 4  # untouched

    assert record.restore(applied.rejected[0])
    out, applied = apply_to_findings(findings, record, lesion_labels=labels)
    assert out.summary.lesion_count == 4 and applied.rejected == []
    assert not record.restore(b)  # nothing rejected any more


def test_manual_painted_lesion_survives_a_restart(tmp_path):
    lesions, labels = detect(130.0)
    record = AnnotationRecord(STUDY)
    lesion, mask = painted_lesion()
    uid = record.add_manual(lesion, mask)
    AnnotationStore(tmp_path).save(record)
    reloaded = AnnotationStore(tmp_path).load(STUDY)
    stored = reloaded.manual_for(uid)
    assert np.array_equal(stored.mask.to_bool(), mask)
    applied = apply(reloaded, lesions, labels)
    manual = applied.lesions[-1]
    assert manual.extra["annotation_uid"] == uid and manual.source == "manual"
    assert manual.id == len(lesions) + 1 and manual.layer == "skin"
    assert np.array_equal(applied.lesion_labels == manual.id, mask)
    # edit, reject and restore a manual lesion through its effective copy
    reloaded.edit(manual, morphology="nodular")
    reloaded.reject(manual)
    assert apply(reloaded, lesions, labels).rejected[0].morphology == "nodular"
    assert not (apply(reloaded, lesions, labels).lesion_labels == manual.id).any()
    assert reloaded.restore(manual)
    assert reloaded.remove_manual(uid) and reloaded.manual_lesions == []


def test_manual_lesions_in_a_multi_series_label_mapping():
    lesions, labels = detect(130.0)
    record = AnnotationRecord(STUDY)
    record.add_manual(*painted_lesion())
    offset_lesions = [Lesion(**{**vars(les), "id": les.id + 10}) for les in lesions]
    applied = apply(record, offset_lesions, {SERIES: SeriesLabels(labels, id_offset=10)})
    item = applied.lesion_labels[SERIES]
    manual = applied.lesions[-1]
    assert manual.id == 10 + len(lesions) + 1
    assert np.array_equal(item.labels == manual.id - 10, painted_lesion()[1])
    with pytest.raises(ValueError, match="mapping"):
        apply(record, [*lesions, Lesion(id=9, series_instance_uid="x", centroid_index=[0, 0])],
              labels)


# -- summary overrides ---------------------------------------------------------------------------
def test_summary_overrides_stay_beside_the_automatic_values():
    lesions, labels = detect(130.0)
    findings = findings_of(lesions)
    record = edited_record(lesions, labels)
    out, _ = apply_to_findings(findings, record, lesion_labels=labels)
    assert out.summary.extent == "generalized"
    region = out.summary.symmetry.by_region["gluteal"]
    assert region["call"] == "asymmetric" and region["call_source"] == "reader"
    overrides = out.parameters["annotations"]["summary_overrides"]
    assert overrides["extent"]["reader"] == "generalized"
    auto_extent = summarize(apply(record, lesions, labels).lesions).extent
    assert overrides["extent"]["auto"] == auto_extent
    assert overrides["by_region"]["gluteal"] == {"reader": "asymmetric", "auto": "symmetric"}
    plain = summary_overrides(record)
    assert plain["extent"] == {"reader": "generalized", "auto": "regional"}
    same = effective_summary(findings.summary, AnnotationRecord(STUDY))
    assert same == findings.summary
    record.override_summary("extent", None)
    record.override_region_symmetry("gluteal", None)
    assert summary_overrides(record) == {"by_region": {}}


def test_match_params_are_used():
    lesions, _ = detect(130.0)
    record = AnnotationRecord(STUDY)
    d = by_blob(lesions)["D"]
    record.edit(d, layer="skin")
    shifted = Lesion(**{**vars(d), "id": 3, "volume_mm3": 1.0,
                        "centroid_mm": list(np.add(d.centroid_mm, [0, 0, 4.0]))})
    assert ann.match_decisions(record, [shifted]).matched == {}
    wide = MatchParams(min_tolerance_mm=5.0)
    assert ann.match_decisions(record, [shifted], params=wide).how == {
        record.decisions[0].uid: "centroid"}


def test_reader_marks_for_the_classifier_agree_with_apply():
    from napari_calcinosis.classify import ReaderMarks, apply_marks

    lesions, labels = detect(130.0)
    record = edited_record(lesions, labels)
    record.override_summary("symmetry_call", "symmetric", auto="insufficient")
    new_lesions, new_labels = detect(160.0)
    findings = findings_of(new_lesions)
    marks = to_reader_marks(record, new_lesions, new_labels)
    assert isinstance(marks, ReaderMarks)
    blob = by_blob(new_lesions)
    assert marks.layers == {blob["A"].id: "muscle"}  # D's decision is orphaned: no mark
    assert marks.morphologies == {blob["A"].id: "mass"}
    assert marks.rejected == {blob["B"].id}
    assert [les.layer for les in marks.added] == ["skin"]
    assert (marks.extent, marks.form, marks.symmetry_call) == (
        "generalized", None, "symmetric")

    by_classifier = apply_marks(findings, marks)
    ours, _ = apply_to_findings(findings, record, lesion_labels=new_labels)

    def rows(items):
        return sorted((les.id, les.layer, les.morphology, les.source) for les in items)

    assert rows(by_classifier.lesions) == rows(ours.lesions)
    for name in ("lesion_count", "by_layer", "by_region", "extent", "form"):
        assert getattr(by_classifier.summary, name) == getattr(ours.summary, name), name
    assert by_classifier.summary.symmetry.call == ours.summary.symmetry.call == "symmetric"
    assert ours.summary.form == "universalis"  # follows the reader's extent
