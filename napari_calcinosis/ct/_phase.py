"""Is the CT contrast-enhanced, and in which phase: the blood in the aorta says so.

Iodinated contrast makes vessels, kidneys and bowel as dense as calcium, so the phase decides
what a dense tube in the soft tissues is likely to be. The aorta lies just in front of the
spine (to its left in the chest): in every few slices the brightest smooth disc of
``_DISC_MM`` in a box in front of the vertebral body is taken as the aortic lumen, and the
median over the slices is the blood's density. Unenhanced blood is 35-55 HU; the portal
venous phase puts the aorta at about 130-250 HU, the arterial phase above
``_ARTERIAL_HU``. The file's ContrastBolusAgent is reported beside it but does not decide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_calcinosis.types import Volume

__all__ = ["ContrastPhase", "contrast_phase"]

_ENHANCED_HU = 130.0
_ARTERIAL_HU = 250.0
_DISC_MM = 8.0
_BOX_FRONT_MM = (3.0, 60.0)  # in front of the vertebral body
_BOX_SIDE_MM = 50.0
_MAX_SLICES = 24
_SMOOTH_SD_HU = 35.0  # a smooth lumen: local SD below this and 1.5 noise SDs
_BONE_NEAR_HU = 450.0  # a disc touching this is on bone or plaque, not in the lumen


@dataclass(frozen=True)
class ContrastPhase:
    """The blood's density and what it means.

    ``blood_hu`` is ``None`` when no aorta could be measured (no spine in the scan).
    """

    blood_hu: float | None
    phase: str  # "unenhanced", "portal_venous", "arterial" or "unknown"
    slices: int = 0

    @property
    def enhanced(self) -> bool:
        return self.blood_hu is not None and self.blood_hu >= _ENHANCED_HU

    def sentence(self) -> str:
        """The phase as the report's technique section and the warnings say it."""
        if self.blood_hu is None:
            return "contrast phase not determined (no aorta found in front of the spine)"
        words = {"unenhanced": "no intravenous contrast in the vessels",
                 "portal_venous": "contrast-enhanced, portal venous phase",
                 "arterial": "contrast-enhanced, arterial phase"}[self.phase]
        return f"{words} (aortic blood {self.blood_hu:.0f} HU)"

    def to_dict(self) -> dict:
        return {"blood_hu": None if self.blood_hu is None else round(self.blood_hu, 1),
                "phase": self.phase, "slices_measured": self.slices,
                "description": self.sentence()}


def contrast_phase(hu: np.ndarray, volume: Volume, spine_front_lps: np.ndarray,
                   slice_index: np.ndarray, midplane_left: np.ndarray, *,
                   noise_sd_hu: float = 20.0) -> ContrastPhase:
    """The contrast phase of a CT from its aortic blood (module docstring).

    Parameters
    ----------
    hu : numpy.ndarray
        Full-resolution HU.
    volume : Volume
        Its geometry.
    spine_front_lps : numpy.ndarray
        ``(n, 3)`` front of the vertebral body per sampled slice (NaN where none).
    slice_index : numpy.ndarray
        The full-resolution slice of each row of ``spine_front_lps``.
    midplane_left : numpy.ndarray
        Unit LPS vector toward the patient's left (the mid-sagittal plane's normal).
    noise_sd_hu : float
        Image noise (a lumen is as smooth as the noise lets it be).
    """
    good = np.flatnonzero(np.all(np.isfinite(spine_front_lps), axis=1))
    if len(good) == 0:
        return ContrastPhase(None, "unknown")
    chosen = good[np.linspace(0, len(good) - 1, min(_MAX_SLICES, len(good))).astype(int)]
    smooth_sd = max(_SMOOTH_SD_HU, 1.5 * noise_sd_hu)
    values = [v for k in chosen
              if (v := _lumen_hu(hu, volume, int(slice_index[k]), spine_front_lps[k],
                                 midplane_left, smooth_sd)) is not None]
    if not values:
        return ContrastPhase(None, "unknown")
    blood = float(np.median(values))
    phase = ("arterial" if blood >= _ARTERIAL_HU else
             "portal_venous" if blood >= _ENHANCED_HU else "unenhanced")
    return ContrastPhase(blood, phase, len(values))


def _lumen_hu(hu: np.ndarray, volume: Volume, k: int, front_lps: np.ndarray,
              left: np.ndarray, smooth_sd: float) -> float | None:
    """The mean of the brightest smooth disc in front of the spine in slice ``k``."""
    spacing = np.asarray(volume.spacing_zyx_mm[1:], float)
    anterior = np.array([0.0, -1.0, 0.0])
    corners = [front_lps + anterior * a + left * s
               for a in _BOX_FRONT_MM for s in (-_BOX_SIDE_MM, _BOX_SIDE_MM)]
    idx = volume.lps_to_index(np.array(corners))[:, 1:]
    lo = np.clip(np.floor(idx.min(axis=0)).astype(int), 0, np.array(hu.shape[1:]) - 1)
    hi = np.clip(np.ceil(idx.max(axis=0)).astype(int) + 1, 1, np.array(hu.shape[1:]))
    if np.any(hi - lo < 4):
        return None
    patch = np.clip(hu[k, lo[0]:hi[0], lo[1]:hi[1]].astype(np.float32), -200.0, 1200.0)
    size = np.maximum(np.round(_DISC_MM / spacing).astype(int), 3)
    mean = ndi.uniform_filter(patch, size=tuple(size))
    sd = np.sqrt(np.maximum(ndi.uniform_filter(patch * patch, size=tuple(size)) - mean ** 2,
                            0.0))
    near_dense = ndi.maximum_filter(patch, size=tuple(size + 2)) >= _BONE_NEAR_HU
    smooth = (sd <= smooth_sd) & ~near_dense
    if not smooth.any():
        return None
    return float(mean[smooth].max())
