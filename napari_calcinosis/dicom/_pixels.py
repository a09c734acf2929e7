"""Decoding the frames of a stack into one preallocated array, and rescaling it in place.

Native little-endian pixel data are read straight from the file into their slot of the
output array (no intermediate copies); compressed files are decoded by pydicom and its
pylibjpeg plugins, one file per task. A small thread pool overlaps file reading, decoding
and the per-slice arithmetic (numpy and the codecs release the GIL).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np
import pydicom.pixels

from napari_calcinosis.types import Progress

from ._header import FileHeader, Frame

_INT16_MIN, _INT16_MAX = -32768, 32767


def stored_dtype(ds: pydicom.Dataset) -> np.dtype:
    """numpy dtype of the stored pixel values (BitsAllocated, PixelRepresentation)."""
    bits = int(ds.get("BitsAllocated", 16) or 16)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    return np.dtype(f"{'i' if signed else 'u'}{bits // 8}")


@dataclass
class RawStack:
    """Stored values of a stack, with per-slice range, padding masks and failures."""

    raw: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    padding: dict[int, np.ndarray] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)


def _padding_range(ds: pydicom.Dataset, dtype: np.dtype) -> tuple[int, int] | None:
    value = ds.get("PixelPaddingValue")
    if value is None or isinstance(value, bytes):
        return None
    limit = ds.get("PixelPaddingRangeLimit", value)
    low, high = sorted((int(value), int(limit)))
    info = np.iinfo(dtype)
    if high < info.min or low > info.max:
        return None  # a padding value the stored type cannot hold marks nothing
    return max(low, info.min), min(high, info.max)


def _fix_unused_bits(slot: np.ndarray, ds: pydicom.Dataset) -> None:
    """Sign-extend or mask when BitsStored < BitsAllocated (high bits may hold garbage)."""
    bits = slot.dtype.itemsize * 8
    stored = int(ds.get("BitsStored", bits) or bits)
    if stored >= bits or stored <= 0:
        return
    if slot.dtype.kind == "i":
        shift = bits - stored
        np.left_shift(slot, shift, out=slot)
        np.right_shift(slot, shift, out=slot)
    else:
        np.bitwise_and(slot, (1 << stored) - 1, out=slot)


def _read_native(header: FileHeader, jobs: Sequence[tuple[int, int]], raw: np.ndarray) -> None:
    frame_bytes = raw[0].nbytes
    with open(header.path, "rb", buffering=0) as fp:
        for index, k in jobs:
            fp.seek(header.pixel_offset + index * frame_bytes)
            view = memoryview(raw[k]).cast("B")
            got = fp.readinto(view)
            if got != frame_bytes:
                raise OSError(f"frame {index + 1}: {got} of {frame_bytes} pixel bytes")
            _fix_unused_bits(raw[k], header.ds)


def decode_file(header: FileHeader) -> np.ndarray:
    """Every frame of a file, decoded by pydicom (its codecs for compressed data); a file
    without file meta is decoded with the transfer syntax its header was read with."""
    extra = {}
    if header.inferred_syntax:
        extra["transfer_syntax_uid"] = header.ds.file_meta.TransferSyntaxUID
    return pydicom.pixels.pixel_array(str(header.path), **extra)


def _read_decoded(header: FileHeader, jobs: Sequence[tuple[int, int]], raw: np.ndarray) -> None:
    pixels = decode_file(header)
    pixels = pixels.reshape((-1, *raw.shape[1:]))
    for index, k in jobs:
        raw[k] = pixels[index]


def _read_file(header: FileHeader, jobs: Sequence[tuple[int, int]], raw: np.ndarray,
               stack: RawStack) -> None:
    native = (header.pixel_offset is not None and
              stored_dtype(header.ds) == raw.dtype and
              header.pixel_length >= (max(i for i, _ in jobs) + 1) * raw[0].nbytes)
    (_read_native if native else _read_decoded)(header, jobs, raw)
    pad = _padding_range(header.ds, raw.dtype)
    for _, k in jobs:
        slot = raw[k]
        stack.minimum[k], stack.maximum[k] = slot.min(), slot.max()
        if pad is not None:
            mask = (slot >= pad[0]) & (slot <= pad[1]) if pad[0] != pad[1] else slot == pad[0]
            if mask.any():
                stack.padding[k] = mask


def read_stack(slots: Sequence[Frame | None], *, progress: Progress | None = None,
               workers: int | None = None) -> RawStack:
    """Read the stored values of frames into one ``(len(slots), rows, columns)`` array.

    Parameters
    ----------
    slots : sequence of Frame or None
        The frame for each output slice; None leaves a slice blank (a gap to be padded).
    progress : callable, optional
        ``progress(fraction, message)`` after each file.
    workers : int, optional
        Thread count (default: the CPU count, at most 4).

    Returns
    -------
    RawStack
        Files that failed leave their slots in ``failed`` (slot -> message) instead of raising.
    """
    first = next(f for f in slots if f is not None)
    dtype = stored_dtype(first.header.ds)
    raw = np.empty((len(slots), first.rows, first.columns), dtype=dtype)
    stack = RawStack(raw, np.zeros(len(slots)), np.zeros(len(slots)))
    by_file: dict[int, tuple[FileHeader, list[tuple[int, int]]]] = {}
    for k, frame in enumerate(slots):
        if frame is None:
            raw[k] = 0
            continue
        by_file.setdefault(id(frame.header), (frame.header, []))[1].append((frame.index, k))
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_read_file, h, jobs, raw, stack): (h, jobs)
                   for h, jobs in by_file.values()}
        for done, future in enumerate(as_completed(futures), start=1):
            header, jobs = futures[future]
            error = future.exception()
            if error is not None:
                for _, k in jobs:
                    raw[k] = 0
                    stack.failed[k] = f"{header.name}: pixel data unreadable ({error})"
            if progress is not None:
                progress(done / len(futures), f"read {done} of {len(futures)} files")
    return stack


def _integral(values: Sequence[float]) -> bool:
    return all(float(v).is_integer() for v in values)


def _fits_int16(stack: RawStack, slots: Sequence[Frame | None], usable: list[int]) -> bool:
    if any("ModalityLUTSequence" in slots[k].header.ds for k in usable):
        return False
    slopes = [slots[k].slope for k in usable]
    intercepts = [slots[k].intercept for k in usable]
    if not (_integral(slopes) and _integral(intercepts)):
        return False
    for k in usable:
        ends = np.array([stack.minimum[k], stack.maximum[k]]) * slots[k].slope
        ends = ends + slots[k].intercept
        if ends.min() < _INT16_MIN or ends.max() > _INT16_MAX:
            return False
    return True


def to_hu(stack: RawStack, slots: Sequence[Frame | None], *, padding_value_hu: float,
          workers: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply each slice's modality LUT; return ``(values, padding_mask)``.

    The result is ``int16`` when every slice's rescale is integral and its result fits in
    ``int16`` (then the raw buffer is reused in place), else ``float32``. Padding voxels,
    blank slots and failed slots are set to ``padding_value_hu`` and marked in the mask (None
    when no voxel is padding).
    """
    usable = [k for k, f in enumerate(slots) if f is not None and k not in stack.failed]
    raw = stack.raw
    exact = bool(usable) and _fits_int16(stack, slots, usable)
    if exact:
        out = raw.view(np.int16) if raw.dtype.itemsize == 2 else raw.astype(np.int16)
    else:
        out = np.empty(raw.shape, dtype=np.float32)

    def rescale(k: int) -> None:
        frame = slots[k]
        if exact:
            _rescale_int16(out, raw, k, frame)
        elif "ModalityLUTSequence" in frame.header.ds:
            out[k] = pydicom.pixels.apply_modality_lut(raw[k], frame.header.ds)
        else:
            np.multiply(raw[k], np.float32(frame.slope), out=out[k], casting="unsafe")
            out[k] += np.float32(frame.intercept)

    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(rescale, usable))
    return out, _apply_padding(out, stack, slots, padding_value_hu)


def _rescale_int16(out: np.ndarray, raw: np.ndarray, k: int, frame: Frame) -> None:
    slope, intercept = int(frame.slope), int(frame.intercept)
    if slope == 1:
        # Modular uint16 addition, reinterpreted as int16, is exact when the result fits.
        view = out[k].view(np.uint16)
        np.add(view, np.uint16(intercept % 65536), out=view)
    else:
        out[k] = raw[k].astype(np.int32) * slope + intercept


def _apply_padding(out: np.ndarray, stack: RawStack, slots: Sequence[Frame | None],
                   padding_value_hu: float) -> np.ndarray | None:
    blank = [k for k, f in enumerate(slots) if f is None or k in stack.failed]
    if not stack.padding and not blank:
        return None
    mask = np.zeros(out.shape, dtype=bool)
    for k, slice_mask in stack.padding.items():
        mask[k] = slice_mask
    for k in blank:
        mask[k] = True
    for k in {*stack.padding, *blank}:
        out[k][mask[k]] = padding_value_hu
    return mask
