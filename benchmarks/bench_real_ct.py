"""Real-anatomy CT benchmark: false calls on unmodified real CTs, and hybrids scored.

For every case of ``real_ct_cases.json`` in the chosen half:

* **unmodified**: the detector runs on the real volume; every soft-tissue call (a layer of
  the body wall or the limbs: see ``SOFT_LAYERS``) is listed with its place, and with
  ``--images DIR`` drawn on an axial key image (``<case>_<id>.png``: the slice in a soft
  tissue window, the call's outline in red, and a 6 cm crop) for a person to look at and name;
  the study's extent and first diagnosis are printed (a study without calcinosis should give
  extent ``none``);
* **hybrids**: known deposits are inserted into the same volume
  (:func:`napari_calcinosis.phantom.make_hybrid`, scenarios ``scattered``, ``symmetric``,
  ``localized`` and ``mass``), the detector runs, and the lesions are scored
  (:func:`napari_calcinosis.phantom.score_hybrid`): sensitivity, PPV, layer and side.

Parameters were chosen on the ``tune`` half only: report the figures of the ``report`` half.

Data: the cases are public de-identified CTs (provenance and licence in the manifest). Each is
read from ``--root`` (a DICOM folder through the plugin's loader, or NIfTI/NRRD through
nibabel/pynrrd, which are not dependencies of the plugin: ``pip install nibabel pynrrd``), or
from ``--cache`` when ``<cache>/<name>.npz`` exists (``hu`` int16 z-y-x, ``spacing_zyx_mm``,
``origin_lps_mm``, ``direction_lps``), which is also where converted volumes are kept.

Usage::

    .venv/bin/python benchmarks/bench_real_ct.py --root DATA --cache CACHE --half report \\
        [--scenarios scattered,mass] [--seeds 1] [--images DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _volume(arrays, name: str):
    from napari_calcinosis.types import SeriesInfo, Volume

    return Volume(hu=arrays["hu"], spacing_zyx_mm=tuple(float(s) for s in
                                                        arrays["spacing_zyx_mm"]),
                  origin_lps_mm=np.asarray(arrays["origin_lps_mm"], float),
                  direction_lps=np.asarray(arrays["direction_lps"], float),
                  info=SeriesInfo(series_instance_uid=name, modality="CT",
                                  study_instance_uid=name))


def _from_nifti(path: Path) -> dict:
    import nibabel

    img = nibabel.load(str(path))
    a = img.affine
    hu = np.asarray(img.dataobj).transpose(2, 1, 0)
    flip = np.diag([-1.0, -1.0, 1.0])  # RAS -> LPS
    cols = [flip @ a[:3, 2], flip @ a[:3, 1], flip @ a[:3, 0]]
    return _arrays(hu, cols, flip @ a[:3, 3])


def _from_nrrd(path: Path) -> dict:
    import nrrd

    data, header = nrrd.read(str(path))
    d = np.asarray(header["space directions"], float)
    origin = np.asarray(header["space origin"], float)
    lps = "left-posterior" in header.get("space", "left-posterior-superior")
    flip = np.eye(3) if lps else np.diag([-1.0, -1.0, 1.0])
    return _arrays(data.transpose(2, 1, 0), [flip @ d[2], flip @ d[1], flip @ d[0]],
                   flip @ origin)


def _arrays(hu, cols, origin) -> dict:
    spacing = [float(np.linalg.norm(c)) for c in cols]
    return {"hu": np.clip(np.round(hu), -32768, 32767).astype(np.int16),
            "spacing_zyx_mm": np.array(spacing), "origin_lps_mm": np.asarray(origin),
            "direction_lps": np.column_stack([c / s for c, s in zip(cols, spacing)])}


def load_case(case: dict, root: Path, cache: Path):
    """The case's real volume (module docstring)."""
    cached = cache / f"{case['name']}.npz"
    if cached.exists():
        with np.load(cached) as z:
            return _volume({k: z[k] for k in z.files}, case["name"])
    path = root / case["path"]
    if path.is_dir():
        from napari_calcinosis.dicom import load_study

        vol = load_study(path).volumes[0]
        if not vol.info.series_instance_uid:
            vol.info.series_instance_uid = case["name"]
        return vol
    arrays = _from_nrrd(path) if path.suffix == ".nrrd" else _from_nifti(path)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cached, **arrays)
    return _volume(arrays, case["name"])


def key_image(volume, labels: np.ndarray, lesion, path: Path) -> None:
    """Axial slice through the call (W 400 / L 40), outlined in red, beside a 6 cm crop."""
    from PIL import Image
    from scipy import ndimage as ndi

    k, i, j = (int(round(c)) for c in lesion.centroid_index)
    grey = np.clip((volume.hu[k].astype(np.float32) + 160.0) / 400.0, 0, 1)
    rgb = np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=2)
    mask = labels[k] == lesion.id
    rim = ndi.binary_dilation(mask, iterations=2) & ~mask
    rgb[rim] = (255, 0, 0)
    hy = int(30.0 / volume.spacing_zyx_mm[1])
    hx = int(30.0 / volume.spacing_zyx_mm[2])
    crop = rgb[max(0, i - hy):i + hy, max(0, j - hx):j + hx]
    full = Image.fromarray(rgb).resize((360, max(1, int(360 * rgb.shape[0] / rgb.shape[1]))))
    small = Image.fromarray(crop).resize((360, 360), Image.NEAREST)
    canvas = Image.new("RGB", (720, max(360, full.size[1])))
    canvas.paste(full, (0, 0))
    canvas.paste(small, (360, 0))
    canvas.save(path)


