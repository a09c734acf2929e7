"""Detection panel: detect calcifications on a CT or a radiograph in the background and show
the results (lesion labels and centroid points on the image, the study's summary)."""

import queue
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    TextEdit,
)
from napari.layers import Layer
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info

from napari_calcinosis._napari.layer_data import RADIOGRAPH_KEY, VOLUME_KEY
from napari_calcinosis._napari.messages import toast_text
from napari_calcinosis.ct import TISSUE_NAMES
from napari_calcinosis.fusion import prepare_links
from napari_calcinosis.pipeline import SeriesResult, detector_for
from napari_calcinosis.types import CalcinosisError, CTParams, XrayParams
from napari_calcinosis.types.progress import percent

from .preferences import autodetect_enabled, set_autodetect
from .result_layers import (
    SOURCE_KEY,
    center_on,
    image_geometry,
    is_detectable_layer,
    is_radiograph_layer,
    lesion_labels_data,
    lesion_points_data,
    outline_labels,
    radiograph_labels_data,
    radiograph_points_data,
    series_of,
    summary_text,
    tissue_labels_data,
)
from .session import follow, get_session

if TYPE_CHECKING:
    import napari

RESULT_KINDS = ("lesion_labels", "lesion_points", "tissue_labels")


def _detect_steps(image: Any, params: Any, others: list | None = None):
    """Generator for ``thread_worker``: yields ``(fraction, message)``, returns the result of
    the series' detector (:func:`napari_calcinosis.pipeline.detector_for`).

    The core reports progress through a callback; the analysis runs in one more thread so that
    this generator can pass the callback's messages on as they come. ``others`` are the
    study's other analysed series (``SeriesResult``): when the new result completes a CT and
    a radiograph, the CT is registered to the radiograph here, in the worker, so that the
    assembly on the main thread finds the registration done (:func:`_prepare_ct_link`).
    The registration reports no fractions: it yields ``(None, message)`` (a busy bar) every
    half second while it runs. Runs go one at a time, the CT's first (detection on open
    queues the volumes before the radiographs), so the CT's lesions are on screen before
    the registration starts (``tests/qt/test_progress.py``).
    """
    detector = detector_for(image)
    messages: queue.Queue = queue.Queue()
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(detector.run, image, params=params,
                             progress=lambda f, m: messages.put((f, m)))
        while not (future.done() and messages.empty()):
            try:
                yield messages.get(timeout=0.05)
            except queue.Empty:
                continue
        result = future.result()
        if any(item.result is not None and detector_for(item.image) is not detector
               for item in others or []):
            linking = pool.submit(_prepare_ct_link, image, result, others)
            yield (None, REGISTERING)
            while wait([linking], timeout=0.5).not_done:
                yield (None, REGISTERING)
            linking.result()
    return result


#: The status line while the CT is registered to a radiograph (a busy bar: no fraction).
REGISTERING = "Registering the CT to the radiograph (a few seconds) ..."


def _units(image: Layer) -> tuple[str, ...]:
    """The units of an image layer's axes, for the result layers drawn on it."""
    return tuple(str(unit) for unit in image.units)


def _prepare_ct_link(image: Any, result: Any, others: list) -> int:
    """Register the study's CT to its frontal radiographs (worker thread), with ``result``
    as the new run of ``image`` in place of any earlier one."""
    uid = image.info.series_instance_uid
    items = [item for item in others if item.entry.series_instance_uid != uid]
    items.append(SeriesResult.of(image, result))
    return prepare_links(items)


