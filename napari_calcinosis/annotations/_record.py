"""The reader's annotation record of one study: decisions, manual lesions, overrides, clinic.

See :mod:`napari_calcinosis.annotations._findings` for the whole picture (storage, matching).
This module holds the data model and its JSON form (schema
``napari-calcinosis/annotations/v1``, version 1). Every editing method stamps ``modified``.
"""

from __future__ import annotations

import copy
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from napari_calcinosis.clinical import ClinicalInput, parse_clinical
from napari_calcinosis.types import Lesion
from napari_calcinosis.types.findings import (
    EXTENTS,
    FORMS,
    LAYERS,
    MORPHOLOGIES,
    REGIONS,
    SYMMETRY_CALLS,
)

from ._mask import VoxelMask, label_masks

__all__ = ["AUTO_FIELDS", "EDITABLE_FIELDS", "RECORD_SCHEMA_ID", "RECORD_VERSION",
           "SUMMARY_FIELDS", "AnnotationRecord", "LesionDecision", "LesionKey", "ManualLesion",
           "Override", "utc_now"]

RECORD_SCHEMA_ID = "napari-calcinosis/annotations/v1"
RECORD_VERSION = 1

#: Lesion fields a reader may override on an automatic lesion, with their vocabularies.
EDITABLE_FIELDS: dict[str, tuple[str, ...]] = {"layer": LAYERS, "morphology": MORPHOLOGIES}
#: Automatic values recorded beside a decision (what the reader saw when deciding).
AUTO_FIELDS = ("layer", "morphology", "side", "region")
#: Summary fields a reader may override, with their vocabularies.
SUMMARY_FIELDS: dict[str, tuple[str, ...]] = {
    "extent": EXTENTS, "form": FORMS, "symmetry_call": SYMMETRY_CALLS}
