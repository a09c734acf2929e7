"""The reader's side, without Qt: one study under review and the view-models of the panels.

:class:`StudyReview` (:mod:`._study`) holds the automatic runs of a study and the reader's
record, and derives from both the effective findings and the differential after every edit.
The panels' plain-data models live beside it: the clinical form (:mod:`._clinical_form`),
the distribution-and-symmetry table (:mod:`._distribution_table`), the CT display windows
(:mod:`._windows`) and the ruler's lengths and units (:mod:`._ruler`). The napari widgets
in ``_qt`` only show these and call them.
"""

from ._clinical_form import (
    TRI_STATE,
    FormFields,
    LabFields,
    convert_typed,
    display_units,
    document_from_fields,
    fields_from_clinical,
    lab_flag,
    parse_number,
)
from ._distribution_table import (
    REGION_MIN_DEPOSITS,
    OverallRow,
    RegionRow,
    overall_rows,
    region_call,
    region_rows,
)
from ._ruler import MM, RulerUnit, length_text, path_length, radiograph_ruler_unit
from ._study import SeriesRun, StudyReview
from ._windows import (
    DEFAULT_WINDOW,
    WINDOW_PRESETS,
    WindowPreset,
    contrast_limits,
    limits_of,
    matching_window,
    window_level,
)

__all__ = ["DEFAULT_WINDOW", "MM", "REGION_MIN_DEPOSITS", "TRI_STATE", "WINDOW_PRESETS",
           "FormFields", "LabFields", "OverallRow", "RegionRow", "RulerUnit", "SeriesRun",
           "StudyReview", "WindowPreset", "contrast_limits", "convert_typed", "display_units",
           "document_from_fields", "fields_from_clinical", "lab_flag", "length_text",
           "limits_of", "matching_window", "overall_rows", "parse_number", "path_length",
           "radiograph_ruler_unit", "region_call", "region_rows", "window_level"]
