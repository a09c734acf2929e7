"""Anatomy of a body CT for placing lesions: midline, levels and body regions.

From the coarse tissue model: the mid-sagittal plane (fitted to spine centres, else body
centres), and craniocaudal levels found from anatomy rather than slice numbers:

* ``lung_base``: lowest level where the lungs reach 10 % of their largest cross-section
  (the diaphragm; chest above, abdomen below);
* ``carina``: lowest level of the trachea, an air tube near the midline apart from the lungs
  (chest wall below, axilla level above);
* ``sternal_notch``: top of the bone in the anterior midline (the manubrium; the shoulder
  girdle begins ``CTParams.shoulder_below_notch_mm`` below it);
* ``iliac_crest``: top of the lateral pelvic bone below the lungs (gluteal region and pelvis
  begin ``CTParams.gluteal_below_crest_mm`` below it).

Landmarks cut by the scan range are not used. The breast is not told apart from the front
of the chest wall (``chest_wall_anterior``): the sex is not known to the analysis.

The angle about the body axis (0 deg anterior, 90 deg lateral, 180 deg posterior) splits each
level into anterior, lateral and posterior regions (docs/contract.md region words).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from napari_calcinosis.summary import MidPlane, fit_midplane
from napari_calcinosis.types import CTParams, Volume

from ._tissue import Compartment, TissueModel

#: The field of view cuts the body when this share of its outline lies at an image edge.
_TRUNCATED_SHARE = 0.05


@dataclass
class Anatomy:
    """Midline, per-slice body centres and the craniocaudal levels (patient z, mm)."""

    midplane: MidPlane
    centre_lps: np.ndarray  # (coarse slices, 3) body centre of each coarse slice
    slice_z_mm: np.ndarray  # patient z of each coarse slice
    spine_lps: np.ndarray  # (coarse slices, 3) centre of the posterior midline bone or NaN
    spine_front_lps: np.ndarray  # (coarse slices, 3) front of the vertebral body or NaN
    levels: dict[str, float | None] = field(default_factory=dict)
    head_only: bool = False
    truncated: bool = False  # the body is cut by the field of view
    params: CTParams = field(default_factory=CTParams)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"midplane": self.midplane.to_dict(),
                "levels_z_mm": {k: (None if v is None else round(float(v), 2))
                                for k, v in self.levels.items()},
                "head_only": self.head_only, "truncated": self.truncated}


def _rc_axes(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """Unit (row, column) directions toward the patient's left and back (LPS x and y)."""
    d = np.asarray(volume.direction_lps, float)
    left = np.array([d[0, 1], d[0, 2]])
    back = np.array([d[1, 1], d[1, 2]])
    return left / max(np.linalg.norm(left), 1e-9), back / max(np.linalg.norm(back), 1e-9)


