"""A run writes its outputs as one set: a failing run leaves the previous run's files as
they were, and nothing of its own (docs/contract.md, "Command line")."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_calcinosis.report import WRITERS
from napari_calcinosis.report._formats import FormatWriter
from napari_calcinosis.run import STAGING_PREFIX, run_analysis
from napari_calcinosis.types import CalcinosisError

SLAB = Path(__file__).resolve().parent / "data" / "realct" / "pancreas-ct-cbct-seg-001-slab8"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_failed_run_leaves_the_previous_outputs_untouched(tmp_path, monkeypatch):
    out = tmp_path / "out"
    written = run_analysis(SLAB, out, formats=["json", "csv"], use_annotations=False)
    assert [p.name for p in written] == ["findings.json", "lesions.csv"]
    assert all(p.parent == out for p in written)
    before = _files(out)

    def broken(findings, out_dir, context):
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(WRITERS, "sr", FormatWriter("sr", broken, "sr.dcm", "broken"))
    with pytest.raises(CalcinosisError, match="Cannot write sr.dcm .*No space left"):
        run_analysis(SLAB, out, formats=["json", "html", "sr"], use_annotations=False)
    assert _files(out) == before  # no new report.html, the old findings.json kept


def test_staging_left_by_a_killed_run_is_removed(tmp_path):
    out = tmp_path / "out"
    stale = out / f"{STAGING_PREFIX}killed"
    stale.mkdir(parents=True)
    (stale / "findings.json").write_text("{", encoding="utf-8")
    run_analysis(SLAB, out, formats=["json"], use_annotations=False)
    assert sorted(p.name for p in out.iterdir()) == ["findings.json"]
