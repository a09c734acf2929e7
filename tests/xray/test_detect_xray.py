"""Known-answer tests of the radiograph detector on synthetic chests, and real-file checks.

The synthetic chest is a projection-like image: a body whose beam path length falls to zero
at the outline (so the outline is soft, as on film), two lungs that remove attenuation, a spine
band, rib arcs with cortical edges, and dots of known size and contrast placed tangentially
at the outline, over soft tissue, over the lungs and beside the spine.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy.special import expit

from napari_calcinosis.types import AnalysisError, Radiograph, SeriesInfo
from napari_calcinosis.types.findings import LAYERS, MORPHOLOGIES, REGIONS, SIDES
from napari_calcinosis.xray import XrayResult, analyze_radiograph
from napari_calcinosis.xray._anatomy import segment_anatomy
from napari_calcinosis.xray._candidates import Candidate, hessian_ratio
from napari_calcinosis.xray._detect import XrayParams
from napari_calcinosis.xray._lookalikes import ThoraxFrame, judge
from napari_calcinosis.xray._noise import dog, noise_correlation, noise_gains
from napari_calcinosis.xray._prep import prepare

SIZE_MM = (380.0, 360.0)

# (row mm, column mm from the image centre, diameter mm, contrast, where)
DOTS = [
    (150.0, 144.0, 3.0, 0.08, "outline"),   # tangential, image right = patient left (L,F)
    (250.0, -144.0, 2.5, 0.08, "outline"),  # tangential, patient right
    (340.0, 60.0, 2.5, 0.06, "soft_tissue"),
    (120.0, -70.0, 3.0, 0.08, "lung"),
    (200.0, 75.0, 2.0, 0.06, "lung"),
    (90.0, 100.0, 4.0, 0.10, "lung"),
    (300.0, -30.0, 1.5, 0.06, "mediastinum"),
]


def synth_chest(spacing_mm: float, *, noise: float = 0.01, dots=DOTS, seed: int = 0,
                extra=None, lateral: bool = False
                ) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """A synthetic chest image (larger = more attenuating) and its dots in pixels.

    ``lateral`` gives one lung field and the spine as a band at large column (posterior).
    """
    rows, cols = int(SIZE_MM[0] / spacing_mm), int(SIZE_MM[1] / spacing_mm)
    y = (np.arange(rows, dtype=np.float32) * spacing_mm)[:, None]
    x = (np.arange(cols, dtype=np.float32) * spacing_mm - SIZE_MM[1] / 2)[None, :]
    half_width, depth = 150.0, 110.0
    img = np.zeros((rows, cols), np.float32)
    img += 0.004 * 2 * depth * np.sqrt(np.clip(1 - (x / half_width) ** 2, 0, None))
    for centre_x in (-10.0,) if lateral else (-70.0, 70.0):
        inside = 1 - ((x - centre_x) / 52.0) ** 2 - ((y - 170.0) / 120.0) ** 2
        img -= 0.004 * 2 * 80.0 * np.sqrt(np.clip(inside, 0, None))
    spine_x = 95.0 if lateral else 0.0
    img += 0.15 * expit(-(np.abs(x - spine_x) - 20.0) / 1.5) * (y > 30)
    for side in () if lateral else (-1, 1):
        on = (side * x > 15) & (side * x < half_width - 6)
        cols_on = np.nonzero(on[0])[0]
        xs = x[:, cols_on]
        for k in range(9):
            dist = np.abs(y - (60.0 + 26.0 * k + 0.006 * (xs - side * 40) ** 2)) - 5.0
            img[:, cols_on] += 0.06 * expit(-dist / 0.8) + 0.03 * np.exp(-((dist / 0.8) ** 2))
    img = ndi.gaussian_filter(img, 0.6 / spacing_mm)
    truth = []
    for row_mm, col_mm, diameter, contrast, *_ in dots:
        row, col = row_mm / spacing_mm, (col_mm + SIZE_MM[1] / 2) / spacing_mm
        reach = int(diameter / spacing_mm) + 5
        r0, c0 = int(row) - reach, int(col) - reach
        yy, xx = np.mgrid[r0: r0 + 2 * reach, c0: c0 + 2 * reach] * spacing_mm
        disk = np.hypot(yy - row_mm, xx - (col_mm + SIZE_MM[1] / 2)) <= diameter / 2
        blurred = ndi.gaussian_filter(disk.astype(np.float32), 0.25 / spacing_mm)
        img[r0: r0 + 2 * reach, c0: c0 + 2 * reach] += contrast * blurred
        truth.append((row, col, diameter))
    if extra is not None:
        img += extra(*np.broadcast_arrays(y, x)).astype(np.float32)
    rng = np.random.default_rng(seed)
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise)
    return img, truth


def make_radiograph(image: np.ndarray, spacing_mm: float | None, *,
                    orientation=("L", "F"), view: str | None = "frontal",
                    body_part: str = "CHEST") -> Radiograph:
    return Radiograph(
        image=image, info=SeriesInfo(series_instance_uid="2.25.1", body_part=body_part),
        view=view, view_position="PA" if view == "frontal" else "LL",
        patient_orientation=tuple(orientation),
        pixel_spacing_mm=None if spacing_mm is None else (spacing_mm, spacing_mm),
        spacing_source="none" if spacing_mm is None else "PixelSpacing")


def match(result: XrayResult, truth, tolerance_px: float) -> tuple[list, list]:
    """Pair each true dot with the nearest lesion within tolerance; return pairs and extras."""
    pairs, used = [], set()
    for t_row, t_col, _diameter in truth:
        best = None
        for lesion in result.lesions:
            d = np.hypot(lesion.centroid_index[0] - t_row, lesion.centroid_index[1] - t_col)
            if d <= tolerance_px and lesion.id not in used and (best is None or d < best[0]):
                best = (d, lesion)
        pairs.append(None if best is None else best[1])
        if best is not None:
            used.add(best[1].id)
    return pairs, [les for les in result.lesions if les.id not in used]


#: Dots over the lungs are set aside by default (``over_lung``); the measurement tests keep
#: them to check sizes and attributes wherever a dot lies.
MEASURE_ALL = XrayParams(reject_over_lung=False)


@pytest.fixture(scope="module")
def chest_04():
    image, truth = synth_chest(0.4)
    return truth, analyze_radiograph(make_radiograph(image, 0.4), params=MEASURE_ALL)


@pytest.fixture(scope="module")
def chest_02():
    image, truth = synth_chest(0.2)
    return truth, analyze_radiograph(make_radiograph(image, 0.2), params=MEASURE_ALL)


def test_dots_over_the_lungs_are_set_aside_and_the_others_kept():
    image, truth = synth_chest(0.4)
    result = analyze_radiograph(make_radiograph(image, 0.4))
    pairs, extras = match(result, truth, 1.5 / 0.4)
    for dot, lesion in zip(DOTS, pairs):
        assert (lesion is None) == (dot[4] == "lung"), dot
    assert len(extras) <= 1
    over_lung = [x for x in result.rejected if x["reason"] == "over_lung"]
    for dot, (row, col, _) in zip(DOTS, truth):
        if dot[4] == "lung":
            assert any(np.hypot(x["row"] - row, x["col"] - col) < 4 for x in over_lung), dot


def test_params_frozen_and_serialisable():
    params = XrayParams()
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.min_cnr = 1.0  # type: ignore[misc]
    as_dict = params.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["radii_mm"] == list(params.radii_mm)


@pytest.mark.parametrize("fixture", ["chest_04", "chest_02"])
def test_every_dot_found_with_size_and_no_false_positive(fixture, request):
    truth, result = request.getfixturevalue(fixture)
    spacing = 0.4 if fixture == "chest_04" else 0.2
    pairs, extras = match(result, truth, 1.5 / spacing)
    assert all(p is not None for p in pairs), [t for t, p in zip(truth, pairs) if p is None]
    assert len(extras) <= 1, [(e.centroid_index, e.extra) for e in extras]
    for (_, _, diameter), lesion in zip(truth, pairs):
        true_area = np.pi * diameter**2 / 4
        assert lesion.area_mm2 == pytest.approx(true_area, rel=0.45), (diameter, lesion)
        assert lesion.max_diameter_mm == pytest.approx(diameter, abs=0.8), (diameter, lesion)
        assert lesion.volume_mm3 is None and lesion.peak_hu is None
        assert lesion.centroid_mm is None


def test_attributes_follow_the_geometry(chest_04):
    truth, result = chest_04
    pairs, _ = match(result, truth, 1.5 / 0.4)
    by_where = {dot[4]: [] for dot in DOTS}
    for dot, lesion in zip(DOTS, pairs):
        by_where[dot[4]].append(lesion)
        assert lesion.side == ("left" if dot[1] > 5 else "right" if dot[1] < -5 else "midline")
        assert lesion.layer in LAYERS and lesion.side in SIDES
        assert lesion.region in REGIONS and lesion.morphology in MORPHOLOGIES
    for lesion in by_where["outline"]:
        assert lesion.extra["tangential"] is True
        assert lesion.layer in ("skin", "subcutaneous")
        assert lesion.extra["confidence"] == "high"
    assert [les.region for les in by_where["outline"]] == ["axilla", "chest_wall_lateral"]
    for lesion in by_where["lung"] + by_where["mediastinum"]:
        assert lesion.layer == "unknown" and lesion.extra["tangential"] is False
        assert lesion.extra["confidence"] == "low"
    assert {les.extra["projected_over"] for les in by_where["lung"]} == {"lung"}
    punctate = pairs[4]  # 2 mm round dot
    assert punctate.morphology == "punctate"
    assert pairs[5].morphology == "nodular"  # 4 mm


def test_labels_and_masks_match_the_lesions(chest_02):
    _, result = chest_02
    labels = result.lesion_labels
    assert labels.dtype == np.int32 and labels.shape == (1900, 1800)
    assert set(np.unique(labels)) == {0, *[les.id for les in result.lesions]}
    for lesion in result.lesions:
        rows, cols = np.nonzero(labels == lesion.id)
        assert rows.size == lesion.extra["area_px"]
        assert lesion.area_mm2 == pytest.approx(rows.size * 0.04, rel=1e-6)
        assert lesion.centroid_index == pytest.approx([rows.mean(), cols.mean()], abs=0.01)
    for name in ("body", "lungs", "bone"):
        assert result.masks[name].shape == labels.shape and result.masks[name].dtype == bool
    # the body is the central 300 mm; its outline lies within ~8 mm of the true one
    row = result.masks["body"][950]
    cols = np.nonzero(row)[0]
    assert abs(cols[0] * 0.2 - 30.0) < 8 and abs(cols[-1] * 0.2 - 330.0) < 8
    assert result.masks["lungs"][850, 900 - 350] and not result.masks["lungs"][850, 900]
    midline = result.midline_col
    assert midline.shape == (1900,) and np.all(np.abs(midline - 900) < 10)


def test_summary_comes_from_distribution(chest_04):
    _, result = chest_04
    assert result.summary.source == "radiograph"
    assert result.summary.lesion_count == len(result.lesions)
    assert result.summary.by_region.get("axilla") == 1


def test_without_spacing_sizes_are_pixels_and_a_warning_says_so():
    image, truth = synth_chest(0.4)
    result = analyze_radiograph(make_radiograph(image, None), params=MEASURE_ALL)
    pairs, extras = match(result, truth, 4.0)
    assert sum(p is not None for p in pairs) >= 6 and len(extras) <= 1
    assert any("no valid pixel spacing" in w for w in result.warnings)
    for lesion in result.lesions:
        assert lesion.area_mm2 is None and lesion.max_diameter_mm is None
        assert lesion.extra["area_px"] > 0 and lesion.extra["max_diameter_px"] > 0
    assert not result.spacing_known


def test_side_follows_patient_orientation():
    image, truth = synth_chest(0.4, dots=DOTS[:2])
    flipped = analyze_radiograph(make_radiograph(image[:, ::-1].copy(), 0.4,
                                                 orientation=("R", "F")))
    assert sorted(les.side for les in flipped.lesions) == ["left", "right"]
    # the patient's left (truth dot 0) is now at small column
    left = [les for les in flipped.lesions if les.side == "left"][0]
    assert left.centroid_index[1] == pytest.approx(image.shape[1] - 1 - truth[0][1], abs=4)
    unlabelled = analyze_radiograph(make_radiograph(image, 0.4, orientation=()))
    assert any("no PatientOrientation" in w for w in unlabelled.warnings)
    assert unlabelled.side_convention.startswith("assumed")
    assert sorted(les.side for les in unlabelled.lesions) == ["left", "right"]


def test_lateral_view_has_no_side_and_no_midline():
    image, _ = synth_chest(0.4, dots=DOTS[:2], lateral=True)
    result = analyze_radiograph(make_radiograph(image, 0.4, orientation=("A", "F"),
                                                view="lateral"))
    assert result.midline_col is None
    assert len(result.lesions) == 2
    for lesion in result.lesions:
        assert lesion.side == "midline" and lesion.extra["side_known"] is False
        assert lesion.layer in ("skin", "subcutaneous")
        assert lesion.region in ("chest_wall_anterior", "chest_wall_posterior")
    assert {les.region for les in result.lesions} == {"chest_wall_anterior",
                                                      "chest_wall_posterior"}
    assert result.summary.symmetry.call == "insufficient"


def _disk(y, x, row, col, radius, value, blur=0.3):
    return value * ndi.gaussian_filter((np.hypot(y - row, x - col) <= radius).astype(float),
                                       blur / 0.4)


def _sphere(y, x, row, col, radius, value):
    """Projection of a ball: a round shadow with soft edges (nodules, nipples)."""
    inside = 1 - ((y - row) ** 2 + (x - col) ** 2) / radius**2
    return value * np.sqrt(np.clip(inside, 0, None))


def test_lookalikes_on_an_image_are_not_reported():
    def lookalikes(y, x):
        out = _disk(y, x, 330.0, -90.0, 3.0, 1.5)  # a dense button (metal): device
        out += _sphere(y, x, 170.0, -75.0, 7.0, 0.12)  # a 14 mm lung nodule
        for side in (-1, 1):  # nipple shadows: mirrored 6 mm balls over the lower lungs,
            out += _sphere(y, x, 245.0, side * 80.0, 3.0, 0.08)  # only one above threshold
        line = np.exp(-(((x + 35.0) - 0.3 * (y - 200.0)) / 0.5) ** 2) * (abs(y - 330) < 25)
        return out + 0.08 * line  # a thin skin fold over the soft tissue
    image, _ = synth_chest(0.4, dots=[], extra=lookalikes)
    result = analyze_radiograph(make_radiograph(image, 0.4))
    assert result.lesions == []

    def reasons_near(row_mm, col_mm, reach_mm=4.0):
        return {r["reason"] for r in result.rejected
                if np.hypot(r["row"] * 0.4 - row_mm, r["col"] * 0.4 - 180 - col_mm) < reach_mm}
    assert "device" in reasons_near(330.0, -90.0)
    # nipple shadows are low-contrast spots over the lungs: rejected as such or as texture
    assert reasons_near(245.0, -80.0) | reasons_near(245.0, 80.0) <= {"nipple", "texture"}
    assert reasons_near(330.0, 4.0, 30.0) <= {"ridge", "line", "edge", "texture"}


@pytest.fixture(scope="module")
def frame_04():
    image, _ = synth_chest(0.4, dots=[])
    params = XrayParams()
    work = prepare(make_radiograph(image, 0.4), params)
    anatomy = segment_anatomy(work, params=params, view="frontal", body_part="CHEST")
    return ThoraxFrame(anatomy=anatomy, work=work, left_sign=1, down_sign=1)


def _candidate(frame, row_mm, col_mm, **kw):
    """A measured-looking candidate at a place given in mm from the image's top centre."""
    values = dict(cnr=20.0, radius_mm=1.2, contrast=0.08, peak_value=0.6, hessian_ratio=0.9,
                  diameter_mm=2.5, length_mm=2.5, width_mm=2.3, area_px=30, isolation=0.9,
                  texture_cnr=20.0)
    values.update(kw)
    centre_col = frame.work.image.shape[1] / 2
    return Candidate(row=row_mm / 0.4, col=centre_col + col_mm / 0.4, **values)


