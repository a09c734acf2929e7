"""One study session per viewer: the reader's review shared by every panel.

:func:`get_session` gives the viewer's :class:`StudySession` (made on first use). It follows
the viewer's layers: the study of the last opened calcinosis image is the current study (its
annotation record is opened from the store, so work comes back when the study is opened
again); when the detection panel hands over a run (:meth:`StudySession.take_result`: a
series' ``CTResult`` or ``XrayResult``), it joins the study's
:class:`~napari_calcinosis.review.StudyReview`, and the result layers the panel adds (their
metadata names the series) show it. Every edit goes through the
session: the review changes the record, saves it, recomputes the effective findings and the
differential; then the overlay is redrawn (rejected lesions leave the points and the
labels, colours follow the reader's layers) and :attr:`StudySession.changed` fires.

The reader may also edit the overlay directly: a point added in the centroid layer is a
lesion added by clicking, a deleted point is a rejected lesion, and painting a new label
value into the lesion labels adds a painted lesion (painting or erasing a manual lesion
re-measures it).
"""

import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Labels, Points
from napari.utils.notifications import show_error, show_warning
from psygnal import Signal
from qtpy.QtCore import QTimer

from napari_calcinosis._napari.layer_data import RADIOGRAPH_KEY, STUDY_WARNINGS, VOLUME_KEY
from napari_calcinosis._napari.messages import toast_text
from napari_calcinosis.ct import mask_from_click
from napari_calcinosis.pipeline import series_entry
from napari_calcinosis.review import StudyReview
from napari_calcinosis.types import CalcinosisError

from .ct_projection import draw_ct_projections
from .result_layers import SOURCE_KEY, center_on, series_of, study_of
from .session_overlay import LayerPair, draw_labels, draw_points, from_display
from .viewing import LESION_FIELD_MM, zoom_to

if TYPE_CHECKING:
    import napari

IMAGE_KINDS = ("volume", "radiograph")
_SESSIONS: "weakref.WeakKeyDictionary[Any, StudySession]" = weakref.WeakKeyDictionary()


def get_session(viewer: "napari.viewer.Viewer") -> "StudySession":
    """The viewer's study session (created and bound to the viewer on first use).

    napari hands plugin widgets a short-lived proxy of the viewer; the session is kept for
    the viewer behind it, so every panel of one viewer shares one session.
    """
    viewer = getattr(viewer, "__wrapped__", viewer)
    session = _SESSIONS.get(viewer)
    if session is None:
        session = _SESSIONS[viewer] = StudySession(viewer)
    return session


def follow(widget: Any, signal: Any, callback: Callable[..., Any]) -> None:
    """Connect ``callback`` to a session signal for as long as ``widget`` lives."""
    signal.connect(callback)

    def _disconnect(*_: Any) -> None:
        signal.disconnect(callback, missing_ok=True)

    widget.native.destroyed.connect(_disconnect)


def _meta(layer: Any) -> dict:
    return layer.metadata.get(SOURCE_KEY, {}) if hasattr(layer, "metadata") else {}


