"""Texture contrast of radiograph spots: a spot's response over the texture of a ring around it.

:func:`texture_cnr` scores one spot at one scale; :func:`texture_cnrs` scores many spots at
once (one gather of every ring, medians of the sorted rows) and gives the same numbers.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from napari_calcinosis.types import XrayParams

from ._noise import median
from ._prep import WorkImage


def texture_cnr(work: WorkImage, response: np.ndarray, row: int, col: int, radius_mm: float,
                reach_mm: float, params: XrayParams,
                outline_depth_mm: np.ndarray | None = None, *, step: int = 1) -> float:
    """Contrast of a spot over the texture of its surroundings, at one scale.

    The filter ``response`` (of one scale) at the spot, minus its median over a ring
    ``texture_ring_mm`` around it, divided by the ring's robust spread: a dot among lung
    vessels, rib edges or other dots scores low, a dot on smooth soft tissue scores high.
    Ring pixels where the filter reaches (``reach_mm``) across the body outline are left
    out. The caller takes the best over the probed scales: a dot stands out most at the
    scale where its surroundings are quietest. ``response`` (and ``outline_depth_mm``) may be
    on a grid of ``step`` working pixels per pixel; ``row``, ``col`` are working-grid.
    """
    inner_mm, outer_mm = (radius_mm + v for v in params.texture_ring_mm)
    pixel_mm, row, col = work.pixel_mm * step, row // step, col // step
    reach = int(np.ceil(outer_mm / pixel_mm))
    r0, c0 = max(0, row - reach), max(0, col - reach)
    patch = response[r0: row + reach + 1, c0: col + reach + 1]
    ring_mask, core = _texture_window(r0 - row, patch.shape[0], c0 - col, patch.shape[1],
                                      tuple(v * step for v in work.spacing_mm), inner_mm,
                                      outer_mm, max(radius_mm, pixel_mm))
    if outline_depth_mm is not None:
        depth = outline_depth_mm[r0: r0 + patch.shape[0], c0: c0 + patch.shape[1]]
        ring_mask = ring_mask & (depth > reach_mm)
    ring = patch[ring_mask]
    if ring.size < 8:
        return 0.0
    centre = float(median(ring))
    spread = 1.4826 * float(median(np.abs(ring - centre)))
    peak = float(patch[core].max())
    return (peak - centre) / max(spread, 1e-9)


def texture_cnrs(work: WorkImage, response: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                 radius_mm: float, reach_mm: float, params: XrayParams,
                 outline_depth_mm: np.ndarray | None = None, *, step: int = 1) -> np.ndarray:
    """:func:`texture_cnr` of every spot ``(rows[i], cols[i])`` (working grid), as float64.

    Every ring is gathered at once (pixels outside the image or across the outline as NaN,
    which sorts last); the medians are the middle order statistics of the sorted rows, the
    same values and arithmetic as :func:`texture_cnr`.
    """
    rows, cols = np.asarray(rows) // step, np.asarray(cols) // step
    if rows.size == 0:
        return np.zeros(0)
    inner_mm, outer_mm = (radius_mm + v for v in params.texture_ring_mm)
    pixel_mm = work.pixel_mm * step
    reach = int(np.ceil(outer_mm / pixel_mm))
    ring_mask, core = _texture_window(-reach, 2 * reach + 1, -reach, 2 * reach + 1,
                                      tuple(v * step for v in work.spacing_mm), inner_mm,
                                      outer_mm, max(radius_mm, pixel_mm))
    ring = _gather(response, rows, cols, np.argwhere(ring_mask) - reach)
    if outline_depth_mm is not None:
        depth = _gather(outline_depth_mm, rows, cols, np.argwhere(ring_mask) - reach)
        ring[~(depth > reach_mm)] = np.nan  # NaN depth (outside) compares False too
    ring.sort(axis=1)
    counts = np.count_nonzero(np.isfinite(ring), axis=1)
    centre = _middle(ring, counts)
    deviation = np.abs(ring - centre[:, None])
    deviation.sort(axis=1)
    spread = 1.4826 * _middle(deviation, counts).astype(np.float64)
    peak = np.nanmax(_gather(response, rows, cols, np.argwhere(core) - reach), axis=1)
    out = (peak.astype(np.float64) - centre.astype(np.float64)) / np.maximum(spread, 1e-9)
    return np.where(counts < 8, 0.0, out)


def _gather(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, offsets: np.ndarray
            ) -> np.ndarray:
    """``values`` at each spot plus each offset, one row per spot; NaN outside the array."""
    r = rows[:, None] + offsets[None, :, 0]
    c = cols[:, None] + offsets[None, :, 1]
    inside = (r >= 0) & (r < values.shape[0]) & (c >= 0) & (c < values.shape[1])
    out = values[np.clip(r, 0, values.shape[0] - 1), np.clip(c, 0, values.shape[1] - 1)]
    out = out.astype(np.promote_types(out.dtype, np.float32), copy=False)
    out[~inside] = np.nan
    return out


def _middle(ordered: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median of each row of ``ordered`` (sorted, NaN last) over its ``counts`` finite values:
    the middle value, or the mean of the two middle ones as ``np.median`` takes it."""
    low = np.clip((counts - 1) // 2, 0, ordered.shape[1] - 1)
    high = np.clip(counts // 2, 0, ordered.shape[1] - 1)
    first = np.take_along_axis(ordered, low[:, None], axis=1)[:, 0]
    second = np.take_along_axis(ordered, high[:, None], axis=1)[:, 0]
    return np.where(counts % 2 == 1, first, (first + second) / 2)


@lru_cache(maxsize=4096)
def _texture_window(top: int, rows: int, left: int, cols: int, spacing_mm: tuple[float, float],
                    inner_mm: float, outer_mm: float, core_mm: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Ring and core masks of a texture window (offsets from the spot), shared by all spots."""
    rr, cc = np.mgrid[top: top + rows, left: left + cols]
    dist = np.hypot(rr * spacing_mm[0], cc * spacing_mm[1])
    return (dist >= inner_mm) & (dist <= outer_mm), dist <= core_mm
