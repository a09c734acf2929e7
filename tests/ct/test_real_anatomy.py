"""The CT anatomy and look-alike rules on real patients' files (``tests/data/realct``).

* An upper-abdominal contrast CT with the arms down (TotalSegmentator's example, 20 slices):
  the liver and the spleen, even where they lie behind the level of the vertebral body, are
  inside the cavity (never "muscle"); the back muscles behind the spine are wall; the
  injected arm's vein (undiluted contrast, ~1800 HU, running out of the scanned slices) is
  set aside as an enhancing vessel. The points were read off the image by eye (the key image
  is described in the module's tests).
* Known objects placed on the real kidney-level slab: a small dense skin marker lying on the
  skin is set aside as external, a calcification of the same size under the skin is found; a
  one-voxel speck at the skin is not called.
* A noise chain (a long run of voxels just above the threshold, as a low-dose series or a
  sharp kernel's rim at the skin makes) is broken up so that a deposit touching it stands
  on its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_calcinosis.ct import analyze_volume
from napari_calcinosis.ct._candidates import sparse_components
from napari_calcinosis.ct._measure import component_stats, noise_chain_voxels
from napari_calcinosis.ct._tissue import Compartment
from napari_calcinosis.dicom import load_study

DATA = Path(__file__).resolve().parents[1] / "data" / "realct"


@pytest.fixture(scope="module")
def upper_abdomen():
    volume = load_study(DATA / "totalseg-upper-abdomen").volumes[0]
    return volume, analyze_volume(volume)


@pytest.fixture(scope="module")
def slab():
    return load_study(DATA / "pancreas-ct-cbct-seg-001-slab8").volumes[0]


# (slice, row, column) of the 512 x 512 slices, read off the images
ORGANS = {"liver": (8, 270, 170), "spleen": (8, 335, 345), "spleen, upper": (3, 330, 350),
          "stomach wall": (8, 230, 300)}
BACK_MUSCLES = {"right erector spinae": (8, 375, 235), "left erector spinae": (8, 375, 290)}


def test_organs_are_cavity_and_the_back_muscles_wall(upper_abdomen):
    _, result = upper_abdomen
    labels = result.tissue_labels
    for name, point in ORGANS.items():
        assert labels[point] == Compartment.CAVITY, name
    for name, point in BACK_MUSCLES.items():
        assert labels[point] == Compartment.MUSCLE, name


def test_injected_arm_vein_is_an_enhancing_vessel(upper_abdomen):
    volume, result = upper_abdomen
    vein = [item for item in result.set_aside if item["peak_hu"] > 1500]
    assert vein and all(item["reason"] == "contrast_vessel" for item in vein)
    z, r, c = vein[0]["centroid_index"]
    assert c > 400  # the left arm, beside the trunk
    soft = [les for les in result.lesions if les.is_soft_tissue]
    # what is left (looked at): the xiphoid's calcified tip in the midline and one dot of
    # contrast in the injected arm's cephalic vein
    assert len(soft) <= 2, soft


def _outline_point(hu: np.ndarray, k: int, column: int) -> int:
    """First row of the body from the front (top of the image) along a column."""
    body = ndi.binary_opening(hu[k] > -300, iterations=2)
    return int(np.flatnonzero(body[:, column])[0])


def _add_ball(hu: np.ndarray, spacing, centre_zyx_mm, radius_mm: float, value: float
              ) -> np.ndarray:
    """A ball of ``value`` HU (partial volume by supersampling) replacing the tissue."""
    out = hu.astype(np.float32).copy()
    grid = [np.arange(n) * s for n, s in zip(hu.shape, spacing)]
    lo = [max(0, int((c - radius_mm - 2 * s) / s)) for c, s in zip(centre_zyx_mm, spacing)]
    hi = [min(n, int((c + radius_mm + 2 * s) / s) + 2)
          for c, s, n in zip(centre_zyx_mm, spacing, hu.shape)]
    offsets = (np.arange(4) + 0.5) / 4 - 0.5
    for k in range(lo[0], hi[0]):
        for i in range(lo[1], hi[1]):
            for j in range(lo[2], hi[2]):
                pts = np.stack(np.meshgrid(grid[0][k] + offsets * spacing[0],
                                           grid[1][i] + offsets * spacing[1],
                                           grid[2][j] + offsets * spacing[2],
                                           indexing="ij"), -1).reshape(-1, 3)
                frac = np.mean(np.linalg.norm(pts - centre_zyx_mm, axis=1) <= radius_mm)
                out[k, i, j] += frac * (value - out[k, i, j])
    return out


def _with(volume, hu):
    from dataclasses import replace
    return replace(volume, hu=np.round(hu).astype(volume.hu.dtype))


def test_marker_on_the_skin_is_external_and_a_deposit_under_it_is_found(slab):
    spacing = np.asarray(slab.spacing_zyx_mm, float)
    k, column = 4, 256
    top = _outline_point(slab.hu, k, column)
    # a 4 mm bead lying on the skin, its centre on the surface (half of it in the air), as
    # dense as the radiotherapy skin markers of a real planning CT after partial volume
    marker = (k * spacing[0], top * spacing[1], column * spacing[2])
    hu = _add_ball(slab.hu, spacing, marker, 2.0, 2300.0)
    result = analyze_volume(_with(slab, ndi.gaussian_filter(hu, (0, 0.7, 0.7))))
    near = [item for item in result.set_aside
            if abs(item["centroid_index"][2] - column) < 6 and
            abs(item["centroid_index"][1] - top) < 6]
    assert near and near[0]["reason"] == "external", near
    assert not any(les.is_soft_tissue and abs(les.centroid_index[2] - column) < 6 and
                   abs(les.centroid_index[1] - top) < 6 for les in result.lesions)
    # the same bead of calcium (the densest small calcifications) 3 mm under the skin
    deposit = (k * spacing[0], top * spacing[1] + 3.0, column * spacing[2])
    hu = _add_ball(slab.hu, spacing, deposit, 2.0, 900.0)
    result = analyze_volume(_with(slab, ndi.gaussian_filter(hu, (0, 0.7, 0.7))))
    found = [les for les in result.lesions if les.is_soft_tissue and
             abs(les.centroid_index[2] - column) < 6 and
             abs(les.centroid_index[1] - top - 3.0 / spacing[1]) < 6]
    assert found, result.set_aside


def test_one_voxel_speck_at_the_skin_is_not_called(slab):
    spacing = np.asarray(slab.spacing_zyx_mm, float)
    k, column = 4, 200
    top = _outline_point(slab.hu, k, column)
    hu = slab.hu.astype(np.float32).copy()
    hu[k, top + 1, column] = 175.0
    result = analyze_volume(_with(slab, hu))
    assert not any(les.is_soft_tissue and abs(les.centroid_index[2] - column) < 4
                   for les in result.lesions)


def test_noise_chain_is_broken_and_the_deposit_on_it_kept():
    shape = (80, 20, 20)
    hu = np.zeros(shape, np.float32)
    hu[5:75, 10, 10] = 140.0  # a 70 mm chain of voxels just above a 130 HU threshold
    hu[38:41, 9:12, 9:12] = 600.0  # a deposit on it
    hu[20:22, 3, 3] = 140.0  # a short speck elsewhere: no chain
    flat = np.flatnonzero(hu >= 130.0)
    values = hu.ravel()[flat]
    comp, n = sparse_components(flat, shape)
    assert n == 2
    stats = component_stats(flat, comp, values, n, shape, (1.0, 1.0, 1.0))
    drop = noise_chain_voxels(values, comp, stats, (1.0, 1.0, 1.0),
                              level_hu=170.0, min_extent_mm=40.0)
    dropped = np.zeros(shape, bool)
    dropped.ravel()[flat[drop]] = True
    assert dropped[5:38, 10, 10].all() and dropped[41:75, 10, 10].all()
    assert not dropped[38:41, 9:12, 9:12].any()
    assert not dropped[20:22, 3, 3].any()
    # a real sheet (mostly well above the level) is never a chain
    hu2 = np.zeros(shape, np.float32)
    hu2[5:75, 8:12, 10] = 400.0
    hu2[5:75, 7, 10] = 140.0
    flat2 = np.flatnonzero(hu2 >= 130.0)
    comp2, n2 = sparse_components(flat2, shape)
    values2 = hu2.ravel()[flat2]
    stats2 = component_stats(flat2, comp2, values2, n2, shape, (1.0, 1.0, 1.0))
    assert not noise_chain_voxels(values2, comp2, stats2, (1.0, 1.0, 1.0),
                                  level_hu=170.0, min_extent_mm=40.0).any()
