"""Partial-volume rendering of ellipsoids and tubes into a CT grid (internal to the phantom).

Every object is rendered by sampling it at sub-positions of each voxel: several positions
across the slice thickness (a rectangular slice-sensitivity profile of width
``thickness_mm`` centred on the slice position) and, for small objects, several positions
per pixel in-plane. The fraction of samples inside the object is its occupancy of the voxel;
the voxel becomes ``hu * (1 - occupancy) + occupancy * object_hu``. Edges of large objects
are softened over one sample spacing instead of supersampling them.

Coordinates are DICOM LPS millimetres; a :class:`VoxelGrid` maps them to ``(z, y, x)``
indices of an axial volume (slices ascending toward the head, rows toward posterior, columns
toward the patient's left).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class VoxelGrid:
    """Axial voxel grid: slice centres ``z_mm`` and pixel centres ``y_mm``/``x_mm``."""

    z_mm: np.ndarray
    y_mm: np.ndarray
    x_mm: np.ndarray
    thickness_mm: float

    @property
    def pixel_mm(self) -> float:
        return float(self.x_mm[1] - self.x_mm[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.z_mm.size, self.y_mm.size, self.x_mm.size)

    def slab_range(self, z_lo: float, z_hi: float) -> tuple[int, int]:
        """Slices whose slab ``[z - T/2, z + T/2]`` meets ``[z_lo, z_hi]`` (half-open)."""
        half = self.thickness_mm / 2
        k0 = int(np.searchsorted(self.z_mm + half, z_lo, side="left"))
        k1 = int(np.searchsorted(self.z_mm - half, z_hi, side="right"))
        return k0, k1

    def axis_range(self, axis: np.ndarray, lo: float, hi: float) -> tuple[int, int]:
        step = float(axis[1] - axis[0])
        i0 = int(np.clip(np.floor((lo - axis[0]) / step), 0, axis.size))
        i1 = int(np.clip(np.ceil((hi - axis[0]) / step) + 1, 0, axis.size))
        return i0, i1


@dataclass
class Ellipsoid:
    """A solid ellipsoid, optionally with a denser shell (bone cortex)."""

    center_mm: np.ndarray
    axes_mm: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    hu: float = 0.0
    label: int = 0
    shell_mm: float = 0.0
    shell_hu: float = 0.0
    shell_label: int = 0
    supersample: int = 1

    def extent_mm(self) -> np.ndarray:
        """Half-size of the axis-aligned bounding box."""
        return np.sqrt(((self.rotation * self.axes_mm[None, :]) ** 2).sum(axis=1))


@dataclass
class Tube:
    """A polyline with a round cross-section, optionally with a denser shell."""

    points_mm: np.ndarray
    radius_mm: float
    hu: float
    label: int
    shell_mm: float = 0.0
    shell_hu: float = 0.0
    shell_label: int = 0


def _sample_offsets(grid: VoxelGrid, n_z: int, n_xy: int) -> tuple[np.ndarray, np.ndarray]:
    dz = grid.thickness_mm * ((np.arange(n_z) + 0.5) / n_z - 0.5)
    dxy = grid.pixel_mm * ((np.arange(n_xy) + 0.5) / n_xy - 0.5)
    return dz, dxy


def _sample_coords(grid: VoxelGrid, box: tuple[slice, slice, slice], n_z: int, n_xy: int):
    """Sample coordinates broadcastable to ``(nk, n_z, ni, n_xy, nj, n_xy)``."""
    dz, dxy = _sample_offsets(grid, n_z, n_xy)
    z = (grid.z_mm[box[0]][:, None] + dz[None, :])[:, :, None, None, None, None]
    y = (grid.y_mm[box[1]][:, None] + dxy[None, :])[None, None, :, :, None, None]
    x = (grid.x_mm[box[2]][:, None] + dxy[None, :])[None, None, None, None, :, :]
    return z, y, x


def _box(grid: VoxelGrid, center: np.ndarray, half: np.ndarray
         ) -> tuple[slice, slice, slice] | None:
    lo, hi = center - half, center + half
    k0, k1 = grid.slab_range(lo[2], hi[2])
    i0, i1 = grid.axis_range(grid.y_mm, lo[1], hi[1])
    j0, j1 = grid.axis_range(grid.x_mm, lo[0], hi[0])
    if k1 <= k0 or i1 <= i0 or j1 <= j0:
        return None
    return slice(k0, k1), slice(i0, i1), slice(j0, j1)


def _soft_inside(signed_mm: np.ndarray, width_mm: float) -> np.ndarray:
    """Occupancy of a sample from its signed distance (positive inside)."""
    return np.clip(0.5 + signed_mm / width_mm, 0.0, 1.0)


def _mean_over_samples(values: np.ndarray) -> np.ndarray:
    return values.mean(axis=(1, 3, 5))


def _z_samples(grid: VoxelGrid, feature_mm: float) -> int:
    step = min(1.0, max(feature_mm / 3.0, 0.2))
    return max(1, int(np.ceil(grid.thickness_mm / step)))


def render_ellipsoid(grid: VoxelGrid, obj: Ellipsoid):
    """Occupancy maps of an ellipsoid in its bounding box.

    Returns
    -------
    tuple or None
        ``(box, occ_total, occ_shell)`` with ``box`` a tuple of slices into the volume and the
        occupancies as ``float32`` arrays of the box's shape; ``None`` when outside the grid.
    """
    half = obj.extent_mm() + grid.pixel_mm
    box = _box(grid, np.asarray(obj.center_mm, float), half)
    if box is None:
        return None
    n_xy = max(1, obj.supersample)
    n_z = _z_samples(grid, 2 * float(min(obj.axes_mm)))
    z, y, x = _sample_coords(grid, box, n_z, n_xy)
    c = obj.center_mm
    rel = (x - c[0], y - c[1], z - c[2])
    rot = obj.rotation
    q = [sum(rot[r, a] * rel[r] for r in range(3)) / obj.axes_mm[a] for a in range(3)]
    rho = np.sqrt(q[0] ** 2 + q[1] ** 2 + q[2] ** 2)
    scale = float(np.exp(np.mean(np.log(obj.axes_mm))))
    width = min(grid.pixel_mm / n_xy, grid.thickness_mm / n_z) if n_xy > 1 else grid.pixel_mm
    occ = _soft_inside((1.0 - rho) * scale, width)
    if obj.shell_mm > 0:
        inner = _soft_inside((1.0 - rho) * scale - obj.shell_mm, width)
        shell = occ - inner
        return box, _mean_over_samples(occ).astype(np.float32), \
            _mean_over_samples(shell).astype(np.float32)
    return box, _mean_over_samples(occ).astype(np.float32), None


def _segment_distance(z, y, x, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    denom = max(float(ab @ ab), 1e-9)
    t = ((x - a[0]) * ab[0] + (y - a[1]) * ab[1] + (z - a[2]) * ab[2]) / denom
    t = np.clip(t, 0.0, 1.0)
    return np.sqrt((x - a[0] - t * ab[0]) ** 2 + (y - a[1] - t * ab[1]) ** 2
                   + (z - a[2] - t * ab[2]) ** 2)


def render_tube(grid: VoxelGrid, tube: Tube):
    """Occupancy maps of a tube (union of its segments), as :func:`render_ellipsoid`."""
    pts = np.asarray(tube.points_mm, float)
    pad = tube.radius_mm + grid.pixel_mm
    lo, hi = pts.min(axis=0) - pad, pts.max(axis=0) + pad
    box = _box(grid, (lo + hi) / 2, (hi - lo) / 2)
    if box is None:
        return None
    n_z = _z_samples(grid, 2 * tube.radius_mm)
    z, y, x = _sample_coords(grid, box, n_z, 1)
    shape = np.broadcast_shapes(z.shape, y.shape, x.shape)
    dist = np.full(shape, np.inf, dtype=np.float64)
    for a, b in zip(pts[:-1], pts[1:]):
        sub = _box(grid, (a + b) / 2, np.abs(b - a) / 2 + pad)
        if sub is None:
            continue
        local = tuple(slice(s.start - o.start, s.stop - o.start) for s, o in zip(sub, box))
        zz, yy, xx = z[local[0]], y[:, :, local[1]], x[:, :, :, :, local[2]]
        view = dist[local[0], :, local[1], :, local[2], :]
        np.minimum(view, _segment_distance(zz, yy, xx, a, b), out=view)
    width = grid.pixel_mm
    occ = _soft_inside(tube.radius_mm - dist, width)
    occ_m = _mean_over_samples(occ).astype(np.float32)
    if tube.shell_mm > 0:
        inner = _soft_inside(tube.radius_mm - tube.shell_mm - dist, width)
        return box, occ_m, _mean_over_samples(occ - inner).astype(np.float32)
    return box, occ_m, None


def paint(hu: np.ndarray, labels: np.ndarray | None, rendered, *, value_hu: float,
          label: int, shell_hu: float = 0.0, shell_label: int = 0,
          label_threshold: float = 0.5) -> None:
    """Blend a rendered object into ``hu`` (in place) and label voxels it mostly fills."""
    if rendered is None:
        return
    box, occ, shell = rendered
    region = hu[box]
    if shell is None:
        region *= 1.0 - occ
        region += occ * value_hu
    else:
        inner = occ - shell
        region *= 1.0 - occ
        region += inner * value_hu + shell * shell_hu
    if labels is None:
        return
    lab = labels[box]
    lab[occ >= label_threshold] = label
    if shell is not None:
        lab[(occ >= label_threshold) & (shell >= 0.5 * occ)] = shell_label
