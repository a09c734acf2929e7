"""The reader's judgement on a study, kept as one record and never lost.

Automatic detection is a proposal; the reader decides. Everything the reader decides about a
study forms one :class:`AnnotationRecord`, keyed by the StudyInstanceUID:

* decisions on automatic lesions: accepted / rejected (a rejected lesion leaves the lesion
  list and every count, and can be restored) and overrides of layer, morphology, side and
  region, each stored beside the automatic value the reader saw;
* manual lesions (painted or clicked) with their measurements and their voxels, compactly
  run-length encoded (:class:`VoxelMask`), so a painted lesion survives a restart;
* the reader's symmetry call per body region and overall extent, form and symmetry call,
  stored beside (never instead of) the automatic value;
* the clinical input (the ``docs/contract.md`` format) and the detection parameters used.

Storage (:class:`AnnotationStore`): one JSON file per study (schema
``napari-calcinosis/annotations/v1``) in ``$NAPARI_CALCINOSIS_DATA_DIR/annotations`` or the
user's data folder, named by a hash of the UID. Every save is atomic (temporary file, fsync,
rename); stale temporary files of a killed writer are removed on the next save or load; an
unusable file is renamed ``*.corrupt-<time>.json`` with a warning; older record versions are
migrated on reading (:func:`migrate`).

Matching across detection runs
------------------------------
A decision on an automatic lesion is keyed by the lesion's series UID, centroid (patient mm
on CT, pixel index on a radiograph) and volume (area), and by its voxels when the label image
was at hand. When detection is re-run with other parameters, every decision is paired with at
most one new lesion, strongest evidence first:

1. the very same lesion (same series, centroid and size: the same run re-opened);
2. otherwise, when its voxels are stored, the new lesion of the same series with the greatest
   Dice overlap (at least ``MatchParams.min_dice`` = 0.05); a lesion that grew or shrank with
   the threshold is found again, one that vanished is not (voxels decide alone);
3. otherwise, without voxels, the nearest new centroid within
   ``max(3 mm, 0.5 x largest diameter)``.

Decisions that find no lesion are *orphaned*: reported (:attr:`AppliedAnnotations.orphaned`
and a warning) and kept in the record, so they apply again if a later run finds the lesion.
Manual lesions are always kept and appended with new ids. :func:`rekey` moves the decisions
onto the new run (new centroids and voxels) so that chains of re-runs keep matching.
"""

from ._apply import AppliedAnnotations, apply, lesion_origin, manual_lesions, rekey
from ._findings import (
    apply_to_findings,
    default_store,
    effective_summary,
    summary_overrides,
    to_reader_marks,
)
from ._json import (
    MIGRATIONS,
    AnnotationFileError,
    migrate,
    record_from_dict,
    record_from_json,
    record_to_dict,
    record_to_json,
    validate_record_doc,
)
from ._mask import VoxelMask, label_mask
from ._match import MatchParams, MatchResult, SeriesLabels, match_decisions
from ._record import (
    EDITABLE_FIELDS,
    RECORD_SCHEMA_ID,
    RECORD_VERSION,
    SUMMARY_FIELDS,
    AnnotationRecord,
    LesionDecision,
    LesionKey,
    ManualLesion,
    Override,
    utc_now,
)
from ._store import DATA_DIR_ENV, EXPORT_FILENAME, AnnotationStore, default_root, record_filename

__all__ = [
    "DATA_DIR_ENV", "EDITABLE_FIELDS", "EXPORT_FILENAME", "MIGRATIONS", "RECORD_SCHEMA_ID",
    "RECORD_VERSION", "SUMMARY_FIELDS", "AnnotationFileError", "AnnotationRecord",
    "AnnotationStore", "AppliedAnnotations", "LesionDecision", "LesionKey", "ManualLesion",
    "MatchParams", "MatchResult", "Override", "SeriesLabels", "VoxelMask", "apply",
    "apply_to_findings", "default_root", "default_store", "effective_summary", "label_mask",
    "lesion_origin",
    "manual_lesions", "match_decisions", "migrate", "record_filename", "record_from_dict",
    "record_from_json", "record_to_dict", "record_to_json", "rekey", "summary_overrides",
    "to_reader_marks", "utc_now", "validate_record_doc",
]
