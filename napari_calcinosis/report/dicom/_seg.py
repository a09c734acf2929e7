"""``seg.dcm``: a DICOM Segmentation (BINARY) of the calcifications, one segment per lesion.

Segment ``n`` holds the voxels of one listed lesion, labelled ``Lesion <id> (<layer>)``, so
the SR's measurement group of that lesion references a segment of exactly its volume
(segmented property category SCT 49755003 "morphologically abnormal structure", type SCT
18115005 "calcified structure", anatomic region = the lesion's tissue layer, display colour =
the layer's colour). highdicom stores a frame only where a segment has voxels, so a study
with many small lesions gives a few frames per lesion, not one volume per lesion (on a
251-slice 525 x 525 CT, 60 lesions: 240 frames, 8.5 MB, about 8 s; 200 lesions: 800 frames,
28 MB, about 15 s; peak memory about 200 MB either way). Frames reference the source CT
instances; slices the loader inserted to fill a gap (no header) are not referenced and hold
no lesion voxel. An enhanced (multi-frame) CT is referenced frame by frame, matched on the
frames' plane positions.

The SEG's UIDs are derived from its content (the CT series and the lesion masks), so the SR
written by :mod:`._sr` in the same or another run references the same SEG instance.
With ``context.anonymize`` the source headers are de-identified first (:mod:`.._anonymize`) and
all UIDs come from the shared ``context.uid_map``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import CTImageStorage, generate_uid

from napari_calcinosis.files import atomic_write_with
from napari_calcinosis.types import AnalysisError, Findings, Volume
from napari_calcinosis.types.findings import LAYER_COLORS, LAYERS

from .._anonymize import anonymize_header, dummy_dates, mapped_uid, study_identifying_values
from ._codes import CALCIFIED_STRUCTURE, CATEGORY, LAYER_SITES

__all__ = ["SEG_FILENAME", "SEG_SERIES_NUMBER", "SegmentPlan", "build_segmentation",
           "plan_segmentations", "segment_file_name", "segment_label", "series_lesion_labels",
           "source_headers", "source_names_as_given", "with_type2_attributes", "write_seg"]

SEG_FILENAME = "seg.dcm"
SEG_SERIES_NUMBER = 901
_POSITION_TOL_MM = 0.05


@dataclass
class SegmentPlan:
    """The SEG of one CT series: one segment per listed lesion, and its (final) UIDs.

    Attributes
    ----------
    volume : Volume
        The source CT (original headers).
    segment_index : numpy.ndarray
        ``uint8`` or ``uint16`` (z, y, x): the segment number (1..) of each lesion voxel,
        0 elsewhere. Segment ``n`` is lesion ``lesion_ids[n - 1]``.
    lesion_ids : list of int
        Finding lesion id of segment ``n`` at ``lesion_ids[n - 1]`` (ascending).
    layers : list of str
        Tissue layer of segment ``n`` at ``layers[n - 1]`` (the layer in ``findings``).
    manual_ids : set of int
        Lesions added or edited by hand (segment algorithm SEMIAUTOMATIC).
    ct_series_uid : str
        The CT's SeriesInstanceUID as the outputs name it (new UID when anonymized).
    series_instance_uid, sop_instance_uid : str
        The SEG's own UIDs.
    file_name : str
    """

    volume: Volume
    segment_index: np.ndarray
    lesion_ids: list[int]
    layers: list[str]
    manual_ids: set[int]
    ct_series_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    file_name: str

    def segment_number(self, lesion_id: int) -> int:
        """The segment number (1-based) of a lesion."""
        return self.lesion_ids.index(lesion_id) + 1

    def layer_index(self) -> tuple[np.ndarray, list[str]]:
        """The lesion voxels by tissue layer: ``(index, layers)``, where ``index`` holds
        ``n`` (1-based) for a voxel of a lesion in ``layers[n - 1]`` (contract order)."""
        layers = [layer for layer in LAYERS if layer in self.layers]
        lut = np.zeros(len(self.lesion_ids) + 1, dtype=np.uint8)
        lut[1:] = [layers.index(layer) + 1 for layer in self.layers]
        return lut[self.segment_index], layers


def segment_file_name(number: int) -> str:
    """``seg.dcm`` for the first CT series, ``seg_2.dcm``, ... for the others."""
    return SEG_FILENAME if number <= 1 else f"seg_{number}.dcm"


def plan_segmentations(findings: Findings, context: Any) -> list[SegmentPlan]:
    """One :class:`SegmentPlan` per analysed CT series that has listed lesions.

    Lesions are matched to a CT's label image through the series' id offset; lesions the
    reader rejected (absent from ``findings``) are left out, and each lesion's layer is the
    one in ``findings`` (the reader may have changed it).
    """
    result = getattr(context, "result", None)
    if result is None:
        return []
    anonymize = bool(getattr(context, "anonymize", False))
    uid_map = getattr(context, "uid_map", {})
    by_id = {les.id: les for les in findings.lesions}
    plans: list[SegmentPlan] = []
    for item in result.series:
        if item.ct is None:
            continue
        labels, offset = series_lesion_labels(result, item)
        plan = _plan_one(item, labels, offset, by_id, anonymize, uid_map, len(plans) + 1)
        if plan is not None:
            plans.append(plan)
    return plans


def series_lesion_labels(result: Any, item: Any) -> tuple[np.ndarray, int]:
    """The lesion label image of a CT series and its id offset (label ``v`` = id ``v + off``).

    When the reader's annotations were applied, their label image wins (rejected lesions
    cleared, painted manual lesions drawn in); otherwise the detector's.
    """
    applied = getattr(getattr(result, "applied", None), "lesion_labels", None)
    if isinstance(applied, dict):
        entry = applied.get(item.entry.series_instance_uid)
        if entry is not None and hasattr(entry, "labels"):
            return np.asarray(entry.labels), int(getattr(entry, "id_offset", 0))
        if entry is not None:
            return np.asarray(entry), item.id_offset
    return np.asarray(item.ct.lesion_labels), item.id_offset


def _plan_one(item: Any, labels: np.ndarray, offset: int, by_id: dict, anonymize: bool,
              uid_map: dict[str, str], number: int) -> SegmentPlan | None:
    ids = np.unique(labels[labels > 0])
    listed = sorted(int(v) + offset for v in ids if int(v) + offset in by_id)
    if not listed:
        return None
    # highdicom takes a label map of uint8 or uint16: one segment per lesion
    dtype = np.uint8 if len(listed) <= np.iinfo(np.uint8).max else np.uint16
    lut = np.zeros(int(ids.max()) + 1, dtype=dtype)
    for segment, lesion_id in enumerate(listed, start=1):
        lut[lesion_id - offset] = segment
    segment_index = lut[labels]
    layers = [by_id[i].layer for i in listed]
    ct_uid = item.image.info.series_instance_uid
    if anonymize:
        ct_uid = mapped_uid(ct_uid, uid_map)
    digest = hashlib.sha256(segment_index.tobytes() + repr((listed, layers)).encode()
                            ).hexdigest()
    seed = ["napari-calcinosis SEG", ct_uid, digest]
    manual = {i for i in listed if by_id[i].source == "manual"}
    return SegmentPlan(item.image, segment_index, listed, layers, manual, ct_uid,
                       generate_uid(entropy_srcs=[*seed, "series"]),
                       generate_uid(entropy_srcs=[*seed, "instance"]),
                       segment_file_name(number))


def source_headers(volume: Volume, *, anonymize: bool = False,
                   uid_map: dict[str, str] | None = None, secrets: list[str] | None = None
                   ) -> list[Dataset]:
    """The distinct source headers of a volume (de-identified copies when ``anonymize``)."""
    seen: dict[str, Dataset] = {}
    for n, header in enumerate(volume.headers):
        if header is None:
            continue
        header = _with_uids(header, volume, n)
        if str(header.SOPInstanceUID) not in seen:
            seen[str(header.SOPInstanceUID)] = header
    headers = [_standard_procedure_codes(with_type2_attributes(h)) for h in seen.values()]
    if anonymize:
        uid_map = {} if uid_map is None else uid_map
        headers = [anonymize_header(h, uid_map, secrets=secrets or []) for h in headers]
    return headers


def _with_uids(header: Dataset, volume: Volume, n: int) -> Dataset:
    """A header whose identifying UIDs were blanked (anonymised research data) gets, in a
    copy, those the loader gave its series (:mod:`napari_calcinosis.dicom`) and a SOP
    instance UID derived from them, so that the SR and SEG reference what findings.json
    names."""
    if all(str(header.get(k, "") or "").strip() for k in
           ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")):
        return header
    out = copy.deepcopy(header)  # never change the loaded header itself
    if not str(out.get("SOPClassUID", "") or "").strip():
        out.SOPClassUID = CTImageStorage
    if not str(out.get("SeriesInstanceUID", "") or "").strip():
        out.SeriesInstanceUID = volume.info.series_instance_uid
    if not str(out.get("StudyInstanceUID", "") or "").strip():
        out.StudyInstanceUID = volume.info.study_instance_uid
    if not str(out.get("SOPInstanceUID", "") or "").strip():
        out.SOPInstanceUID = generate_uid(entropy_srcs=[str(out.SeriesInstanceUID), str(n)])
    return out


@contextlib.contextmanager
def source_names_as_given():
    """Copy the source's person names as they are: pydicom warns about a one-component
    name ("Pancreas-CT-CB_001", common after anonymisation) each time highdicom copies it,
    but it is the source's value and the reader cannot change it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended "
                                "person name.*", category=UserWarning)
        yield


