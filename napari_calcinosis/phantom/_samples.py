"""The bundled sample studies: generated deterministically on first use, then cached.

``SAMPLE_STUDIES`` maps each name to a one-line description; ``sample_study_path(name)``
returns the folder of that study (a CT series, frontal and lateral radiographs and
``truth.json``), generating it into ``$XDG_CACHE_HOME/napari-calcinosis/samples/<name>-<hash>``
when missing. The hash covers the sample's parameters and the source of the generator, so a
changed generator never serves a stale study. Generation writes into a temporary folder next to
the cache entry and renames it into place, so a crash or a concurrent caller never sees a
half-written study.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from napari_calcinosis.types import CalcinosisError
from napari_calcinosis.types.progress import sub_progress

from ._render import make_ct_phantom
from ._spec import PhantomSpec
from ._write import write_study

#: name -> (description, phantom spec, radiograph views)
_SAMPLES: dict[str, tuple[str, PhantomSpec, tuple[str, ...]]] = {
    "generalized": (
        "Torso CT (5 mm) and PA + lateral chest radiographs with many small symmetric skin and "
        "subcutaneous calcifications in seven regions (calcinosis cutis universalis).",
        PhantomSpec(scenario="generalized", seed=2025), ("frontal", "lateral")),
    "localized": (
        "Torso CT (5 mm) and PA + lateral chest radiographs with a one-sided cluster of "
        "subcutaneous calcifications on the right lateral chest wall (circumscripta).",
        PhantomSpec(scenario="localized", seed=14, localized_region="chest_wall_lateral",
                    localized_side="right"), ("frontal", "lateral")),
}
SAMPLE_STUDIES: dict[str, str] = {name: entry[0] for name, entry in _SAMPLES.items()}

#: The clinical input that goes with a sample (docs/contract.md format), for ``demo``: the
#: generalized sample is the seed case, whose labs and history are the contract's clinical
#: example (an elderly man with normal calcium, phosphate, PTH, kidney function and muscle
#: enzymes, and no relevant history).
SAMPLE_CLINICAL: dict[str, dict] = {
    "generalized": {
        "age": 78, "sex": "M",
        "labs": {
            "calcium": {"value": 9.4, "unit": "mg/dL"},
            "phosphate": {"value": 1.1, "unit": "mmol/L"},
            "pth": {"value": 40, "unit": "pg/mL"},
            "creatinine": {"value": 0.9, "unit": "mg/dL"},
            "egfr": {"value": 85, "unit": "mL/min/1.73m2"},
            "ck": {"value": 120, "unit": "U/L", "upper_limit": 200},
            "aldolase": {"value": 5, "unit": "U/L", "upper_limit": 7.5},
        },
        "history": {
            "connective_tissue_disease": "none", "chronic_kidney_disease": False,
            "dialysis": False, "trauma_or_surgery": False, "injections": False,
            "iv_calcium": False, "malignancy": False, "vitamin_d_excess": False,
            "sarcoidosis": False, "pain_or_ulceration": False,
        },
    },
}

def generator_hash(name: str) -> str:
    """Short hash of a sample's parameters and of the generator's source code."""
    digest = hashlib.sha256(repr(_SAMPLES[name][1:]).encode())
    here = Path(__file__).parent
    for module in sorted(here.glob("*.py")):
        digest.update(module.read_bytes())
    return digest.hexdigest()[:12]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "napari-calcinosis" / "samples"


def write_sample(name: str, folder: str | Path, *, progress=None) -> Path:
    """Generate sample ``name`` into ``folder`` (no caching)."""
    _, spec, views = _entry(name)
    # one 0..1 over both steps (each reports its own 0..1): rendering is most of the time
    ct = make_ct_phantom(spec, progress=sub_progress(progress, 0.0, 0.75))
    return write_study(ct, folder, xray_views=views,
                       progress=sub_progress(progress, 0.75, 1.0))


def _entry(name: str):
    if name not in _SAMPLES:
        raise CalcinosisError(f"unknown sample study {name!r}; available: "
                              f"{', '.join(SAMPLE_STUDIES)}")
    return _SAMPLES[name]


def sample_study_path(name: str, *, cache_dir: str | Path | None = None,
                      progress=None) -> Path:
    """Folder of a bundled sample study, generated on first use (see module docstring).

    Parameters
    ----------
    name : str
        A key of :data:`SAMPLE_STUDIES` (``'generalized'``, ``'localized'``).
    cache_dir : path, optional
        Where the cached studies live (default: ``$XDG_CACHE_HOME/napari-calcinosis/samples``).
    progress : callable, optional
        ``progress(fraction, message)`` while generating.

    Returns
    -------
    Path
        The study folder (``ct/``, ``xray/``, ``truth.json``).
    """
    _entry(name)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / f"{name}-{generator_hash(name)}"
    if final.is_dir():
        return final
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    except OSError as exc:
        raise CalcinosisError(f"cannot create the sample cache folder {root}: {exc}") from exc
    try:
        write_sample(name, tmp, progress=progress)
        os.replace(tmp, final)
    except OSError as exc:
        if not final.is_dir():  # else a concurrent caller won the rename: use theirs
            raise CalcinosisError(f"cannot write the sample study {name!r} into {root}: "
                                  f"{exc}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
