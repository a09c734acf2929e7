"""npe2 sample data: the bundled synthetic studies, generated on first use and cached.

Building a sample the first time takes several seconds: napari's progress bar (the activity
dock) shows it; a cached sample opens without one.
"""

from __future__ import annotations

from typing import Any

from napari.utils import progress as napari_progress

from napari_calcinosis.phantom import sample_study_path
from napari_calcinosis.types.progress import percent

from .reader import NO_LAYERS, read_dicom


class _FirstUseProgress:
    """``progress(fraction, message)`` that opens napari's progress bar on its first call
    (only a sample being built calls it) and closes it at the end."""

    def __init__(self, name: str):
        self.title = f"Building the {name} sample study (first use)"
        self.bar: Any = None

    def __call__(self, fraction: float, message: str) -> None:
        if self.bar is None:
            self.bar = napari_progress(total=100, desc=self.title)
        self.bar.n = percent(fraction)
        self.bar.set_description(f"{self.title}: {message}" if message else self.title)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _sample(name: str) -> list[Any]:
    report = _FirstUseProgress(name)
    try:
        path = sample_study_path(name, progress=report)
    finally:
        report.close()
    layers = read_dicom(path)
    return [] if layers == NO_LAYERS else layers


def generalized_study() -> list[Any]:
    """CT and radiograph with generalized symmetric skin/subcutaneous deposits (universalis)."""
    return _sample("generalized")


def localized_study() -> list[Any]:
    """CT and radiograph with a localized one-sided cluster of deposits (circumscripta)."""
    return _sample("localized")
