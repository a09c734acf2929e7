"""CT and radiograph of one patient put together: the CT's lesions on the frontal film.

A chest film has no patient coordinates, so the CT is registered to it: a digitally
reconstructed radiograph of the CT (:mod:`._drr`) is matched to the film in translation and
isotropic scale (:mod:`._register`); each CT lesion is projected onto the film and each film
dot learns whether a CT lesion confirms it (:mod:`._link`). A registration that does not
hold is refused with a sentence, never guessed.
"""

from ._drr import DRR, display_axes, hu_to_mu, make_drr
from ._link import CONFIRMATION_STATES, CTLink, link_ct_to_radiograph, link_study, prepare_links
from ._register import CTLinkParams, Registration, masked_ncc, register_drr

__all__ = ["CONFIRMATION_STATES", "DRR", "CTLink", "CTLinkParams", "Registration",
           "display_axes", "hu_to_mu", "link_ct_to_radiograph", "link_study", "make_drr",
           "masked_ncc", "prepare_links", "register_drr"]
