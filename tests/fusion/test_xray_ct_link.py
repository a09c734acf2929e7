"""CT lesions projected onto the frontal radiograph: DRR registration and confirmation.

Known answers: the phantom radiographs are parallel projections of the phantom CT with exact
geometry (``truth.json`` of a sample study: ``radiographs[i].geometry``), so the registered
mapping must put every truth deposit where that geometry does, whatever spacing the file
gives (PixelSpacing; ImagerPixelSpacing only, 1.1x magnified; none). Negatives: a CT of
another patient, a CT that does not cover the radiograph, a lateral view and a radiograph
without anatomy are refused with a warning and confirm nothing.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import numpy as np
import pydicom
import pytest

from napari_calcinosis import cli
from napari_calcinosis.dicom import load_study
from napari_calcinosis.fusion import (
    CONFIRMATION_STATES,
    CTLinkParams,
    display_axes,
    link_ct_to_radiograph,
    link_study,
    make_drr,
    masked_ncc,
    prepare_links,
    register_drr,
)
from napari_calcinosis.phantom import sample_study_path
from napari_calcinosis.pipeline import analyze_study
from napari_calcinosis.report import validate_findings
from napari_calcinosis.types import AnalysisError, SeriesInfo, Volume

MAX_ERROR_MM = 2.0


@pytest.fixture(scope="module")
def sample():
    root = sample_study_path("generalized")
    truth = json.loads((root / "truth.json").read_text(encoding="utf-8"))
    return root, load_study(root), truth


def true_pixels(truth: dict, lps: np.ndarray, view: str = "frontal") -> np.ndarray:
    """(row, col) of LPS points by the phantom radiograph's exact geometry."""
    xray = next(r for r in truth["radiographs"] if r["view"] == view)
    g = xray["geometry"]
    rel = np.asarray(lps, float) - np.asarray(g["origin_lps_mm"])
    return np.stack([rel @ np.asarray(g["row_direction_lps"]),
                     rel @ np.asarray(g["column_direction_lps"])], -1) / np.asarray(
        xray["pixel_spacing_mm"])


def _frontal(study):
    return next(r for r in study.radiographs if r.view == "frontal")


def _rewritten(path, tmp_path, drop: tuple[str, ...]):
    """The frontal radiograph file without some spacing attributes, loaded again."""
    ds = pydicom.dcmread(path)
    for keyword in drop:
        delattr(ds, keyword)
    out = tmp_path / f"frontal-{'-'.join(drop)}.dcm"
    ds.save_as(out)
    return load_study(out).radiographs[0]


@pytest.mark.parametrize("drop", [(), ("PixelSpacing",), ("PixelSpacing", "ImagerPixelSpacing")],
                         ids=["PixelSpacing", "ImagerPixelSpacing", "no-spacing"])
def test_registration_recovers_the_phantom_geometry(sample, tmp_path, drop):
    root, study, truth = sample
    rad = _rewritten(root / "xray" / "frontal.dcm", tmp_path, drop) if drop else _frontal(study)
    expected_source = {0: "PixelSpacing", 1: "ImagerPixelSpacing", 2: "none"}[len(drop)]
    assert rad.spacing_source == expected_source
    reg = register_drr(study.volumes[0], rad, *display_axes(rad.patient_orientation))
    lps = np.array([les["center_lps_mm"] for les in truth["lesions"]])
    expected = true_pixels(truth, lps)
    inside = np.all((expected >= 0) & (expected < np.array(rad.image.shape)), axis=1)
    error_mm = np.linalg.norm(reg.lps_to_pixel(lps) - expected, axis=1)[inside] * 0.5
    assert inside.sum() >= 30
    assert error_mm.max() < MAX_ERROR_MM, error_mm.max()
    assert reg.score > 0.8 and not reg.at_scale_limit


def test_a_shifted_ct_frame_of_reference_changes_nothing(sample):
    """The CT's patient coordinates need not match the radiograph's: shift them by 40 mm."""
    _, study, truth = sample
    vol = study.volumes[0]
    shift = np.array([40.0, -25.0, 60.0])
    moved = replace(vol, origin_lps_mm=vol.origin_lps_mm + shift)
    rad = _frontal(study)
    reg = register_drr(moved, rad, *display_axes(rad.patient_orientation))
    still = register_drr(vol, rad, *display_axes(rad.patient_orientation))
    lps = np.array([les["center_lps_mm"] for les in truth["lesions"]])
    # the same mapping, to a small fraction of a pixel, for every lesion (on the film or not)
    moved_px, still_px = reg.lps_to_pixel(lps + shift), still.lps_to_pixel(lps)
    assert np.abs(moved_px - still_px).max() < 0.1
    # and as accurate as the unshifted one where the lesions are on the film
    expected = true_pixels(truth, lps)
    inside = np.all((expected >= 0) & (expected < np.array(rad.image.shape)), axis=1)
    error_mm = np.linalg.norm(moved_px - expected, axis=1)[inside] * 0.5
    assert np.median(error_mm) < 1.0 and error_mm.max() < MAX_ERROR_MM


