"""Findings + reader's marks + labs and history -> a ranked, explained differential.

The systematic reading of the seed letter (distribution, layer, morphology, labs, history)
as a rule registry (``._base.REGISTRY``; rules in ``._rules`` and
``._lookalikes``, one registered function per conclusion of docs/clinical.md's table).

Ranking and listing (design choices):

* Every rule is scored; the two dystrophic rules (``connective_tissue`` and ``local``) map
  to the one contract diagnosis ``dystrophic_calcinosis_cutis``: only the higher-scoring one is
  listed, its subtype named in the explanation (and kept on :class:`Conclusion`).
* Ranked by score, best first; equal scores (after rounding to 3 decimals) keep the
  registry's order (docs/clinical.md's table), so the ranking is deterministic.
* Listed: every conclusion scoring at least ``min_listed_score`` (0.05), and never fewer than
  ``min_listed`` (3) so the reader always sees alternatives. With no soft-tissue lesion the
  differential is empty.
* ``form`` is the effective summary's form (circumscripta/universalis, from the extent, the
  reader's override winning) for the types of calcinosis cutis, and ``None`` (JSON ``null``)
  for look-alikes, which are not calcinosis cutis.

Each explanation has four labelled parts: what was seen; what the tests say; what the history
says; what would change it (with the missing inputs). It ends with :data:`DISCLAIMER`. When the
reader's marks exist, every explanation says how they change that conclusion's score.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from napari_calcinosis.clinical import LAB_NAMES, ClinicalInput
from napari_calcinosis.types import Findings

from . import (
    _lookalikes,  # noqa: F401  (registers rules)
    _rules,  # noqa: F401  (registers rules)
)
from ._base import HISTORY_LABELS, LAB_LABELS, REGISTRY, Facts, RuleEntry, RuleResult
from ._marks import ReaderMarks, apply_marks

__all__ = ["DISCLAIMER", "PART_TITLES", "ClassifyParams", "Conclusion", "Differential",
           "classify", "evaluate_rules", "input_label"]

DISCLAIMER = ("Decision support, not a diagnosis: this ranking applies fixed rules to the "
              "detected calcifications, the reader's marks and the clinical input given; a "
              "physician decides, and a biopsy confirms calcinosis cutis.")
PART_TITLES = ("What was seen", "What the tests say", "What the history says",
               "What would change it")


@dataclass(frozen=True)
class ClassifyParams:
    """How many conclusions are listed.

    Attributes
    ----------
    min_listed_score : float
        Conclusions scoring below this are left out ...
    min_listed : int
        ... unless fewer than this many would be listed.
    """

    min_listed_score: float = 0.05
    min_listed: int = 3


@dataclass(frozen=True)
class Conclusion:
    """One entry of the differential (``to_json_dict`` gives the contract's object)."""

    diagnosis: str
    rule: str
    title: str
    subtype: str | None
    form: str | None
    score: float
    supporting: list[str]
    against: list[str]
    missing: list[str]
    explanation: str
    parts: dict[str, str]
    references: tuple[str, ...]
    automatic_score: float | None = None

    @property
    def rests_on_override(self) -> bool:
        """True when the reader's marks changed this conclusion's score."""
        return self.automatic_score is not None and self.automatic_score != self.score

    def to_json_dict(self) -> dict[str, Any]:
        """The contract's ``differential`` item."""
        return {"diagnosis": self.diagnosis, "form": self.form, "score": self.score,
                "supporting": list(self.supporting), "against": list(self.against),
                "missing": list(self.missing), "explanation": self.explanation}


@dataclass(frozen=True)
class Differential:
    """The ranked, explained differential of one study.

    Attributes
    ----------
    conclusions : tuple of Conclusion
        The listed conclusions, best first.
    scores : dict of str to float
        Every rule's score by registry key (listed or not), for inspection.
    overrides : dict of str to str
        The reader's overrides that were applied.
    warnings : tuple of str
        Marks that could not be applied.
    disclaimer : str
    """

    conclusions: tuple[Conclusion, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    disclaimer: str = DISCLAIMER

    def __len__(self) -> int:
        return len(self.conclusions)

    def __iter__(self) -> Iterator[Conclusion]:
        return iter(self.conclusions)

    def __getitem__(self, index: int) -> Conclusion:
        return self.conclusions[index]

    @property
    def top(self) -> Conclusion | None:
        """The best conclusion, ``None`` when the list is empty."""
        return self.conclusions[0] if self.conclusions else None

    def to_json_list(self) -> list[dict[str, Any]]:
        """``findings.json``'s ``differential``: a list of the contract's objects."""
        return [c.to_json_dict() for c in self.conclusions]


def evaluate_rules(findings: Findings, clinical: ClinicalInput | None = None, *,
                   marks: ReaderMarks | None = None) -> dict[str, RuleResult]:
    """Every registered rule's raw result (no merging, no listing threshold).

    Returns an empty dict when no soft-tissue lesion remains after the marks.
    """
    facts = Facts(apply_marks(findings, marks), clinical)
    if facts.n == 0:
        return {}
    return {key: entry.function(facts) for key, entry in REGISTRY.items()}


def classify(findings: Findings, clinical: ClinicalInput | None = None, *,
             marks: ReaderMarks | None = None,
             params: ClassifyParams | None = None) -> Differential:
    """The ranked differential with reasons, missing inputs and explanations.

    Parameters
    ----------
    findings : findings.Findings
        Automatic findings (not modified).
    clinical : clinical.ClinicalInput, optional
        Labs and history; ``None`` means everything is unknown.
    marks : ReaderMarks, optional
        The reader's marks; they win over automatic values.
    params : ClassifyParams, optional
        Listing rules.

    Returns
    -------
    Differential
        Empty when there is no soft-tissue lesion.
    """
    params = params or ClassifyParams()
    effective = apply_marks(findings, marks)
    facts = Facts(effective, clinical)
    if facts.n == 0:
        return Differential(overrides=dict(effective.overrides),
                            warnings=tuple(effective.warnings))
    results = {key: entry.function(facts) for key, entry in REGISTRY.items()}
    automatic = None
    if marks is not None and not marks.is_empty:
        automatic = evaluate_rules(findings, clinical)
    best = _best_per_diagnosis(results)
    ranked = sorted(best, key=lambda e: (-results[e.key].score, e.order))
    listed = [e for i, e in enumerate(ranked)
              if results[e.key].score >= params.min_listed_score or i < params.min_listed]
    conclusions = tuple(_conclusion(e, results[e.key], facts, automatic) for e in listed)
    return Differential(conclusions, {k: r.score for k, r in results.items()},
                        dict(effective.overrides), tuple(effective.warnings))


def _best_per_diagnosis(results: dict[str, RuleResult]) -> list[RuleEntry]:
    best: dict[str, RuleEntry] = {}
    for entry in REGISTRY.values():
        held = best.get(entry.diagnosis)
        if held is None or results[entry.key].score > results[held.key].score:
            best[entry.diagnosis] = entry
    return list(best.values())


def _conclusion(entry: RuleEntry, result: RuleResult, facts: Facts,
                automatic: dict[str, RuleResult] | None) -> Conclusion:
    auto_score = None
    if automatic is not None:
        auto_score = automatic[entry.key].score if automatic else 0.0
    parts = _explanation_parts(entry, result, facts, auto_score)
    text = "\n".join(f"{title}: {parts[title]}" for title in PART_TITLES)
    return Conclusion(
        diagnosis=entry.diagnosis, rule=entry.key, title=entry.title, subtype=entry.subtype,
        form=facts.form if entry.calcinosis_cutis else None, score=result.score,
        supporting=list(result.supporting), against=list(result.against),
        missing=list(result.missing), explanation=f"{text}\n{DISCLAIMER}", parts=parts,
        references=entry.references, automatic_score=auto_score)


def _explanation_parts(entry: RuleEntry, result: RuleResult, facts: Facts,
                       auto_score: float | None) -> dict[str, str]:
    seen = f"{entry.title} (score {result.score:.2f}). {describe_findings(facts)}"
    seen += _reasons(result, "imaging")
    if auto_score is not None:
        marks = "; ".join(facts.overrides.values()) or "marks that changed nothing"
        if auto_score != result.score:
            seen += (f" This conclusion rests on the reader's overrides ({marks}): with the "
                     f"automatic values its score would be {auto_score:.2f}.")
        else:
            seen += f" The reader's overrides ({marks}) do not change this score."
    tests = _part(result, "labs", "No laboratory result speaks for or against it.")
    history = _part(result, "history", "Nothing in the history speaks for or against it.")
    return {PART_TITLES[0]: seen, PART_TITLES[1]: tests, PART_TITLES[2]: history,
            PART_TITLES[3]: _what_would_change(entry, result)}


def describe_findings(facts: Facts) -> str:
    """One plain paragraph on the effective findings (the shared part of "what was seen")."""
    s = facts.summary
    layers = ", ".join(f"{k} {v}" for k, v in facts.layer_counts.most_common())
    regions = ", ".join(r.replace("_", " ") for r in facts.regions) or "unknown regions"
    shapes = ", ".join(f"{k} {v}" for k, v in facts.morphology_counts.most_common())
    symmetry = s.symmetry.call + (f" (index {s.symmetry.index:.2f})"
                                  if s.symmetry.index is not None else "")
    deep = [k for k in ("muscle", "vessel", "visceral") if facts.deep(k)]
    deep_text = (f"involvement of {', '.join(deep)}" if deep
                 else "no muscle, vessel or visceral involvement")
    return (f"{facts.n} soft-tissue calcification{'s' if facts.n != 1 else ''} on "
            f"{s.source} in {len(facts.regions)} region(s) ({regions}); layers: {layers}; "
            f"shapes: {shapes}; extent {facts.extent}{facts.note('extent')}, form "
            f"{facts.form}{facts.note('form')}; symmetry {symmetry}"
            f"{facts.note('symmetry_call')}; {deep_text}.")


def _reasons(result: RuleResult, kind: str) -> str:
    pro = [e.text for e in result.evidence if e.kind == kind and not e.against]
    con = [e.text for e in result.evidence if e.kind == kind and e.against]
    text = ""
    if pro:
        text += " For: " + "; ".join(pro) + "."
    if con:
        text += " Against: " + "; ".join(con) + "."
    return text


def _part(result: RuleResult, kind: str, empty: str) -> str:
    """Reasons of one kind (labs or history) and the inputs of that kind that are missing."""
    names = [input_label(m) for m in result.missing if not m.startswith("imaging:")
             and ((m in LAB_NAMES) == (kind == "labs"))]
    text = _reasons(result, kind)
    if names:
        text += (" Not known: " + ", ".join(names)
                 + " (an unknown value is never read as normal).")
    return text.strip() or empty


def input_label(key: str) -> str:
    """Plain name of a clinical-input key (``ck`` -> ``CK``, ``iv_calcium`` -> ``IV calcium``)."""
    return LAB_LABELS.get(key) or HISTORY_LABELS.get(key) or key.replace("_", " ")


def _what_would_change(entry: RuleEntry, result: RuleResult) -> str:
    text = entry.would_change
    inputs = [input_label(m) for m in result.missing if not m.startswith("imaging:")]
    unseen = [m.removeprefix("imaging: ").removesuffix(" (not assessable from these findings)")
              for m in result.missing if m.startswith("imaging:")]
    if inputs:
        text += " Missing inputs: " + ", ".join(inputs) + "."
    if unseen:
        text += " Not assessable from these findings: " + ", ".join(unseen) + "."
    return text