#: Type 2 attributes of the Patient and General Study modules that highdicom copies from the
#: source images into SR and SEG: required to be present, but they may be empty.
_TYPE2_PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                        "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
                        "AccessionNumber")


#: Coding schemes of DICOM PS3.16 (those of pydicom's concept dictionary).
_STANDARD_SCHEMES = frozenset(codes.schemes())


def _standard_procedure_codes(header: Dataset) -> Dataset:
    """A header whose Procedure Code Sequence (type 3, which highdicom copies into SR and SEG)
    holds a vendor's private code (``SECTRA``, say) gets, in a copy, only its standard codes:
    the study's own images keep them all, and validators warn about any private scheme in
    what this plugin writes."""
    items = list(header.get("ProcedureCodeSequence", None) or [])
    kept = [item for item in items
            if str(item.get("CodingSchemeDesignator", "")) in _STANDARD_SCHEMES]
    if len(kept) == len(items):
        return header
    header = copy.deepcopy(header)
    if kept:
        header.ProcedureCodeSequence = kept
    else:
        del header.ProcedureCodeSequence
    return header


def with_type2_attributes(header: Dataset) -> Dataset:
    """A header that lacks some of them (real files do) gets them empty, in a copy; a
    one-component patient name (``Pancreas-CT-CB_001``, the retired form) gets the
    trailing ``^`` that makes it the family name, as PS3.5 asks."""
    missing = [name for name in _TYPE2_PATIENT_STUDY if name not in header]
    name = str(header.get("PatientName", "") or "")
    retired = bool(name) and "^" not in name and "=" not in name
    if not missing and not retired:
        return header
    header = copy.deepcopy(header)  # a shallow copy would share (and change) its elements
    for keyword in missing:
        setattr(header, keyword, "")
    if retired:
        header.PatientName = f"{name}^"
    return header


