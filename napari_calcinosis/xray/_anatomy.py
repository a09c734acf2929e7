"""Anatomy of a chest radiograph from the image alone: body outline, lung fields, bone, midline.

Everything here runs on a coarse copy (about 1.6 mm per pixel) of the working image, because
the structures are large, and is then brought back to the working grid by nearest-neighbour
upsampling. The masks are approximate by design: they decide whether a dot is tangential at the
body outline, over a lung, over bone, or over the mediastinum, and where the midline is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.morphology import convex_hull_image, disk

from napari_calcinosis.types import XrayParams

from ._filters import binary_dilation, binary_erosion, bright_ridges
from ._noise import block_counts
from ._part import part_of
from ._prep import WorkImage


@dataclass
class FilmAnatomy:
    """Masks on the working grid and the fitted midline.

    Attributes
    ----------
    body, background, lungs, bone, spine, rib_band : numpy.ndarray
        Boolean masks on the working grid. ``lungs`` holds both lung fields; ``rib_band`` is
        the band just outside them where the ribs' lateral arcs project.
    lung_labels : numpy.ndarray
        ``int8``: 0 outside the lungs, 1 the lung at smaller column, 2 the one at larger column.
    outline_depth_mm : numpy.ndarray
        Distance (mm) of each body pixel from the body outline (the border with direct
        exposure); ``inf`` where the outline is not in the image.
    midline_col : numpy.ndarray or None
        Working-grid column of the mid-sagittal line for every working row, or ``None`` when it
        could not be found (lateral views, non-chest images).
    thorax_rows : tuple of int or None
        First and last working row of the lung fields.
    is_chest : bool
        Whether the image looks like (and is labelled as) a chest radiograph.
    """

    body: np.ndarray
    background: np.ndarray
    lungs: np.ndarray
    lung_labels: np.ndarray
    bone: np.ndarray
    spine: np.ndarray
    outline_depth_mm: np.ndarray
    midline_col: np.ndarray | None
    thorax_rows: tuple[int, int] | None
    is_chest: bool
    rib_band: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)
    #: Body parts apart from the trunk (the largest part), with a rim of a few mm outside
    #: them: on a chest film, arms beside the trunk or raised beside the head.
    apart: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.rib_band is None:
            self.rib_band = np.zeros_like(self.body)
        if self.apart is None:
            self.apart = np.zeros_like(self.body)


def segment_anatomy(work: WorkImage, *, params: XrayParams, view: str | None,
                    body_part: str = "") -> FilmAnatomy:
    """Body, lung, bone and spine masks and the midline of a radiograph.

    Parameters
    ----------
    work : WorkImage
        The prepared radiograph.
    params : XrayParams
        Thresholds (``background_level_fraction``, ``lung_*``, ``rib_*``, ``spine_*``).
    view : str or None
        ``"frontal"``, ``"lateral"`` or ``None``; lungs and midline are sought on frontal views
        (and on unlabelled ones).
    body_part : str
        The file's BodyPartExamined; one that names another part (:func:`._part.part_of`)
        skips the lung and midline search.

    Returns
    -------
    FilmAnatomy
        Masks on the working grid.
    """
    step = max(1, int(round(params.anatomy_spacing_mm / work.pixel_mm)))
    coarse_mm = step * work.pixel_mm
    coarse = _block_mean(work.image, step)
    dead = _block_share(work.dead, step) > 0.5
    smooth = ndi.gaussian_filter(coarse, max(0.6, 1.2 / coarse_mm))
    warnings: list[str] = []
    background = find_background(smooth, dead, params)
    body = find_body(background, dead, coarse_mm)
    if background.any():
        depth = ndi.distance_transform_edt(~background) * coarse_mm
    else:
        depth = np.full(coarse.shape, np.inf)
        warnings.append("no direct-exposure background: the body outline is outside the image, "
                        "so no dot can be called tangential (skin/subcutaneous)")
    labelled_other = part_of(body_part) == "other"
    lung_labels = np.zeros(coarse.shape, dtype=np.int8)
    if view != "lateral" and not labelled_other:
        lung_labels = find_lungs(coarse, body, depth, coarse_mm, params)
    is_chest = bool((lung_labels == 1).any() and (lung_labels == 2).any())
    if labelled_other:
        warnings.append(f"BodyPartExamined is {body_part!r}, not the chest: no lung fields or "
                        f"midline; regions are not assigned")
    elif view != "lateral" and not is_chest:
        warnings.append("two lung fields were not found: the midline is the body's centre line "
                        "and regions are approximate")
    midline = fit_midline(lung_labels, body) if view != "lateral" and not labelled_other else None
    bone = find_ridges(coarse, body, coarse_mm, params)
    spine = np.zeros_like(body)
    if midline is not None and is_chest:
        spine = spine_band(midline, lung_labels, body, coarse_mm, params)
    band = rib_band(lung_labels, body, coarse_mm, params)
    apart = parts_apart(body, coarse_mm)
    shape = work.image.shape
    up = _Upsampler(step, shape)
    thorax = _row_extent(lung_labels > 0)
    return FilmAnatomy(
        body=up(body), background=up(background), lungs=up(lung_labels > 0),
        lung_labels=up(lung_labels), bone=up(bone | spine), spine=up(spine),
        outline_depth_mm=up(depth),
        midline_col=None if midline is None else up.line(midline),
        thorax_rows=None if thorax is None else (thorax[0] * step, thorax[1] * step + step - 1),
        is_chest=is_chest, rib_band=up(band), warnings=warnings, apart=up(apart))


def find_background(smooth: np.ndarray, dead: np.ndarray, params: XrayParams) -> np.ndarray:
    """Direct-exposure background: dark regions connected to the image edge or a dead strip.

    A first Otsu split finds what is dark and touches the edge (it may also hold thin soft
    tissue and even lung); the background level is its darkest few percent, which must form a
    plateau (direct exposure), and the final threshold lies ``background_level_fraction`` of
    the way from that level to the tissue level.
    """
    field = ~dead
    none = np.zeros(smooth.shape, dtype=bool)
    if field.sum() < 100:
        return none
    first = _edge_components(smooth < threshold_otsu(smooth[field]), dead, params)
    if not first.any() or first.sum() > 0.9 * field.sum():
        return none
    level_bg = float(np.percentile(smooth[first], 2))
    level_tissue = float(np.median(smooth[field & ~first]))
    gap = level_tissue - level_bg
    plateau = first & (smooth < level_bg + 0.1 * gap)
    if gap <= 0 or plateau.sum() < params.background_min_fraction * smooth.size:
        return none
    if not _flatter_than_body(smooth, plateau, field & ~first, params):
        return none
    background = _edge_components((smooth < level_bg + params.background_level_fraction
                                   * gap) & field, dead, params)
    return background | _other_corners(smooth, first, background, level_bg, gap, params)


def _other_corners(smooth: np.ndarray, first: np.ndarray, background: np.ndarray,
                   level_bg: float, gap: float, params: XrayParams) -> np.ndarray:
    """Direct exposure in other edge regions, each against its own darkest level.

    The heel effect and processing leave one corner of direct exposure brighter than
    another; a dark edge region whose own floor is near the background level is background
    too, thresholded at its own floor.
    """
    labels, count = ndi.label(first & ~background)
    extra = np.zeros(smooth.shape, dtype=bool)
    for k in range(1, count + 1):
        region = labels == k
        if region.sum() < params.background_min_fraction * smooth.size:
            continue
        floor = float(np.percentile(smooth[region], 2))
        if floor < level_bg + 0.15 * gap:
            extra |= region & (smooth < floor + params.background_level_fraction * gap)
    return _keep_edge_touching(extra, params) if extra.any() else extra


def _keep_edge_touching(mask: np.ndarray, params: XrayParams) -> np.ndarray:
    return _edge_components(mask, np.zeros(mask.shape, dtype=bool), params)


def _flatter_than_body(smooth: np.ndarray, plateau: np.ndarray, body: np.ndarray,
                       params: XrayParams) -> bool:
    """Direct exposure is flat; a dark region with anatomy in it (a lung cut by the image
    edge, thin soft tissue) has gradients like the body's."""
    inner = binary_erosion(plateau, 3)
    if not inner.any() or not body.any():
        return False
    gradient = ndi.gaussian_gradient_magnitude(smooth, 1.0)
    ratio = float(np.median(gradient[inner])) / max(float(np.median(gradient[body])), 1e-12)
    return ratio < params.background_max_gradient_ratio


