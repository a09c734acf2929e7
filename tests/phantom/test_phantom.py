"""Known-answer checks of the synthetic phantom: the truth must agree with the image."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_calcinosis.phantom import (
    PhantomSpec,
    ProjectionParams,
    Tissue,
    make_ct_phantom,
    project_radiograph,
)
from napari_calcinosis.phantom._clearance import clearance_of, polyline_distance_mm
from napari_calcinosis.phantom._parts import wall_point
from napari_calcinosis.phantom._render import plan_model, render_clean
from napari_calcinosis.phantom._shapes import VoxelGrid, render_ellipsoid

LAYER_LABEL = {"skin": Tissue.SKIN, "subcutaneous": Tissue.SUBCUTANEOUS_FAT,
               "muscle": Tissue.MUSCLE}
# A thin-slice chest block: fine enough that each centre's voxel lies in its own layer.
THIN = dict(z_range_mm=(375.0, 425.0), slice_thickness_mm=1.0, pixel_spacing_mm=1.0,
            fov_mm=420.0)
COARSE = dict(pixel_spacing_mm=2.8, slice_thickness_mm=5.0)
FAST_XRAY = ProjectionParams(pixel_spacing_mm=1.0, render_step_mm=3.0)


@pytest.fixture(scope="module")
def thin_clean():
    return make_ct_phantom(PhantomSpec(seed=3, noise_sd_hu=0.0, **THIN))


@pytest.fixture(scope="module")
def coarse():
    return make_ct_phantom(PhantomSpec(seed=3, **COARSE))


def _voxel(ct, index_zyx):
    idx = np.rint(np.asarray(index_zyx)).astype(int)
    return tuple(np.clip(idx, 0, np.asarray(ct.shape) - 1))


def test_geometry_is_axial_lps(coarse):
    ct = coarse
    assert ct.hu.dtype == np.int16 and ct.hu.shape == ct.tissue_labels.shape
    assert ct.spacing_zyx_mm == (5.0, 2.8, 2.8)
    np.testing.assert_allclose(ct.direction_lps[:, 0], [0, 0, 1])  # slices toward the head
    np.testing.assert_allclose(ct.direction_lps[:, 1], [0, 1, 0])  # rows toward posterior
    np.testing.assert_allclose(ct.direction_lps[:, 2], [1, 0, 0])  # columns toward the left
    idx = np.array([[3.0, 10.5, 20.25], [0, 0, 0]])
    np.testing.assert_allclose(ct.lps_to_index(ct.index_to_lps(idx)), idx, atol=1e-9)
    for lesion in ct.truth:
        np.testing.assert_allclose(ct.index_to_lps(lesion.center_index_zyx),
                                   lesion.center_lps_mm, atol=1e-6)
    # anterior is up: at the midline the table (posterior) lies below the body, across air
    col = int(round(ct.lps_to_index([ct.midline_x_mm, 0.0, ct.origin_lps_mm[2]])[2]))
    column = ct.tissue_labels[ct.shape[0] // 2, :, col]
    table_rows = np.nonzero(column == Tissue.TABLE)[0]
    body_rows = np.nonzero((column != Tissue.AIR) & (column != Tissue.TABLE))[0]
    assert table_rows.min() > body_rows.max() + 1


def test_same_seed_same_bytes_and_truth():
    spec = PhantomSpec(seed=11, **COARSE, z_range_mm=(300.0, 420.0))
    a, b = make_ct_phantom(spec), make_ct_phantom(spec)
    assert a.hu.tobytes() == b.hu.tobytes()
    assert a.truth == b.truth and a.lookalikes == b.lookalikes
    other = make_ct_phantom(PhantomSpec(seed=12, **COARSE, z_range_mm=(300.0, 420.0)))
    assert other.hu.tobytes() != a.hu.tobytes()


def test_deposits_do_not_move_with_the_grid(thin_clean):
    coarse_block = make_ct_phantom(PhantomSpec(seed=3, z_range_mm=(375.0, 425.0),
                                               slice_thickness_mm=5.0, pixel_spacing_mm=1.4))
    assert len(coarse_block.truth) > 0
    thin_centres = {lesion.center_lps_mm for lesion in thin_clean.truth}
    for lesion in coarse_block.truth:
        assert lesion.center_lps_mm in thin_centres


def test_layer_labels_at_deposit_centres(thin_clean):
    ct = thin_clean
    assert len(ct.truth) >= 6
    for lesion in ct.truth:
        label = ct.tissue_labels[_voxel(ct, lesion.center_index_zyx)]
        assert label == LAYER_LABEL[lesion.layer], (lesion.id, lesion.layer, Tissue(label))


def test_each_deposit_stands_out_from_its_surroundings(thin_clean):
    ct = thin_clean
    hu = ct.hu.astype(float)
    for lesion in ct.truth:
        k, i, j = _voxel(ct, lesion.center_index_zyx)
        ring = max(4, int(np.ceil((lesion.diameter_mm / 2 + 4) / ct.spacing_zyx_mm[1])))
        patch = hu[k, i - ring:i + ring + 1, j - ring:j + ring + 1]
        background = np.median(patch)
        peak = hu[k, i - 1:i + 2, j - 1:j + 2].max()
        assert peak > background + 150, (lesion.id, peak, background)
        assert peak == pytest.approx(lesion.peak_hu_expected, abs=60)


def test_sides_follow_patient_coordinates(coarse):
    ct = coarse
    for lesion in ct.truth:
        x = lesion.center_lps_mm[0]
        if lesion.side == "left":
            assert x > ct.midline_x_mm + 5
        else:
            assert lesion.side == "right" and x < ct.midline_x_mm - 5


def test_generalized_is_bilateral_and_widespread(coarse):
    regions = {lesion.region for lesion in coarse.truth}
    assert len(regions) >= 4
    for region in regions:
        sides = {lesion.side for lesion in coarse.truth if lesion.region == region}
        assert sides == {"left", "right"} or len(
            [lesion for lesion in coarse.truth if lesion.region == region]) == 1
    assert {lesion.layer for lesion in coarse.truth} <= {"skin", "subcutaneous"}


def test_lookalikes_are_where_the_truth_says(coarse):
    ct = coarse
    expected = {"costal_cartilage": {Tissue.CARTILAGE}, "vessel_wall": {Tissue.VESSEL},
                "bone_island": {Tissue.BONE_MARROW, Tissue.BONE_CORTEX},
                "nipple": {Tissue.SKIN}, "table": {Tissue.TABLE}, "granuloma": {Tissue.LUNG},
                "lung_nodule": {Tissue.VISCERA}}
    kinds = {look.kind for look in ct.lookalikes}
    assert kinds == set(expected)
    for look in ct.lookalikes:
        k, i, j = _voxel(ct, look.center_index_zyx)
        near = set(np.unique(ct.tissue_labels[k, i - 2:i + 3, j - 2:j + 3]).tolist())
        assert near & expected[look.kind], (look.kind, [Tissue(v).name for v in near])
        if look.kind in ("costal_cartilage", "vessel_wall", "bone_island"):
            assert look.peak_hu_expected is not None and look.peak_hu_expected > 150
        if look.kind == "granuloma":  # small and averaged with lung on this coarse grid
            assert look.peak_hu_expected is not None and look.peak_hu_expected > -850 + 150


def test_localized_is_one_sided_cluster():
    ct = make_ct_phantom(PhantomSpec(scenario="localized", seed=5, **COARSE))
    assert 6 <= len(ct.truth) <= 10
    assert len({lesion.side for lesion in ct.truth}) == 1
    assert len({lesion.region for lesion in ct.truth}) == 1
    spec = PhantomSpec(scenario="localized", seed=5, localized_region="gluteal",
                       localized_side="right", **COARSE)
    chosen = make_ct_phantom(spec)
    assert {(lesion.region, lesion.side) for lesion in chosen.truth} == {("gluteal", "right")}


def test_none_has_only_lookalikes():
    ct = make_ct_phantom(PhantomSpec(scenario="none", seed=2, **COARSE))
    assert ct.truth == [] and not ct.lesion_mask.any()
    assert any(look.kind == "vessel_wall" for look in ct.lookalikes)


def test_deep_scenario_has_muscle_deposits_in_muscle():
    ct = make_ct_phantom(PhantomSpec(scenario="deep", seed=4, pixel_spacing_mm=1.4,
                                     slice_thickness_mm=2.0, z_range_mm=(30.0, 150.0)))
    muscle = [lesion for lesion in ct.truth if lesion.layer == "muscle"]
    assert muscle
    for lesion in muscle:
        assert ct.tissue_labels[_voxel(ct, lesion.center_index_zyx)] == Tissue.MUSCLE


def _dense_bone_near(model, center_mm: np.ndarray, half_mm: float):
    """Noise-free render of a 1 mm box around a point without deposits or calcified
    look-alikes: the box's grid and its bone (bone labels, or any voxel of 200 HU or more:
    the thinning edge of a scapular blade is dense but never labelled bone)."""
    offsets = np.arange(-half_mm, half_mm + 1e-9, 1.0)
    c = np.asarray(center_mm, float)
    grid = VoxelGrid(c[2] + offsets, c[1] + offsets, c[0] + offsets, 1.0)
    hu, labels, _, _ = render_clean(grid, model, seed=0, deposits=False,
                                    calcified_lookalikes=False)
    bone = np.isin(labels, [Tissue.BONE_CORTEX, Tissue.BONE_MARROW])
    bone |= (hu >= 200.0) & (labels != Tissue.TABLE)
    return grid, bone


def _bone_distance_at_deposit(model, deposit) -> float:
    """Smallest distance (mm) from the deposit's voxels to bone voxels on a 1 mm grid."""
    reach = float(deposit.shape.axes_mm.max()) + 6.0
    grid, bone = _dense_bone_near(model, deposit.shape.center_mm, reach)
    rendered = render_ellipsoid(grid, deposit.shape)
    inside = np.zeros(grid.shape, bool)
    box, occ, _ = rendered
    inside[box] = occ >= 0.3
    if not bone.any():
        return np.inf
    dist = ndi.distance_transform_edt(~bone, sampling=(1.0, 1.0, 1.0))
    return float(dist[inside].min())


