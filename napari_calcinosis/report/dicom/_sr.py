"""``sr.dcm``: a DICOM Comprehensive 3D SR, TID 1500 Imaging Measurement Report (highdicom).

One volumetric measurement group (TID 1411) per region x layer x side of the listed CT lesions:
finding "pathologic calcification, calcified structure" (SCT 18115005), finding sites (the
region with its laterality, and the tissue layer), the referenced segment of ``seg.dcm`` (its
layer's segment, with the source CT series), algorithm name and version, measurements (total
volume, number, largest diameter, peak attenuation) and qualitative evaluations (predominant
morphology; symmetry of the region pair). One study-level group (TID 1501) holds extent, form,
symmetry, the lesion count and total volume, the ranked differential as text (one
"Impression" per entry) and the disclaimer. Patient and study attributes come from the source
CT headers exactly (or from their de-identified copies with ``--anonymize``).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
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
from napari_calcinosis.types.findings import LAYERS, MORPHOLOGIES, REGIONS, SIDES

from .._anonymize import study_identifying_values
from . import _codes as dc
from ._seg import SegmentPlan, plan_segmentations, source_headers, source_names_as_given

__all__ = ["SR_FILENAME", "SR_SERIES_NUMBER", "MeasurementGroupKey", "build_sr",
           "group_lesions", "write_sr"]

SR_FILENAME = "sr.dcm"
SR_SERIES_NUMBER = 902
_SYMMETRY_INDEX = dc.local("SI", "Left-right symmetry index of the region pair")
_MAXIMUM = Code("56851009", "SCT", "Maximum")
_DIAMETER = Code("81827009", "SCT", "Diameter")
_MM3 = Code("mm3", "UCUM", "cubic millimeter")
_MM = Code("mm", "UCUM", "millimeter")
_HU = Code("[hnsf'U]", "UCUM", "Hounsfield unit")
_NO_UNITS = Code("1", "UCUM", "no units")


@dataclass(frozen=True)
class MeasurementGroupKey:
    """One measurement group: a region, a layer and a side."""

    region: str
    layer: str
    side: str

    @property
    def label(self) -> str:
        return f"{self.layer} / {self.region} / {self.side}"


def group_lesions(lesions: list[Lesion]) -> dict[MeasurementGroupKey, list[Lesion]]:
    """Lesions grouped by region x layer x side, in the contract's vocabulary order."""
    groups: dict[MeasurementGroupKey, list[Lesion]] = {}
    for lesion in lesions:
        groups.setdefault(MeasurementGroupKey(lesion.region, lesion.layer, lesion.side),
                          []).append(lesion)

    def order(key: MeasurementGroupKey) -> tuple[int, int, int]:
        return (_index(REGIONS, key.region), _index(LAYERS, key.layer), _index(SIDES, key.side))

    return {key: groups[key] for key in sorted(groups, key=order)}


def _index(vocabulary: tuple[str, ...], word: str) -> int:
    return vocabulary.index(word) if word in vocabulary else len(vocabulary)


def _algorithm(findings: Findings) -> hd.sr.AlgorithmIdentification:
    params = findings.parameters or {}
    settings = [f"{k}={params[k]}" for k in ("threshold_hu", "min_area_mm2", "min_cnr")
                if k in params]
    return hd.sr.AlgorithmIdentification(
        name=findings.software.get("name", "napari-calcinosis"),
        version=findings.software.get("version", "") or "unknown",
        parameters=settings or None)


def _finding_sites(key: MeasurementGroupKey) -> list[hd.sr.FindingSite]:
    location, modifier = dc.REGION_SITES.get(key.region, dc.REGION_SITES["unknown"])
    region = hd.sr.FindingSite(location, laterality=dc.LATERALITY.get(key.side),
                               topographical_modifier=modifier)
    return [region, hd.sr.FindingSite(dc.LAYER_SITES.get(key.layer, dc.LAYER_SITES["unknown"]))]


def _measurements(lesions: list[Lesion], algorithm: Any) -> list[hd.sr.Measurement]:
    out = [hd.sr.Measurement(name=codes.DCM.NumberOfCalcifications, value=len(lesions),
                             unit=_NO_UNITS, algorithm_id=algorithm)]
    volumes = [les.volume_mm3 for les in lesions if les.volume_mm3 is not None]
    if volumes:
        out.append(hd.sr.Measurement(
            name=codes.SCT.Volume, value=round(float(sum(volumes)), 3), unit=_MM3,
            method=codes.DCM.SumOfSegmentedVoxelMethodForVolume, algorithm_id=algorithm))
    diameters = [les.max_diameter_mm for les in lesions if les.max_diameter_mm is not None]
    if diameters:
        out.append(hd.sr.Measurement(name=_DIAMETER, value=round(float(max(diameters)), 3),
                                     unit=_MM, derivation=_MAXIMUM, algorithm_id=algorithm))
    peaks = [les.peak_hu for les in lesions if les.peak_hu is not None]
    if peaks:
        out.append(hd.sr.Measurement(name=codes.DCM.AttenuationCoefficient,
                                     value=round(float(max(peaks)), 3), unit=_HU,
                                     derivation=_MAXIMUM, algorithm_id=algorithm))
    return out


