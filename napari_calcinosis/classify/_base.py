"""The pieces every classification rule uses: the facts it reads, its tally and the registry.

A rule is a function ``(facts) -> RuleResult`` registered with :func:`register`; adding a
conclusion is adding one decorated function. Rules read the study only through
:class:`Facts` and keep their evidence in a :class:`Tally`, which is where the scoring rule
lives (one place, so every rule scores the same way):

``score = CEILING * sigmoid(logit(prior) + sum(support) - sum(against)) * product(factors)``,
then limited by the lowest cap. Weights are log-odds steps (design choices, written next to
each piece of evidence); *factors* (< 1) lower the confidence for each input the rule needed but
did not get; *caps* are gates (e.g. an abnormal lab caps idiopathic calcinosis at 0.1). The
score is a relative plausibility for ranking, not a probability.

Missing inputs are recorded by the same call that reads them (:meth:`Tally.lab`,
:meth:`Tally.history`), so an unknown value can only be listed as missing, never read as
normal. A ``missing`` entry is either a clinical-input key (a lab name, a history key, ``age``
or ``sex``: the panel can jump to it) or an imaging feature the findings cannot show, written
``"imaging: <feature> (not assessable from these findings)"``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from napari_calcinosis.clinical import CANONICAL_UNITS, HISTORY_KEYS, LAB_NAMES, ClinicalInput
from napari_calcinosis.types import AnalysisError, Lesion

from ._marks import EffectiveFindings

__all__ = ["CEILING", "LAB_LABELS", "REGISTRY", "Evidence", "Facts", "RuleEntry", "RuleResult",
           "Tally", "register"]

#: The highest score any rule can give: decision support never claims certainty.
CEILING = 0.97
#: Names of the labs as written in evidence (always followed by the value and unit).
LAB_LABELS = {"calcium": "calcium", "phosphate": "phosphate", "pth": "PTH",
              "creatinine": "creatinine", "egfr": "eGFR", "ck": "CK", "aldolase": "aldolase"}
HISTORY_LABELS = {
    "connective_tissue_disease": "connective-tissue disease",
    "chronic_kidney_disease": "chronic kidney disease", "dialysis": "dialysis",
    "trauma_or_surgery": "trauma or surgery", "injections": "injections",
    "iv_calcium": "IV calcium", "malignancy": "malignancy",
    "vitamin_d_excess": "vitamin D excess", "sarcoidosis": "sarcoidosis",
    "pain_or_ulceration": "pain or ulceration",
}
CTD_NAMES = {"systemic_sclerosis": "systemic sclerosis", "dermatomyositis": "dermatomyositis",
             "lupus": "systemic lupus erythematosus", "mixed": "mixed connective-tissue disease",
             "other": "another connective-tissue disease", "none": "none"}
KINDS = ("imaging", "labs", "history")
_SMALL_MORPHOLOGIES = ("punctate", "nodular")


class Facts:
    """What a rule may read: the effective findings (marks applied) and the clinical input.

    Shares and counts are over soft-tissue lesions only (the contract's lesions).
    """

    def __init__(self, effective: EffectiveFindings, clinical: ClinicalInput | None) -> None:
        self.effective = effective
        self.summary = effective.summary
        self.clinical = clinical if clinical is not None else ClinicalInput()
        self.lesions: list[Lesion] = [les for les in effective.lesions if les.is_soft_tissue]
        self.overrides = effective.overrides
        self.layer_counts = Counter(les.layer for les in self.lesions)
        self.morphology_counts = Counter(les.morphology for les in self.lesions)
        self.region_counts = Counter(les.region for les in self.lesions)

    @property
    def n(self) -> int:
        """Number of soft-tissue lesions."""
        return len(self.lesions)

    def share(self, predicate: Callable[[Lesion], bool]) -> float:
        """Fraction of soft-tissue lesions for which ``predicate`` holds (0 when none)."""
        return sum(map(predicate, self.lesions)) / self.n if self.n else 0.0

    def count(self, predicate: Callable[[Lesion], bool]) -> int:
        """Number of soft-tissue lesions for which ``predicate`` holds."""
        return sum(map(predicate, self.lesions))

    def layer_share(self, *layers: str) -> float:
        return self.share(lambda les: les.layer in layers)

    def morphology_share(self, *morphologies: str) -> float:
        return self.share(lambda les: les.morphology in morphologies)

    def small_share(self) -> float:
        """Share of punctate or nodular lesions (the small deposits of calcinosis cutis)."""
        return self.morphology_share(*_SMALL_MORPHOLOGIES)

    @property
    def regions(self) -> list[str]:
        """Known regions involved, most lesions first."""
        return [r for r, _ in self.region_counts.most_common() if r != "unknown"]

    def region_share(self, *regions: str) -> float:
        return self.share(lambda les: les.region in regions)

    @property
    def extent(self) -> str:
        return self.summary.extent

    @property
    def form(self) -> str:
        return self.summary.form

    @property
    def symmetry_call(self) -> str:
        return self.summary.symmetry.call

    def deep(self, key: str) -> bool:
        """``summary.deep_involvement[key]`` (muscle, vessel, visceral)."""
        return bool(self.summary.deep_involvement.get(key, False))

    def incidental(self, key: str) -> int:
        """``summary.incidental[key]`` (costal_cartilage, vessel_wall, visceral)."""
        return int(self.summary.incidental.get(key, 0) or 0)

    def diameters_mm(self, lesions: Iterable[Lesion] | None = None) -> list[float]:
        """Known largest diameters (mm) of the given (default: all soft-tissue) lesions."""
        pool = self.lesions if lesions is None else lesions
        return [float(les.max_diameter_mm) for les in pool if les.max_diameter_mm is not None]

    def note(self, fact: str) -> str:
        """`` (reader's override)`` when ``fact`` (extent, form, symmetry_call) was overridden.

        The form follows an overridden extent, so it carries the note then too.
        """
        overridden = fact in self.overrides or (fact == "form" and "extent" in self.overrides)
        return " (reader's override)" if overridden else ""

    def layer_note(self) -> str:
        """A note when some tissue layers were set by the reader."""
        marked = [les for les in self.lesions if les.id in self.effective.marked_ids]
        return f" ({len(marked)} set by the reader)" if marked else ""

    def layer_breakdown(self, *layers: str) -> str:
        """``"skin 12, subcutaneous 30"`` for the given layers that occur."""
        return ", ".join(f"{layer} {self.layer_counts[layer]}" for layer in layers
                         if self.layer_counts[layer])

    def lab_phrase(self, name: str) -> str:
        """``"calcium 11.2 mg/dL (high; range 8.5-10.2 mg/dL, default)"``; lab must be known."""
        lab = self.clinical.labs[name]
        canonical = CANONICAL_UNITS[name]
        text = f"{LAB_LABELS[name]} {lab.value:g} {lab.unit}"
        if lab.unit != canonical:
            text += f" (= {lab.value_in():.3g} {canonical})"
        low, high, source = self.clinical.reference_range(name)
        limits = ("-".join(f"{v:.3g}" for v in (low, high)) if low is not None
                  and high is not None else f"above {low:.3g}" if low is not None
                  else f"up to {high:.3g}" if high is not None else "none")
        origin = {"lab": "lab's own", "default": "default", "default+lab": "lab's own + default"}
        status = self.clinical.lab_status(name)
        return (f"{text} is {status} (range {limits} {canonical}, "
                f"{origin.get(source, source)})")

    def ca_x_p(self) -> float | None:
        """Ca x P product in mg²/dL², ``None`` when calcium or phosphate is unknown."""
        return self.clinical.ca_x_p_mg2_dl2()


@dataclass(frozen=True)
class Evidence:
    """One reason: its kind (imaging, labs, history), text, signed log-odds weight and side.

    A gate (cap) has weight 0 and ``against`` True.
    """

    kind: str
    text: str
    weight: float
    against: bool


@dataclass(frozen=True)
class RuleResult:
    """What a rule concluded: score 0..1, reasons for and against, inputs it missed."""

    score: float
    supporting: list[str]
    against: list[str]
    missing: list[str]
    evidence: tuple[Evidence, ...] = ()


class Tally:
    """Evidence of one rule and the scoring rule (see the module docstring)."""

    def __init__(self, prior: float) -> None:
        self._logit = math.log(prior / (1.0 - prior))
        self._factor = 1.0
        self._caps: list[float] = []
        self.evidence: list[Evidence] = []
        self.missing: list[str] = []

    def support(self, kind: str, text: str, weight: float) -> None:
        """Evidence for the conclusion (``weight`` > 0 log-odds)."""
        self._add(kind, text, abs(weight), against=False)

    def oppose(self, kind: str, text: str, weight: float) -> None:
        """Evidence against the conclusion (``weight`` > 0 is subtracted)."""
        self._add(kind, text, -abs(weight), against=True)

    def cap(self, limit: float, kind: str | None = None, text: str | None = None) -> None:
        """Limit the score (a gate); ``text`` (if given) is listed as evidence against."""
        self._caps.append(limit)
        if text is not None and kind is not None:
            self._add(kind, text, 0.0, against=True)

    def need(self, key: str, *, factor: float = 1.0) -> None:
        """Record a missing clinical input; ``factor`` (<= 1) lowers the confidence."""
        if key not in self.missing:
            self.missing.append(key)
            self._factor *= factor

    def unseen(self, feature: str, *, factor: float = 1.0) -> None:
        """Record an imaging feature the findings cannot show (listed as missing)."""
        self.need(f"imaging: {feature} (not assessable from these findings)", factor=factor)

    def lab(self, facts: Facts, name: str, *, factor: float = 1.0) -> str:
        """Status of lab ``name``; when unknown it is recorded as missing (never normal)."""
        status = facts.clinical.lab_status(name)
        if status == "unknown":
            self.need(name, factor=factor)
        return status

    def history(self, facts: Facts, key: str, *, factor: float = 1.0) -> bool | str | None:
        """History item ``key`` (or ``age``); ``None`` = unknown, recorded as missing."""
        if key == "age":
            value = facts.clinical.age_years
        else:
            if key not in HISTORY_KEYS:
                raise AnalysisError(f"Rule asked for unknown history item {key!r}.")
            value = facts.clinical.history.get(key)
        if value is None:
            self.need(key, factor=factor)
        return value

    def result(self) -> RuleResult:
        """The score and the reasons, in the order they were found."""
        score = CEILING * self._factor / (1.0 + math.exp(-self._logit))
        score = round(min([score, *self._caps]), 3)
        return RuleResult(
            score=score,
            supporting=[e.text for e in self.evidence if not e.against],
            against=[e.text for e in self.evidence if e.against],
            missing=list(self.missing),
            evidence=tuple(self.evidence),
        )

    def _add(self, kind: str, text: str, weight: float, *, against: bool) -> None:
        if kind not in KINDS:
            raise AnalysisError(f"Evidence kind {kind!r} is not one of {', '.join(KINDS)}.")
        self._logit += weight
        self.evidence.append(Evidence(kind, text, weight, against))


@dataclass(frozen=True)
class RuleEntry:
    """One conclusion of the differential.

    Attributes
    ----------
    key : str
        Registry key (unique; e.g. ``dystrophic_local``).
    diagnosis : str
        The contract's word (two entries may share one, e.g. the two dystrophic ones).
    title : str
        Plain-language name, with the subtype where one exists.
    description : str
    references : tuple of str
        Short citations.
    inputs : tuple of str
        Clinical-input keys the rule reads (each is listed as missing when unknown).
    would_change : str
        What would change the conclusion, in plain words.
    calcinosis_cutis : bool
        True for the types of calcinosis cutis (they carry a form); False for look-alikes.
    subtype : str or None
    function : callable
        ``(Facts) -> RuleResult``.
    order : int
        Position in the registry (ties in score are broken by it).
    """

    key: str
    diagnosis: str
    title: str
    description: str
    references: tuple[str, ...]
    inputs: tuple[str, ...]
    would_change: str
    calcinosis_cutis: bool
    subtype: str | None
    function: Callable[[Facts], RuleResult]
    order: int


#: Every rule, in the order of docs/clinical.md's table (which breaks ties).
REGISTRY: dict[str, RuleEntry] = {}
_VALID_INPUTS = (*LAB_NAMES, *HISTORY_KEYS, "age", "sex")


def register(key: str, *, diagnosis: str, title: str, description: str,
             references: Iterable[str], inputs: Iterable[str] = (), would_change: str,
             calcinosis_cutis: bool = False, subtype: str | None = None
             ) -> Callable[[Callable[[Facts], RuleResult]], Callable[[Facts], RuleResult]]:
    """Decorator that adds a rule function to :data:`REGISTRY` (see :class:`RuleEntry`)."""
    inputs = tuple(inputs)
    bad = [name for name in inputs if name not in _VALID_INPUTS]
    if key in REGISTRY or bad:
        raise AnalysisError(f"Rule {key!r} is registered twice or reads unknown inputs {bad}.")

    def decorate(function: Callable[[Facts], RuleResult]) -> Callable[[Facts], RuleResult]:
        REGISTRY[key] = RuleEntry(key, diagnosis, title, description, tuple(references), inputs,
                                  would_change, calcinosis_cutis, subtype, function,
                                  len(REGISTRY))
        return function

    return decorate
