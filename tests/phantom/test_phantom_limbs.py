"""The phantom's arms (down, beside, up), their deposits and their radiographs; metal on the
film (lead markers, clips) and CR-style processing (issue 14, item 5)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from napari_calcinosis.phantom import (
    PhantomSpec,
    ProjectionParams,
    Tissue,
    make_ct_phantom,
    project_radiograph,
)
from napari_calcinosis.phantom._limbs import Limb, LimbSegment, limb_projection
from napari_calcinosis.phantom._xray import CR_PROCESSING
from napari_calcinosis.phantom._xray_image import hu_to_mu

CHEST = dict(z_range_mm=(300.0, 600.0), pixel_spacing_mm=2.8, slice_thickness_mm=5.0)


@pytest.fixture(scope="module")
def posed():
    return {pose: make_ct_phantom(PhantomSpec(seed=1, arms=pose, **CHEST))
            for pose in ("raised", "down", "beside", "up")}


def _axis_distance(point: np.ndarray, limb: Limb) -> tuple[float, LimbSegment]:
    best = (np.inf, limb.segments[0])
    for seg in limb.segments:
        axis = seg.b - seg.a
        u = float(np.clip((point - seg.a) @ axis / (axis @ axis), 0.0, 1.0))
        gap = float(np.linalg.norm(seg.a + u * axis - point))
        best = min(best, (gap, seg), key=lambda item: item[0])
    return best


def _depth_in(point: np.ndarray, limb: Limb) -> float:
    """How far inside the arm's outer surface (the union of its capsules) a point lies."""
    depths = []
    for seg in limb.segments:
        axis = seg.b - seg.a
        u = float(np.clip((point - seg.a) @ axis / (axis @ axis), 0.0, 1.0))
        depths.append(seg.outer_mm - float(np.linalg.norm(seg.a + u * axis - point)))
    return max(depths)


def test_poses_put_the_arms_where_they_say(posed):
    assert posed["raised"].model.parts.limbs == []
    reach = {}
    for pose in ("down", "beside", "up"):
        limbs = posed[pose].model.parts.limbs
        assert sorted(limb.side for limb in limbs) == [-1.0, 1.0]
        xc = posed[pose].model.body.xc
        reach[pose] = max(abs(seg.b[0] - xc) for limb in limbs for seg in limb.segments)
        tops = [max(seg.a[2], seg.b[2]) for limb in limbs for seg in limb.segments]
        bottoms = [min(seg.a[2], seg.b[2]) for limb in limbs for seg in limb.segments]
        if pose == "up":  # from the axilla up past the top of the shoulders
            assert min(bottoms) == pytest.approx(470.0 - 700.0) and max(tops) > 600.0 - 700.0
        else:  # hanging from below the shoulder to the wrist
            assert max(tops) == pytest.approx(505.0 - 700.0) and min(bottoms) < 200 - 700.0
    assert reach["beside"] > reach["down"] + 60.0  # abducted: the wrists lean far out
    with pytest.raises(ValueError, match="arms must be one of"):
        PhantomSpec(arms="akimbo")


def test_arm_deposits_lie_in_the_skin_and_fat_of_the_arm(posed):
    for pose in ("down", "beside", "up"):
        ct = posed[pose]
        on_arms = [t for t in ct.truth if t.region == "upper_limb"]
        assert len(on_arms) >= 4, pose
        assert {t.side for t in on_arms} == {"left", "right"}
        assert sum(t.partner_id is not None for t in on_arms) >= len(on_arms) // 2
        for t in on_arms:
            limb = next(lb for lb in ct.model.parts.limbs
                        if (lb.side > 0) == (t.side == "left"))
            depth = _depth_in(np.asarray(t.center_lps_mm), limb)
            assert 0.0 < depth < limb.skin_mm + limb.fat_mm, (pose, t)
            k, i, j = (int(round(v)) for v in t.center_index_zyx)
            assert ct.tissue_labels[k, i, j] in (Tissue.SKIN, Tissue.SUBCUTANEOUS_FAT)
    assert not any(t.region == "upper_limb" for t in posed["raised"].truth)


