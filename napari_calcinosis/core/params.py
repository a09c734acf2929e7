"""Every threshold of the CT analysis in one frozen parameters object.

Defaults come from ``DOMAIN.md`` (CT facts, symmetry) or are named design choices. The
parameters actually used are recorded in the output (:meth:`CTParams.to_dict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class CTParams:
    """Thresholds and sizes of the CT tissue model, detector, measurement and summary.

    Attributes
    ----------
    threshold_hu : float
        Calcium threshold (Agatston: 130 HU).
    min_area_mm2 : float
        Smallest in-plane area of a calcification on at least one slice (Agatston: 1 mm²).
    adaptive : bool
        Raise the threshold to ``median + adaptive_k * robust spread`` of the muscle
        compartment when that is higher (noisy or contrast-enhanced scans).
    adaptive_k : float
        Multiplier of the robust spread (1.4826 x MAD) for the adaptive threshold.
    min_cnr : float
        A candidate is kept only when its peak, after a small in-plane smoothing matched to a
        point-like deposit, exceeds the local soft-tissue level by this many noise SDs of the
        smoothed image (rejects clusters of noise voxels above the threshold).
    noise_sd_hu : float or None
        Image noise SD; estimated from the soft tissue when ``None``.
    smooth_sigma_mm : float
        In-plane Gaussian sigma of the matched smoothing used for ``min_cnr``.
    body_threshold_hu : float
        Body versus air boundary.
    fat_range_hu, muscle_range_hu : tuple of float
        Fat and muscle HU ranges (DOMAIN.md: -190..-30 and -29..150).
    skin_thickness_mm : float
        Thickness of the skin shell measured from the body outline.
    tissue_grid_mm : float
        Target voxel size of the coarse grid on which the tissue compartments are modelled
        (the candidates themselves are always found at full resolution).
    bone_hu : float
        Dense-structure threshold used to find the skeleton.
    bone_min_volume_mm3 : float
        A dense 3-D component at least this large (with its enclosed marrow) is bone.
    bone_margin_mm : float
        Shell around bone in which no candidate is kept (cortex edges, partial volume).
    muscle_closing_mm : float
        Closing radius that joins the muscle wall across small gaps before the subcutaneous
        fat is separated from deeper fat.
    cartilage_reach_mm : float
        A calcification inside the chest wall within this distance of a rib end, anterior and
        lateral of the sternum, is costal cartilage.
    midline_tolerance_mm : float
        Distance from the mid-sagittal plane within which a lesion is ``midline``.
    symmetry_partner_mm : float
        Largest distance between a lesion and the mirror image of its partner.
    symmetry_si_cut : float
        A region pair is symmetric when its symmetry index reaches this value.
    symmetry_pair_fraction : float
        Share of involved region pairs that must be symmetric for a ``symmetric`` call.
    symmetry_min_deposits : int
        Fewer soft-tissue deposits than this give the call ``insufficient``.
    punctate_max_mm, nodular_max_mm, mass_min_mm : float
        Morphology size classes (largest extent in mm).
    thick_slice_mm : float
        Slices thicker than this get a partial-volume warning.
    workers : int
        Threads for the per-slab work (scipy.ndimage releases the GIL).
    """

    threshold_hu: float = 130.0
    min_area_mm2: float = 1.0
    adaptive: bool = False
    adaptive_k: float = 3.0
    min_cnr: float = 4.5
    noise_sd_hu: float | None = None
    smooth_sigma_mm: float = 0.8
    body_threshold_hu: float = -500.0
    fat_range_hu: tuple[float, float] = (-190.0, -30.0)
    muscle_range_hu: tuple[float, float] = (-29.0, 150.0)
    skin_thickness_mm: float = 2.5
    tissue_grid_mm: float = 2.0
    bone_hu: float = 300.0
    bone_min_volume_mm3: float = 4000.0
    bone_margin_mm: float = 1.5
    muscle_closing_mm: float = 4.0
    cartilage_reach_mm: float = 25.0
    midline_tolerance_mm: float = 5.0
    symmetry_partner_mm: float = 15.0
    symmetry_si_cut: float = 0.7
    symmetry_pair_fraction: float = 2.0 / 3.0
    symmetry_min_deposits: int = 5
    punctate_max_mm: float = 3.0
    nodular_max_mm: float = 10.0
    mass_min_mm: float = 15.0
    thick_slice_mm: float = 3.0
    workers: int = 2

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready ``dict`` of every parameter (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def with_changes(self, **changes: Any) -> CTParams:
        """Copy with some fields replaced (the object itself is frozen)."""
        return replace(self, **changes)
