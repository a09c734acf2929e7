"""Per-lesion measurements over labelled voxels only: size, HU, shape and morphology.

Every statistic is computed from the sparse voxel list of the candidates (sorted flat indices,
their HU and their component number) with ``numpy`` reductions per component, never with a
labelled whole-volume reduction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_calcinosis.types import CTParams

from ._candidates import unravel

#: Agatston density weights: (lower HU bound, weight).
AGATSTON_BANDS = ((400.0, 4), (300.0, 3), (200.0, 2), (130.0, 1))


@dataclass
class ComponentStats:
    """Statistics of ``n`` components (arrays of length ``n`` unless noted).

    Coordinates are fractional voxel indices ``(z, y, x)``; covariances are in mm² in the
    index axes (scaled by the voxel spacing) and include the extent of each voxel.
    """

    count: np.ndarray
    peak_hu: np.ndarray
    mean_hu: np.ndarray
    peak_flat: np.ndarray
    centroid_zyx: np.ndarray  # (n, 3)
    cov_mm2: np.ndarray  # (n, 3, 3)
    bbox_lo: np.ndarray  # (n, 3) int
    bbox_hi: np.ndarray  # (n, 3) int, inclusive
    max_area_mm2: np.ndarray
    first: np.ndarray  # start of each component in ``order``
    order: np.ndarray  # permutation of the voxel list grouping components

    @property
    def n(self) -> int:
        return len(self.count)

    def voxels_of(self, i: int) -> np.ndarray:
        """Positions (into the voxel list) of component ``i``."""
        stop = self.first[i + 1] if i + 1 < self.n else len(self.order)
        return self.order[self.first[i]:stop]


def component_stats(flat: np.ndarray, comp: np.ndarray, values: np.ndarray, n: int,
                    shape: tuple[int, int, int], spacing_zyx_mm) -> ComponentStats:
    """Statistics of every component of a sparse voxel set.

    Parameters
    ----------
    flat : numpy.ndarray
        Flat indices of the voxels.
    comp : numpy.ndarray
        Component number (0..n-1) of each voxel.
    values : numpy.ndarray
        HU of each voxel.
    n : int
        Number of components.
    shape : tuple of int
        Volume shape.
    spacing_zyx_mm : sequence of float
        Voxel spacing.
    """
    spacing = np.asarray(spacing_zyx_mm, float)
    order = np.lexsort((values, comp))  # by component, then HU: the last one is the peak
    comp_s = comp[order]
    first = np.flatnonzero(np.r_[True, comp_s[1:] != comp_s[:-1]]) if len(order) else \
        np.empty(0, np.int64)
    last = np.r_[first[1:], len(order)] - 1
    count = np.diff(np.r_[first, len(order)])
    vals = values[order].astype(np.float64)
    zyx = np.column_stack(unravel(flat[order], shape)).astype(np.float64)
    sums = np.add.reduceat(zyx, first, axis=0) if n else np.empty((0, 3))
    centroid = sums / count[:, None]
    rel_mm = (zyx - np.repeat(centroid, count, axis=0)) * spacing
    outer = rel_mm[:, :, None] * rel_mm[:, None, :]
    cov = np.add.reduceat(outer, first, axis=0) / count[:, None, None] if n else \
        np.empty((0, 3, 3))
    cov += np.diag(spacing ** 2 / 12.0)  # each voxel is a small box, not a point
    zi = zyx.astype(np.int64)
    lo = np.minimum.reduceat(zi, first, axis=0) if n else np.empty((0, 3), np.int64)
    hi = np.maximum.reduceat(zi, first, axis=0) if n else np.empty((0, 3), np.int64)
    return ComponentStats(
        count=count, peak_hu=vals[last] if n else np.empty(0),
        mean_hu=np.add.reduceat(vals, first) / count if n else np.empty(0),
        peak_flat=flat[order][last] if n else np.empty(0, np.int64),
        centroid_zyx=centroid, cov_mm2=cov, bbox_lo=lo, bbox_hi=hi,
        max_area_mm2=_max_slice_area(comp_s, zi[:, 0], n, spacing), first=first, order=order)


def _max_slice_area(comp_sorted: np.ndarray, z: np.ndarray, n: int,
                    spacing: np.ndarray) -> np.ndarray:
    """Largest in-plane area (mm²) of each component over its slices."""
    if n == 0:
        return np.empty(0)
    key = comp_sorted * (int(z.max()) + 1) + z
    uniq, counts = np.unique(key, return_counts=True)
    owner = uniq // (int(z.max()) + 1)
    area = np.zeros(n)
    np.maximum.at(area, owner, counts.astype(float))
    return area * spacing[1] * spacing[2]


def density_weight(peak_hu: np.ndarray | float) -> np.ndarray:
    """Agatston density weight (1-4) of a peak HU; 0 below 130 HU."""
    peak = np.asarray(peak_hu, float)
    out = np.zeros(peak.shape, int)
    for bound, weight in reversed(AGATSTON_BANDS):
        out[peak >= bound] = weight
    return out


def principal_extents_mm(cov_mm2: np.ndarray, thickness_mm: float,
                         spacing_zyx_mm) -> np.ndarray:
    """Full lengths (mm) along the principal axes, largest first, ``(n, 3)``.

    A solid ellipsoid of semi-axis ``a`` has variance ``a²/5`` along that axis, so the full
    length is ``sqrt(20 * variance)``. A slice only tells that the object lies somewhere in
    its thickness: an object confined to one slice gets, along z, the in-plane size of the
    object rather than the slice thickness.
    """
    cov = np.array(cov_mm2, float, copy=True)
    if len(cov) == 0:
        return np.empty((0, 3))
    box_z = float(spacing_zyx_mm[0]) ** 2 / 12.0
    inplane = np.sqrt(np.maximum(cov[:, 1, 1] + cov[:, 2, 2], 0.0))
    z_guess = np.minimum(float(thickness_mm), 2.0 * inplane) ** 2 / 12.0
    cov[:, 0, 0] = cov[:, 0, 0] - box_z + z_guess
    eig = np.linalg.eigvalsh(cov)[:, ::-1]
    return np.sqrt(20.0 * np.maximum(eig, 0.0))


def morphology_of(extents_mm: np.ndarray, fill: np.ndarray, *,
                  params: CTParams) -> list[str]:
    """Morphology words from principal extents and fill ratio.

    Parameters
    ----------
    extents_mm : numpy.ndarray
        ``(n, 3)`` principal full lengths, largest first.
    fill : numpy.ndarray
        Voxel volume divided by the volume of the ellipsoid with those extents (low for
        net-like lesions).
    params : CTParams
        Size classes.
    """
    out = []
    for (a, b, c), f in zip(extents_mm, fill):
        if a < params.punctate_max_mm:
            out.append("punctate")
        elif a >= params.mass_min_mm and b >= 0.5 * a:
            out.append("reticular" if f < 0.25 else "mass")
        elif a >= 2.5 * b:
            out.append("linear")
        elif b >= 6.0 and c <= 0.4 * b:
            out.append("sheet")
        elif a > params.nodular_max_mm and f < 0.25:
            out.append("reticular")
        else:
            out.append("nodular")
    return out


def noise_chain_voxels(values: np.ndarray, comp: np.ndarray, stats: ComponentStats, spacing,
                       *, level_hu: float, min_extent_mm: float) -> np.ndarray:
    """Voxels of noise chains that are below ``level_hu``.

    On a noisy (low-dose) series, or along the bright rim a sharp kernel draws at the skin,
    voxels just above the calcium threshold join into long chains that run through many
    slices. A deposit that touches such a chain becomes part of it, and is lost with it
    (cut by the end of the series, or judged as the chain). A chain is a component at least
    ``min_extent_mm`` long whose median lies below ``level_hu``: most of it is no brighter
    than the noise. Its voxels below ``level_hu`` are returned (True, per voxel of
    ``values``) so that the caller drops them: what stands above the noise in it (a
    deposit) is then a component of its own. A calcification's own voxels lie mostly well
    above ``level_hu``, so it is never a chain.
    """
    extent = ((stats.bbox_hi - stats.bbox_lo + 1) * np.asarray(spacing, float)).max(axis=1)
    chain = np.zeros(stats.n, bool)
    for i in np.flatnonzero(extent >= min_extent_mm):
        chain[i] = np.median(values[stats.voxels_of(i)]) < level_hu
    return chain[comp] & (values < level_hu)
