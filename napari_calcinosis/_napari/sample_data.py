"""npe2 sample data: the bundled synthetic studies, generated on first use and cached."""

from __future__ import annotations

from typing import Any

from napari_calcinosis.phantom import sample_study_path

from .reader import NO_LAYERS, read_dicom


def _sample(name: str) -> list[Any]:
    layers = read_dicom(sample_study_path(name))
    return [] if layers == NO_LAYERS else layers


def generalized_study() -> list[Any]:
    """CT and radiograph with generalized symmetric skin/subcutaneous deposits (universalis)."""
    return _sample("generalized")


def localized_study() -> list[Any]:
    """CT and radiograph with a localized one-sided cluster of deposits (circumscripta)."""
    return _sample("localized")
