"""The objects every part of the analysis shares, and nothing else.

:mod:`.model` (the images: :class:`Volume`, :class:`Radiograph`, :class:`Study`),
:mod:`.findings` (the contract's ``findings.json`` as dataclasses and its vocabularies),
:mod:`.params` (every threshold of the CT and radiograph detectors), :mod:`.errors` (the one
family of user-facing exceptions) and :mod:`.progress` (the progress callable). Nothing here
computes anything; every other package may import from here.
"""

from .errors import (
    AnalysisError,
    CalcinosisError,
    ClinicalInputError,
    DicomReadError,
    NoImageSeriesError,
    UsageError,
)
from .findings import ANNOTATIONS_NOT_APPLIED, Findings, Lesion, SeriesEntry, Summary, Symmetry
from .model import Radiograph, SeriesInfo, SetAside, Study, Volume
from .params import CTParams, XrayParams
from .progress import Progress, no_progress, sub_progress

__all__ = [
    "ANNOTATIONS_NOT_APPLIED", "AnalysisError", "CTParams", "CalcinosisError",
    "ClinicalInputError", "DicomReadError",
    "Findings", "Lesion", "NoImageSeriesError", "Progress", "Radiograph", "SeriesEntry",
    "SeriesInfo", "SetAside", "Study", "Summary", "Symmetry", "UsageError", "Volume",
    "XrayParams",
    "no_progress", "sub_progress",
]
