"""Known calcifications inserted into a real chest film, and a scorer for the detector.

A deposit is the projected profile of a calcium sphere (thickness ``2 sqrt(R^2 - r^2)``)
or of a short band (a capsule: a cylinder with rounded ends, lying in the film's plane),
blurred to the film's own sharpness and added to the film's values (larger = more
attenuating, as :class:`~napari_calcinosis.types.Radiograph` holds them). Its peak is set
against the fluctuation measured around the site at the deposit's own scale
(:func:`local_noise`), so "stands out" means the same thing on an 8-bit export and on a
16-bit CR: ``peak = cnr x local noise``.

Sites follow what a reader looks at for calcinosis on a chest film: *tangential* deposits
just inside the body outline (the skin and subcutaneous fat seen edge-on) at the
shoulders, the lateral chest wall and the axillae, and a few *en face* deposits in the
soft tissue clear of the lungs. Where the outline and the lungs are comes from the
radiograph detector's own anatomy (:func:`napari_calcinosis.xray.segment_anatomy`); the truth is
the inserted positions and sizes, which the detector never sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage as ndi

from napari_calcinosis.types import Lesion, Radiograph, XrayParams
from napari_calcinosis.xray import prepare, segment_anatomy

__all__ = ["FilmDeposit", "FilmHybrid", "FilmScore", "film_edge_sigma_mm", "make_film_hybrid",
           "score_film"]


@dataclass(frozen=True)
class FilmDeposit:
    """One inserted deposit: stored-grid ``row``, ``col``, size and where it was put."""

    ident: int
    row: float
    col: float
    diameter_mm: float
    length_mm: float  # 0 for a dot (sphere), else the band's length
    cnr: float        # peak over the local noise
    zone: str         # "shoulder", "chest_wall", "axilla" (tangential) or "en_face"


@dataclass
class FilmHybrid:
    """A real film with deposits added, and their truth."""

    radiograph: Radiograph
    deposits: list[FilmDeposit]
    pixel_mm: float
    sharpness_mm: float = 0.0


@dataclass
class FilmScore:
    """Outcomes for one film or several (add them with ``+``)."""

    #: every deposit with whether a call matched it
    outcomes: list[tuple[FilmDeposit, bool]] = field(default_factory=list)
    calls: int = 0
    false_calls: int = 0
    films: int = 1

    def __add__(self, other: FilmScore) -> FilmScore:
        return FilmScore(self.outcomes + other.outcomes, self.calls + other.calls,
                         self.false_calls + other.false_calls, self.films + other.films)

    @property
    def found(self) -> int:
        return sum(hit for _, hit in self.outcomes)

    @property
    def misses(self) -> list[FilmDeposit]:
        """The eligible deposits no call matched."""
        return [dep for dep, hit in self.outcomes if eligible(dep) and not hit]

    def sensitivity_where(self, keep) -> tuple[int, int]:
        """(found, total) over the deposits for which ``keep(deposit)`` is true."""
        chosen = [hit for dep, hit in self.outcomes if keep(dep)]
        return sum(chosen), len(chosen)

    @property
    def eligible(self) -> int:
        return self.sensitivity_where(eligible)[1]

    @property
    def sensitivity(self) -> float:
        found, total = self.sensitivity_where(eligible)
        return found / total if total else float("nan")


#: A deposit counts toward the sensitivity target when at least this wide and this
#: conspicuous (the issue's ">= 2 mm that stand out (contrast >= 5 x the local noise)").
ELIGIBLE_DIAMETER_MM = 2.0
ELIGIBLE_CNR = 5.0


def eligible(dep: FilmDeposit) -> bool:
    """Whether a deposit counts toward the sensitivity target."""
    return dep.diameter_mm >= ELIGIBLE_DIAMETER_MM and dep.cnr >= ELIGIBLE_CNR


def make_film_hybrid(rad: Radiograph, *, seed: int = 0, count: int = 8,
                     en_face: int = 2, sharpness_mm: float | None = None) -> FilmHybrid:
    """Insert ``count`` deposits (``en_face`` of them en face) into a copy of ``rad``.

    Sizes are drawn from 1.5-5 mm (a quarter are bands 6-12 mm long), peaks from 3-15 x the
    local noise, at least 15 mm apart, blurred like the film's own sharpest edges
    (:func:`film_edge_sigma_mm`) unless ``sharpness_mm`` is given. Raises ``ValueError`` if
    the film has no body outline or lung fields to place them by.
    """
    rng = np.random.default_rng(seed)
    params = XrayParams()
    work = prepare(rad, params)
    anatomy = segment_anatomy(work, params=params, view=rad.view, body_part=rad.info.body_part)
    if not anatomy.is_chest or not anatomy.background.any():
        raise ValueError("the film needs a body outline and two lung fields to place deposits")
    f = work.factor
    pixel_mm = float(np.sqrt(work.stored_spacing_mm[0] * work.stored_spacing_mm[1]))
    image = np.array(rad.image, dtype=np.float32, copy=True)
    if sharpness_mm is None:
        sharpness_mm = film_edge_sigma_mm(image, pixel_mm, work.mask_to_stored(~work.dead))
    sigma_px = max(0.5, sharpness_mm / pixel_mm)
    sites = _candidate_sites(work, anatomy, params)
    inward = _inward_normals(anatomy.body)
    wanted = ["tangential"] * (count - en_face) + ["en_face"] * en_face
    deposits: list[FilmDeposit] = []
    top = float(np.max(image))
    for kind in wanted:
        pool = sites[kind]
        diameter = float(rng.uniform(1.5, 5.0))
        length = float(rng.uniform(6.0, 12.0)) if rng.random() < 0.25 else 0.0
        cnr = float(rng.uniform(3.0, 15.0))
        angle = float(rng.uniform(0, np.pi))
        for _ in range(200 if pool else 0):
            r, c, zone = pool[int(rng.integers(len(pool)))]
            row, col = r * f + (f - 1) / 2.0, c * f + (f - 1) / 2.0
            if zone != "en_face":
                # in the skin: the deposit's outer edge 0.5-1.5 mm inside the outline
                row, col = _inside_outline(inward, work, r, c,
                                           diameter / 2 + rng.uniform(0.5, 1.5))
            if all(np.hypot(row - d.row, col - d.col) * pixel_mm >= 15.0 for d in deposits):
                break
        else:
            continue
        local = local_noise(image, row, col, diameter / 2 / pixel_mm, pixel_mm)
        if not _add_deposit(image, row, col, diameter / pixel_mm, length / pixel_mm, angle,
                            cnr * local, sigma_px):
            continue  # too near the film's edge to draw whole: not part of the truth
        deposits.append(FilmDeposit(len(deposits) + 1, round(row, 2), round(col, 2),
                                    round(diameter, 2), round(length, 2), round(cnr, 2), zone))
    image = np.minimum(image, top)  # a film cannot record beyond its own range
    return FilmHybrid(radiograph=replace(rad, image=image), deposits=deposits,
                      pixel_mm=pixel_mm,
                      sharpness_mm=float(sharpness_mm))


def score_film(hybrid: FilmHybrid, lesions: list[Lesion], *, tolerance_mm: float = 3.0
               ) -> FilmScore:
    """Match the detector's lesions to the inserted deposits (nearest within
    ``max(tolerance_mm, deposit size)``); every unmatched lesion is a false call."""
    score = FilmScore(calls=len(lesions))
    used: set[int] = set()
    for dep in hybrid.deposits:
        reach = max(tolerance_mm, dep.diameter_mm, dep.length_mm / 2) / hybrid.pixel_mm
        best, best_d = None, np.inf
        for i, les in enumerate(lesions):
            d = float(np.hypot(les.centroid_index[0] - dep.row, les.centroid_index[1] - dep.col))
            if i not in used and d <= reach and d < best_d:
                best, best_d = i, d
        score.outcomes.append((dep, best is not None))
        if best is not None:
            used.add(best)
    score.false_calls = len(lesions) - len(used)
    return score


def film_edge_sigma_mm(image: np.ndarray, pixel_mm: float, live: np.ndarray | None = None,
                       *, samples: int = 400, seed: int = 0) -> float:
    """The film's own blur: the Gaussian sigma (mm) of its sharpest anatomical edges.

    At a sample of the strongest edges (the top 1 % of the gradient; rib cortex, the skin
    line, the heart border) the 10-90 % rise along the gradient is measured; a blurred step
    rises over 2.56 sigma. The lower quartile is taken: most anatomical edges are not steps,
    the sharpest are. Metal edges (the top 0.1 %) are left out.
    """
    smooth = ndi.gaussian_filter(image.astype(np.float32), 0.7)
    gy, gx = ndi.sobel(smooth, 0) / 8.0, ndi.sobel(smooth, 1) / 8.0
    grad = np.hypot(gy, gx)
    reach = int(np.ceil(4.0 / pixel_mm)) + 2
    ok = np.zeros(image.shape, dtype=bool)
    ok[reach:-reach, reach:-reach] = True
    if live is not None:  # where the film is anatomy (not collimator or padding)
        ok &= live
    values = grad[ok]
    if values.size < 100:
        return 0.3
    low, high = np.quantile(values, [0.99, 0.999])
    rows, cols = np.nonzero(ok & (grad >= low) & (grad <= high))
    if rows.size == 0:
        return 0.3
    pick = np.random.default_rng(seed).choice(rows.size, min(samples, rows.size), replace=False)
    t = np.arange(-reach, reach + 1, 0.5)
    rises = []
    for i in pick:
        r, c = rows[i], cols[i]
        d = np.array([gy[r, c], gx[r, c]]) / grad[r, c]
        profile = ndi.map_coordinates(smooth, [r + t * d[0], c + t * d[1]], order=1)
        lo, hi = profile[: len(t) // 4].mean(), profile[-len(t) // 4:].mean()
        if hi - lo <= 0:
            continue
        f = (profile - lo) / (hi - lo)
        above10, above90 = np.nonzero(f >= 0.1)[0], np.nonzero(f >= 0.9)[0]
        if above10.size and above90.size and above90[0] > above10[0]:
            rises.append((t[above90[0]] - t[above10[0]]) * pixel_mm)
    if len(rises) < 20:
        return 0.3
    return float(max(0.1, np.percentile(rises, 25) / 2.563))


def local_noise(image: np.ndarray, row: float, col: float, radius_px: float,
                pixel_mm: float) -> float:
    """The fluctuation a deposit of this radius must stand out from, at ``(row, col)``.

    In a 24 mm window: the film minus its 3 mm Gaussian trend (anatomy larger than any
    deposit), averaged over a Gaussian of half the deposit's radius (as the eye averages
    pixel noise over a spot), and its robust spread (1.4826 x MAD). On a 16-bit CR the
    pixel noise dominates it, on an 8-bit export the anatomy's own texture does.
    """
    half = int(np.ceil(12.0 / pixel_mm))
    r, c = int(round(row)), int(round(col))
    r0, c0 = max(0, r - half), max(0, c - half)
    window = image[r0: r + half + 1, c0: c + half + 1].astype(np.float32)
    detail = window - ndi.gaussian_filter(window, 3.0 / pixel_mm)
    detail = ndi.gaussian_filter(detail, max(0.5, radius_px / 2))
    inner = detail[window.shape[0] // 6: -window.shape[0] // 6 or None,
                   window.shape[1] // 6: -window.shape[1] // 6 or None]
    values = inner if inner.size else detail
    spread = 1.4826 * float(np.median(np.abs(values - np.median(values))))
    return max(spread, 1e-6 * max(float(np.ptp(window)), 1.0))


def _candidate_sites(work, anatomy, params) -> dict[str, list[tuple[int, int, str]]]:
    """Working-grid points on the outline (by zone) and en face in the soft tissue."""
    body, lungs, background = anatomy.body, anatomy.lungs, anatomy.background
    # only true direct exposure makes a skin outline: darker than the darkest lung (a lung
    # cut by the image edge can pass for background)
    labels, count = ndi.label(background)
    if count and lungs.any():
        floor = float(np.percentile(work.image[lungs], 2))
        level = np.asarray(ndi.median(work.image, labels, range(1, count + 1)))
        background = np.concatenate([[False], level < floor])[labels]
    margin = int(np.ceil(work.px(params.border_margin_mm + 8.0)))
    inside = np.zeros_like(body)
    inside[margin:-margin, margin:-margin] = True
    if work.dead.any():
        inside &= ~ndi.binary_dilation(work.dead, iterations=margin)
    outline = body & ndi.binary_dilation(background) & inside
    rows = anatomy.thorax_rows
    top, bottom = (rows[0], rows[1]) if rows else (0, body.shape[0])
    height = max(1, bottom - top)
    tangential = []
    for r, c in zip(*np.nonzero(outline)):
        level = (r - top) / height
        if level < -0.25 or level > 0.85:
            continue
        zone = "shoulder" if level < 0.1 else ("axilla" if level < 0.35 else "chest_wall")
        tangential.append((int(r), int(c), zone))
    depth = anatomy.outline_depth_mm
    clear = body & inside & ~ndi.binary_dilation(lungs, iterations=int(work.px(10.0))) \
        & ~anatomy.bone & ~anatomy.spine & (depth > 15.0) & (depth < 60.0)
    en_face = [(int(r), int(c), "en_face") for r, c in zip(*np.nonzero(clear))]
    return {"tangential": tangential[::3], "en_face": en_face[::7]}


def _inward_normals(body: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column components of the direction into the body (a smoothed mask's
    gradient), on the working grid."""
    smooth = ndi.gaussian_filter(body.astype(np.float32), 3.0)
    return ndi.sobel(smooth, 0), ndi.sobel(smooth, 1)


