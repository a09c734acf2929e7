"""Many studies: ``napari-calcinosis batch`` on Dask, with cohort tables.

:func:`discover_studies` (:mod:`._discover`) finds the studies under folders, zips and
DICOMDIRs (a study is a StudyInstanceUID wherever its files are); :func:`run_batch`
(:mod:`._run`) analyses each as one Dask task (a local cluster of worker processes, or an
existing one by its scheduler address), each exactly as ``analyze`` would into
``OUT/<study>/``, and writes ``studies.csv``, ``studies.parquet`` and ``lesions.parquet``
(:mod:`._tables`). Studies on a PACS (``pacs://SERVER``) are retrieved by the workers and,
with ``send``, their DICOM outputs stored back (:mod:`._pacs`). Nothing here imports napari
or Qt.
"""

from ._discover import StudySource, discover_studies
from ._pacs import read_uid_list
from ._run import BatchOptions, BatchSummary, run_batch
from ._tables import LESION_COLUMNS, STUDY_COLUMNS, lesion_rows, study_row

__all__ = ["LESION_COLUMNS", "STUDY_COLUMNS", "BatchOptions", "BatchSummary", "StudySource",
           "discover_studies", "lesion_rows", "read_uid_list", "run_batch", "study_row"]
