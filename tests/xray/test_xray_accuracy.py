"""Accuracy of the radiograph detector on phantom radiographs and on real chest radiographs.

Phantom radiographs (``napari_calcinosis.phantom._xray``) carry per-deposit truth: pixel position,
diameter, whether the ray crosses lung or bone, a contrast-to-noise ratio (peak contrast over
the local pixel noise before the chest-style processing), and on the presented image the
deposit's own contrast and the structure of its spot (how much the deposit-free image varies
across it). "Deposits of at least 2 mm that stand out against their surroundings" are read
here as: at least 2 mm, seen against soft tissue (not over a lung or bone), standing out
against the noise (truth CNR >= 12) and against the anatomy (its own contrast exceeds the
structure of its spot: a 2 mm deposit on a corner of the phantom's stepped outline, or on a
bone's edge, is no more than that corner). The issue asks for sensitivity >= 0.8 over those
deposits, pooled over several phantoms, noise levels and encodings (MONOCHROME1/2, with and
without PixelSpacing), and at most one reported lesion that is no deposit at all per image.
Lateral views are included; on them few deposits are tangential, so they weigh mostly on the
false-positive bound.

The real chest radiograph ``RG1_UNCR.dcm`` (PA, several lung nodules / metastases, no soft-tissue
calcification, PixelSpacing 0\\0) must give at most two lesions and none on a nodule; its JPEG
2000 twin the same.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from napari_calcinosis.dicom import load_study
from napari_calcinosis.phantom import (
    PhantomSpec,
    ProjectionParams,
    make_ct_phantom,
    project_radiograph,
    write_radiograph,
)
from napari_calcinosis.pipeline import not_analysed_reason
from napari_calcinosis.types import AnalysisError, Radiograph, SeriesInfo
from napari_calcinosis.xray import analyze_radiograph

COARSE = dict(z_range_mm=(300.0, 600.0), pixel_spacing_mm=2.8, slice_thickness_mm=5.0)
MIN_TRUTH_CNR = 12.0
OTHER_SEEDS = (1, 2, 4)

# Lung nodules of RG1 as (row, col, radius) in stored pixels. Found by looking at the
# image: /work/notes/screenshots/RG1_UNCR_half.png (half size) with circles drawn on the
# round opacities, then read back at full size; the radius covers each opacity's edge.
RG1_NODULES = [(740, 370, 80), (1150, 490, 110), (1300, 260, 80), (960, 470, 60),
               (670, 1350, 90), (860, 1470, 90), (1190, 1460, 100)]


def in_memory(xray, *, spacing: bool = True) -> Radiograph:
    """A Radiograph built from a phantom projection without going through DICOM."""
    image = xray.image.astype(np.float32)
    if xray.photometric == "MONOCHROME1":
        image = float(2**xray.bits_stored - 1) - image
    return Radiograph(
        image=image, info=SeriesInfo(series_instance_uid="2.25.7", body_part="CHEST"),
        photometric="MONOCHROME2", view=xray.view, view_position=xray.view_position,
        patient_orientation=tuple(xray.patient_orientation),
        pixel_spacing_mm=tuple(xray.pixel_spacing_mm) if spacing else None,
        spacing_source="PixelSpacing" if spacing else "none")


def through_dicom(ct, xray, folder, *, pixel_spacing: bool) -> Radiograph:
    path = folder / f"{xray.view}-{xray.photometric}-{pixel_spacing}.dcm"
    write_radiograph(ct, xray, path, patient_name="PHANTOM^XRAY", patient_id="X1",
                     series_number=10, include_pixel_spacing=pixel_spacing)
    study = load_study(path)
    assert len(study.radiographs) == 1
    return study.radiographs[0]


def score(xray, result) -> tuple[list[int], list[int], list]:
    """Eligible deposit ids, the ids found, and lesions that match no deposit at all."""
    spacing = xray.pixel_spacing_mm[0]
    found, false = set(), []
    for lesion in result.lesions:
        row, col = lesion.centroid_index
        hits = [t.id for t in xray.truth
                if np.hypot(row - t.row, col - t.col) * spacing <= max(2.0,
                                                                       t.diameter_mm / 2 + 1)]
        found.update(hits)
        if not hits:
            false.append(lesion)
    eligible = [t.id for t in xray.truth if t.diameter_mm >= 2.0 and t.cnr >= MIN_TRUTH_CNR
                and t.stands_out and not t.over_lung and not t.over_bone]
    return eligible, sorted(found), false


@pytest.fixture(scope="module")
def phantom_cases(tmp_path_factory):
    """(name, projection, radiograph as analysed) for several noise levels and encodings."""
    folder = tmp_path_factory.mktemp("xray-phantoms")
    generalized = make_ct_phantom(PhantomSpec(seed=0, **COARSE))
    quiet = ProjectionParams()
    m2 = project_radiograph(generalized, params=quiet)
    # the MONOCHROME1 file stores the inverse (the phantom's own test checks that identity)
    top = 2**m2.bits_stored - 1
    m1 = replace(m2, image=(top - m2.image).astype(np.uint16), photometric="MONOCHROME1")
    loud = project_radiograph(generalized, params=replace(quiet, noise_level=2.0))
    cases = [
        ("MONOCHROME2, PixelSpacing, via DICOM", m2,
         through_dicom(generalized, m2, folder, pixel_spacing=True)),
        ("MONOCHROME1, PixelSpacing, via DICOM", m1,
         through_dicom(generalized, m1, folder, pixel_spacing=True)),
        ("MONOCHROME2, ImagerPixelSpacing only, via DICOM", m2,
         through_dicom(generalized, m2, folder, pixel_spacing=False)),
        ("noise x2, no spacing at all", loud, in_memory(loud, spacing=False)),
    ]
    lateral = project_radiograph(generalized, view="lateral",
                                 params=replace(quiet, noise_level=0.5))
    cases.append(("lateral, noise x0.5", lateral, in_memory(lateral)))
    for seed in OTHER_SEEDS:  # other bodies and deposits, at half and full noise
        ct = make_ct_phantom(PhantomSpec(seed=seed, **COARSE))
        for noise in (0.5, 1.0):
            xray = project_radiograph(ct, params=replace(quiet, noise_level=noise, seed=seed))
            cases.append((f"seed {seed}, noise x{noise}", xray, in_memory(xray)))
        xray = project_radiograph(ct, view="lateral", params=replace(quiet, seed=seed))
        cases.append((f"seed {seed}, lateral", xray, in_memory(xray)))
    return cases


@pytest.fixture(scope="module")
def phantom_results(phantom_cases):
    return [(name, xray, rad, analyze_radiograph(rad)) for name, xray, rad in phantom_cases]


def _sensitivity(phantom_results) -> tuple[int, int]:
    eligible_total, found_total = 0, 0
    for _, xray, _, result in phantom_results:
        eligible, found, _ = score(xray, result)
        eligible_total += len(eligible)
        found_total += len(set(eligible) & set(found))
    return found_total, eligible_total


def test_phantom_at_most_one_false_positive_per_image(phantom_results):
    for name, xray, _, result in phantom_results:
        assert len(score(xray, result)[2]) <= 1, name


def test_phantom_sensitivity_target(phantom_results):
    print("\ncase                                              found/eligible  false")
    for name, xray, _, result in phantom_results:  # the table behind the note (-s)
        case_eligible, case_found, false = score(xray, result)
        hits = len(set(case_eligible) & set(case_found))
        print(f"{name:50s} {hits:3d}/{len(case_eligible):<3d}        {len(false)}")
    found, eligible = _sensitivity(phantom_results)
    print(f"{'pooled sensitivity':50s} {found:3d}/{eligible:<3d} = {found / eligible:.2f}")
    assert eligible >= 30
    assert found / eligible >= 0.8, (found, eligible)


def test_eligibility_keeps_deposits_on_smooth_soft_tissue():
    """The 'stands out' criterion is not what the detector finds: it is the phantom's own
    measurement, and it keeps most deposits beside the outline (not only easy ones)."""
    ct = make_ct_phantom(PhantomSpec(seed=0, **COARSE))
    xray = project_radiograph(ct)
    soft = [t for t in xray.truth if t.diameter_mm >= 3.0 and t.cnr >= MIN_TRUTH_CNR
            and t.layer == "subcutaneous" and not t.over_lung and not t.over_bone]
    assert soft and sum(t.stands_out for t in soft) >= 0.6 * len(soft)
    for t in xray.truth:
        assert t.visible_contrast > 0 and t.structure >= 0


def test_monochrome1_gives_the_same_dots_and_spacing_falls_back(phantom_results):
    by_name = {name: (rad, result) for name, _, rad, result in phantom_results}
    rad2, m2 = by_name["MONOCHROME2, PixelSpacing, via DICOM"]
    rad1, m1 = by_name["MONOCHROME1, PixelSpacing, via DICOM"]
    assert rad1.photometric == "MONOCHROME1" and rad2.photometric == "MONOCHROME2"
    assert np.array_equal(m1.lesion_labels, m2.lesion_labels)
    assert [les.area_mm2 for les in m1.lesions] == [les.area_mm2 for les in m2.lesions]
    rad_i, imager = by_name["MONOCHROME2, ImagerPixelSpacing only, via DICOM"]
    assert rad_i.spacing_source == "ImagerPixelSpacing" and rad2.spacing_source == "PixelSpacing"
    assert any("ImagerPixelSpacing" in w for w in imager.warnings)
    # ImagerPixelSpacing is 1.1 x PixelSpacing in the phantom: areas in mm2 grow by 1.21
    by_place = {tuple(np.round(les.centroid_index)): les for les in m2.lesions}
    twins = [(by_place[key], les) for les in imager.lesions
             if (key := tuple(np.round(les.centroid_index))) in by_place]
    assert twins
    for plain, magnified in twins:
        assert magnified.area_mm2 == pytest.approx(plain.area_mm2 * 1.21, rel=0.15)


def test_phantom_attributes_match_the_truth(phantom_results):
    _, xray, _, result = phantom_results[0]
    by_id = {t.id: t for t in xray.truth}
    checked = 0
    for lesion in result.lesions:
        row, col = lesion.centroid_index
        near = [t for t in by_id.values() if np.hypot(row - t.row, col - t.col) * 0.5 <= 3.0]
        if not near:
            continue
        truth = min(near, key=lambda t: np.hypot(row - t.row, col - t.col))
        assert lesion.side == truth.side
        if truth.tangential and lesion.extra["tangential"]:
            assert lesion.layer in ("skin", "subcutaneous")
        checked += 1
    assert checked >= 8


def test_phantom_without_deposits_gives_at_most_one_lesion():
    ct = make_ct_phantom(PhantomSpec(seed=3, scenario="none", **COARSE))
    xray = project_radiograph(ct)
    result = analyze_radiograph(in_memory(xray))
    assert len(result.lesions) <= 1
    assert result.summary.lesion_count == len([les for les in result.lesions
                                               if les.is_soft_tissue])


@pytest.fixture(scope="module")
def rg1_results(testdata):
    out = {}
    for name in ("RG1_UNCR.dcm", "RG1_J2KR.dcm"):
        rad = load_study(testdata(name)).radiographs[0]
        out[name] = (rad, analyze_radiograph(rad))
    return out


def test_rg1_reports_at_most_two_lesions_none_on_a_nodule(rg1_results):
    rad, result = rg1_results["RG1_UNCR.dcm"]
    assert rad.pixel_spacing_mm is None  # PixelSpacing 0\0 is refused by the loader
    assert any("no valid pixel spacing" in w for w in result.warnings)
    assert len(result.lesions) <= 2
    for lesion in result.lesions:
        row, col = lesion.centroid_index
        for n_row, n_col, radius in RG1_NODULES:
            assert np.hypot(row - n_row, col - n_col) > radius, (lesion, (n_row, n_col))
        assert lesion.area_mm2 is None and lesion.extra["area_px"] > 0
    assert result.masks["lungs"].shape == rad.image.shape
    assert result.masks["lungs"].mean() > 0.15  # two large lung fields were found
    assert result.midline_col is not None
    assert abs(float(np.median(result.midline_col)) - 920) < 60


def test_rg1_compressed_twin_gives_the_same_result(rg1_results):
    _, plain = rg1_results["RG1_UNCR.dcm"]
    _, j2k = rg1_results["RG1_J2KR.dcm"]
    assert [les.centroid_index for les in j2k.lesions] == \
        [les.centroid_index for les in plain.lesions]
    assert np.array_equal(j2k.lesion_labels, plain.lesion_labels)


def test_rg3_extremity_is_refused_as_not_a_chest(testdata):
    """pydicom-data's RG3 is a leg: the pipeline sets it aside with a sentence naming what
    the header says, and the detector itself refuses it if called directly."""
    rad = load_study(testdata("RG3_UNCR.dcm")).radiographs[0]
    reason = not_analysed_reason(rad)
    assert reason is not None and rad.info.body_part in reason and "not a chest" in reason
    with pytest.raises(AnalysisError, match="not the chest"):
        analyze_radiograph(rad)