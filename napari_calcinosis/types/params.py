"""Every threshold of the analysis: one frozen parameters object per detector.

:class:`CTParams` holds the CT tissue model, detector, measurement and summary;
:class:`XrayParams` the radiograph detector.

Defaults come from ``docs/clinical.md`` (CT facts, symmetry) or are named design choices. The
parameters actually used are recorded in the output (:meth:`CTParams.to_dict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


class Parameters:
    """What every frozen parameters dataclass offers: a JSON-ready copy and changed copies."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready ``dict`` of every parameter (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in asdict(self).items()}  # type: ignore[call-overload]

    def with_changes(self, **changes: Any) -> Any:
        """Copy with some fields replaced (the object itself is frozen)."""
        return replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class CTParams(Parameters):
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
        (:func:`napari_calcinosis.ct._noise.cnr_bars`).
    cnr_reference_voxels : float
        The search volume for which ``min_cnr`` holds (about a 2.5 mm torso series).
    noise_sd_hu : float or None
        Image noise SD; estimated from the soft tissue when ``None``.
    body_threshold_hu : float
        Body versus air boundary.
    fat_range_hu, muscle_range_hu : tuple of float
        Fat and muscle HU ranges (docs/clinical.md: -190..-30 and -29..150).
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


# --- radiographs ---------------------------------------------------------------------------------
# The values are design choices (docs/clinical.md, "Chest radiographs") checked on the project's
# phantom radiographs and on the real chest radiograph that pydicom-data ships; each field says
# what it controls. Lengths are in millimetres of the image plane (at the detector when the spacing
# comes from ImagerPixelSpacing, i.e. magnified by about 10 % on a PA chest).