def _edge_components(mask: np.ndarray, dead: np.ndarray, params: XrayParams) -> np.ndarray:
    labels, count = ndi.label(mask & ~dead)
    if count == 0:
        return np.zeros(mask.shape, dtype=bool)
    # "at the edge" within a few pixels: images often carry a thin bright frame at the border
    touching = np.zeros(mask.shape, dtype=bool)
    touching[:4, :] = touching[-4:, :] = True
    touching[:, :4] = touching[:, -4:] = True
    touching |= binary_dilation(dead, 2)
    keep = np.zeros(count + 1, dtype=bool)
    keep[np.unique(labels[touching])] = True
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep[sizes < params.background_min_fraction * mask.size] = False
    keep[0] = False
    return keep[labels]


_LIMB_SHARE = 0.05


def find_body(background: np.ndarray, dead: np.ndarray, coarse_mm: float) -> np.ndarray:
    """The body: what is neither background nor dead, holes filled, small bits dropped.

    Components thinner than 20 mm are not a body part, and thin (< 40 mm) strips lying along
    a dead strip are collimator penumbra. A part apart from the trunk is kept when it is at
    least a fifth of the largest, or, running out of the field (an arm beside the trunk or
    raised beside the head), at least ``_LIMB_SHARE`` of it.
    """
    body = ndi.binary_opening(~background & ~dead, structure=disk(2))
    body = ndi.binary_fill_holes(body)
    labels, count = ndi.label(body)
    if count == 0:
        return body
    index = range(1, count + 1)
    sizes = np.bincount(labels.ravel())[1:]
    thick_mm = 2 * np.asarray(ndi.maximum(ndi.distance_transform_edt(body), labels, index))
    thick_mm = thick_mm * coarse_mm
    rim = body & ~binary_erosion(body, 2)
    near_dead = binary_dilation(dead, 3)
    along_dead = np.asarray(ndi.mean(near_dead[rim], labels[rim], index)) if rim.any() else 0
    penumbra = (thick_mm < 40.0) & (np.nan_to_num(along_dead) > 0.3)
    frame = np.zeros(body.shape, dtype=bool)
    frame[:2, :] = frame[-2:, :] = frame[:, :2] = frame[:, -2:] = True
    frame |= near_dead
    leaves = np.zeros(count + 1, dtype=bool)
    leaves[np.unique(labels[frame & body])] = True
    large = (sizes >= 0.2 * sizes.max()) | ((sizes >= _LIMB_SHARE * sizes.max()) & leaves[1:])
    keep = large & (thick_mm >= 20.0) & ~penumbra
    return np.concatenate([[False], keep])[labels]


