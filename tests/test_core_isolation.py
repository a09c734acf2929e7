"""core/ must stay usable without napari, Qt or magicgui."""

import subprocess
import sys


def test_core_imports_no_gui_modules():
    code = (
        "import sys, pkgutil, importlib\n"
        "import napari_calcinosis.core as core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'napari_calcinosis.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
        "('napari', 'qtpy', 'magicgui', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'vispy'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core loaded GUI modules: {out.stdout}"
