"""Digitally reconstructed radiographs (DRR) of a phantom, with ground truth per deposit.

``project_radiograph(ct, view='frontal' | 'lateral', params=ProjectionParams(...)) -> PhantomXray``

Geometry: a **parallel projection** (no magnification or divergence; ``magnification`` only
sets ``ImagerPixelSpacing = PixelSpacing * magnification`` as a detector would report it).
The frontal view is a PA chest (beam from posterior to anterior) displayed as usual: rows run
from head to feet, columns toward the patient's left, PatientOrientation ``('L', 'F')``. The
lateral view is a left lateral (LL: left side on the detector): columns run toward posterior
(anterior on the image's left), PatientOrientation ``('P', 'F')``.

Image formation: the phantom body is re-rendered noise-free on a coarse grid without the CT
table and without the small calcifications, converted to linear attenuation
``mu = mu_water * (1 + HU / 1000)``, and summed along the beam. That line-integral image is
interpolated to the detector pixels, the deposits and calcified look-alikes are added
analytically (exact chord lengths through their ellipsoids, 3x3 supersampled), the detector
blur is applied, then quantum-like noise (its standard deviation grows with attenuation), a
large-kernel dynamic-range compression like clinical chest processing, and a linear map to
``bits_stored`` bits (MONOCHROME2: more attenuation is brighter; MONOCHROME1 stores the
inverse).

Per deposit the truth gives the (row, column) of its centre, whether it is seen tangentially at
the outline of the trunk or an arm (the ray crosses no lung or bone and less than
``tangential_path_mm`` of body, and the centre lies within ``tangential_outline_mm`` of the
outline), and its contrast-to-noise ratio (CNR, peak contrast over the local noise).

The arms (:mod:`._limbs`) are projected exactly on the detector grid rather than taken from
the coarse rendering; the presentation blends into the direct exposure over the outline's own
partial-volume edge (:func:`._xray_image.body_weight`), so outlines are as smooth as the
detector blur makes them at any pixel size.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

from ._body import Z_OFFSET_MM, Tissue
from ._lesions import Lookalike
from ._limbs import limb_projection
from ._parts import without_limbs
from ._render import PhantomModel, render_clean
from ._shapes import VoxelGrid
from ._spec import PhantomCT
from ._xray_marks import add_marks
from ._xray_image import (
    add_objects,
    body_weight,
    correlated_noise,
    hu_to_mu,
    noise_sigma,
    present,
)

_HOST_HU = {"skin": 45.0, "subcutaneous": -100.0, "muscle": 50.0, "cartilage": 110.0,
            "vessel": 40.0, "bone": 200.0, "visceral": -850.0}
_VIEWS = {"frontal": ("PA", ("L", "F")), "lateral": ("LL", ("P", "F"))}
_VIEW_INDEX = {"frontal": 0, "lateral": 1}


@dataclass(frozen=True)
class ProjectionParams:
    """Parameters of a projected radiograph (all keyword, all with defaults).

    ``equalization`` (large-kernel dynamic-range compression), ``detail_boost`` with
    ``unsharp_mm`` (unsharp masking) and ``lut`` (``"linear"`` or a CR reader's
    ``"sigmoid"`` tone scale) make the processing; :data:`CR_PROCESSING` is a CR-like set.
    ``markers`` lead letters and ``clips`` surgical clips are put on the film
    (:mod:`._xray_marks`; listed in ``PhantomXray.lookalikes`` from id 1000).
    """

    pixel_spacing_mm: float = 0.5
    z_range_mm: tuple[float, float] = (255.0, 600.0)
    photometric: str = "MONOCHROME2"
    bits_stored: int = 12
    noise_level: float = 1.0
    detector_blur_mm: float = 0.35
    equalization: float = 0.8
    detail_boost: float = 1.5
    render_step_mm: float = 2.0
    magnification: float = 1.1
    tangential_path_mm: float = 100.0
    tangential_outline_mm: float = 20.0
    unsharp_mm: float = 3.0
    lut: str = "linear"
    markers: int = 0
    clips: int = 0
    seed: int | None = None


#: CR-style processing: strong equalization, unsharp masking over 8 mm, an S-shaped tone scale.
CR_PROCESSING = dict(equalization=0.9, detail_boost=1.0, unsharp_mm=8.0, lut="sigmoid")


@dataclass
class XrayTruth:
    """Where a CT truth lesion (same ``id``) appears on the radiograph."""

    id: int
    row: float
    col: float
    diameter_mm: float
    layer: str
    side: str
    region: str
    morphology: str
    tangential: bool
    over_lung: bool
    over_bone: bool
    body_path_mm: float
    contrast: float
    cnr: float
    #: On the noise-free presented image (stored units): the deposit's own peak contrast, and
    #: how much the image without deposits varies across the deposit's spot (5th to 95th
    #: percentile within its radius + 1 mm). A deposit smaller than the structure it sits on
    #: (an outline's corner, a bone edge) does not stand out against its surroundings.
    visible_contrast: float = float("nan")
    structure: float = float("nan")

    @property
    def stands_out(self) -> bool:
        """Whether the deposit's own contrast exceeds the structure of its spot."""
        return bool(self.visible_contrast >= self.structure)