def build_segmentation(plan: SegmentPlan, *, software_version: str, anonymize: bool = False,
                       uid_map: dict[str, str] | None = None,
                       secrets: list[str] | None = None) -> hd.seg.Segmentation:
    """The highdicom Segmentation of one plan.

    Raises
    ------
    AnalysisError
        When the volume has no source headers to reference.
    """
    headers = source_headers(plan.volume, anonymize=anonymize, uid_map=uid_map,
                             secrets=secrets)
    if not headers:
        raise AnalysisError(f"CT series {plan.volume.info.series_instance_uid} has no DICOM "
                            "headers, so a DICOM SEG cannot reference it.")
    frames = _frames_in_source_order(plan, headers)
    descriptions = [_segment_description(plan, n, software_version)
                    for n in range(1, len(plan.lesion_ids) + 1)]
    with source_names_as_given():
        seg = hd.seg.Segmentation(
            source_images=headers, pixel_array=frames,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=plan.series_instance_uid, series_number=SEG_SERIES_NUMBER,
            sop_instance_uid=plan.sop_instance_uid, instance_number=1,
            manufacturer="napari-calcinosis", manufacturer_model_name="napari-calcinosis",
            software_versions=software_version, device_serial_number="0",
            content_label="CALCIFICATIONS",
            content_description="Soft-tissue calcifications, one segment per lesion",
            series_description="Calcifications (napari-calcinosis)",
        )
    return dummy_dates(seg) if anonymize else seg


