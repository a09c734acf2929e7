"""A compact, JSON-friendly encoding of one lesion's voxel (or pixel) set.

A mask is stored as the bounding box of its voxels inside the full image (``offset`` and
``size``, both in array axes) plus a run-length code of the box flattened in C order:
``runs`` alternate between runs of *outside* and *inside* voxels, starting with an outside run
(which may be 0). In JSON the runs are one string of decimal numbers separated by single
spaces: a JSON Schema validator checks one string instead of thousands of array items, which
keeps loading fast. A 1000-voxel sphere needs a few hundred numbers; the full image shape is
kept so a mask is never applied to an image of another size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["VoxelMask", "label_mask", "label_masks", "mask_in_box"]


@dataclass(frozen=True)
class VoxelMask:
    """The voxels of one lesion: bounding box plus run-length code.

    Attributes
    ----------
    shape : tuple of int
        Shape of the full image the mask belongs to (``(z, y, x)`` or ``(row, col)``).
    offset : tuple of int
        Index of the bounding box's first corner in the full image.
    size : tuple of int
        Shape of the bounding box.
    runs : tuple of int
        Alternating outside/inside run lengths over the flattened box, outside first.
    """

    shape: tuple[int, ...]
    offset: tuple[int, ...]
    size: tuple[int, ...]
    runs: tuple[int, ...]

    @classmethod
    def from_bool(cls, mask: np.ndarray) -> VoxelMask | None:
        """Encode a boolean full-image mask; ``None`` when it holds no voxel."""
        mask = np.asarray(mask, dtype=bool)
        box_slices = []
        for axis in range(mask.ndim):
            # Project onto one axis at a time: cheaper than np.nonzero on a large image.
            hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
            if hits.size == 0:
                return None
            box_slices.append(slice(int(hits[0]), int(hits[-1]) + 1))
        box = mask[tuple(box_slices)]
        return cls._from_box(mask.shape, [s.start for s in box_slices], box)

    @classmethod
    def _from_box(cls, shape: Sequence[int], offset: Sequence[int],
                  box: np.ndarray) -> VoxelMask:
        flat = box.ravel().astype(np.int8)
        change = np.flatnonzero(np.diff(flat)) + 1
        runs = np.diff(np.concatenate([[0], change, [flat.size]]))
        if flat[0]:
            runs = np.concatenate([[0], runs])
        return cls(tuple(int(n) for n in shape), tuple(int(n) for n in offset),
                   tuple(int(n) for n in box.shape), tuple(int(n) for n in runs))

    @property
    def voxel_count(self) -> int:
        """Number of voxels inside the mask."""
        return int(sum(self.runs[1::2]))

    def box(self) -> np.ndarray:
        """The boolean bounding-box array."""
        values = np.zeros(len(self.runs), dtype=bool)
        values[1::2] = True
        flat = np.repeat(values, self.runs)
        return flat.reshape(self.size)

    def box_slices(self) -> tuple[slice, ...]:
        """Slices of the bounding box in the full image."""
        return tuple(slice(o, o + s) for o, s in zip(self.offset, self.size, strict=True))

    def flat_indices(self) -> np.ndarray:
        """Flat (C-order) indices of the mask's voxels in the full image."""
        local = np.nonzero(self.box())
        full = tuple(idx + off for idx, off in zip(local, self.offset, strict=True))
        return np.ravel_multi_index(full, self.shape)

    def to_bool(self) -> np.ndarray:
        """The full-image boolean mask."""
        out = np.zeros(self.shape, dtype=bool)
        out[self.box_slices()] = self.box()
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON form (lists of ints)."""
        return {"shape": list(self.shape), "offset": list(self.offset),
                "size": list(self.size), "runs": " ".join(map(str, self.runs))}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VoxelMask:
        """Inverse of :meth:`to_dict`; checks that the parts agree.

        Raises
        ------
        ValueError
            When the box does not fit the shape or the runs do not fill the box.
        """
        runs = data["runs"]
        runs = runs.split() if isinstance(runs, str) else runs
        mask = cls(tuple(int(n) for n in data["shape"]), tuple(int(n) for n in data["offset"]),
                   tuple(int(n) for n in data["size"]), tuple(int(n) for n in runs))
        dims = {len(mask.shape), len(mask.offset), len(mask.size)}
        if len(dims) != 1:
            raise ValueError("mask shape, offset and size have different lengths")
        if any(o < 0 or s < 1 or o + s > n
               for o, s, n in zip(mask.offset, mask.size, mask.shape, strict=True)):
            raise ValueError("mask bounding box lies outside the image")
        if any(r < 0 for r in mask.runs) or sum(mask.runs) != int(np.prod(mask.size)):
            raise ValueError("mask runs do not fill its bounding box")
        return mask


def mask_in_box(lesion_labels: np.ndarray, value: int,
                box_slices: tuple[slice, ...]) -> VoxelMask:
    """The mask of label ``value`` whose bounding box is already known."""
    box = np.asarray(lesion_labels[box_slices]) == value
    return VoxelMask._from_box(lesion_labels.shape, [s.start for s in box_slices], box)


def label_masks(lesion_labels: np.ndarray, values: Iterable[int]) -> dict[int, VoxelMask | None]:
    """The masks of several labels from one pass over the image (``None`` when absent)."""
    from scipy import ndimage as ndi

    wanted = sorted({int(v) for v in values})
    if not wanted or wanted[-1] <= 0:
        return {v: None for v in wanted}
    labels = np.asarray(lesion_labels)
    if len(wanted) <= 3:  # a comparison per label beats find_objects' pass (~3x) for a few
        return {v: VoxelMask.from_bool(labels == v) if v > 0 else None for v in wanted}
    # find_objects gives every box in one pass instead of a full comparison per label.
    boxes = ndi.find_objects(labels, max_label=wanted[-1])
    return {v: mask_in_box(labels, v, boxes[v - 1])
            if 0 < v <= len(boxes) and boxes[v - 1] is not None else None for v in wanted}


def label_mask(lesion_labels: np.ndarray, value: int) -> VoxelMask | None:
    """The mask of label ``value`` in a label image (``None`` when absent)."""
    return label_masks(lesion_labels, [value])[int(value)]
