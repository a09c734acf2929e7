"""The output formats: one registry shared by the command line and the Report widget.

Each entry writes one format from the findings object (never from widgets):
``write(findings, out_dir, context) -> list of paths written``, where ``context`` is an
``analysis.ExportContext`` (the analysis result with images and label arrays, the anonymize
flag and its UID map, a progress callback). Writer modules are imported only when used: the
PDF and DICOM writers are heavy to import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CONTRACT_FORMATS", "FormatWriter", "WRITERS", "default_formats"]

#: Every format the contract names, in the order they are written.
CONTRACT_FORMATS = ("json", "csv", "html", "pdf", "sr", "seg", "png")


@dataclass(frozen=True)
class FormatWriter:
    """One output format.

    ``files`` names what it writes, for messages (``"findings.json"``, ``"key images (PNG)"``).
    """

    name: str
    write: Callable[[Any, Path, Any], list[Path]]
    files: str
    description: str


def _lazy(module: str, function: str) -> Callable[[Any, Path, Any], list[Path]]:
    def write(findings: Any, out_dir: Path, context: Any) -> list[Path]:
        writer = getattr(importlib.import_module(f"{__package__}.{module}"), function)
        written = writer(findings, out_dir, context)
        return list(written) if isinstance(written, list) else [written]

    write.__name__ = f"write_{function}"
    return write


def _json(findings: Any, out_dir: Path, context: Any) -> list[Path]:
    from .json_report import write_findings_json

    return [write_findings_json(findings, out_dir)]


def _csv(findings: Any, out_dir: Path, context: Any) -> list[Path]:
    from .csv_report import write_lesions_csv

    return [write_lesions_csv(findings, out_dir)]


#: Format name -> writer, in the contract's order.
WRITERS: dict[str, FormatWriter] = {
    "json": FormatWriter("json", _json, "findings.json", "the findings, schema-validated"),
    "csv": FormatWriter("csv", _csv, "lesions.csv", "one row per lesion"),
    "html": FormatWriter("html", _lazy("html_report", "write_html"), "report.html",
                         "the report, one self-contained HTML page"),
    "pdf": FormatWriter("pdf", _lazy("pdf_report", "write_pdf"), "report.pdf",
                        "the report, paginated A4"),
    "sr": FormatWriter("sr", _lazy("dicom_sr", "write_sr"), "sr.dcm",
                       "DICOM Comprehensive 3D SR, TID 1500 (CT only)"),
    "seg": FormatWriter("seg", _lazy("dicom_seg", "write_seg"), "seg.dcm",
                        "DICOM SEG of the calcifications (CT only)"),
    "png": FormatWriter("png", _lazy("key_images", "write_png"), "key images (PNG)",
                        "key images with the lesion overlay"),
}


def default_formats() -> list[str]:
    """The formats written when none are named: all of the contract's."""
    return [name for name in CONTRACT_FORMATS if name in WRITERS]