def test_rules_name_each_lookalike(frame_04):
    cases = {
        "": dict(),
        "texture": dict(texture_cnr=2.0),
        "ridge": dict(hessian_ratio=0.1),
        "edge": dict(isolation=0.2),
        "line": dict(length_mm=15.0, width_mm=1.0),
        "too_small": dict(diameter_mm=0.5, length_mm=0.5, width_mm=0.5),
        "device": dict(peak_value=5.0, contrast=1.0),
    }
    for reason, kw in cases.items():
        cand = _candidate(frame_04, 330.0, 60.0, **kw)
        judge([cand], frame_04, XrayParams())
        assert cand.reason == reason, (reason, cand)
    nodule = _candidate(frame_04, 150.0, -70.0, diameter_mm=12.0, length_mm=12.0, width_mm=11.0)
    big = _candidate(frame_04, 340.0, 60.0, diameter_mm=12.0, length_mm=12.0, width_mm=11.0)
    spine = _candidate(frame_04, 200.0, 5.0)
    cartilage = _candidate(frame_04, 230.0, -25.0, length_mm=6.0, width_mm=2.0)
    knob = _candidate(frame_04, 90.0, 30.0, length_mm=6.0, width_mm=2.0)
    pair = [_candidate(frame_04, 245.0, side * 80.0, diameter_mm=6.0, length_mm=6.0, width_mm=5.5)
            for side in (-1, 1)]
    single = _candidate(frame_04, 120.0, -110.0, diameter_mm=6.0, length_mm=6.0, width_mm=5.5)
    judge([nodule, big, spine, cartilage, knob, *pair, single], frame_04, XrayParams())
    assert nodule.reason == "lung_nodule" and big.reason == "too_large"
    assert spine.reason == "over_spine"
    assert cartilage.reason == "costal_cartilage" and knob.reason == "vessel"
    # a lone nipple-sized dot over a lung: one view cannot tell it from a granuloma
    assert [c.reason for c in pair] == ["nipple", "nipple"] and single.reason == "over_lung"
    single = _candidate(frame_04, 120.0, -110.0, diameter_mm=6.0, length_mm=6.0, width_mm=5.5)
    judge([single], frame_04, MEASURE_ALL)
    assert single.reason == ""


