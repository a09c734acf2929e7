"""npe2 activation of the plugin: napari's reader preferences, and detection on open.

The manifest names :func:`on_activate`; npe2 calls it before the plugin's first command
(the reader included). The reader itself (``napari_calcinosis._napari.reader``) knows nothing
of Qt: it calls the hooks in its ``AFTER_READ`` list, and this module adds the one that
starts detection in the viewer.
"""

from typing import Any

from napari_calcinosis._napari import reader
from napari_calcinosis.types import Study


def on_activate(context: Any) -> None:
    """Claim DICOM names in napari's reader preferences and detect on what the reader opens.

    Parameters
    ----------
    context : npe2.PluginContext
        Unused; npe2 passes it.
    """
    reader.on_activate(context)
    if _detect_after_read not in reader.AFTER_READ:
        reader.AFTER_READ.append(_detect_after_read)


def _detect_after_read(study: Study) -> None:
    try:  # the GUI side needs a Qt binding; without one, reading still works
        from .autodetect import detect_after_read
    except ImportError:
        return
    detect_after_read(study)
