"""``report.pdf``: the HTML report paginated on A4 by WeasyPrint (no browser needed).

The PDF renders exactly the page of :mod:`.html_report` (same content model, same print
style sheet, page numbers in the bottom margin), so both formats say the same thing.
WeasyPrint needs Pango at run time (Debian: ``libpango-1.0-0 libpangoft2-1.0-0``); when it
cannot be loaded the writer raises a :class:`~napari_calcinosis.types.errors.CalcinosisError`
that names what is missing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from napari_calcinosis.files import atomic_write_bytes
from napari_calcinosis.types import CalcinosisError, Findings

from ._blocks import ReportContent
from ._content import build_report_content
from ._html import render_html

__all__ = ["PDF_FILENAME", "render_pdf", "write_pdf"]

PDF_FILENAME = "report.pdf"


def _weasyprint() -> Any:
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: the Pango libraries are missing
        raise CalcinosisError(
            "Cannot write report.pdf: WeasyPrint could not be loaded (install the Python "
            "package 'weasyprint' and the system libraries libpango-1.0-0 and "
            f"libpangoft2-1.0-0): {exc}.") from exc
    # WeasyPrint logs every CSS property it ignores; the report's CSS is fixed, so quiet it.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    return weasyprint


def render_pdf(content: ReportContent) -> bytes:
    """The report as PDF bytes (A4, paginated)."""
    weasyprint = _weasyprint()
    document = weasyprint.HTML(string=render_html(content), base_url=None)
    return document.write_pdf()


def write_pdf(findings: Findings, out_dir: str | Path, context: Any = None) -> list[Path]:
    """Format writer ``pdf``: ``report.pdf`` in ``out_dir``, written atomically."""
    pdf = render_pdf(build_report_content(findings, context))
    return [atomic_write_bytes(Path(out_dir) / PDF_FILENAME, pdf)]
