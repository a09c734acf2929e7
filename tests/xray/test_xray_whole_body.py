"""The whole body on the film (issue 14, items 1 and 5): projected phantoms with the arms
down, beside (abducted) and up, at two pixel sizes, both photometric interpretations, plain
and CR-style processing, two lead markers and three surgical clips on every film.

Deposits are scored as in :mod:`test_xray_accuracy` (at least 2 mm, CNR >= 12, standing out
against their spot, not over lung or bone). Over these films the deposits on the arms must be
found at a rate no lower than 0.1 below the chest wall's (the issue: "found like those on the
chest wall"), with at most one false call per film, no marker or clip called, and most
markers and clips rejected as ``device`` in ``XrayResult.rejected`` (a letter's thin stroke
may be set aside as a ``ridge`` first). The same bodies with the arms raised out of the
field are the reference for the shoulders and axillae: arms in the field must not lower
their rate by more than 0.1. Their own rate stays below the chest wall's whatever the arms
do (the printed table, ``-s``); this module does not hide that.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from napari_calcinosis.phantom import (
    PhantomSpec,
    ProjectionParams,
    make_ct_phantom,
    project_radiograph,
)
from napari_calcinosis.phantom._xray import CR_PROCESSING
from napari_calcinosis.xray import analyze_radiograph

from test_xray_accuracy import score, through_dicom

CHEST = dict(z_range_mm=(300.0, 600.0), pixel_spacing_mm=2.8, slice_thickness_mm=5.0)
POSES = ("down", "beside", "up")
SEEDS = (0, 1)
PIXELS_MM = (0.25, 0.7)
MARGIN = 0.1


def _group(region: str) -> str:
    if region == "upper_limb":
        return "arms"
    return "shoulders_axillae" if region in ("shoulder_girdle", "axilla") else "chest_wall"


@pytest.fixture(scope="module")
def all_films(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole-body")
    out = []
    for pose in (*POSES, "raised"):
        for seed in SEEDS:
            ct = make_ct_phantom(PhantomSpec(seed=seed, arms=pose, **CHEST))
            for k, pixel in enumerate(PIXELS_MM):
                odd = (k + seed) % 2 == 1
                params = ProjectionParams(
                    pixel_spacing_mm=pixel, seed=seed, markers=2, clips=3,
                    photometric="MONOCHROME2" if odd else "MONOCHROME1",
                    **(CR_PROCESSING if odd else {}))
                xray = project_radiograph(ct, params=params)
                rad = through_dicom(ct, xray, folder, pixel_spacing=True)
                name = f"{pose} seed {seed} {pixel} mm {xray.photometric}" \
                       f"{' CR' if odd else ''}"
                out.append((name, ct, xray, analyze_radiograph(rad)))
    return out


@pytest.fixture(scope="module")
def films(all_films):
    return [film for film in all_films if not film[0].startswith("raised")]


def _rates(films) -> tuple[Counter, Counter]:
    eligible, found = Counter(), Counter()
    for _, ct, xray, result in films:
        ids, hits, _ = score(xray, result)
        region = {t.id: t.region for t in ct.truth}
        for i in ids:
            eligible[_group(region[i])] += 1
            found[_group(region[i])] += i in hits
    return eligible, found


def test_the_films_cover_poses_pixels_and_encodings(films):
    assert {name.split()[0] for name, *_ in films} == set(POSES)
    assert {xray.photometric for _, _, xray, _ in films} == {"MONOCHROME1", "MONOCHROME2"}
    assert {xray.pixel_spacing_mm[0] for _, _, xray, _ in films} == set(PIXELS_MM)


def test_arms_found_like_the_chest_wall(all_films, films):
    eligible, found = _rates(films)
    print("\nfilm                                         eligible found false")
    for name, _, xray, result in all_films:
        ids, hits, false = score(xray, result)
        print(f"{name:44s} {len(ids):8d} {len(set(ids) & set(hits)):5d} {len(false):5d}")
    rate = {g: found[g] / eligible[g] for g in eligible}
    for g in sorted(eligible):
        print(f"{g:20s} {found[g]}/{eligible[g]} = {rate[g]:.2f}")
    assert eligible["arms"] >= 20 and eligible["chest_wall"] >= 10
    assert rate["arms"] >= rate["chest_wall"] - MARGIN, rate
    assert rate["arms"] >= 0.6, rate


def test_arms_in_the_field_do_not_lower_the_shoulders_and_axillae(all_films, films):
    raised = [film for film in all_films if film[0].startswith("raised")]
    eligible, found = _rates(raised)
    reference = found["shoulders_axillae"] / eligible["shoulders_axillae"]
    print(f"\narms raised: shoulders and axillae {found['shoulders_axillae']}/"
          f"{eligible['shoulders_axillae']} = {reference:.2f}")
    for pose in POSES:
        e, f = _rates([film for film in films if film[0].startswith(pose)])
        print(f"arms {pose}: shoulders and axillae {f['shoulders_axillae']}/"
              f"{e['shoulders_axillae']}")
    e, f = _rates(films)
    rate = f["shoulders_axillae"] / e["shoulders_axillae"]
    assert e["shoulders_axillae"] >= 15
    assert rate >= reference - MARGIN, (rate, reference)


def test_at_most_one_false_call_per_film(films):
    for name, _, xray, result in films:
        false = score(xray, result)[2]
        assert len(false) <= 1, (name, [(les.centroid_index, les.region) for les in false])


def test_markers_and_clips_are_rejected_with_their_reason(films):
    reasons = Counter()
    for name, _, xray, result in films:
        p = xray.pixel_spacing_mm[0]
        for mark in (lk for lk in xray.lookalikes if lk.id >= 1000):
            called = [les for les in result.lesions
                      if np.hypot(les.centroid_index[0] - mark.row,
                                  les.centroid_index[1] - mark.col) * p <= 8.0]
            assert not called, (name, mark)
            near = {r["reason"] for r in result.rejected
                    if np.hypot(r["row"] - mark.row, r["col"] - mark.col) * p <= 8.0}
            reasons["device" if "device" in near else "other" if near else "unreached"] += 1
    print("\nmarkers and clips:", dict(reasons))
    total = sum(reasons.values())
    assert total == 5 * len(films)
    assert reasons["device"] >= 0.75 * total, reasons