def parts_apart(body: np.ndarray, coarse_mm: float) -> np.ndarray:
    """Body parts other than the largest (the trunk), grown by 3 mm but not into it."""
    labels, count = ndi.label(body)
    if count < 2:
        return np.zeros(body.shape, dtype=bool)
    trunk = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    grown = binary_dilation(body & ~trunk, max(1, int(round(3.0 / coarse_mm))))
    return grown & ~trunk


def find_lungs(coarse: np.ndarray, body: np.ndarray, depth: np.ndarray, coarse_mm: float,
               params: XrayParams) -> np.ndarray:
    """Two large dark regions inside the body, one on each side: the lung fields."""
    if body.sum() < 1000:
        return np.zeros(body.shape, dtype=np.int8)
    smooth = ndi.gaussian_filter(coarse, params.lung_smooth_mm / coarse_mm)
    inner = body & (depth >= params.lung_min_depth_mm)
    # the lungs keep clear of the image edge (a dark corner there is background or shoulder)
    inner &= binary_erosion(np.ones_like(body), max(1, int(10 / coarse_mm)))  # edges erode
    dark = inner & (smooth < threshold_otsu(smooth[body]))
    dark = ndi.binary_opening(dark, structure=disk(max(1, int(4 / coarse_mm))))
    labels, count = ndi.label(dark)
    out = np.zeros(body.shape, dtype=np.int8)
    if count == 0:
        return out
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    centres = ndi.center_of_mass(dark, labels, range(1, count + 1))
    body_cols = np.nonzero(body.any(axis=0))[0]
    centre_col = 0.5 * (body_cols[0] + body_cols[-1])
    min_size = params.lung_min_fraction * body.sum()
    for value, side in ((1, -1), (2, 1)):
        options = [k for k in range(1, count + 1)
                   if sizes[k] >= min_size and side * (centres[k - 1][1] - centre_col) > 0]
        if options:
            best = max(options, key=lambda k: sizes[k])
            lung = labels == best
            hull = convex_hull_image(lung)
            # the hull takes back nodules and masses at the lung edge that the threshold
            # lost, unless it would swallow far more than a lung (a wrongly joined region)
            if hull.sum() > 1.6 * lung.sum():
                hull = ndi.binary_fill_holes(ndi.binary_closing(
                    lung, structure=disk(max(1, int(8 / coarse_mm)))))
            out[hull & body & (out == 0)] = value
    if not _paired(out) or min(_thickness_mm(out == v, coarse_mm) for v in (1, 2)) < 40.0 \
            or min(_height_mm(out == v, coarse_mm) for v in (1, 2)) < params.lung_min_height_mm \
            or np.mean([_aspect(out == v) for v in (1, 2)]) < params.lung_min_aspect:
        return np.zeros(body.shape, dtype=np.int8)
    return out