def test_raised_arms_keep_the_trunk_and_its_deposits_as_before(posed):
    """The arms' deposits come from a random stream of their own: the trunk's are the same
    deposits whatever the pose (same ids, places and sizes)."""
    trunk = {pose: [(t.region, t.side, t.diameter_mm, t.center_lps_mm) for t in ct.truth
                    if t.region != "upper_limb"] for pose, ct in posed.items()}
    assert trunk["down"] == trunk["raised"] == trunk["up"]


def test_limb_projection_is_the_chord_through_its_layers():
    """Known answer: a vertical arm segment seen at right angles, line integral at distance
    d from its axis = sum over the nested layers of (mu inside - mu outside) 2 sqrt(r^2 - d^2)."""
    seg = LimbSegment(np.array([0.0, 0.0, 100.0]), np.array([0.0, 0.0, -100.0]), 40.0, 11.0)
    limb = Limb(1.0, [seg], 2.0, 10.0)
    p = 0.25
    z_rows = 10.0 - p * np.arange(5)
    cols = -50.0 + p * np.arange(401)
    line, body_mm, bone = limb_projection([limb], z_rows, cols, 0, p, hu_to_mu)
    expected = np.zeros(cols.size)
    outside = 0.0
    for radius, hu in limb.radii_and_hu(seg):
        mu = float(hu_to_mu(np.float32(hu)))
        expected += (mu - outside) * 2.0 * np.sqrt(np.clip(radius ** 2 - cols ** 2, 0, None))
        outside = mu
    # the 3 x 3 supersampling averages across each layer's edge
    far = np.all([np.abs(np.abs(cols) - r) > 0.5 for r, _ in limb.radii_and_hu(seg)], axis=0)
    np.testing.assert_allclose(line[2][far], expected[far], rtol=2e-3, atol=2e-4)
    assert body_mm[2, 200] == pytest.approx(80.0, rel=1e-3)
    assert bone[2, 200] and not bone[2, np.argmin(np.abs(cols - 20.0))]


def _edge_columns(image: np.ndarray, rows, col_range: slice, from_left: bool) -> np.ndarray:
    """Sub-pixel column where each row first rises half-way from the air to the arm."""
    out = []
    for r in rows:
        prof = image[r, col_range].astype(float)
        if not from_left:
            prof = prof[::-1]
        air, inside = np.median(prof[:20]), np.percentile(prof, 60)
        half = air + 0.5 * (inside - air)
        k = int(np.argmax(prof > half))
        frac = (half - prof[k - 1]) / max(prof[k] - prof[k - 1], 1e-9)
        out.append(k - 1 + frac)
    return np.asarray(out)


@pytest.mark.parametrize("pose", ["down", "beside"])
def test_arm_outline_is_smooth_at_a_fine_pixel(posed, pose):
    """At 0.2 mm the arm's outer outline follows a straight segment with no stair steps
    (the coarse 2 mm rendering drew steps of 10 pixels, which the detector called)."""
    ct = posed[pose]
    p = 0.2
    xray = project_radiograph(ct, params=ProjectionParams(pixel_spacing_mm=p, noise_level=1e-6,
                                                          seed=1))
    limb = next(lb for lb in ct.model.parts.limbs if lb.side < 0)  # patient's right: low cols
    seg = limb.segments[1]  # upper arm, 420 -> 330 above the buttocks
    top, bottom = (xray.lps_to_pixel(seg.a)[0], xray.lps_to_pixel(seg.b)[0])
    rows = np.arange(int(top) + 15, int(bottom) - 15)
    outer = xray.lps_to_pixel(seg.a - np.array([seg.outer_mm + 30.0, 0, 0]))[1]
    start = int(max(outer, 0))
    cols = _edge_columns(xray.image, rows, slice(start, start + int(80 / p)), True) + start
    fit = np.polyval(np.polyfit(rows, cols, 1), rows)
    assert np.abs(cols - fit).max() <= 1.0  # within 0.2 mm of a straight outline
    assert np.abs(np.diff(cols)).max() <= 0.6
    expected = np.array([xray.lps_to_pixel(seg.a + (seg.b - seg.a) * u
                                           - np.array([seg.outer_mm, 0, 0]))[1]
                         for u in (rows - top) / (bottom - top)])
    assert np.abs(cols - expected).max() * p <= 0.6  # where the arm's skin truly is