def test_hessian_ratio_tells_blobs_from_ridges():
    assert hessian_ratio(-1.0, 0.0, -1.0) == pytest.approx(1.0)
    assert hessian_ratio(-1.0, 0.0, -0.05) == pytest.approx(0.05)
    assert hessian_ratio(-1.0, 0.0, 0.5) < 0
    assert hessian_ratio(1.0, 0.0, 1.0) == -1.0


def test_no_background_means_no_tangential_call():
    image, _ = synth_chest(0.4, dots=[(300.0, 60.0, 3.0, 0.08)])
    cropped = image[:, 200:700]  # the body fills the image: no outline
    result = analyze_radiograph(make_radiograph(cropped.copy(), 0.4))
    assert any("outline is outside the image" in w for w in result.warnings)
    assert len(result.lesions) == 1 and result.lesions[0].layer == "unknown"


def test_progress_and_errors():
    calls = []
    image, _ = synth_chest(0.4, dots=[])
    analyze_radiograph(make_radiograph(image[::2, ::2].copy(), 0.8),
                       progress=lambda f, m: calls.append((f, m)))
    assert calls[0][0] == 0.0 and calls[-1][0] == 1.0
    assert all(b[0] >= a[0] for a, b in zip(calls, calls[1:]))
    with pytest.raises(AnalysisError, match="at least 64"):
        analyze_radiograph(make_radiograph(np.zeros((30, 30), np.float32), 0.4))
    bad = image.copy()
    bad[5, 5] = np.nan
    with pytest.raises(AnalysisError, match="non-finite"):
        analyze_radiograph(make_radiograph(bad, 0.4))
    with pytest.raises(AnalysisError, match="blank"):
        analyze_radiograph(make_radiograph(np.ones((200, 200), np.float32), 0.4))


