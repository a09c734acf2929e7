"""The reader's marks as the classification reads them, and how they change the findings.

The annotation record (issue 5) holds more than the rules need; :class:`ReaderMarks` is the
small part that matters to the differential: per-lesion layer and morphology marks, rejected
lesions, lesions added by hand, and overrides of the overall extent, form and symmetry call.
:func:`apply_marks` turns automatic findings plus marks into the *effective* lesions and summary
the rules read, and records which facts came from the reader so every explanation can say
when a conclusion rests on an override.

Precedence (design choice): the reader's value always wins over the automatic one. Per-lesion
marks (layer, morphology, rejection, manual lesions) recompute the summary from the effective
lesions with :func:`~napari_calcinosis.summary.summarize`; the overall overrides
(extent, form, symmetry call) are applied after that, so they win over the recomputed values.
An extent override also sets the form (``form_of(extent)``) unless the form is overridden too.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from napari_calcinosis.summary import form_of, summarize
from napari_calcinosis.types import AnalysisError, Findings, Lesion, Summary
from napari_calcinosis.types.findings import EXTENTS, FORMS, LAYERS, MORPHOLOGIES, SYMMETRY_CALLS

__all__ = ["EffectiveFindings", "ReaderMarks", "apply_marks"]


@dataclass
class ReaderMarks:
    """What the reader decided, in the words of ``docs/contract.md``.

    Attributes
    ----------
    layers : dict of int to str
        Lesion id -> tissue layer set by the reader (``findings.LAYERS``).
    morphologies : dict of int to str
        Lesion id -> morphology set by the reader (``findings.MORPHOLOGIES``).
    rejected : set of int
        Ids of lesions the reader rejected: they disappear from every count.
    added : list of findings.Lesion
        Lesions the reader added by hand (their ``source`` is set to ``"manual"``).
    extent, form, symmetry_call : str or None
        Overall overrides; ``None`` keeps the automatic value.
    """

    layers: dict[int, str] = field(default_factory=dict)
    morphologies: dict[int, str] = field(default_factory=dict)
    rejected: set[int] = field(default_factory=set)
    added: list[Lesion] = field(default_factory=list)
    extent: str | None = None
    form: str | None = None
    symmetry_call: str | None = None

    def __post_init__(self) -> None:
        self.layers = {_lesion_id(k): _word(v, LAYERS, "layer") for k, v in self.layers.items()}
        self.morphologies = {_lesion_id(k): _word(v, MORPHOLOGIES, "morphology")
                             for k, v in self.morphologies.items()}
        self.rejected = {_lesion_id(k) for k in self.rejected}
        for name, vocabulary in (("extent", EXTENTS), ("form", FORMS),
                                 ("symmetry_call", SYMMETRY_CALLS)):
            value = getattr(self, name)
            if value is not None:
                _word(value, vocabulary, name)

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any] | None) -> ReaderMarks:
        """Marks from a plain dict with the attribute names as keys (all optional).

        Lesion ids may be given as strings (JSON object keys); unknown keys are an error.
        """
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(cls.__dataclass_fields__))
        if unknown:
            raise AnalysisError(
                f"Unknown reader-mark key(s) {', '.join(map(repr, unknown))}; allowed: "
                f"{', '.join(cls.__dataclass_fields__)}.")
        return cls(**overrides)

    @property
    def is_empty(self) -> bool:
        """True when the marks change nothing."""
        return not (self.layers or self.morphologies or self.rejected or self.added
                    or self.extent or self.form or self.symmetry_call)

    @property
    def touches_lesions(self) -> bool:
        """True when a per-lesion mark exists (the summary must then be recomputed)."""
        return bool(self.layers or self.morphologies or self.rejected or self.added)


@dataclass
class EffectiveFindings:
    """Lesions and summary after the reader's marks, with what came from the reader.

    Attributes
    ----------
    lesions : list of findings.Lesion
        Every remaining lesion (incidental ones included), marks applied.
    summary : findings.Summary
        The summary the rules read.
    overrides : dict of str to str
        Fact -> sentence for each overall override that differs from the automatic value
        (keys ``extent``, ``form``, ``symmetry_call``) and for per-lesion marks (keys
        ``layers``, ``morphologies``, ``rejected``, ``added``).
    marked_ids : set of int
        Lesions whose layer or morphology the reader set.
    warnings : list of str
        Marks that could not be applied (e.g. naming a lesion that does not exist).
    """

    lesions: list[Lesion]
    summary: Summary
    overrides: dict[str, str] = field(default_factory=dict)
    marked_ids: set[int] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


def apply_marks(findings: Findings, marks: ReaderMarks | None = None) -> EffectiveFindings:
    """The findings the rules read: automatic values with the reader's marks winning.

    Parameters
    ----------
    findings : findings.Findings
        The automatic findings (not modified).
    marks : ReaderMarks, optional
        The reader's marks; ``None`` or empty keeps the automatic findings.

    Returns
    -------
    EffectiveFindings
    """
    marks = marks or ReaderMarks()
    lesions = _summary_lesions(findings)
    if not marks.touches_lesions:
        effective = EffectiveFindings(list(lesions), copy.deepcopy(findings.summary))
    else:
        effective = _apply_lesion_marks(findings, lesions, marks)
    _apply_overall(effective, marks, findings.summary)
    return effective


def _summary_lesions(findings: Findings) -> list[Lesion]:
    """Lesions of the series the summary describes (CT or radiographs), never both."""
    kinds = {s.series_instance_uid: s.kind for s in findings.series}
    wanted = "radiograph" if findings.summary.source == "radiograph" else "volume"
    return [les for les in findings.lesions
            if les.source == "manual" or kinds.get(les.series_instance_uid, wanted) == wanted]


def _apply_lesion_marks(findings: Findings, lesions: list[Lesion],
                        marks: ReaderMarks) -> EffectiveFindings:
    by_id = {les.id: les for les in lesions}
    named = {*marks.layers, *marks.morphologies, *marks.rejected}
    warnings = [f"Reader mark on lesion {i} ignored: no lesion has that id."
                for i in sorted(named - set(by_id))]
    out, marked, n_layer, n_morph = [], set(), 0, 0
    for les in lesions:
        if les.id in marks.rejected:
            continue
        new = copy.copy(les)
        if les.id in marks.layers and marks.layers[les.id] != les.layer:
            new.layer, n_layer = marks.layers[les.id], n_layer + 1
        if les.id in marks.morphologies and marks.morphologies[les.id] != les.morphology:
            new.morphology, n_morph = marks.morphologies[les.id], n_morph + 1
        if new.layer != les.layer or new.morphology != les.morphology:
            new.source = "manual"
            marked.add(les.id)
        out.append(new)
    for les in marks.added:
        added = copy.copy(les)
        added.source = "manual"
        out.append(added)
    summary = summarize(out, source=findings.summary.source)
    n_rejected = len(marks.rejected & set(by_id))
    overrides = {key: text for key, text in (
        ("layers", _count(n_layer, "lesion layer") + " set by the reader"),
        ("morphologies", _count(n_morph, "lesion morphology", "morphologies")
         + " set by the reader"),
        ("rejected", _count(n_rejected, "lesion") + " rejected by the reader"),
        ("added", _count(len(marks.added), "lesion") + " added by the reader"),
    ) if not text.startswith("0 ")}
    return EffectiveFindings(out, summary, overrides, marked, warnings)


def _apply_overall(effective: EffectiveFindings, marks: ReaderMarks,
                   automatic: Summary) -> None:
    summary = effective.summary
    if marks.extent is not None:
        summary.extent = marks.extent
        summary.form = form_of(marks.extent)
    if marks.form is not None:
        summary.form = marks.form
    if marks.symmetry_call is not None:
        summary.symmetry.call = marks.symmetry_call
    given = {"extent": (marks.extent, automatic.extent),
             "form": (marks.form, automatic.form),
             "symmetry_call": (marks.symmetry_call, automatic.symmetry.call)}
    for key, (value, auto) in given.items():
        if value is None:
            continue
        name = key.replace("_", " ")
        how = "as detected" if value == auto else f"instead of {auto}"
        effective.overrides[key] = f"{name} {value} {how}"


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def _lesion_id(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise AnalysisError(f"Reader mark names lesion {value!r}, which is not an id.") from exc


def _word(value: Any, vocabulary: Iterable[str], what: str) -> str:
    vocabulary = tuple(vocabulary)
    if value not in vocabulary:
        raise AnalysisError(
            f"Reader mark has unknown {what} {value!r}; allowed: {', '.join(vocabulary)}.")
    return value
