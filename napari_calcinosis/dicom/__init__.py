"""DICOM in: a file, folder, DICOMDIR or zip -> a :class:`~napari_calcinosis.types.Study`.

:func:`load_study` is the one entry point the command line and the napari reader share:
files are found by content (:mod:`._find`), their headers read once (:mod:`._header`),
cross-sectional frames sorted along the slice normal into volumes with their geometry
(:mod:`._series`) and decoded into one array in Hounsfield units (:mod:`._pixels`);
projection radiographs become :class:`~napari_calcinosis.types.Radiograph` objects
(:mod:`._radiograph`). A bad file is set aside with a sentence naming it; the rest opens.
"""

from ._find import OWN_SIDE_FILES, find_dicom_files, is_dicom_file
from ._header import read_header
from ._load import load_study

__all__ = ["OWN_SIDE_FILES", "find_dicom_files", "is_dicom_file", "load_study", "read_header"]
