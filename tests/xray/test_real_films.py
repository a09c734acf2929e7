"""The radiograph detector on real films no one here made (tests/data/realxr/README.md).

None of these films is known to hold a soft-tissue calcification; what each test pins down
was seen on the film with the calls drawn on it (benchmarks/bench_real_xr.py --images).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from napari_calcinosis.dicom import load_study
from napari_calcinosis.pipeline import not_analysed_reason
from napari_calcinosis.types import AnalysisError, SeriesInfo, XrayParams
from napari_calcinosis.xray import analyze_radiograph, stated_part
from napari_calcinosis.xray._anatomy import segment_anatomy
from napari_calcinosis.xray._prep import prepare

REAL = Path(__file__).resolve().parents[1] / "data" / "realxr"


def film(name: str):
    return load_study(REAL / name).radiographs[0]


def test_a_resized_export_keeping_the_detector_spacing_is_measured_as_a_chest():
    """The RSNA film is 1024 px with the 0.168 mm spacing of the original 3000 px film: a
    172 mm chest. The spacing is set aside with a warning, the lungs are found, and the
    mediastinum clipped to white by the 8-bit export is body, not a dead border strip."""
    rad = film("rsna-pneumonia-pa.dcm")
    params = XrayParams()
    work = prepare(rad, params)
    assert not work.spacing_known
    assert any("172 mm field" in w and "PixelSpacing" in w for w in work.warnings)
    anatomy = segment_anatomy(work, params=params, view=rad.view, body_part=rad.info.body_part)
    assert anatomy.is_chest
    assert work.dead.mean() < 0.02 and anatomy.body.mean() > 0.8


def test_lead_marker_and_surgical_clip_are_devices_not_lesions():
    rad = film("rsna-pneumonia-pa.dcm")
    result = analyze_radiograph(rad)
    # the "L" side marker (top right) and a clip at the left heart border, both metal
    for rows, cols in ((slice(20, 140), slice(860, 920)), (slice(400, 432), slice(620, 652))):
        assert not result.lesion_labels[rows, cols].any()
    near = [x for x in result.rejected if 20 <= x["row"] <= 140 and 860 <= x["col"] <= 920]
    assert any(x["reason"] == "device" for x in near)
    assert len(result.lesions) <= 1


def test_acr_nema_chest_without_file_meta_is_read_with_a_warning_and_analysed():
    study = load_study(REAL / "fodicom-CR-MONO1-10-chest")
    assert any("fodicom-CR-MONO1-10-chest" in w and "file meta" in w for w in study.warnings)
    rad = study.radiographs[0]
    assert rad.photometric == "MONOCHROME1"
    assert len(analyze_radiograph(rad).lesions) <= 1


def test_dental_panoramic_is_refused_by_its_header_and_by_its_image():
    rad = film("fodicom-CR-ModalitySequenceLUT.dcm")
    reason = not_analysed_reason(rad)
    assert reason and "TEETH" in reason and "not a chest" in reason
    # without the words, the image itself: two dark regions, but no lung fields
    blank = replace(rad, info=replace(rad.info, study_description="", series_description=""))
    assert not_analysed_reason(blank) is None
    with pytest.raises(AnalysisError, match="does not look like a chest film"):
        analyze_radiograph(blank)


@pytest.mark.parametrize(("fields", "part"), [
    ({"body_part": "CHEST"}, "chest"),
    ({"body_part": "", "study_description": "XR THORAX PA"}, "chest"),
    ({"body_part": "ABDOMEN", "study_description": "CHEST ABDOMEN"}, "chest"),
    ({"body_part": "HAND"}, "other"),
    ({"body_part": "LSPINE"}, "other"),
    ({"series_description": "Knee AP/Lat"}, "other"),
    ({"study_description": "OPG panoramic teeth"}, "other"),
    ({"study_description": "Portable AP"}, ""),
    ({}, ""),
])
def test_stated_part_reads_the_header_words(fields, part):
    got, evidence = stated_part(SeriesInfo(series_instance_uid="2.25.1", **fields))
    assert got == part
    assert bool(evidence) == bool(part)


def test_film_hybrid_on_a_real_film_has_the_requested_deposits():
    """Deposits go into the body at the outline (tangential) or en face, at least 15 mm
    apart, each adding a peak of the requested multiple of the local noise."""
    from napari_calcinosis.phantom import make_film_hybrid, score_film
    rad = film("rsna-pneumonia-pa.dcm")
    hybrid = make_film_hybrid(rad, seed=3)
    assert len(hybrid.deposits) == 8
    assert sum(d.zone == "en_face" for d in hybrid.deposits) == 2
    added = hybrid.radiograph.image - rad.image.astype(np.float32)
    assert added.min() >= -1e-3  # only calcium is added (the film's clip level may cap it)
    for a in hybrid.deposits:
        r, c = int(round(a.row)), int(round(a.col))
        window = added[r - 15: r + 16, c - 15: c + 16]
        assert window.max() > 0
        for b in hybrid.deposits:
            if b.ident > a.ident:
                assert np.hypot(a.row - b.row, a.col - b.col) * hybrid.pixel_mm >= 15.0
    # the scorer: calls at the truth are found, one elsewhere is a false call
    from napari_calcinosis.types import Lesion
    def lesion(i, r, c):
        return Lesion(id=i, series_instance_uid="2.25.1", centroid_index=[r, c], layer="skin",
                      region="unknown", side="left")
    calls = [lesion(i + 1, d.row + 2, d.col - 2) for i, d in enumerate(hybrid.deposits)]
    calls.append(lesion(99, 5.0, 5.0))
    score = score_film(hybrid, calls)
    assert score.found == 8 and score.false_calls == 1
    empty = score_film(hybrid, [])
    assert empty.found == 0 and empty.sensitivity == 0.0 and len(empty.misses) == empty.eligible > 0


@pytest.mark.parametrize("sigma_mm", [0.5, 1.0])
def test_film_edge_sigma_is_recovered_from_a_blurred_step(sigma_mm):
    from scipy import ndimage as ndi

    from napari_calcinosis.phantom import film_edge_sigma_mm
    image = np.zeros((400, 400), np.float32)
    image[:, 200:] = 100.0
    image = ndi.gaussian_filter(image, sigma_mm / 0.2)
    image += np.random.default_rng(0).normal(0, 1, image.shape).astype(np.float32)
    assert film_edge_sigma_mm(image, 0.2) == pytest.approx(sigma_mm, rel=0.15)
