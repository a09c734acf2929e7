"""Chest radiograph -> soft-tissue calcification dots, with what they were told apart from.

:func:`analyze_radiograph` prepares a working copy (:mod:`._prep`), finds the body outline,
lungs, bone and midline (:mod:`._anatomy`), searches dense dots at several scales
(:mod:`._scales`, :mod:`._candidates`, measured by :mod:`._measure`, :mod:`._texture` and
the noise model of :mod:`._noise`), rejects look-alikes with a reason (:mod:`._lookalikes`)
and describes what is kept (:mod:`._lesions`). :mod:`._filters` computes the image filters
with OpenCV.
"""

from ._anatomy import FilmAnatomy, segment_anatomy
from ._detect import XrayResult, analyze_radiograph
from ._part import stated_part
from ._prep import WorkImage, prepare, stored_spacing

__all__ = ["FilmAnatomy", "WorkImage", "XrayResult", "analyze_radiograph", "prepare",
           "segment_anatomy", "stated_part", "stored_spacing"]