class DetectionWidget(Container):
    """Detect soft-tissue calcifications on a CT or radiograph layer, with parameters and
    the study's summary."""

    def __init__(self, viewer: "napari.viewer.Viewer"):
        super().__init__(labels=True)
        self._viewer = viewer
        # The viewer's study session takes every run in and numbers the lesions across the
        # study's series (a radiograph's after the CT's), as the findings will.
        self._session = get_session(viewer)
        defaults = CTParams()
        self.image = ComboBox(label="Image", choices=self._image_choices)
        self.threshold_hu = FloatSpinBox(label="Threshold (HU)", value=defaults.threshold_hu,
                                         min=50.0, max=2000.0, step=10.0)
        self.min_area_mm2 = FloatSpinBox(label="Min area (mm²)", value=defaults.min_area_mm2,
                                         min=0.0, max=100.0, step=0.5)
        self.adaptive = CheckBox(text="Adaptive threshold", value=defaults.adaptive)
        self.show_tissue = CheckBox(text="Show tissue compartments", value=False)
        self.autodetect = CheckBox(text="Detect when a CT or radiograph opens",
                                   value=autodetect_enabled())
        self.run_button = PushButton(text="Detect calcifications")
        self.table_button = PushButton(text="Show lesion table")
        self.progress = ProgressBar(min=0, max=100, value=0, visible=False)
        self.status = Label(value="")
        self.status.native.setWordWrap(True)
        self.summary = TextEdit(value="")
        self.summary.native.setReadOnly(True)
        self.extend([self.image, self.threshold_hu, self.min_area_mm2, self.adaptive,
                     self.show_tissue, self.autodetect, self.run_button, self.progress,
                     self.status, self.summary, self.table_button])
        self.max_width = 420
        self._pending: list[Layer] = []
        self._worker: Any = None
        self.run_button.changed.connect(lambda: self.run())
        self.table_button.changed.connect(self._show_table)
        self.autodetect.changed.connect(set_autodetect)
        self.show_tissue.changed.connect(self._toggle_tissue)
        self.image.changed.connect(self._on_image_chosen)
        viewer.layers.events.inserted.connect(self._refresh_choices)
        viewer.layers.events.removed.connect(self._refresh_choices)
        # The panel describes the series of the selected layer, as reviewed now: it follows
        # the selection and every change of the review (edits, a restored record).
        active = viewer.layers.selection.events.active
        active.connect(self._follow_active)
        self.native.destroyed.connect(lambda *_: active.disconnect(self._follow_active))
        follow(self, self._session.changed, self._show_chosen)
        self._show_ct_fields()

    # -- choosing what to run on -------------------------------------------------------------
    def _image_choices(self, _widget: Any = None) -> list[tuple[str, Layer]]:
        return [(layer.name, layer) for layer in self._viewer.layers
                if is_detectable_layer(layer)]

    def _refresh_choices(self, event: Any = None) -> None:
        self.image.reset_choices()

    def _follow_active(self, *_: Any) -> None:
        """Choose the image of the selected layer's series (an image or a result layer)."""
        active = self._viewer.layers.selection.active
        uid = None if active is None else series_of(active)
        if uid is None:
            return
        image = next((layer for _, layer in self._image_choices() if series_of(layer) == uid),
                     None)
        if image is not None and image is not self.image.value:
            self.image.value = image

    def _show_chosen(self, *_: Any) -> None:
        if not self.is_running:  # the status shows the run's progress meanwhile
            self.show_result(self.image.value)

    def _on_image_chosen(self, *_: Any) -> None:
        self._show_ct_fields()
        if not self.is_running:  # the status shows the run's progress meanwhile
            self.show_result(self.image.value)

    def _show_ct_fields(self, *_: Any) -> None:
        """The HU threshold, minimum area and tissue model are CT settings: greyed out while
        a radiograph is chosen (its detector's settings are ``XrayParams``)."""
        ct = not is_radiograph_layer(self.image.value)
        for field in (self.threshold_hu, self.min_area_mm2, self.adaptive, self.show_tissue):
            field.enabled = ct

    def params(self) -> CTParams:
        """The detection parameters currently set in the panel."""
        return CTParams().with_changes(threshold_hu=float(self.threshold_hu.value),
                                       min_area_mm2=float(self.min_area_mm2.value),
                                       adaptive=bool(self.adaptive.value))

    @property
    def is_running(self) -> bool:
        return self._worker is not None

    def run(self, layer: Layer | None = None) -> None:
        """Detect on ``layer`` (default: the chosen one); queued while a run is going on."""
        layer = layer if layer is not None else self.image.value
        if layer is None or not (VOLUME_KEY in layer.metadata or is_radiograph_layer(layer)):
            show_info("Open a CT series or a radiograph with napari-calcinosis first.")
            return
        if self.is_running:
            if layer not in self._pending:
                self._pending.append(layer)
            return
        self._start(layer)

    def _start(self, layer: Layer) -> None:
        if is_radiograph_layer(layer):
            image, params = layer.metadata[RADIOGRAPH_KEY], XrayParams()
        else:
            image, params = layer.metadata[VOLUME_KEY], self.params()
        # The study's other runs, taken now: runs go one at a time, so none joins meanwhile.
        others = self._session.series_results(layer)
        worker = thread_worker(_detect_steps, start_thread=False)(image, params, others)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda result: self._on_result(layer, result))
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.run_button.enabled = False
        self.progress.max, self.progress.value, self.progress.visible = 100, 0, True
        self.status.value = f"Detecting on {layer.name} ..."
        worker.start()

    # -- worker callbacks (main thread) -------------------------------------------------------
    def _on_progress(self, step: tuple[float | None, str]) -> None:
        fraction, message = step
        if fraction is None:  # a step without fractions: a busy bar
            self.progress.max = 0
        else:
            self.progress.max = 100
            self.progress.value = percent(fraction)
        self.status.value = message

    def _on_error(self, exc: BaseException) -> None:
        if isinstance(exc, CalcinosisError):
            show_error(toast_text(str(exc)))
        else:
            show_error(f"Calcification detection failed: {type(exc).__name__}: {exc}")
        self.status.value = "Detection failed."

    def _on_finished(self) -> None:
        self._worker = None
        self.run_button.enabled = True
        self.progress.visible = False
        if self._pending:
            self._start(self._pending.pop(0))

    def _on_result(self, image: Layer, result: Any) -> None:
        if image not in self._viewer.layers:
            return  # closed while detecting
        self._remove_results(image)
        radiograph = is_radiograph_layer(image)
        selected = list(self._viewer.layers.selection)
        # the session takes the run in; every panel reads it from there
        self._session.take_result(image, result)
        points = None
        for data, kwargs, kind in self._result_layers(image, result):
            # Shown with their image only: a radiograph's share no frame with a CT's.
            kwargs["visible"] = image.visible
            kwargs["units"] = _units(image)  # the image's (mm, or none named)
            new = Layer.create(data, kwargs, kind)
            if radiograph and kind == "labels":
                outline_labels(new)
            self._viewer.layers.append(new)
            if kind == "points":
                self._connect_points(new)
                points = new
        image.events.visible.connect(self._follow_visibility)
        if self.show_tissue.value and not radiograph:
            self._add_tissue(image)
        if image.visible and points is not None:
            self._viewer.layers.selection.active = points
            self._go_to_first(points)
        else:  # a hidden series' layers must not take the selection (napari gives it them)
            kept = [layer for layer in selected if layer in self._viewer.layers]
            self._viewer.layers.selection.clear()
            self._viewer.layers.selection.update(kept)
            if kept:
                self._viewer.layers.selection.active = kept[-1]
        if self.image.value is None:  # a panel docked by detection on open: fill its choices
            self._refresh_choices()
        self.show_result(self.image.value)

    def _go_to_first(self, points: Layer) -> None:
        """Show the slice of the first lesion (lowest id) of a new run, centred."""
        if len(points.data) == 0:
            return
        ids = points.features["id"].to_numpy()
        row = int(np.argmin(ids))
        center_on(self._viewer, np.asarray(points.data_to_world(points.data[row])))

    def show_result(self, image: Layer | None) -> None:
        """Status and summary of ``image``'s latest result: its own count and warnings, and
        the summary of its study (from the CT when one was analysed)."""
        result = None if image is None else self._session.result_of(image)
        if result is None:
            self.status.value = "" if image is None else f"{image.name}: not analysed yet."
            return
        review = self._session.review
        in_review = review is not None and bool(self._session.series_results(image))
        # the findings as reviewed: rejected lesions gone, added ones in, the reader's calls
        shown = review.effective.summary if in_review else None
        self.summary.value = summary_text(result.summary if shown is None else shown)
        threshold = getattr(result, "threshold_hu", None)
        used = f" (threshold {threshold:.0f} HU)" if threshold is not None else ""
        text = f"{len(result.lesions)} calcifications on {image.name}{used}."
        if in_review:
            reviewed = len(review.lesions_of(series_of(image)))
            if reviewed != len(result.lesions):
                text += f" After the reader's review: {reviewed}."
        if is_radiograph_layer(image) and shown is not None and shown.source == "CT":
            text += (" The summary below comes from the CT: this radiograph's dots are listed "
                     "in the findings, not counted again.")
        warnings = "\n".join(getattr(result, "warnings", []) or [])
        self.status.value = text + (f"\n{warnings}" if warnings else "")

    def _result_layers(self, image: Layer, result: Any) -> list:
        if is_radiograph_layer(image):
            radiograph, geometry = image.metadata[RADIOGRAPH_KEY], image_geometry(image)
            return [radiograph_labels_data(radiograph, result.lesion_labels, result.lesions,
                                           name=f"{image.name} lesions", geometry=geometry),
                    radiograph_points_data(radiograph, result.lesions,
                                           name=f"{image.name} lesion centroids",
                                           geometry=geometry)]
        volume = image.metadata[VOLUME_KEY]
        return [lesion_labels_data(volume, result.lesion_labels, result.lesions,
                                   name=f"{image.name} lesions"),
                lesion_points_data(volume, result.lesions,
                                   name=f"{image.name} lesion centroids")]

    def _add_tissue(self, image: Layer) -> None:
        """Add the tissue-compartment layer of ``image``'s result (made only when asked for:
        a large Labels layer costs the main thread about half a second)."""
        result = self._session.result_of(image)  # CT only: radiographs have no tissue model
        if result is None or getattr(result, "tissue_labels", None) is None:
            return
        names = getattr(result, "tissue_names", None) or dict(TISSUE_NAMES)
        data, kwargs, kind = tissue_labels_data(image.metadata[VOLUME_KEY],
                                                result.tissue_labels, names,
                                                name=f"{image.name} tissue")
        kwargs["visible"], kwargs["units"] = image.visible, _units(image)
        index = self._viewer.layers.index(image) + 1  # just above the CT, under the lesions
        self._viewer.layers.insert(index, Layer.create(data, kwargs, kind))

    def _follow_visibility(self, event: Any) -> None:
        """Show or hide an image's result layers with the image (the tissue compartments
        only while their checkbox is ticked)."""
        image = event.source
        uid = series_of(image)
        for layer in self._viewer.layers:
            meta = layer.metadata.get(SOURCE_KEY, {})
            if meta.get("kind") in RESULT_KINDS and meta.get("series_instance_uid") == uid:
                shown = meta["kind"] != "tissue_labels" or bool(self.show_tissue.value)
                layer.visible = bool(image.visible) and shown

    def _remove_results(self, image: Layer) -> None:
        uid = series_of(image)
        for layer in list(self._viewer.layers):
            meta = layer.metadata.get(SOURCE_KEY, {})
            if meta.get("kind") in RESULT_KINDS and meta.get("series_instance_uid") == uid:
                self._viewer.layers.remove(layer)

    # -- navigation -----------------------------------------------------------------------------
    def _connect_points(self, points: Layer) -> None:
        def on_selection(*_: Any) -> None:
            selected = list(points.selected_data)
            if len(selected) == 1:
                world = np.asarray(points.data_to_world(points.data[selected[0]]))
                center_on(self._viewer, world)

        points.selected_data.events.items_changed.connect(on_selection)

    def go_to_lesion(self, lesion_id: int) -> bool:
        """Select the centroid point of ``lesion_id`` (which centres the viewer on it)."""
        for layer in self._viewer.layers:
            if layer.metadata.get(SOURCE_KEY, {}).get("kind") == "lesion_points":
                rows = np.flatnonzero(layer.features["id"].to_numpy() == lesion_id)
                if rows.size:
                    self._viewer.layers.selection.active = layer
                    layer.selected_data = {int(rows[0])}
                    return True
        return False

    def _toggle_tissue(self, visible: bool) -> None:
        shown = set()
        for layer in self._viewer.layers:
            meta = layer.metadata.get(SOURCE_KEY, {})
            if meta.get("kind") == "tissue_labels":
                layer.visible = bool(visible)
                shown.add(meta.get("series_instance_uid"))
        if visible:
            for image in [lyr for lyr in self._viewer.layers if VOLUME_KEY in lyr.metadata
                          and self._session.result_of(lyr) is not None]:
                if series_of(image) not in shown:
                    self._add_tissue(image)

    def _show_table(self) -> None:
        """napari's features table of the chosen series' lesions (it shows the features of
        the selected layers: the series' lesion points are selected first)."""
        image = self.image.value
        uid = None if image is None else series_of(image)
        points = next((layer for layer in self._viewer.layers
                       if layer.metadata.get(SOURCE_KEY, {}).get("kind") == "lesion_points"
                       and series_of(layer) == uid), None) if uid else None
        if points is None:
            name = "this image" if image is None else image.name
            show_info(f"No lesions to list yet: detect calcifications on {name} first.")
            return
        self._viewer.layers.selection.active = points
        self._viewer.window.add_plugin_dock_widget("napari", "Features table widget")