def _frames_in_source_order(plan: SegmentPlan, headers: list[Dataset]) -> np.ndarray:
    volume, index = plan.volume, plan.segment_index
    present = [k for k, h in enumerate(volume.headers) if h is not None]
    gap = np.setdiff1d(np.arange(index.shape[0]), present)
    if gap.size and index[gap].any():
        raise AnalysisError("Lesion voxels lie on a slice the loader inserted to fill a gap; "
                            "the SEG could not reference it.")
    if len(headers) == len(present):  # one single-frame instance per slice
        return np.ascontiguousarray(index[present])
    if len(headers) == 1 and int(getattr(headers[0], "NumberOfFrames", 1)) > 1:
        return _multiframe_frames(volume, index, headers[0])
    raise AnalysisError(f"CT series {volume.info.series_instance_uid} mixes instances in a "
                        "way the SEG export does not support.")


def _multiframe_frames(volume: Volume, index: np.ndarray, header: Dataset) -> np.ndarray:
    positions = _frame_positions(header)
    slice_positions = volume.index_to_lps(
        np.stack([np.arange(index.shape[0]), np.zeros(index.shape[0]),
                  np.zeros(index.shape[0])], axis=1))
    frames = np.zeros((len(positions), *index.shape[1:]), dtype=index.dtype)
    for f, position in enumerate(positions):
        distance = np.linalg.norm(slice_positions - position, axis=1)
        k = int(np.argmin(distance))
        if distance[k] <= _POSITION_TOL_MM:
            frames[f] = index[k]
    return frames


def _frame_positions(header: Dataset) -> np.ndarray:
    shared = header.get("SharedFunctionalGroupsSequence", [Dataset()])[0]
    out = []
    for frame in header.PerFrameFunctionalGroupsSequence:
        group = frame if "PlanePositionSequence" in frame else shared
        out.append([float(v) for v in group.PlanePositionSequence[0].ImagePositionPatient])
    return np.asarray(out)


def segment_label(lesion_id: int, layer: str) -> str:
    """The label a viewer shows for a lesion's segment: ``Lesion 3 (subcutaneous tissue)``."""
    site = LAYER_SITES.get(layer, LAYER_SITES["unknown"])
    return f"Lesion {lesion_id} ({site.meaning.lower()})"


def _segment_description(plan: SegmentPlan, number: int,
                         software_version: str) -> hd.seg.SegmentDescription:
    algorithm = hd.AlgorithmIdentificationSequence(
        name="napari-calcinosis", family=codes.cid7162.HistogramAnalysis,
        version=software_version)
    lesion_id, layer = plan.lesion_ids[number - 1], plan.layers[number - 1]
    manual = lesion_id in plan.manual_ids
    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=segment_label(lesion_id, layer),
        segmented_property_category=CATEGORY,
        segmented_property_type=CALCIFIED_STRUCTURE,
        algorithm_type=(hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC if manual
                        else hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC),
        algorithm_identification=algorithm,
        tracking_uid=generate_uid(entropy_srcs=[plan.sop_instance_uid, f"lesion {lesion_id}"]),
        tracking_id=f"Lesion {lesion_id}",
        anatomic_regions=[LAYER_SITES.get(layer, LAYER_SITES["unknown"])],
        display_color=hd.color.CIELabColor.from_string(LAYER_COLORS[layer]),
    )


def write_seg(findings: Findings, out_dir: str | Path, context: Any) -> list[Path]:
    """Format writer ``seg``: ``seg.dcm`` (and ``seg_2.dcm``, ... for further CT series).

    Parameters
    ----------
    findings : Findings
        The findings as exported (anonymized already when ``context.anonymize``).
    out_dir : str or Path
        Existing output folder.
    context : ExportContext
        ``result`` (the analysis, with the CT and its lesion labels), ``anonymize`` and the
        shared ``uid_map``.

    Returns
    -------
    list of Path
        The files written; empty when no CT series has a listed lesion.
    """
    uid_map = context.uid_map
    secrets = study_identifying_values(context.result.study) if context.anonymize else []
    written = []
    for plan in plan_segmentations(findings, context):
        seg = build_segmentation(plan, software_version=findings.software.get("version", ""),
                                 anonymize=context.anonymize, uid_map=uid_map,
                                 secrets=secrets)
        path = Path(out_dir) / plan.file_name
        written.append(atomic_write_with(path, lambda tmp, ds=seg: ds.save_as(
            tmp, enforce_file_format=True)))
    return written
