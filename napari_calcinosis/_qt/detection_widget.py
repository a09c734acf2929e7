"""Detection panel: detect calcifications on a CT or a radiograph in the background and show
the results (lesion labels and centroid points on the image, the study's summary)."""

import queue
from concurrent.futures import ThreadPoolExecutor
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

from .._layers import RADIOGRAPH_KEY, VOLUME_KEY
from ..core.errors import CalcinosisError
from ..core.findings import Summary
from ..core.params import CTParams
from . import autodetect
from .layers import (
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
    summary_text,
    tissue_labels_data,
)

if TYPE_CHECKING:
    import napari

RESULT_KINDS = ("lesion_labels", "lesion_points", "tissue_labels")
#: Private key of the CT layer's metadata holding its latest ``detect_ct.CTResult``.
RESULT_KEY = "_calcinosis_ct_result"
#: Private key of a radiograph layer's metadata holding its latest ``detect_xray.XrayResult``.
XRAY_RESULT_KEY = "_calcinosis_xray_result"


def result_of(layer: Any) -> Any:
    """The latest detection result stored on a CT or radiograph layer (``None``: none yet)."""
    meta = getattr(layer, "metadata", {})
    return meta.get(RESULT_KEY, meta.get(XRAY_RESULT_KEY))


def _detect_steps(image: Any, params: Any, others: list | None = None):
    """Generator for ``thread_worker``: yields ``(fraction, message)``, returns the result of
    CT detection (``image`` a Volume) or radiograph detection (a Radiograph).

    The core reports progress through a callback; the analysis runs in one more thread so that
    this generator can pass the callback's messages on as they come. ``others`` are the
    study's other analysed series (``SeriesResult``): when the new result completes a CT and
    a radiograph, the CT is registered to the radiograph here, in the worker, so that the
    assembly on the main thread finds the registration done (:func:`_prepare_ct_link`).
    """
    from ..core.detect_ct import analyze_volume
    from ..core.detect_xray import analyze_radiograph
    from ..core.model import Radiograph

    analyze = analyze_radiograph if isinstance(image, Radiograph) else analyze_volume
    messages: queue.Queue = queue.Queue()
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(analyze, image, params=params,
                             progress=lambda f, m: messages.put((f, m)))
        while not (future.done() and messages.empty()):
            try:
                yield messages.get(timeout=0.05)
            except queue.Empty:
                continue
        result = future.result()
    if any((item.xray is not None) != isinstance(image, Radiograph) for item in others or []):
        yield (1.0, "Registering the CT to the radiograph ...")
        _prepare_ct_link(image, result, others)
    return result


def _prepare_ct_link(image: Any, result: Any, others: list) -> int:
    """Register the study's CT to its frontal radiographs (worker thread), with ``result``
    as the new run of ``image`` in place of any earlier one."""
    from ..core.analysis import SeriesResult, series_entry
    from ..core.model import Radiograph
    from ..core.xray_ct_link import prepare_links

    uid = image.info.series_instance_uid
    xray = isinstance(image, Radiograph)
    items = [item for item in others if item.entry.series_instance_uid != uid]
    items.append(SeriesResult(series_entry(image), image, ct=None if xray else result,
                              xray=result if xray else None))
    return prepare_links(items)


def _tissue_names() -> dict[int, str]:
    from ..core.detect_ct import TISSUE_NAMES

    return dict(TISSUE_NAMES)


def study_of(layer: Any) -> str:
    """The StudyInstanceUID of a calcinosis image layer (its series UID when it has none)."""
    meta = layer.metadata
    return str(meta.get("study_instance_uid") or "") or \
        f"series:{meta.get(SOURCE_KEY, {}).get('series_instance_uid', '')}"


def study_series(layers: Any, study_uid: str) -> list:
    """The analysed series of a study from the detection results on its layers, as
    ``analysis.SeriesResult`` (volumes first, then radiographs; one per series)."""
    from ..core.analysis import SeriesResult, series_entry
    from ..core.model import Radiograph

    items: dict[str, SeriesResult] = {}
    for layer in layers:
        result = result_of(layer)
        image = layer.metadata.get(VOLUME_KEY) or layer.metadata.get(RADIOGRAPH_KEY)
        if result is None or image is None or study_of(layer) != study_uid:
            continue
        xray = isinstance(image, Radiograph)
        items.setdefault(image.info.series_instance_uid, SeriesResult(
            series_entry(image), image, ct=None if xray else result,
            xray=result if xray else None))
    return sorted(items.values(), key=lambda item: item.xray is not None)


def study_summary(layers: Any, study_uid: str) -> Summary | None:
    """The study's summary from the detection results on its layers, by the contract's rule
    (the CT when one was analysed, else the first frontal radiograph), assembled as
    ``napari-calcinosis analyze`` assembles it; ``None`` without any result."""
    from ..core.analysis import assemble_result
    from ..core.model import Study

    ordered = study_series(layers, study_uid)
    if not ordered:
        return None
    study = Study(volumes=[s.image for s in ordered if s.ct is not None],
                  radiographs=[s.image for s in ordered if s.xray is not None])
    return assemble_result(study, ordered).findings.summary


