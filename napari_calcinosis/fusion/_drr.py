"""A parallel-projection digitally reconstructed radiograph (DRR) of a CT, for registration.

The CT is turned into linear attenuation, summed along the patient's antero-posterior axis
and resampled onto a square grid laid out like the frontal radiograph on screen: the grid's
rows run along the radiograph's row direction and its columns along the column direction,
both taken from ``Radiograph.patient_orientation`` (``('L', 'F')``: columns toward the
patient's left, rows toward the feet). A grid pixel ``(i, j)`` is the plane point
``v = v0_mm + i * step_mm`` (along the row direction), ``u = u0_mm + j * step_mm`` (along the
column direction), where ``v = P . row_direction_lps`` and ``u = P . column_direction_lps`` for
a patient point ``P`` (LPS mm).

Only the body is projected (the largest connected part of the CT above ``body_threshold_hu``,
or the mask the CT analysis found), so the table and cushions do not show up on the DRR as
they would not on the radiograph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from napari_calcinosis.types import AnalysisError, Volume

__all__ = ["DRR", "MU_WATER_PER_MM", "display_axes", "hu_to_mu", "make_drr"]

MU_WATER_PER_MM = 0.02  # water at about 60 keV, a chest radiograph's effective energy
#: Above water, bone attenuates relatively more at radiograph energies than at CT energies
#: (calcium's photoelectric share): the usual bilinear HU -> attenuation conversion.
_BONE_SLOPE = 1.5
_LETTERS = {"L": (1.0, 0.0, 0.0), "R": (-1.0, 0.0, 0.0), "P": (0.0, 1.0, 0.0),
            "A": (0.0, -1.0, 0.0), "H": (0.0, 0.0, 1.0), "F": (0.0, 0.0, -1.0)}
_MAX_AP_TILT_COS = 0.95  # the summed voxel axis must lie within ~18 degrees of antero-posterior


@dataclass
class DRR:
    """A DRR on a square grid in the radiograph's display orientation (module docstring).

    Attributes
    ----------
    image : numpy.ndarray
        ``float32`` (rows, cols): attenuation line integrals (dimensionless), 0 off the body.
    footprint : numpy.ndarray
        Boolean (rows, cols): where the CT's field of view projects.
    v0_mm, u0_mm : float
        Plane coordinates of grid pixel ``(0, 0)`` along the row and column directions.
    step_mm : float
        Grid spacing.
    row_direction_lps, column_direction_lps : numpy.ndarray
        Unit LPS vectors of increasing row and column.
    depth_lps_mm : tuple of float
        Extent of the body along the antero-posterior axis (LPS y, anterior first).
    """

    image: np.ndarray
    footprint: np.ndarray
    v0_mm: float
    u0_mm: float
    step_mm: float
    row_direction_lps: np.ndarray
    column_direction_lps: np.ndarray
    depth_lps_mm: tuple[float, float]


def display_axes(patient_orientation: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """Unit LPS directions of increasing row and column for a frontal PatientOrientation.

    Parameters
    ----------
    patient_orientation : tuple of str
        The file's PatientOrientation: direction of increasing column, then of increasing row.
        Only the main (first) letter of each is used.

    Returns
    -------
    (row_direction_lps, column_direction_lps) or None
        ``None`` when the orientation is absent or not a frontal one (columns along L/R, rows
        along H/F).
    """
    if len(patient_orientation) != 2:
        return None
    col_letter, row_letter = (str(p).strip().upper()[:1] for p in patient_orientation)
    if col_letter not in ("L", "R") or row_letter not in ("H", "F"):
        return None
    return np.array(_LETTERS[row_letter]), np.array(_LETTERS[col_letter])


def hu_to_mu(hu: np.ndarray) -> np.ndarray:
    """Linear attenuation (1/mm) at a chest radiograph's energy from CT numbers (bilinear)."""
    hu = np.asarray(hu, dtype=np.float32)
    slope = np.where(hu > 0, np.float32(_BONE_SLOPE), np.float32(1.0))
    return np.float32(MU_WATER_PER_MM) * np.clip(1.0 + slope * hu / np.float32(1000.0), 0.0,
                                                 None)


