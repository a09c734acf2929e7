"""npe2 reader: a DICOM file, folder or DICOMDIR -> one napari layer per image series.

The reader never raises for bad data: what cannot be read is reported with a napari
notification (one sentence, no traceback) and the null-layer sentinel ``[(None,)]`` is returned,
so napari adds nothing and shows no error dialog.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from napari.settings import get_settings
from napari.utils import progress as napari_progress
from napari.utils.notifications import show_error, show_warning

from napari_calcinosis.dicom import load_study
from napari_calcinosis.phantom import default_cache_dir
from napari_calcinosis.types import CalcinosisError, Study
from napari_calcinosis.types.progress import percent

from .layer_data import LayerDataTuple, study_layer_data, study_messages
from .messages import toast_text

PathOrPaths = str | os.PathLike | Sequence[str | os.PathLike]
ReaderFunction = Callable[[PathOrPaths], list[Any]]

#: File-name patterns of the manifest (kept equal by tests/test_manifest.py).
DICOM_SUFFIXES = (".dcm", ".dicom")
DICOMDIR_NAME = "DICOMDIR"
#: A read shows napari's progress bar once it has lasted this long (s) ...
SHOW_AFTER_S = 0.5
#: ... and redraws it at most this often (s).
REDRAW_S = 0.1
#: npe2's answer for "read fine, but nothing to show".
NO_LAYERS: list[tuple[None]] = [(None,)]

_log = logging.getLogger(__name__)


def claims(path: str | os.PathLike) -> bool:
    """True for a folder, a DICOMDIR or a ``*.dcm``/``*.dicom`` file (any case); no file I/O
    beyond telling a folder from a file."""
    p = Path(path)
    if p.name.upper() == DICOMDIR_NAME or p.suffix.lower() in DICOM_SUFFIXES:
        return True
    return p.is_dir()


def napari_get_reader(path: PathOrPaths) -> ReaderFunction | None:
    """npe2 ``get_reader``: the DICOM reader for paths this plugin claims, else ``None``.

    Parameters
    ----------
    path : str, path-like or list of them
        What the user opened.

    Returns
    -------
    callable or None
        :func:`read_dicom` when every path is a folder, a DICOMDIR or a DICOM-named file.
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths or not all(claims(p) for p in paths):
        return None
    return read_dicom


class _ReadProgress:
    """``progress(fraction, message)`` for the loader that shows napari's progress bar only
    for a read that lasts (after :data:`SHOW_AFTER_S`), redrawn at most every
    :data:`REDRAW_S`: the loader reports every file, and in a viewer each redraw of napari's
    bar also runs Qt's event loop (once per file it doubled the time of a 300-slice read)."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.bar: Any = None

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - self.start < SHOW_AFTER_S or (self.bar is not None
                                               and now - self.last < REDRAW_S):
            return
        self.last = now
        if self.bar is None:
            self.bar = napari_progress(total=100, desc="Reading DICOM")
        self.bar.n = percent(fraction)
        self.bar.set_description(message or "Reading DICOM")
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _load_all(paths: list[str | os.PathLike]) -> Study:
    """Load all paths as one study (files selected together group into series together)."""
    report = _ReadProgress()
    try:
        return load_study(paths, progress=report)
    finally:
        report.close()


def read_dicom(path: PathOrPaths) -> list[Any]:
    """Read DICOM into LayerData tuples; never raises for bad input.

    Parameters
    ----------
    path : str, path-like or list of them
        Files, folders or DICOMDIRs.

    Returns
    -------
    list
        One ``(data, kwargs, "image")`` per usable series, or ``[(None,)]`` (nothing to show)
        after a notification saying why.
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    try:
        study = _load_all(paths)
        layers: list[LayerDataTuple] = study_layer_data(study)
    except CalcinosisError as exc:
        show_error(toast_text(str(exc)))
        return NO_LAYERS
    except Exception as exc:  # a bug or an unforeseen file: report it, never crash napari
        _log.debug("reading %s failed", paths, exc_info=True)
        show_error(f"napari-calcinosis could not read {_describe(paths)}: "
                   f"{type(exc).__name__}: {exc}")
        return NO_LAYERS
    # A sample's own truth.json is not among them: the loader knows this project's side files.
    messages = study_messages(study)
    if not layers:
        messages.insert(0, f"{_describe(paths)}: no image series that napari-calcinosis "
                           "can show.")
    if messages:
        show_warning(toast_text("\n".join(messages)))
    _after_read(study)
    return layers or NO_LAYERS


#: Called with each study the reader has read, after its layers are made (the Qt side
#: registers the detection that starts on open, see ``napari_calcinosis._qt.activate``).
AFTER_READ: list[Callable[[Study], None]] = []


def _after_read(study: Study) -> None:
    for hook in list(AFTER_READ):
        hook(study)


def _describe(paths: list[str | os.PathLike]) -> str:
    first = os.fspath(paths[0])
    return first if len(paths) == 1 else f"{first} and {len(paths) - 1} more"


PLUGIN_NAME = "napari-calcinosis"
#: napari reader preferences this plugin sets, when the user has none, on its activation.
PREFERRED_PATTERNS = ("*.dcm", "*.DCM", "*.dicom", "*.DICOM")
#: Set to ``0`` to leave napari's reader preferences alone.
PREFER_ENV = "NAPARI_CALCINOSIS_PREFER_READER"


def prefer_this_reader_for_dicom() -> list[str]:
    """Make this plugin napari's reader for ``*.dcm``/``*.dicom`` (and for the folders of its
    sample studies) unless the user chose another.

    napari's builtin imageio reader also claims these names but reads neither Hounsfield units
    nor geometry; without a preference napari asks which reader to use on every open.

    Returns
    -------
    list of str
        The patterns that were added (the user's own choices are never overwritten).
    """
    plugins = get_settings().plugins
    current = dict(plugins.extension2reader)
    added = [p for p in (*PREFERRED_PATTERNS, sample_folders_pattern()) if p not in current]
    if added:
        plugins.extension2reader = {**current, **dict.fromkeys(added, PLUGIN_NAME)}
    return added


def sample_folders_pattern() -> str:
    """napari preference pattern of the folders the sample studies are generated into.

    napari asks which reader to use for every folder (its builtin reader claims folders too);
    the plugin's own sample studies need not ask.
    """
    return os.path.join(os.path.realpath(default_cache_dir()), "*")


def on_activate(context: Any) -> None:
    """npe2 activation hook: claim DICOM file names in napari's reader preferences.

    Parameters
    ----------
    context : npe2.PluginContext
        Unused; npe2 passes it.
    """
    if os.environ.get(PREFER_ENV, "1").strip() != "0":
        prefer_this_reader_for_dicom()
