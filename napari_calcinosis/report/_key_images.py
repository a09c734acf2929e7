"""Key images as RGB arrays and PNG: the CT through the deposits, the radiographs with marks.

CT: a coronal maximum-intensity projection of the whole volume (the distribution at a glance)
and an axial slab MIP through the slices with the most soft-tissue lesion voxels, both in a
calcium window, with the lesion voxels filled and ringed in their tissue layer's colour.
Radiograph: the image in its own window with a ring around each detected lesion.

Images are shown as a radiologist expects: axial seen from the feet (patient's right on the
image's left, anterior up), coronal seen from the front (head up, patient's right on the
left), whatever the stored orientation; pixels are made square. numpy + scikit-image only;
PNG through imageio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from skimage.draw import circle_perimeter
from skimage.transform import resize

from napari_calcinosis.files import atomic_write_bytes
from napari_calcinosis.types import Findings, Lesion
from napari_calcinosis.types.findings import LAYER_COLORS, SOFT_TISSUE_LAYERS

from .dicom._seg import plan_segmentations

__all__ = ["CALCIUM_WINDOW_HU", "LAYER_COLORS", "KeyImage", "ct_key_images", "key_images",
           "png_bytes", "radiograph_key_image", "write_png"]

#: Window (low, high) in HU that shows calcium against soft tissue and bone.
CALCIUM_WINDOW_HU = (-250.0, 950.0)
SLAB_MM = 20.0
MAX_SIDE_PX = 900
MIN_SIDE_PX = 512
_ALPHA = 0.65


@dataclass
class KeyImage:
    """One key image: ``rgb`` is ``uint8`` (rows, columns, 3).

    ``source`` is the Volume or Radiograph it shows; ``source_slices`` the storage slices
    of the volume it was made from, when fewer than all (the DICOM copy references them);
    ``patient_orientation`` the directions of increasing column and row (DICOM letters),
    when known.
    """

    name: str
    title: str
    caption: str
    rgb: np.ndarray
    source: Any = None
    source_slices: tuple[int, ...] | None = None
    patient_orientation: tuple[str, ...] = ()

    @property
    def file_name(self) -> str:
        return f"{self.name}.png"


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an RGB ``uint8`` image as PNG (no text chunks, so nothing identifying)."""
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", np.ascontiguousarray(rgb, dtype=np.uint8), extension=".png")


def _hex_rgb(color: str) -> np.ndarray:
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def _grey(image: np.ndarray, low: float, high: float) -> np.ndarray:
    scaled = np.clip((np.asarray(image, dtype=float) - low) / max(high - low, 1e-6), 0, 1)
    return np.repeat((scaled * 255)[..., None], 3, axis=2)


def _overlay(rgb: np.ndarray, segments: np.ndarray, layers: list[str]) -> np.ndarray:
    out = rgb.astype(float)
    for number, layer in enumerate(layers, start=1):
        where = segments == number
        out[where] = (1 - _ALPHA) * out[where] + _ALPHA * _hex_rgb(LAYER_COLORS[layer])
    return out


def _ring(rgb: np.ndarray, center_rc: tuple[float, float], radius: float, color: str) -> None:
    for r in (radius, radius + 1):
        rr, cc = circle_perimeter(int(round(center_rc[0])), int(round(center_rc[1])),
                                  int(round(r)), shape=rgb.shape[:2])
        rgb[rr, cc] = _hex_rgb(color)


def canonical_axes(direction_lps: np.ndarray) -> tuple[list[int], list[bool]]:
    """Array axes that run along patient S, P and L, and whether each must be flipped.

    ``direction_lps`` has the unit direction of array axis ``a`` in column ``a`` (LPS).
    Returns ``(order, flip)`` with ``order[i]`` the array axis closest to LPS axis ``2 - i``
    (z, then y, then x) and ``flip[i]`` true when it runs toward -z, -y or -x.
    """
    direction = np.asarray(direction_lps, dtype=float)
    order, flip = [], []
    for lps_axis in (2, 1, 0):
        scores = np.abs(direction[lps_axis, :]).copy()
        scores[order] = -1
        axis = int(np.argmax(scores))
        order.append(axis)
        flip.append(bool(direction[lps_axis, axis] < 0))
    return order, flip