def test_every_deposit_keeps_clear_of_every_bone():
    """No deposit overlaps or touches a bone (ribs along their whole length, scapular
    blades, humeral heads, spine, pelvis): at least 3 mm between deposit and bone voxels on
    a 1 mm grid, measured with a distance transform of the rendered bone. The deep scenario
    has skin, subcutaneous and muscle deposits (shoulder girdle, back, buttocks)."""
    model = plan_model(PhantomSpec(scenario="deep", seed=31, deposit_count_scale=2.0))
    assert sum(dep.layer == "muscle" for dep in model.deposits) >= 12
    near = {}
    for n, dep in enumerate(model.deposits):
        gap = _bone_distance_at_deposit(model, dep)
        if gap < 3.0:
            near[n] = (dep.layer, dep.region, round(gap, 1))
    assert near == {}


def test_bone_clearance_sees_scapula_and_rib_segments():
    """Known answers: points on a scapular blade and midway along a rib segment (between
    the polyline's corners) are in bone; a point in the subcutaneous fat is clear."""
    model = plan_model(PhantomSpec(seed=31))
    body, parts = model.body, model.parts
    clearance = clearance_of(parts, body)
    # scapular blade: 12.5 mm below the fascia at phi 131 deg, height 500 mm
    blade = wall_point(body, 1.0, 131.0, 500.0, boundary="fascia", offset_mm=-12.5)
    _, bone = _dense_bone_near(model, blade, 1.0)
    assert bone[1, 1, 1]
    assert clearance.bone_gap_mm(blade, 1.0) < 0.0
    rib = parts.tubes[0]  # first right rib, from its head around the wall
    a, b = rib.points_mm[3], rib.points_mm[4]
    middle = (a + b) / 2 + rib.radius_mm * 0.5 * _unit_normal(b - a)
    assert polyline_distance_mm(rib.points_mm, middle) < rib.radius_mm
    assert clearance.bone_gap_mm(middle, 0.5) < 0.0
    fat = wall_point(body, 1.0, 90.0, 250.0, boundary="skin_inner", offset_mm=-4.0)
    assert clearance.bone_gap_mm(fat, 1.0) > 10.0


