"""The coarse block grid on which the tissue model works, and moving data between grids.

Blocks are about ``CTParams.tissue_grid_mm`` wide; along z one slice per block is sampled.
Reading the volume is done with strided views per slab in threads, upsampling by repeating
columns on the small array and gathering whole rows (fast, contiguous copies).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

_CLIP_HU = 100


@dataclass(frozen=True)
class CoarseGrid:
    """Block grid over a full-resolution volume: block ``(K, I, J)`` covers voxels
    ``[K*fz, (K+1)*fz) x [I*fy, ...) x [J*fx, ...)``; along z it is sampled at one slice."""

    shape: tuple[int, int, int]
    factors: tuple[int, int, int]
    spacing_zyx_mm: tuple[float, float, float]

    @classmethod
    def for_volume(cls, shape: tuple[int, int, int], spacing_zyx_mm, grid_mm: float
                   ) -> CoarseGrid:
        """Grid whose blocks are about ``grid_mm`` wide (never finer than the voxels)."""
        factors = tuple(max(1, int(round(grid_mm / float(s)))) for s in spacing_zyx_mm)
        return cls(tuple(int(n) for n in shape), factors,  # type: ignore[arg-type]
                   tuple(float(s) for s in spacing_zyx_mm))  # type: ignore[arg-type]

    @property
    def coarse_shape(self) -> tuple[int, int, int]:
        return tuple(-(-n // f) for n, f in zip(self.shape, self.factors))  # type: ignore

    @property
    def coarse_spacing_mm(self) -> tuple[float, float, float]:
        return tuple(s * f for s, f in zip(self.spacing_zyx_mm, self.factors))  # type: ignore

    def sample_slices(self) -> np.ndarray:
        """Full-resolution slice sampled for each coarse slice (the block's middle)."""
        fz = self.factors[0]
        return np.minimum(np.arange(self.coarse_shape[0]) * fz + fz // 2, self.shape[0] - 1)

    def to_coarse(self, index_zyx: np.ndarray) -> np.ndarray:
        """Coarse block of full-resolution indices ``(..., 3)``."""
        return np.asarray(index_zyx) // np.asarray(self.factors)


def _block_offsets(f: int) -> list[int]:
    """Two sample offsets per block axis (all of them for blocks of 1 or 2)."""
    return sorted({f // 4, f - 1 - f // 4})


def coarse_sample(hu: np.ndarray, grid: CoarseGrid, *, workers: int = 2,
                  dense_mean: bool = False) -> tuple[np.ndarray, ...]:
    """Block mean and block maximum HU of the sampled slices (2 x 2 samples per block).

    For the mean, dense voxels are clipped at 100 HU first, so that a small deposit does not
    turn the fat block it lies in into soft tissue; the maximum finds dense bone.

    Returns
    -------
    tuple
        ``(mean_hu, max_hu)`` (``float32``; the dtype of ``hu``), plus the unclipped mean
        (``float32``, which finds trabecular bone with a thin cortex) when ``dense_mean``.
    """
    _, fy, fx = grid.factors
    kz = grid.sample_slices()
    mean = np.zeros(grid.coarse_shape, np.float32)
    peak = np.full(grid.coarse_shape, -32768, dtype=hu.dtype)
    acc_dtype = np.int32 if np.issubdtype(hu.dtype, np.integer) else np.float64
    unclipped = np.zeros(grid.coarse_shape, np.float32)

    def one(chunk: np.ndarray) -> None:
        src = hu[kz[chunk]]
        shape = (len(chunk),) + mean.shape[1:]
        acc, raw = np.zeros(shape, acc_dtype), np.zeros(shape, acc_dtype)
        top = peak[chunk]
        cnt = np.zeros(shape[1:], np.int32)
        for a in _block_offsets(fy):
            for b in _block_offsets(fx):
                part = np.ascontiguousarray(src[:, a::fy, b::fx])  # one strided read
                ny, nx = part.shape[1:]
                np.maximum(top[:, :ny, :nx], part, out=top[:, :ny, :nx])
                acc[:, :ny, :nx] += np.minimum(part, _CLIP_HU)
                if dense_mean:
                    raw[:, :ny, :nx] += part
                cnt[:ny, :nx] += 1
        cnt = np.maximum(cnt, 1)
        mean[chunk] = acc / cnt
        unclipped[chunk] = raw / cnt
        peak[chunk] = top

    chunks = np.array_split(np.arange(len(kz)), max(1, workers * 2))
    run_parallel(one, [c for c in chunks if len(c)], workers)
    return (mean, peak, unclipped) if dense_mean else (mean, peak)


def run_parallel(func, items, workers: int) -> list:
    """``func`` over ``items``, in a thread pool when ``workers > 1``."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(func, items))


def upsample_slab(coarse: np.ndarray, grid: CoarseGrid, k0: int, k1: int) -> np.ndarray:
    """Full-resolution slices ``k0:k1`` of a coarse array (nearest block)."""
    out = np.empty((k1 - k0,) + tuple(grid.shape[1:]), coarse.dtype)
    upsample_into(out, coarse, grid, k0, k1, offset=k0)
    return out


def upsample_into(out: np.ndarray, coarse: np.ndarray, grid: CoarseGrid, k0: int,
                   k1: int, offset: int = 0) -> None:
    """Write slices ``k0:k1`` of the nearest-block upsampling of ``coarse`` into
    ``out[k0 - offset:k1 - offset]``.

    Columns are repeated on the small coarse array; rows are then gathered whole, which
    copies contiguous rows instead of broadcasting over a short inner axis (much faster).
    """
    fz, fy, fx = grid.factors
    _, ny, nx = grid.shape
    wide = np.repeat(coarse[np.arange(k0, k1) // fz], fx, axis=2)[:, :, :nx]
    np.take(wide, np.arange(ny) // fy, axis=1, out=out[k0 - offset:k1 - offset])
