"""Body CT -> calcifications outside bone, each with its layer, side, region and morphology.

:func:`analyze_volume` is the detector: a coarse tissue model of the body (:mod:`._grid`,
:mod:`._tissue`, :mod:`._bone`, :mod:`._morphology`), the soft-tissue level and noise
(:mod:`._noise`), the anatomy that places lesions (:mod:`._anatomy`), calcium candidates
found at full resolution (:mod:`._candidates`), measured over their own voxels
(:mod:`._measure`) and described (:mod:`._lesions`). A lesion drawn by hand is described by
the same steps (:func:`lesion_context`, :func:`measure_masks`, :mod:`._manual`).
"""

from ._detect import CTResult, analyze_volume, build_context
from ._lesions import LesionContext
from ._manual import lesion_context, mask_from_click, measure_masks, placement_problem
from ._tissue import TISSUE_NAMES, Compartment

__all__ = ["TISSUE_NAMES", "CTResult", "Compartment", "LesionContext", "analyze_volume",
           "build_context", "lesion_context", "mask_from_click", "measure_masks",
           "placement_problem"]