def test_tangential_truth_on_the_arms_follows_the_arm_outline(posed):
    """A deposit at the side of an arm is seen tangentially; one on its front or back, over
    the middle of the arm, en face (the path through the arm is short there too)."""
    checked = {"edge": 0, "face": 0}
    for pose in ("down", "beside", "up"):
        ct = posed[pose]
        xray = project_radiograph(ct, params=ProjectionParams(pixel_spacing_mm=0.5))
        by_id = {t.id: t for t in ct.truth}
        for t in xray.truth:
            lesion = by_id[t.id]
            if lesion.region != "upper_limb":
                continue
            limb = next(lb for lb in ct.model.parts.limbs
                        if (lb.side > 0) == (lesion.side == "left"))
            centre = np.asarray(lesion.center_lps_mm)
            _, seg = _axis_distance(centre, limb)
            u = (centre[2] - seg.a[2]) / (seg.b[2] - seg.a[2])
            sideways = abs(centre[0] - (seg.a[0] + (seg.b[0] - seg.a[0]) * u))
            if sideways >= seg.outer_mm - 12.0 and not t.over_bone:
                assert t.tangential, (pose, t)
                checked["edge"] += 1
            elif sideways <= seg.outer_mm - 22.0:
                assert not t.tangential, (pose, t)
                checked["face"] += 1
    assert checked["edge"] >= 2 and checked["face"] >= 2, checked


def test_markers_and_clips_are_on_the_film_with_their_truth(posed):
    ct = posed["down"]
    plain = project_radiograph(ct, params=ProjectionParams(pixel_spacing_mm=0.5, seed=1))
    marked = project_radiograph(ct, params=ProjectionParams(pixel_spacing_mm=0.5, seed=1,
                                                            markers=2, clips=3))
    marks = [lk for lk in marked.lookalikes if lk.id >= 1000]
    assert sorted(lk.kind for lk in marks) == ["lead_marker"] * 2 + ["surgical_clip"] * 3
    assert [(lk.kind, lk.id) for lk in plain.lookalikes] == \
        [(lk.kind, lk.id) for lk in marked.lookalikes if lk.id < 1000]
    added = marked.image.astype(int) - plain.image.astype(int)
    deposits = [t.visible_contrast for t in plain.truth if t.diameter_mm >= 2.0]
    for lk in marks:
        r, c = int(round(lk.row)), int(round(lk.col))
        window = added[r - 12: r + 13, c - 12: c + 13]
        assert window.max() > 2 * np.median(deposits), lk  # metal outshines calcium
        assert not any(np.hypot(t.row - lk.row, t.col - lk.col) * 0.5 < 14.0
                       for t in marked.truth), lk
    assert {lk.side for lk in marks if lk.kind == "lead_marker"} == {"left", "right"}


def test_cr_processing_changes_the_tone_scale_and_mono1_inverts(posed):
    ct = posed["up"]
    base = ProjectionParams(pixel_spacing_mm=0.6, seed=1)
    plain = project_radiograph(ct, params=base)
    cr = project_radiograph(ct, params=replace(base, **CR_PROCESSING))
    cr1 = project_radiograph(ct, params=replace(base, photometric="MONOCHROME1", **CR_PROCESSING))
    assert not np.array_equal(plain.image, cr.image)
    top = 2 ** cr.bits_stored - 1
    np.testing.assert_array_equal(cr1.image, top - cr.image)
    # the S-shaped tone scale gathers the body's values toward its two ends
    body = ndimage.binary_erosion(plain.image > np.percentile(plain.image, 40), iterations=5)
    spread = [np.percentile(img[body], 75) - np.percentile(img[body], 25)
              for img in (plain.image, cr.image)]
    assert spread[1] != pytest.approx(spread[0], rel=0.02)
    with pytest.raises(ValueError, match="tone scale"):
        project_radiograph(ct, params=replace(base, lut="gamma"))
