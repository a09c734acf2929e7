"""Findings, the reader's marks, labs and history -> a ranked, explained differential.

:func:`classify` runs every rule of a registry (:mod:`._base`; the types of calcinosis cutis
in :mod:`._rules`, their look-alikes in :mod:`._lookalikes`, one registered rule per
conclusion) on the facts of a study, with the reader's marks applied first (:mod:`._marks`),
and ranks the conclusions (:mod:`._classify`). Each says what was seen, what the tests and
the history say, what would change it and what is missing; every result carries
:data:`DISCLAIMER`.
"""

from ._base import (
    CEILING,
    HISTORY_LABELS,
    LAB_LABELS,
    REGISTRY,
    Facts,
    RuleResult,
    Tally,
    register,
)
from ._classify import (
    DISCLAIMER,
    PART_TITLES,
    ClassifyParams,
    Conclusion,
    Differential,
    classify,
    evaluate_rules,
    input_label,
)
from ._marks import EffectiveFindings, ReaderMarks, apply_marks

__all__ = ["CEILING", "DISCLAIMER", "HISTORY_LABELS", "LAB_LABELS", "PART_TITLES", "REGISTRY",
           "ClassifyParams", "Conclusion", "Differential", "EffectiveFindings", "Facts",
           "ReaderMarks", "RuleResult", "Tally", "apply_marks", "classify", "evaluate_rules",
           "input_label", "register"]