@dataclass
class XrayLookalike:
    """A look-alike of the CT truth (same ``id``) on the radiograph."""

    id: int
    kind: str
    row: float
    col: float
    side: str


@dataclass
class PhantomXray:
    """A projected radiograph stored like a detector image, with its truth and geometry.

    ``image`` is ``uint16`` with ``bits_stored`` significant bits, in the stored sense of
    ``photometric``. ``window`` is ``(center, width)`` in stored values. ``geometry`` gives
    the parallel projection: ``origin_lps_mm`` (pixel (0, 0) on the plane through the body
    axis), ``row_direction_lps`` and ``column_direction_lps`` (unit steps of increasing row
    and column) and ``beam_direction_lps``.
    """

    image: np.ndarray
    view: str
    view_position: str
    patient_orientation: tuple[str, str]
    photometric: str
    pixel_spacing_mm: tuple[float, float]
    imager_pixel_spacing_mm: tuple[float, float]
    bits_stored: int
    window: tuple[float, float]
    truth: list[XrayTruth]
    lookalikes: list[XrayLookalike]
    geometry: dict = field(default_factory=dict)

    def lps_to_pixel(self, lps_mm: np.ndarray) -> np.ndarray:
        """Fractional ``(row, col)`` of patient points ``(..., 3)`` (parallel projection)."""
        g = self.geometry
        rel = np.asarray(lps_mm, float) - np.asarray(g["origin_lps_mm"])
        row = rel @ np.asarray(g["row_direction_lps"]) / self.pixel_spacing_mm[0]
        col = rel @ np.asarray(g["column_direction_lps"]) / self.pixel_spacing_mm[1]
        return np.stack([row, col], axis=-1)


def _detector_axes(ct: PhantomCT, view: str, params: ProjectionParams):
    """Pixel-centre coordinates: rows along -z (head at the top), columns along x or y."""
    p = params.pixel_spacing_mm
    s_lo = max(params.z_range_mm[0], ct.spec.z_range_mm[0])
    s_hi = min(params.z_range_mm[1], ct.spec.z_range_mm[1])
    z_rows = s_hi + Z_OFFSET_MM - p * np.arange(int((s_hi - s_lo) / p) + 1)
    lat_axis = 0 if view == "frontal" else 1
    lo = ct.origin_lps_mm[lat_axis]
    hi = lo + ct.spacing_zyx_mm[2 - lat_axis] * (ct.shape[2 - lat_axis] - 1)
    cols = _aligned(lo, hi, p, _body_centre(ct)[lat_axis])
    return z_rows, cols, lat_axis


