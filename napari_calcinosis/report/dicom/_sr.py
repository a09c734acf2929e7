"""``sr.dcm``: a DICOM Comprehensive 3D SR, TID 1500 Imaging Measurement Report (highdicom).

One volumetric measurement group (TID 1411) per listed CT lesion, tracked as ``Lesion <id>``:
finding "pathologic calcification, calcified structure" (SCT 18115005), finding sites (the
region with its laterality, and the tissue layer), the referenced segment of ``seg.dcm`` (the
lesion's own segment, with the source CT series), algorithm name and version, measurements
(volume, largest diameter, peak attenuation) and the morphology. A group's volume is the
volume of the segment it references (the sum of its voxels). One study-level group (TID 1501)
holds the lesion count and total volume, the extent, form and left-right symmetry of the
distribution (overall and by region pair) as text, the ranked differential (one "Impression"
per entry) and the disclaimer. Patient and study attributes come from the source CT headers
exactly (or from their de-identified copies with ``--anonymize``). Only standard coding
schemes are used (see :mod:`._codes`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import SegmentationStorage, generate_uid

from napari_calcinosis.classify import DISCLAIMER
from napari_calcinosis.files import atomic_write_with
from napari_calcinosis.types import Findings, Lesion
from napari_calcinosis.types.findings import REGIONS

from .._anonymize import dummy_dates, study_identifying_values
from . import _codes as dc
from ._seg import SegmentPlan, plan_segmentations, source_headers, source_names_as_given

__all__ = ["SR_FILENAME", "SR_SERIES_NUMBER", "build_sr", "region_symmetry", "tracking_label",
           "write_sr"]

SR_FILENAME = "sr.dcm"
SR_SERIES_NUMBER = 902
_MAXIMUM = Code("56851009", "SCT", "Maximum")
_DIAMETER = Code("81827009", "SCT", "Diameter")
_MM3 = Code("mm3", "UCUM", "cubic millimeter")
_MM = Code("mm", "UCUM", "millimeter")
_HU = Code("[hnsf'U]", "UCUM", "Hounsfield unit")
_NO_UNITS = Code("1", "UCUM", "no units")


def _algorithm(findings: Findings) -> hd.sr.AlgorithmIdentification:
    params = findings.parameters or {}
    settings = [f"{k}={params[k]}" for k in ("threshold_hu", "min_area_mm2", "min_cnr")
                if k in params]
    return hd.sr.AlgorithmIdentification(
        name=findings.software.get("name", "napari-calcinosis"),
        version=findings.software.get("version", "") or "unknown",
        parameters=settings or None)


def _finding_sites(lesion: Lesion) -> list[hd.sr.FindingSite]:
    location, modifier = dc.REGION_SITES.get(lesion.region, dc.REGION_SITES["unknown"])
    region = hd.sr.FindingSite(location, laterality=dc.LATERALITY.get(lesion.side),
                               topographical_modifier=modifier)
    layer = dc.LAYER_SITES.get(lesion.layer, dc.LAYER_SITES["unknown"])
    return [region, hd.sr.FindingSite(layer)]


def _measurements(lesion: Lesion, algorithm: Any) -> list[hd.sr.Measurement]:
    out = []
    if lesion.volume_mm3 is not None:
        out.append(hd.sr.Measurement(
            name=codes.SCT.Volume, value=round(float(lesion.volume_mm3), 3), unit=_MM3,
            method=codes.DCM.SumOfSegmentedVoxelMethodForVolume, algorithm_id=algorithm))
    if lesion.max_diameter_mm is not None:
        out.append(hd.sr.Measurement(name=_DIAMETER, value=round(float(lesion.max_diameter_mm), 3),
                                     unit=_MM, derivation=_MAXIMUM, algorithm_id=algorithm))
    if lesion.peak_hu is not None:
        out.append(hd.sr.Measurement(name=codes.DCM.AttenuationCoefficient,
                                     value=round(float(lesion.peak_hu), 3), unit=_HU,
                                     derivation=_MAXIMUM, algorithm_id=algorithm))
    return out


def region_symmetry(findings: Findings) -> list[tuple[str, float | None, str]]:
    """(region, SI or None, call) of each judged region pair, in the contract's region order.

    The call is the entry's own (the reader's, when overridden), else the index against
    ``symmetry_si_cut``.
    """
    cut = float((findings.parameters or {}).get("symmetry_si_cut", 0.7))
    out = []
    for region, entry in findings.summary.symmetry.by_region.items():
        index = None if not entry or entry.get("index") is None else float(entry["index"])
        call = (entry or {}).get("call") or (
            None if index is None else "symmetric" if index >= cut else "asymmetric")
        if call is not None:
            out.append((region, index, str(call)))
    return sorted(out, key=lambda item: _index(REGIONS, item[0]))


def _index(vocabulary: tuple[str, ...], word: str) -> int:
    return vocabulary.index(word) if word in vocabulary else len(vocabulary)


def tracking_label(lesion: Lesion) -> str:
    """The tracking identifier of a lesion's group (the same words as its segment)."""
    return f"Lesion {lesion.id}"