def _inside_outline(inward: tuple[np.ndarray, np.ndarray], work, r: int, c: int,
                    depth_mm: float) -> tuple[float, float]:
    """Stored-grid point ``depth_mm`` inside the outline from working point ``(r, c)``."""
    g = np.array([inward[0][r, c], inward[1][r, c]], dtype=float)
    norm = float(np.hypot(*g)) or 1.0
    step = g / norm * work.px(depth_mm)
    f = work.factor
    return (r + step[0]) * f + (f - 1) / 2.0, (c + step[1]) * f + (f - 1) / 2.0


def _add_deposit(image: np.ndarray, row: float, col: float, diameter_px: float,
                 length_px: float, angle: float, peak: float, sigma_px: float) -> bool:
    """Add a blurred projected sphere (or capsule) whose blurred peak is ``peak``; False
    (nothing added) when it would not fit whole inside the image."""
    radius = diameter_px / 2.0
    reach = int(np.ceil(radius + length_px / 2 + 4 * sigma_px + 2))
    r0, c0 = int(round(row)) - reach, int(round(col)) - reach
    r1, c1 = r0 + 2 * reach + 1, c0 + 2 * reach + 1
    if r0 < 0 or c0 < 0 or r1 > image.shape[0] or c1 > image.shape[1]:
        return False
    # 4 x 4 supersampling for sub-pixel partial volume
    sub = 4
    yy, xx = np.mgrid[0: (r1 - r0) * sub, 0: (c1 - c0) * sub]
    y = r0 + (yy + 0.5) / sub - 0.5 - row
    x = c0 + (xx + 0.5) / sub - 0.5 - col
    along = x * np.cos(angle) + y * np.sin(angle)
    across = -x * np.sin(angle) + y * np.cos(angle)
    half = length_px / 2.0
    along = np.clip(np.abs(along) - max(0.0, half - radius), 0, None) if half > 0 else along
    dist2 = along ** 2 + across ** 2
    thickness = 2 * np.sqrt(np.clip(radius ** 2 - dist2, 0, None))
    profile = thickness.reshape(r1 - r0, sub, c1 - c0, sub).mean(axis=(1, 3))
    profile = ndi.gaussian_filter(profile, sigma_px)
    if profile.max() <= 0:
        return False
    image[r0:r1, c0:c1] += (peak / profile.max() * profile).astype(np.float32)
    return True