@pytest.fixture(scope="module")
def analysed(sample, tmp_path_factory):
    root, _, truth = sample
    out = tmp_path_factory.mktemp("ctlink")
    status = cli.main(["analyze", str(root), "--out", str(out), "--formats", "json", "--quiet",
                       "--ignore-annotations"])
    assert status == 0
    return json.loads((out / "findings.json").read_text(encoding="utf-8")), truth


def test_findings_json_says_which_radiograph_dots_the_ct_confirms(analysed):
    doc, truth = analysed
    validate_findings(doc)
    frontal_uid = next(r["series_instance_uid"] for r in truth["radiographs"]
                       if r["view"] == "frontal")
    ct_uid = truth["ct"]["series_instance_uid"]
    ct = [les for les in doc["lesions"] if les["series_instance_uid"] == ct_uid]
    dots = [les for les in doc["lesions"] if les["series_instance_uid"] == frontal_uid]
    assert dots and all(d["ct_confirmation"] in CONFIRMATION_STATES for d in dots)
    soft = [c for c in ct if c["layer"] in ("skin", "subcutaneous", "fascia", "muscle",
                                             "tendon", "periarticular", "unknown")]
    # Where each CT lesion truly lands on the radiograph (exact phantom geometry).
    true_rc = true_pixels(truth, np.array([c["centroid_mm"] for c in soft]))
    for dot in dots:
        gaps = np.linalg.norm(true_rc - np.array(dot["centroid_index"]), axis=1) * 0.5
        reach = np.array([0.5 * (c["max_diameter_mm"] + (dot["max_diameter_mm"] or 0))
                          for c in soft])
        surely_on = np.flatnonzero(gaps <= reach + 2.0)
        surely_off = np.all(gaps > reach + 5.0 + 8.0)  # beyond tolerance + divergence term
        if surely_on.size:
            assert dot["ct_confirmation"] == "confirmed", dot
            assert {soft[k]["id"] for k in surely_on} <= set(dot["confirmed_by_ct_lesions"])
        if surely_off:
            assert dot["ct_confirmation"] == "not_seen_on_ct", dot
    assert sum(d["ct_confirmation"] == "confirmed" for d in dots) >= 2
    for c in ct:  # every projection lies where the exact geometry puts the lesion
        proj = c["radiograph_projection"]
        assert proj["series_instance_uid"] == frontal_uid
        expected = true_pixels(truth, np.array(c["centroid_mm"]))
        if proj["inside_image"]:  # far outside, a 0.5 % scale error adds up
            assert np.hypot(proj["row"] - expected[0], proj["col"] - expected[1]) * 0.5 < 2.0
        for dot_id in c["radiograph_lesion_ids"]:
            dot = next(d for d in dots if d["id"] == dot_id)
            assert c["id"] in dot["confirmed_by_ct_lesions"] + dot["ct_non_soft_tissue_lesions"]
    registration = doc["parameters"]["ct_radiograph_link"]["registrations"]
    assert any(r["accepted"] and r["score"] > 0.8 for r in registration)


def test_lateral_dots_are_not_assessed_with_a_warning(analysed):
    doc, truth = analysed
    lateral_uid = next(r["series_instance_uid"] for r in truth["radiographs"]
                       if r["view"] == "lateral")
    dots = [les for les in doc["lesions"] if les["series_instance_uid"] == lateral_uid]
    assert all(d["ct_confirmation"] == "not_assessed" for d in dots)
    assert any("lateral view" in w and "not projected" in w for w in doc["warnings"])


def _refused(link):
    assert not link.accepted and link.reason
    assert set(link.status.values()) <= {"not_assessed"}
    assert not link.projections and not any(link.confirmed_by.values())


def test_a_ct_of_another_patient_is_refused(sample):
    _, study, _ = sample
    other = load_study(sample_study_path("localized")).volumes[0]
    rad = _frontal(study)
    dots = analyze_study(replace(study, volumes=[], radiographs=[rad])).findings.lesions
    link = link_ct_to_radiograph(other, rad, [], dots)
    _refused(link)
    assert "different patients" in link.reason and len(link.status) == len(dots)


@pytest.mark.parametrize("slices", [(0, 36), (40, 80)], ids=["pelvis", "abdomen"])
def test_a_ct_that_does_not_cover_the_radiograph_is_refused(sample, slices):
    """0-180 mm lies below the radiograph's field (255-600 mm); 200-400 mm covers only 42 %
    of it, where the best alignment that covers half of it is a wrong one (NCC ~0.54)."""
    _, study, _ = sample
    vol = study.volumes[0]
    part = replace(vol, hu=vol.hu[slice(*slices)],
                   origin_lps_mm=vol.index_to_lps([slices[0], 0, 0]))
    _refused(link_ct_to_radiograph(part, _frontal(study), [], []))


def test_a_radiograph_without_anatomy_is_refused(sample):
    _, study, _ = sample
    rad = _frontal(study)
    noise = np.random.default_rng(3).normal(size=rad.image.shape).astype(np.float32)
    link = link_ct_to_radiograph(study.volumes[0], replace(rad, image=noise), [], [])
    _refused(link)


