"""The npe2 manifest: valid, importable, DICOM-only reader patterns, shipped in the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from npe2 import PluginManager, PluginManifest

from napari_calcinosis._napari import reader as _reader

ROOT = Path(__file__).resolve().parents[1]
PICTURES = ["a.png", "b.PNG", "c.jpg", "d.jpeg", "e.JPG", "f.tif", "g.tiff", "h.TIF",
            "i.ome.tif", "j.bmp", "k.gif"]


@pytest.fixture(scope="module")
def manifest() -> PluginManifest:
    return PluginManifest.from_distribution("napari-calcinosis")


@pytest.fixture(scope="module")
def only_this_plugin(manifest) -> PluginManager:
    pm = PluginManager()  # a private manager: napari's builtins are not registered here
    pm.register(manifest)
    return pm


def test_installed_manifest_is_valid_and_imports(manifest):
    assert manifest.name == "napari-calcinosis"
    manifest.validate_imports()  # every python_name resolves


def test_npe2_validate_command_passes():
    npe2 = shutil.which("npe2", path=str(Path(sys.executable).parent))
    assert npe2, "npe2 console script not installed next to the interpreter"
    out = subprocess.run([npe2, "validate", "--imports", "napari-calcinosis"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "valid" in out.stdout


def test_reader_patterns_claim_dicom_only(manifest):
    (reader,) = manifest.contributions.readers
    assert reader.accepts_directories
    assert set(reader.filename_patterns) == {"*.dcm", "*.DCM", "*.dicom", "*.DICOM", "DICOMDIR",
                                             "[!.][!.][!.][!.][!.][!.][!.][!.]"}


@pytest.mark.parametrize("name", PICTURES)
def test_pictures_are_never_claimed(only_this_plugin, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"not an image")
    assert list(only_this_plugin.iter_compatible_readers([str(path)])) == []
    assert _reader.napari_get_reader(str(path)) is None


@pytest.mark.parametrize("name", ["slice.dcm", "SLICE.DCM", "x.dicom", "Y.DICOM", "dicomdir"])
def test_dicom_names_and_folders_are_claimed(only_this_plugin, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    (reader,) = only_this_plugin.iter_compatible_readers([str(path)])
    assert reader.command == "napari-calcinosis.get_reader"
    assert _reader.napari_get_reader(str(path)) is _reader.read_dicom
    (folder_reader,) = only_this_plugin.iter_compatible_readers([str(tmp_path)])
    assert folder_reader.command == "napari-calcinosis.get_reader"
    assert _reader.napari_get_reader(str(tmp_path)) is _reader.read_dicom


def test_uppercase_dicomdir_is_claimed_by_npe2_and_the_reader(only_this_plugin, tmp_path):
    # npe2 lower-cases patterns but not extension-less names: the dot-free eight-character
    # pattern brings an upper-case DICOMDIR to the reader (File > Open, drag and drop)
    path = tmp_path / "DICOMDIR"
    path.write_bytes(b"")
    (reader,) = only_this_plugin.iter_compatible_readers([str(path)])
    assert reader.command == "napari-calcinosis.get_reader"
    assert _reader.napari_get_reader(str(path)) is _reader.read_dicom
    other = tmp_path / "IM000001"  # matched by the pattern, not claimed by the reader
    other.write_bytes(b"")
    assert _reader.napari_get_reader(str(other)) is None


def test_manifest_contributions(manifest):
    contrib = manifest.contributions
    assert {s.key for s in contrib.sample_data} == {"generalized", "localized"}
    assert {w.display_name for w in contrib.widgets} >= {"CT window presets",
                                                        "Calcinosis detection"}
    assert manifest.on_activate == "napari_calcinosis._qt.activate:on_activate"


def _copy_sources(dest: Path) -> None:
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "napari_calcinosis", dest / "napari_calcinosis",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


@pytest.mark.slow
def test_wheel_ships_manifest_schemas_and_entry_point(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _copy_sources(src)  # build a copy: the shared work tree stays untouched
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = (tmp_path / "dist").glob("napari_calcinosis-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_text = zf.read(entry_points).decode()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta_text = zf.read(metadata).decode()
    assert "napari_calcinosis/napari.yaml" in names
    assert {"napari_calcinosis/schemas/findings_v1.json",
            "napari_calcinosis/schemas/clinical_v1.json"} <= names
    assert {"napari_calcinosis/_napari/reader.py",
            "napari_calcinosis/_qt/window_widget.py"} <= names
    assert not any(n.startswith("tests/") for n in names)
    assert "[napari.manifest]\nnapari-calcinosis = napari_calcinosis:napari.yaml" in entry_text
    assert "napari-calcinosis = napari_calcinosis.cli:main" in entry_text
    assert "Classifier: Framework :: napari" in meta_text
