"""The ruler's arithmetic without a viewer: polyline lengths and the unit on a radiograph."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcinosis.review import MM, length_text, path_length, radiograph_ruler_unit
from napari_calcinosis.types import Radiograph, SeriesInfo


@pytest.mark.parametrize(("points", "length"), [
    ([[0, 0], [3, 4]], 5.0),
    ([[0, 0, 0], [0, 3, 4], [12, 3, 4]], 17.0),  # a polyline: the sum of its pieces
    ([[1.5, 2.5]], 0.0),
])
def test_path_length(points, length):
    assert path_length(np.asarray(points, float)) == pytest.approx(length)


def _film(spacing, source):
    return Radiograph(image=np.zeros((2000, 1600), np.float32), info=SeriesInfo("2.25.9"),
                      pixel_spacing_mm=spacing, spacing_source=source)


@pytest.mark.parametrize(("spacing", "source", "unit", "note"), [
    ((0.2, 0.2), "PixelSpacing", "mm", ""),
    ((0.2, 0.2), "ImagerPixelSpacing", "mm", "at the detector"),
    (None, "none", "px", "no pixel spacing"),
    ((0.01, 0.01), "PixelSpacing", "px", "no pixel spacing"),  # a 20 mm "chest film"
])
def test_radiograph_ruler_unit(spacing, source, unit, note):
    found = radiograph_ruler_unit(_film(spacing, source))
    assert found.unit == unit and (note in found.note if note else found == MM)


def test_length_text():
    assert length_text(23.44, MM) == "23.4 mm"
    assert length_text(187.4, radiograph_ruler_unit(_film(None, "none"))) == "187 px"