def run_unmodified(name: str, volume, images: Path | None) -> dict:
    from napari_calcinosis.ct import analyze_volume
    from napari_calcinosis.phantom import SOFT_LAYERS

    t0 = time.perf_counter()
    result = analyze_volume(volume)
    seconds = time.perf_counter() - t0
    soft = [les for les in result.lesions if les.layer in SOFT_LAYERS]
    print(f"\n== {name}: {volume.hu.shape} {seconds:.1f} s, {len(result.lesions)} lesions, "
          f"{len(soft)} soft-tissue, extent {result.summary.extent}, "
          f"{len(result.set_aside)} set aside")
    for les in soft:
        print(f"   call {les.id:3d} {les.layer:12s} {les.region:18s} {les.side:7s} "
              f"{les.morphology:9s} peak {les.peak_hu:6.0f} HU {les.volume_mm3:8.1f} mm3 "
              f"depth {les.extra.get('depth_mm')} mm at index "
              f"{[int(round(c)) for c in les.centroid_index]}")
        if images is not None:
            key_image(volume, result.lesion_labels, les, images / f"{name}_{les.id:03d}.png")
    reasons: dict[str, int] = {}
    for item in result.set_aside:
        reasons[item["reason"]] = reasons.get(item["reason"], 0) + 1
    print(f"   set aside: {reasons}")
    return {"soft_calls": len(soft), "extent": result.summary.extent, "seconds": seconds}


def run_hybrids(name: str, volume, scenarios: list[str], seeds: list[int]):
    from napari_calcinosis.ct import analyze_volume
    from napari_calcinosis.phantom import HybridScore, make_hybrid, score_hybrid

    total = HybridScore()
    for scenario in scenarios:
        for seed in seeds:
            study = make_hybrid(volume, scenario=scenario, seed=seed)
            result = analyze_volume(study.volume)
            score = score_hybrid(study, result.lesions, result.lesion_labels)
            total = total + score
            by_id = {d.id: d for d in study.deposits}
            missed = ", ".join(f"{by_id[i].kind}/{by_id[i].layer}"
                               f"{'/limb' if by_id[i].limb else ''}" for i in score.misses)
            print(f"   hybrid {scenario:10s} seed {seed}: {score.found}/{score.eligible} "
                  f"found, layer {score.layer_exact}, side {score.side_exact}, "
                  f"false calls {len(score.false_calls)}"
                  + (f"; missed {missed}" if missed else ""))
    return total


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--half", choices=("tune", "report", "all"), default="report")
    parser.add_argument("--cases", default="", help="comma-separated names (default: all)")
    parser.add_argument("--scenarios", default="scattered,symmetric,localized,mass")
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--images", type=Path, default=None)
    parser.add_argument("--no-hybrids", action="store_true")
    args = parser.parse_args(argv)
    manifest = json.loads((HERE / "real_ct_cases.json").read_text())
    wanted = set(filter(None, args.cases.split(",")))
    cases = [c for c in manifest["cases"] if (args.half == "all" or c["half"] == args.half)
             and (not wanted or c["name"] in wanted)]
    if args.images is not None:
        args.images.mkdir(parents=True, exist_ok=True)
    scenarios = [s for s in args.scenarios.split(",") if s]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    from napari_calcinosis.phantom import HybridScore

    total = HybridScore()
    calls = {}
    for case in cases:
        try:
            volume = load_case(case, args.root, args.cache)
        except (OSError, ImportError, ValueError) as exc:
            print(f"\n== {case['name']}: skipped, cannot be read ({exc})")
            continue
        calls[case["name"]] = run_unmodified(case["name"], volume, args.images)
        if not args.no_hybrids:
            total = total + run_hybrids(case["name"], volume, scenarios, seeds)
    print(f"\nhalf: {args.half}; cases: {', '.join(calls)}")
    print("unmodified, soft-tissue calls per study: " + ", ".join(
        f"{n} {c['soft_calls']} ({c['extent']})" for n, c in calls.items()))
    if calls:
        worst = max(c["soft_calls"] for c in calls.values())
        print(f"studies with at most 1 call: {sum(c['soft_calls'] <= 1 for c in calls.values())}"
              f"/{len(calls)} (worst {worst})")
    if total.eligible:
        print(f"hybrids: sensitivity {total.sensitivity:.3f} ({total.found}/{total.eligible}), "
              f"PPV {total.ppv:.3f} ({total.true_calls}/{total.soft_calls}), "
              f"layer {total.layer_accuracy:.3f}, side {total.side_accuracy:.3f}")


if __name__ == "__main__":
    main()
