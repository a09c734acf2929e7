"""A lesion set -> the study summary: extent, form, symmetry, deep and incidental findings.

:func:`summarize` applies the contract's rules (``docs/contract.md``, ``summary``) to CT and
radiograph lesions alike: extent and form from the regions involved (:mod:`._distribution`),
symmetry about the mid-sagittal plane (:mod:`._symmetry`, which also fits that plane).
"""

from ._distribution import (
    ADJACENT_REGIONS,
    INCIDENTAL_LAYERS,
    deep_involvement,
    extent_of,
    form_of,
    regions_adjacent,
    summarize,
    summary_series,
)
from ._symmetry import (
    MidPlane,
    assess_symmetry,
    fit_midplane,
    lesion_burden,
    matched_fraction,
    symmetry_index,
)

__all__ = [
    "ADJACENT_REGIONS", "INCIDENTAL_LAYERS", "MidPlane", "assess_symmetry", "deep_involvement",
    "extent_of", "fit_midplane", "form_of", "lesion_burden", "matched_fraction",
    "regions_adjacent", "summarize", "summary_series", "symmetry_index",
]
