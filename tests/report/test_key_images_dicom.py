"""Format ``sc``: the key images as DICOM Secondary Capture images of the study they show.

Real files: the CT slab (``tests/data/realct``) and a real PA chest radiograph
(``RG1_UNCR.dcm`` of pydicom-data). Each key image's DICOM copy is pixel for pixel its PNG,
sits in the source's study (patient and study attributes copied), lists the source instances
it was made from, says which way its rows and columns run, and is anonymised with the rest
of an anonymised export.
"""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import pydicom
import pytest

from napari_calcinosis.run import run_analysis

SLAB = Path(__file__).resolve().parents[1] / "data" / "realct" / "pancreas-ct-cbct-seg-001-slab8"


def _check_copy(out: Path, name: str, source: pydicom.Dataset) -> pydicom.Dataset:
    sc = pydicom.dcmread(out / f"{name}.dcm")
    assert sc.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    assert (sc.pixel_array == iio.imread(out / f"{name}.png")).all()
    assert sc.PhotometricInterpretation == "RGB" and list(sc.ImageType) == ["DERIVED",
                                                                           "SECONDARY"]
    assert sc.StudyInstanceUID == source.StudyInstanceUID
    assert sc.PatientID == source.PatientID and sc.StudyDate == source.StudyDate
    assert sc.SeriesInstanceUID != source.SeriesInstanceUID and sc.SeriesNumber == 903
    assert sc.DerivationDescription and sc.BurnedInAnnotation == "NO"
    return sc


def test_ct_key_images_reference_the_slices_they_show(tmp_path):
    out = tmp_path / "ct"
    written = run_analysis(SLAB, out, formats=["png", "sc"], use_annotations=False)
    assert [p.name for p in written if p.suffix == ".dcm"] == [
        "key_ct_coronal_mip.dcm", "key_ct_axial_slab.dcm"]
    slices = {str(ds.SOPInstanceUID): ds for ds in
              (pydicom.dcmread(p, stop_before_pixels=True) for p in SLAB.glob("*.dcm"))}
    first = next(iter(slices.values()))
    coronal = _check_copy(out, "key_ct_coronal_mip", first)
    axial = _check_copy(out, "key_ct_axial_slab", first)
    assert coronal.SeriesInstanceUID == axial.SeriesInstanceUID
    assert list(coronal.PatientOrientation) == ["L", "F"]
    assert list(axial.PatientOrientation) == ["L", "P"]
    every = {str(i.ReferencedSOPInstanceUID) for i in coronal.SourceImageSequence}
    slab = {str(i.ReferencedSOPInstanceUID) for i in axial.SourceImageSequence}
    assert every == set(slices) and slab and slab <= every
    # the slab is contiguous slices (20 mm, or all of a thinner volume)
    positions = sorted(float(slices[u].ImagePositionPatient[2]) for u in slab)
    steps = {round(b - a, 3) for a, b in zip(positions, positions[1:])}
    assert len(steps) <= 1
    # the same analysis gives the same instances (sending twice stores nothing new)
    again = run_analysis(SLAB, tmp_path / "again", formats=["sc"], use_annotations=False)
    assert [pydicom.dcmread(p).SOPInstanceUID for p in again] == \
        [coronal.SOPInstanceUID, axial.SOPInstanceUID]


def test_radiograph_key_image_keeps_the_files_orientation(testdata, tmp_path):
    path = testdata("RG1_UNCR.dcm")
    source = pydicom.dcmread(path, stop_before_pixels=True)
    out = tmp_path / "cr"
    run_analysis(path, out, formats=["png", "sc"], use_annotations=False)
    (name,) = [p.stem for p in out.glob("*.dcm")]
    sc = _check_copy(out, name, source)
    assert list(sc.PatientOrientation) == list(source.PatientOrientation)
    assert [str(i.ReferencedSOPInstanceUID) for i in sc.SourceImageSequence] == \
        [str(source.SOPInstanceUID)]


@pytest.mark.parametrize("study", ["ct", "cr"])
def test_anonymized_key_images_carry_no_identity(testdata, tmp_path, study):
    path = SLAB if study == "ct" else testdata("RG1_UNCR.dcm")
    source = pydicom.dcmread(next(SLAB.glob("*.dcm")) if study == "ct" else path,
                             stop_before_pixels=True)
    out = tmp_path / "anon"
    run_analysis(path, out, formats=["json", "sc"], anonymize=True, use_annotations=False)
    findings_uid = json.loads((out / "findings.json").read_text())["study"][
        "study_instance_uid"]
    for file in out.glob("*.dcm"):
        sc = pydicom.dcmread(file)
        assert sc.StudyInstanceUID == findings_uid != source.StudyInstanceUID
        assert str(sc.PatientName) != str(source.PatientName)
        assert str(source.PatientID) not in str(sc.PatientID)
        refs = [str(i.ReferencedSOPInstanceUID) for i in sc.SourceImageSequence]
        assert str(source.SOPInstanceUID) not in refs