def _to_canonical(array: np.ndarray, order: list[int], flip: list[bool]) -> np.ndarray:
    out = np.transpose(array, order)
    for axis, do in enumerate(flip):
        if do:
            out = np.flip(out, axis=axis)
    return out


def _square_shape(shape: tuple[int, int], spacing_rc: tuple[float, float]) -> tuple[int, int]:
    rows_mm, cols_mm = shape[0] * spacing_rc[0], shape[1] * spacing_rc[1]
    pixel = min(spacing_rc)
    size = [rows_mm / pixel, cols_mm / pixel]
    scale = min(max(1.0, MIN_SIDE_PX / max(size)), MAX_SIDE_PX / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _compose(hu_2d: np.ndarray, seg_2d: np.ndarray, spacing_rc: tuple[float, float],
             layers: list[str], ring_px: float) -> np.ndarray:
    """Window, make pixels square (and the image legible), overlay the segments, ring them."""
    target = _square_shape(hu_2d.shape, spacing_rc)
    hu = resize(hu_2d.astype(float), target, order=1, preserve_range=True,
                anti_aliasing=False)
    seg = resize(seg_2d, target, order=0, preserve_range=True,
                 anti_aliasing=False).astype(seg_2d.dtype)
    rgb = _overlay(_grey(hu, *CALCIUM_WINDOW_HU), seg, layers)
    _ring_segments(rgb, seg, layers, radius=ring_px)
    return rgb.astype(np.uint8)


def ct_key_images(volume: Any, segment_index: np.ndarray, layers: list[str], *,
                  prefix: str = "key_ct") -> list[KeyImage]:
    """Coronal MIP and axial slab MIP of a CT with its lesion segments.

    Parameters
    ----------
    volume : Volume
        The CT (``hu``, ``spacing_zyx_mm``, ``direction_lps``).
    segment_index : numpy.ndarray
        (z, y, x) layer number per voxel (0 none), as ``SegmentPlan.layer_index``.
    layers : list of str
        Layer of segment ``n`` at ``layers[n - 1]``.
    prefix : str
        Start of the image names.
    """
    order, flip = canonical_axes(volume.direction_lps)
    hu = _to_canonical(np.asarray(volume.hu), order, flip)  # axes: S, P, L
    seg = _to_canonical(np.asarray(segment_index), order, flip)
    spacing = np.asarray(volume.spacing_zyx_mm, dtype=float)[order]
    low, high = CALCIUM_WINDOW_HU
    coronal = _compose(hu.max(axis=1)[::-1], seg.max(axis=1)[::-1], (spacing[0], spacing[2]),
                       layers, 8)
    images = [KeyImage(f"{prefix}_coronal_mip", "CT coronal MIP",
                       "Coronal maximum-intensity projection of the whole CT, seen from the "
                       "front (patient's right on the left), calcium window "
                       f"{low:g} to {high:g} HU; rings mark the deposits in their tissue "
                       "layer's colour.", coronal, source=volume,
                       patient_orientation=("L", "F"))]
    soft = [n for n, layer in enumerate(layers, start=1) if layer in SOFT_TISSUE_LAYERS]
    per_slice = np.isin(seg, soft).sum(axis=(1, 2)) if soft else (seg > 0).sum(axis=(1, 2))
    half = max(0, int(round(SLAB_MM / 2 / spacing[0])))
    window = np.convolve(per_slice, np.ones(2 * half + 1), mode="same")
    k = int(np.argmax(window))
    lo, hi = max(0, k - half), min(hu.shape[0], k + half + 1)
    axial = _compose(hu[lo:hi].max(axis=0), seg[lo:hi].max(axis=0), (spacing[1], spacing[2]),
                     layers, 9)
    thickness = (hi - lo) * spacing[0]
    images.append(KeyImage(
        f"{prefix}_axial_slab", "CT axial slab MIP",
        f"Axial {thickness:g} mm slab MIP through the slices with the most soft-tissue lesion "
        "voxels, seen from the feet (patient's right on the left, anterior up), calcium "
        "window; rings mark the deposits in their tissue layer's colour.", axial, source=volume,
        source_slices=_storage_slices(order[0], flip[0], lo, hi, hu.shape[0]),
        patient_orientation=("L", "P")))
    return images


def _storage_slices(axis: int, flipped: bool, lo: int, hi: int,
                    count: int) -> tuple[int, ...] | None:
    """The stored slices a slab ``lo:hi`` of the canonical S axis came from, when the
    volume is stored in axial slices (else every slice contributed)."""
    if axis != 0:
        return None
    return tuple(sorted(count - 1 - k if flipped else k for k in range(lo, hi)))


def _ring_segments(rgb: np.ndarray, segments: np.ndarray, layers: list[str], *,
                   radius: float) -> None:
    from scipy import ndimage as ndi

    for number, layer in enumerate(layers, start=1):
        labels, count = ndi.label(segments == number)
        for center in ndi.center_of_mass(labels > 0, labels, range(1, count + 1)):
            _ring(rgb, center, radius, LAYER_COLORS[layer])


def radiograph_key_image(radiograph: Any, lesions: list[Lesion], *,
                         name: str = "key_radiograph") -> KeyImage:
    """The radiograph in its window with a ring around each lesion, coloured by layer."""
    image = np.asarray(radiograph.image, dtype=float)
    if radiograph.window is not None:
        low, high = radiograph.window
    else:
        low, high = np.percentile(image, [1.0, 99.5])
    scale = min(1.0, MAX_SIDE_PX / max(image.shape))
    shape = (max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))
    small = resize(image, shape, order=1, preserve_range=True, anti_aliasing=scale < 1)
    rgb = _grey(small, low, high)
    spacing = radiograph.pixel_spacing_mm
    for lesion in lesions:
        row, col = (float(v) * scale for v in lesion.centroid_index[-2:])
        diameter_px = (lesion.max_diameter_mm or 0.0) / (spacing[0] if spacing else 1.0)
        _ring(rgb, (row, col), max(6.0, 0.6 * diameter_px * scale + 4),
              LAYER_COLORS.get(lesion.layer, "#ffffff"))
    view = radiograph.view or "radiograph"
    return KeyImage(name, f"Radiograph ({view})",
                    f"{view.capitalize()} radiograph in its display window; rings mark the "
                    f"{len(lesions)} detected calcification(s), coloured by tissue layer.",
                    rgb.astype(np.uint8), source=radiograph,
                    patient_orientation=tuple(radiograph.patient_orientation or ()))