def _body_centre(ct: PhantomCT) -> tuple[float, float]:
    return float(ct.model.body.xc), float(ct.model.body.yc)


def _aligned(lo: float, hi: float, step: float, centre: float) -> np.ndarray:
    """Positions ``centre + k step`` within [lo, hi]: the same body is sampled at the same
    places whatever the field of view (a wider field for the arms leaves the trunk as it
    was, where a grid starting at the field's edge would alias its edges differently)."""
    k0, k1 = int(np.ceil((lo - centre) / step - 1e-9)), int(np.floor((hi - centre) / step + 1e-9))
    return centre + step * np.arange(k0, k1 + 1)


def _projection_grid(ct: PhantomCT, z_rows: np.ndarray, params: ProjectionParams) -> VoxelGrid:
    step = params.render_step_mm
    z = np.arange(z_rows.min() - step, z_rows.max() + 2 * step, step)
    xc, yc = _body_centre(ct)
    x0, y0 = ct.origin_lps_mm[0], ct.origin_lps_mm[1]
    x = _aligned(x0 - step, x0 + ct.spacing_zyx_mm[2] * ct.shape[2], step, xc)
    y = _aligned(y0 - step, y0 + ct.spacing_zyx_mm[1] * ct.shape[1], step, yc)
    return VoxelGrid(z, y, x, step)


def _projection_volume(ct: PhantomCT, grid: VoxelGrid) -> tuple[np.ndarray, np.ndarray]:
    """Attenuation (1/mm) and labels of the body without the table and small calcifications."""
    model: PhantomModel = ct.model
    without_calcs = replace(model, deposits=[], parts=without_limbs(model.parts))
    hu, labels, _, _ = render_clean(grid, without_calcs, seed=ct.spec.seed,
                                    calcified_lookalikes=False)
    table = labels == Tissue.TABLE
    # the table's soft edge lies in voxels labelled air: they go with it (left in, they would
    # draw the table's partial volume as faint stripes across the direct exposure)
    near_table = ndimage.binary_dilation(table, iterations=2) & (labels == Tissue.AIR)
    hu[table | near_table] = -1000.0
    return hu_to_mu(hu), labels


def _line_integrals(mu: np.ndarray, labels: np.ndarray, grid: VoxelGrid, lat_axis: int):
    """Coarse attenuation line integrals (z, lateral) and tissue masks along the beam."""
    beam_axis = 1 if lat_axis == 0 else 2
    line = mu.sum(axis=beam_axis) * grid.pixel_mm
    body = (labels != Tissue.AIR) & (labels != Tissue.TABLE)
    bone = (labels == Tissue.BONE_CORTEX) | (labels == Tissue.BONE_MARROW)
    masks = {"body_mm": body.sum(axis=beam_axis) * grid.pixel_mm,
             "lung": (labels == Tissue.LUNG).any(axis=beam_axis),
             "bone": bone.any(axis=beam_axis)}
    return line, masks


def _resample(coarse: np.ndarray, grid: VoxelGrid, lat_axis: int, z_rows: np.ndarray,
              cols: np.ndarray, order: int = 3) -> np.ndarray:
    lat = grid.x_mm if lat_axis == 0 else grid.y_mm
    zi = (z_rows - grid.z_mm[0]) / (grid.z_mm[1] - grid.z_mm[0])
    ci = (cols - lat[0]) / (lat[1] - lat[0])
    zz, cc = np.meshgrid(zi, ci, indexing="ij")
    return ndimage.map_coordinates(coarse.astype(np.float64), [zz, cc], order=order,
                                   mode="nearest")


