"""The radiograph detector's scale space: per probed radius a noise CNR map, response, smooth.

Narrow scales live on the working grid. Wide ones (centre sigma at least
``half_grid_min_sigma_px``) live on a half-resolution grid: 2 x 2 block means of the working
image once it is smoothed to nearly their sigma, where a Gaussian of twice the pixel size
loses nothing the filter would keep and costs an eighth. Their peaks are placed back on the
working grid by the brightest pixel of the block (:func:`refine_rows_cols`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_calcinosis.types import XrayParams

from ._filters import gaussian
from ._noise import bilinear, block_stats, noise_correlation, noise_gains
from ._prep import WorkImage


@dataclass
class ScaleGrid:
    """The scales computed on one grid (``step`` working pixels per pixel)."""

    step: int
    scales: list[int]  # indices into the probed radii
    cnr: np.ndarray  # (len(scales), rows, cols)
    response: np.ndarray
    smooth: np.ndarray


@dataclass
class ScaleSpace:
    """Every probed radius's noise CNR, filter response and centre-smoothed image."""

    grids: list[ScaleGrid]
    sigmas: list[float]  # centre sigma of each scale, working-grid pixels
    refine: np.ndarray | None = None  # working-grid image that places wide peaks

    def locate(self, k: int) -> tuple[ScaleGrid, int]:
        """The grid holding scale ``k`` and the scale's index in it."""
        for grid in self.grids:
            if k in grid.scales:
                return grid, grid.scales.index(k)
        raise KeyError(k)

    def best(self, shape: tuple[int, int], *, out: np.ndarray | None = None) -> np.ndarray:
        """Best-scale CNR on the working grid (wide grids repeated up to it), or the
        maximum of it and ``out`` written into ``out``."""
        out = np.zeros(shape, dtype=np.float32) if out is None else out
        for grid in self.grids:
            top = grid.cnr.max(axis=0)
            rows, cols = (n * grid.step for n in top.shape)
            for dr in range(grid.step):  # each pixel of a block takes the block's value
                for dc in range(grid.step):
                    view = out[dr:rows:grid.step, dc:cols:grid.step]
                    np.maximum(view, top, out=view)
            if grid.step > 1:  # a last odd row or column repeats its neighbour
                np.maximum(out[rows:], out[rows - 1: rows], out=out[rows:])
                np.maximum(out[:, cols:], out[:, cols - 1: cols], out=out[:, cols:])
        return out


@dataclass
class FilterBank:
    """Centre-smoothed images and centre-surround responses of every probed radius of one
    base image, per grid: what a scale space needs that does not depend on where it
    searches (so it can be computed before the anatomy is known)."""

    sigmas: list[float]  # centre sigma of each scale, working-grid pixels
    steps: list[int]  # grids (working pixels per pixel) holding scales
    scales: dict[int, list[int]]  # per grid, indices into the probed radii
    smooth: dict[int, np.ndarray]  # per grid, (len(scales), rows, cols)
    response: dict[int, np.ndarray]
    refine: np.ndarray | None  # working-grid image that places wide peaks


def filter_bank(base: np.ndarray, pixel_mm: float, params: XrayParams) -> FilterBank:
    """The :class:`FilterBank` of ``base`` (a working-grid image of ``pixel_mm`` pixels)."""
    sigmas = [max(0.7, r / np.sqrt(2.0) / pixel_mm) for r in params.radii_mm]
    wide = [k for k, s in enumerate(sigmas) if s >= params.half_grid_min_sigma_px]
    narrow = [k for k in range(len(sigmas)) if k not in wide]
    full, half, start = _levels(base, [sigmas[k] for k in narrow], [sigmas[k] for k in wide],
                                params.dog_ratio)
    bank = FilterBank(sigmas, [], {}, {}, {}, start)
    for step, scales, blurred in ((1, narrow, full), (2, wide, half)):
        if scales:
            bank.steps.append(step)
            bank.scales[step] = scales
            bank.smooth[step], bank.response[step] = _stacks(
                blurred, [sigmas[k] for k in scales], params.dog_ratio)
    return bank