def predominant_morphology(lesions: list[Lesion]) -> str:
    """The most frequent morphology (ties: the earlier word of the contract's list)."""
    counts = Counter(les.morphology for les in lesions)
    best = max(counts.values())
    return next(m for m in (*MORPHOLOGIES, *counts) if counts.get(m) == best)


def region_symmetry(findings: Findings, key: MeasurementGroupKey) -> tuple[float, str] | None:
    """(SI, call) of a region pair from the summary, for a left or right group, else None."""
    entry = findings.summary.symmetry.by_region.get(key.region)
    if key.side not in ("left", "right") or not entry or entry.get("index") is None:
        return None
    cut = float((findings.parameters or {}).get("symmetry_si_cut", 0.7))
    index = float(entry["index"])
    return index, "symmetric" if index >= cut else "asymmetric"


def _group(findings: Findings, plan: SegmentPlan, key: MeasurementGroupKey,
           lesions: list[Lesion], seed: str) -> Any:
    algorithm = _algorithm(findings)
    measurements = _measurements(lesions, algorithm)
    evaluations = [hd.sr.QualitativeEvaluation(
        dc.MORPHOLOGY_NAME, dc.MORPHOLOGY_CODES[predominant_morphology(lesions)])]
    symmetry = region_symmetry(findings, key)
    if symmetry is not None:
        evaluations.append(hd.sr.QualitativeEvaluation(dc.SYMMETRY_NAME,
                                                       dc.SYMMETRY_CALLS[symmetry[1]]))
        measurements.append(hd.sr.Measurement(name=_SYMMETRY_INDEX, value=symmetry[0],
                                              unit=_NO_UNITS, algorithm_id=algorithm))
    segment = hd.sr.ReferencedSegment(
        sop_class_uid=SegmentationStorage, sop_instance_uid=plan.sop_instance_uid,
        segment_number=plan.segment_number(key.layer),
        source_series=hd.sr.SourceSeriesForSegmentation(plan.ct_series_uid))
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=generate_uid(entropy_srcs=[seed, key.label]), identifier=key.label),
        referenced_segment=segment, finding_type=dc.CALCIFIED_STRUCTURE,
        finding_category=dc.CATEGORY, algorithm_id=algorithm,
        finding_sites=_finding_sites(key), measurements=measurements,
        qualitative_evaluations=evaluations)


def _summary_group(findings: Findings, seed: str) -> Any:
    summary = findings.summary
    algorithm = _algorithm(findings)
    evaluations = [
        hd.sr.QualitativeEvaluation(dc.EXTENT_NAME, dc.EXTENT_CODES[summary.extent]),
        hd.sr.QualitativeEvaluation(dc.FORM_NAME, dc.FORM_CODES[summary.form]),
        hd.sr.QualitativeEvaluation(dc.SYMMETRY_NAME,
                                    dc.SYMMETRY_CALLS[summary.symmetry.call]),
    ]
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
        measurements=measurements, qualitative_evaluations=evaluations)
    for text, name in _texts(findings):
        group[0].ContentSequence.append(hd.sr.TextContentItem(
            name=name, value=text, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    return group


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
    groups = []
    for plan in plans:
        mine = [les for les in findings.lesions
                if any(les.id in ids for ids in plan.lesion_ids.values())]
        groups += [_group(findings, plan, key, lesions, seed)
                   for key, lesions in group_lesions(mine).items()]
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
    sr.CodingSchemeIdentificationSequence = [_local_scheme()]
    # The explanations hold symbols outside Latin-1 (≥, →): write the text as UTF-8.
    sr.SpecificCharacterSet = "ISO_IR 192"
    return sr


def _local_scheme() -> Dataset:
    item = Dataset()
    item.CodingSchemeDesignator = dc.LOCAL_SCHEME
    item.CodingSchemeName = "napari-calcinosis local codes"
    item.CodingSchemeResponsibleOrganization = "napari-calcinosis"
    return item


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
