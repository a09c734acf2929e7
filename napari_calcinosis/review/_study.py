"""One study under review: the automatic runs plus the reader's record, kept as one truth.

:class:`StudyReview` is what the napari panels share (and what a script can drive without
a viewer). It holds, for one StudyInstanceUID:

* the automatic detection run of each analysed series (:class:`SeriesRun`: a CT volume's
  or a radiograph's), assembled into the study's automatic findings by
  :func:`napari_calcinosis.pipeline.assemble_result`, the step ``napari-calcinosis analyze``
  uses (ids unique across series in the study's series order, CT volumes before radiographs;
  the summary from the CT when there is one, else from the radiograph; the same warnings);
* the reader's :class:`~napari_calcinosis.annotations.AnnotationRecord`, opened from and
  saved to an :class:`~napari_calcinosis.annotations.AnnotationStore` after every change;
* what follows from both: the effective findings
  (:func:`napari_calcinosis.annotations.apply_to_findings`: rejected lesions gone from every
  count, reader's layers and calls applied, manual lesions added), the effective label images
  and the differential (:func:`napari_calcinosis.classify.classify` with the reader's marks
  and the clinical input).

Every editing method changes the record, saves it and recomputes; nothing else changes
state, so whatever a panel shows was derived from the record and the runs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_calcinosis import __version__
from napari_calcinosis.annotations import (
    AnnotationRecord,
    AnnotationStore,
    AppliedAnnotations,
    SeriesLabels,
    VoxelMask,
    apply_to_findings,
    default_store,
    rekey,
    to_reader_marks,
    utc_now,
)
from napari_calcinosis.classify import Differential, classify
from napari_calcinosis.clinical import ClinicalInput
from napari_calcinosis.ct import lesion_context, measure_masks, placement_problem
from napari_calcinosis.pipeline import SeriesResult, assemble_result
from napari_calcinosis.summary import form_of
from napari_calcinosis.types import (
    AnalysisError,
    CTParams,
    Findings,
    Lesion,
    Radiograph,
    SeriesEntry,
    Study,
    Volume,
)

from ._distribution_table import OverallRow, RegionRow, overall_rows, region_rows

__all__ = ["SeriesRun", "StudyReview"]


@dataclass
class SeriesRun:
    """The latest automatic detection run of one series.

    ``volume`` is the series' image (a :class:`~napari_calcinosis.types.model.Volume` or a
    :class:`~napari_calcinosis.types.model.Radiograph`), ``result`` its
    :class:`~napari_calcinosis.ct.CTResult` or :class:`~napari_calcinosis.xray.XrayResult` (or
    anything with ``lesions``, ``lesion_labels``,
    ``summary`` and ``params``); label value ``v`` of its ``lesion_labels`` is lesion id
    ``v + id_offset`` in the study's findings.
    """

    volume: Any
    result: Any
    id_offset: int = 0

    @property
    def is_radiograph(self) -> bool:
        return isinstance(self.volume, Radiograph)


class StudyReview:
    """The reader's review of one study (see the module docstring).

    Parameters
    ----------
    study_instance_uid : str
        The study.
    store : AnnotationStore, optional
        Where the record lives (default: :func:`napari_calcinosis.annotations.default_store`).

    Attributes
    ----------
    study_warnings : list of str
        The loaded study's own warnings (``Study.warnings``: files skipped or ignored); the
        findings list them first, as the command line does.
    """

    def __init__(self, study_instance_uid: str, *, store: AnnotationStore | None = None):
        self.study_instance_uid = study_instance_uid
        self.store = store or default_store()
        self.record: AnnotationRecord = self.store.open(study_instance_uid)
        self.warnings: list[str] = list(self.record.warnings)
        self.series: dict[str, SeriesEntry] = {}
        self.images: dict[str, Any] = {}
        self.study_warnings: list[str] = []
        self.runs: dict[str, SeriesRun] = {}
        self.findings = self._empty_findings()
        self.effective = copy.deepcopy(self.findings)
        self.applied: AppliedAnnotations | None = None
        self.differential = Differential()
        self._contexts: dict[str, Any] = {}
        self.refresh()

    # -- series and runs -------------------------------------------------------------------
    def add_series(self, entry: SeriesEntry, image: Volume | Radiograph | None = None) -> None:
        """List an image series of the study (analysed or not) with its image."""
        uid = entry.series_instance_uid
        self.series.setdefault(uid, entry)
        if image is not None:
            self.images[uid] = image
        if uid not in self.runs and image is not None:
            self._assemble()
            self.refresh()

    def set_study_warnings(self, warnings: Sequence[str]) -> None:
        """The loaded study's own warnings (listed first in the findings)."""
        if list(warnings) != self.study_warnings:
            self.study_warnings = list(dict.fromkeys(warnings))
            self._assemble()
            self.refresh()

    def set_run(self, entry: SeriesEntry, volume: Volume | Radiograph, result: Any) -> None:
        """Take a new detection run of a series (a CT volume's or a radiograph's); the
        reader's decisions move onto it."""
        uid = entry.series_instance_uid
        self.series.setdefault(uid, entry)
        self.images[uid] = volume
        self.runs[uid] = SeriesRun(volume, result)
        self._contexts.pop(uid, None)
        self._assemble()
        before = self.record.modified
        if self.record.decisions:
            rekey(self.record, self.findings.lesions, self.label_images(),
                  spacing_mm=self._spacing())
        params = self.findings.parameters
        if params and params != self.record.detection_parameters and not self.record.is_empty:
            self.record.set_detection_parameters(params)
        if self.record.modified != before:
            self.save()
        self.refresh()

    def remove_series(self, series_instance_uid: str) -> None:
        """Forget a series (its layer was closed)."""
        listed = self.series.pop(series_instance_uid, None)
        self.images.pop(series_instance_uid, None)
        self._contexts.pop(series_instance_uid, None)
        if self.runs.pop(series_instance_uid, None) is not None or listed is not None:
            self._assemble()
            self.refresh()

    def label_images(self) -> dict[str, SeriesLabels]:
        """The automatic label image of every run, with its id offset."""
        return {uid: SeriesLabels(run.result.lesion_labels, run.id_offset)
                for uid, run in self.runs.items()}

    def effective_labels(self, series_instance_uid: str) -> np.ndarray | None:
        """The run's label image as the reader left it (rejected cleared, painted drawn)."""
        labels = None if self.applied is None else self.applied.lesion_labels
        item = (labels or {}).get(series_instance_uid)
        return None if item is None else getattr(item, "labels", item)

    # -- derived state ---------------------------------------------------------------------
    def refresh(self) -> None:
        """Recompute the effective findings and the differential from the runs and record."""
        labels = self.label_images() or None
        self.effective, self.applied = apply_to_findings(self.findings, self.record,
                                                         lesion_labels=labels)
        self.refresh_differential()

    def refresh_differential(self) -> None:
        """Recompute only the differential (after a change of the clinical input)."""
        marks = to_reader_marks(self.record, self.findings.lesions,
                                self.label_images() or None, spacing_mm=self._spacing())
        self.differential = classify(self.findings, self.clinical(), marks=marks)
        self.effective.differential = self.differential.to_json_list()

    def clinical(self) -> ClinicalInput | None:
        """The stored clinical input (``None`` when nothing was entered)."""
        return self.record.clinical_input()

    def lesion(self, lesion_id: int) -> Lesion | None:
        """The effective lesion with this id (``None`` when rejected or unknown)."""
        return next((les for les in self.effective.lesions if les.id == lesion_id), None)

    @property
    def rejected(self) -> list[Lesion]:
        """The rejected lesions of the current runs (automatic and manual), for restoring."""
        return [] if self.applied is None else list(self.applied.rejected)

    def lesions_of(self, series_instance_uid: str) -> list[Lesion]:
        """The effective lesions of one series."""
        return [les for les in self.effective.lesions
                if les.series_instance_uid == series_instance_uid]

    # -- the reader's edits (each one saved) ----------------------------------------------
    def edit(self, lesion_ids: Iterable[int], **values: str) -> None:
        """Set the tissue layer and/or morphology of lesions (``layer=``, ``morphology=``)."""
        for targets, kwargs in self._targets(lesion_ids):
            self.record.edit(targets, **kwargs, **values)
            for lesion in targets:
                manual = self.record.manual_for(lesion)
                if manual is not None:  # a re-measure after more painting keeps these
                    kept = set(manual.lesion.extra.get("reader_fields", [])) | set(values)
                    manual.lesion.extra["reader_fields"] = sorted(kept)
        self._changed()

    def set_state(self, lesion_ids: Iterable[int], state: str) -> None:
        """Accept, reject (``"rejected"``) or reset (``"unreviewed"``) lesions."""
        for targets, kwargs in self._targets(lesion_ids):
            self.record.set_state(targets, state, **kwargs)
        self._changed()

    def restore(self, lesions: Iterable[Lesion]) -> None:
        """Bring rejected lesions back (items of :attr:`rejected`)."""
        for lesion in lesions:
            self.record.restore(lesion)
        self._changed()

    def add_manual(self, series_instance_uid: str, mask: np.ndarray) -> Lesion:
        """Add a lesion the reader painted or clicked (a voxel mask of a run's volume).

        It is measured like a detected lesion (:mod:`napari_calcinosis.ct._manual`) and marked
        ``manual``.

        Raises
        ------
        AnalysisError
            When most of the mask lies outside the body or in bone
            (:func:`napari_calcinosis.ct.placement_problem`): nothing is added.

        Returns
        -------
        Lesion
            The new effective lesion (with its id in the study).
        """
        lesion = self._measure(series_instance_uid, mask)
        uid = self.record.add_manual(lesion, mask)
        self._changed()
        return next(les for les in self.effective.lesions
                    if les.extra.get("annotation_uid") == uid)

    def update_manual(self, annotation_uid: str, mask: np.ndarray) -> None:
        """Re-measure a manual lesion after more painting; the reader's own values stay."""
        item = self.record.manual_for(annotation_uid)
        if item is None:
            raise AnalysisError(f"No manual lesion {annotation_uid} in the annotation record.")
        if not np.any(mask):
            self.record.remove_manual(annotation_uid)  # erased completely
        else:
            lesion = self._measure(item.lesion.series_instance_uid, mask)
            kept = item.lesion.extra.get("reader_fields", [])
            for name in kept:
                setattr(lesion, name, getattr(item.lesion, name))
            lesion.extra.update(reader_fields=list(kept), annotation_uid=annotation_uid)
            lesion.source = "manual"
            item.lesion, item.mask = lesion, VoxelMask.from_bool(mask)
            item.modified = utc_now()
            self.record.touch()
        self._changed()

    def override_summary(self, name: str, value: str | None) -> None:
        """Set (``None``: clear) the reader's ``extent``, ``form`` or ``symmetry_call``."""
        auto = self.auto_summary_value(name)
        self.record.override_summary(name, value, auto=auto)
        self._changed()

    def override_region(self, region: str, call: str | None) -> None:
        """Set (``None``: clear) the reader's symmetry call of one body region."""
        auto = next((row.auto_call for row in self.region_rows() if row.region == region), None)
        self.record.override_region_symmetry(region, call, auto=auto)
        self._changed()

    def region_rows(self) -> list[RegionRow]:
        """The distribution table: one row per involved body region."""
        return region_rows(self.effective, self.record, params=self._params())

    def overall_rows(self) -> list[OverallRow]:
        """Overall symmetry call, extent and form, automatic beside the reader's."""
        auto = {name: self.auto_summary_value(name)
                for name in ("symmetry_call", "extent", "form")}
        return overall_rows(self.effective, auto)

    def set_clinical(self, clinical: ClinicalInput | None) -> None:
        """Store the clinical input (unknowns omitted) and recompute the differential."""
        self.record.set_clinical(clinical)
        self.save()
        self.refresh_differential()

    def auto_summary_value(self, name: str) -> str:
        """The automatic extent, form or symmetry call of the effective lesions."""
        info = self.effective.parameters.get("annotations", {}).get("summary_overrides", {})
        if name in info:
            return info[name]["auto"]
        if name == "form":  # a reader's extent changes the effective form, not the automatic
            return form_of(self.auto_summary_value("extent"))
        summary = self.effective.summary
        return summary.symmetry.call if name == "symmetry_call" else getattr(summary, name)

    def save(self) -> None:
        """Write the record (atomically) to the store."""
        self.store.save(self.record)

    # -- internals -------------------------------------------------------------------------
    def _changed(self) -> None:
        if self.runs and not self.record.detection_parameters:
            self.record.set_detection_parameters(self.findings.parameters)
        self.save()
        self.refresh()

    def _targets(self, lesion_ids: Iterable[int]) -> list[tuple[list[Lesion], dict[str, Any]]]:
        """Per series: the lesions to hand to the record and its label image and offset."""
        auto = {les.id: les for les in self.findings.lesions}
        known = {les.id: les for les in [*self.effective.lesions, *self.rejected]}
        groups: dict[str, list[Lesion]] = {}
        for lesion_id in lesion_ids:
            lesion = known.get(int(lesion_id))
            if lesion is None:
                raise AnalysisError(f"Lesion {lesion_id} is not in the current findings.")
            if "annotation_uid" not in lesion.extra:
                lesion = auto[lesion.id]
            groups.setdefault(lesion.series_instance_uid, []).append(lesion)
        out = []
        for uid, lesions in groups.items():
            run = self.runs.get(uid)
            kwargs = {} if run is None else {"lesion_labels": run.result.lesion_labels,
                                             "label_offset": run.id_offset}
            out.append((lesions, kwargs))
        return out

    def measuring_ready(self, series_instance_uid: str) -> bool:
        """True when the measuring context of the series' current run is built."""
        context = self._contexts.get(series_instance_uid)
        run = self.runs.get(series_instance_uid)
        return context is not None and run is not None and context.volume is run.volume

    def measuring_context(self, series_instance_uid: str) -> Any:
        """The context that measures lesions added by hand on a series (built once per run;
        about half a detection's time, so a viewer may build it ahead in a thread)."""
        run = self.runs.get(series_instance_uid)
        if run is None:
            raise AnalysisError(f"Series {series_instance_uid} has no detection run; detect "
                                "calcifications on it before adding lesions by hand.")
        if run.is_radiograph:
            raise AnalysisError("Lesions can be added by hand on a CT series only; on a "
                                "radiograph, review (accept, reject, mark) the detected ones.")
        context = self._contexts.get(series_instance_uid)
        if context is None or context.volume is not run.volume:
            context = lesion_context(run.volume, params=getattr(run.result, "params", None))
            self._contexts[series_instance_uid] = context
        return context

    def _measure(self, series_instance_uid: str, mask: np.ndarray) -> Lesion:
        context = self.measuring_context(series_instance_uid)
        problem = placement_problem(context, mask)
        if problem is not None:  # outside the body or in bone: never a deposit
            raise AnalysisError(problem)
        threshold = getattr(self.runs[series_instance_uid].result, "threshold_hu", None)
        (lesion,) = measure_masks(context, [mask], threshold_hu=threshold)
        lesion.series_instance_uid = series_instance_uid
        return lesion

    def _params(self) -> CTParams | None:
        for run in self.runs.values():
            params = getattr(run.result, "params", None)
            if isinstance(params, CTParams):
                return params
        return None

    def _spacing(self) -> dict[str, Sequence[float] | None]:
        return {uid: entry.spacing_mm for uid, entry in self.series.items()}

    def _empty_findings(self) -> Findings:
        return Findings(software={"name": "napari-calcinosis",
                                  "version": __version__},
                        study={"study_instance_uid": self.study_instance_uid, "modalities": []})

    def series_results(self) -> list[Any]:
        """The study's series with their runs as :class:`napari_calcinosis.pipeline.SeriesResult`,
        volumes first and radiographs after them (the command line's order), ready for
        :func:`napari_calcinosis.pipeline.assemble_result`."""
        items = []
        for uid, entry in self.series.items():
            run = self.runs.get(uid)
            image = run.volume if run is not None else self.images.get(uid)
            if image is None:
                continue
            items.append(SeriesResult.of(image, None if run is None else run.result,
                                         entry=entry))
        # Layers may open (and detections finish) in any order; ids follow the series order.
        items.sort(key=lambda item: isinstance(item.image, Radiograph))
        return items

    def study(self, items: list[Any] | None = None) -> Study:
        """The study as far as the review knows it: its images and the study's warnings."""
        images = [item.image for item in (self.series_results() if items is None else items)]
        return Study(volumes=[i for i in images if not isinstance(i, Radiograph)],
                     radiographs=[i for i in images if isinstance(i, Radiograph)],
                     warnings=list(self.study_warnings))

    def _assemble(self) -> None:
        """The study's automatic findings from the runs, as the command line assembles them
        (:func:`napari_calcinosis.pipeline.assemble_result`: ids, summary source, warnings,
        parameters)."""
        items = self.series_results()
        if not items:
            self.findings = self._empty_findings()
            return
        self.findings = assemble_result(self.study(items), items).findings
        self.findings.differential = []
        for item in items:
            run = self.runs.get(item.entry.series_instance_uid)
            if run is not None:
                run.id_offset = item.id_offset
