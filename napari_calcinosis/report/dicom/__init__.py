"""The DICOM exports: a Comprehensive 3D SR (TID 1500, :mod:`._sr`) that references a DICOM
SEG of the calcifications (:mod:`._seg`), with their coded concepts in one place
(:mod:`._codes`), and the key images as Secondary Capture images (:mod:`._sc`). PACS
viewers show them under the study they came from."""

from ._seg import (
    SEG_FILENAME,
    build_segmentation,
    plan_segmentations,
    segment_label,
    write_seg,
)
from ._sr import SR_FILENAME, build_sr, write_sr

__all__ = ["SEG_FILENAME", "SR_FILENAME", "build_segmentation", "build_sr",
           "plan_segmentations", "segment_label", "write_seg", "write_sr"]