def _slice_points(tm: TissueModel, volume: Volume
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body centre, spine centre and front of the spine (LPS; NaN where absent) per slice.

    The spine is the bone within 30 deg of straight back from the body centre; its front is
    the mean of its most anterior tenth. Vectorised over slices.
    """
    grid = tm.grid
    fz, fy, fx = grid.factors
    nk = tm.body.shape[0]
    kz = grid.sample_slices()
    _, back = _rc_axes(volume)
    spacing = np.asarray(grid.coarse_spacing_mm[1:])
    area = tm.body.sum(axis=(1, 2)).astype(float)
    rows = np.arange(tm.body.shape[1], dtype=float)
    cols = np.arange(tm.body.shape[2], dtype=float)
    cy = tm.body.sum(axis=2) @ rows / np.maximum(area, 1)
    cx = tm.body.sum(axis=1) @ cols / np.maximum(area, 1)
    centres = _rc_to_lps(volume, kz, cy, cx, fy, fx)
    centres[area == 0] = np.nan
    spines = np.full((nk, 3), np.nan)
    fronts = np.full((nk, 3), np.nan)
    k, by, bx = np.nonzero(tm.bone & (area > 0)[:, None, None])
    rel = np.column_stack([(by - cy[k]) * spacing[0], (bx - cx[k]) * spacing[1]])
    along = rel @ back
    sector = along >= np.cos(np.radians(30.0)) * np.hypot(rel[:, 0], rel[:, 1])
    k, by, bx, along = k[sector], by[sector].astype(float), bx[sector].astype(float), \
        along[sector]
    count = np.bincount(k, minlength=nk)
    ok = count >= 3
    if ok.any():
        mean_y = np.bincount(k, by, nk) / np.maximum(count, 1)
        mean_x = np.bincount(k, bx, nk) / np.maximum(count, 1)
        spines[ok] = _rc_to_lps(volume, kz[ok], mean_y[ok], mean_x[ok], fy, fx)
        order = np.lexsort((along, k))  # by slice, most anterior first
        rank = np.arange(len(order)) - np.searchsorted(k[order], k[order])
        tenth = np.maximum(1, np.ceil(0.1 * count))
        first = rank < tenth[k[order]]
        kk = k[order][first]
        n_front = np.bincount(kk, minlength=nk)
        fy_mean = np.bincount(kk, by[order][first], nk) / np.maximum(n_front, 1)
        fx_mean = np.bincount(kk, bx[order][first], nk) / np.maximum(n_front, 1)
        fronts[ok] = _rc_to_lps(volume, kz[ok], fy_mean[ok], fx_mean[ok], fy, fx)
    return centres, spines, fronts


def _rc_to_lps(volume: Volume, k: np.ndarray, rows: np.ndarray, cols: np.ndarray, fy: int,
               fx: int) -> np.ndarray:
    """LPS of coarse (row, col) positions (block centres) in full slices ``k``."""
    idx = np.column_stack([np.asarray(k, float), np.asarray(rows) * fy + (fy - 1) / 2,
                           np.asarray(cols) * fx + (fx - 1) / 2])
    return volume.index_to_lps(idx).reshape(-1, 3)


def find_anatomy(tm: TissueModel, volume: Volume, *,
                 params: CTParams | None = None) -> Anatomy:
    """Midline plane and levels of a volume from its tissue model.

    Parameters
    ----------
    tm : TissueModel
        The coarse tissue model.
    volume : Volume
        The volume (geometry).
    params : CTParams, optional
        Region angles and level offsets, head size.
    """
    centres, spines, fronts = _slice_points(tm, volume)
    z = volume.index_to_lps(np.column_stack([tm.grid.sample_slices(),
                                             np.zeros((len(centres), 2))]))[:, 2]
    good_spine = np.all(np.isfinite(spines), axis=1)
    if good_spine.sum() >= 3:
        plane = fit_midplane(spines[good_spine], method="spine")
    else:
        plane = fit_midplane(centres[np.all(np.isfinite(centres), axis=1)], method="body",
                             fallback_x_mm=float(volume.index_to_lps(
                                 np.array(volume.shape) / 2.0)[0]))
    anatomy = Anatomy(plane, centres, z, spines, _most_anterior(fronts, z),
                      params=params or CTParams())
    _levels(anatomy, tm, volume)
    return anatomy


def _most_anterior(fronts: np.ndarray, z: np.ndarray, reach_mm: float = 20.0) -> np.ndarray:
    """Per slice, the most anterior spine front within ``reach_mm`` along z.

    In a slice through a disc only the posterior elements are bone; the vertebral bodies
    just above and below tell where the front of the spine is.
    """
    out = np.full_like(fronts, np.nan)
    good = np.all(np.isfinite(fronts), axis=1)
    for k in range(len(z)):
        near = good & (np.abs(z - z[k]) <= reach_mm)
        if near.any():
            cand = fronts[near]
            out[k] = cand[np.argmin(cand[:, 1])]
    return out


def _component_areas(mask: np.ndarray, pixel_cm2: float) -> tuple[np.ndarray, np.ndarray, int]:
    labels, n = ndi.label(mask)
    return labels, np.bincount(labels.ravel(), minlength=n + 1) * pixel_cm2, n


def _levels(anatomy: Anatomy, tm: TissueModel, volume: Volume) -> None:
    """Fill ``anatomy.levels`` (see the module docstring); ``None`` when not in the scan."""
    grid = tm.grid
    pixel_cm2 = float(np.prod(grid.coarse_spacing_mm[1:])) / 100.0
    air = tm.labels == Compartment.LUNG
    lung_area = air.reshape(len(air), -1).sum(axis=1) * pixel_cm2
    body_area = tm.body.reshape(len(air), -1).sum(axis=1) * pixel_cm2
    z = anatomy.slice_z_mm
    up = np.argsort(z)
    levels: dict[str, float | None] = {"lung_base": None, "carina": None,
                                       "sternal_notch": None, "iliac_crest": None}
    if lung_area.max() >= 20.0:
        lungs = lung_area >= 0.1 * lung_area.max()
        levels["lung_base"] = float(z[up][lungs[up]].min())
        levels["carina"] = _carina(anatomy, tm, volume, air, pixel_cm2, levels["lung_base"])
        levels["sternal_notch"] = _sternal_notch(anatomy, tm, volume, levels["lung_base"])
    anatomy.truncated = tm.cut_fraction > _TRUNCATED_SHARE
    anatomy.head_only = (levels["lung_base"] is None and not anatomy.truncated
                         and float(body_area.max()) < anatomy.params.head_max_area_cm2)
    if not anatomy.head_only:  # the skull is lateral bone too, but not a pelvis
        levels["iliac_crest"] = _iliac_crest(anatomy, tm, volume, levels["lung_base"])
    anatomy.levels = levels
    if not anatomy.head_only and levels["lung_base"] is None and levels["iliac_crest"] is None:
        anatomy.warnings.append(
            "No lungs and no pelvis in the scan: body regions cannot be placed by level"
            + (" and are given as unknown (the field of view cuts the body)."
               if anatomy.truncated else "; they follow the angle about the body only."))


def _lateral_mm(anatomy: Anatomy, tm: TissueModel, volume: Volume, k: int,
                rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    fz, fy, fx = tm.grid.factors
    kk = tm.grid.sample_slices()[k]
    idx = np.column_stack([np.full(len(rows), kk), rows * fy + (fy - 1) / 2,
                           cols * fx + (fx - 1) / 2])
    return anatomy.midplane.signed_distance(volume.index_to_lps(idx))


def _carina(anatomy, tm, volume, air, pixel_cm2, lung_base) -> float | None:
    """Lowest z of the trachea: a small air component within 20 mm of the midline."""
    found = []
    for k in range(len(air)):
        if anatomy.slice_z_mm[k] < lung_base + 50.0 or not air[k].any():
            continue
        labels, areas, n = _component_areas(air[k], pixel_cm2)
        for lab in range(1, n + 1):
            if not 0.4 <= areas[lab] <= 8.0:
                continue
            rows, cols = np.nonzero(labels == lab)
            lateral = _lateral_mm(anatomy, tm, volume, k, rows.mean(keepdims=True),
                                  cols.mean(keepdims=True))
            if abs(lateral[0]) <= 20.0:
                found.append(anatomy.slice_z_mm[k])
                break
    if not found or min(found) <= anatomy.slice_z_mm.min():
        return None  # no trachea, or it runs out of the scan: its end is not seen
    return float(min(found))


def _anterior_mm(anatomy: Anatomy, tm: TissueModel, volume: Volume, k: int,
                 rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    fz, fy, fx = tm.grid.factors
    kk = tm.grid.sample_slices()[k]
    idx = np.column_stack([np.full(len(rows), kk), rows * fy + (fy - 1) / 2,
                           cols * fx + (fx - 1) / 2])
    return -(volume.index_to_lps(idx)[:, 1] - anatomy.centre_lps[k, 1])


def _sternal_notch(anatomy, tm, volume, lung_base) -> float | None:
    """Top z of bone within 8 mm of the midline in the front half of the body."""
    found = []
    for k in range(len(tm.bone)):
        if anatomy.slice_z_mm[k] < lung_base or not tm.bone[k].any():
            continue
        rows, cols = np.nonzero(tm.bone[k])
        lateral = _lateral_mm(anatomy, tm, volume, k, rows, cols)
        front = _anterior_mm(anatomy, tm, volume, k, rows, cols)
        if np.any((np.abs(lateral) <= 8.0) & (front > 30.0)):
            found.append(anatomy.slice_z_mm[k])
    if not found or max(found) >= anatomy.slice_z_mm.max():
        return None  # no sternum, or it runs out of the scan: its top is not seen
    return float(max(found))


def _iliac_crest(anatomy, tm, volume, lung_base) -> float | None:
    """Top z of bone more than 45 mm from the midline, below the lungs (the pelvic wings)."""
    limit = np.inf if lung_base is None else lung_base - 40.0
    found = []
    for k in range(len(tm.bone)):
        if anatomy.slice_z_mm[k] >= limit or not tm.bone[k].any():
            continue
        rows, cols = np.nonzero(tm.bone[k])
        lateral = _lateral_mm(anatomy, tm, volume, k, rows, cols)
        if np.count_nonzero(np.abs(lateral) > 45.0) >= 4:
            found.append(anatomy.slice_z_mm[k])
    if not found:
        return None
    # the wings are the highest lateral bone of a run that starts at the bottom of the scan
    return float(max(found))


def angle_from_anterior_deg(anatomy: Anatomy, points_lps: np.ndarray,
                            coarse_k: np.ndarray) -> np.ndarray:
    """Angle (deg, 0..180) of points about their slice's body axis, 0 = anterior midline."""
    pts = np.atleast_2d(points_lps)
    lateral = np.abs(anatomy.midplane.signed_distance(pts))
    centre_y = anatomy.centre_lps[np.asarray(coarse_k), 1]
    anterior = -(pts[:, 1] - centre_y)
    return np.degrees(np.arctan2(lateral, anterior))


def region_of(anatomy: Anatomy, z_mm: float, phi_deg: float, *,
              separate_limb: bool = False) -> str:
    """Contract region word of a point at patient height ``z_mm`` and angle ``phi_deg``."""
    lv = anatomy.levels
    if anatomy.head_only:
        return "head_neck"
    p = anatomy.params
    lung_base, crest = lv.get("lung_base"), lv.get("iliac_crest")
    if anatomy.truncated and lung_base is None and crest is None:
        return "unknown"  # a cut-off field of view with no landmark: the level is unknown
    gluteal_top = None if crest is None else crest - p.gluteal_below_crest_mm
    if separate_limb:
        return "upper_limb" if lung_base is not None and z_mm >= lung_base else (
            "lower_limb" if gluteal_top is not None and z_mm < gluteal_top else "unknown")
    sector = ("anterior" if phi_deg < p.anterior_max_deg else
              "posterior" if phi_deg >= p.posterior_min_deg else "lateral")
    if lung_base is not None and z_mm >= lung_base:
        return _thorax_region(lv, z_mm, sector, p.shoulder_below_notch_mm)
    if gluteal_top is not None and z_mm < gluteal_top:
        return {"posterior": "gluteal", "lateral": "gluteal"}.get(sector, "pelvis")
    return {"anterior": "abdominal_wall", "lateral": "flank",
            "posterior": "lower_back"}[sector]


def _thorax_region(levels: dict, z_mm: float, sector: str, below_notch_mm: float) -> str:
    notch, carina = levels.get("sternal_notch"), levels.get("carina")
    if notch is not None and z_mm >= notch - below_notch_mm:
        return "shoulder_girdle" if sector != "anterior" or z_mm >= notch else \
            "chest_wall_anterior"
    if sector == "lateral" and carina is not None and z_mm >= carina:
        return "axilla"
    return "chest_wall_" + sector
