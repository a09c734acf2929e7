"""The phantom's specification and what rendering it gives: :class:`PhantomSpec`,
:class:`PhantomCT` and the truth lists.

``PhantomSpec(...)`` has keyword-default parameters: ``scenario`` (``'generalized'`` many
small symmetric skin and subcutaneous deposits in seven regions like the seed case;
``'localized'`` a one-sided cluster of 6-10 in one region, calcinosis circumscripta;
``'deep'`` fewer superficial deposits plus symmetric muscle deposits; ``'none'`` only
look-alikes), ``seed``, ``z_range_mm`` (anatomical heights covered: mm above the bottom of
the buttocks, 0, up to the top of the shoulders, ~600), ``slice_thickness_mm``,
``slice_spacing_mm``, ``pixel_spacing_mm``, ``fov_mm``, ``shape_zyx`` (overrides the grid
size), ``noise_sd_hu``, ``kernel_fwhm_mm``, ``body_size``, ``fat_thickness_mm``, ...

:func:`~napari_calcinosis.phantom.make_ct_phantom` renders it into a :class:`PhantomCT`:
``hu`` (int16, z/y/x), ``spacing_zyx_mm``, ``origin_lps_mm``, ``direction_lps`` (axial:
slices toward the head, rows toward posterior, columns toward the patient's left),
``tissue_labels`` (:class:`Tissue`), ``truth`` (:class:`TruthLesion` list), ``lookalikes``
(:class:`TruthLookalike` list), ``lesion_mask`` (truth lesion id per voxel) and
``as_volume()`` (a :class:`~napari_calcinosis.types.model.Volume`).

Deposits whose centre lies outside the covered slices are neither rendered nor listed. The
rendering (slice profile, partial volume, kernel blur, noise) is described in
:mod:`._shapes` and :mod:`._render`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_calcinosis.types import SeriesInfo, Volume

from ._body import LANDMARKS, TISSUE_HU, Z_OFFSET_MM, Tissue
from ._lesions import REGION_BOXES
from ._limbs import ARM_POSES

__all__ = [
    "LANDMARKS", "REGION_BOXES", "TISSUE_HU", "Z_OFFSET_MM", "PhantomCT", "PhantomSpec",
    "Tissue", "TruthLesion", "TruthLookalike",
]

SCENARIOS = ("generalized", "localized", "deep", "none")
#: Direction cosines of the axial grid: columns are the slice, row and column directions.
AXIAL_DIRECTION_LPS = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


@dataclass(frozen=True)
class PhantomSpec:
    """Parameters of one synthetic CT (all keyword, all with defaults).

    Attributes
    ----------
    scenario : str
        ``'generalized'``, ``'localized'``, ``'deep'`` or ``'none'``.
    seed : int
        Seeds body shape, deposits, look-alikes and noise.
    z_range_mm : tuple of float
        Anatomical heights (mm above the bottom of the buttocks) of the first slice and the
        limit of the last one. Landmarks: femoral heads 85, iliac crest 205, diaphragm domes
        ~340, carina 450, clavicles 535, humeral heads 545, lung apex 585.
    slice_thickness_mm, slice_spacing_mm : float
        Width of the rectangular slice profile and the distance between slice centres
        (spacing defaults to the thickness).
    pixel_spacing_mm, fov_mm : float
        In-plane pixel size and field of view (square matrix ``round(fov / pixel)``).
    shape_zyx : tuple of int or None
        Overrides the number of slices (from the start of ``z_range_mm``) and the matrix.
    noise_sd_hu : float
        Standard deviation of the added noise (slightly correlated in-plane).
    kernel_fwhm_mm : float
        In-plane blur of the reconstruction kernel (0 = none).
    body_size, fat_thickness_mm, skin_thickness_mm : float
        In-plane body scale, base subcutaneous fat thickness (it varies around and along the
        body: measure it) and skin thickness (thicker on the back).
    trabecular_hu : float
        Vertebral trabecular bone HU (overlaps calcification on purpose).
    body_offset_x_mm : float
        x of the patient's mid-sagittal plane (the image centre is x = 0).
    arms : str
        ``'raised'`` (out of the field, the default), ``'down'`` (hanging beside the body),
        ``'beside'`` (abducted, the axillae open) or ``'up'`` (raised beside the head, the
        upper arms in the field from the axillae up). Each arm in the field is a separate
        skin-fat-muscle-bone component carrying deposits of its own (region ``upper_limb``);
        the field of view widens to hold it (600 mm, 720 mm abducted). See :mod:`._limbs`.
    deposit_count_scale : float
        Multiplies the number of deposits of the scenario.
    localized_region, localized_side : str or None
        Region and side of the ``'localized'`` cluster (seeded choice when ``None``).
    """

    scenario: str = "generalized"
    seed: int = 0
    z_range_mm: tuple[float, float] = (0.0, 600.0)
    slice_thickness_mm: float = 5.0
    slice_spacing_mm: float | None = None
    pixel_spacing_mm: float = 1.4
    fov_mm: float = 460.0
    shape_zyx: tuple[int, int, int] | None = None
    noise_sd_hu: float = 15.0
    noise_correlation_px: float = 0.7
    kernel_fwhm_mm: float = 1.0
    body_size: float = 1.0
    fat_thickness_mm: float = 14.0
    skin_thickness_mm: float = 2.0
    trabecular_hu: float = 180.0
    body_offset_x_mm: float = 6.0
    arms: str = "raised"
    deposit_count_scale: float = 1.0
    localized_region: str | None = None
    localized_side: str | None = None

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown phantom scenario {self.scenario!r}; use one of "
                             f"{', '.join(SCENARIOS)}")
        if self.localized_region is not None and self.localized_region not in REGION_BOXES:
            raise ValueError(f"unknown region {self.localized_region!r} for a localized "
                             f"phantom; use one of {', '.join(REGION_BOXES)}")
        if self.arms not in ARM_POSES:
            raise ValueError(f"arms must be one of {', '.join(ARM_POSES)}, not {self.arms!r}")
        if self.slice_thickness_mm <= 0 or self.pixel_spacing_mm <= 0:
            raise ValueError("slice thickness and pixel spacing must be positive")

    @property
    def spacing_z_mm(self) -> float:
        return float(self.slice_spacing_mm or self.slice_thickness_mm)


@dataclass
class TruthLesion:
    """One rendered calcification and what a perfect reader would say about it.

    ``peak_hu_expected`` is measured on the noise-free rendered array (after partial volume
    and kernel blur): the highest HU a detector can hope to see, before noise.
    ``center_index_zyx`` is fractional ``(slice, row, column)``.
    """

    id: int
    center_lps_mm: tuple[float, float, float]
    center_index_zyx: tuple[float, float, float]
    diameter_mm: float
    axes_mm: tuple[float, float, float]
    volume_mm3: float
    peak_hu_true: float
    peak_hu_expected: float
    layer: str
    side: str
    region: str
    morphology: str
    depth_mm: float
    fat_thickness_mm: float
    partner_id: int | None = None


@dataclass
class TruthLookalike:
    """A structure that must not be reported as calcinosis cutis.

    ``kind``: ``costal_cartilage``, ``vessel_wall`` and ``granuloma`` (calcifications a report
    may list as incidental: cartilage, aortic wall, calcified lung granuloma), ``bone_island``
    (dense focus in a vertebral body), ``lung_nodule`` (soft tissue), ``nipple`` (soft-tissue
    bump, a radiograph look-alike) and ``table`` (the CT table).
    """

    id: int
    kind: str
    center_lps_mm: tuple[float, float, float]
    center_index_zyx: tuple[float, float, float]
    size_mm: float
    peak_hu_true: float | None
    peak_hu_expected: float | None
    layer: str
    side: str


@dataclass
class PhantomCT:
    """A rendered phantom CT with its ground truth (see the module docstring)."""

    hu: np.ndarray
    spacing_zyx_mm: tuple[float, float, float]
    origin_lps_mm: np.ndarray
    direction_lps: np.ndarray
    tissue_labels: np.ndarray
    truth: list[TruthLesion]
    lookalikes: list[TruthLookalike]
    spec: PhantomSpec
    slice_thickness_mm: float
    midline_x_mm: float
    lesion_mask: np.ndarray
    model: Any = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.hu.shape)  # type: ignore[return-value]

    def index_to_lps(self, index_zyx: np.ndarray) -> np.ndarray:
        """Patient LPS (mm) of fractional ``(slice, row, column)`` indices ``(..., 3)``."""
        steps = np.asarray(index_zyx, float) * np.asarray(self.spacing_zyx_mm)
        return self.origin_lps_mm + steps @ self.direction_lps.T

    def lps_to_index(self, lps_mm: np.ndarray) -> np.ndarray:
        """Fractional ``(slice, row, column)`` of patient LPS points ``(..., 3)``."""
        rel = np.asarray(lps_mm, float) - self.origin_lps_mm
        return (rel @ self.direction_lps) / np.asarray(self.spacing_zyx_mm)

    def as_volume(self, series_instance_uid: str = "2.25.0") -> Volume:
        """The CT as the reader's :class:`Volume` (for analysis without DICOM files)."""
        info = SeriesInfo(series_instance_uid=series_instance_uid, modality="CT",
                          series_description=f"Phantom {self.spec.scenario}",
                          slice_thickness_mm=self.slice_thickness_mm, kernel="PHANTOM",
                          kvp=120.0, patient_name="PHANTOM^CALCINOSIS")
        return Volume(hu=self.hu, spacing_zyx_mm=self.spacing_zyx_mm,
                      origin_lps_mm=self.origin_lps_mm.copy(),
                      direction_lps=self.direction_lps.copy(), info=info)