class StudySession:
    """The current study of a viewer, its review, and the result layers that show it.

    Attributes
    ----------
    changed : psygnal.Signal
        Emitted after anything changed (study, run, record): panels re-read the session.
    selection_changed : psygnal.Signal
        Emitted when the selected lesion points change.
    review : StudyReview or None
        The current study's review (``None`` without a calcinosis image).
    """

    changed = Signal()
    selection_changed = Signal()

    def __init__(self, viewer: "napari.viewer.Viewer"):
        self._viewer_ref = weakref.ref(viewer)
        self.review: StudyReview | None = None
        self._pairs: dict[str, LayerPair] = {}
        self._results: dict[str, Any] = {}  # series UID -> its latest detection result
        self._syncing = False
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self._on_removed)
        for layer in list(viewer.layers):
            self._adopt(layer)

    @property
    def viewer(self) -> "napari.viewer.Viewer | None":
        return self._viewer_ref()

    @property
    def study_uid(self) -> str | None:
        return None if self.review is None else self.review.study_instance_uid

    # -- detection runs ------------------------------------------------------------------------
    def take_result(self, image: Any, result: Any) -> None:
        """A new detection run of an image layer's series (from the detection panel)."""
        uid = series_of(image)
        if uid is None:
            return
        self._results[uid] = result
        self._take_run(uid)

    def result_of(self, layer: Any) -> Any:
        """The latest detection result of a layer's series (``None``: not analysed yet)."""
        return self._results.get(series_of(layer))

    def series_results(self, layer: Any) -> list:
        """The analysed series of ``layer``'s study as ``pipeline.SeriesResult`` (volumes
        first, then radiographs), ``[]`` when it is not the current study."""
        if self.review is None or study_of(layer) != self.review.study_instance_uid:
            return []
        return [item for item in self.review.series_results() if item.result is not None]

    # -- edits (every one is saved, redrawn and announced) -----------------------------------
    def run(self, action: Callable[[StudyReview], Any], *, redraw: bool = True) -> Any:
        """Apply ``action(review)``; errors of the calcinosis family become a notification."""
        if self.review is None:
            show_error("Open a study with napari-calcinosis first.")
            return None
        try:
            result = action(self.review)
        except CalcinosisError as exc:
            show_error(toast_text(str(exc)))
            if redraw:  # a refused stroke or point leaves the overlay as the record says
                for pair in self._pairs.values():
                    pair.drawn = None  # the labels hold the stroke: draw them again
                self.redraw()
            return None
        if redraw:
            self.redraw()
        self.changed.emit()
        return result

    def edit(self, lesion_ids: Iterable[int], **values: str) -> None:
        """Set the tissue layer / morphology of lesions."""
        ids = list(lesion_ids)
        self.run(lambda r: r.edit(ids, **values))

    def set_state(self, lesion_ids: Iterable[int], state: str) -> None:
        """Accept, reject or reset lesions."""
        ids = list(lesion_ids)
        self.run(lambda r: r.set_state(ids, state))

    def restore(self, lesions: list) -> None:
        """Bring rejected lesions back."""
        self.run(lambda r: r.restore(lesions))

    def override_summary(self, name: str, value: str | None) -> None:
        """The reader's overall extent, form or symmetry call (``None`` clears)."""
        self.run(lambda r: r.override_summary(name, value))

    def override_region(self, region: str, call: str | None) -> None:
        """The reader's symmetry call of one region (``None`` clears)."""
        self.run(lambda r: r.override_region(region, call))

    def set_clinical(self, clinical: Any) -> None:
        """Store the clinical input (a ``ClinicalInput`` or ``None``)."""
        self.run(lambda r: r.set_clinical(clinical), redraw=False)

    def add_manual(self, series_uid: str, mask: np.ndarray) -> Any:
        """Add a lesion from a voxel mask (storage layout of the series' volume)."""
        return self.run(lambda r: r.add_manual(series_uid, mask))

    def add_by_click(self, series_uid: str, world: np.ndarray) -> Any:
        """Add the deposit under a clicked world point (grown from the clicked voxel)."""
        pair, review = self._pairs.get(series_uid), self.review
        if pair is None or review is None or series_uid not in review.runs:
            return None
        run = review.runs[series_uid]
        if run.is_radiograph:
            show_error("Lesions can be added by hand on a CT series only; on a radiograph, "
                       "review the detected ones.")
            return None
        index = pair.world_to_index(world)
        mask = mask_from_click(run.volume, index, threshold_hu=float(
            getattr(run.result, "threshold_hu", 130.0)))
        return self.add_manual(series_uid, mask)

    def prepare_adding(self, series_uid: str) -> None:
        """Build the measuring context of a series in a thread (the reader is about to add)."""
        review = self.review
        if review is None or series_uid not in review.runs or review.measuring_ready(series_uid) \
                or review.runs[series_uid].is_radiograph:
            return
        from napari.qt.threading import thread_worker

        worker = thread_worker(review.measuring_context, start_thread=False)(series_uid)
        worker.errored.connect(lambda exc: None)  # a failure shows when the lesion is added
        worker.start()

    # -- selection and navigation ------------------------------------------------------------
    def layer_pairs(self) -> list[LayerPair]:
        """The image and result layers of each series of the current study."""
        study = self.study_uid
        return [p for p in self._pairs.values()
                if p.image is not None and study_of(p.image) == study]

    def selected_ids(self) -> list[int]:
        """Ids of the lesions selected in the centroid layers."""
        ids: list[int] = []
        for pair in self.layer_pairs():
            ids += pair.selected_ids()
        return ids

    def select(self, lesion_ids: Iterable[int], *, center: bool = True) -> None:
        """Select lesions' points (and centre the view on the first one, at a field of view
        of :data:`~napari_calcinosis._qt.viewing.LESION_FIELD_MM`)."""
        wanted = {int(i) for i in lesion_ids}
        for pair in self.layer_pairs():
            rows = pair.select(wanted)
            viewer = self.viewer
            if rows and center and viewer is not None:
                viewer.layers.selection.active = pair.points
                center_on(viewer, pair.row_world(rows[0]))
                zoom_to(viewer, LESION_FIELD_MM)  # a 3 mm deposit is more than a few pixels
                center = False

    def lesion_at(self, world: np.ndarray) -> int | None:
        """Id of the effective lesion whose voxels lie under a world point (else None)."""
        review = self.review
        for pair in self.layer_pairs():
            if pair.labels is None or review is None or pair.uid not in review.runs \
                    or not pair.labels.visible:  # a hidden radiograph's under a CT click
                continue
            value = pair.labels.get_value(np.asarray(world, float), world=True)
            if value is not None and int(value) > 0:
                lesion_id = int(value) + review.runs[pair.uid].id_offset
                if review.lesion(lesion_id) is not None:
                    return lesion_id
        return None

    def ordered_ids(self) -> list[int]:
        """Ids of the effective lesions that have a point, in id order."""
        return sorted(i for pair in self.layer_pairs() for i in pair.row_ids)

    # -- drawing -----------------------------------------------------------------------------
    def redraw(self) -> None:
        """Show the effective lesions in every result layer of the study."""
        if self.review is None:
            return
        self._syncing = True
        try:
            for uid, pair in self._pairs.items():
                if uid in self.review.runs:
                    draw_points(pair, self.review, uid)
                    draw_labels(pair, self.review, uid)
            draw_ct_projections(self.viewer, self.review, self._pairs)
        finally:
            self._syncing = False

    # -- following the viewer's layers ------------------------------------------------------
    def _on_inserted(self, event: Any) -> None:
        self._adopt(event.value)

    def _on_removed(self, event: Any) -> None:
        layer, meta = event.value, _meta(event.value)
        uid = meta.get("series_instance_uid")
        pair = self._pairs.get(uid)
        if pair is not None and pair.forget(layer) and pair.is_empty:
            self._pairs.pop(uid, None)
        if meta.get("kind") in IMAGE_KINDS and self.review is not None:
            viewer = self.viewer
            left = [lyr for lyr in (viewer.layers if viewer is not None else [])
                    if _meta(lyr).get("kind") in IMAGE_KINDS
                    and study_of(lyr) == self.review.study_instance_uid]
            self.review.remove_series(uid)
            if not left:
                self.review = None
            self.changed.emit()

    def _adopt(self, layer: Any) -> None:
        meta = _meta(layer)
        kind, uid = meta.get("kind"), meta.get("series_instance_uid")
        if kind in IMAGE_KINDS:
            self._open_image(layer)
        elif kind in ("lesion_points", "lesion_labels") and uid:
            pair = self._pairs.setdefault(uid, LayerPair(uid))
            if isinstance(layer, Points):
                pair.points = layer
                layer.events.data.connect(lambda e, p=pair: self._on_points_data(p, e))
                layer.selected_data.events.items_changed.connect(self._on_selection)
            elif isinstance(layer, Labels):
                pair.labels = layer
                layer.events.paint.connect(lambda e, p=pair: self._defer(self._on_paint, p))
            self._take_run(uid)

    def _open_image(self, layer: Any) -> None:
        study = study_of(layer)
        if self.review is None or self.review.study_instance_uid != study:
            try:
                self.review = StudyReview(study)
            except CalcinosisError as exc:
                show_error(str(exc))
                return
            for message in self.review.warnings:
                show_warning(message)
        warnings = _meta(layer).get(STUDY_WARNINGS)
        if warnings is not None:  # the reader's layers carry the loaded study's warnings
            self.review.set_study_warnings(warnings)
        image = _image(layer)
        if image is not None:
            self.review.add_series(series_entry(image), image)
        uid = _meta(layer)["series_instance_uid"]
        self._pairs.setdefault(uid, LayerPair(uid)).image = layer
        self._take_run(uid)

    def _take_run(self, uid: str) -> None:
        """Join the detection result of series ``uid`` to the review (once per result)."""
        pair = self._pairs.get(uid)
        if pair is None or pair.image is None or self.review is None:
            return
        result = self._results.get(uid)
        image = _image(pair.image)
        if study_of(pair.image) != self.review.study_instance_uid:
            return
        if result is not None and image is not None:
            run = self.review.runs.get(uid)
            if run is None or run.result is not result:
                try:
                    self.review.set_run(series_entry(image), image, result)
                except CalcinosisError as exc:
                    show_error(str(exc))
                    return
        self.redraw()
        self.changed.emit()

    # -- the reader's edits on the overlay ----------------------------------------------------
    def _on_selection(self, *_: Any) -> None:
        if not self._syncing:
            self.selection_changed.emit()

    def _defer(self, handler: Callable[[LayerPair], None], pair: LayerPair) -> None:
        # Layer events arrive in the middle of napari's own edit; act once it is done.
        if not self._syncing:
            QTimer.singleShot(0, lambda: handler(pair))

    def _on_points_data(self, pair: LayerPair, event: Any) -> None:
        if self._syncing:
            return
        action = str(getattr(getattr(event, "action", ""), "value", ""))
        if action == "added":
            rows = [i % len(pair.points.data) for i in event.data_indices]
            worlds = [pair.points.data_to_world(pair.points.data[i]) for i in rows]
            QTimer.singleShot(0, lambda: self._added_points(pair, worlds))
        elif action == "removed":
            ids = [pair.row_ids[i] for i in event.data_indices if 0 <= i < len(pair.row_ids)]
            QTimer.singleShot(0, lambda: self.set_state(ids, "rejected"))
        elif action == "changed" and len(pair.points.data) == len(pair.row_ids):
            QTimer.singleShot(0, self.redraw)  # a moved point snaps back to its lesion

    def _added_points(self, pair: LayerPair, worlds: list) -> None:
        for world in worlds:
            self.add_by_click(pair.uid, np.asarray(world))
        if not worlds:
            self.redraw()

    def _on_paint(self, pair: LayerPair) -> None:
        review = self.review
        if review is None or pair.labels is None or pair.uid not in review.runs:
            return
        current = from_display(np.asarray(pair.labels.data), pair)
        expected = review.effective_labels(pair.uid)
        if expected is None or current.shape != expected.shape:
            return
        self.run(lambda r: _apply_painting(r, pair.uid, current, expected))


def _apply_painting(review: StudyReview, uid: str, current: np.ndarray,
                    expected: np.ndarray) -> None:
    """Turn what the reader painted into manual lesions (new value: new lesion)."""
    diff = current != expected
    values = set(np.unique(current[diff]).tolist()) | set(np.unique(expected[diff]).tolist())
    values.discard(0)
    offset = review.runs[uid].id_offset
    by_id = {les.id: les for les in review.lesions_of(uid)}
    for value in sorted(values):
        lesion = by_id.get(value + offset)
        mask = current == value
        if lesion is not None and "annotation_uid" in lesion.extra:
            review.update_manual(lesion.extra["annotation_uid"], mask)
        elif lesion is None and mask.any():
            review.add_manual(uid, mask)
        elif lesion is not None and not mask.any():
            review.set_state([lesion.id], "rejected")  # an automatic lesion erased whole
        # partial strokes over automatic lesions are undone by the redraw


def _image(layer: Any) -> Any:
    """The core Volume or Radiograph behind an image layer (``None`` for other layers)."""
    meta = layer.metadata
    return meta.get(VOLUME_KEY) or meta.get(RADIOGRAPH_KEY)