@pytest.mark.parametrize("width", [0.0, 0.6, 1.0])
def test_noise_gains_match_the_measured_noise(width):
    """Known answer: the predicted spread of each scale's response on pure noise."""
    rng = np.random.default_rng(5)
    noise = rng.standard_normal((400, 400))
    if width:
        noise = ndi.gaussian_filter(noise, width)
    high = noise - ndi.gaussian_filter(noise, 1.0)
    sigmas = (0.9, 1.5, 2.5)
    predicted = noise_gains(noise_correlation(high, np.ones(high.shape, bool), 20), sigmas, 2.0)
    for sigma, gain in zip(sigmas, predicted):
        measured = dog(noise, sigma, 2.0)[30:-30, 30:-30].std() / high[30:-30, 30:-30].std()
        assert gain == pytest.approx(measured, rel=0.15), (width, sigma)


def test_gaussian_levels_match_direct_filtering():
    from napari_calcinosis.xray._candidates import gaussian_levels

    rng = np.random.default_rng(5)
    image = ndi.gaussian_filter(rng.normal(size=(120, 140)), 1.0).astype(np.float32)
    sigmas = [0.9, 1.4, 1.8, 2.8, 4.2]
    levels = gaussian_levels(image, sigmas)
    assert sorted(levels) == sorted(sigmas)
    for sigma in sigmas:  # the cascade equals one filter of the total sigma (up to truncation)
        direct = ndi.gaussian_filter(image, sigma)
        assert np.abs(levels[sigma] - direct)[10:-10, 10:-10].max() < 2e-3 * np.ptp(image)


