"""Bad input from the real world: each gives one sentence naming the file and the exit code
of the contract, and nothing else of the study is lost (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_calcinosis import cli
from napari_calcinosis.clinical import MAX_CLINICAL_BYTES

SLAB = Path(__file__).resolve().parent / "data" / "realct" / "pancreas-ct-cbct-seg-001-slab8"


def _analyze(argv, capsys) -> tuple[int, str]:
    status = cli.main(["analyze", *map(str, argv), "--quiet"])
    return status, capsys.readouterr().err


@pytest.mark.parametrize("name,text,words", [
    ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("bigint.json", '{"age": ' + "9" * 400 + "}", "cannot be used"),
    ("bigvalue.json", '{"labs": {"calcium": {"value": 1' + "0" * 400 + ', "unit": "mg/dL"}}}',
     "cannot be used"),
    ("huge.json", '{"history": {}, "x": "' + "a" * (MAX_CLINICAL_BYTES + 10) + '"}',
     "larger than"),
])
def test_malformed_clinical_file_is_exit_2_with_one_sentence(tmp_path, capsys, name, text,
                                                             words):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    status, err = _analyze([SLAB, "--out", tmp_path / "out", "--clinical", path], capsys)
    assert status == 2
    assert err.count("\n") == 1 and str(path) in err and words in err
    assert "Unexpected" not in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_clinical_file_that_is_a_device_is_refused(tmp_path, capsys):
    status, err = _analyze([SLAB, "--out", tmp_path / "out", "--clinical", "/dev/zero"],
                           capsys)
    assert status == 2 and "/dev/zero" in err and "not a regular file" in err