def scale_space(work: WorkImage, bank: FilterBank, search: np.ndarray, params: XrayParams,
                outline_depth_mm: np.ndarray | None = None, *, spread_floor: bool = False
                ) -> ScaleSpace:
    """Noise CNR, response and smoothed image of every probed radius.

    The noise of each scale's response is the local pixel noise (robust spread of a
    1-pixel high-pass image, in blocks: it grows with attenuation) times that scale's noise
    gain for the image's measured noise correlation (:func:`noise_gains`); with
    ``spread_floor`` the block spread of the response itself is a floor (for the top-hat,
    whose noise is not the image's). The response's block median is its local baseline;
    pixels where the filter straddles the body outline are left out of block statistics.
    """
    sigmas = bank.sigmas
    block = max(8, int(round(params.noise_block_mm / work.pixel_mm)))
    high_pass = work.high_pass if work.high_pass is not None \
        else work.image - gaussian(work.image, 1.0)
    _, pixel_noise, _ = block_stats(high_pass, search, block)
    noise_map = bilinear(pixel_noise, work.image.shape, block)
    gains = noise_gains(noise_correlation(high_pass, search, max(6, block // 2)),
                        tuple(sigmas), params.dog_ratio)
    space = ScaleSpace([], sigmas, bank.refine)
    for step in bank.steps:
        scales, smooth, response = bank.scales[step], bank.smooth[step], bank.response[step]
        cut = tuple(slice(None, n * step, step) for n in smooth.shape[1:])
        depth = None if outline_depth_mm is None else outline_depth_mm[cut]
        grid = ScaleGrid(step, scales, np.empty(smooth.shape, np.float32), response, smooth)
        for i, k in enumerate(scales):
            _cnr(grid.response[i], search[cut], depth, gains[k] * noise_map[cut],
                 max(4, block // step), spread_floor,
                 2 * params.dog_ratio * sigmas[k] * work.pixel_mm, out=grid.cnr[i])
        space.grids.append(grid)
    return space


def _stacks(blurred: dict[float, np.ndarray], sigmas: list[float], ratio: float
            ) -> tuple[np.ndarray, np.ndarray]:
    """Centre-smoothed images and centre-surround responses of scales on one grid (shared
    by every channel searching the same base image)."""
    shape = (len(sigmas), *blurred[sigmas[0]].shape)
    smooth, response = np.empty(shape, np.float32), np.empty(shape, np.float32)
    for i, sigma in enumerate(sigmas):
        smooth[i] = blurred[sigma]
        np.subtract(smooth[i], blurred[ratio * sigma], out=response[i])
    return smooth, response


def _cnr(response: np.ndarray, search: np.ndarray, depth: np.ndarray | None,
         noise: np.ndarray, block: int, spread_floor: bool, reach_mm: float, *,
         out: np.ndarray) -> np.ndarray:
    """One scale's CNR (into ``out``): response over its block baseline, over the noise."""
    stats_mask = search if depth is None else search & (depth > reach_mm)
    level, spread, _ = block_stats(response, stats_mask, block)
    if spread_floor:
        noise = np.maximum(noise, bilinear(spread, response.shape, block))
    np.subtract(response, bilinear(level, response.shape, block), out=out)
    np.divide(out, noise, out=out)
    out[~search] = 0.0
    return out


def _levels(base: np.ndarray, narrow: list[float], wide: list[float], ratio: float
            ) -> tuple[dict[float, np.ndarray], dict[float, np.ndarray], np.ndarray | None]:
    """Gaussian levels of the narrow scales (working grid) and the wide ones (half grid).

    The half grid starts from the widest working-grid level not above the narrowest wide
    sigma (at least 1 pixel, so the block mean does not alias), averaged in 2 x 2 blocks
    (which adds a quarter pixel squared of variance); returns also that starting level.
    """
    full = gaussian_levels(base, [*narrow, *(ratio * s for s in narrow)])
    if not wide:
        return full, {}, None
    below = [s for s in full if s <= min(wide)]
    start_sigma = max(below) if below and max(below) >= 1.0 else min(wide)
    if start_sigma not in full:
        full = {**full, **gaussian_levels(base, [start_sigma])}
    start = full[start_sigma]
    rows, cols = start.shape[0] // 2 * 2, start.shape[1] // 2 * 2
    small = 0.25 * (start[0:rows:2, 0:cols:2] + start[1:rows:2, 0:cols:2]
                    + start[0:rows:2, 1:cols:2] + start[1:rows:2, 1:cols:2])
    done = np.sqrt(start_sigma**2 + 0.25) / 2.0
    wanted = sorted({*wide, *(ratio * s for s in wide)})
    half = gaussian_levels(small, [max(s / 2.0, done) for s in wanted], done=done)
    return full, {s: half[max(s / 2.0, done)] for s in wanted}, start


def gaussian_levels(image: np.ndarray, sigmas: list[float], *, done: float = 0.0
                    ) -> dict[float, np.ndarray]:
    """The image smoothed at every sigma (pixels), each level blurred from the one below.

    A Gaussian of sigma ``b`` applied to one of sigma ``a`` is one of sigma
    ``sqrt(a**2 + b**2)``: the cascade's kernels are narrower than direct filtering, and
    sigmas shared by several scales (a centre equal to a narrower scale's surround) are
    computed once. ``done`` is the blur the image already has.
    """
    out: dict[float, np.ndarray] = {}
    current = image.astype(np.float32, copy=False)
    for sigma in sorted(set(sigmas)):
        step = np.sqrt(max(sigma**2 - done**2, 0.0))
        if step > 1e-6:
            current = gaussian(current, step)
        out[sigma], done = current, sigma
    return out


def refine_rows_cols(refine: np.ndarray, rows: np.ndarray, cols: np.ndarray, step: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Working-grid position of half-grid pixels: the brightest of each block in ``refine``."""
    best = np.full(rows.shape, -np.inf)
    out_r, out_c = rows * step, cols * step
    for dr in range(step):
        for dc in range(step):
            r = np.minimum(rows * step + dr, refine.shape[0] - 1)
            c = np.minimum(cols * step + dc, refine.shape[1] - 1)
            value = refine[r, c]
            better = value > best
            best = np.where(better, value, best)
            out_r, out_c = np.where(better, r, out_r), np.where(better, c, out_c)
    return out_r, out_c
