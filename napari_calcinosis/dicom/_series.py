"""Cross-sectional series: split, sort along the slice normal, check geometry, build a Volume.

The slice order and spacing come from the positions (ImagePositionPatient projected on the
slice normal, row cosines x column cosines), never from InstanceNumber, file names or
SliceThickness. Positions are fitted by ``p_k = origin + index_k * step``, so a gantry tilt
(sheared positions) ends up in the affine exactly, and a gap that is a whole number of slices
is filled with blank padding slices so every slice keeps its true position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_calcinosis.types import Progress, Volume

from ._header import Frame, is_localizer, series_info
from ._pixels import read_stack, to_hu

DUPLICATE_TOLERANCE_MM = 0.01
REGULAR_TOLERANCE = 0.2  # of the slice step: a position further off means uneven spacing
TILT_WARNING_DEG = 0.05
MAX_FILL_FACTOR = 4  # never pad a series to more than this many times its real slices
MAX_LISTED = 3  # beyond this many duplicates, one summary warning


@dataclass
class StackPlan:
    """Where each frame goes and the geometry of the resulting grid."""

    slots: list[Frame | None]
    origin_lps_mm: np.ndarray
    direction_lps: np.ndarray
    spacing_zyx_mm: tuple[float, float, float]
    gantry_tilt_deg: float = 0.0
    warnings: list[str] = field(default_factory=list)


def series_label(frame: Frame) -> str:
    """How messages name the series of a frame."""
    ds = frame.header.ds
    parts = [str(ds.get("Modality", "") or "?"), "series"]
    if ds.get("SeriesNumber") not in (None, ""):
        parts.append(str(ds.SeriesNumber))
    if ds.get("SeriesDescription"):
        parts.append(f"'{ds.SeriesDescription}'")
    return " ".join(parts)


def split_stacks(frames: list[Frame]) -> tuple[list[list[Frame]], list[Frame], list[str]]:
    """Split one series' frames into stackable groups; also return localizers and warnings.

    Frames stack together when they share size, orientation, pixel spacing and pixel type.
    A frame whose ImageType says LOCALIZER, or a lone frame orthogonal to the main stack, is a
    localizer (scout) and is returned separately.
    """
    localizers = [f for f in frames if is_localizer(f.header.ds)]
    rest = [f for f in frames if not is_localizer(f.header.ds)]
    groups: list[list[Frame]] = []
    for frame in rest:
        home = next((g for g in groups if g[0].stacks_with(frame)), None)
        if home is None:
            groups.append([frame])
        else:
            home.append(frame)
    stacks = sorted(groups, key=len, reverse=True)
    warnings: list[str] = []
    if len(stacks) > 1 and stacks[0][0].orientation is not None:
        main_normal = stacks[0][0].normal
        lone = [s for s in stacks[1:] if len(s) == 1 and s[0].orientation is not None
                and abs(float(s[0].normal @ main_normal)) < 0.5]
        localizers += [s[0] for s in lone]
        stacks = [s for s in stacks if not any(s is lo for lo in lone)]
    if len(stacks) > 1:
        sizes = ", ".join(f"{len(s)} x {s[0].rows}x{s[0].columns}" for s in stacks)
        warnings.append(
            f"{series_label(stacks[0][0])} mixes image orientations, sizes or pixel "
            f"spacings: split into {len(stacks)} stacks ({sizes})"
        )
    return stacks, localizers, warnings


def _instance(frame: Frame) -> float:
    try:
        number = float(frame.header.ds.get("InstanceNumber") or 0)
    except (TypeError, ValueError):
        return 0.0
    return number + frame.index * 1e-6 if np.isfinite(number) else 0.0


def _where(frame: Frame) -> str:
    name = frame.header.name
    if frame.header.ds.get("NumberOfFrames") is None:
        return name
    return f"{name} frame {frame.index + 1}"


def _drop_duplicates(frames: list[Frame], depth: np.ndarray, label: str,
                     warnings: list[str]) -> tuple[list[Frame], np.ndarray]:
    keep, dropped = [0], []
    for k in range(1, len(frames)):
        if abs(depth[k] - depth[keep[-1]]) < DUPLICATE_TOLERANCE_MM:
            dropped.append((keep[-1], k))
        else:
            keep.append(k)
    if len(dropped) > MAX_LISTED:
        (kept, first), count = dropped[0], len(dropped)
        warnings.append(
            f"{label}: {count} duplicate slice positions (several acquisitions in one "
            f"series?); kept the lowest InstanceNumber at each, e.g. kept {_where(frames[kept])}"
            f", dropped {_where(frames[first])} at {depth[first]:.2f} mm along the normal"
        )
    else:
        warnings.extend(
            f"{label}: duplicate slice position {depth[k]:.2f} mm along the normal: kept "
            f"{_where(frames[kept])}, dropped {_where(frames[k])}" for kept, k in dropped
        )
    return [frames[k] for k in keep], depth[keep]


def _single_slice_step(frame: Frame) -> float:
    ds = frame.header.ds
    for key in ("SpacingBetweenSlices", "SliceThickness"):
        try:
            value = float(ds.get(key))
        except (TypeError, ValueError):
            continue
        if 0 < value <= 1000.0:  # a real slice step (inf and 1e308 are not)
            return value
    return 1.0


def _grid_indices(depth: np.ndarray, label: str, frames: list[Frame],
                  warnings: list[str]) -> np.ndarray:
    """Integer slot of each slice: gaps of whole slices keep their slots, else 0..n-1."""
    steps = np.diff(depth)
    step = float(np.median(steps))
    index = np.rint((depth - depth[0]) / step).astype(int)
    residual = np.abs(depth - depth[0] - index * step)
    regular = (residual.max() <= REGULAR_TOLERANCE * step and len(set(index)) == len(index)
               and index[-1] < MAX_FILL_FACTOR * len(index))
    if regular:
        for k in np.flatnonzero(np.diff(index) > 1):
            missing = int(index[k + 1] - index[k] - 1)
            warnings.append(
                f"{label}: gap of {steps[k]:.2f} mm ({missing} missing slice"
                f"{'s' if missing > 1 else ''}) between {_where(frames[k])} and "
                f"{_where(frames[k + 1])} at {depth[k]:.2f} to {depth[k + 1]:.2f} mm along "
                f"the normal; filled with blank (padding) slices"
            )
        return index
    worst = int(np.argmax(np.abs(steps - step)))
    warnings.append(
        f"{label}: uneven slice spacing, steps from {steps.min():.2f} to {steps.max():.2f} mm "
        f"(median {step:.2f}); the largest departure is between {_where(frames[worst])} and "
        f"{_where(frames[worst + 1])}; the volume uses an average spacing, so positions are "
        f"approximate"
    )
    return np.arange(len(depth))


def plan_stack(frames: list[Frame]) -> StackPlan:
    """Sort frames along the slice normal and derive the grid geometry (see module doc)."""
    label = series_label(frames[0])
    warnings: list[str] = []
    first = frames[0]
    if first.orientation is None or any(f.position is None for f in frames):
        return _plan_without_geometry(frames, label)
    normal = first.normal
    depth = np.array([f.position @ normal for f in frames])
    order = np.lexsort((np.array([_instance(f) for f in frames]), depth))
    frames, depth = [frames[k] for k in order], depth[order]
    frames, depth = _drop_duplicates(frames, depth, label, warnings)
    row_mm, col_mm = first.pixel_spacing or (1.0, 1.0)
    if first.pixel_spacing is None:
        warnings.append(f"{label}: no valid PixelSpacing; in-plane measurements are in pixels")
    direction = np.column_stack([normal, first.orientation[3:], first.orientation[:3]])
    if len(frames) == 1:
        return StackPlan(frames, first.position.copy(), direction,
                         (_single_slice_step(first), row_mm, col_mm), 0.0, warnings)
    index = _grid_indices(depth, label, frames, warnings)
    design = np.column_stack([np.ones(len(index)), index])
    fit = np.linalg.lstsq(design, np.array([f.position for f in frames]), rcond=None)[0]
    origin, step = fit[0], fit[1]
    direction[:, 0] = step / np.linalg.norm(step)
    tilt = float(np.degrees(np.arccos(np.clip(direction[:, 0] @ normal, -1.0, 1.0))))
    _warn_tilt(first, tilt, label, warnings)
    slots: list[Frame | None] = [None] * (int(index[-1]) + 1)
    for k, frame in zip(index, frames):
        slots[int(k)] = frame
    return StackPlan(slots, origin, direction,
                     (float(np.linalg.norm(step)), row_mm, col_mm), tilt, warnings)


def _warn_tilt(frame: Frame, tilt: float, label: str, warnings: list[str]) -> None:
    try:
        stated = float(frame.header.ds.get("GantryDetectorTilt") or 0.0)
    except (TypeError, ValueError):
        stated = 0.0
    if tilt > TILT_WARNING_DEG or abs(stated) > TILT_WARNING_DEG:
        warnings.append(
            f"{label}: gantry tilt (GantryDetectorTilt {stated:g} deg; slice positions "
            f"sheared by {tilt:.2f} deg from the slice normal); the volume keeps the shear in "
            f"its affine, so patient coordinates stay exact but the grid is not orthogonal"
        )


def _plan_without_geometry(frames: list[Frame], label: str) -> StackPlan:
    frames = sorted(frames, key=_instance)
    row_mm, col_mm = frames[0].pixel_spacing or (1.0, 1.0)
    warning = (f"{label}: no ImagePositionPatient/ImageOrientationPatient; slices ordered by "
               f"InstanceNumber and patient coordinates are unknown (identity geometry)")
    return StackPlan(list(frames), np.zeros(3), np.eye(3),
                     (_single_slice_step(frames[0]), row_mm, col_mm), 0.0, [warning])


def build_volume(frames: list[Frame], *, padding_value_hu: float = -1024.0,
                 progress: Progress | None = None) -> Volume:
    """Decode one stack of frames into a :class:`~napari_calcinosis.types.model.Volume`.

    Parameters
    ----------
    frames : list of Frame
        Frames of one stack (same size and orientation), in any order.
    padding_value_hu : float
        Value given to padding voxels and to blank slices that fill gaps.
    progress : callable, optional
        ``progress(fraction, message)`` while files are read.

    Returns
    -------
    Volume
        With warnings for duplicates, gaps, uneven spacing, tilt and unreadable slices.
    """
    plan = plan_stack(frames)
    stack = read_stack(plan.slots, progress=progress)
    hu, mask = to_hu(stack, plan.slots, padding_value_hu=padding_value_hu)
    label = series_label(frames[0])
    warnings = plan.warnings + [f"{label}: {msg}; slice {k} left blank (padding)"
                                for k, msg in sorted(stack.failed.items())]
    present = [f for f in plan.slots if f is not None]
    ds = present[0].header.ds
    info = series_info(ds)
    if not info.modality:  # one slice without Modality does not decide for the series
        stated = [str(f.header.ds.get("Modality", "") or "").strip() for f in present]
        stated = [m for m in stated if m]
        if stated:
            info.modality = max(set(stated), key=stated.count)
    return Volume(
        hu=hu, spacing_zyx_mm=plan.spacing_zyx_mm, origin_lps_mm=plan.origin_lps_mm,
        direction_lps=plan.direction_lps, info=info, padding_mask=mask,
        padding_value_hu=padding_value_hu,
        sop_instance_uids=[str(f.header.ds.get("SOPInstanceUID", "")) if f else ""
                           for f in plan.slots],
        files=[Path(f.header.name) if f else None for f in plan.slots],
        headers=[f.header.ds if f else None for f in plan.slots],
        warnings=warnings, gantry_tilt_deg=plan.gantry_tilt_deg,
    )
