"""Known deposits inserted into real CT volumes: hybrid images with ground truth.

When no labelled data exist, computer-aided detection is evaluated by inserting synthetic
lesions into real anatomy. Each deposit here is a union of ellipsoids in patient millimetres,
rendered with sub-voxel partial volume (samples across the slice thickness and the pixel),
blurred with the image's own sharpness (the edge spread measured at the body outline, see
:func:`edge_sigma_mm`) and added to the real image, whose own noise stays. Where it goes is
decided from the image alone by simple rules written here (an independent reading, not the
detector's tissue model); the outline is where the body meets outside air (air connected to
the image's border, whose median is below ``_OUTSIDE_AIR_HU``: not a lung cut by a cropped
field of view):

* **skin**: 1-2 mm below the outline where the outer millimetres are not fat;
* **subcutaneous**: in the middle of the fat run that follows the skin, where it is at least
  ``_MIN_FAT_MM`` thick;
* **fascia**: a thin sheet along the end of that fat run (the fascia over the muscle);
* **muscle**: a band inside the muscle under the fascia, where the muscle is thick (the back
  and the buttocks, the limbs);
* **mass** (periarticular): a lobulated cluster of cysts with fluid-calcium levels (dense in
  their dependent part) beside the largest bone of the hip or the shoulder;
* **limbs**: arms and legs (body pieces apart from the trunk) get dots in all three layers.

Scenarios: ``scattered`` (deposits in every layer and region), ``symmetric`` (mirrored
pairs about the mid-sagittal plane), ``localized`` (a cluster on one side of one region) and
``mass`` (a tumoral mass and a few dots). A deposit is *eligible* for sensitivity when it is
at least 2 mm and its peak after blur stands at least ``ELIGIBLE_PEAK_HU`` (the detector's
targets are stated for these).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from napari_calcinosis.types import Volume

__all__ = ["ELIGIBLE_PEAK_HU", "HybridDeposit", "HybridStudy", "edge_sigma_mm",
           "make_hybrid"]

ELIGIBLE_PEAK_HU = 180.0
ELIGIBLE_SIZE_MM = 2.0
SCENARIOS = ("scattered", "symmetric", "localized", "mass")
_MIN_FAT_MM = 8.0
_MUSCLE_DEPTH_MM = (6.0, 14.0)
_AIR_HU = -500.0
_OUTSIDE_AIR_HU = -950.0
_FAT_HU = (-190.0, -30.0)
_MUSCLE_HU = (0.0, 110.0)


@dataclass
class HybridDeposit:
    """One inserted deposit and where it went."""

    id: int
    kind: str  # dot, sheet, band, mass
    layer: str  # skin, subcutaneous, fascia, muscle, periarticular
    side: str
    limb: bool
    centroid_mm: list[float]
    centroid_index: list[float]
    size_mm: float
    deposit_hu: float
    peak_hu: float = 0.0  # peak of the hybrid image within the deposit
    base_peak_hu: float = 0.0  # the real image's own peak there
    eligible: bool = False
    voxels: Any = field(default=None, repr=False)  # flat indices where occupancy >= 0.5

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("voxels")
        return out


@dataclass
class HybridStudy:
    """A real volume with deposits added, and their truth."""

    volume: Volume
    deposits: list[HybridDeposit]
    scenario: str
    seed: int
    sigma_mm: float

    def truth_labels(self) -> np.ndarray:
        """``int32`` volume: deposit id at each voxel a deposit occupies half of."""
        out = np.zeros(self.volume.hu.shape, np.int32)
        for dep in self.deposits:
            out.ravel()[dep.voxels] = dep.id
        return out


def edge_sigma_mm(volume: Volume, *, samples: int = 400, seed: int = 0) -> float:
    """The image's in-plane sharpness: Gaussian sigma (mm) of the air-to-body edge.

    Profiles are taken along image rows across the body outline in a few slices; the
    10-90 % rise of each is ``2.563 sigma`` for a Gaussian blur of a step.
    """
    hu = volume.hu
    rng = np.random.default_rng(seed)
    pixel = float(volume.spacing_zyx_mm[2])
    rises = []
    for k in rng.choice(hu.shape[0], size=min(8, hu.shape[0]), replace=False):
        sl = hu[k].astype(np.float32)
        body = ndi.binary_opening(sl > _AIR_HU, iterations=2)
        rows = np.flatnonzero(body.any(axis=1))
        for r in rng.choice(rows, size=min(samples // 8, len(rows)), replace=False) if \
                len(rows) else []:
            cols = np.flatnonzero(body[r])
            c = int(cols.min())
            if c < 6 or c + 6 >= sl.shape[0]:
                continue
            prof = sl[r, c - 6:c + 6]
            lo, hi = float(prof[:3].mean()), float(np.median(sl[r, c + 3:c + 8]))
            if lo > -800 or hi < -150:
                continue
            norm = (prof - lo) / max(hi - lo, 1.0)
            x = np.arange(len(norm))
            i10 = np.interp(0.1, np.maximum.accumulate(norm), x)
            i90 = np.interp(0.9, np.maximum.accumulate(norm), x)
            rises.append((i90 - i10) * pixel)
    if not rises:
        return 0.6
    return float(np.clip(np.median(rises) / 2.563, 0.25, 2.0))


class _Reader:
    """The image read slice by slice with simple rules (the module docstring)."""

    def __init__(self, volume: Volume) -> None:
        self.volume = volume
        self.hu = volume.hu
        self.spacing = np.asarray(volume.spacing_zyx_mm, float)
        self._cache: dict[int, dict[str, np.ndarray]] = {}
        d = np.asarray(volume.direction_lps, float)
        self.left_rc = np.array([d[0, 1], d[0, 2]])
        self.back_rc = np.array([d[1, 1], d[1, 2]])

    def slice(self, k: int) -> dict[str, np.ndarray]:
        if k not in self._cache:
            sl = self.hu[k].astype(np.float32)
            air = sl < _AIR_HU
            border = np.zeros_like(air)
            border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
            labels, n = ndi.label(air)
            # outside air is air: lung that a cropped reconstruction cuts through the
            # border is air-like too, but its vessels and septa lift its median
            median = ndi.median(sl, labels, index=np.arange(1, n + 1)) if n else []
            air_like = np.zeros(n + 1, bool)
            air_like[1:] = np.asarray(median, float) < _OUTSIDE_AIR_HU
            outside = np.isin(labels, np.unique(labels[border & air])) & air_like[labels]
            body = ~outside
            parts, n = ndi.label(ndi.binary_opening(body, iterations=2))
            sizes = np.bincount(parts.ravel(), minlength=n + 1)
            sizes[0] = 0
            trunk = int(np.argmax(sizes)) if n else 0
            depth = ndi.distance_transform_edt(body, sampling=self.spacing[1:])
            smooth = ndi.uniform_filter(sl, size=3)
            self._cache[k] = {"hu": sl, "smooth": smooth, "body": body, "depth": depth,
                              "parts": parts, "trunk": trunk, "sizes": sizes}
        return self._cache[k]

    def inward(self, k: int, r: float, c: float) -> np.ndarray:
        """Unit (row, col) step direction into the body at an outline point."""
        s = self.slice(k)
        gy, gx = np.gradient(ndi.gaussian_filter(s["depth"], 2.0))
        v = np.array([gy[int(r), int(c)], gx[int(r), int(c)]])
        norm = np.linalg.norm(v)
        return v / norm if norm > 1e-6 else np.array([1.0, 0.0])

    def profile(self, k: int, r: float, c: float, direction: np.ndarray, length_mm: float,
                step_mm: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """Smoothed HU along a line (mm steps) starting at (r, c)."""
        s = self.slice(k)
        t = np.arange(0.0, length_mm, step_mm)
        rows = r + direction[0] * t / self.spacing[1]
        cols = c + direction[1] * t / self.spacing[2]
        vals = ndi.map_coordinates(s["smooth"], [rows, cols], order=1, mode="nearest")
        return t, vals


def _run_end(t: np.ndarray, ok: np.ndarray, start: int) -> float:
    """Position (mm) where the run of ``ok`` that begins at ``start`` ends."""
    idx = start
    while idx < len(ok) and ok[idx]:
        idx += 1
    return float(t[min(idx, len(t) - 1)])


@dataclass
class _Site:
    k: int
    r: float
    c: float
    layer: str
    limb: bool
    normal_rc: np.ndarray
    fat_mm: float


_LAYER_MIX = ("skin", "subcutaneous", "subcutaneous", "fascia", "muscle", "muscle")


def _sites(reader: _Reader, rng: np.random.Generator, n_sites: int) -> list[_Site]:
    """Places for deposits, each with the layer the image shows there; the layers are
    taken in turn from ``_LAYER_MIX`` so that every layer is represented."""
    out: list[_Site] = []
    for n in range(n_sites):
        layer = _LAYER_MIX[n % len(_LAYER_MIX)]
        for _ in range(60):
            site = _try_site(reader, rng, layer)
            if site is not None:
                out.append(site)
                break
    return out


def _try_site(reader: _Reader, rng: np.random.Generator, layer: str) -> _Site | None:
    nz = reader.hu.shape[0]
    margin = max(1, int(np.ceil(8.0 / reader.spacing[0])))
    k = int(rng.integers(min(margin, nz - 1), max(margin + 1, nz - margin)))
    s = reader.slice(k)
    edge = s["body"] & (s["depth"] <= 1.5) & (s["depth"] > 0)
    er, ec = np.nonzero(edge)
    if len(er) == 0:
        return None
    j = int(rng.integers(len(er)))
    r, c = float(er[j]), float(ec[j])
    if min(r, c) < 10 or r > s["hu"].shape[0] - 10 or c > s["hu"].shape[1] - 10:
        return None  # at the image border: the outline may be cut there
    part = s["parts"][int(r), int(c)]
    if part == 0 or not _is_body_part(s, part):
        return None
    limb = bool(part != s["trunk"])
    normal = reader.inward(k, r, c)
    t, vals = reader.profile(k, r, c, normal, 80.0)
    fat = (vals >= _FAT_HU[0]) & (vals <= _FAT_HU[1])
    skin_end = int(np.searchsorted(t, 2.5))
    fat_start = next((i for i in range(skin_end, min(skin_end + 8, len(t))) if fat[i]), None)
    fat_end = _run_end(t, fat, fat_start) if fat_start is not None else float(t[skin_end])
    fat_mm = fat_end - float(t[skin_end])
    if layer == "skin":
        ok = fat_start is not None  # skin over fat: a dermal deposit is told from muscle
    elif layer in ("subcutaneous", "fascia"):
        ok = fat_mm >= _MIN_FAT_MM
    else:
        i0 = int(np.searchsorted(t, fat_end + _MUSCLE_DEPTH_MM[0]))
        i1 = int(np.searchsorted(t, fat_end + _MUSCLE_DEPTH_MM[1] + 8.0))
        muscle = (vals[i0:i1] >= _MUSCLE_HU[0]) & (vals[i0:i1] <= _MUSCLE_HU[1])
        ok = i1 < len(vals) and bool(muscle.all()) and (limb or _back_or_buttock(reader,
                                                                                 normal))
    return _Site(k, r, c, layer, limb, normal, fat_mm) if ok else None


def _is_body_part(s: dict[str, np.ndarray], part: int) -> bool:
    """A piece of the body (soft tissue and fat around bone), not the table or a cushion."""
    if part == s["trunk"]:
        return True
    values = s["hu"][s["parts"] == part]
    fat = np.mean((values >= _FAT_HU[0]) & (values <= _FAT_HU[1]))
    muscle = np.mean((values >= _MUSCLE_HU[0]) & (values <= _MUSCLE_HU[1]))
    return bool(fat >= 0.05 and muscle >= 0.25 and
                np.mean(values > 300) > 0.005)


def _back_or_buttock(reader: _Reader, inward_rc: np.ndarray) -> bool:
    """True when the inward direction points forward (the site is on the back)."""
    back = reader.back_rc / max(np.linalg.norm(reader.back_rc), 1e-9)
    return bool(np.dot(-inward_rc, back) >= np.cos(np.radians(50.0)))


def _site_point(reader: _Reader, site: _Site, size_mm: float, rng) -> tuple[float, float]:
    """Row and column of the deposit's centre along the site's inward normal."""
    skin = 2.5
    if site.layer == "skin":
        depth = float(rng.uniform(0.9, 1.6))
    elif site.layer == "subcutaneous":
        depth = skin + site.fat_mm * float(rng.uniform(0.35, 0.65))
    elif site.layer == "fascia":
        depth = skin + site.fat_mm
    else:
        depth = skin + site.fat_mm + float(rng.uniform(*_MUSCLE_DEPTH_MM)) + size_mm / 2
    return (site.r + site.normal_rc[0] * depth / reader.spacing[1],
            site.c + site.normal_rc[1] * depth / reader.spacing[2])


def _lps(volume: Volume, k: float, r: float, c: float) -> np.ndarray:
    return volume.index_to_lps(np.array([[k, r, c]], float))[0]


def _frame(volume: Volume, site: _Site) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LPS unit vectors: the inward normal, the tangent in-plane and the slice axis."""
    d = np.asarray(volume.direction_lps, float)
    normal = d[:, 1] * site.normal_rc[0] + d[:, 2] * site.normal_rc[1]
    normal /= np.linalg.norm(normal)
    axis = d[:, 0]
    tangent = np.cross(axis, normal)
    return normal, tangent / np.linalg.norm(tangent), axis