def _aspect(mask: np.ndarray) -> float:
    """Height over width of a mask's bounding box."""
    rows, cols = np.nonzero(mask)
    return (np.ptp(rows) + 1) / (np.ptp(cols) + 1)


def _height_mm(mask: np.ndarray, pixel_mm: float) -> float:
    """Top-to-bottom extent of a mask (0 for an empty mask)."""
    extent = _row_extent(mask)
    return 0.0 if extent is None else (extent[1] - extent[0] + 1) * pixel_mm


def _thickness_mm(mask: np.ndarray, pixel_mm: float) -> float:
    """Diameter of the largest disc inside a mask (0 for an empty mask)."""
    if not mask.any():
        return 0.0
    return 2.0 * float(ndi.distance_transform_edt(mask).max()) * pixel_mm


def _paired(labels: np.ndarray) -> bool:
    """Two lung fields overlap in rows by at least half of the shorter one's height."""
    first, second = _row_extent(labels == 1), _row_extent(labels == 2)
    if first is None or second is None:
        return False
    overlap = min(first[1], second[1]) - max(first[0], second[0])
    shorter = min(first[1] - first[0], second[1] - second[0])
    return overlap >= 0.5 * shorter


def fit_midline(lung_labels: np.ndarray, body: np.ndarray) -> np.ndarray | None:
    """Column of the mid-sagittal line per row: a robust straight-line fit.

    With both lungs, the midpoint of the rib cage (outer lung edges) per row, which the heart
    does not shift; otherwise the midpoint of the body's extent per row.
    """
    rows, mids = [], []
    if (lung_labels == 1).any() and (lung_labels == 2).any():
        for r in range(lung_labels.shape[0]):
            left = np.nonzero(lung_labels[r] == 1)[0]
            right = np.nonzero(lung_labels[r] == 2)[0]
            if left.size and right.size:
                rows.append(r)
                mids.append(0.5 * (left[0] + right[-1]))
    else:
        for r in range(body.shape[0]):
            cols = np.nonzero(body[r])[0]
            if cols.size > 0.2 * body.shape[1]:
                rows.append(r)
                mids.append(0.5 * (cols[0] + cols[-1]))
    if len(rows) < 10:
        return None
    slope, intercept = _robust_line(np.asarray(rows, float), np.asarray(mids, float))
    return intercept + slope * np.arange(body.shape[0])