def _calc_objects(ct: PhantomCT) -> tuple[list, dict]:
    """Ellipsoids to add analytically: deposits and calcified look-alikes, keyed by truth."""
    model: PhantomModel = ct.model
    by_center = {tuple(float(v) for v in d.shape.center_mm): d for d in model.deposits}
    looks = {tuple(float(v) for v in lk.shape.center_mm): lk for lk in model.lookalikes
             if lk.shape is not None}
    objects, lookalike_of = [], {}
    for lesion in ct.truth:
        dep = by_center[lesion.center_lps_mm]
        objects.append((("lesion", lesion.id), dep.shape, _HOST_HU[dep.layer]))
    for look in ct.lookalikes:
        planned: Lookalike | None = looks.get(look.center_lps_mm)
        if planned is None:
            continue
        lookalike_of[look.id] = planned
        if planned.label is None:
            objects.append((("lookalike", look.id), planned.shape, _HOST_HU[planned.layer]))
    return objects, lookalike_of


def _sample(image: np.ndarray, row: float, col: float):
    r = int(np.clip(round(row), 0, image.shape[0] - 1))
    c = int(np.clip(round(col), 0, image.shape[1] - 1))
    return image[r, c]


def project_radiograph(ct: PhantomCT, *, view: str = "frontal",
                       params: ProjectionParams | None = None,
                       photometric: str | None = None) -> PhantomXray:
    """Project a phantom CT into a frontal (PA) or lateral (LL) radiograph.

    Parameters
    ----------
    ct : PhantomCT
        A phantom from :func:`~napari_calcinosis.phantom.make_ct_phantom`.
    view : {'frontal', 'lateral'}
        PA frontal or left lateral.
    params : ProjectionParams, optional
        Detector and processing parameters.
    photometric : {'MONOCHROME2', 'MONOCHROME1'}, optional
        Overrides ``params.photometric``.

    Returns
    -------
    PhantomXray
        The stored image, its spacing, orientation, window, geometry and truth.
    """
    return project_radiographs(ct, views=(view,), params=params, photometric=photometric)[0]


def project_radiographs(ct: PhantomCT, *, views: tuple[str, ...] = ("frontal", "lateral"),
                        params: ProjectionParams | None = None,
                        photometric: str | None = None) -> list[PhantomXray]:
    """Several views of one phantom, sharing one rendering of the body (faster).

    Parameters are those of :func:`project_radiograph`, with a tuple of ``views``.

    Returns
    -------
    list of PhantomXray
        One radiograph per view, in the order asked.
    """
    params = params or ProjectionParams()
    if photometric is not None:
        params = replace(params, photometric=photometric)
    for view in views:
        if view not in _VIEWS:
            raise ValueError(f"unknown radiograph view {view!r}; use 'frontal' or 'lateral'")
    if params.photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"unknown photometric interpretation {params.photometric!r}")
    if not views:
        return []
    z_rows = _detector_axes(ct, views[0], params)[0]
    grid = _projection_grid(ct, z_rows, params)
    mu, labels = _projection_volume(ct, grid)
    return [_project(ct, view, params, grid, mu, labels) for view in views]


