"""Calcium candidates as a sparse list of voxels, and their connected components.

Voxels at or above the calcium threshold are few (bone aside), so they are handled as sorted
flat indices into the volume: thresholding runs per z-slab in threads, and connected
components are found by looking up each voxel's neighbours in the sorted list
(``numpy.searchsorted``) and joining them with a sparse-graph component search. Nothing here
touches the whole volume more than once.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import product

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

#: The 13 neighbour offsets (dz, dy, dx) that, with their negatives, make 26-connectivity.
FORWARD_OFFSETS = tuple(off for off in product((-1, 0, 1), repeat=3) if off > (0, 0, 0))
#: All 26 neighbour offsets.
ALL_OFFSETS = tuple(off for off in product((-1, 0, 1), repeat=3) if off != (0, 0, 0))



def threshold_indices(hu: np.ndarray, threshold_hu: float, *,
                      allowed: Callable[[int, int], np.ndarray] | None = None,
                      workers: int = 2, slab: int = 16) -> np.ndarray:
    """Sorted flat indices (``int64``) of voxels with ``hu >= threshold_hu``.

    ``allowed(k0, k1)``, when given, returns a boolean mask of slices ``k0:k1`` (or one that
    broadcasts to them) outside which voxels are not wanted (bone, outside the body).
    """
    nz = hu.shape[0]
    plane = int(np.prod(hu.shape[1:]))
    starts = list(range(0, nz, slab))
    cut = np.ceil(threshold_hu) if np.issubdtype(hu.dtype, np.integer) else threshold_hu

    def one(k0: int) -> np.ndarray:
        k1 = min(k0 + slab, nz)
        mask = hu[k0:k1] >= cut
        if allowed is not None:
            mask &= allowed(k0, k1)
        return np.flatnonzero(mask) + k0 * plane

    if workers > 1 and len(starts) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(one, starts))
    else:
        parts = [one(k0) for k0 in starts]
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def unravel(flat: np.ndarray, shape: tuple[int, int, int]) -> tuple[np.ndarray, ...]:
    """``(z, y, x)`` integer arrays of flat indices."""
    plane = shape[1] * shape[2]
    z, rest = np.divmod(flat, plane)
    y, x = np.divmod(rest, shape[2])
    return z, y, x


def neighbour_positions(sorted_flat: np.ndarray, query_zyx: tuple[np.ndarray, ...],
                        offset: tuple[int, int, int],
                        shape: tuple[int, int, int]) -> np.ndarray:
    """Position in ``sorted_flat`` of each query voxel's neighbour at ``offset`` (-1: none)."""
    z, y, x = (c + o for c, o in zip(query_zyx, offset))
    valid = ((z >= 0) & (z < shape[0]) & (y >= 0) & (y < shape[1]) & (x >= 0)
             & (x < shape[2]))
    flat = (z * shape[1] + y) * shape[2] + x
    pos = np.searchsorted(sorted_flat, flat)
    pos = np.minimum(pos, max(len(sorted_flat) - 1, 0))
    found = valid & (len(sorted_flat) > 0)
    if len(sorted_flat):
        found &= sorted_flat[pos] == flat
    return np.where(found, pos, -1)


def sparse_components(sorted_flat: np.ndarray, shape: tuple[int, int, int],
                      offsets=FORWARD_OFFSETS) -> tuple[np.ndarray, int]:
    """Connected components (26-connected by default) of a sparse voxel set.

    Returns
    -------
    labels : numpy.ndarray
        ``int64`` component number (0..n-1) of each voxel, in order of first appearance.
    n : int
        Number of components.
    """
    n_vox = len(sorted_flat)
    if n_vox == 0:
        return np.empty(0, np.int64), 0
    zyx = unravel(sorted_flat, shape)
    rows, cols = [], []
    for offset in offsets:
        pos = neighbour_positions(sorted_flat, zyx, offset, shape)
        hit = pos >= 0
        rows.append(np.flatnonzero(hit))
        cols.append(pos[hit])
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(n_vox, n_vox))
    n, labels = connected_components(graph, directed=False)
    # renumber in order of first voxel so that ids follow the volume's storage order
    first = np.full(n, n_vox, np.int64)
    np.minimum.at(first, labels, np.arange(n_vox))
    rank = np.empty(n, np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(n)
    return rank[labels], int(n)


def touching_flags(hu: np.ndarray, query_flat: np.ndarray, threshold_hu: float,
                   forbidden: Callable[[tuple[np.ndarray, ...]], np.ndarray],
                   offsets=ALL_OFFSETS) -> np.ndarray:
    """For each query voxel: is a neighbour at/above the threshold in a forbidden place?

    ``forbidden(zyx)`` says, for voxel coordinates, whether they lie where candidates are not
    allowed (bone, outside the body).
    """
    flags = np.zeros(len(query_flat), bool)
    if len(query_flat) == 0:
        return flags
    shape = hu.shape
    z, y, x = unravel(query_flat, shape)
    for dz, dy, dx in offsets:
        zz, yy, xx = z + dz, y + dy, x + dx
        inside = ((zz >= 0) & (zz < shape[0]) & (yy >= 0) & (yy < shape[1]) & (xx >= 0)
                  & (xx < shape[2]))
        idx = np.flatnonzero(inside & ~flags)
        if len(idx) == 0:
            continue
        nb = (zz[idx], yy[idx], xx[idx])
        dense = hu[nb] >= threshold_hu
        flags[idx[dense]] |= forbidden(tuple(c[dense] for c in nb))
    return flags
