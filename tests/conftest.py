"""Shared fixtures: real DICOM files shipped by pydicom and pydicom-data.

The tests mirror the packages (``tests/ct/`` tests ``napari_calcinosis.ct``, ...); helpers
shared by several folders live in ``tests/_support/`` and are importable by module name.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "_support"))


def pytest_configure(config: pytest.Config) -> None:
    # Keep napari/Qt settings of the tests away from the user's own.
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="calcinosis-tests-"))
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR"):
        path = base / var.lower()
        path.mkdir(mode=0o700)
        os.environ[var] = str(path)
    os.environ.setdefault("NAPARI_CALCINOSIS_DATA_DIR", str(base / "annotations"))


@pytest.fixture(scope="session")
def testdata():
    """Return a function that gives the path of a pydicom/pydicom-data test file by name."""
    from pydicom.data import get_testdata_file

    def _get(name: str) -> Path:
        path = get_testdata_file(name)
        if path is None:
            pytest.fail(f"test file {name} not found (is pydicom-data installed?)")
        return Path(path)

    return _get


@pytest.fixture
def own_napari_app(mock_app_model):
    """A napari viewer made directly (``napari.Viewer()``, as ``napari-calcinosis view`` does)
    registers the plugins' commands in its own app model, not the process-wide one.

    napari's ``make_napari_viewer`` gives every test a fresh app model and clears the cache of
    plugin registration; a viewer made directly afterwards would register the plugin's
    commands again in the process-wide app model, where an earlier direct viewer left them
    ("Command ... already registered").
    """
    from napari._qt._qapp_model.qactions import init_qactions
    from napari.plugins import _initialize_plugins

    _initialize_plugins.cache_clear()
    init_qactions.cache_clear()
    yield mock_app_model