def make_drr(volume: Volume, row_direction_lps: np.ndarray, column_direction_lps: np.ndarray,
             *, step_mm: float | tuple[float, ...], body_mask: np.ndarray | None = None,
             body_threshold_hu: float = -400.0) -> DRR | list[DRR]:
    """Project a CT along the antero-posterior axis onto a grid in display orientation.

    Parameters
    ----------
    volume : Volume
        The CT (HU, spacing, origin and direction cosines).
    row_direction_lps, column_direction_lps : numpy.ndarray
        Unit LPS directions of the radiograph's rows and columns (:func:`display_axes`).
    step_mm : float or tuple of float
        Pixel size of the DRR grid; a tuple gives one DRR per step from one projection.
    body_mask : numpy.ndarray, optional
        Boolean ``(z, y, x)`` body of the CT (e.g. the CT analysis' tissue labels > 0);
        found here by threshold and largest component when omitted.
    body_threshold_hu : float
        Threshold of that fallback body mask.

    Returns
    -------
    DRR or list of DRR
        One per step when ``step_mm`` is a tuple.

    Raises
    ------
    AnalysisError
        When no voxel axis of the CT runs within about 18 degrees of antero-posterior.
    """
    axis = _ap_axis(volume)
    mask = _body(volume, body_threshold_hu) if body_mask is None else body_mask.astype(bool)
    spacing = np.asarray(volume.spacing_zyx_mm, dtype=float)
    mu = hu_to_mu(volume.hu)
    mu *= mask
    line = mu.sum(axis=axis, dtype=np.float32) * np.float32(spacing[axis])
    del mu
    plane = _plane_affine(volume, axis, row_direction_lps, column_direction_lps)
    depth = _depth_extent(volume, mask, axis)
    axes = (np.asarray(row_direction_lps, float), np.asarray(column_direction_lps, float))
    steps = step_mm if isinstance(step_mm, tuple) else (step_mm,)
    drrs = [_on_grid(line, plane, float(step), axes, depth) for step in steps]
    return drrs if isinstance(step_mm, tuple) else drrs[0]


def _on_grid(line: np.ndarray, plane, step_mm: float, axes, depth) -> DRR:
    """The projected CT resampled onto a square ``step_mm`` grid (anti-aliased)."""
    v_range, u_range = _plane_extent(plane, line.shape)
    shape = (int(np.ceil((v_range[1] - v_range[0]) / step_mm)) + 1,
             int(np.ceil((u_range[1] - u_range[0]) / step_mm)) + 1)
    # Pixel (i, j) of the DRR -> fractional (a, b) index of the projected CT plane.
    lin, offset = plane
    inverse = np.linalg.inv(lin)
    matrix = inverse * step_mm
    start = inverse @ (np.array([v_range[0], u_range[0]]) - offset)
    smooth = ndimage.gaussian_filter(line, _antialias_sigma(lin, step_mm))
    image = ndimage.affine_transform(smooth, matrix, start, output_shape=shape, order=1,
                                     mode="constant", cval=0.0)
    inside = ndimage.affine_transform(np.ones(line.shape, np.float32), matrix, start,
                                      output_shape=shape, order=1, mode="constant", cval=0.0)
    return DRR(image.astype(np.float32), inside > 0.5, float(v_range[0]), float(u_range[0]),
               step_mm, axes[0], axes[1], depth)


def _ap_axis(volume: Volume) -> int:
    cosines = np.abs(np.asarray(volume.direction_lps, float)[1, :])
    axis = int(np.argmax(cosines))
    if cosines[axis] < _MAX_AP_TILT_COS:
        raise AnalysisError(f"the CT series {volume.info.series_instance_uid} is oblique to the "
                            "patient's antero-posterior axis, so it cannot be projected like a "
                            "frontal radiograph")
    return axis


def _body(volume: Volume, threshold_hu: float) -> np.ndarray:
    above = volume.hu > threshold_hu
    labels, count = ndimage.label(above)
    if count == 0:
        return above
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def _plane_affine(volume: Volume, axis: int, row_dir: np.ndarray,
                  col_dir: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(v, u) = lin @ (a, b) + offset for the two kept voxel axes, at mid-depth."""
    spacing = np.asarray(volume.spacing_zyx_mm, dtype=float)
    direction = np.asarray(volume.direction_lps, dtype=float)
    kept = [k for k in range(3) if k != axis]
    axes = np.stack([np.asarray(row_dir, float), np.asarray(col_dir, float)])
    lin = axes @ (direction[:, kept] * spacing[kept])
    mid = np.zeros(3)
    mid[axis] = (volume.hu.shape[axis] - 1) / 2.0
    offset = axes @ volume.index_to_lps(mid)
    return lin, offset


def _plane_extent(plane, shape) -> tuple[tuple[float, float], tuple[float, float]]:
    lin, offset = plane
    corners = np.array([[a, b] for a in (0, shape[0] - 1) for b in (0, shape[1] - 1)], float)
    vu = corners @ lin.T + offset
    return (vu[:, 0].min(), vu[:, 0].max()), (vu[:, 1].min(), vu[:, 1].max())


def _antialias_sigma(lin: np.ndarray, step_mm: float) -> tuple[float, float]:
    """Gaussian sigma (CT pixels) per kept axis that limits the band to the DRR grid's."""
    voxel_mm = np.linalg.norm(lin, axis=0)
    return tuple(float(max(0.0, 0.5 * (step_mm / v - 1.0))) for v in voxel_mm)


def _depth_extent(volume: Volume, mask: np.ndarray, axis: int) -> tuple[float, float]:
    """Antero-posterior extent (LPS y, mm) of the body mask."""
    other = tuple(k for k in range(3) if k != axis)
    present = np.flatnonzero(mask.any(axis=other))
    if present.size == 0:
        return (0.0, 0.0)
    ends = np.zeros((2, 3))
    ends[:, axis] = present[[0, -1]]
    ys = volume.index_to_lps(ends)[:, 1]
    return float(ys.min()), float(ys.max())