def test_link_study_on_a_lateral_only_study_warns_and_claims_nothing(sample):
    _, study, _ = sample
    lateral = next(r for r in study.radiographs if r.view == "lateral")
    result = analyze_study(replace(study, radiographs=[lateral]))
    doc = result.findings.to_json_dict()
    dots = [les for les in doc["lesions"] if les["series_instance_uid"]
            == lateral.info.series_instance_uid]
    assert all(d["ct_confirmation"] == "not_assessed" for d in dots)
    assert all(les.get("radiograph_projection", "absent") is None for les in doc["lesions"]
               if les["centroid_mm"] is not None)
    assert any("only a frontal radiograph" in w for w in doc["warnings"])
    without_ct = copy.deepcopy(result.findings)  # no CT in the series: nothing is touched
    assert link_study(without_ct, [s for s in result.series if s.ct is None]) == []
    assert without_ct.to_json_dict() == doc


def test_display_axes_follow_patient_orientation():
    rows, cols = display_axes(("L", "F"))
    assert rows.tolist() == [0, 0, -1] and cols.tolist() == [1, 0, 0]
    rows, cols = display_axes(("R", "H"))
    assert rows.tolist() == [0, 0, 1] and cols.tolist() == [-1, 0, 0]
    assert display_axes(("P", "F")) is None and display_axes(()) is None


def _volume(hu: np.ndarray, direction: np.ndarray, origin=(0.0, 0.0, 0.0)) -> Volume:
    return Volume(hu=hu, spacing_zyx_mm=(2.0, 1.0, 1.0), origin_lps_mm=np.array(origin),
                  direction_lps=direction, info=SeriesInfo("2.25.1", modality="CT"))


def test_drr_puts_a_dense_rod_where_its_patient_position_projects():
    hu = np.full((40, 60, 80), -1000, np.int16)
    hu[:, 10:50, 10:70] = 0  # a water box (the body)
    hu[:, 20:40, 55:58] = 1000  # an antero-posterior bone rod at x = 5 + 56 = 61 mm
    axial = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    drr = make_drr(_volume(hu, axial, (5.0, 0.0, -30.0)), *display_axes(("L", "F")),
                   step_mm=1.0)
    profile = drr.image[drr.image.shape[0] // 2]
    peak_u = drr.u0_mm + np.argmax(profile) * drr.step_mm
    assert abs(peak_u - 61.0) <= 1.0
    assert drr.v0_mm == pytest.approx(-(-30.0 + 39 * 2.0))  # top row = highest slice
    assert drr.depth_lps_mm == (10.0, 49.0)
    oblique = np.array([[0.0, 0.7071, 0.7071], [0.0, 0.7071, -0.7071], [1.0, 0.0, 0.0]])
    with pytest.raises(AnalysisError, match="oblique"):
        make_drr(_volume(hu, oblique), *display_axes(("L", "F")), step_mm=1.0)


def test_masked_ncc_finds_a_known_shift():
    rng = np.random.default_rng(0)
    big = rng.normal(size=(60, 70))
    moving = big[12:42, 20:55]
    ncc, overlap = masked_ncc(big, np.ones(big.shape, bool), moving, np.ones(moving.shape, bool))
    ncc = np.where(overlap >= moving.size / 2, ncc, -1.0)  # a few shared pixels say nothing
    k = np.unravel_index(np.argmax(ncc), ncc.shape)
    shift = np.array(k) - (np.array(moving.shape) - 1)
    assert shift.tolist() == [12, 20] and ncc[k] == pytest.approx(1.0)
    assert overlap[k] == moving.size


def test_params_record_the_matching_tolerance():
    record = CTLinkParams().to_dict()
    assert record["match_base_mm"] == 5.0 and record["source_detector_mm"] > 0
    assert isinstance(record["magnification_range"], list)


def test_prepare_links_registers_ahead_so_the_link_does_not(sample, monkeypatch):
    """What a viewer's detection worker does: register the CT to the frontal radiograph
    (the lateral skipped) so that linking afterwards, on the main thread, does not."""
    from types import SimpleNamespace

    from napari_calcinosis.fusion import _link as xray_ct_link
    from napari_calcinosis.pipeline import SeriesResult, series_entry

    _, study, _ = sample
    calls = []

    def counted(*args, **kwargs):
        calls.append(args[1].view)
        return register_drr(*args, **kwargs)

    monkeypatch.setattr(xray_ct_link, "_RECENT", [])
    monkeypatch.setattr(xray_ct_link, "register_drr", counted)
    volume, run = study.volumes[0], SimpleNamespace(tissue_labels=None)
    items = [SeriesResult(series_entry(volume), volume, ct=run)]
    assert prepare_links(items) == 0 and calls == []  # no radiograph analysed yet
    items += [SeriesResult(series_entry(rad), rad, xray=run) for rad in study.radiographs]
    assert prepare_links(items) == 1 and calls == ["frontal"]
    assert prepare_links(items) == 1 and calls == ["frontal"]  # remembered
    link = link_ct_to_radiograph(volume, _frontal(study), [], [])
    assert link.accepted and calls == ["frontal"]
