"""Binary morphology of coarse masks, slice by slice (internal to the CT tissue model).

Dilation and erosion by boxes as shifted boolean views (an order of magnitude faster than
``scipy.ndimage`` rank filters on these masks), hole filling of every slice with one
labelling, and in-plane distance transforms in mm.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import convex_hull_image

__all__ = ["convex_hull", "dilate_inplane", "erode_inplane", "fill_holes_2d"]


def bbox_inplane(mask: np.ndarray):
    """Slices of the in-plane bounding box of a stack's mask, one pixel wider (or None)."""
    rows = np.flatnonzero(mask.any(axis=(0, 2)))
    cols = np.flatnonzero(mask.any(axis=(0, 1)))
    if len(rows) == 0:
        return None
    return (slice(None), slice(max(rows[0] - 1, 0), rows[-1] + 2),
            slice(max(cols[0] - 1, 0), cols[-1] + 2))


def erode_inplane(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Erosion of every slice by ``pixels`` (a square, separable); the image border counts as
    inside the mask (a cut-off field of view is not an edge of the body)."""
    if pixels <= 0:
        return mask.copy()
    return _square_filter(mask, (0, pixels, pixels), dilate=False)


def dilate_inplane(mask: np.ndarray, pixels: int = 1, *, depth: int = 0) -> np.ndarray:
    """Dilation by ``pixels`` in-plane (a square) and ``depth`` slices (separable)."""
    return _square_filter(mask, (depth, pixels, pixels), dilate=True)


def _square_filter(mask: np.ndarray, radii_zyx: tuple[int, int, int], *,
                   dilate: bool) -> np.ndarray:
    """Binary dilation or erosion by a box, as repeated one-voxel shifts along each axis.

    The same result as ``scipy.ndimage.maximum_filter`` / ``minimum_filter`` of the box
    (outside the array counts as empty when dilating and as set when eroding), an order of
    magnitude faster on boolean masks: each step is two in-place ``|=`` or ``&=`` of
    shifted views.
    """
    out = np.array(mask, dtype=bool, copy=True)
    radii = radii_zyx[-out.ndim:]
    for axis, radius in enumerate(radii):
        head = [slice(None)] * out.ndim
        tail = [slice(None)] * out.ndim
        head[axis], tail[axis] = slice(1, None), slice(None, -1)
        head_t, tail_t = tuple(head), tuple(tail)
        for _ in range(radius):
            src = out.copy()
            if dilate:
                out[head_t] |= src[tail_t]
                out[tail_t] |= src[head_t]
            else:
                out[head_t] &= src[tail_t]
                out[tail_t] &= src[head_t]
    return out


def edt_mm(mask: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Distance (mm) of mask pixels to the nearest non-mask pixel; inf when there is none."""
    if mask.all():
        return np.full(mask.shape, np.inf, np.float32)
    return ndi.distance_transform_edt(mask, sampling=spacing).astype(np.float32)


PLANE_4 = np.zeros((3, 3, 3), bool)
PLANE_4[1, 1, :] = PLANE_4[1, :, 1] = True  # 4-connected within a slice, nothing across


def fill_holes_2d(mask: np.ndarray) -> np.ndarray:
    """``binary_fill_holes`` of every slice (2-D) with one labelling of the background.

    Works on a 2-D mask or on a stack of slices at once; holes are background regions of a
    slice that do not reach its edge.
    """
    stack = mask[None] if mask.ndim == 2 else mask
    labels, n = ndi.label(~stack, structure=PLANE_4)
    if n == 0:
        return mask.copy()
    outer = np.zeros(n + 1, bool)
    for edge in (labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]):
        outer[edge] = True
    outer[0] = True
    filled = ~outer[labels] | stack
    return filled[0] if mask.ndim == 2 else filled


def convex_hull(mask: np.ndarray) -> np.ndarray:
    """``skimage.morphology.convex_hull_image`` of a non-empty mask, computed on the mask's
    bounding box (the hull lies inside it) and placed back: the point-in-polygon test runs
    over the box only (the same pixels as on the whole slice on 2480 random
    masks and every lung slice of the test volumes)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    out = np.zeros(mask.shape, bool)
    out[box] = convex_hull_image(mask[box])
    return out
