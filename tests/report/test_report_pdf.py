"""report.pdf: rendered without a browser, paginated A4, same sections and numbers as the JSON."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from report_study import export_context, make_result

from napari_calcinosis.report import SECTION_TITLES, write_findings_json

pytest.importorskip("weasyprint", reason="WeasyPrint (and Pango) are needed for report.pdf")
PDFTOTEXT = shutil.which("pdftotext")
PDFTOPPM = shutil.which("pdftoppm")
needs_poppler = pytest.mark.skipif(PDFTOTEXT is None or PDFTOPPM is None,
                                   reason="poppler-utils (pdftotext, pdftoppm) not installed")


@pytest.fixture(scope="module")
def pdf(tmp_path_factory):
    from napari_calcinosis.report._pdf import write_pdf

    result = make_result(tmp_path_factory.mktemp("study"))
    out = tmp_path_factory.mktemp("out")
    findings, context = export_context(result)
    (path,) = write_pdf(findings, out, context)
    doc = json.loads(write_findings_json(findings, out).read_text())
    text = ""
    if PDFTOTEXT:
        text = subprocess.run([PDFTOTEXT, "-layout", str(path), "-"], capture_output=True,
                              text=True, check=True).stdout
    return {"path": path, "doc": doc, "text": text, "out": out}


@needs_poppler
def test_pdf_is_a_paginated_a4_document(pdf):
    assert pdf["path"].read_bytes().startswith(b"%PDF-")
    info = subprocess.run([shutil.which("pdfinfo") or "pdfinfo", str(pdf["path"])],
                          capture_output=True, text=True, check=True).stdout
    assert int(re.search(r"Pages:\s+(\d+)", info).group(1)) >= 2
    width, height = (float(v) for v in re.search(r"Page size:\s+([\d.]+) x ([\d.]+)",
                                                  info).groups())
    assert width == pytest.approx(595.3, abs=1) and height == pytest.approx(841.9, abs=1)
    assert "Soft-tissue calcification report" in info  # the title, nothing identifying


@needs_poppler
def test_every_section_and_the_disclaimer_in_the_text(pdf):
    text = pdf["text"]
    for title in SECTION_TITLES.values():
        assert title in text, title
    assert "Decision support, not a diagnosis" in text
    assert re.search(r"page 1 of \d+", text)


@needs_poppler
def test_numbers_equal_findings_json(pdf):
    text, summary = pdf["text"], pdf["doc"]["summary"]
    assert (f"{summary['lesion_count']} soft-tissue calcifications on CT, total volume "
            f"{summary['total_volume_mm3']:.1f} mm³") in text
    total = next(line for line in text.splitlines() if line.strip().startswith("Total"))
    assert f"{summary['lesion_count']} (" in total
    assert total.split()[-1] == f"{summary['total_volume_mm3']:.1f}"
    for item in pdf["doc"]["differential"]:
        assert f"score {item['score']:.2f}" in text
    lesion_lines = {int(m.group(1)): m.group(0) for m in
                    re.finditer(r"^\s*(\d+)\s+(CT|DX)\s+auto\s.*$", text, re.M)}
    for les in pdf["doc"]["lesions"]:
        size = les["volume_mm3"] if les["volume_mm3"] is not None else les["area_mm2"]
        assert f"{size:.1f}" in lesion_lines[les["id"]]


@needs_poppler
def test_pages_render_to_png_with_content(pdf, tmp_path):
    subprocess.run([PDFTOPPM, "-r", "40", "-png", "-f", "1", "-l", "3", str(pdf["path"]),
                    str(tmp_path / "page")], check=True, capture_output=True)
    import imageio.v3 as iio

    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 3
    for page in pages:
        image = iio.imread(page)
        assert image.shape[0] > image.shape[1]  # portrait
        assert image.std() > 10  # not blank
