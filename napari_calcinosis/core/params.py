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
        A candidate is kept only when its peak exceeds the level of its host tissue (a ring
        2.5-4 mm around it; at least soft tissue at the body surface) by this many noise SDs
        (rejects noise voxels above the threshold), for a search volume of
        ``cnr_reference_voxels`` voxels (see ``cnr_by_search_volume``). 5.4 true SDs keep the
        largest noise peaks of SD-30 phantoms below the bar.
    cnr_by_search_volume : bool
        Scale the bar with the number of voxels searched: the body's soft tissue and cavity
        and, apart, the much smaller skin shell each get
        ``min_cnr + sqrt(2 ln n) - sqrt(2 ln cnr_reference_voxels)`` (the expected largest
        noise peak grows like ``sqrt(2 ln n)``; at most 1 SD either way), so that false noise
        peaks stay about as rare whatever the series length and in the skin
        (:func:`.ct_noise.cnr_bars`).
    cnr_reference_voxels : float
        The search volume for which ``min_cnr`` holds (about a 2.5 mm torso series).
    noise_sd_hu : float or None
        Image noise SD; estimated from the soft tissue when ``None``.
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
    bone_knob_max_mm3 : float
        A piece of a bone component narrower than three coarse blocks in-plane and at most
        this large is released from the bone, but for blocks that share a side with the
        bone's core (a deposit beside a rib joined to it on the coarse grid);
        full-resolution connectivity then decides. 0 turns this off.
    bone_margin_mm : float
        Shell around bone in which no candidate is kept (cortex edges, partial volume).
    muscle_wall_mm : float
        Depth below the subcutaneous fat down to which soft tissue counts as the muscle wall;
        deeper soft tissue is cavity, except behind the spine (the back muscles) and air
        (lungs, bowel gas), which is cavity at any depth.
    cartilage_excess_hu : float
        A calcification deep to the fat in the front of the chest whose surrounding tissue
        (upper quartile of a 1-2.5 mm ring) is at least this much denser than soft tissue
        (hyaline cartilage ~100-120 HU against muscle ~50 HU), or that touches the lung,
        lies in costal cartilage.
    vessel_corridor_mm : float
        A calcification in the cavity within this distance of the spine (or of the midline in
        the chest) lies on the aorta or its branches (``vessel``), else it is ``visceral``.
    anterior_max_deg, posterior_min_deg : float
        Angle about the body axis (0 = anterior midline, 180 = posterior) that splits the
        anterior, lateral and posterior regions.
    shoulder_below_notch_mm : float
        The shoulder girdle begins this far below the top of the sternum.
    gluteal_below_crest_mm : float
        The gluteal region and pelvis begin this far below the iliac crest.
    head_max_area_cm2 : float
        A scan without lungs whose largest body section is smaller than this is a head/neck.
    thin_bone_reach_mm : float
        In a stack thinner than 80 mm, dense pieces this close to bone count as bone (the
        3-D continuity of ribs and processes is not seen).
    visceral_min : int
        Visceral calcifications needed to call the viscera involved (one granuloma is an
        incidental finding).
    midline_tolerance_mm : float
        Distance from the mid-sagittal plane within which a lesion is ``midline``.
    symmetry_partner_mm : float
        Largest distance between a lesion and the mirror image of its partner.
    symmetry_si_cut : float
        A region pair is symmetric when its symmetry index reaches this value.
    symmetry_pair_fraction : float
        Share of involved region pairs that must be symmetric for a ``symmetric`` call.
    symmetry_burden : str
        What the symmetry index compares per region pair: ``"count"`` (number of deposits,
        robust to partial volume and to deposits of unequal size) or ``"volume"``.
    symmetry_min_pair : int
        Region pairs with fewer lateral deposits than this are pooled into one pair before
        the call (the SI of one deposit against two is noise).
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
    min_cnr: float = 5.4
    cnr_by_search_volume: bool = True
    cnr_reference_voxels: float = 4.0e6
    noise_sd_hu: float | None = None
    body_threshold_hu: float = -500.0
    fat_range_hu: tuple[float, float] = (-190.0, -30.0)
    muscle_range_hu: tuple[float, float] = (-29.0, 150.0)
    skin_thickness_mm: float = 2.5
    tissue_grid_mm: float = 3.0
    bone_hu: float = 300.0
    bone_min_volume_mm3: float = 4000.0
    bone_knob_max_mm3: float = 500.0
    bone_margin_mm: float = 1.5
    muscle_wall_mm: float = 15.0
    cartilage_excess_hu: float = 35.0
    vessel_corridor_mm: float = 60.0
    anterior_max_deg: float = 64.0
    posterior_min_deg: float = 116.0
    shoulder_below_notch_mm: float = 15.0
    gluteal_below_crest_mm: float = 30.0
    head_max_area_cm2: float = 350.0
    thin_bone_reach_mm: float = 10.0
    visceral_min: int = 3
    midline_tolerance_mm: float = 5.0
    symmetry_partner_mm: float = 15.0
    symmetry_si_cut: float = 0.7
    symmetry_pair_fraction: float = 2.0 / 3.0
    symmetry_burden: str = "count"
    symmetry_min_pair: int = 4
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