@dataclass(frozen=True)
class XrayParams(Parameters):
    """Parameters of :func:`napari_calcinosis.xray.analyze_radiograph`."""

    # --- working grids -------------------------------------------------------------------
    #: Target pixel size of the grid the detector works on (integer block-mean downsampling).
    work_spacing_mm: float = 0.4
    #: Pixel size of the coarse grid used for body, lung and bone masks.
    anatomy_spacing_mm: float = 1.6
    #: When the file gives no valid spacing, the image is assumed to span this many mm along
    #: its longer side (a chest detector is 35 x 43 cm); sizes are then only approximate.
    assumed_field_mm: float = 400.0
    #: A file's spacing is believed only when the film's longer side then measures within
    #: this range (a chest film is 24-43 cm; children's films are smaller); otherwise it is
    #: treated as missing.
    plausible_field_mm: tuple[float, float] = (200.0, 600.0)
    #: A border strip whose directional pixel differences are below this fraction of the
    #: image noise is collimator shadow, burnt-in label or padding ("dead"), not anatomy.
    dead_flatness_ratio: float = 0.3
    #: Candidates closer than this to the image edge or to a dead strip are not measured.
    border_margin_mm: float = 6.0

    # --- body outline ----------------------------------------------------------------------
    #: Background (direct exposure) is at most this fraction of the way from the background
    #: level to the tissue level.
    background_level_fraction: float = 0.25
    #: Smallest background component kept, as a fraction of the image.
    background_min_fraction: float = 0.002
    #: Direct exposure is flat: the median gradient inside it must stay below this fraction
    #: of the body's (a lung cut by the image edge is dark but not flat).
    background_max_gradient_ratio: float = 0.9

    # --- lungs, bone, midline ----------------------------------------------------------------
    lung_smooth_mm: float = 4.0
    #: A lung field is at least this fraction of the body area.
    lung_min_fraction: float = 0.02
    #: Lung fields keep at least this distance from the body outline (the chest wall).
    lung_min_depth_mm: float = 25.0
    #: Each lung field is at least this tall (a school-age child's lungs are ~12 cm; two
    #: dark regions smaller than this are an airway or a mouth, as on a dental panoramic).
    lung_min_height_mm: float = 100.0
    #: Lung fields on a frontal film are taller than wide: their mean height / width is at
    #: least this (1.5-2.8 on 30 real films, effusions and fibrosis included; the airway
    #: and mouth of a dental panoramic ~1.0).
    lung_min_aspect: float = 1.3
    #: Scales (sigma, mm) of the bright-ridge filter that finds ribs and clavicles.
    rib_sigmas_mm: tuple[float, ...] = (3.0, 4.5, 6.0)
    #: A pixel is ridge (bone) when its ridge response exceeds median + this x robust spread.
    rib_ridge_mads: float = 3.0
    #: The ribs' lateral arcs lie in a band this wide outside the lung fields.
    rib_band_mm: float = 10.0
    #: Half width of the spine band about the fitted midline.
    spine_half_width_mm: float = 22.0

    # --- candidates ------------------------------------------------------------------------
    #: Within this depth of the body outline, dots are sought on a white top-hat of the image
    #: (disc radius ``tophat_radius_mm``, wider than any deposit), which removes the
    #: outline's own edge but keeps a dot sitting on the skin line.
    skin_band_mm: float = 6.0
    tophat_radius_mm: float = 5.0
    #: Down to this depth below the outline the search runs on that top-hat as well: the
    #: outline's edge and the fat / muscle steps beside it would otherwise give the
    #: centre-surround filter a response stronger than a dot beside them. Deeper, it runs on
    #: the image itself (rib and vessel edges, which the top-hat keeps, are judged there).
    tophat_depth_mm: float = 20.0
    #: Deposit radii (mm) probed by the centre-surround (difference of Gaussians) filter.
    radii_mm: tuple[float, ...] = (0.5, 0.8, 1.2, 1.7, 2.4)
    #: Surround Gaussian sigma = this x centre sigma.
    dog_ratio: float = 2.0
    #: Scales whose centre sigma is at least this many working-grid pixels are computed on
    #: a half-resolution grid (2 x 2 block means; an eighth of the cost, same CNR up to
    #: ~1 %), their peaks placed back at full resolution. Set it high to keep every scale
    #: on the working grid.
    half_grid_min_sigma_px: float = 2.5
    #: Side of the blocks in which the local noise (robust spread of the filter) is measured.
    noise_block_mm: float = 16.0
    #: Minimum contrast-to-noise ratio of a candidate.
    min_cnr: float = 12.0
    #: Ring (mm beyond the spot's radius) whose filter response is the spot's surroundings.
    texture_ring_mm: tuple[float, float] = (1.0, 4.0)
    #: Minimum contrast over the texture of those surroundings (a dot must stand out): at
    #: the body outline (tangential), and (higher) en face, where vessels seen end-on, rib
    #: ends and crossings look like dots.
    min_texture_cnr: float = 6.0
    min_texture_cnr_en_face: float = 8.0
    #: ... en face over soft tissue clear of lung and bone (frontal chest, lungs found).
    min_texture_cnr_soft: float = 6.0
    #: ... and higher still over bone (rib ends, crossings and cortex make dots of their own).
    min_texture_cnr_over_bone: float = 10.0
    #: ... and on the top-hat below the skin band (``tophat_depth_mm``) for a spot less round
    #: than these (elongation above, Hessian ratio below): the top-hat cuts a rib's end into
    #: a blob of its own (on the phantoms and synthetic chests: deposits there have
    #: elongation <= 1.2 and Hessian ratio >= 0.74, rib ends 1.8-2.0 and 0.44-0.6).
    min_texture_cnr_near_outline: float = 10.0
    near_outline_round_elongation: float = 1.5
    near_outline_round_hessian: float = 0.65
    #: Peaks closer than this are the same candidate.
    min_separation_mm: float = 2.0
    #: Deposits reported are this size or larger (max diameter of the half-contrast region).
    min_diameter_mm: float = 0.8
    #: Larger spots are not calcinosis dots (lung nodules, nipples, bone islands...).
    max_diameter_mm: float = 8.0
    #: Hessian eigenvalue ratio |l2|/|l1| below this is a ridge (rib or clavicle edge, vessel).
    ridge_ratio_max: float = 0.4
    #: A spot whose half-contrast region is longer than this and thin is a line (fold, edge).
    max_length_mm: float = 9.0
    #: A dot must stand out in every direction: its contrast over the brightest eighth of the
    #: ring around it, as a fraction of its contrast, must reach this (edges score ~0).
    min_isolation: float = 0.3
    #: Elongation (major / minor axis) from which a spot is called linear.
    linear_elongation: float = 2.5

    # --- look-alikes -------------------------------------------------------------------------
    #: A dot seen en face over a lung field is set aside (``over_lung``): on one frontal view
    #: a granuloma or an end-on vessel looks the same, and real films are full of them.
    reject_over_lung: bool = True
    #: Spots brighter than this quantile of the body are denser than bone: devices, jewellery.
    device_quantile: float = 0.9995
    #: ... and whose contrast exceeds this fraction of the body's intensity range.
    device_min_contrast: float = 0.35
    #: Metal (lead markers, clips, wires, electrodes) has edges sharper than any bone's: a
    #: spot whose steepest edge exceeds this multiple of the 99th percentile of the edge
    #: strength over the film's bones (ribs, clavicles) is a device, whatever its brightness
    #: (an 8-bit export clips the mediastinum brighter than the metal).
    device_edge_ratio: float = 1.3
    #: ... when its contrast also reaches this fraction of the body's intensity range (the
    #: project's synthetic dots, sharper than its synthetic bones, stay below it). 0.1, 0.0
    #: and 0.2 gave the same hybrid sensitivity on the tune films; 0.1 one call fewer than 0.2.
    device_edge_min_contrast: float = 0.1
    #: A thin elongated spot (``device_elongation`` or more: a clip's limbs, a wire's end)
    #: is metal with edges this steep (same measure as ``device_edge_ratio``): calcium that
    #: thin is hardly as dense as cortical bone seen edge-on. Chosen on the tune films: 1.2
    #: takes one real call away and keeps every hybrid deposit; 1.1 and 1.0 lose one.
    device_edge_ratio_elongated: float = 1.2
    device_elongation: float = 1.8
    #: A spot whose contrast reaches this fraction of the body's intensity range is as dense
    #: as bone on bone (a clavicle's end seen end-on at the acromion, a humeral head's rim):
    #: a calcification of 10 mm or less in the soft tissue gives a fraction of it. On the
    #: tune films 0.5 changes nothing; 0.35 lost 3 of 57 hybrid deposits (8-bit films).
    dense_bone_min_contrast: float = 0.5
    #: ... and over bone (a rib band, a clavicle), where two bones cross: this fraction.
    dense_bone_min_contrast_over_bone: float = 0.35
    #: A thin elongated spot (``device_elongation`` or more) with this contrast is metal:
    #: a calcified band that thin gives a fraction of it. 0.3 and 0.35 give the same calls
    #: and hybrid sensitivity on the tune films; the phantom's steel clips need 0.3.
    device_elongated_min_contrast: float = 0.3
    #: A spot this close (mm, beyond the device's own radius) to a device is part of it: a
    #: letter's other stroke, the halo the film's unsharp masking draws around metal.
    device_halo_mm: float = 6.0
    #: A spot whose surrounding ring (1-3 mm out) is more than this share background is the
    #: tip of a corner or step of the body outline.
    max_background_share: float = 0.4
    #: Nipple shadows: a mirrored pair within this distance (mm), each 6-15 mm wide.
    nipple_pair_tolerance_mm: float = 15.0
    nipple_min_diameter_mm: float = 6.0
    #: ... lying at least this far from the midline (nipples are well lateral) ...
    nipple_min_offset_mm: float = 30.0
    #: ... or one spot whose mirror image reaches this CNR (and half the spot's own).
    nipple_partner_cnr: float = 4.0
    #: Lung nodules and other large round opacities over the lungs.
    lung_nodule_min_diameter_mm: float = 6.0

    # --- lesion attributes -------------------------------------------------------------------
    #: A spot within this depth of the body outline (and not over lung) is tangential.
    tangential_depth_mm: float = 15.0
    #: Tangential spots within this depth are in the skin, deeper ones subcutaneous.
    skin_depth_mm: float = 3.0
    #: Side "midline" within this distance of the fitted spine midline.
    midline_tolerance_mm: float = 5.0
    #: Diameter from which a round spot is "nodular" rather than "punctate".
    nodular_diameter_mm: float = 3.0
