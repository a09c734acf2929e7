"""Every threshold of the radiograph analysis, in one frozen dataclass.

The values are design choices (DOMAIN.md "Radiograph facts") checked on the project's phantom
radiographs and on the real chest radiograph that pydicom-data ships; each field says what it
controls. Lengths are in millimetres of the image plane (at the detector when the spacing comes
from ImagerPixelSpacing, i.e. magnified by about 10 % on a PA chest).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class XrayParams:
    """Parameters of :func:`napari_calcinosis.core.detect_xray.analyze_radiograph`."""

    # --- working grids -------------------------------------------------------------------
    #: Target pixel size of the grid the detector works on (integer block-mean downsampling).
    work_spacing_mm: float = 0.4
    #: Pixel size of the coarse grid used for body, lung and bone masks.
    anatomy_spacing_mm: float = 1.6
    #: When the file gives no valid spacing, the image is assumed to span this many mm along
    #: its longer side (a chest detector is 35 x 43 cm); sizes are then only approximate.
    assumed_field_mm: float = 400.0
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
    #: Spots brighter than this quantile of the body are denser than bone: devices, jewellery.
    device_quantile: float = 0.9995
    #: ... and whose contrast exceeds this fraction of the body's intensity range.
    device_min_contrast: float = 0.35
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

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` of every parameter (tuples become lists, for JSON)."""
        out = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