def _unit_normal(direction: np.ndarray) -> np.ndarray:
    normal = np.cross(direction, [0.0, 0.0, 1.0])
    return normal / np.linalg.norm(normal)


def test_thick_slices_lower_small_deposit_peaks(thin_clean):
    thick = make_ct_phantom(PhantomSpec(seed=3, noise_sd_hu=0.0, z_range_mm=(375.0, 425.0),
                                        slice_thickness_mm=5.0, pixel_spacing_mm=1.0,
                                        fov_mm=420.0))
    thin_peaks = {lesion.center_lps_mm: lesion.peak_hu_expected for lesion in thin_clean.truth}
    small = [lesion for lesion in thick.truth if lesion.diameter_mm < 3.0]
    assert small
    for lesion in small:
        assert lesion.peak_hu_expected < thin_peaks[lesion.center_lps_mm] - 50


def test_noise_has_the_requested_sd():
    base = dict(seed=9, z_range_mm=(240.0, 280.0), **COARSE)
    clean = make_ct_phantom(PhantomSpec(noise_sd_hu=0.0, **base))
    noisy = make_ct_phantom(PhantomSpec(noise_sd_hu=20.0, **base))
    body = clean.tissue_labels == Tissue.MUSCLE
    diff = noisy.hu[body].astype(float) - clean.hu[body]
    assert diff.std() == pytest.approx(20.0, rel=0.1)
    assert abs(diff.mean()) < 1.0


