"""Metal on the film (internal to :mod:`._xray`): lead side markers and surgical clips.

A **lead marker** is a letter (``L`` or ``R``, 12 mm tall, 2 mm strokes of 1 mm lead) laid on
the detector or the patient: its line integral is far above any tissue's, so the film shows
it as a white letter with razor edges. One is placed on the outline of the patient's shoulder
(named for that side), half over the skin and half in the direct exposure, and, with
``markers >= 2``, the other letter over the soft tissue of the opposite lower flank.

A **surgical clip** is a haemostatic clip (two limbs 5-8 mm long, 0.8 mm wide, meeting at a
hinge, 1.5-2.5 mm apart at their open ends) of stainless steel or tantalum: an attenuation
of 0.6-1.5 (``CLIP_LINE``; 10-25 times a 3 mm calcium deposit's), placed where a node
dissection or a chest wall operation leaves them: in soft tissue clear of the lungs and
bones within 40 mm of the outline (the axillae and chest wall).

Each mark is drawn as strokes (capsules) 3 x 3 supersampled before the detector blur and
listed as an :class:`~._xray.XrayLookalike` (``lead_marker`` or ``surgical_clip``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

LEAD_LINE = 4.0  # attenuation of 1 mm of lead at a chest film's energy, well above bone's
#: Attenuation of a clip's limb across the beam: 0.6-0.8 mm of stainless steel (about 0.95 per
#: mm at 60 keV) up to tantalum. A titanium clip (about 0.2) is as faint as a dense 3 mm
#: calcium deposit and is not modelled: only its shape would tell it.
CLIP_LINE = (0.6, 1.5)
LETTER_MM = 12.0
STROKE_MM = 2.0

#: Strokes of each letter as (x0, y0, x1, y1) in letter units (width 0.6, height 1, y down).
_LETTERS = {
    "L": [(0.0, 0.0, 0.0, 1.0), (0.0, 1.0, 0.55, 1.0)],
    "R": [(0.0, 0.0, 0.0, 1.0), (0.0, 0.0, 0.35, 0.0), (0.35, 0.0, 0.55, 0.13),
          (0.55, 0.13, 0.55, 0.37), (0.55, 0.37, 0.35, 0.5), (0.35, 0.5, 0.0, 0.5),
          (0.25, 0.5, 0.6, 1.0)],
}


def _strokes_image(shape, strokes_px, width_px: float, p_sub: int = 3) -> np.ndarray:
    """Coverage (0..1) of capsule strokes ``(r0, c0, r1, c1)`` (pixels) on an image grid."""
    out = np.zeros(shape)
    for r0, c0, r1, c1 in strokes_px:
        lo_r = int(max(0, np.floor(min(r0, r1) - width_px - 1)))
        hi_r = int(min(shape[0], np.ceil(max(r0, r1) + width_px + 2)))
        lo_c = int(max(0, np.floor(min(c0, c1) - width_px - 1)))
        hi_c = int(min(shape[1], np.ceil(max(c0, c1) + width_px + 2)))
        if hi_r <= lo_r or hi_c <= lo_c:
            continue
        sub = (np.arange(p_sub) - (p_sub - 1) / 2) / p_sub
        rr = (np.arange(lo_r, hi_r)[:, None] + sub[None, :]).reshape(-1)
        cc = (np.arange(lo_c, hi_c)[:, None] + sub[None, :]).reshape(-1)
        R, C = np.meshgrid(rr, cc, indexing="ij")
        dr, dc = r1 - r0, c1 - c0
        t = np.clip(((R - r0) * dr + (C - c0) * dc) / max(dr * dr + dc * dc, 1e-12), 0, 1)
        inside = np.hypot(R - r0 - t * dr, C - c0 - t * dc) <= width_px / 2
        cover = inside.reshape(hi_r - lo_r, p_sub, hi_c - lo_c, p_sub).mean(axis=(1, 3))
        region = out[lo_r:hi_r, lo_c:hi_c]
        np.maximum(region, cover, out=region)
    return out


def letter_strokes(letter: str, row: float, col: float, p: float) -> list[tuple]:
    """Strokes (pixels) of a letter centred at (row, col), read upright on the film."""
    h = LETTER_MM / p
    return [(row + (y0 - 0.5) * h, col + (x0 - 0.3) * h, row + (y1 - 0.5) * h,
             col + (x1 - 0.3) * h) for x0, y0, x1, y1 in _LETTERS[letter]]


def clip_strokes(rng: np.random.Generator, row: float, col: float, p: float) -> list[tuple]:
    """The two limbs of a clip (pixels) about (row, col), at a random angle."""
    length = rng.uniform(5.0, 8.0) / p
    spread = rng.uniform(1.5, 2.5) / p
    angle = rng.uniform(0.0, np.pi)
    u = np.array([np.cos(angle), np.sin(angle)])
    n = np.array([-u[1], u[0]])
    hinge = np.array([row, col]) - 0.5 * length * u
    out = []
    for sign in (-1.0, 1.0):
        tip = hinge + length * u + sign * 0.5 * spread * n
        out.append((hinge[0], hinge[1], tip[0], tip[1]))
    return out


def _free_spot(rng, allowed: np.ndarray, taken: list[tuple[float, float]], p: float,
               gap_mm: float):
    rows, cols = np.nonzero(allowed)
    if rows.size == 0:
        return None
    for _ in range(200):
        k = int(rng.integers(rows.size))
        r, c = float(rows[k]), float(cols[k])
        if all(np.hypot(r - a, c - b) * p >= gap_mm for a, b in taken):
            return r, c
    return None


def add_marks(line: np.ndarray, *, path_mm: np.ndarray, lung: np.ndarray, bone: np.ndarray,
              p: float, left_col_sign: int, markers: int, clips: int,
              rng: np.random.Generator, avoid: list[tuple[float, float]]) -> list[tuple]:
    """Add lead letters and clips to the line integrals (in place).

    ``avoid`` are (row, col) pixels to keep 15 mm from (the deposits); ``left_col_sign`` is
    +1 when the patient's left is at larger columns. Returns ``(kind, row, col)`` per mark.
    """
    body = path_mm > 0
    rows_any = np.nonzero(body.any(axis=1))[0]
    if rows_any.size == 0:
        return []
    from_outline = ndimage.distance_transform_edt(body) * p
    outside = ndimage.distance_transform_edt(~body) * p
    marks, taken = [], list(avoid)
    top = int(rows_any[0])
    for n in range(min(markers, 2)):
        side = 1 if n == 0 else -1
        letter = "L" if side == 1 else "R"
        half = line.shape[1] // 2
        cols = slice(half, None) if side * left_col_sign > 0 else slice(0, half)
        zone = np.zeros(line.shape, dtype=bool)
        if n == 0:  # on the outline of the shoulder, half over the skin
            zone[top + int(20 / p): top + int(60 / p), cols] = True
            zone &= (outside > 0) & (outside <= 2.0)
        else:  # over the soft tissue of the other flank, low on the film
            zone[int(0.7 * line.shape[0]): int(0.92 * line.shape[0]), cols] = True
            zone &= (from_outline >= 12.0) & (from_outline <= 35.0) & ~lung & ~bone
        spot = _free_spot(rng, zone, taken, p, 20.0)
        if spot is None:
            continue
        cover = _strokes_image(line.shape, letter_strokes(letter, *spot, p), STROKE_MM / p)
        line += LEAD_LINE * cover
        taken.append(spot)
        marks.append(("lead_marker", *spot))
    soft = body & (from_outline >= 4.0) & (from_outline <= 40.0)
    soft &= ndimage.distance_transform_edt(~(lung | bone)) * p >= 6.0
    for _ in range(clips):
        spot = _free_spot(rng, soft, taken, p, 15.0)
        if spot is None:
            break
        cover = _strokes_image(line.shape, clip_strokes(rng, *spot, p), 0.8 / p)
        line += float(rng.uniform(*CLIP_LINE)) * cover
        taken.append(spot)
        marks.append(("surgical_clip", *spot))
    return marks
