"""Atomic writes: a failure midway never leaves a partial file under the final name."""

from __future__ import annotations

import os
import stat

import pytest

from napari_calcinosis.files import (
    atomic_open,
    atomic_write_bytes,
    atomic_write_text,
    atomic_write_with,
)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_write_text_and_bytes(tmp_path):
    text_path = atomic_write_text(tmp_path / "a.txt", "h\u00e9llo\n")
    assert text_path.read_text(encoding="utf-8") == "h\u00e9llo\n"
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert _leftovers(tmp_path) == ["a.txt", "b.bin"]
    assert stat.S_IMODE(os.stat(text_path).st_mode) == 0o644


def test_failure_midway_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "findings.json"
    target.write_text("old", encoding="utf-8")
    os.chmod(target, 0o640)
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_open(target, "w") as handle:
            handle.write("new half")
            raise RuntimeError("disk on fire")
    assert target.read_text(encoding="utf-8") == "old"
    assert _leftovers(tmp_path) == ["findings.json"]
    atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640  # permissions kept


def test_failure_on_a_new_file_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(tmp_path / "new.csv", "w") as handle:
            handle.write("id\n")
            raise KeyboardInterrupt
    assert _leftovers(tmp_path) == []


def test_atomic_write_with_a_library_writer(tmp_path):
    def good(temp_name):
        with open(temp_name, "wb") as handle:
            handle.write(b"DICM")

    def bad(temp_name):
        with open(temp_name, "wb") as handle:
            handle.write(b"DI")
        raise OSError("no space left")

    path = atomic_write_with(tmp_path / "seg.dcm", good)
    assert path.read_bytes() == b"DICM"
    with pytest.raises(OSError, match="no space"):
        atomic_write_with(tmp_path / "seg.dcm", bad)
    assert path.read_bytes() == b"DICM"
    assert _leftovers(tmp_path) == ["seg.dcm"]


def test_missing_folder_raises_and_bad_mode_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "nope" / "x.txt", "x")
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "x.txt", "a"):
            pass
    assert _leftovers(tmp_path) == []
