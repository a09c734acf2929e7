"""The synthetic torso: tissue labels, body profiles along the height, and the smooth
background of each axial slice (skin, subcutaneous fat, muscle wall, cavity contents).

Internal to :mod:`napari_calcinosis.phantom`.

Anatomical height ``s`` is in mm above the bottom of the buttocks (0) up to the top of the
shoulders (~600); the patient z coordinate is ``s + Z_OFFSET_MM``. In-plane coordinates are
LPS ``x`` (toward the patient's left) and ``y`` (toward posterior) in mm. Angles are
``theta = atan2(y - yc, x - xc)`` about the body axis: 0 = patient left, +90 deg = posterior,
-90 deg = anterior, 180 deg = patient right.

The body is built from the outside in along each ray from the body axis: outline, skin
(``skin_mm``), subcutaneous fat (a thickness that varies with height, angle and a seeded
smooth perturbation), the muscle wall (at least ``muscle_min``), and the cavity (thorax or
abdomen/pelvis). Depths along a ray approximate depths along the surface normal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

Z_OFFSET_MM = -700.0
N_ANGLES = 1440


class Tissue(IntEnum):
    """Labels of ``PhantomCT.tissue_labels`` (the host tissue of every voxel)."""

    AIR = 0
    SKIN = 1
    SUBCUTANEOUS_FAT = 2
    MUSCLE = 3
    BONE_CORTEX = 4
    BONE_MARROW = 5
    LUNG = 6
    VISCERA = 7
    VESSEL = 8
    CARTILAGE = 9
    TABLE = 10
    VISCERAL_FAT = 11
    DISC = 12
    GAS = 13


#: Typical HU of each tissue before noise (trabecular bone overlaps calcification on purpose).
TISSUE_HU = {
    Tissue.AIR: -1000.0, Tissue.SKIN: 45.0, Tissue.SUBCUTANEOUS_FAT: -100.0,
    Tissue.MUSCLE: 50.0, Tissue.BONE_CORTEX: 1100.0, Tissue.BONE_MARROW: 200.0,
    Tissue.LUNG: -850.0, Tissue.VISCERA: 40.0, Tissue.VESSEL: 40.0, Tissue.CARTILAGE: 110.0,
    Tissue.TABLE: 250.0, Tissue.VISCERAL_FAT: -95.0, Tissue.DISC: 80.0, Tissue.GAS: -980.0,
}

# Profiles along the height s (mm); in-plane values are for body_size 1.
KNOTS_S = np.array([0, 60, 120, 180, 240, 300, 360, 420, 480, 530, 570, 610], float)
_A = np.array([168, 176, 172, 158, 148, 150, 156, 160, 160, 150, 130, 100], float)
_B_ANT = np.array([92, 98, 104, 110, 112, 106, 104, 106, 100, 88, 70, 55], float)
_B_POST = np.array([104, 106, 100, 96, 96, 100, 106, 108, 106, 98, 84, 66], float)
_P = np.array([2.4, 2.4, 2.3, 2.1, 2.1, 2.2, 2.3, 2.3, 2.3, 2.2, 2.1, 2.0])
_FAT_G = np.array([1.6, 1.5, 1.4, 1.3, 1.5, 1.3, 1.0, 0.85, 0.75, 0.65, 0.6, 0.6])
_CAV_A = np.array([122, 132, 128, 116, 112, 118, 130, 134, 128, 110, 80, 52], float)
CAVITY_B_ANT = np.array([62, 72, 78, 86, 90, 86, 84, 84, 76, 62, 46, 34], float)
_CAV_B_POST = np.array([52, 56, 58, 62, 66, 72, 78, 80, 74, 62, 48, 34], float)
_SHOULDER_S = np.array([470, 510, 550, 590, 630], float)
_SHOULDER_W = np.array([0.0, 0.7, 1.0, 0.9, 0.6])
_GLUTEAL_S = np.array([-40, 30, 110, 170, 200], float)
_GLUTEAL_W = np.array([0.7, 1.0, 1.0, 0.4, 0.0])
_VB_S = np.array([0, 185, 342, 350, 600, 640], float)  # vertebral body radius by height
_VB_R = np.array([22, 22, 20, 17, 14, 12], float)

#: Anatomical landmarks (s, mm above the bottom of the buttocks) used by regions and parts.
LANDMARKS = {
    "gluteal_fold": 0.0, "femoral_heads": 85.0, "sacrum_top": 180.0, "iliac_crest": 205.0,
    "dome_posterior": 300.0, "dome_right": 345.0, "dome_left": 335.0, "t12": 350.0,
    "carina": 450.0, "sternal_notch": 525.0, "clavicles": 535.0, "humeral_heads": 545.0,
    "lung_apex": 585.0,
}
DOME_RIGHT_PEAK = 345.0
ABDUCTION_DEG = 14.0  # arms ``beside`` the trunk lean out this far from the vertical
DOME_LEFT_PEAK = 335.0


def scapula_weight(s: float) -> float:
    """How much of the upper back carries the scapulae (0..1) at height ``s``."""
    return float(np.interp(s, [440, 460, 555, 570], [0, 1, 1, 0]))


def interp(s: float, knots_s: np.ndarray, values: np.ndarray) -> float:
    return float(np.interp(s, knots_s, values))


def superellipse_radius(theta: np.ndarray, a: float, b_ant: float, b_post: float,
                        p: float) -> np.ndarray:
    """Polar radius of a superellipse whose half-depth differs in front and behind."""
    b = np.where(np.sin(theta) < 0, b_ant, b_post)
    c, s = np.abs(np.cos(theta)) / a, np.abs(np.sin(theta)) / b
    return (c ** p + s ** p + 1e-12) ** (-1.0 / p)


def ray_ellipse_exit(theta: np.ndarray, cx: float, cy: float, ax: float,
                     ay: float) -> np.ndarray:
    """Distance along each ray from the origin to where it leaves an ellipse (0 if missed)."""
    if ax <= 0 or ay <= 0:
        return np.zeros_like(theta)
    ux, uy = np.cos(theta), np.sin(theta)
    qa = (ux / ax) ** 2 + (uy / ay) ** 2
    qb = ux * cx / ax ** 2 + uy * cy / ay ** 2
    qc = (cx / ax) ** 2 + (cy / ay) ** 2 - 1.0
    disc = qb ** 2 - qa * qc
    t = (qb + np.sqrt(np.maximum(disc, 0.0))) / qa
    return np.where((disc >= 0) & (t > 0), t, 0.0)


def _softmax(values: list[np.ndarray], k: float) -> np.ndarray:
    stack = np.stack(values)
    top = stack.max(axis=0)
    return top + np.log(np.exp(k * (stack - top)).sum(axis=0)) / k


@dataclass
class BodyModel:
    """The seeded shape of one body. Built by :func:`make_body_model`."""

    xc: float
    yc: float
    size: float
    fat_mm: float
    skin_mm: float
    trabecular_hu: float
    fat_wobble: np.ndarray  # (n, 5): amplitude, angular order, phase, wavelength, phase
    arm_pose: str = "raised"  # raised (out of the field), down, beside or up (:mod:`._limbs`)

    # --- outline and layers -------------------------------------------------------------
    def outline(self, theta: np.ndarray, s: float) -> np.ndarray:
        """Outer skin radius along each ray (mm)."""
        k = self.size
        torso = superellipse_radius(theta, k * interp(s, KNOTS_S, _A),
                                    k * interp(s, KNOTS_S, _B_ANT),
                                    k * interp(s, KNOTS_S, _B_POST), interp(s, KNOTS_S, _P))
        parts = [torso]
        w_sh = interp(s, _SHOULDER_S, _SHOULDER_W)
        w_gl = interp(s, _GLUTEAL_S, _GLUTEAL_W)
        for side in (-1.0, 1.0):
            if w_sh > 0:
                parts.append(ray_ellipse_exit(theta, side * 120 * k, 0.0, 62 * k * w_sh,
                                              72 * k * w_sh))
            if w_gl > 0:
                parts.append(ray_ellipse_exit(theta, side * 58 * k, 40 * k, 86 * k * w_gl,
                                              82 * k * w_gl))
        radius = _softmax(parts, 0.3)
        flat = self.table_contact_y() - self.yc
        sin_t = np.sin(theta)
        limit = np.where(sin_t > 0.05, flat / np.maximum(sin_t, 0.05), np.inf)
        return np.minimum(radius, limit)

    def table_contact_y(self) -> float:
        """y (LPS) of the flattened back where the body lies on the table."""
        return self.yc + 110.0 * self.size

    def skin_thickness(self, theta: np.ndarray, s: float) -> np.ndarray:
        return self.skin_mm * (1.0 + 0.25 * np.clip(np.sin(theta), 0, None))

    def fat_thickness(self, theta: np.ndarray, s: float) -> np.ndarray:
        """Subcutaneous fat thickness along each ray (mm): varies, so measure it."""
        base = self.fat_mm * interp(s, KNOTS_S, _FAT_G) * (1.0 - 0.1 * np.sin(theta))
        wob = np.zeros_like(theta)
        for amp, order, ph1, wavelength, ph2 in self.fat_wobble:
            wob += amp * np.cos(order * theta + ph1) * np.cos(2 * np.pi * s / wavelength + ph2)
        return np.maximum(base * (1.0 + wob), 2.5)

    def muscle_min(self, theta: np.ndarray, s: float) -> np.ndarray:
        """Thinnest muscle wall: thicker behind, where the scapulae lie in it."""
        back = np.clip(np.sin(theta), 0, None)
        return 10.0 + back * (5.0 + 22.0 * scapula_weight(s))

    def cavity_model(self, theta: np.ndarray, s: float) -> np.ndarray:
        k = self.size
        return superellipse_radius(theta, k * interp(s, KNOTS_S, _CAV_A),
                                   k * interp(s, KNOTS_S, CAVITY_B_ANT),
                                   k * interp(s, KNOTS_S, _CAV_B_POST), 2.2)

    def layers(self, theta: np.ndarray, s: float) -> dict[str, np.ndarray]:
        """Radii of the outline, inner skin, fascia and cavity boundaries along each ray."""
        r_out = self.outline(theta, s)
        r_skin = r_out - self.skin_thickness(theta, s)
        r_fascia = r_skin - self.fat_thickness(theta, s)
        r_cav = np.minimum(self.cavity_model(theta, s), r_fascia - self.muscle_min(theta, s))
        return {"outline": r_out, "skin_inner": r_skin, "fascia": r_fascia,
                "cavity": np.maximum(r_cav, 5.0)}

    # --- spine ----------------------------------------------------------------------------
    def vb_radius(self, s: float) -> float:
        return self.size * interp(s, _VB_S, _VB_R)

    def vb_center_y(self, s: float) -> float:
        return self.yc + 0.45 * self.size * interp(s, KNOTS_S, _CAV_B_POST)

    def dome_s(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Height of the diaphragm under each (x, y) (mm)."""
        k = self.size
        post = np.clip((y - self.yc) / (80.0 * k), 0, None)
        domes = []
        for side, peak in ((-1.0, DOME_RIGHT_PEAK), (1.0, DOME_LEFT_PEAK)):
            rho2 = ((x - self.xc - side * 60 * k) / (110 * k)) ** 2 \
                + ((y - self.yc + 10 * k) / (100 * k)) ** 2
            domes.append(peak - 40.0 * np.minimum(rho2, 1.5))
        return np.maximum(domes[0], domes[1]) - 20.0 * post

    def s_of_z(self, z_mm: float) -> float:
        return z_mm - Z_OFFSET_MM


    # --- arms ---------------------------------------------------------------------------
    def arm_radius(self, s: float) -> float:
        """Outer radius of the arm at height ``s`` (upper arm above the elbow at 330)."""
        return self.size * (44.0 if s > 330.0 else 36.0)

    @property
    def arms(self) -> bool:
        """Whether the arms are in the field (any pose but ``raised``)."""
        return self.arm_pose != "raised"

    def arm_axis_x(self, s: float) -> float:
        """Distance of the arm's axis from the midline: beside the torso, 10 mm of air apart
        (hanging down); abducted arms lean outward from there (:meth:`arm_offset`)."""
        return self.size * interp(s, KNOTS_S, _A) + 10.0 + self.arm_radius(s)

    def arm_offset(self, s: float) -> float:
        """Distance of the axis of an arm hanging down or abducted (``beside``) from the
        midline at height ``s``."""
        if self.arm_pose != "beside":
            return self.arm_axis_x(s)
        lean = np.tan(np.radians(ABDUCTION_DEG))
        return self.arm_axis_x(s) + 12.0 + lean * (505.0 - s)

    def table_half_width(self) -> float:
        if self.arm_pose not in ("down", "beside"):
            return 215.0
        return max(self.arm_offset(s) + self.arm_radius(s) for s in (420.0, 225.0, 120.0)) \
            + 15.0


def make_body_model(rng: np.random.Generator, *, xc: float, yc: float, size: float,
                    fat_mm: float, skin_mm: float, trabecular_hu: float,
                    arm_pose: str = "raised") -> BodyModel:
    """Draw the seeded shape variations of one body."""
    n = 6
    wobble = np.column_stack([
        rng.uniform(0.04, 0.09, n), rng.integers(1, 5, n), rng.uniform(0, 2 * np.pi, n),
        rng.uniform(150, 450, n), rng.uniform(0, 2 * np.pi, n)])
    return BodyModel(xc=xc, yc=yc, size=size, fat_mm=fat_mm, skin_mm=skin_mm,
                     trabecular_hu=trabecular_hu, fat_wobble=wobble, arm_pose=arm_pose)
