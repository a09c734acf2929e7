"""End-to-end known-answer tests of the CT analysis on a small synthetic body."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_calcinosis.ct import TISSUE_NAMES, CTResult, analyze_volume, build_context
from napari_calcinosis.ct._detect import CTParams
from napari_calcinosis.ct._noise import cnr_bars
from napari_calcinosis.types import AnalysisError, SeriesInfo, Volume
from napari_calcinosis.types.findings import LAYERS, MORPHOLOGIES, REGIONS, SIDES

AXIAL = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
N, PIXEL, NZ, DZ = 200, 1.5, 16, 2.5
RADIUS = 120.0  # mm


def _sphere(hu, centre_mm, radius_mm, value):
    """Blend a sphere into ``hu`` (z, y, x in mm of the grid) with 4x supersampling."""
    zc, yc, xc = centre_mm
    sub = (np.arange(4) + 0.5) / 4 - 0.5
    k0, k1 = int((zc - radius_mm) // DZ) - 1, int((zc + radius_mm) // DZ) + 2
    i0, i1 = int((yc - radius_mm) // PIXEL) - 1, int((yc + radius_mm) // PIXEL) + 2
    j0, j1 = int((xc - radius_mm) // PIXEL) - 1, int((xc + radius_mm) // PIXEL) + 2
    for k in range(max(k0, 0), min(k1, hu.shape[0])):
        for i in range(i0, i1):
            for j in range(j0, j1):
                z = (k + sub[:, None, None]) * DZ
                y = (i + sub[None, :, None]) * PIXEL
                x = (j + sub[None, None, :]) * PIXEL
                occ = np.mean((z - zc) ** 2 + (y - yc) ** 2 + (x - xc) ** 2 <= radius_mm ** 2)
                hu[k, i, j] = hu[k, i, j] * (1 - occ) + value * occ


def _put(hu, centre, radius, layer, side, value=600.0):
    _sphere(hu, centre, radius, value)
    index = (centre[0] / DZ - 0.5, centre[1] / PIXEL - 0.5, centre[2] / PIXEL - 0.5)
    return index, layer, side


def synthetic_ct(*, deposits=True, noise=8.0, seed=0, nz=NZ, cavity_hu=35.0):
    """Body (skin 2, fat 14, muscle 14 mm, cavity with a pocket of bowel gas), vertebra,
    table, and five deposits.

    Returns the volume and the expected lesions as (index-space centre, layer, side).
    """
    yy, xx = np.mgrid[:N, :N]
    c = N / 2
    r = np.hypot(yy - c, xx - c) * PIXEL
    hu2 = np.full((N, N), -1000.0)
    for limit, value in ((RADIUS, 40.0), (RADIUS - 2, -100.0), (RADIUS - 16, 50.0),
                         (RADIUS - 30, cavity_hu)):
        hu2[r <= limit] = value
    gas = np.hypot(yy - (c - 45 / PIXEL), xx - (c - 25 / PIXEL)) * PIXEL <= 12.0
    hu2[gas] = -1000.0  # a loop of bowel with gas, in front
    spine_y = c + 40 / PIXEL
    spine = np.hypot(yy - spine_y, xx - c) * PIXEL
    hu2[spine <= 15] = 1000.0
    hu2[spine <= 13.5] = 200.0
    bottom = int(c + RADIUS / PIXEL) + 5
    hu2[bottom:bottom + 3, 10:-10] = 260.0  # CT table, 7 mm below the back
    hu = np.repeat(hu2[None], nz, axis=0)
    expected = []
    if deposits:
        mid = c * PIXEL
        zc = nz * DZ / 2
        plan = [  # angle (deg, 0 = patient left, -90 = anterior), depth below skin (mm)
            (0.0, 9.0, 2.0, "subcutaneous", "left"),
            (180.0, 9.0, 2.0, "subcutaneous", "right"),
            (-80.0, 1.0, 0.9, "skin", "left"),
            (135.0, 23.0, 2.0, "muscle", "right"),
        ]
        for angle, depth, rad, layer, side in plan:
            a = np.radians(angle)
            dy, dx = (RADIUS - depth) * np.sin(a), (RADIUS - depth) * np.cos(a)
            expected.append(_put(hu, (zc, mid + dy, mid + dx), rad, layer, side))
        # on the wall of the aorta, in front of the spine and left of the midline
        expected.append(_put(hu, (zc, mid + 13.0, mid + 14.0), 1.5, "vessel", "left"))
        # a deposit fused with the vertebra's cortex is bone, not a lesion
        _sphere(hu, (zc, spine_y * PIXEL + 15.0, mid), 2.0, 600.0)
    rng = np.random.default_rng(seed)
    hu = np.clip(np.rint(hu + rng.normal(0, noise, hu.shape)), -1024, 3071).astype(np.int16)
    origin = np.array([-(c - 0.5) * PIXEL, -(c - 0.5) * PIXEL, -100.0])
    info = SeriesInfo(series_instance_uid="2.25.1", modality="CT", slice_thickness_mm=DZ)
    return Volume(hu=hu, spacing_zyx_mm=(DZ, PIXEL, PIXEL), origin_lps_mm=origin,
                  direction_lps=AXIAL.copy(), info=info), expected


@pytest.fixture(scope="module")
def analysed():
    volume, expected = synthetic_ct()
    fractions = []
    result = analyze_volume(volume, progress=lambda f, m: fractions.append(f))
    return volume, expected, result, fractions


def _match(result: CTResult, centre_index, tol_vox=3.0):
    for lesion in result.lesions:
        if np.linalg.norm(np.subtract(lesion.centroid_index, centre_index)
                          * np.array([DZ, PIXEL, PIXEL]) / PIXEL) <= tol_vox * 1.5:
            return lesion
    return None


def test_finds_every_deposit_with_layer_and_side(analysed):
    _, expected, result, _ = analysed
    for centre, layer, side in expected:
        lesion = _match(result, centre)
        assert lesion is not None, f"missed the {layer} deposit at {centre}"
        assert (lesion.layer, lesion.side) == (layer, side)
    assert len(result.lesions) == len(expected)  # no table, no bone, no noise


def test_lesion_fields_follow_the_contract(analysed):
    volume, _, result, _ = analysed
    for i, lesion in enumerate(result.lesions, start=1):
        assert lesion.id == i
        assert lesion.layer in LAYERS and lesion.side in SIDES
        assert lesion.region in REGIONS and lesion.morphology in MORPHOLOGIES
        assert lesion.series_instance_uid == "2.25.1"
        np.testing.assert_allclose(lesion.centroid_mm,
                                   volume.index_to_lps(np.array(lesion.centroid_index)),
                                   atol=0.05)
        assert lesion.volume_mm3 > 0 and lesion.peak_hu >= 130
        assert lesion.extra["density_weight"] in (1, 2, 3, 4)
        assert lesion.extra["depth_mm"] >= 0
        json.dumps(lesion.to_json_dict())


def test_depth_below_skin(analysed):
    _, expected, result, _ = analysed
    skin = _match(result, expected[2][0])
    sub = _match(result, expected[0][0])
    assert skin.extra["depth_mm"] == pytest.approx(1.0, abs=1.0)
    assert sub.extra["depth_mm"] == pytest.approx(9.0, abs=1.5)


def test_regions_from_angle_about_the_body(analysed):
    _, expected, result, _ = analysed
    # no lungs and no pelvis in this slab of a large body: abdominal words by angle
    assert _match(result, expected[0][0]).region == "flank"
    assert _match(result, expected[2][0]).region == "abdominal_wall"
    assert _match(result, expected[3][0]).region == "lower_back"


def test_label_volumes(analysed):
    volume, _, result, _ = analysed
    assert result.lesion_labels.shape == volume.shape
    assert result.lesion_labels.dtype == np.int32
    assert set(np.unique(result.lesion_labels)) == set(range(len(result.lesions) + 1))
    for lesion in result.lesions:
        k, i, j = np.round(lesion.centroid_index).astype(int)
        window = result.lesion_labels[k, i - 1:i + 2, j - 1:j + 2]
        assert lesion.id in window
    assert result.tissue_labels.shape == volume.shape
    assert result.tissue_labels.dtype == np.uint8
    assert set(np.unique(result.tissue_labels)) <= set(TISSUE_NAMES)
    table = int(N / 2 + RADIUS / PIXEL) + 6
    assert not result.tissue_labels[:, table, 20:-20].any()  # the table is outside


def test_summary_params_midline_and_progress(analysed):
    _, _, result, fractions = analysed
    summary = result.summary
    assert summary.lesion_count == 4
    assert summary.incidental["vessel_wall"] == 1
    assert summary.deep_involvement["muscle"] is True
    assert summary.symmetry.call == "insufficient"  # only four soft-tissue deposits
    assert result.params == CTParams()
    json.dumps(result.params.to_dict())
    plane = result.midline["midplane"]
    assert plane["method"] == "spine"
    assert plane["point_lps_mm"][0] == pytest.approx(0.0, abs=1.0)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert result.threshold_hu == 130.0
    assert result.noise_sd_hu == pytest.approx(8.0, rel=0.3)


def test_empty_body_gives_empty_summary():
    volume, _ = synthetic_ct(deposits=False)
    result = analyze_volume(volume)
    assert result.lesions == []
    assert not result.lesion_labels.any()
    assert result.summary.extent == "none" and result.summary.lesion_count == 0


def test_adaptive_threshold_rises_on_noisy_scans():
    volume, _ = synthetic_ct(deposits=False, noise=60.0, seed=3)
    result = analyze_volume(volume, params=CTParams(adaptive=True))
    assert result.threshold_hu > 130.0
    assert any("Adaptive threshold" in w for w in result.warnings)
    assert [les for les in result.lesions if les.is_soft_tissue] == []


def test_not_a_volume_raises():
    volume, _ = synthetic_ct(deposits=False)
    volume.hu = volume.hu[0]
    with pytest.raises(AnalysisError, match="not a 3-D volume"):
        analyze_volume(volume)


def test_float_volume_gives_the_same_lesions(analysed):
    volume, expected, result, _ = analysed
    as_float = Volume(hu=volume.hu.astype(np.float32), spacing_zyx_mm=volume.spacing_zyx_mm,
                      origin_lps_mm=volume.origin_lps_mm, direction_lps=volume.direction_lps,
                      info=volume.info)
    again = analyze_volume(as_float)
    assert [(les.layer, les.side, les.peak_hu) for les in again.lesions] == \
        [(les.layer, les.side, les.peak_hu) for les in result.lesions]


def test_deposit_beside_a_bone_is_not_taken_for_bone():
    """A nodular deposit 4 mm outside the vertebra's cortex shares a block corner with it on
    the coarse grid, joins its component there and used to vanish into the bone; released
    from it, it is found. (A 90 mm stack: the 3-D bone model applies.)"""
    volume, _ = synthetic_ct(deposits=False, nz=36)
    hu = volume.hu.astype(np.float64)
    c = N / 2
    spine_mm = np.array([c + 40 / PIXEL, c]) * PIXEL
    offset = (15.0 + 4.0 + 3.0) / np.sqrt(2.0)  # cortex radius + gap + deposit radius
    centre = (36 * DZ / 2, spine_mm[0] + offset, spine_mm[1] + offset)
    _sphere(hu, centre, 3.0, 600.0)
    volume.hu = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    index = np.array(centre) / np.array([DZ, PIXEL, PIXEL]) - 0.5
    assert _match(analyze_volume(volume), index) is not None
    absorbed = analyze_volume(volume, params=CTParams(bone_knob_max_mm3=0.0))
    assert _match(absorbed, index) is None


@pytest.mark.parametrize("noise", [8.0, 25.0])
def test_noise_and_soft_tissue_level_are_measured_in_muscle(noise):
    """Measured in the muscle compartment (integer HU dequantised): on soft tissue of one
    level (50 HU) the noise within 5 % and the level within 3 HU of the truth."""
    volume, _ = synthetic_ct(deposits=False, noise=noise, seed=4, cavity_hu=50.0)
    soft = build_context(volume).soft
    assert soft.noise_sd_hu == pytest.approx(noise, rel=0.05)
    assert soft.median_hu == pytest.approx(50.0, abs=3.0)


def test_cnr_bar_follows_the_search_volume():
    """The skin shell, a small search volume, gets a lower bar than the body; a longer
    stack a higher one; without the scaling both are ``min_cnr``."""
    short = build_context(synthetic_ct(deposits=False)[0]).tissue
    long = build_context(synthetic_ct(deposits=False, nz=4 * NZ)[0]).tissue
    params = CTParams()
    body, skin = cnr_bars(short, params)
    assert params.min_cnr - 1.0 <= skin < body <= params.min_cnr + 1.0
    assert cnr_bars(long, params)[0] > body
    off = params.with_changes(cnr_by_search_volume=False)
    assert cnr_bars(short, off) == (params.min_cnr, params.min_cnr)
