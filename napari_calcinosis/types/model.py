"""Image objects shared by every step: a CT volume, a radiograph, a study.

Conventions (see docs/architecture.md):

* Array axes are ``(z, y, x)`` for volumes: ``(slice, row, column)`` with slices ascending
  along the slice normal (row cosine x column cosine) and rows/columns as stored.
  Radiographs are ``(row, column)`` in the stored pixel grid.
* Patient coordinates are DICOM LPS in millimetres (+x patient left, +y posterior, +z head).
* napari world coordinates are the patient coordinates in the order ``(z, y, x)``, so
  :meth:`Volume.napari_affine` maps an index ``(k, i, j)`` to ``(P_z, P_y, P_x)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class SeriesInfo:
    """Patient, study, series and acquisition facts of one image series.

    Strings are empty when the file does not say; numbers are ``None``.
    """

    series_instance_uid: str
    study_instance_uid: str = ""
    modality: str = ""
    series_description: str = ""
    series_number: int | None = None
    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    patient_age: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    accession_number: str = ""
    referring_physician: str = ""
    institution_name: str = ""
    manufacturer: str = ""
    manufacturer_model: str = ""
    body_part: str = ""
    frame_of_reference_uid: str = ""
    slice_thickness_mm: float | None = None
    kernel: str = ""
    kvp: float | None = None
    contrast_agent: str = ""

    def as_metadata(self) -> dict[str, Any]:
        """Plain ``dict`` copy (for ``layer.metadata`` and JSON)."""
        return dict(self.__dict__)


@dataclass
class Volume:
    """A CT (or other cross-sectional) series as one 3-D array in HU.

    Attributes
    ----------
    hu : numpy.ndarray
        ``(z, y, x)`` array, ``int16`` when the rescale allows it exactly, else ``float32``.
        Padding voxels (PixelPaddingValue) are set to ``padding_value_hu``.
    spacing_zyx_mm : tuple of float
        Slice spacing (from the positions, not SliceThickness), row spacing, column spacing.
    origin_lps_mm : numpy.ndarray
        Patient position of voxel ``(0, 0, 0)``.
    direction_lps : numpy.ndarray
        ``3 x 3``; column 0 is the unit slice direction, column 1 the unit direction of
        increasing row index (column cosines), column 2 that of increasing column index (row
        cosines), all in LPS.
    padding_mask : numpy.ndarray or None
        Boolean ``(z, y, x)`` mask of padding voxels, when the series has PixelPaddingValue.
    sop_instance_uids : list of str
        One per slice, in array order (for multi-frame: the same UID for every frame).
        ``""`` for a blank slice the loader inserted to fill a gap.
    files : list of Path or None
        Source file of each slice, in array order (``None`` for a filled gap slice).
    headers : list
        pydicom Datasets without pixel data, one per slice, for exporters (SR/SEG);
        ``None`` for a filled gap slice.
    """

    hu: np.ndarray
    spacing_zyx_mm: tuple[float, float, float]
    origin_lps_mm: np.ndarray
    direction_lps: np.ndarray
    info: SeriesInfo
    padding_mask: np.ndarray | None = None
    padding_value_hu: float = -1024.0
    sop_instance_uids: list[str] = field(default_factory=list)
    files: list[Path | None] = field(default_factory=list)
    headers: list[Any] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    gantry_tilt_deg: float = 0.0

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.hu.shape)  # type: ignore[return-value]

    def index_to_lps(self, index_zyx: np.ndarray) -> np.ndarray:
        """Patient LPS coordinates (mm) of voxel indices ``(..., 3)`` given as (k, i, j)."""
        idx = np.asarray(index_zyx, dtype=float)
        steps = idx * np.asarray(self.spacing_zyx_mm, dtype=float)
        return self.origin_lps_mm + steps @ self.direction_lps.T

    def lps_to_index(self, lps_mm: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`index_to_lps` (fractional indices)."""
        rel = np.asarray(lps_mm, dtype=float) - self.origin_lps_mm
        return (rel @ np.linalg.inv(self.direction_lps).T) / np.asarray(self.spacing_zyx_mm)

    def napari_affine(self) -> np.ndarray:
        """4x4 affine from data index (k, i, j) to napari world (P_z, P_y, P_x), in mm."""
        lin = self.direction_lps * np.asarray(self.spacing_zyx_mm)[None, :]
        affine = np.eye(4)
        affine[:3, :3] = lin[::-1, :]  # rows reordered to (z, y, x) of the patient
        affine[:3, 3] = self.origin_lps_mm[::-1]
        return affine

    def is_axis_aligned(self, tol: float = 1e-4) -> bool:
        """True when the napari affine is a positive diagonal (pure scale + translate)."""
        lin = self.napari_affine()[:3, :3]
        off_diagonal = lin - np.diag(np.diag(lin))
        return bool(np.all(np.abs(off_diagonal) < tol) and np.all(np.diag(lin) > 0))