def test_a_dot_beside_an_edge_is_not_hidden_by_the_edges_wider_response():
    """A wide scale peaks on an edge beside a dot (a ridge-shaped Hessian), stronger than
    the dot's own scale does on the dot: the dot-shaped peak must win the suppression."""
    from napari_calcinosis.xray._candidates import space_peaks
    from napari_calcinosis.xray._scales import ScaleGrid, ScaleSpace

    yy, xx = np.mgrid[:80, :80].astype(np.float32)
    dot = np.exp(-((yy - 40) ** 2 + (xx - 40) ** 2) / (2 * 2.0**2))
    ridge = np.exp(-((xx - 43) ** 2) / (2 * 3.0**2))  # constant along rows: a ridge
    cnr = np.stack([0.5 * dot, ridge * np.exp(-((yy - 40) ** 2) / 800.0)])
    space = ScaleSpace([ScaleGrid(1, [0, 1], cnr, cnr, np.stack([dot, ridge]))], [2.0, 3.0])
    plain = space_peaks(space, 0.1, 5, ridge_ratio_max=-np.inf)  # every peak a "dot"
    ranked = space_peaks(space, 0.1, 5, ridge_ratio_max=0.4)
    assert (40, 40, 0) not in plain and (40, 43, 1) in plain
    assert ranked[0] == (40, 40, 0)


