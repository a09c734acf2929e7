"""The CT confirmation of radiograph dots reaches the reader: a column of the report's lesion
list and of ``lesions.csv`` (radiograph rows only), and one sentence of the findings text.

Known answers on a hand-made study (a CT with three lesions, a frontal radiograph with five
dots: 2 confirmed, 2 not seen on CT, 1 outside the CT's coverage), so the file stays fast;
the link itself is tested in ``test_xray_ct_link.py``.
"""

from __future__ import annotations

import csv
import html

import pytest

from napari_calcinosis.report import build_report_content, write_lesions_csv
from napari_calcinosis.report._html import render_html
from napari_calcinosis.report._sections import ct_confirmation_sentences
from napari_calcinosis.types import Findings, Lesion, SeriesEntry, Summary

CT_UID, PA_UID, LAT_UID = "1.2.3.10", "1.2.3.20", "1.2.3.30"
PA_STATES = ["confirmed", "not_seen_on_ct", "confirmed", "outside_ct_coverage",
             "not_seen_on_ct"]


def _ct_lesion(lesion_id: int, dots: list[int]) -> Lesion:
    return Lesion(id=lesion_id, series_instance_uid=CT_UID, centroid_index=[5, 40, 60],
                  centroid_mm=[10.0, -90.0, 400.0], volume_mm3=12.0, peak_hu=600.0,
                  layer="subcutaneous", side="left", region="chest_wall_anterior",
                  extra={"radiograph_projection": {"series_instance_uid": PA_UID, "row": 10.0,
                                                   "col": 20.0, "inside_image": True},
                         "radiograph_lesion_ids": dots})


def _dot(lesion_id: int, uid: str, state: str, by: list[int]) -> Lesion:
    return Lesion(id=lesion_id, series_instance_uid=uid, centroid_index=[100.0, 200.0],
                  area_mm2=4.0, layer="unknown", side="right", region="chest_wall_anterior",
                  extra={"ct_confirmation": state, "confirmed_by_ct_lesions": by,
                         "ct_non_soft_tissue_lesions": []})


def linked_findings(states: list[str] = PA_STATES, *, lateral: bool = True) -> Findings:
    """CT lesions 1-3, frontal dots 4.., lateral dots (never assessed) after them."""
    series = [SeriesEntry(CT_UID, "CT", "volume", [40, 128, 128], [2.0, 1.0, 1.0], 2.0),
              SeriesEntry(PA_UID, "DX", "radiograph", [512, 512], [0.5, 0.5], view="frontal")]
    lesions = [_ct_lesion(1, [4]), _ct_lesion(2, [6]), _ct_lesion(3, [])]
    lesions += [_dot(4 + i, PA_UID, state, [1 + i // 2] if state == "confirmed" else [])
                for i, state in enumerate(states)]
    if lateral:
        series.append(SeriesEntry(LAT_UID, "DX", "radiograph", [512, 512], [0.5, 0.5],
                                  view="lateral"))
        lesions += [_dot(4 + len(states) + i, LAT_UID, "not_assessed", []) for i in range(2)]
    return Findings(software={"name": "napari-calcinosis", "version": "0"},
                    study={"study_instance_uid": "1.2.3", "modalities": ["CT", "DX"]},
                    series=series, lesions=lesions,
                    summary=Summary(lesion_count=3, total_volume_mm3=36.0, source="CT"))


def test_findings_text_says_how_many_dots_the_ct_confirms():
    findings = linked_findings()
    expected = ("Of 5 dots on the frontal radiograph, 2 are confirmed by CT lesions, 2 not "
                "seen on CT and 1 outside the CT's coverage.")
    assert ct_confirmation_sentences(findings) == [expected]  # the lateral: not assessed
    paragraphs = build_report_content(findings, None).section("findings").blocks[0].paragraphs
    assert expected in paragraphs
    assert html.escape(expected) in render_html(build_report_content(findings, None))


def test_one_confirmed_dot_reads_in_the_singular():
    findings = linked_findings(["confirmed"], lateral=False)
    assert ct_confirmation_sentences(findings) == [
        "Of 1 dot on the frontal radiograph, 1 is confirmed by CT lesions."]


@pytest.mark.parametrize("states", [["not_assessed"] * 3, []], ids=["refused", "no-dots"])
def test_no_sentence_without_an_accepted_link(states):
    assert ct_confirmation_sentences(linked_findings(states)) == []


def test_no_sentence_when_the_ct_shows_nothing_but_still_one_for_the_dots():
    findings = linked_findings(["not_seen_on_ct", "not_seen_on_ct"], lateral=False)
    findings.lesions = [les for les in findings.lesions if les.series_instance_uid != CT_UID]
    findings.summary = Summary(source="CT")
    paragraphs = build_report_content(findings, None).section("findings").blocks[0].paragraphs
    assert paragraphs[0] == "No soft-tissue calcification was detected on CT."
    assert "Of 2 dots on the frontal radiograph, 0 are confirmed by CT lesions and 2 not seen " \
           "on CT." in paragraphs


def test_lesion_list_has_the_confirmation_on_radiograph_rows_only():
    findings = linked_findings()
    (table,) = build_report_content(findings, None).section("lesions").blocks[0].tables
    assert table.header[-1] == "CT confirmation"
    cells = {int(row[0]): row[-1] for row in table.rows}
    assert all(cells[i] == "" for i in (1, 2, 3))
    assert [cells[i] for i in range(4, 9)] == [s.replace("_", " ") for s in PA_STATES]
    assert cells[9] == cells[10] == "not assessed"
    assert all(len(row) == len(table.header) for row in table.rows)


def test_lesion_list_has_no_confirmation_column_without_a_link():
    findings = linked_findings()
    for lesion in findings.lesions:
        lesion.extra.pop("ct_confirmation", None)
    (table,) = build_report_content(findings, None).section("lesions").blocks[0].tables
    assert "CT confirmation" not in table.header and len(table.header) == 10


def test_lesions_csv_has_the_confirmation_on_radiograph_rows_only(tmp_path):
    path = write_lesions_csv(linked_findings(), tmp_path)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = {int(row["id"]): row for row in csv.DictReader(handle)}
    assert [rows[i]["ct_confirmation"] for i in (1, 2, 3)] == ["", "", ""]
    assert [rows[i]["ct_confirmation"] for i in range(4, 9)] == PA_STATES
    assert rows[4]["confirmed_by_ct_lesions"] == "[1]"
    assert rows[1]["radiograph_lesion_ids"] == "[4]"