@dataclass
class Radiograph:
    """A projection radiograph (CR, DX) ready to show and analyse.

    Attributes
    ----------
    image : numpy.ndarray
        ``(rows, columns)`` ``float32`` after the modality LUT, oriented so that a larger value
        is always more attenuating (brighter on screen): MONOCHROME1 data are inverted here.
    window : tuple of float or None
        Initial display ``(low, high)`` in the units of ``image``, from the file's VOI LUT or
        window (converted for MONOCHROME1), else ``None``.
    pixel_spacing_mm : tuple of float or None
        ``(row, column)`` spacing used for measurement, ``None`` when only pixels are known.
    spacing_source : str
        ``"PixelSpacing"``, ``"ImagerPixelSpacing"`` (at the detector, magnified) or ``"none"``.
    view : str or None
        ``"frontal"``, ``"lateral"`` or ``None`` when the file does not tell.
    view_position : str
        The file's ViewPosition (``PA``, ``AP``, ``LL``, ``RL``, ...), or ``""``.
    patient_orientation : tuple of str
        The file's PatientOrientation: direction of increasing column, then of increasing row
        (e.g. ``("L", "F")`` for a PA chest seen as usual). Empty when absent.
    """

    image: np.ndarray
    info: SeriesInfo
    photometric: str = "MONOCHROME2"
    window: tuple[float, float] | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    spacing_source: str = "none"
    view: str | None = None
    view_position: str = ""
    patient_orientation: tuple[str, ...] = ()
    image_laterality: str = ""
    sop_instance_uid: str = ""
    file: Path | None = None
    header: Any = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class SetAside:
    """A DICOM file that is not part of an image series the plugin shows, and why."""

    path: Path
    reason: str
    sop_class: str = ""
    series_instance_uid: str = ""


@dataclass
class Study:
    """Everything usable found under one path."""

    volumes: list[Volume] = field(default_factory=list)
    radiographs: list[Radiograph] = field(default_factory=list)
    set_aside: list[SetAside] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def study_instance_uid(self) -> str:
        for item in [*self.volumes, *self.radiographs]:
            if item.info.study_instance_uid:
                return item.info.study_instance_uid
        return ""

    @property
    def is_empty(self) -> bool:
        return not (self.volumes or self.radiographs)

    def set_aside_messages(self, *, names_shown: int = 3) -> list[str]:
        """One line per reason files were set aside, naming at most ``names_shown``."""
        by_reason: dict[str, list[str]] = {}
        for item in self.set_aside:
            by_reason.setdefault(item.reason, []).append(item.path.name)
        lines = []
        for reason, names in by_reason.items():
            shown = ", ".join(names[:names_shown])
            more = f" and {len(names) - names_shown} more" if len(names) > names_shown else ""
            lines.append(f"Set aside {shown}{more}: {reason}")
        return lines