def key_images(findings: Findings, context: Any) -> list[KeyImage]:
    """Every key image of an export: per CT the two MIPs, per analysed radiograph one image."""
    result = getattr(context, "result", None)
    if result is None:
        return []
    images: list[KeyImage] = []
    plans = plan_segmentations(findings, context)
    for number, plan in enumerate(plans, start=1):
        prefix = "key_ct" if number == 1 else f"key_ct{number}"
        by_layer, layers = plan.layer_index()
        images.extend(ct_key_images(plan.volume, by_layer, layers, prefix=prefix))
    uid_map = getattr(context, "uid_map", {})
    views: dict[str, int] = {}
    for item in result.series:
        if item.xray is None:
            continue
        uid = item.image.info.series_instance_uid
        mine = [les for les in findings.lesions
                if les.series_instance_uid in (uid, uid_map.get(uid))]
        view = item.image.view or "radiograph"
        views[view] = views.get(view, 0) + 1
        suffix = "" if views[view] == 1 else f"_{views[view]}"
        images.append(radiograph_key_image(item.image, mine,
                                           name=f"key_radiograph_{view}{suffix}"))
    return images


def write_png(findings: Findings, out_dir: str | Path, context: Any) -> list[Path]:
    """Format writer ``png``: the key images as PNG files (names carry no patient data)."""
    return [atomic_write_bytes(Path(out_dir) / image.file_name, png_bytes(image.rgb))
            for image in key_images(findings, context)]