def _project(ct: PhantomCT, view: str, params: ProjectionParams, grid: VoxelGrid, mu: np.ndarray,
             labels: np.ndarray) -> PhantomXray:
    p = params.pixel_spacing_mm
    z_rows, cols, lat_axis = _detector_axes(ct, view, params)
    coarse, masks = _line_integrals(mu, labels, grid, lat_axis)
    line = _resample(coarse, grid, lat_axis, z_rows, cols)
    path_mm = _resample(masks["body_mm"], grid, lat_axis, z_rows, cols, order=1)
    lung = _resample(masks["lung"], grid, lat_axis, z_rows, cols, order=0) > 0.5
    bone = _resample(masks["bone"], grid, lat_axis, z_rows, cols, order=0) > 0.5
    arms_line, arms_mm, arms_bone = limb_projection(ct.model.parts.limbs, z_rows, cols,
                                                    lat_axis, p, hu_to_mu)
    line += arms_line
    path_mm += arms_mm
    bone |= arms_bone
    objects, lookalike_of = _calc_objects(ct)
    deposits_only = np.zeros_like(line)
    footprints = add_objects(deposits_only, [o for o in objects if o[0][0] == "lesion"],
                              z_rows, cols, lat_axis, p)
    add_objects(line, [o for o in objects if o[0][0] == "lookalike"], z_rows, cols, lat_axis, p)
    geometry = _geometry(ct, view, z_rows, cols)
    marks = _marks(ct, params, view, geometry, line, path_mm, lung, bone)
    blur = params.detector_blur_mm / p
    line = ndimage.gaussian_filter(line + deposits_only, blur)
    deposits_only = ndimage.gaussian_filter(deposits_only, blur)
    sigma = noise_sigma(line, params.noise_level)
    seed = ct.spec.seed if params.seed is None else params.seed
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4242, lat_axis]))
    noisy = line + sigma * correlated_noise(rng, line.shape)
    weight = body_weight(line)
    stored, _ = present(noisy, path_mm > 0, **_present_kwargs(params), weight=weight)
    top = 2 ** params.bits_stored - 1
    image = np.rint(stored).astype(np.uint16)
    body_vals = stored[path_mm > 0]
    lo, hi = np.percentile(body_vals, [2, 99.5]) if body_vals.size else (0.0, float(top))
    if params.photometric == "MONOCHROME1":
        image = (top - image).astype(np.uint16)
        lo, hi = top - hi, top - lo
    position, orientation = _VIEWS[view]
    xray = PhantomXray(image, view, position, orientation, params.photometric, (p, p),
                       (p * params.magnification,) * 2, params.bits_stored,
                       (float((lo + hi) / 2), float(hi - lo)), [], [], geometry)
    xray.truth = _xray_truth(ct, xray, footprints, deposits_only, sigma, path_mm, lung, bone,
                             params)
    _visibility(xray.truth, footprints, line, deposits_only, path_mm > 0, weight, params)
    xray.lookalikes = [XrayLookalike(look.id, look.kind, *map(float, xray.lps_to_pixel(
        look.center_lps_mm)), look.side) for look in ct.lookalikes if look.id in lookalike_of
        and _inside(xray, look.center_lps_mm)]
    xray.lookalikes += [XrayLookalike(MARK_ID_BASE + n, kind, row, col,
                                      _side_of_column(xray, ct, col))
                        for n, (kind, row, col) in enumerate(marks)]
    return xray


MARK_ID_BASE = 1000  # lead markers and clips are numbered from here in ``lookalikes``


def _present_kwargs(params: ProjectionParams) -> dict:
    return dict(equalization=params.equalization, detail_boost=params.detail_boost,
                bits_stored=params.bits_stored, p=params.pixel_spacing_mm,
                unsharp_mm=params.unsharp_mm, lut=params.lut)


def _pixel(geometry: dict, lps, p: float) -> tuple[float, float]:
    rel = np.asarray(lps, float) - np.asarray(geometry["origin_lps_mm"])
    return (float(rel @ np.asarray(geometry["row_direction_lps"]) / p),
            float(rel @ np.asarray(geometry["column_direction_lps"]) / p))


def _marks(ct: PhantomCT, params: ProjectionParams, view: str, geometry: dict,
           line: np.ndarray, path_mm, lung, bone) -> list[tuple[str, float, float]]:
    """Lead letters and clips added to ``line`` in place (:mod:`._xray_marks`)."""
    if params.markers <= 0 and params.clips <= 0:
        return []
    seed = ct.spec.seed if params.seed is None else params.seed
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7331, _VIEW_INDEX[view]]))
    avoid = [_pixel(geometry, t.center_lps_mm, params.pixel_spacing_mm) for t in ct.truth]
    left = 1 if view == "frontal" else 0
    return add_marks(line, path_mm=path_mm, lung=lung, bone=bone, p=params.pixel_spacing_mm,
                     left_col_sign=left, markers=params.markers, clips=params.clips,
                     rng=rng, avoid=avoid)