class DetectionWidget(Container):
    """Detect soft-tissue calcifications on a CT or radiograph layer, with parameters and
    the study's summary."""

    def __init__(self, viewer: "napari.viewer.Viewer"):
        super().__init__(labels=True)
        from .session import get_session

        self._viewer = viewer
        # The viewer's study session takes every run in and numbers the lesions across the
        # study's series (a radiograph's after the CT's), as the findings will.
        get_session(viewer)
        defaults = CTParams()
        self.image = ComboBox(label="Image", choices=self._image_choices)
        self.threshold_hu = FloatSpinBox(label="Threshold (HU)", value=defaults.threshold_hu,
                                         min=50.0, max=2000.0, step=10.0)
        self.min_area_mm2 = FloatSpinBox(label="Min area (mm²)", value=defaults.min_area_mm2,
                                         min=0.0, max=100.0, step=0.5)
        self.adaptive = CheckBox(text="Adaptive threshold", value=defaults.adaptive)
        self.show_tissue = CheckBox(text="Show tissue compartments", value=False)
        self.autodetect = CheckBox(text="Detect when a CT or radiograph opens",
                                   value=autodetect.is_enabled())
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
        self.autodetect.changed.connect(autodetect.set_enabled)
        self.show_tissue.changed.connect(self._toggle_tissue)
        self.image.changed.connect(self._on_image_chosen)
        viewer.layers.events.inserted.connect(self._refresh_choices)
        viewer.layers.events.removed.connect(self._refresh_choices)
        self._show_ct_fields()

    # -- choosing what to run on -------------------------------------------------------------
    def _image_choices(self, _widget: Any = None) -> list[tuple[str, Layer]]:
        return [(layer.name, layer) for layer in self._viewer.layers
                if is_detectable_layer(layer)]

    def _refresh_choices(self, event: Any = None) -> None:
        self.image.reset_choices()

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
            from ..core.xray_params import XrayParams

            image, params = layer.metadata[RADIOGRAPH_KEY], XrayParams()
        else:
            image, params = layer.metadata[VOLUME_KEY], self.params()
        # The study's other runs, taken now: runs go one at a time, so none joins meanwhile.
        others = study_series(self._viewer.layers, study_of(layer))
        worker = thread_worker(_detect_steps, start_thread=False)(image, params, others)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda result: self._on_result(layer, result))
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.run_button.enabled = False
        self.progress.value, self.progress.visible = 0, True
        self.status.value = f"Detecting on {layer.name} ..."
        worker.start()

    # -- worker callbacks (main thread) -------------------------------------------------------
    def _on_progress(self, step: tuple[float, str]) -> None:
        fraction, message = step
        self.progress.value = int(round(100 * min(max(fraction, 0.0), 1.0)))
        self.status.value = message

    def _on_error(self, exc: BaseException) -> None:
        if isinstance(exc, CalcinosisError):
            show_error(str(exc))
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
        # for the other panels (review, report): the session takes the run from here
        image.metadata[XRAY_RESULT_KEY if radiograph else RESULT_KEY] = result
        for data, kwargs, kind in self._result_layers(image, result):
            # Shown with their image only: a radiograph's share no frame with a CT's.
            kwargs["visible"] = image.visible
            new = Layer.create(data, kwargs, kind)
            if radiograph and kind == "labels":
                outline_labels(new)
            self._viewer.layers.append(new)
            if kind == "points":
                self._connect_points(new)
        image.events.visible.connect(self._follow_visibility)
        if self.show_tissue.value and not radiograph:
            self._add_tissue(image)
        self.show_result(image)

    def show_result(self, image: Layer | None) -> None:
        """Status and summary of ``image``'s latest result: its own count and warnings, and
        the summary of its study (from the CT when one was analysed)."""
        result = None if image is None else result_of(image)
        if result is None:
            self.status.value = "" if image is None else f"{image.name}: not analysed yet."
            return
        shown = study_summary(self._viewer.layers, study_of(image))
        self.summary.value = summary_text(result.summary if shown is None else shown)
        threshold = getattr(result, "threshold_hu", None)
        used = f" (threshold {threshold:.0f} HU)" if threshold is not None else ""
        text = f"{len(result.lesions)} calcifications on {image.name}{used}."
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
        result = image.metadata.get(RESULT_KEY)  # CT only: radiographs have no tissue model
        if result is None or getattr(result, "tissue_labels", None) is None:
            return
        names = getattr(result, "tissue_names", None) or _tissue_names()
        data, kwargs, kind = tissue_labels_data(image.metadata[VOLUME_KEY],
                                                result.tissue_labels, names,
                                                name=f"{image.name} tissue")
        kwargs["visible"] = image.visible
        index = self._viewer.layers.index(image) + 1  # just above the CT, under the lesions
        self._viewer.layers.insert(index, Layer.create(data, kwargs, kind))

    def _follow_visibility(self, event: Any) -> None:
        """Show or hide an image's result layers with the image (the tissue compartments
        only while their checkbox is ticked)."""
        image = event.source
        uid = image.metadata.get("calcinosis", {}).get("series_instance_uid")
        for layer in self._viewer.layers:
            meta = layer.metadata.get(SOURCE_KEY, {})
            if meta.get("kind") in RESULT_KINDS and meta.get("series_instance_uid") == uid:
                shown = meta["kind"] != "tissue_labels" or bool(self.show_tissue.value)
                layer.visible = bool(image.visible) and shown

    def _remove_results(self, image: Layer) -> None:
        uid = image.metadata["calcinosis"]["series_instance_uid"]
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
            for image in [lyr for lyr in self._viewer.layers if RESULT_KEY in lyr.metadata]:
                if image.metadata["calcinosis"]["series_instance_uid"] not in shown:
                    self._add_tissue(image)

    def _show_table(self) -> None:
        self._viewer.window.add_plugin_dock_widget("napari", "Features table widget")
