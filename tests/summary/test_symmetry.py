"""Known-answer tests of the mid-sagittal plane, the symmetry index and the call."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcinosis.summary import (
    MidPlane,
    assess_symmetry,
    fit_midplane,
    matched_fraction,
    symmetry_index,
)
from napari_calcinosis.types import CTParams, Lesion


def lesion(i, region, side, volume=10.0, frame=None):
    extra = {} if frame is None else {"midplane_mm": list(frame)}
    return Lesion(id=i, series_instance_uid="1", centroid_index=[0, 0, 0], side=side,
                  region=region, layer="subcutaneous", volume_mm3=volume, extra=extra)


@pytest.mark.parametrize(("left", "right", "si"), [
    (10, 10, 1.0), (10, 0, 0.0), (30, 10, 0.5), (0, 0, None)])
def test_symmetry_index(left, right, si):
    assert symmetry_index(left, right) == (None if si is None else pytest.approx(si))


def test_fit_midplane_recovers_tilted_plane_despite_outliers():
    rng = np.random.default_rng(1)
    z = np.linspace(0, 300, 60)
    y = rng.uniform(-80, 80, 60)
    x = 12.0 + 0.05 * z + rng.normal(0, 0.3, 60)
    x[::10] += 40.0  # a few bad centre estimates (an arm in the slice)
    plane = fit_midplane(np.column_stack([x, y, z]))
    assert plane.n_points == 54
    assert plane.rms_mm < 1.0
    probe = np.array([[12.0 + 0.05 * 150 + 7.0, 0.0, 150.0]])
    assert plane.signed_distance(probe)[0] == pytest.approx(7.0, abs=0.3)
    mirrored = plane.mirror(probe)[0]
    assert plane.signed_distance(mirrored[None])[0] == pytest.approx(-7.0, abs=0.3)


def test_fit_midplane_without_points_falls_back():
    plane = fit_midplane(np.empty((0, 3)), fallback_x_mm=3.0)
    assert plane.method == "fallback"
    assert plane.signed_distance(np.array([[5.0, 1, 2]]))[0] == pytest.approx(2.0)


def test_frame_and_mirror_are_consistent():
    plane = MidPlane((10.0, 0.0, 0.0), (1.0, 0.0, 0.0))
    frame = plane.frame(np.array([[25.0, 3.0, 4.0], [-5.0, 3.0, 4.0]]))
    np.testing.assert_allclose(frame, [[15, 10, 3, 4], [-15, 10, 3, 4]])


def test_matched_fraction_counts_mirrored_partners():
    lesions = [lesion(1, "gluteal", "left", frame=[50, 0, 0, 0]),
               lesion(2, "gluteal", "right", frame=[-52, 0, 5, 0]),   # partner of 1
               lesion(3, "gluteal", "left", frame=[80, 0, 100, 0])]   # none within 15 mm
    assert matched_fraction(lesions, partner_mm=15.0) == pytest.approx(2 / 3)
    assert matched_fraction([lesion(1, "gluteal", "left")], partner_mm=15.0) is None


def _many(region, left, right, start=0):
    return ([lesion(start + i, region, "left") for i in range(left)]
            + [lesion(start + 100 + i, region, "right") for i in range(right)])


def test_call_symmetric_asymmetric_insufficient():
    params = CTParams()
    sym = _many("gluteal", 3, 3) + _many("axilla", 2, 2, 10) + _many("flank", 4, 3, 20)
    out = assess_symmetry(sym, params=params)
    assert out.call == "symmetric" and out.index == pytest.approx(16 / 17, abs=1e-3)
    assert out.by_region["gluteal"]["left_count"] == 3
    # two of three pairs one-sided: asymmetric
    asym = _many("gluteal", 3, 3) + _many("axilla", 4, 0, 10) + _many("flank", 0, 5, 20)
    out = assess_symmetry(asym, params=params)
    assert out.call == "asymmetric"
    assert out.by_region["axilla"]["index"] == 0.0
    assert assess_symmetry(sym[:4], params=params).call == "insufficient"


def test_small_region_pairs_are_pooled():
    # one against two in three regions, mirrored overall: each pair alone is below 0.7
    lesions = (_many("gluteal", 1, 2) + _many("axilla", 2, 1, 10) + _many("flank", 1, 2, 20)
               + _many("shoulder_girdle", 3, 3, 30))
    out = assess_symmetry(lesions)
    assert out.by_region["gluteal"]["index"] == pytest.approx(2 / 3)
    assert out.call == "symmetric"  # pooled: 4 left vs 5 right, SI 0.89
    # the pooled remainder (3 vs 1, SI 0.5) weighs as one pair against the flank's
    one_sided = _many("gluteal", 3, 0) + _many("axilla", 0, 1, 10) + _many("flank", 3, 3, 20)
    assert assess_symmetry(one_sided).call == "asymmetric"
    # a remainder too small to judge is left out when larger pairs exist
    tiny = _many("gluteal", 2, 0) + _many("flank", 3, 3, 20)
    assert assess_symmetry(tiny).call == "symmetric"


def test_midline_lesions_stay_out_of_pairs():
    lesions = [lesion(i, "lower_back", "midline") for i in range(6)]
    out = assess_symmetry(lesions)
    assert out.call == "insufficient" and out.index is None