def test_lesion_mask_marks_every_truth_lesion(coarse):
    ids = set(np.unique(coarse.lesion_mask).tolist()) - {0}
    assert ids == {lesion.id for lesion in coarse.truth}


def test_bad_spec_is_refused():
    with pytest.raises(ValueError, match="scenario"):
        PhantomSpec(scenario="everywhere")


# --- radiographs ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chest():
    return make_ct_phantom(PhantomSpec(seed=3, z_range_mm=(300.0, 600.0), **COARSE))


def test_frontal_radiograph_orientation_and_truth(chest):
    xr = project_radiograph(chest, view="frontal", params=FAST_XRAY)
    assert xr.view_position == "PA" and xr.patient_orientation == ("L", "F")
    assert xr.image.dtype == np.uint16 and int(xr.image.max()) <= 4095
    assert xr.truth and len(xr.truth) <= len(chest.truth)
    midline_col = xr.lps_to_pixel([chest.midline_x_mm, 0.0, -300.0])[1]
    by_id = {lesion.id: lesion for lesion in chest.truth}
    for spot in xr.truth:
        assert (spot.col > midline_col) == (spot.side == "left")
    # higher in the body = nearer the top row
    top = max(xr.truth, key=lambda s: by_id[s.id].center_lps_mm[2])
    low = min(xr.truth, key=lambda s: by_id[s.id].center_lps_mm[2])
    assert top.row < low.row
    # the same body without deposits: every conspicuous deposit brightens its own pixels
    empty = make_ct_phantom(PhantomSpec(seed=3, scenario="none", z_range_mm=(300.0, 600.0),
                                        **COARSE))
    diff = xr.image.astype(float) - project_radiograph(empty, view="frontal",
                                                       params=FAST_XRAY).image
    conspicuous = [s for s in xr.truth if s.cnr >= 5]
    assert conspicuous
    for spot in conspicuous:
        r, c = int(round(spot.row)), int(round(spot.col))
        assert diff[r - 1:r + 2, c - 1:c + 2].max() > 20, spot
    assert any(s.tangential for s in xr.truth) and any(not s.tangential for s in xr.truth)


def test_monochrome1_is_the_inverse_and_lateral_runs_front_to_back(chest):
    m2 = project_radiograph(chest, view="lateral", params=FAST_XRAY)
    m1 = project_radiograph(chest, view="lateral", params=FAST_XRAY, photometric="MONOCHROME1")
    assert m2.patient_orientation == ("P", "F") and m2.view_position == "LL"
    np.testing.assert_array_equal(m1.image, 4095 - m2.image)
    by_id = {lesion.id: lesion for lesion in chest.truth}
    front = [s for s in m2.truth if by_id[s.id].region == "chest_wall_anterior"]
    back = [s for s in m2.truth if by_id[s.id].region == "chest_wall_posterior"]
    assert front and back
    assert max(s.col for s in front) < min(s.col for s in back)


def test_arms_down_are_separate_limbs_beside_the_body():
    from scipy import ndimage

    ct = make_ct_phantom(PhantomSpec(arms="down", seed=3, z_range_mm=(400.0, 420.0),
                                     pixel_spacing_mm=2.5))
    assert ct.shape[2] * 2.5 >= 600.0  # the field widened to hold the arms
    body = (ct.tissue_labels[2] != Tissue.AIR) & (ct.tissue_labels[2] != Tissue.TABLE)
    labels, count = ndimage.label(body)
    sizes = np.bincount(labels.ravel())[1:]
    assert count == 3 and sorted(sizes)[0] > 300  # torso and two arms
    arm_row = np.nonzero(labels == np.argsort(sizes)[0] + 1)
    assert {Tissue.SKIN, Tissue.SUBCUTANEOUS_FAT, Tissue.MUSCLE, Tissue.BONE_CORTEX} <= set(
        np.unique(ct.tissue_labels[2][arm_row]).tolist())
    with pytest.raises(ValueError, match="arms"):
        PhantomSpec(arms="akimbo")
