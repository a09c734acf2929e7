"""Candidate dense dots on a radiograph: multiscale centre-surround filter, local CNR, shape.

Each probed deposit radius ``r`` gives a difference of Gaussians (centre sigma ``r / sqrt 2``,
surround ``dog_ratio`` times wider), which suppresses the smooth background (soft tissue
thickness, lung, heart) and keeps bright spots about ``2 r`` across. Its response is divided by
the robust spread of the same response in the surrounding block (``noise_block_mm``): the
local contrast-to-noise ratio, which counts anatomical texture (lung vessels, trabeculae) as
noise, so a dot must stand out against what surrounds it. Peaks of the best scale's CNR above
``min_cnr`` are candidates; each is then measured (contrast, size, elongation, Hessian
eigenvalue ratio) for the look-alike rules in :mod:`._lookalikes`.

Three channels search three depths below the body outline: the image itself deep in the body;
a white top-hat (the image minus its grey opening by a disc wider than any deposit) within
``tophat_depth_mm``, where the outline's edge and the fat / muscle step beside it would
otherwise answer the filter more strongly than a dot beside them; and the same top-hat, with
the response's own block spread as a noise floor, within ``skin_band_mm`` (the skin line).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from skimage.morphology import disk

from napari_calcinosis.types import XrayParams

from ._filters import grey_dilation, grey_erosion, maximum_filter
from ._measure import Candidate, SmoothedPatches, hessian_ratio, hessian_ratios, measure
from ._prep import WorkImage
from ._scales import (
    FilterBank,
    ScaleSpace,
    filter_bank,
    gaussian_levels,
    refine_rows_cols,
    scale_space,
)
from ._texture import texture_cnrs

__all__ = ["Candidate", "DetectorFilters", "detector_filters", "find_candidates",
           "gaussian_levels", "hessian_ratio", "measure", "space_peaks", "white_tophat"]


@dataclass
class DetectorFilters:
    """The filtered images the detection channels search: the working image's and its
    white top-hat's :class:`FilterBank`. They need neither the anatomy nor the search
    region, so they can be computed while the anatomy is found."""

    image: FilterBank
    tophat_image: np.ndarray | None = None  # None when no channel searches the top-hat
    tophat: FilterBank | None = None


def detector_filters(work: WorkImage, params: XrayParams) -> DetectorFilters:
    """Filter banks of the working image and (when the skin band is searched) its top-hat."""
    filters = DetectorFilters(filter_bank(work.image, work.pixel_mm, params))
    if params.skin_band_mm > 0:
        filters.tophat_image = white_tophat(work.image, params.tophat_radius_mm / work.pixel_mm)
        filters.tophat = filter_bank(filters.tophat_image, work.pixel_mm, params)
    return filters


def find_candidates(work: WorkImage, search: np.ndarray, params: XrayParams, *,
                    outline_depth_mm: np.ndarray | None = None,
                    spine: np.ndarray | None = None,
                    filters: DetectorFilters | None = None
                    ) -> tuple[list[Candidate], np.ndarray]:
    """Detect and measure bright dots inside ``search`` (a working-grid mask).

    Parameters
    ----------
    work : WorkImage
        The prepared radiograph.
    search : numpy.ndarray
        Where candidates may lie (body, away from the image border and dead strips).
    params : XrayParams
        ``radii_mm``, ``dog_ratio``, ``noise_block_mm``, ``min_cnr``, ``min_separation_mm``.
    outline_depth_mm : numpy.ndarray, optional
        Depth below the body outline (mm). It keeps the outline's edge out of the noise
        statistics, and within ``tophat_depth_mm`` of the outline the search runs on a white
        top-hat of the image instead (a dot on the skin line is a bump on an edge there).
    spine : numpy.ndarray, optional
        The spine band: peaks there are returned unmeasured as ``over_spine``.
    filters : DetectorFilters, optional
        :func:`detector_filters` of ``work``, if already computed.

    Returns
    -------
    candidates : list of Candidate
        Every peak above ``min_cnr``, measured; none judged yet.
    cnr : numpy.ndarray
        The best-scale CNR map (for rules that look for a partner, such as nipple pairs).
    """
    if not search.any():
        return [], np.zeros(work.image.shape, dtype=np.float32)
    filters = filters or detector_filters(work, params)
    image = (work.image, filters.image)
    channels = [(image, search, outline_depth_mm, False, "image")]
    if outline_depth_mm is not None and filters.tophat is not None:
        tophat = (filters.tophat_image, filters.tophat)
        band = search & (outline_depth_mm <= params.skin_band_mm)
        near = search & ~band & (outline_depth_mm <= params.tophat_depth_mm)
        channels = [(image, search & ~band & ~near, outline_depth_mm, False, "image"),
                    (tophat, near, outline_depth_mm, False, "near_outline"),
                    (tophat, band, None, True, "skin_band")]
    out: list[Candidate] = []
    best = np.zeros(work.image.shape, dtype=np.float32)
    for (base, bank), region, depth, floor, name in channels:
        if region.any():
            found = _channel(work, base, bank, region, params, depth, floor, skip=spine,
                             best=best)
            for cand in found:
                cand.channel = name
            out.extend(found)
    return out, best


def _channel(work: WorkImage, base: np.ndarray, bank: FilterBank, region: np.ndarray,
             params: XrayParams, outline_depth_mm: np.ndarray | None, spread_floor: bool, *,
             skip: np.ndarray | None = None, best: np.ndarray) -> list[Candidate]:
    """Candidates of one detection channel (an image, its filter bank and the region it
    searches); its best-scale CNR is taken into ``best`` (the maximum over channels).

    Peaks inside ``skip`` (the spine band) are returned with ``reason = "over_spine"``
    unmeasured: no measurement changes that verdict.
    """
    space = scale_space(work, bank, region, params, outline_depth_mm,
                        spread_floor=spread_floor)
    out = []
    peaks = space_peaks(space, params.min_cnr, work.px(params.min_separation_mm),
                        params.ridge_ratio_max)
    smoothed = SmoothedPatches(base, 0.5)  # measured spots are few: filtered patch by patch
    at = {grid.step: (grid, None if outline_depth_mm is None else outline_depth_mm[
        tuple(slice(None, n * grid.step, grid.step) for n in grid.cnr.shape[1:])])
        for grid in space.grids}
    hessians = space_hessians(space, peaks)
    ratios = [hessian_ratio(*hess) for hess in hessians]
    unjudged = [i for i, ((row, col, _), ratio) in enumerate(zip(peaks, ratios))
                if ratio >= params.ridge_ratio_max and (skip is None or not skip[row, col])]
    textures = _textures(work, space, at, [peaks[i] for i in unjudged], params)
    texture_of = dict(zip(unjudged, textures.tolist()))
    for n, ((row, col, k), hess, ratio) in enumerate(zip(peaks, hessians, ratios)):
        grid, i = space.locate(k)
        cnr = float(grid.cnr[i, min(row // grid.step, grid.cnr.shape[1] - 1),
                             min(col // grid.step, grid.cnr.shape[2] - 1)])
        if n not in texture_of:
            # a ridge is not worth measuring; over the spine no measurement changes the verdict
            out.append(Candidate(float(row), float(col), cnr, params.radii_mm[k], 0.0,
                                 float(work.image[row, col]), ratio, 0.0, 0.0, 0.0, 0,
                                 reason="ridge" if ratio < params.ridge_ratio_max
                                 else "over_spine"))
            continue
        texture = texture_of[n]  # first: where it alone rejects the spot, no measuring
        if texture < _least_texture(params):
            out.append(Candidate(float(row), float(col), cnr, params.radii_mm[k], 0.0,
                                 float(work.image[row, col]), ratio, 0.0, 0.0, 0.0, 0,
                                 texture_cnr=texture, reason="texture"))
            continue
        cand = measure(work, smoothed, row, col, cnr, params.radii_mm[k], hess)
        cand.texture_cnr = texture
        out.append(cand)
    space.best(best.shape, out=best)
    return out


def _textures(work: WorkImage, space: ScaleSpace, at: dict, peaks: list[tuple[int, int, int]],
              params: XrayParams) -> np.ndarray:
    """Best texture CNR over the probed scales of each peak (:func:`texture_cnrs`)."""
    rows = np.array([p[0] for p in peaks], dtype=np.intp)
    cols = np.array([p[1] for p in peaks], dtype=np.intp)
    best = np.full(rows.shape, -np.inf)
    for g in space.grids:
        for j in g.scales:
            np.maximum(best, texture_cnrs(
                work, at[g.step][0].response[g.scales.index(j)], rows, cols,
                params.radii_mm[j], 2 * params.dog_ratio * space.sigmas[j] * work.pixel_mm,
                params, at[g.step][1], step=g.step), out=best)
    return best


def _least_texture(params: XrayParams) -> float:
    """The lowest texture CNR any look-alike rule accepts (:mod:`._lookalikes`)."""
    return min(params.min_texture_cnr, params.min_texture_cnr_en_face,
               params.min_texture_cnr_soft, params.min_texture_cnr_over_bone,
               params.min_texture_cnr_near_outline)


def white_tophat(image: np.ndarray, radius_px: float) -> np.ndarray:
    """The image minus its grey opening by a disc wider than any deposit.

    The body outline's edge and anything wider than the disc are removed; a dot narrower
    than the disc stays whole even where it sits on the skin line, which a linear filter
    cannot tell from the outline's own edge. The opening is ``skimage``'s with the disc's
    footprint sequence (edges mirrored), each small footprint applied by OpenCV.
    """
    footprint = disk(max(1, int(round(radius_px))), decomposition="sequence")
    opened = image
    for small, repeat in footprint:  # erode ...
        for _ in range(int(repeat)):
            opened = grey_erosion(opened, small)
    for small, repeat in footprint:  # ... then dilate by the mirrored footprint
        for _ in range(int(repeat)):
            opened = grey_dilation(opened, small[::-1, ::-1])
    return image - opened


def space_peaks(space: ScaleSpace, threshold: float, separation_px: float,
                ridge_ratio_max: float) -> list[tuple[int, int, int]]:
    """Local maxima of every scale's CNR map, one per ``separation_px``, as working-grid
    ``(row, col, k)``: dot-shaped peaks first, then strongest first.

    Peaks are sought per scale: a dot next to the body outline is a maximum at its own scale
    even where a wider scale's response to the outline is stronger. Peaks whose Hessian is a
    ridge's (eigenvalue ratio below ``ridge_ratio_max``) rank after every dot-shaped one, so a
    wide scale's ridge-like response to an edge beside a dot does not hide the dot's own
    peak. Peaks of a wide (half) grid are sought there with the separation halved and placed on
    the working grid at the brightest pixel of their block of ``space.refine``.
    """
    separation = max(1, int(round(separation_px)))
    parts = []
    for grid in space.grids:
        ks, rows, cols = _local_maxima(grid.cnr, threshold,
                                       max(1, int(round(separation_px / grid.step))))
        dots = hessian_ratios(*_hessian_arrays(grid.smooth, ks, rows, cols)) \
            >= ridge_ratio_max
        values = grid.cnr[ks, rows, cols].astype(float)
        if grid.step > 1:
            rows, cols = refine_rows_cols(space.refine, rows, cols, grid.step)
        parts.append((dots, values, rows, cols, np.asarray(grid.scales)[ks]))
    dots, values, rows, cols, ks = (np.concatenate(p) for p in zip(*parts))
    order = np.lexsort((ks, cols, rows, values, dots))[::-1]  # as sorting the tuples, reversed
    full = [g.cnr.shape[1:] for g in space.grids if g.step == 1]
    shape = full[0] if full else space.refine.shape
    return _take_separated(rows[order], cols[order], ks[order], shape, separation)


def space_hessians(space: ScaleSpace, peaks: list[tuple[int, int, int]]
                   ) -> list[tuple[float, float, float]]:
    """:func:`finite_hessians` of working-grid ``(row, col, k)`` peaks, each on its grid."""
    out: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * len(peaks)
    for grid in space.grids:
        index = [i for i, (_, _, k) in enumerate(peaks) if k in grid.scales]
        local = [(peaks[i][0] // grid.step, peaks[i][1] // grid.step,
                  grid.scales.index(peaks[i][2])) for i in index]
        for i, hess in zip(index, finite_hessians(grid.smooth, local)):
            out[i] = hess
    return out


def _take_separated(rows: np.ndarray, cols: np.ndarray, ks: np.ndarray,
                    shape: tuple[int, ...], separation: int) -> list[tuple[int, int, int]]:
    """Peaks in the given order, each kept unless an earlier kept one lies within
    ``separation`` (closer than ``separation - 1`` pixels or exactly at it: the disc of that
    radius).

    The greedy pass is decided in rounds over the pairs of peaks that close (a k-d tree
    finds them): a peak with an earlier kept neighbour is dropped; one whose earlier
    neighbours are all dropped is kept. Each round settles at least the first open peak,
    and the result is the one-by-one greedy pass's.
    """
    del shape  # every peak lies inside the image, so no disc pixel is cut off there
    count = rows.size
    if count == 0:
        return []
    radius = max(separation - 1, 0)
    pairs = cKDTree(np.column_stack([rows, cols])).query_pairs(radius, output_type="ndarray")
    earlier, later = pairs.min(axis=1), pairs.max(axis=1)
    state = np.zeros(count, dtype=np.int8)  # 0 open, 1 kept, 2 dropped
    while True:
        state[later[(state[earlier] == 1) & (state[later] == 0)]] = 2
        blocked = np.zeros(count, dtype=bool)
        blocked[later[state[earlier] == 0]] = True
        settle = (state == 0) & ~blocked
        if not settle.any():
            break
        state[settle] = 1
    kept = np.flatnonzero(state == 1)
    return list(zip(rows[kept].tolist(), cols[kept].tolist(), ks[kept].tolist()))


def _local_maxima(stack: np.ndarray, threshold: float, half: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(k, row, col)`` of pixels >= ``threshold`` that equal the maximum of their own
    scale's ``(2 half + 1)``-square neighbourhood (edges repeated, as ``mode="nearest"``)."""
    found = [np.divmod(np.flatnonzero((layer >= threshold)
                                      & (layer == maximum_filter(layer, 2 * half + 1))),
                       layer.shape[1]) for layer in stack]
    ks = np.concatenate([np.full(rows.size, k, dtype=np.intp)
                         for k, (rows, _) in enumerate(found)])
    rows = np.concatenate([rows for rows, _ in found]).astype(np.intp, copy=False)
    cols = np.concatenate([cols for _, cols in found]).astype(np.intp, copy=False)
    return ks, rows, cols


