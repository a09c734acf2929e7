"""The mid-sagittal plane, mirrored partners and the symmetry index of a lesion set.

The plane is fitted to per-slice midline points (spine and body centres) in DICOM LPS mm;
its normal points to the patient's left (+x), so a positive signed distance is the left side.
Lesions carry their position relative to the plane in ``Lesion.extra["midplane_mm"]``:
``[d, u, v, ...]`` with ``d`` the signed distance (mm, + patient left) and ``u, v, ...`` the
coordinates of the foot point on the plane. A radiograph detector can fill the same field
(``[d, u]``) to get partner matching there too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_calcinosis.types import CTParams, Lesion, Symmetry

_BURDEN_KEYS = ("volume_mm3", "area_mm2")


@dataclass(frozen=True)
class MidPlane:
    """A plane ``n . (p - point) = 0`` in LPS mm with ``n`` toward the patient's left."""

    point_lps_mm: tuple[float, float, float]
    normal_lps: tuple[float, float, float]
    method: str = "fixed"
    n_points: int = 0
    rms_mm: float = 0.0

    def signed_distance(self, points_lps_mm: np.ndarray) -> np.ndarray:
        """Signed distance (mm, + patient left) of points ``(..., 3)`` from the plane."""
        rel = np.asarray(points_lps_mm, dtype=float) - np.asarray(self.point_lps_mm)
        return rel @ np.asarray(self.normal_lps)

    def mirror(self, points_lps_mm: np.ndarray) -> np.ndarray:
        """Mirror images of points ``(..., 3)`` about the plane."""
        pts = np.asarray(points_lps_mm, dtype=float)
        dist = self.signed_distance(pts)
        return pts - 2.0 * dist[..., None] * np.asarray(self.normal_lps)

    def frame(self, points_lps_mm: np.ndarray) -> np.ndarray:
        """``(n, 4)`` rows ``[d, foot_x, foot_y, foot_z]`` for ``extra["midplane_mm"]``."""
        pts = np.atleast_2d(np.asarray(points_lps_mm, dtype=float))
        dist = self.signed_distance(pts)
        foot = pts - dist[:, None] * np.asarray(self.normal_lps)
        return np.column_stack([dist, foot])

    def to_dict(self) -> dict[str, Any]:
        return {"point_lps_mm": [float(v) for v in self.point_lps_mm],
                "normal_lps": [float(v) for v in self.normal_lps],
                "method": self.method, "n_points": self.n_points,
                "rms_mm": float(self.rms_mm)}


def fit_midplane(points_lps_mm: np.ndarray, *, method: str = "spine",
                 fallback_x_mm: float = 0.0) -> MidPlane:
    """Fit the mid-sagittal plane ``x = a + b*y + c*z`` (LPS) to midline points, robustly.

    Parameters
    ----------
    points_lps_mm : numpy.ndarray
        ``(n, 3)`` points that lie on the midline (e.g. spine and body centres per slice).
    method : str
        Name recorded in the result.
    fallback_x_mm : float
        Plane ``x = fallback_x_mm`` used when there are no points.

    Returns
    -------
    MidPlane
        The plane; the AP tilt ``b`` is fitted only when the points spread >= 30 mm in y and
        the craniocaudal tilt ``c`` only when they spread >= 20 mm in z.
    """
    pts = np.asarray(points_lps_mm, dtype=float).reshape(-1, 3)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) == 0:
        return MidPlane((fallback_x_mm, 0.0, 0.0), (1.0, 0.0, 0.0), method="fallback")
    cols = [np.ones(len(pts))]
    use_y = np.ptp(pts[:, 1]) >= 30.0
    use_z = np.ptp(pts[:, 2]) >= 20.0
    if use_y:
        cols.append(pts[:, 1])
    if use_z:
        cols.append(pts[:, 2])
    design = np.column_stack(cols)
    keep = np.ones(len(pts), dtype=bool)
    for _ in range(4):  # trimmed least squares: drop points far off the plane
        coef, *_ = np.linalg.lstsq(design[keep], pts[keep, 0], rcond=None)
        resid = pts[:, 0] - design @ coef
        spread = 1.4826 * np.median(np.abs(resid[keep])) + 1.0
        new_keep = np.abs(resid) <= 3.0 * spread
        if new_keep.sum() < max(1, design.shape[1]) or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    b = coef[1] if use_y else 0.0
    c = coef[1 + int(use_y)] if use_z else 0.0
    normal = np.array([1.0, -b, -c])
    normal /= np.linalg.norm(normal)
    centre = pts[keep].mean(axis=0)
    point = np.array([coef[0] + b * centre[1] + c * centre[2], centre[1], centre[2]])
    rms = float(np.sqrt(np.mean(resid[keep] ** 2)))
    return MidPlane(tuple(point), tuple(normal), method=method, n_points=int(keep.sum()),
                    rms_mm=rms)


