"""CT display windows (width/level in HU): the one place the presets are defined.

The calcium window is a design choice: ``W 600 / L 300`` shows 0..600 HU. Fat and air (below
0 HU) are black, so deposits in the subcutaneous fat stand out on a black background; skin and
muscle (about 30..80 HU) stay a faint grey that keeps the body outline and the muscle layers
readable; anything at or above the 130 HU detection threshold is at least 22 % grey and so
clearly brighter than muscle; typical deposits (200..400 HU) are mid to bright grey; dense
calcification and cortical bone (600 HU and more) saturate white. A window starting at 130 HU
was rejected: it paints a deposit at the threshold black and hides every anatomical landmark.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WindowPreset:
    """A CT display window.

    Attributes
    ----------
    name : str
        Identifier (``"soft_tissue"``, ...).
    label : str
        Human-readable name for menus.
    width_hu, level_hu : float
        Window width and centre in Hounsfield units.
    """

    name: str
    label: str
    width_hu: float
    level_hu: float

    @property
    def limits_hu(self) -> tuple[float, float]:
        """``(low, high)`` contrast limits in HU."""
        return limits_of(self.width_hu, self.level_hu)


def limits_of(width: float, level: float) -> tuple[float, float]:
    """Window ``(width, level)`` -> contrast limits ``(low, high)``."""
    return level - width / 2.0, level + width / 2.0


def window_level(limits: tuple[float, float]) -> tuple[float, float]:
    """Contrast limits ``(low, high)`` -> window ``(width, level)``."""
    low, high = (float(v) for v in limits)
    return high - low, (high + low) / 2.0


WINDOW_PRESETS: dict[str, WindowPreset] = {
    preset.name: preset
    for preset in (
        WindowPreset("soft_tissue", "Soft tissue (W400 L40)", 400.0, 40.0),
        WindowPreset("bone", "Bone (W1800 L400)", 1800.0, 400.0),
        WindowPreset("lung", "Lung (W1500 L-600)", 1500.0, -600.0),
        WindowPreset("calcium", "Calcium (W600 L300)", 600.0, 300.0),
    )
}

#: The window a CT opens with.
DEFAULT_WINDOW = "soft_tissue"


def contrast_limits(name: str = DEFAULT_WINDOW) -> tuple[float, float]:
    """Contrast limits ``(low, high)`` in HU of the preset called ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`WINDOW_PRESETS`.

    Returns
    -------
    tuple of float
        Lower and upper limit in HU.

    Raises
    ------
    KeyError
        When ``name`` is not a preset; the message lists the valid names.
    """
    try:
        return WINDOW_PRESETS[name].limits_hu
    except KeyError:
        valid = ", ".join(WINDOW_PRESETS)
        raise KeyError(f"unknown CT window {name!r}; choose one of: {valid}") from None


def matching_window(limits: tuple[float, float], *, tol_hu: float = 0.5) -> str | None:
    """Name of the preset whose limits equal ``limits`` (within ``tol_hu``), else ``None``."""
    low, high = limits
    for preset in WINDOW_PRESETS.values():
        p_low, p_high = preset.limits_hu
        if abs(p_low - low) <= tol_hu and abs(p_high - high) <= tol_hu:
            return preset.name
    return None
