"""The distribution-and-symmetry table the reader reviews: regions x sides, calls, overrides.

One row per body region holding soft-tissue lesions: left, right and midline counts, the
left and right burden (volume in mm³, or area in mm² on a radiograph), the symmetry index
of the region pair, the automatic call and the reader's call beside it. The overall rows
(symmetry, extent, form) pair the automatic value with the reader's override.

Per-region call (a design choice; docs/clinical.md calls symmetry per study): ``insufficient``
with fewer than :data:`REGION_MIN_DEPOSITS` lateral deposits in the region, otherwise
``symmetric`` when SI >= ``CTParams.symmetry_si_cut`` (0.7), else ``asymmetric``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from napari_calcinosis.annotations import AnnotationRecord
from napari_calcinosis.summary import symmetry_index
from napari_calcinosis.types import CTParams, Findings
from napari_calcinosis.types.findings import REGIONS

__all__ = ["REGION_MIN_DEPOSITS", "OverallRow", "RegionRow", "overall_rows", "region_call",
           "region_rows"]

#: Fewest lateral deposits in a region for a per-region symmetry call.
REGION_MIN_DEPOSITS = 2


@dataclass(frozen=True)
class RegionRow:
    """One body region of the table."""

    region: str
    left_count: int
    right_count: int
    midline_count: int
    left_burden: float
    right_burden: float
    index: float | None
    auto_call: str
    reader_call: str | None = None

    @property
    def call(self) -> str:
        """The call that counts: the reader's when set."""
        return self.reader_call or self.auto_call


@dataclass(frozen=True)
class OverallRow:
    """An overall value (``symmetry_call``, ``extent``, ``form``).

    ``auto`` is the automatic value, ``reader`` the reader's override (``None`` when not
    set) and ``value`` the value that counts (a reader's extent also sets the form).
    """

    name: str
    auto: str
    value: str
    reader: str | None = None


def region_call(index: float | None, lateral_count: int, *,
                params: CTParams | None = None) -> str:
    """The automatic symmetry call of one region pair (rule in the module docstring)."""
    params = params or CTParams()
    if index is None or lateral_count < REGION_MIN_DEPOSITS:
        return "insufficient"
    return "symmetric" if index >= params.symmetry_si_cut else "asymmetric"


def region_rows(findings: Findings, record: AnnotationRecord | None = None, *,
                params: CTParams | None = None) -> list[RegionRow]:
    """Rows of the table from effective findings (lesions of the summary's source only).

    Parameters
    ----------
    findings : Findings
        The effective findings (rejected lesions gone, reader's layers applied).
    record : AnnotationRecord, optional
        The reader's per-region calls.
    params : CTParams, optional
        ``symmetry_si_cut``.

    Returns
    -------
    list of RegionRow
        In the contract's region order.
    """
    kind = "radiograph" if findings.summary.source == "radiograph" else "volume"
    uids = {s.series_instance_uid for s in findings.series if s.kind == kind}
    soft = [les for les in findings.lesions if les.is_soft_tissue
            and (not uids or les.series_instance_uid in uids)]
    counts = Counter((les.region, les.side) for les in soft)
    burden: Counter = Counter()
    for les in soft:
        size = les.volume_mm3 if les.volume_mm3 is not None else les.area_mm2
        burden[(les.region, les.side)] += float(size or 0.0)
    overrides = {} if record is None else record.region_symmetry_overrides
    rows = []
    for region in REGIONS:
        left, right = counts[(region, "left")], counts[(region, "right")]
        midline = counts[(region, "midline")]
        if not (left or right or midline or region in overrides):
            continue
        lb, rb = burden[(region, "left")], burden[(region, "right")]
        index = symmetry_index(*_pair_burden(left, right, lb, rb, params))
        reader = overrides[region].value if region in overrides else None
        rows.append(RegionRow(region, left, right, midline, round(lb, 1), round(rb, 1),
                              None if index is None else round(index, 3),
                              region_call(index, left + right, params=params), reader))
    return rows


def _pair_burden(left: int, right: int, left_volume: float, right_volume: float,
                 params: CTParams | None) -> tuple[float, float]:
    # The index weighs the same burden as the study's call (count or volume).
    if (params or CTParams()).symmetry_burden == "volume":
        return left_volume, right_volume
    return float(left), float(right)


def overall_rows(findings: Findings, auto: dict[str, str]) -> list[OverallRow]:
    """The overall symmetry call, extent and form: automatic value and the reader's.

    Parameters
    ----------
    findings : Findings
        The effective findings (with ``parameters["annotations"]`` from
        :func:`napari_calcinosis.annotations.apply_to_findings`).
    auto : dict
        The automatic ``symmetry_call``, ``extent`` and ``form``.
    """
    info = findings.parameters.get("annotations", {}).get("summary_overrides", {})
    summary = findings.summary
    values = {"symmetry_call": summary.symmetry.call, "extent": summary.extent,
              "form": summary.form}
    return [OverallRow(name, auto[name], values[name],
                       info[name]["reader"] if name in info else None)
            for name in ("symmetry_call", "extent", "form")]
