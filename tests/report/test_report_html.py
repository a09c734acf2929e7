"""report.html: every section, self-contained, numbers equal to findings.json, key images."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from report_study import export_context, make_result

from napari_calcinosis.report import SECTION_TITLES, build_report_content, write_findings_json
from napari_calcinosis.report._html import render_html, write_html
from napari_calcinosis.report._key_images import write_png
from napari_calcinosis.types import Findings


class _Tables(HTMLParser):
    """Collects sections (id -> h2 title), tables by data-key, images and links."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.external: list[str] = []
        self._section = self._table = None
        self._cell: list[str] | None = None
        self._in_h2 = False
        self.h3: list[str] = []
        self._in_h3 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = attrs.get("id")
        elif tag == "h2":
            self._in_h2, self.sections[self._section] = True, ""
        elif tag == "h3":
            self._in_h3 = True
            self.h3.append("")
        elif tag == "table":
            self._table = attrs.get("data-key", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            if value and not value.startswith("data:"):
                self.external.append(value)

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False
        elif tag == "h3":
            self._in_h3 = False
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._in_h2:
            self.sections[self._section] += data
        if self._in_h3:
            self.h3[-1] += data
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    result = make_result(tmp_path_factory.mktemp("study"))
    out = tmp_path_factory.mktemp("out")
    findings, context = export_context(result)
    (path,) = write_html(findings, out, context)
    doc = json.loads(write_findings_json(findings, out).read_text())
    parser = _Tables()
    text = path.read_text(encoding="utf-8")
    parser.feed(text)
    return {"path": path, "text": text, "doc": doc, "parsed": parser, "result": result,
            "out": out, "findings": findings, "context": context}


def test_every_section_present_in_order(report):
    assert list(report["parsed"].sections.items()) == list(SECTION_TITLES.items())
    assert "Decision support, not a diagnosis" in report["text"]


def test_self_contained_with_embedded_key_images(report):
    parsed = report["parsed"]
    assert parsed.external == []
    assert len(parsed.images) == 3  # CT coronal MIP, CT axial slab, frontal radiograph
    assert all(src.startswith("data:image/png;base64,") for src in parsed.images)
    assert report["text"].count("<svg") == 2  # colour key and symmetry chart
    assert "@page" in report["text"] and "A4" in report["text"]


def test_region_layer_table_equals_findings_json(report):
    doc, rows = report["doc"], report["parsed"].tables["region_layer"]
    header, body, total = rows[0], rows[1:-1], rows[-1]
    summary = doc["summary"]
    assert summary["lesion_count"] > 0
    assert total[0] == "Total"
    assert int(total[-2].split()[0]) == summary["lesion_count"]
    assert total[-1] == f"{summary['total_volume_mm3']:.1f}"
    layers = [h.replace(" ", "_") for h in header[1:-2]]
    for layer, cell in zip(layers, total[1:-2]):
        assert int(cell.split()[0]) == summary["by_layer"][layer]
    for row in body:
        assert int(row[-2].split()[0]) == summary["by_region"][row[0].replace(" ", "_")]
    side_counts = {s: 0 for s in "LRM"}
    for count, side in re.findall(r"(\d+) ([LRM])", total[-2]):
        side_counts[side] += int(count)
    assert side_counts["L"] == summary["by_side"].get("left", 0)
    assert side_counts["R"] == summary["by_side"].get("right", 0)


def test_lesion_list_equals_findings_json(report):
    rows = report["parsed"].tables["lesions"][1:]
    lesions = {les["id"]: les for les in report["doc"]["lesions"]}
    assert sorted(int(r[0]) for r in rows) == sorted(lesions)
    for row in rows:
        les = lesions[int(row[0])]
        size = les["volume_mm3"] if les["volume_mm3"] is not None else les["area_mm2"]
        assert row[7] == f"{size:.1f}"
        assert row[3] == les["region"].replace("_", " ")
        assert row[5] == les["side"]
        if les["peak_hu"] is not None:
            assert row[9] == f"{les['peak_hu']:.0f}"


def test_differential_ranked_with_reasons(report):
    headings = report["parsed"].h3
    differential = report["doc"]["differential"]
    assert len(headings) == len(differential) > 0
    for heading, item in zip(headings, differential):
        assert heading.endswith(f"score {item['score']:.2f}")
    assert "Supporting:" in report["text"] and "Missing:" in report["text"]


def test_clinical_input_technique_and_recommendations(report):
    text, tables = report["text"], report["parsed"].tables
    assert [r[0] for r in tables["labs"][1:]] == ["calcium", "CK"]
    for row in tables["labs"][1:]:  # numbers as a reader writes them: no exponent
        assert "e+" not in row[1] and "e+" not in row[2] and not row[2].startswith("–")
    assert "Labs not given: phosphate, PTH, creatinine, eGFR, aldolase." in text
    assert "Connective-tissue disease: systemic sclerosis" in text
    technique = tables["technique"]
    assert technique[1][1] == "CT" and technique[1][3] == "5 mm"
    assert "STANDARD" in technique[1][4] and technique[1][5] == "120"
    assert "CT calcium threshold 130 HU" in text
    assert "Rheumatology review" in text  # systemic sclerosis was given
    assert "Obtain the missing labs" in text and "Biopsy" in text
    assert "None available." in text  # comparison


def test_png_writer_names_carry_no_patient_data(report, tmp_path):
    paths = write_png(report["findings"], tmp_path, report["context"])
    names = sorted(p.name for p in paths)
    assert names == ["key_ct_axial_slab.png", "key_ct_coronal_mip.png",
                     "key_radiograph_frontal.png"]
    import imageio.v3 as iio

    axial = iio.imread(tmp_path / "key_ct_axial_slab.png")
    assert axial.ndim == 3 and axial.shape[2] == 3 and max(axial.shape[:2]) >= 512
    # lesion overlay: pixels in the subcutaneous layer's colour (#ffd500) are present
    assert np.any(np.all(np.abs(axial.astype(int) - [255, 213, 0]) < 8, axis=2))


def test_report_without_lesions_or_context():
    findings = Findings(software={"name": "napari-calcinosis", "version": "0"},
                        study={"study_instance_uid": "1.2.3", "modalities": ["CT"]})
    text = render_html(build_report_content(findings, None))
    parser = _Tables()
    parser.feed(text)
    assert list(parser.sections) == list(SECTION_TITLES)
    assert "No soft-tissue calcification was detected" in text
    assert "no differential" in text


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")
def test_headless_chromium_renders_the_page(report, tmp_path):
    shot = tmp_path / "page.png"
    run = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,2400",
         f"--screenshot={shot}", report["path"].as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.exists(), run.stderr[-2000:]
    import imageio.v3 as iio

    image = iio.imread(shot)
    assert image.shape[:2] == (2400, 1000)
    assert image[..., :3].std() > 20  # text, tables and images drawn, not a blank page


def test_lab_values_are_shown_as_given_with_their_conversion():
    from napari_calcinosis.clinical import parse_clinical
    from napari_calcinosis.report._sections import indication, reading_number

    assert [reading_number(v) for v in (1850.0, 8.818, 0.01234, 200.0)] == \
        ["1850", "8.82", "0.0123", "200"]
    clinical = parse_clinical({"labs": {"calcium": {"value": 2.2, "unit": "mmol/L"},
                                        "ck": {"value": 1850, "unit": "U/L",
                                               "upper_limit": 200}}})
    (block,) = indication(clinical)
    rows = {row[0]: row for row in block.tables[0].rows}
    assert rows["calcium"][1] == "2.2 mmol/L (= 8.82 mg/dL)"
    assert rows["CK"][1] == "1850 U/L"
    assert rows["CK"][2].startswith("up to 200 U/L") or "–200 U/L" in rows["CK"][2]


def test_sex_or_age_that_disagree_with_the_images_are_said(tmp_path):
    """The real slab says PatientSex M; a clinical input of a woman of 54 is flagged."""
    from pathlib import Path

    from napari_calcinosis.run import run_analysis

    slab = Path(__file__).resolve().parents[1] / "data" / "realct" / \
        "pancreas-ct-cbct-seg-001-slab8"
    run_analysis(slab, tmp_path / "f", formats=["json", "html"], use_annotations=False,
                 clinical_data={"age": 54, "sex": "F"})
    html = (tmp_path / "f" / "report.html").read_text(encoding="utf-8")
    assert "Check the patient: sex M in the images, F in the clinical input" in html
    run_analysis(slab, tmp_path / "m", formats=["json", "html"], use_annotations=False,
                 clinical_data={"age": 54, "sex": "M"})
    assert "Check the patient" not in (tmp_path / "m" / "report.html").read_text("utf-8")
