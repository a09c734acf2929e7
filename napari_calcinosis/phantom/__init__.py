"""Synthetic studies with ground truth: torso CTs, their radiographs, their DICOM files.

Used by the sample data, the tests and the benchmarks only; the analysis never imports it.
The same ``seed`` gives the same body and deposits in patient millimetres whatever the
slice thickness, pixel spacing, noise or z range.

``PhantomSpec(...)`` (:mod:`._spec`) -> :func:`make_ct_phantom` (:mod:`._render`: the body
of :mod:`._body`, :mod:`._slice` and :mod:`._parts`, the deposits and look-alikes of
:mod:`._lesions`, drawn with partial volume by :mod:`._shapes`) -> ``PhantomCT``;
:func:`project_radiograph` (:mod:`._xray`) -> ``PhantomXray`` with per-deposit truth;
:func:`write_study` (:mod:`._write`) writes a CT series, DX radiographs and ``truth.json``;
:func:`sample_study_path` (:mod:`._samples`) builds the bundled sample studies on first use.
:func:`make_hybrid` (:mod:`._hybrid`) inserts known deposits into a real CT and
:func:`score_hybrid` (:mod:`._hybrid_score`) scores a detector's lesions on it;
:func:`make_film_hybrid` and :func:`score_film` (:mod:`._film_hybrid`) do the same for
real chest films.
"""

from ._body import LANDMARKS, TISSUE_HU, Z_OFFSET_MM, Tissue
from ._film_hybrid import (
    FilmDeposit,
    FilmHybrid,
    FilmScore,
    film_edge_sigma_mm,
    make_film_hybrid,
    score_film,
)
from ._hybrid import ELIGIBLE_PEAK_HU, HybridDeposit, HybridStudy, edge_sigma_mm, make_hybrid
from ._hybrid_score import SOFT_LAYERS, HybridScore, score_hybrid
from ._lesions import REGION_BOXES
from ._render import make_ct_phantom
from ._samples import (
    SAMPLE_CLINICAL,
    SAMPLE_STUDIES,
    default_cache_dir,
    generator_hash,
    sample_study_path,
    write_sample,
)
from ._spec import SCENARIOS, PhantomCT, PhantomSpec, TruthLesion, TruthLookalike
from ._truth import expected_summary
from ._write import write_ct_series, write_radiograph, write_study
from ._xray import (
    PhantomXray,
    ProjectionParams,
    XrayLookalike,
    XrayTruth,
    project_radiograph,
    project_radiographs,
)

__all__ = [
    "ELIGIBLE_PEAK_HU", "FilmDeposit", "FilmHybrid", "FilmScore", "SOFT_LAYERS",
    "film_edge_sigma_mm", "HybridDeposit", "HybridScore", "HybridStudy",
    "edge_sigma_mm", "make_film_hybrid", "make_hybrid", "score_film", "score_hybrid",
    "LANDMARKS", "REGION_BOXES", "SAMPLE_CLINICAL", "SAMPLE_STUDIES", "SCENARIOS", "TISSUE_HU",
    "Z_OFFSET_MM", "PhantomCT", "PhantomSpec", "PhantomXray", "ProjectionParams", "Tissue",
    "TruthLesion", "TruthLookalike", "XrayLookalike", "XrayTruth", "default_cache_dir",
    "expected_summary", "generator_hash", "make_ct_phantom", "project_radiograph",
    "project_radiographs", "sample_study_path", "write_ct_series", "write_radiograph",
    "write_sample", "write_study",
]
