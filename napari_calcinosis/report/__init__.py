"""Findings -> the files a radiologist files: HTML and PDF report, JSON, CSV, DICOM SR and SEG.

Every writer works from the findings object (never from widgets) plus an
:class:`ExportContext` (the analysis with its images and label arrays, the anonymize flag).
:data:`WRITERS` is the one registry of formats the command line and the Report panel share
(:mod:`._formats`). The report's content is built once (:mod:`._content`, its sections in
:mod:`._sections`, its model in :mod:`._blocks`) and rendered as HTML (:mod:`._html`) and
PDF (:mod:`._pdf`); ``findings.json`` (:mod:`._json`) and ``lesions.csv`` (:mod:`._csv`) are
the contract's documents; key images (:mod:`._key_images`, and as DICOM Secondary
Capture in :mod:`.dicom`); the DICOM objects live in
:mod:`.dicom`. Anonymization (:mod:`._anonymize`) is shared by every writer of one export.
"""

from ._anonymize import anonymize_findings, anonymize_header, ensure_anonymous_findings
from ._blocks import Block, Figure, ReportContent, Section, Table
from ._content import SECTION_TITLES, build_report_content
from ._csv import BASE_COLUMNS, LESIONS_FILENAME, write_lesions_csv
from ._formats import (
    CONTRACT_FORMATS,
    OPT_IN_FORMATS,
    WRITERS,
    ExportContext,
    FormatWriter,
    default_formats,
    formats_to_send,
)
from ._json import (
    FINDINGS_FILENAME,
    FindingsSchemaError,
    findings_schema,
    findings_to_json,
    load_schema,
    validate_findings,
    write_findings_json,
)

__all__ = ["BASE_COLUMNS", "CONTRACT_FORMATS", "FINDINGS_FILENAME", "LESIONS_FILENAME",
           "OPT_IN_FORMATS", "formats_to_send",
           "SECTION_TITLES", "WRITERS", "Block", "ExportContext", "Figure", "FindingsSchemaError",
           "FormatWriter", "ReportContent", "Section", "Table", "anonymize_findings",
           "anonymize_header", "build_report_content", "default_formats",
           "ensure_anonymous_findings", "findings_schema", "findings_to_json", "load_schema",
           "validate_findings", "write_findings_json", "write_lesions_csv"]
