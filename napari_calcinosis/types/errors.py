"""The one family of exceptions that ``core`` raises on bad input.

Each carries a message meant for a person: it names the file and the problem in one sentence.
Widgets show it with ``napari.utils.notifications.show_error``; the CLI prints it to stderr.
"""

from __future__ import annotations


class CalcinosisError(Exception):
    """Base class of every expected, user-facing failure."""


class UsageError(CalcinosisError):
    """A request that cannot be carried out as given: a path that does not exist, an option
    out of range (command-line exit status 2)."""


class DicomReadError(CalcinosisError):
    """A file or folder could not be read as DICOM (names the path and why)."""


class NoImageSeriesError(CalcinosisError):
    """A study path held no image series the plugin can use (CLI exit status 3)."""


class ClinicalInputError(CalcinosisError):
    """A clinical-input file or value is invalid (names the key, unit or value; exit 2)."""


class AnalysisError(CalcinosisError):
    """An analysis step could not run on the given data."""