def test_fast_local_maxima_and_tophat_equal_the_library_filters():
    """Peaks by OpenCV's square dilation and the disc opening by its small footprints are
    exact replacements of the library filters (same edges)."""
    from skimage.morphology import disk, opening

    from napari_calcinosis.xray._candidates import _local_maxima, white_tophat

    rng = np.random.default_rng(11)
    stack = rng.integers(0, 60, size=(3, 70, 90)).astype(np.float32)
    stack[:, :, :30] = 0  # above-threshold pixels only in part: the filtered box is cut
    for half in (1, 3, 4, 6):
        size = (1, 2 * half + 1, 2 * half + 1)
        expected = np.nonzero((stack == ndi.maximum_filter(stack, size=size, mode="nearest"))
                              & (stack >= 45))
        got = _local_maxima(stack, 45, half)
        assert all(np.array_equal(a, b) for a, b in zip(expected, got)), half
    image = ndi.gaussian_filter(rng.normal(size=(90, 110)), 1.5).astype(np.float32)
    for radius in (2.0, 6.4, 11.0):
        footprint = disk(int(round(radius)), decomposition="sequence")
        assert np.array_equal(white_tophat(image, radius), image - opening(image, footprint))


def test_vectorised_hessian_ratios_equal_the_scalar_ones():
    """Peaks are ranked by the array version; it must agree with the per-spot one exactly."""
    from napari_calcinosis.xray._measure import hessian_ratios

    rng = np.random.default_rng(8)
    h = rng.normal(size=(3, 500))
    h[:, :5] = 0.0  # a flat spot (zero eigenvalues) and a dark one
    h[:, 5] = (1.0, 0.0, 1.0)
    expected = [hessian_ratio(*column) for column in h.T]
    assert np.array_equal(hessian_ratios(*h), np.array(expected))