def _ellipsoids(kind: str, layer: str, centre: np.ndarray, frame, size: float, rng
                ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(centre, semi-axes, rotation) of the ellipsoids of one deposit."""
    normal, tangent, axis = frame
    rot = np.column_stack([normal, tangent, axis])
    if kind == "sheet":  # thin along the normal, wide along the fascia
        return [(centre, np.array([0.8, size / 2, size / 3]), rot)]
    if kind == "band":  # a rod along the slice axis or the tangent
        long = axis if rng.random() < 0.5 else tangent
        rot_b = np.column_stack([long, normal, np.cross(long, normal)])
        return [(centre, np.array([size / 2, 1.2, 1.2]), rot_b)]
    return [(centre, np.full(3, size / 2), np.eye(3))]


def _render(volume: Volume, blobs, sigma_mm: float) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Occupancy (0..1) of a union of ellipsoids, with partial volume, blurred in-plane."""
    spacing = np.asarray(volume.spacing_zyx_mm, float)
    thickness = float(volume.info.slice_thickness_mm or spacing[0])
    pts = np.array([c for c, _, _ in blobs])
    reach = max(float(np.max(a)) for _, a, _ in blobs) + 3 * sigma_mm + thickness
    idx = volume.lps_to_index(pts)
    lo = np.maximum(np.floor(idx.min(axis=0) - reach / spacing).astype(int), 0)
    hi = np.minimum(np.ceil(idx.max(axis=0) + reach / spacing).astype(int) + 1,
                    volume.hu.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    grid = np.indices(hi - lo).reshape(3, -1).T + lo
    occ = np.zeros(len(grid))
    n_xy, n_z = 3, 5
    offs_xy = (np.arange(n_xy) + 0.5) / n_xy - 0.5
    offs_z = ((np.arange(n_z) + 0.5) / n_z - 0.5) * thickness / spacing[0]
    for dz in offs_z:
        for dy in offs_xy:
            for dx in offs_xy:
                p = volume.index_to_lps(grid + np.array([dz, dy, dx]))
                inside = np.zeros(len(p), bool)
                for c, a, rot in blobs:
                    local = (p - c) @ rot
                    inside |= np.sum((local / a) ** 2, axis=1) <= 1.0
                occ += inside
    occ = (occ / (n_xy * n_xy * n_z)).reshape(hi - lo)
    if sigma_mm > 0:
        occ = ndi.gaussian_filter(occ, sigma=(0.0, sigma_mm / spacing[1], sigma_mm / spacing[2]))
    return occ, box


def _insert(hu: np.ndarray, volume: Volume, dep: HybridDeposit, blobs, sigma_mm: float
            ) -> None:
    """Add a deposit to ``hu`` (float32, in place) and record its voxels and peak."""
    occ, box = _render(volume, blobs, sigma_mm)
    sub = hu[box]
    sub += occ * (dep.deposit_hu - sub)  # the deposit takes the place of the tissue
    core = _raw_occupancy(volume, blobs, box) >= 0.5
    flat = np.ravel_multi_index(np.nonzero(core), sub.shape)
    dep.voxels = np.ravel_multi_index(
        tuple(np.unravel_index(flat, sub.shape)[a] + box[a].start for a in range(3)),
        hu.shape)
    dep.peak_hu = float(sub[core].max()) if core.any() else float(sub.max())


def _raw_occupancy(volume: Volume, blobs, box) -> np.ndarray:
    lo = np.array([b.start for b in box])
    hi = np.array([b.stop for b in box])
    grid = np.indices(hi - lo).reshape(3, -1).T + lo
    p = volume.index_to_lps(grid.astype(float))
    inside = np.zeros(len(p), bool)
    for c, a, rot in blobs:
        local = (p - c) @ rot
        inside |= np.sum((local / np.maximum(a, 0.5)) ** 2, axis=1) <= 1.0
    return inside.reshape(hi - lo).astype(float)


def make_hybrid(volume: Volume, *, scenario: str = "scattered", seed: int = 0,
                n_deposits: int = 20) -> HybridStudy:
    """Insert deposits into a copy of a real volume (module docstring).

    Parameters
    ----------
    volume : Volume
        A real CT (HU).
    scenario : str
        ``scattered``, ``symmetric``, ``localized`` or ``mass``.
    seed : int
        Seeds every choice.
    n_deposits : int
        How many deposits to aim for (``mass`` adds one mass to a few dots).
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {SCENARIOS}")
    rng = np.random.default_rng(seed)
    reader = _Reader(volume)
    sigma = edge_sigma_mm(volume, seed=seed)
    hu = volume.hu.astype(np.float32)
    deposits: list[HybridDeposit] = []
    sites = _sites(reader, rng, 3 * n_deposits)
    if scenario == "localized" and sites:
        anchor = sites[0]
        sites = [s for s in sites if abs(s.k - anchor.k) * reader.spacing[0] <= 60 and
                 np.hypot((s.r - anchor.r) * reader.spacing[1],
                          (s.c - anchor.c) * reader.spacing[2]) <= 70]
    midline_x = _midline_x(volume, reader)
    used: list[np.ndarray] = []
    target = 4 if scenario == "mass" else n_deposits
    for site in sites:
        if len(deposits) >= target:
            break
        dep = _deposit_at(volume, reader, site, rng, len(deposits) + 1, midline_x)
        if dep is None or any(np.linalg.norm(np.asarray(dep[0].centroid_mm) - u) < 15.0
                              for u in used):
            continue
        for placed in (dep, _mirrored(volume, reader, dep, len(deposits) + 2, midline_x)
                       if scenario == "symmetric" else None):
            if placed is not None:
                deposits.append(placed[0])
                used.append(np.asarray(placed[0].centroid_mm))
                _insert(hu, volume, placed[0], placed[1], sigma)
    if scenario == "mass":
        mass = _mass(volume, reader, rng, len(deposits) + 1, midline_x)
        if mass is not None:
            deposits.append(mass[0])
            _insert_mass(hu, volume, mass[0], mass[1], sigma)
    for dep in deposits:
        dep.base_peak_hu = float(volume.hu.ravel()[dep.voxels].max()) if len(dep.voxels) \
            else 0.0
        dep.eligible = bool(dep.size_mm >= ELIGIBLE_SIZE_MM and dep.peak_hu >= ELIGIBLE_PEAK_HU)
    out = Volume(hu=np.clip(np.round(hu), -32768, 32767).astype(np.int16),
                 spacing_zyx_mm=volume.spacing_zyx_mm, origin_lps_mm=volume.origin_lps_mm,
                 direction_lps=volume.direction_lps, info=volume.info,
                 padding_mask=volume.padding_mask, padding_value_hu=volume.padding_value_hu)
    return HybridStudy(out, deposits, scenario, seed, sigma)


def _midline_x(volume: Volume, reader: _Reader) -> float:
    """Patient x (mm) of the trunk's centre, median over a few slices."""
    xs = []
    for k in np.linspace(0, volume.hu.shape[0] - 1, 9).astype(int):
        s = reader.slice(int(k))
        trunk = s["parts"] == s["trunk"]
        if trunk.any():
            r, c = np.nonzero(trunk)
            xs.append(_lps(volume, k, r.mean(), c.mean())[0])
    return float(np.median(xs)) if xs else 0.0


def _side(x_mm: float, midline_x: float) -> str:
    if abs(x_mm - midline_x) <= 5.0:
        return "midline"
    return "left" if x_mm > midline_x else "right"


def _deposit_at(volume, reader, site: _Site, rng, ident: int, midline_x: float):
    kind = {"skin": "dot", "subcutaneous": "dot", "fascia": "sheet",
            "muscle": "band" if rng.random() < 0.5 else "dot"}[site.layer]
    if kind == "dot":
        limit = site.fat_mm * 0.6 if site.layer == "subcutaneous" else 6.0
        size = float(min(rng.uniform(1.5, 5.0), max(limit, 1.5)))
        if site.layer == "skin":
            size = float(rng.uniform(1.5, 2.8))
    elif kind == "sheet":
        size = float(rng.uniform(15.0, 30.0))
    else:
        size = float(rng.uniform(12.0, 30.0))
    r, c = _site_point(reader, site, size if kind == "dot" else 3.0, rng)
    centre = _lps(volume, site.k, r, c)
    blobs = _ellipsoids(kind, site.layer, centre, _frame(volume, site), size, rng)
    dep = HybridDeposit(id=ident, kind=kind, layer=site.layer, side=_side(centre[0], midline_x),
                        limb=site.limb, centroid_mm=[round(float(v), 2) for v in centre],
                        centroid_index=[round(float(v), 2) for v in (site.k, r, c)],
                        size_mm=round(size, 2), deposit_hu=float(rng.uniform(350.0, 1200.0)))
    return dep, blobs


def _mirrored(volume, reader, dep_blobs, ident: int, midline_x: float):
    """The deposit mirrored about the sagittal plane through the trunk's centre."""
    dep, blobs = dep_blobs
    flip = np.diag([-1.0, 1.0, 1.0])
    new_blobs = [(np.array([2 * midline_x - c[0], c[1], c[2]]), a, flip @ rot)
                 for c, a, rot in blobs]
    centre = np.array([2 * midline_x - dep.centroid_mm[0], *dep.centroid_mm[1:]])
    idx = volume.lps_to_index(centre[None])[0]
    if np.any(idx < 0) or np.any(idx >= np.asarray(volume.hu.shape)):
        return None
    k, r, c = (int(round(v)) for v in idx)
    s = reader.slice(k)
    if not s["body"][r, c] or s["depth"][r, c] <= 0.5:
        return None
    mirror = HybridDeposit(id=ident, kind=dep.kind, layer=dep.layer,
                           side=_side(centre[0], midline_x), limb=dep.limb,
                           centroid_mm=[round(float(v), 2) for v in centre],
                           centroid_index=[round(float(v), 2) for v in idx],
                           size_mm=dep.size_mm, deposit_hu=dep.deposit_hu)
    return mirror, new_blobs


def _mass(volume, reader, rng, ident: int, midline_x: float):
    """A lobulated periarticular mass beside the largest lateral bone (hip or shoulder)."""
    hu = reader.hu
    spacing = reader.spacing
    best = None
    for k in range(0, hu.shape[0], max(1, int(round(6.0 / spacing[0])))):
        s = reader.slice(k)
        bone = (s["smooth"] > 300) & s["body"]
        labels, n = ndi.label(bone)
        if n == 0:
            continue
        sizes = np.bincount(labels.ravel())[1:] * np.prod(spacing[1:])
        for lab in np.flatnonzero(sizes >= 600.0) + 1:
            r, c = np.argwhere(labels == lab).mean(axis=0)
            x = _lps(volume, k, r, c)[0]
            lateral = abs(x - midline_x)
            if lateral >= 70.0 and (best is None or lateral > best[0]):
                best = (lateral, k, r, c, x)
    if best is None:
        return None
    _, k, r, c, x = best
    s = reader.slice(k)
    outward = np.sign(x - midline_x) * reader.left_rc / max(np.linalg.norm(reader.left_rc),
                                                            1e-9)
    size = float(rng.uniform(25.0, 40.0))
    step = 0.0
    bone = (s["smooth"] > 300)
    rr, cc = r, c
    while step < 60.0:  # walk out of the bone, then past its cortex
        rr, cc = r + outward[0] * step / spacing[1], c + outward[1] * step / spacing[2]
        if not (0 <= int(rr) < bone.shape[0] and 0 <= int(cc) < bone.shape[1]):
            return None
        if not bone[int(rr), int(cc)] and step > 5.0:
            break
        step += 1.0
    centre_rc = (rr + outward[0] * (size / 2 + 5.0) / spacing[1],
                 cc + outward[1] * (size / 2 + 5.0) / spacing[2])
    if not s["body"][int(centre_rc[0]), int(centre_rc[1])] or \
            s["depth"][int(centre_rc[0]), int(centre_rc[1])] < size / 2 + 3.0:
        return None
    centre = _lps(volume, k, *centre_rc)
    lobes = []
    for _ in range(int(rng.integers(4, 8))):
        offset = rng.normal(0.0, size / 5, 3)
        radius = float(rng.uniform(size / 6, size / 3.5))
        lobes.append((centre + offset, np.full(3, radius), np.eye(3)))
    dep = HybridDeposit(id=ident, kind="mass", layer="periarticular",
                        side=_side(centre[0], midline_x), limb=False,
                        centroid_mm=[round(float(v), 2) for v in centre],
                        centroid_index=[round(float(v), 2) for v in (k, *centre_rc)],
                        size_mm=round(size, 1), deposit_hu=float(rng.uniform(700.0, 1000.0)))
    return dep, lobes


def _insert_mass(hu: np.ndarray, volume: Volume, dep: HybridDeposit, lobes, sigma: float
                 ) -> None:
    """Each lobe dense in its dependent (posterior) half, fluid above: fluid-calcium
    levels of a patient lying on the back."""
    for centre, axes, rot in lobes:
        occ, box = _render(volume, [(centre, axes, rot)], sigma)
        sub = hu[box]
        lo = np.array([b.start for b in box])
        grid = np.indices(occ.shape).reshape(3, -1).T + lo
        y_mm = volume.index_to_lps(grid.astype(float))[:, 1].reshape(occ.shape)
        dense = y_mm >= centre[1]  # posterior half of the lobe (LPS: +y is the back)
        level = np.where(dense, dep.deposit_hu, 60.0)
        sub += occ * (level - sub) * (sub < level)
    core = _raw_occupancy(volume, lobes, _union_box(volume, lobes, sigma)) >= 0.5
    box = _union_box(volume, lobes, sigma)
    flat = np.ravel_multi_index(np.nonzero(core), core.shape)
    dep.voxels = np.ravel_multi_index(
        tuple(np.unravel_index(flat, core.shape)[a] + box[a].start for a in range(3)),
        hu.shape)
    dep.peak_hu = float(hu.ravel()[dep.voxels].max()) if len(dep.voxels) else 0.0


def _union_box(volume: Volume, blobs, sigma: float) -> tuple[slice, ...]:
    spacing = np.asarray(volume.spacing_zyx_mm, float)
    pts = np.array([c for c, _, _ in blobs])
    reach = max(float(np.max(a)) for _, a, _ in blobs) + 3 * sigma + spacing[0]
    idx = volume.lps_to_index(pts)
    lo = np.maximum(np.floor(idx.min(axis=0) - reach / spacing).astype(int), 0)
    hi = np.minimum(np.ceil(idx.max(axis=0) + reach / spacing).astype(int) + 1,
                    volume.hu.shape)
    return tuple(slice(a, b) for a, b in zip(lo, hi))
