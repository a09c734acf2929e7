"""The plugin's settings of this session: whether detection starts when a study opens.

``NAPARI_CALCINOSIS_AUTODETECT=0`` switches it off; the detection panel's checkbox changes it
for this session.
"""

import os

ENV_VAR = "NAPARI_CALCINOSIS_AUTODETECT"
_state: dict[str, bool | None] = {"enabled": None}


def autodetect_enabled() -> bool:
    """True unless the environment variable is ``0`` or the user unticked the checkbox."""
    if _state["enabled"] is None:
        return os.environ.get(ENV_VAR, "1").strip() not in ("0", "false", "no", "off")
    return bool(_state["enabled"])


def set_autodetect(enabled: bool) -> None:
    """Turn automatic detection on or off for this session."""
    _state["enabled"] = bool(enabled)
