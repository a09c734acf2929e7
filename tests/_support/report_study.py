"""A small analysed phantom study for the report-export tests (CT + frontal radiograph).

Known patient identity (to prove anonymization), a clinical input, and helpers that run
the writers the way the command line does (anonymized findings + shared ``uid_map``).
"""

from __future__ import annotations

from pathlib import Path

from napari_calcinosis.clinical import parse_clinical
from napari_calcinosis.dicom import load_study
from napari_calcinosis.phantom import PhantomSpec, ProjectionParams, make_ct_phantom, write_study
from napari_calcinosis.pipeline import analyze_study
from napari_calcinosis.report import ExportContext, anonymize_findings

SPEC = PhantomSpec(seed=21, z_range_mm=(380.0, 480.0), slice_thickness_mm=5.0,
                   pixel_spacing_mm=2.0, fov_mm=420.0)
XRAY = ProjectionParams(pixel_spacing_mm=1.0, z_range_mm=(380.0, 480.0))
PATIENT_NAME = "QUIRKE^JOSEPHINA"
PATIENT_ID = "PID-7403916"
BIRTH_DATE = "19470301"  # what dicom_write writes for every phantom
CLINICAL = {"age": 78, "sex": "F",
            "labs": {"calcium": {"value": 9.4, "unit": "mg/dL"},
                     "ck": {"value": 120, "unit": "U/L", "upper_limit": 200}},
            "history": {"connective_tissue_disease": "systemic_sclerosis", "dialysis": False}}


def make_result(folder: Path):
    """Write, load and analyse the small study; returns the ``AnalysisResult``."""
    ct = make_ct_phantom(SPEC)
    write_study(ct, folder, xray_views=("frontal",), xray_params=XRAY,
                patient_name=PATIENT_NAME, patient_id=PATIENT_ID)
    return analyze_study(load_study(folder), clinical=parse_clinical(CLINICAL))


def export_context(result, *, anonymize: bool = False):
    """``(findings, context)`` as the command line hands them to the writers."""
    context = ExportContext(result=result, anonymize=anonymize)
    findings = result.findings
    if anonymize:
        findings, context.uid_map = anonymize_findings(findings, result.study)
    return findings, context