def _robust_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least squares with two rounds of rejecting points beyond 2.5 robust spreads."""
    keep = np.ones(x.size, dtype=bool)
    slope, intercept = 0.0, float(np.median(y))
    for _ in range(3):
        if keep.sum() < 5:
            break
        slope, intercept = np.polyfit(x[keep], y[keep], 1)
        resid = y - (intercept + slope * x)
        spread = 1.4826 * np.median(np.abs(resid[keep])) + 1e-6
        keep = np.abs(resid) <= 2.5 * spread
    return float(slope), float(intercept)


def find_ridges(coarse: np.ndarray, body: np.ndarray, coarse_mm: float,
                params: XrayParams) -> np.ndarray:
    """Elongated bright structures (ribs, clavicles, scapular borders, long-bone cortex)."""
    if not body.any():
        return np.zeros(body.shape, dtype=bool)
    sigmas = [s / coarse_mm for s in params.rib_sigmas_mm]
    response = bright_ridges(coarse, sigmas)  # skimage's sato filter for bright ridges
    values = response[body]
    centre = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - centre))) + 1e-9
    ridges = body & (response > centre + params.rib_ridge_mads * spread)
    labels, count = ndi.label(ridges)
    if count == 0:
        return ridges
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= (20.0 / coarse_mm) ** 2 / 4
    keep[0] = False
    return keep[labels]


def spine_band(midline: np.ndarray, lung_labels: np.ndarray, body: np.ndarray,
               coarse_mm: float, params: XrayParams) -> np.ndarray:
    """The vertebral column: a band about the midline from the lung apices downwards."""
    extent = _row_extent(lung_labels > 0)
    band = np.zeros(body.shape, dtype=bool)
    if extent is None:
        return band
    cols = np.arange(body.shape[1])[None, :]
    half = params.spine_half_width_mm / coarse_mm
    band = np.abs(cols - midline[:, None]) <= half
    band[: extent[0]] = False
    return band & body


def rib_band(lung_labels: np.ndarray, body: np.ndarray, coarse_mm: float,
             params: XrayParams) -> np.ndarray:
    """The band just outside the lung fields (within their rows) where the ribs' lateral
    arcs project: their bright ends look like dots there."""
    lungs = lung_labels > 0
    if not lungs.any():
        return np.zeros_like(lungs)
    grown = binary_dilation(lungs, max(1, int(round(params.rib_band_mm / coarse_mm))))
    band = grown & ~lungs & body
    extent = _row_extent(lungs)
    band[: extent[0]] = False
    band[extent[1] + 1:] = False
    return band


def _row_extent(mask: np.ndarray) -> tuple[int, int] | None:
    rows = np.nonzero(mask.any(axis=1))[0]
    return None if rows.size == 0 else (int(rows[0]), int(rows[-1]))


def _block_mean(image: np.ndarray, step: int) -> np.ndarray:
    if step == 1:
        return image.astype(np.float32)
    rows, cols = -(-image.shape[0] // step) * step, -(-image.shape[1] // step) * step
    padded = np.pad(image, ((0, rows - image.shape[0]), (0, cols - image.shape[1])), mode="edge")
    return padded.reshape(rows // step, step, cols // step, step).mean(axis=(1, 3))


def _block_share(mask: np.ndarray, step: int) -> np.ndarray:
    """Share of True pixels in each block (the mask's edges repeated, as
    :func:`_block_mean`): the block mean of the mask, counted exactly."""
    rows, cols = -(-mask.shape[0] // step) * step, -(-mask.shape[1] // step) * step
    padded = np.pad(mask, ((0, rows - mask.shape[0]), (0, cols - mask.shape[1])), mode="edge")
    return block_counts(padded, step) / (step * step)


class _Upsampler:
    """Nearest-neighbour return from the coarse grid to the working grid."""

    def __init__(self, step: int, shape: tuple[int, int]) -> None:
        self.step, self.shape = step, shape

    def __call__(self, coarse: np.ndarray) -> np.ndarray:
        out = np.empty(self.shape, dtype=coarse.dtype)
        wide = np.repeat(coarse, self.step, axis=1)[:, : self.shape[1]]
        for i in range(self.step):  # each coarse row fills every step-th working row
            part = out[i::self.step]
            part[:] = wide[: part.shape[0]]
        return out

    def line(self, coarse_cols: np.ndarray) -> np.ndarray:
        rows = (np.arange(self.shape[0]) - (self.step - 1) / 2.0) / self.step
        coarse_rows = np.arange(coarse_cols.size)
        slope = np.polyfit(coarse_rows, coarse_cols, 1)
        return (np.polyval(slope, rows) * self.step + (self.step - 1) / 2.0).astype(np.float64)
