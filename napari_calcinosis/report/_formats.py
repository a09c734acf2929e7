"""The output formats: one registry shared by the command line and the Report widget.

Each entry writes one format from the findings object (never from widgets):
``write(findings, out_dir, context) -> list of paths written``, where ``context`` is an
:class:`ExportContext` (the analysis result with images and label arrays, the anonymize
flag and its UID map, a progress callback). The HTML, PDF, DICOM and PNG writer modules are
imported only when used: WeasyPrint and highdicom are slow to import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_calcinosis.pipeline import AnalysisResult
from napari_calcinosis.types import Progress

from ._csv import write_lesions_csv
from ._json import write_findings_json

__all__ = ["CONTRACT_FORMATS", "OPT_IN_FORMATS", "WRITERS", "ExportContext", "FormatWriter",
           "default_formats", "formats_to_send"]

#: Every format the contract names, in the order they are written.
CONTRACT_FORMATS = ("json", "csv", "html", "pdf", "sr", "seg", "png", "sc")
#: Formats written only when named (``--send`` names ``sc`` when ``png`` is asked for).
OPT_IN_FORMATS = ("sc",)


@dataclass
class ExportContext:
    """Everything an exporter may need besides the findings.

    ``result`` is the analysis (the study's images, per-series label arrays, the clinical
    input and the differential); ``uid_map`` is shared by every writer of one anonymized
    export so that they name the same new UIDs.
    """

    result: AnalysisResult | None = None
    anonymize: bool = False
    uid_map: dict[str, str] = field(default_factory=dict)
    progress: Progress | None = None


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
    return [write_findings_json(findings, out_dir)]


def _csv(findings: Any, out_dir: Path, context: Any) -> list[Path]:
    return [write_lesions_csv(findings, out_dir)]


#: Format name -> writer, in the contract's order.
WRITERS: dict[str, FormatWriter] = {
    "json": FormatWriter("json", _json, "findings.json", "the findings, schema-validated"),
    "csv": FormatWriter("csv", _csv, "lesions.csv", "one row per lesion"),
    "html": FormatWriter("html", _lazy("_html", "write_html"), "report.html",
                         "the report, one self-contained HTML page"),
    "pdf": FormatWriter("pdf", _lazy("_pdf", "write_pdf"), "report.pdf",
                        "the report, paginated A4"),
    "sr": FormatWriter("sr", _lazy("dicom._sr", "write_sr"), "sr.dcm",
                       "DICOM Comprehensive 3D SR, TID 1500 (CT only)"),
    "seg": FormatWriter("seg", _lazy("dicom._seg", "write_seg"), "seg.dcm",
                        "DICOM SEG of the calcifications (CT only)"),
    "png": FormatWriter("png", _lazy("_key_images", "write_png"), "key images (PNG)",
                        "key images with the lesion overlay"),
    "sc": FormatWriter("sc", _lazy("dicom._sc", "write_sc"), "key images (DICOM)",
                       "the key images as DICOM Secondary Capture images of the study"),
}


def default_formats() -> list[str]:
    """The formats written when none are named: all of the contract's but the opt-in ones."""
    return [name for name in CONTRACT_FORMATS if name in WRITERS
            and name not in OPT_IN_FORMATS]


def formats_to_send(formats: list[str]) -> list[str]:
    """What an export sent to a PACS writes: ``formats``, plus the key images as DICOM
    (``sc``) when the key images (``png``) are among them."""
    if "png" in formats and "sc" not in formats:
        return [name for name in CONTRACT_FORMATS if name in formats or name == "sc"]
    return list(formats)