STATES = ("unreviewed", "accepted", "rejected")


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string (milliseconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _check(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def plain_json(value: Any) -> Any:
    """JSON-safe copy: numpy scalars/arrays to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class LesionKey:
    """The identity of an automatic lesion in the run where the reader decided on it.

    ``series_instance_uid`` + ``centroid_mm`` (CT) or ``centroid_index`` (radiograph) +
    ``volume_mm3`` / ``area_mm2`` identify it; ``mask`` (its voxels) lets a later run with
    other parameters find it again by overlap. ``lesion_id`` is informational only.
    """

    series_instance_uid: str
    centroid_index: list[float]
    centroid_mm: list[float] | None = None
    volume_mm3: float | None = None
    area_mm2: float | None = None
    max_diameter_mm: float | None = None
    lesion_id: int | None = None

    @classmethod
    def of(cls, lesion: Lesion) -> LesionKey:
        """The key of a lesion as detected."""
        return cls(lesion.series_instance_uid, plain_json(list(lesion.centroid_index)),
                   plain_json(None if lesion.centroid_mm is None else list(lesion.centroid_mm)),
                   plain_json(lesion.volume_mm3), plain_json(lesion.area_mm2),
                   plain_json(lesion.max_diameter_mm), int(lesion.id))

    def same_as(self, lesion: Lesion) -> bool:
        """True when ``lesion`` is exactly this lesion (same run: same place and size)."""
        if lesion.series_instance_uid != self.series_instance_uid:
            return False
        mine = self.centroid_mm if self.centroid_mm is not None else self.centroid_index
        theirs = lesion.centroid_mm if self.centroid_mm is not None else lesion.centroid_index
        if theirs is None or len(theirs) != len(mine):
            return False
        # Plain Python: this runs for every decision on every click, numpy calls cost more.
        if any(abs(float(a) - float(b)) > 1e-3 for a, b in zip(mine, theirs, strict=True)):
            return False
        return (_close(self.volume_mm3, lesion.volume_mm3)
                and _close(self.area_mm2, lesion.area_mm2))


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


@dataclass
class LesionDecision:
    """The reader's decision on one automatic lesion.

    ``overrides`` holds the reader's values (keys of :data:`EDITABLE_FIELDS`), ``auto`` the
    automatic values the lesion had when the reader decided. ``orphaned`` is set when the last
    matching found no lesion for it; it stays in the record and is tried again on every run.
    """

    key: LesionKey
    mask: VoxelMask | None = None
    state: str = "unreviewed"
    overrides: dict[str, str] = field(default_factory=dict)
    auto: dict[str, str] = field(default_factory=dict)
    orphaned: bool = False
    uid: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    modified: str = field(default_factory=utc_now)


@dataclass
class ManualLesion:
    """A lesion the reader added (painted or clicked), with its voxels when painted."""

    lesion: Lesion
    mask: VoxelMask | None = None
    state: str = "accepted"
    uid: str = field(default_factory=lambda: "m-" + uuid.uuid4().hex[:14])
    created: str = field(default_factory=utc_now)
    modified: str = field(default_factory=utc_now)


@dataclass
class Override:
    """A reader's value stored beside the automatic value it replaces in the summary."""

    value: str
    auto: str | None = None
    modified: str = field(default_factory=utc_now)


@dataclass
class AnnotationRecord:
    """Everything the reader decided about one study (one JSON file per study).

    Attributes
    ----------
    study_instance_uid : str
    created, modified : str
        ISO 8601 UTC timestamps.
    decisions : list of LesionDecision
        Decisions on automatic lesions (layer/morphology overrides, state).
    manual_lesions : list of ManualLesion
    summary_overrides : dict of str to Override
        Keys of :data:`SUMMARY_FIELDS` (``extent``, ``form``, ``symmetry_call``).
    region_symmetry_overrides : dict of str to Override
        Per body region, the reader's symmetry call.
    clinical : dict
        The clinical input in the contract's format (``ClinicalInput.to_dict()``).
    detection_parameters : dict
        The detection parameters of the run the decisions were made on.
    software_version : str
        The napari-calcinosis version that wrote the file ("" for a new record).
    warnings : list of str
        Not saved: what happened while loading (file set aside, migration).
    """

    study_instance_uid: str
    created: str = field(default_factory=utc_now)
    modified: str = ""
    decisions: list[LesionDecision] = field(default_factory=list)
    manual_lesions: list[ManualLesion] = field(default_factory=list)
    summary_overrides: dict[str, Override] = field(default_factory=dict)
    region_symmetry_overrides: dict[str, Override] = field(default_factory=dict)
    clinical: dict[str, Any] = field(default_factory=dict)
    detection_parameters: dict[str, Any] = field(default_factory=dict)
    software_version: str = field(default="", compare=False)
    warnings: list[str] = field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        if not self.study_instance_uid:
            raise ValueError("an annotation record needs a StudyInstanceUID")
        self.modified = self.modified or self.created

    def touch(self) -> None:
        """Stamp ``modified`` with the current time."""
        self.modified = utc_now()

    @property
    def is_empty(self) -> bool:
        """True when the record holds no decision, lesion, override or clinical value."""
        return not (self.decisions or self.manual_lesions or self.summary_overrides
                    or self.region_symmetry_overrides or self.clinical)

    # -- decisions on lesions ------------------------------------------------------------
    def decision_for(self, lesion: Lesion) -> LesionDecision | None:
        """The decision whose key is exactly ``lesion`` (same run), if any."""
        return next((d for d in self.decisions if d.key.same_as(lesion)), None)

    def manual_for(self, lesion: Lesion | str) -> ManualLesion | None:
        """The manual lesion behind an effective lesion (or with this uid), if any."""
        uid = lesion if isinstance(lesion, str) else lesion.extra.get("annotation_uid")
        return next((m for m in self.manual_lesions if m.uid == uid), None)

    def _targets(self, lesions: Lesion | Sequence[Lesion], lesion_labels: np.ndarray | None,
                 label_offset: int) -> list[LesionDecision | ManualLesion]:
        """The manual lesion or decision behind each lesion (new decisions are added)."""
        lesions = [lesions] if isinstance(lesions, Lesion) else list(lesions)
        targets: list[LesionDecision | ManualLesion] = []
        for lesion in lesions:
            manual = self.manual_for(lesion)
            decision = manual or self.decision_for(lesion)
            if decision is None:
                auto = {k: getattr(lesion, k) for k in AUTO_FIELDS}
                auto.update({k[5:]: v for k, v in lesion.extra.items()
                             if k.startswith("auto_") and k[5:] in AUTO_FIELDS})
                decision = LesionDecision(LesionKey.of(lesion), auto=auto)
                self.decisions.append(decision)
            targets.append(decision)
        if lesion_labels is not None:
            self._store_masks(lesions, targets, lesion_labels, label_offset)
        return targets

    @staticmethod
    def _store_masks(lesions: list[Lesion], targets: list[LesionDecision | ManualLesion],
                     lesion_labels: np.ndarray, label_offset: int) -> None:
        needed = {int(les.id) - label_offset: target for les, target in zip(
            lesions, targets, strict=True)
            if isinstance(target, LesionDecision) and target.mask is None}
        for value, mask in label_masks(lesion_labels, needed).items():
            needed[value].mask = mask

    def edit(self, lesions: Lesion | Sequence[Lesion], *,
             lesion_labels: np.ndarray | None = None, label_offset: int = 0,
             **values: str) -> None:
        """Set the reader's layer or morphology of one or several lesions.

        Parameters
        ----------
        lesions : Lesion or sequence of Lesion
            Automatic lesions of the current run, or effective lesions (a manual one is
            edited in place).
        lesion_labels : numpy.ndarray, optional
            The run's label image of their series: the lesions' voxels are stored so that the
            decisions survive a re-run with other parameters.
        label_offset : int
            Lesion id ``i`` is label value ``i - label_offset`` (``SeriesLabels.id_offset``).
        **values : str
            ``layer=``, ``morphology=``.
        """
        for name, value in values.items():
            if name not in EDITABLE_FIELDS:
                raise ValueError(f"{name!r} cannot be edited; editable: "
                                 f"{', '.join(EDITABLE_FIELDS)}")
            _check(value, EDITABLE_FIELDS[name], name)
        for target in self._targets(lesions, lesion_labels, label_offset):
            if isinstance(target, ManualLesion):
                for name, value in values.items():
                    setattr(target.lesion, name, value)
            else:
                for name, value in values.items():
                    if target.auto.get(name) == value:
                        target.overrides.pop(name, None)  # back to the automatic value
                    else:
                        target.overrides[name] = value
            target.modified = utc_now()
        self.touch()

    def set_state(self, lesions: Lesion | Sequence[Lesion], state: str, *,
                  lesion_labels: np.ndarray | None = None, label_offset: int = 0) -> None:
        """Accept, reject or reset (``"unreviewed"``) lesions; arguments as :meth:`edit`."""
        _check(state, STATES, "state")
        for target in self._targets(lesions, lesion_labels, label_offset):
            target.state = state
            target.modified = utc_now()
        self.touch()

    def reject(self, lesions: Lesion | Sequence[Lesion], **kwargs: Any) -> None:
        """Reject lesions: they leave the effective list and every count until restored."""
        self.set_state(lesions, "rejected", **kwargs)

    def accept(self, lesions: Lesion | Sequence[Lesion], **kwargs: Any) -> None:
        """Mark lesions as accepted by the reader."""
        self.set_state(lesions, "accepted", **kwargs)

    def restore(self, lesion: Lesion | str) -> bool:
        """Bring back a rejected lesion (a Lesion, a decision uid or a manual uid).

        Returns
        -------
        bool
            False when nothing rejected matched.
        """
        targets = [*self.decisions, *self.manual_lesions]
        if isinstance(lesion, str):
            found = [t for t in targets if t.uid == lesion]
        else:
            found = [m for m in [self.manual_for(lesion)] if m is not None] or \
                    [d for d in self.decisions if d.key.same_as(lesion)]
        found = [t for t in found if t.state == "rejected"]
        for target in found:
            target.state = "accepted"
            target.modified = utc_now()
        if found:
            self.touch()
        return bool(found)

    # -- manual lesions ------------------------------------------------------------------
    def add_manual(self, lesion: Lesion, mask: np.ndarray | VoxelMask | None = None) -> str:
        """Add a lesion the reader painted or clicked; returns its uid.

        ``lesion`` carries its measurements (series uid, centroid index and mm, size,
        layer...); ``mask`` is its boolean full-image mask (or an encoded one).
        """
        if mask is not None and not isinstance(mask, VoxelMask):
            mask = VoxelMask.from_bool(mask)
        stored = copy.deepcopy(lesion)
        stored.source = "manual"
        item = ManualLesion(stored, mask)
        stored.extra["annotation_uid"] = item.uid
        self.manual_lesions.append(item)
        self.touch()
        return item.uid

    def remove_manual(self, uid: str) -> bool:
        """Delete a manual lesion for good (rejecting it keeps it restorable)."""
        before = len(self.manual_lesions)
        self.manual_lesions = [m for m in self.manual_lesions if m.uid != uid]
        if len(self.manual_lesions) != before:
            self.touch()
            return True
        return False

    # -- summary overrides ---------------------------------------------------------------
    def override_summary(self, name: str, value: str | None, *, auto: str | None = None) -> None:
        """Set (or with ``None`` clear) the reader's extent, form or symmetry call."""
        if name not in SUMMARY_FIELDS:
            raise ValueError(f"{name!r} is not an overridable summary field; "
                             f"one of {', '.join(SUMMARY_FIELDS)}")
        if value is None:
            self.summary_overrides.pop(name, None)
        else:
            self.summary_overrides[name] = Override(_check(value, SUMMARY_FIELDS[name], name),
                                                    auto)
        self.touch()

    def override_region_symmetry(self, region: str, call: str | None, *,
                                 auto: str | None = None) -> None:
        """Set (or with ``None`` clear) the reader's symmetry call of one body region."""
        _check(region, REGIONS, "region")
        if call is None:
            self.region_symmetry_overrides.pop(region, None)
        else:
            self.region_symmetry_overrides[region] = Override(
                _check(call, SYMMETRY_CALLS, "symmetry call"), auto)
        self.touch()

    # -- clinical input ------------------------------------------------------------------
    def set_clinical(self, clinical: ClinicalInput | dict[str, Any] | None) -> None:
        """Store the clinical input (validated; ``None`` clears it)."""
        if clinical is None:
            self.clinical = {}
        elif isinstance(clinical, ClinicalInput):
            self.clinical = plain_json(clinical.to_dict())
        else:
            self.clinical = plain_json(parse_clinical(clinical).to_dict())
        self.touch()

    def clinical_input(self) -> ClinicalInput | None:
        """The stored clinical input, ``None`` when nothing was entered."""
        return parse_clinical(self.clinical) if self.clinical else None

    def set_detection_parameters(self, parameters: dict[str, Any]) -> None:
        """Record the detection parameters of the run the decisions refer to."""
        self.detection_parameters = plain_json(dict(parameters))
        self.touch()
