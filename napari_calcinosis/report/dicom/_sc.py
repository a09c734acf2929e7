"""``key_*.dcm``: each key image as a DICOM Secondary Capture image in the study it shows.

The key images (:mod:`.._key_images`) are renderings (MIPs with the lesions overlaid, the
radiograph with rings), so they go to a PACS as RGB Secondary Capture images (highdicom's
``SCImage``) of one new series in the source's study: patient and study attributes copied
from the source headers, ``ImageType`` DERIVED\\SECONDARY, the source instances listed in
``SourceImageSequence``, the caption in ``DerivationDescription``, the patient orientation
of rows and columns when known. The UIDs are derived from the content (like the SEG's), so
the same analysis sent twice stores the same instances. With ``context.anonymize`` the
source headers are de-identified first and the UIDs come from the shared ``uid_map``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from napari_calcinosis.files import atomic_write_with
from napari_calcinosis.types import AnalysisError, Findings

from .._anonymize import anonymize_header, study_identifying_values
from .._key_images import KeyImage, key_images
from ._seg import source_headers, source_names_as_given, with_type2_attributes

__all__ = ["SC_SERIES_NUMBER", "build_key_image_sc", "write_sc"]

SC_SERIES_NUMBER = 903
_ORIENTATION_LETTERS = set("APLRHF")


def _headers_of(image: KeyImage, *, anonymize: bool, uid_map: dict[str, str],
                secrets: list[str]) -> list[Dataset]:
    """The source headers a key image was made from (de-identified copies if asked)."""
    source = image.source
    if hasattr(source, "headers"):  # a Volume
        headers = source_headers(source, anonymize=anonymize, uid_map=uid_map,
                                 secrets=secrets)
        if image.source_slices is not None:
            present = [h for h in source.headers if h is not None]
            if len(present) == len(source.headers) == len(headers):
                headers = [headers[k] for k in image.source_slices]
        return headers
    header = getattr(source, "header", None)
    if header is None:
        return []
    header = with_type2_attributes(header)
    return [anonymize_header(header, uid_map, secrets=secrets) if anonymize else header]


def _orientation(image: KeyImage) -> tuple[str, str] | None:
    values = tuple(str(v).upper() for v in image.patient_orientation)
    if len(values) == 2 and all(len(v) == 1 and v in _ORIENTATION_LETTERS for v in values):
        return values  # type: ignore[return-value]
    return None


def build_key_image_sc(image: KeyImage, headers: list[Dataset], *, series_uid: str,
                       instance_number: int, software_version: str) -> hd.sc.SCImage:
    """One key image as an RGB Secondary Capture image of ``headers``' study.

    Raises
    ------
    AnalysisError
        When the image has no source header to take the study from.
    """
    if not headers:
        raise AnalysisError(f"Key image {image.name} has no DICOM source header, so it "
                            "cannot be stored in the study.")
    ref = headers[0]
    digest = hashlib.sha256(image.rgb.tobytes()).hexdigest()
    orientation = _orientation(image)
    with source_names_as_given():
        sc = hd.sc.SCImage.from_ref_dataset(
            ref, image.rgb, "RGB", 8, "PATIENT", series_instance_uid=series_uid,
            series_number=SC_SERIES_NUMBER,
            sop_instance_uid=generate_uid(entropy_srcs=["napari-calcinosis SC", series_uid,
                                                        image.name, digest]),
            instance_number=instance_number, manufacturer="napari-calcinosis",
            patient_orientation=orientation or ("L", "F"),
            transfer_syntax_uid="1.2.840.10008.1.2.1",
            series_description="Key images (napari-calcinosis)",
            software_versions=software_version)
    if orientation is None:  # unknown: empty, as type 2C allows, never a guess
        sc.PatientOrientation = ""
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.BurnedInAnnotation = "NO"
    sc.ImageComments = image.title
    sc.DerivationDescription = image.caption[:1024]
    sc.SourceImageSequence = [_reference(h) for h in headers]
    return sc


def _reference(header: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = header.SOPClassUID
    item.ReferencedSOPInstanceUID = header.SOPInstanceUID
    return item


def write_sc(findings: Findings, out_dir: str | Path, context: Any) -> list[Path]:
    """Format writer ``sc``: every key image as ``key_*.dcm`` (one series per study).

    Returns
    -------
    list of Path
        The files written; empty when there is no key image.
    """
    uid_map = context.uid_map
    result = context.result
    secrets = study_identifying_values(result.study) if context.anonymize else []
    images = key_images(findings, context)
    if not images:
        return []
    seed = [findings.study.get("study_instance_uid", ""), "key images",
            *(hashlib.sha256(i.rgb.tobytes()).hexdigest() for i in images)]
    series_uid = generate_uid(entropy_srcs=seed)
    version = findings.software.get("version", "")
    written = []
    for number, image in enumerate(images, start=1):
        headers = _headers_of(image, anonymize=context.anonymize, uid_map=uid_map,
                              secrets=secrets)
        sc = build_key_image_sc(image, headers, series_uid=series_uid,
                                instance_number=number, software_version=version)
        if context.anonymize:  # declared as the SR and SEG declare it (PS3.15)
            for keyword in ("PatientIdentityRemoved", "DeidentificationMethod"):
                if keyword in headers[0]:
                    setattr(sc, keyword, headers[0].get(keyword))
        path = Path(out_dir) / f"{image.name}.dcm"
        written.append(atomic_write_with(path, lambda tmp, ds=sc: ds.save_as(
            tmp, enforce_file_format=True)))
    return written
