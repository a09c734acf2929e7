"""Accuracy of the CT analysis on the project's phantoms (ground truth) and on real files.

Phantom criteria (issue 3): sensitivity >= 0.95 (0.85 at 30 HU of noise on slices of 2.5 mm
or more since issue 13, see ``_sensitivity_bar``) for deposits whose expected peak after
partial volume is at least 180 HU, positive predictive value >= 0.95 for soft-tissue
lesions, layer right for >= 90 % and side right for >= 99 % of matched lesions, extent, form
and symmetry calls right, and no look-alike (costal cartilage, aortic plaque, bone island,
granuloma, table) or skeleton reported as a soft-tissue lesion.

A deposit counts as visible when its expected peak is at least 180 HU and it is wholly scanned (one
cut by the first or last slice is not assessed, by design). Matching: a truth deposit is found when
a lesion centroid lies within its radius plus one slice (at least 5 mm); a soft-tissue lesion is a
true positive when it lies that close to any truth deposit (a deposit split in two by noise is not
a false one); a false one that is noise in soft tissue only counts against the PPV, one on a
look-alike, the skeleton or the table fails the test. The expected calls are those of the phantom's
truth document (``napari_calcinosis.phantom.expected_summary``): extent and form by the contract's
rules on the truth's regions, symmetry from every deposit (by design symmetric for the generalized
and deep scenarios, one-sided for the localized one).

The default run covers every noise level (10, 20, 30 HU) and every slice thickness (1, 2.5,
5 mm) once, on the three deposit scenarios. The full grid (every scenario at every noise
level and thickness, each phantom with its own seed, criteria on the counts pooled per
setting) takes a few minutes; it prints its accuracy table with ``pytest -s``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_calcinosis.ct import analyze_volume
from napari_calcinosis.phantom import PhantomSpec, Tissue, expected_summary, make_ct_phantom
from napari_calcinosis.types import Lesion

VISIBLE_HU = 180.0
NOT_SOFT_TISSUE = (Tissue.BONE_CORTEX, Tissue.BONE_MARROW, Tissue.TABLE, Tissue.CARTILAGE,
                   Tissue.VESSEL, Tissue.AIR)


@dataclass
class Score:
    visible: int
    found: int
    soft: int
    true_soft: int
    matched: int
    layer_ok: int
    side_ok: int
    bad: list


def _tolerance(size_mm: float, spacing) -> float:
    return max(5.0, size_mm / 2.0 + float(spacing[0]))


def score(ph, result) -> Score:
    """Match lesions to truth deposits and look-alikes (see the module docstring)."""
    lesions = result.lesions
    pos = np.array([les.centroid_mm for les in lesions]).reshape(-1, 3)
    truth_pos = np.array([t.center_lps_mm for t in ph.truth]).reshape(-1, 3)
    tol = np.array([_tolerance(t.diameter_mm, ph.spacing_zyx_mm) for t in ph.truth])
    visible = found = matched = layer_ok = side_ok = 0
    cut = _cut_by_scan_range(ph)
    for t, c, r in zip(ph.truth, truth_pos, tol):
        dist = np.linalg.norm(pos - c, axis=1) if len(pos) else np.array([np.inf])
        j = int(np.argmin(dist))
        hit = dist[j] <= r
        if t.peak_hu_expected >= VISIBLE_HU and t.id not in cut:
            visible += 1
            found += hit
        if hit:
            matched += 1
            layer_ok += lesions[j].layer == t.layer
            side_ok += lesions[j].side == t.side
    soft = [les for les in lesions if les.is_soft_tissue]
    true_soft, bad = 0, []
    for les in soft:
        dist = np.linalg.norm(truth_pos - les.centroid_mm, axis=1) if len(truth_pos) else \
            np.array([np.inf])
        if np.any(dist <= tol):
            true_soft += 1
            continue
        bad.append(_what_is_there(ph, les))
    return Score(visible, found, len(soft), true_soft, matched, layer_ok, side_ok, bad)


def _cut_by_scan_range(ph) -> set[int]:
    """Deposits on the first or last slice: only partly scanned, which the detector does
    not assess (``napari_calcinosis.ct._detect._inside_field``), so they are not counted as
    visible."""
    edges = np.concatenate([ph.lesion_mask[0].ravel(), ph.lesion_mask[-1].ravel()])
    return set(np.unique(edges).tolist()) - {0}


def _what_is_there(ph, lesion: Lesion) -> str:
    """Name the look-alike or tissue under a false soft-tissue lesion (for the message)."""
    for look in ph.lookalikes:
        if look.kind == "table":  # a 430 mm slab: told by the tissue label below
            continue
        if np.linalg.norm(np.subtract(look.center_lps_mm, lesion.centroid_mm)) <= \
                _tolerance(look.size_mm, ph.spacing_zyx_mm):
            return f"{look.kind} reported as {lesion.layer} at {lesion.centroid_mm}"
    k, i, j = np.clip(np.round(lesion.centroid_index).astype(int), 0,
                      np.array(ph.shape) - 1)
    tissue = Tissue(int(ph.tissue_labels[k, i, j])).name
    return f"{tissue.lower()} reported as {lesion.layer} at {lesion.centroid_mm}"


def expected_calls(ph) -> dict:
    """The calls the truth implies (``napari_calcinosis.phantom.expected_summary``)."""
    return expected_summary(ph)


def lookalike_leaks(s: Score) -> list[str]:
    """False soft-tissue lesions that are a look-alike, the skeleton or the table (never
    allowed); the rest are noise in soft tissue, which only the PPV limits."""
    return [b for b in s.bad if not b.startswith(("muscle", "viscera", "subcutaneous", "skin",
                                                  "visceral_fat"))]


def check(ph, result) -> None:
    s = score(ph, result)
    assert s.visible == 0 or s.found / s.visible >= 0.95, \
        f"sensitivity {s.found}/{s.visible}"
    assert s.soft == 0 or s.true_soft / s.soft >= 0.95, f"PPV {s.true_soft}/{s.soft}: {s.bad}"
    assert s.matched == 0 or s.layer_ok / s.matched >= 0.90, f"layer {s.layer_ok}/{s.matched}"
    assert s.matched == 0 or s.side_ok / s.matched >= 0.99, f"side {s.side_ok}/{s.matched}"
    leaks = lookalike_leaks(s)
    assert leaks == [], f"look-alikes or skeleton reported as soft tissue: {leaks}"
    want = expected_calls(ph)
    got = result.summary
    assert (got.extent, got.form) == (want["extent"], want["form"])
    assert got.symmetry.call == want["symmetry"]["call"], \
        f"symmetry {got.symmetry.by_region} vs truth {want['symmetry']['by_region']}"


def run(scenario: str, seed: int, noise: float, thickness: float, **spec) -> None:
    ph = make_ct_phantom(PhantomSpec(scenario=scenario, seed=seed, noise_sd_hu=noise,
                                     slice_thickness_mm=thickness, **spec))
    check(ph, analyze_volume(ph.as_volume()))


# One case per noise level and per thickness (a Latin square), each deposit scenario once.
DEFAULT_CASES = [
    ("generalized", 21, 10.0, 1.0, {"z_range_mm": (330.0, 480.0)}),
    ("deep", 22, 20.0, 2.5, {"deposit_count_scale": 2.0}),
    ("localized", 23, 30.0, 5.0, {"deposit_count_scale": 2.0}),
]


@pytest.mark.parametrize(("scenario", "seed", "noise", "thickness", "spec"), DEFAULT_CASES,
                         ids=[f"{c[0]}-sd{c[2]:g}-{c[3]:g}mm" for c in DEFAULT_CASES])
def test_phantom_accuracy(scenario, seed, noise, thickness, spec):
    run(scenario, seed, noise, thickness, **spec)


def test_no_deposits_means_no_soft_tissue_lesions():
    ph = make_ct_phantom(PhantomSpec(scenario="none", seed=24, noise_sd_hu=30.0,
                                     slice_thickness_mm=5.0))
    result = analyze_volume(ph.as_volume())
    assert [les for les in result.lesions if les.is_soft_tissue] == []
    assert result.summary.extent == "none" and result.summary.form == "none"
    assert result.summary.incidental["vessel_wall"] >= 1  # aortic plaque is still listed
    table = ph.tissue_labels == Tissue.TABLE
    # the table is outside the body (where it touches the back, its top shares the coarse
    # blocks of the skin: a few tenths of a per cent of its voxels)
    assert np.mean(result.tissue_labels[table] > 0) < 3e-3


SETTINGS = [(noise, thickness) for noise in (10.0, 20.0, 30.0) for thickness in (1.0, 2.5, 5.0)]
SCENARIOS = ("generalized", "deep", "localized")
#: (scenario, seed, noise, thickness): every phantom of the grid has a seed of its own, so
#: that no two share deposits or noise (the deep scenario's superficial deposits are those of
#: the generalized scenario with the same seed).
GRID = [(scenario, 1000 + 100 * n + 10 * t + c, noise, thickness)
        for n, noise in enumerate((10.0, 20.0, 30.0))
        for t, thickness in enumerate((1.0, 2.5, 5.0))
        for c, scenario in enumerate(SCENARIOS)]
_TABLE: dict[tuple[float, float], np.ndarray] = {}


def _grid_counts(noise: float, thickness: float) -> np.ndarray:
    """Pooled counts of every grid phantom at one setting (checking each phantom's calls)."""
    total = np.zeros(7)
    for scenario, seed, n, t in GRID:
        if (n, t) != (noise, thickness):
            continue
        spec = {} if scenario == "generalized" else {"deposit_count_scale": 2.0}
        ph = make_ct_phantom(PhantomSpec(scenario=scenario, seed=seed, noise_sd_hu=noise,
                                         slice_thickness_mm=thickness, **spec))
        result = analyze_volume(ph.as_volume())
        s = score(ph, result)
        assert lookalike_leaks(s) == [], (scenario, seed, lookalike_leaks(s))
        want, got = expected_calls(ph), result.summary
        assert (got.extent, got.form, got.symmetry.call) == \
            (want["extent"], want["form"], want["symmetry"]["call"]), (scenario, seed)
        total += [s.found, s.visible, s.true_soft, s.soft, s.layer_ok, s.side_ok, s.matched]
    return total


def _print_table() -> None:
    print("\nCT accuracy on the phantom grid (pooled over the generalized, deep and localized "
          "scenarios)\n noise  slice  sensitivity      PPV              layer            side")
    for (noise, thickness), counts in sorted(_TABLE.items()):
        found, visible, true_soft, soft, layer_ok, side_ok, matched = counts
        cells = [(found, visible), (true_soft, soft), (layer_ok, matched), (side_ok, matched)]
        print(f" {noise:4.0f}   {thickness:4.1f}  " + "  ".join(
            f"{a / b:5.3f} ({a:3.0f}/{b:3.0f})" for a, b in cells))


def _sensitivity_bar(noise: float, thickness: float) -> float:
    """0.95, except at 30 HU of noise on slices of 2.5 mm or more: 0.85.

    Real CT noise is not white (streaks, a sharp kernel's ringing, small vessels in fat),
    so the detector measures the noise around each candidate and asks a faint one to stand
    out of the brightest tissue around it (issue 13). On this phantom's white noise that
    costs the faintest deposits at the highest noise and thickest slices: 0.930 and 0.866
    there, against 0.957 and 0.963 before (and no false call gained or lost). The real
    studies decide; this bar records the trade.
    """
    return 0.85 if noise >= 30.0 and thickness >= 2.5 else 0.95


@pytest.mark.slow
@pytest.mark.parametrize(("noise", "thickness"), SETTINGS,
                         ids=[f"sd{n:g}-{t:g}mm" for n, t in SETTINGS])
def test_phantom_accuracy_full_grid(noise, thickness):
    """Every scenario at one noise level and thickness; criteria on the pooled counts."""
    counts = _grid_counts(noise, thickness)
    _TABLE[(noise, thickness)] = counts
    if len(_TABLE) == len(SETTINGS):
        _print_table()
    found, visible, true_soft, soft, layer_ok, side_ok, matched = counts
    assert found / visible >= _sensitivity_bar(noise, thickness), \
        f"pooled sensitivity {found:.0f}/{visible:.0f}"
    assert true_soft / soft >= 0.95, f"pooled PPV {true_soft:.0f}/{soft:.0f}"
    assert layer_ok / matched >= 0.90, f"pooled layer {layer_ok:.0f}/{matched:.0f}"
    assert side_ok / matched >= 0.99, f"pooled side {side_ok:.0f}/{matched:.0f}"


# ---- real files --------------------------------------------------------------------------

def _load(path):
    """A real single slice as a 3-slice volume (the slice repeated at its thickness): the
    CT detector refuses single images, and these test its reading of real anatomy in the
    plane of the slice."""
    import dataclasses

    from napari_calcinosis.dicom import load_study

    with warnings.catch_warnings():  # pydicom's notes about these odd test files
        warnings.simplefilter("ignore")
        volume = load_study(path).volumes[0]
    if volume.hu.shape[0] >= 3:
        return volume
    hu = np.repeat(volume.hu[:1], 3, axis=0)
    mask = None if volume.padding_mask is None else np.repeat(volume.padding_mask[:1], 3, 0)
    return dataclasses.replace(volume, hu=hu, padding_mask=mask, headers=[], files=[],
                               sop_instance_uids=[])


def _body(hu2: np.ndarray) -> np.ndarray:
    """The patient in one slice: largest component above -500 HU, holes filled."""
    labels, n = ndi.label(ndi.binary_opening(hu2 > -500, iterations=2))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return ndi.binary_fill_holes(labels == np.argmax(sizes))


def _cut_air(hu2: np.ndarray) -> np.ndarray:
    """Lung parenchyma (-950..-500 HU on average) that reaches the image's border."""
    mean = ndi.uniform_filter(hu2.astype(float), 9)
    labels, _ = ndi.label((mean > -950) & (mean < -500))
    border = np.unique(np.r_[labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    return np.isin(labels, border[border > 0])


def _near_cortex(hu2: np.ndarray, mask: np.ndarray, spacing, reach_mm=2.0) -> bool:
    """Does ``mask`` come within ``reach_mm`` of a large structure above 700 HU (bone)?"""
    labels, n = ndi.label(hu2 >= 700)
    area = np.bincount(labels.ravel()) * float(np.prod(spacing))
    area[0] = 0
    cortex = (area >= 50.0)[labels]
    if not cortex.any():
        return False
    dist = ndi.distance_transform_edt(~cortex, sampling=spacing)
    return bool(dist[mask].min() <= reach_mm)


@pytest.mark.parametrize("name", ["693_UNCR.dcm", "693_J2KR.dcm", "J2K_pixelrep_mismatch.dcm",
                                  "CT_small.dcm"])
def test_real_head_and_spine_slices_have_no_soft_tissue_lesions(testdata, name):
    """Heads with their holder (skull, skull base) and a cropped spine slice (cortex, rib)."""
    volume = _load(testdata(name))
    result = analyze_volume(volume)
    assert [les for les in result.lesions if les.is_soft_tissue] == []
    body = _body(volume.hu[0])
    # outside: beyond the patient, but not the lung a cropped image cuts (its vessels are
    # above -500 HU and inside the patient)
    outside = ~ndi.binary_dilation(body, iterations=3) & ~_cut_air(volume.hu[0])
    assert not result.tissue_labels[0][outside & (volume.hu[0] > -500)].any(), \
        "the head holder or table was taken for the body"


@pytest.mark.parametrize("name", ["explicit_VR-UN.dcm", "bad_sequence.dcm"])
def test_real_body_slices_keep_lesions_off_table_and_bone(testdata, name):
    """An abdomen with the table above it (flipped rows) and a cut-off spine slice."""
    volume = _load(testdata(name))
    result = analyze_volume(volume)
    hu2 = volume.hu[0]
    body = _body(hu2)
    spacing = volume.spacing_zyx_mm[1:]
    for lesion in result.lesions:
        mask = result.lesion_labels[0] == lesion.id
        assert body[mask].all(), f"lesion {lesion.id} lies outside the patient (table)"
        if lesion.is_soft_tissue:
            assert not _near_cortex(hu2, mask, spacing), \
                f"soft-tissue lesion {lesion.id} sits on bone"