def _side_of_column(xray: PhantomXray, ct: PhantomCT, col: float) -> str:
    if xray.view != "frontal":
        return "midline"
    x = xray.geometry["origin_lps_mm"][0] + col * xray.pixel_spacing_mm[1]
    return "left" if x > ct.midline_x_mm else "right"


def _inside(xray: PhantomXray, lps) -> bool:
    row, col = xray.lps_to_pixel(lps)
    return bool(0 <= row <= xray.image.shape[0] - 1 and 0 <= col <= xray.image.shape[1] - 1)


def _geometry(ct: PhantomCT, view: str, z_rows: np.ndarray, cols: np.ndarray) -> dict:
    yc = float(ct.model.body.yc)
    if view == "frontal":
        origin = [float(cols[0]), yc, float(z_rows[0])]
        col_dir, beam = [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]
    else:
        origin = [float(ct.midline_x_mm), float(cols[0]), float(z_rows[0])]
        col_dir, beam = [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]
    return {"projection": "parallel", "origin_lps_mm": origin,
            "row_direction_lps": [0.0, 0.0, -1.0], "column_direction_lps": col_dir,
            "beam_direction_lps": beam}


def _xray_truth(ct, xray, footprints, deposits_only, sigma, path_mm, lung, bone,
                params: ProjectionParams) -> list[XrayTruth]:
    from_outline = ndimage.distance_transform_edt(path_mm > 0) * params.pixel_spacing_mm
    out = []
    for lesion in ct.truth:
        if ("lesion", lesion.id) not in footprints or not _inside(xray, lesion.center_lps_mm):
            continue
        row, col = (float(v) for v in xray.lps_to_pixel(lesion.center_lps_mm))
        box, _ = footprints[("lesion", lesion.id)]
        contrast = float(deposits_only[box].max())
        noise = float(_sample(sigma, row, col))
        path = float(_sample(path_mm, row, col))
        over_lung, over_bone = bool(_sample(lung, row, col)), bool(_sample(bone, row, col))
        # tangential: the ray grazes the outline of the trunk or an arm (a short path through
        # the body, and the outline near: over the middle of an arm the path is short too)
        tangential = not over_lung and not over_bone and path <= params.tangential_path_mm \
            and float(_sample(from_outline, row, col)) <= params.tangential_outline_mm
        out.append(XrayTruth(lesion.id, row, col, lesion.diameter_mm, lesion.layer, lesion.side,
                             lesion.region, lesion.morphology, tangential, over_lung, over_bone,
                             path, contrast, contrast / noise))
    return out


def _visibility(truth: list[XrayTruth], footprints, line: np.ndarray,
                deposits_only: np.ndarray, body: np.ndarray, weight: np.ndarray,
                params: ProjectionParams) -> None:
    """Set each deposit's visible contrast and the structure of its spot (in place)."""
    kwargs = dict(_present_kwargs(params), weight=weight)
    shown, _ = present(line, body, **kwargs)
    without, _ = present(line - deposits_only, body, **kwargs)
    p = params.pixel_spacing_mm
    for item in truth:
        box, _ = footprints[("lesion", item.id)]
        item.visible_contrast = float((shown - without)[box].max())
        reach = int(np.ceil((item.diameter_mm / 2 + 1.0) / p))
        r, c = int(round(item.row)), int(round(item.col))
        r0, c0 = max(0, r - reach), max(0, c - reach)
        window = without[r0: r + reach + 1, c0: c + reach + 1]
        rr, cc = np.mgrid[r0: r0 + window.shape[0], c0: c0 + window.shape[1]]
        spot = window[np.hypot(rr - item.row, cc - item.col) * p <= item.diameter_mm / 2 + 1.0]
        low, high = np.percentile(spot, [5, 95]) if spot.size else (0.0, 0.0)
        item.structure = float(high - low)
