"""Shared helpers of the review-panel viewer tests: a small phantom study and detection."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from classify_cases import NEGATIVE_HISTORY, NORMAL_LABS
from qtpy.QtCore import Qt

from napari_calcinosis._qt.session import get_session
from napari_calcinosis.phantom import PhantomSpec, make_ct_phantom, write_ct_series

PLUGIN = "napari-calcinosis"
_MODIFIER_KEYS = ((Qt.KeyboardModifier.ShiftModifier, Qt.Key.Key_Shift),
                  (Qt.KeyboardModifier.ControlModifier, Qt.Key.Key_Control),
                  (Qt.KeyboardModifier.AltModifier, Qt.Key.Key_Alt),
                  (Qt.KeyboardModifier.MetaModifier, Qt.Key.Key_Meta))
SMALL_SPEC = PhantomSpec(scenario="generalized", seed=3, pixel_spacing_mm=2.0, fov_mm=460.0,
                         slice_thickness_mm=5.0, z_range_mm=(150.0, 560.0))
# The seed case's labs and history: the contract's clinical example.
SEED_LABS, SEED_HISTORY = NORMAL_LABS, NEGATIVE_HISTORY


def write_small_study(folder: Path, **changes) -> Path:
    """The small generalized phantom as a DICOM CT series (about 80 slices of 230²);
    ``changes`` (``seed=``, ``scenario=``) make another study."""
    spec = replace(SMALL_SPEC, **changes)
    write_ct_series(make_ct_phantom(spec), folder, patient_name="PHANTOM^REVIEW",
                    patient_id=f"REVIEW{spec.seed}")
    return folder


def result_layer(viewer, kind: str):
    found = [layer for layer in viewer.layers
             if layer.metadata.get("calcinosis", {}).get("kind") == kind]
    return found[0] if found else None


def open_and_detect(viewer, qtbot, folder: Path | None):
    """Open the study with the plugin (unless ``folder`` is None: already open) and run
    detection on its CT through the detection panel."""
    if folder is not None:
        viewer.open(folder, plugin=PLUGIN)
    session = get_session(viewer)
    _, detection = viewer.window.add_plugin_dock_widget(PLUGIN, "Calcinosis detection")
    detection.run(viewer.layers[0])
    qtbot.waitUntil(lambda: not detection.is_running and result_layer(viewer, "lesion_points")
                    is not None and session.review is not None and bool(session.review.runs),
                    timeout=60_000)
    return session


def dock(viewer, name: str):
    return viewer.window.add_plugin_dock_widget(PLUGIN, name)[1]


def empty_body_voxel(session) -> np.ndarray:
    """A fat voxel in the middle slice far from every lesion (storage index z, y, x)."""
    (run,) = session.review.runs.values()
    hu, labels = run.volume.hu, run.result.lesion_labels
    k = hu.shape[0] // 2
    fat = (hu[k] > -150) & (hu[k] < -60) & (labels[k] == 0)
    near = np.zeros_like(fat)
    for les in run.result.lesions:
        z, y, x = (int(round(v)) for v in les.centroid_index)
        if abs(z - k) < 3:
            near[max(0, y - 8):y + 9, max(0, x - 8):x + 9] = True
    ys, xs = np.nonzero(fat & ~near)
    return np.array([k, ys[len(ys) // 2], xs[len(xs) // 2]])


def release_modifiers() -> None:
    """Let go of every modifier key Qt believes held, as a real keyboard would have.

    QTest's synthesized click with a modifier ends with the modifier's key release still
    carrying the modifier, and Qt takes the application-wide
    ``QGuiApplication.keyboardModifiers()`` from that event: Shift stays "held" for the
    rest of the process. Every later ``QTableView.selectRow`` (napari's features table, in
    any viewer) then acts as a Shift-extend from an unset anchor and selects nothing.
    The releases go to a throwaway widget: only Qt's global state has to change.
    """
    from qtpy.QtGui import QGuiApplication
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QApplication, QWidget

    if QApplication.instance() is None:
        return
    held = QGuiApplication.keyboardModifiers()
    if held == Qt.KeyboardModifier.NoModifier:
        return
    target = QWidget()
    try:
        for flag, key in _MODIFIER_KEYS:
            if held & flag:
                held = held & ~flag
                QTest.keyRelease(target, key, held)
    finally:
        target.deleteLater()


def key_click(qtbot, widget, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """``qtbot.keyClick`` that leaves no modifier held afterwards (see release_modifiers)."""
    qtbot.keyClick(widget, key, modifier)
    release_modifiers()