@pytest.mark.parametrize("step", [1, 2])
def test_batched_texture_cnr_equals_the_per_spot_one(step):
    """Spots are scored in one batch; every score must equal the per-spot function's,
    including spots whose ring leaves the image or crosses the outline."""
    from napari_calcinosis.xray._prep import WorkImage
    from napari_calcinosis.xray._texture import texture_cnr, texture_cnrs

    rng = np.random.default_rng(9)
    shape = (240, 260)
    work = WorkImage(image=np.zeros(shape, np.float32), factor=1, spacing_mm=(0.25, 0.25),
                     stored_spacing_mm=(0.25, 0.25), spacing_known=True,
                     dead=np.zeros(shape, bool), scale=(0.0, 1.0), noise=0.01,
                     stored_shape=shape)
    small = (shape[0] // step, shape[1] // step)
    response = ndi.gaussian_filter(rng.normal(size=small), 1.5).astype(np.float32)
    depth = np.tile(np.linspace(-5.0, 30.0, small[1]), (small[0], 1))
    rows = np.r_[rng.integers(0, shape[0], 60), 0, shape[0] - 1, 5]
    cols = np.r_[rng.integers(0, shape[1], 60), 0, shape[1] - 1, 2]
    params = XrayParams()
    for outline in (None, depth):
        expected = [texture_cnr(work, response, r, c, 1.2, 4.0, params, outline, step=step)
                    for r, c in zip(rows, cols)]
        got = texture_cnrs(work, response, rows, cols, 1.2, 4.0, params, outline, step=step)
        assert np.array_equal(got, np.array(expected))
        if outline is not None:  # the spots at the left edge have no ring inside the body
            assert got[-1] == 0.0 and got[-3] == 0.0


@pytest.mark.parametrize("separation", [1, 2, 4, 7])
def test_separated_peaks_equal_marking_discs_on_a_mask(separation):
    """Greedy suppression by cells must keep the same peaks as marking each kept peak's
    disc (radius ``separation - 1``) on a mask of the image."""
    from skimage.morphology import disk

    from napari_calcinosis.xray._candidates import _take_separated

    rng = np.random.default_rng(separation)
    shape = (90, 70)
    rows, cols = rng.integers(0, shape[0], 800), rng.integers(0, shape[1], 800)
    ks = rng.integers(0, 5, 800)
    taken, expected = np.zeros(shape, bool), []
    offsets = np.argwhere(disk(separation - 1)) - (separation - 1)
    for row, col, k in zip(rows, cols, ks):
        if not taken[row, col]:
            expected.append((int(row), int(col), int(k)))
            r, c = offsets[:, 0] + row, offsets[:, 1] + col
            inside = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
            taken[r[inside], c[inside]] = True
    assert _take_separated(rows, cols, ks, shape, separation) == expected


def test_smoothed_patches_equal_the_whole_image_filtered():
    """Spots are measured on patches filtered one by one; they must equal the patches of
    the whole filtered image (to float rounding), at the image's edges too."""
    from napari_calcinosis.xray._filters import gaussian
    from napari_calcinosis.xray._measure import SmoothedPatches

    image = np.random.default_rng(3).normal(size=(120, 90)).astype(np.float32)
    whole, lazy = gaussian(image, 0.5), SmoothedPatches(image, 0.5)
    for rows, cols in ((slice(0, 20), slice(0, 15)), (slice(40, 77), slice(30, 61)),
                       (slice(100, 120), slice(70, 90)), (slice(1, 119), slice(2, 3))):
        # OpenCV's vector loops round the last bit differently near a patch's edge
        assert np.abs(lazy[rows, cols] - whole[rows, cols]).max() < 1e-6


def test_anatomy_grid_changes_equal_repeating_and_averaging():
    """The coarse anatomy grid's way back (each coarse pixel repeated, cut to the working
    shape) and its dead-strip share (the block mean of the mask) are exact."""
    from napari_calcinosis.xray._anatomy import _block_mean, _block_share, _Upsampler

    rng = np.random.default_rng(12)
    coarse = rng.integers(0, 3, size=(26, 31)).astype(np.int8)
    for step, shape in ((4, (101, 122)), (4, (104, 124)), (3, (77, 93)), (1, (26, 31))):
        expected = np.repeat(np.repeat(coarse, step, axis=0), step, axis=1)[: shape[0],
                                                                           : shape[1]]
        got = _Upsampler(step, shape)(coarse[: -(-shape[0] // step), : -(-shape[1] // step)])
        assert np.array_equal(got, expected), (step, shape)
    mask = rng.random((101, 122)) < 0.5
    for step in (1, 3, 4):
        share, mean = _block_share(mask, step), _block_mean(mask.astype(np.float32), step)
        assert np.allclose(share, mean, rtol=1e-6, atol=0)
        assert np.array_equal(share > 0.5, mean > 0.5)  # what the anatomy uses