def _lesion_group(findings: Findings, plan: SegmentPlan, lesion: Lesion, seed: str) -> Any:
    algorithm = _algorithm(findings)
    evaluations = [hd.sr.QualitativeEvaluation(
        dc.MORPHOLOGY_NAME, dc.MORPHOLOGY_CODES.get(lesion.morphology,
                                                    dc.MORPHOLOGY_CODES["unknown"]))]
    segment = hd.sr.ReferencedSegment(
        sop_class_uid=SegmentationStorage, sop_instance_uid=plan.sop_instance_uid,
        segment_number=plan.segment_number(lesion.id),
        source_series=hd.sr.SourceSeriesForSegmentation(plan.ct_series_uid))
    label = tracking_label(lesion)
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=generate_uid(entropy_srcs=[seed, label]), identifier=label),
        referenced_segment=segment, finding_type=dc.CALCIFIED_STRUCTURE,
        finding_category=dc.CATEGORY, algorithm_id=algorithm,
        finding_sites=_finding_sites(lesion), measurements=_measurements(lesion, algorithm),
        qualitative_evaluations=evaluations)


def _summary_group(findings: Findings, seed: str) -> Any:
    summary = findings.summary
    algorithm = _algorithm(findings)
    measurements = [
        hd.sr.Measurement(name=codes.DCM.NumberOfCalcifications, value=summary.lesion_count,
                          unit=_NO_UNITS, algorithm_id=algorithm),
        hd.sr.Measurement(name=codes.SCT.Volume, value=float(summary.total_volume_mm3),
                          unit=_MM3, algorithm_id=algorithm),
    ]
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=generate_uid(entropy_srcs=[seed, "summary"]),
            identifier="soft-tissue calcifications: study summary"),
        finding_type=dc.CALCIFIED_STRUCTURE, algorithm_id=algorithm,
        measurements=measurements)
    for text, name in [*_distribution_texts(findings), *_texts(findings)]:
        group[0].ContentSequence.append(hd.sr.TextContentItem(
            name=name, value=text, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    return group


_EXTENT_WORDS = {"none": "none (no soft-tissue calcification)",
                 "localized": "localized (one region)",
                 "regional": "regional (two or three regions)",
                 "generalized": "generalized (four or more regions, or non-adjacent regions "
                                "on both sides)"}
_FORM_WORDS = {"none": "none", "circumscripta": "calcinosis circumscripta",
               "universalis": "calcinosis universalis"}


def _distribution_texts(findings: Findings) -> list[tuple[str, Code]]:
    """Extent, form and left-right symmetry in the contract's words (no standard codes)."""
    summary = findings.summary
    symmetry = summary.symmetry
    overall = f"Left-right symmetry: {symmetry.call}"
    if symmetry.index is not None:
        overall += f" (symmetry index {float(symmetry.index):.2f})"
    out = [(_EXTENT_WORDS.get(summary.extent, summary.extent), dc.EXTENT_NAME),
           (f"Form: {_FORM_WORDS.get(summary.form, summary.form)}", dc.FINDING),
           (overall, dc.FINDING)]
    for region, index, call in region_symmetry(findings):
        index_words = "" if index is None else f" (symmetry index {index:.2f})"
        out.append((f"Left-right symmetry, {region.replace('_', ' ')}: {call}{index_words}",
                    dc.FINDING))
    return out


def _texts(findings: Findings) -> list[tuple[str, Code]]:
    out = []
    for rank, item in enumerate(findings.differential, start=1):
        name = str(item.get("diagnosis", "")).replace("_", " ")
        form = f", {item['form']}" if item.get("form") else ""
        lines = [f"{rank}. {name}{form} (score {float(item.get('score', 0.0)):.2f})"]
        for part in ("supporting", "against", "missing"):
            if item.get(part):
                lines.append(f"{part.capitalize()}: {'; '.join(map(str, item[part]))}")
        out.append(("\n".join(lines), codes.DCM.Impression))
    if not findings.differential:
        out.append(("No soft-tissue calcification: no differential.", codes.DCM.Impression))
    out.append((DISCLAIMER, codes.DCM.Comment))
    return out


def build_sr(findings: Findings, context: Any) -> hd.sr.Comprehensive3DSR | None:
    """The SR of an export, or ``None`` when the study has no analysed CT."""
    result = context.result
    volumes = [item.image for item in result.series if item.ct is not None]
    if not volumes:
        return None
    plans = plan_segmentations(findings, context)
    secrets = study_identifying_values(result.study) if context.anonymize else []
    evidence = [h for v in volumes for h in source_headers(
        v, anonymize=context.anonymize, uid_map=context.uid_map, secrets=secrets)]
    evidence += [_seg_reference(plan, evidence[0]) for plan in plans]
    digest = hashlib.sha256(json.dumps(findings.to_json_dict(), sort_keys=True,
                                       default=str).encode()).hexdigest()
    seed = "|".join(["napari-calcinosis SR", digest, *(p.sop_instance_uid for p in plans)])
    by_id = {les.id: les for les in findings.lesions}
    groups = [_lesion_group(findings, plan, by_id[lesion_id], seed)
              for plan in plans for lesion_id in plan.lesion_ids]
    groups.append(_summary_group(findings, seed))
    report = hd.sr.MeasurementReport(
        observation_context=_observation_context(findings, seed),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion, imaging_measurements=groups)
    with source_names_as_given():
        sr = hd.sr.Comprehensive3DSR(
            evidence=evidence, content=report[0],
            series_instance_uid=generate_uid(entropy_srcs=[seed, "series"]),
            series_number=SR_SERIES_NUMBER,
            sop_instance_uid=generate_uid(entropy_srcs=[seed, "instance"]), instance_number=1,
            manufacturer="napari-calcinosis", is_complete=True,
            series_description="Calcinosis measurements (napari-calcinosis)")
    if context.anonymize:
        dummy_dates(sr)
    # The explanations hold symbols outside Latin-1 (≥, →): write the text as UTF-8.
    sr.SpecificCharacterSet = "ISO_IR 192"
    return sr


def _observation_context(findings: Findings, seed: str) -> hd.sr.ObservationContext:
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=generate_uid(entropy_srcs=["napari-calcinosis device"]),
        name=findings.software.get("name", "napari-calcinosis"),
        manufacturer_name="napari-calcinosis", model_name="napari-calcinosis")
    return hd.sr.ObservationContext(observer_device_context=hd.sr.ObserverContext(
        observer_type=codes.DCM.Device, observer_identifying_attributes=device))


def _seg_reference(plan: SegmentPlan, ct_header: Dataset) -> Dataset:
    # The SR's evidence lists the SEG it references; only its identity is needed here.
    ds = Dataset()
    ds.SOPClassUID = SegmentationStorage
    ds.SOPInstanceUID = plan.sop_instance_uid
    ds.SeriesInstanceUID = plan.series_instance_uid
    ds.StudyInstanceUID = ct_header.StudyInstanceUID
    return ds


def write_sr(findings: Findings, out_dir: str | Path, context: Any) -> list[Path]:
    """Format writer ``sr``: ``sr.dcm`` (nothing when the study has no analysed CT).

    Parameters
    ----------
    findings : Findings
        The findings as exported (anonymized already when ``context.anonymize``).
    out_dir : str or Path
        Existing output folder.
    context : ExportContext
        ``result``, ``anonymize`` and the ``uid_map`` shared with the SEG writer.
    """
    sr = build_sr(findings, context)
    if sr is None:
        return []
    path = Path(out_dir) / SR_FILENAME
    return [atomic_write_with(path, lambda tmp: sr.save_as(tmp, enforce_file_format=True))]