def lesion_burden(lesion: Lesion, kind: str = "volume") -> float:
    """Burden of one lesion: 1 for ``kind="count"``; else volume (CT), area, or 1."""
    if kind == "count":
        return 1.0
    for key in _BURDEN_KEYS:
        value = getattr(lesion, key)
        if value is not None and value > 0:
            return float(value)
    return 1.0


def symmetry_index(left: float, right: float) -> float | None:
    """``SI = 1 - |L - R| / (L + R)`` (``None`` when both are zero)."""
    total = left + right
    if total <= 0:
        return None
    return 1.0 - abs(left - right) / total


def matched_fraction(lesions: Sequence[Lesion], *, partner_mm: float) -> float | None:
    """Share of left/right lesions whose mirror image has a partner on the other side.

    Uses ``extra["midplane_mm"]``; ``None`` when no lateral lesion carries it.
    """
    lateral = [les for les in lesions if les.side in ("left", "right")
               and les.extra.get("midplane_mm") is not None]
    if not lateral:
        return None
    frame = np.array([les.extra["midplane_mm"] for les in lateral], dtype=float)
    dist, foot = frame[:, 0], frame[:, 1:]
    left = dist > 0
    matched = 0
    for i in range(len(lateral)):
        other = left != left[i]
        if not other.any():
            continue
        # |p_i - mirror(p_j)|^2 = (d_i + d_j)^2 + |foot_i - foot_j|^2
        gap2 = (dist[i] + dist[other]) ** 2 + np.sum((foot[other] - foot[i]) ** 2, axis=1)
        matched += bool(np.min(gap2) <= partner_mm ** 2)
    return matched / len(lateral)


def _pairs_for_call(by_region: dict[str, dict[str, Any]], min_pair: int
                    ) -> list[dict[str, Any]]:
    """Region pairs the call weighs: those with at least ``min_pair`` lateral deposits, and
    the smaller ones pooled into one pair (one deposit against two says nothing)."""
    big, pooled = [], {"left_burden": 0.0, "right_burden": 0.0, "count": 0}
    for entry in by_region.values():
        count = entry["left_count"] + entry["right_count"]
        if count >= min_pair:
            big.append(entry)
            continue
        pooled["left_burden"] += entry["left_burden"]
        pooled["right_burden"] += entry["right_burden"]
        pooled["count"] += count
    if pooled["count"] and (pooled["count"] >= min_pair or not big):
        big.append(pooled)
    return big


def assess_symmetry(lesions: Sequence[Lesion], *, params: CTParams | None = None) -> Symmetry:
    """Symmetry of soft-tissue lesions: SI per region pair, partner share and the call.

    Parameters
    ----------
    lesions : sequence of Lesion
        Soft-tissue lesions only (the caller filters).
    params : CTParams, optional
        ``symmetry_si_cut``, ``symmetry_pair_fraction``, ``symmetry_min_deposits`` and
        ``symmetry_partner_mm`` and ``symmetry_burden``.

    Returns
    -------
    findings.Symmetry
        ``index`` is the burden-weighted mean SI of the involved region pairs; midline lesions
        belong to both sides and are left out of the pairs. Pairs with fewer than
        ``symmetry_min_pair`` deposits are pooled into one pair for the index and the call
        (a small pooled remainder is left out when larger pairs exist). ``by_region`` holds,
        per region,
        the left and right burden (count or volume, per ``symmetry_burden``), counts,
        volumes and SI.
    """
    params = params or CTParams()
    by_region: dict[str, dict[str, Any]] = {}
    for les in lesions:
        if les.side not in ("left", "right"):
            continue
        entry = by_region.setdefault(les.region, {"left_burden": 0.0, "right_burden": 0.0,
                                                  "left_count": 0, "right_count": 0,
                                                  "left_volume": 0.0, "right_volume": 0.0})
        entry[f"{les.side}_burden"] += lesion_burden(les, params.symmetry_burden)
        entry[f"{les.side}_count"] += 1
        entry[f"{les.side}_volume"] += lesion_burden(les, "volume")
    weights, indices = [], []
    for entry in _pairs_for_call(by_region, params.symmetry_min_pair):
        si = symmetry_index(entry["left_burden"], entry["right_burden"])
        weights.append(entry["left_burden"] + entry["right_burden"])
        indices.append(si)
    for entry in by_region.values():
        entry["index"] = symmetry_index(entry["left_burden"], entry["right_burden"])
    index = float(np.average(indices, weights=weights)) if indices else None
    fraction = matched_fraction(lesions, partner_mm=params.symmetry_partner_mm)
    if len(lesions) < params.symmetry_min_deposits or not indices:
        call = "insufficient"
    else:
        n_sym = sum(si >= params.symmetry_si_cut for si in indices)
        call = ("symmetric" if n_sym >= params.symmetry_pair_fraction * len(indices) - 1e-9
                else "asymmetric")
    return Symmetry(index=None if index is None else round(index, 4), call=call,
                    matched_fraction=None if fraction is None else round(fraction, 4),
                    by_region=by_region)