def _hessian_arrays(stack: np.ndarray, ks: np.ndarray, rows: np.ndarray, cols: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`finite_hessians` as three arrays (``h_rr``, ``h_rc``, ``h_cc``)."""
    r = np.clip(rows, 1, stack.shape[1] - 2)
    c = np.clip(cols, 1, stack.shape[2] - 2)
    s = {(i, j): stack[ks, r + i - 1, c + j - 1].astype(float)
         for i in range(3) for j in range(3)}
    h_rr = s[2, 1] - 2 * s[1, 1] + s[0, 1]
    h_cc = s[1, 2] - 2 * s[1, 1] + s[1, 0]
    h_rc = 0.25 * (s[2, 2] - s[2, 0] - s[0, 2] + s[0, 0])
    return h_rr, h_rc, h_cc


def finite_hessians(stack: np.ndarray, peaks: list[tuple[int, int, int]]
                    ) -> list[tuple[float, float, float]]:
    """Hessian ``(h_rr, h_rc, h_cc)`` of ``stack[k]`` at each ``(row, col, k)`` of ``peaks``.

    ``stack`` holds already Gaussian-smoothed images; central differences, clipped inside.
    """
    if not peaks:
        return []
    row, col, k = np.array(peaks).T
    return list(zip(*_hessian_arrays(stack, k, row, col)))
