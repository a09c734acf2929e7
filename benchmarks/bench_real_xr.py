"""Real chest films: false calls on the unmodified films and sensitivity on hybrids.

For every film of ``real_xr_films.json`` (a DICOM file read by the plugin's loader, or a
PNG wrapped as a DX chest film with the spacing the list gives), this prints

* the calls the radiograph detector makes on the unmodified film (none of these films is
  known to hold a soft-tissue calcification: every call is a false call), and
* over ``--seeds`` hybrids per film (:func:`napari_calcinosis.phantom.make_film_hybrid`:
  8 deposits each, 6 tangential at the shoulders, axillae and chest wall, 2 en face,
  1.5-5 mm, 3-15 x the local noise), the sensitivity over the eligible deposits (>= 2 mm,
  >= 5 x noise) and the false calls per film.

Films carry a ``half``: parameters are chosen on ``tune`` and figures reported on
``report`` (``--half``). Paths are relative to ``--root`` (default: the repository, whose
``tests/data/realxr`` holds the films the project ships; ``real_xr_films_extra.json`` lists
public films collected into a local folder, pass that folder as ``--root``);
``pydicom-data:NAME`` is a file of
pydicom-data's test data; ``--images DIR`` writes an overlay PNG per film (red: calls,
green: inserted deposits) to look at.

Usage::

    .venv/bin/python benchmarks/bench_real_xr.py [--half report] [--seeds 5] [--images DIR]
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TARGET_SENSITIVITY, TARGET_FALSE_PER_FILM = 0.8, 1.0


def load_film(entry: dict, root: Path):
    from napari_calcinosis.types import Radiograph, SeriesInfo
    path = entry["path"]
    if path.startswith("pydicom-data:"):
        from pydicom.data import get_testdata_file
        path = get_testdata_file(path.split(":", 1)[1])
    else:
        path = root / path
    if str(path).lower().endswith((".png", ".jpg", ".jpeg")):
        from skimage import io
        image = io.imread(path, as_gray=True).astype(np.float32)
        spacing = entry.get("pixel_mm")
        return Radiograph(image=image, info=SeriesInfo(series_instance_uid="2.25.1",
                                                       body_part="CHEST", modality="DX"),
                          view="frontal", view_position="PA", patient_orientation=("L", "F"),
                          pixel_spacing_mm=None if spacing is None else (spacing, spacing),
                          spacing_source="none" if spacing is None else "PixelSpacing",
                          file=Path(path))
    from napari_calcinosis.dicom import load_study
    return load_study(Path(path)).radiographs[0]


def overlay(path: Path, rad, lesions, deposits) -> None:
    from skimage import draw, io, transform
    img = rad.image.astype(float)
    lo, hi = np.percentile(img, [1, 99.5])
    g = np.clip((img - lo) / max(hi - lo, 1e-9), 0, 1)
    rgb = np.dstack([g, g, g])
    r = max(6, img.shape[0] // 90)
    for dep in deposits:
        rr, cc = draw.circle_perimeter(int(dep.row), int(dep.col), r + 3, shape=img.shape)
        rgb[rr, cc] = [0, 1, 0]
    for les in lesions:
        rr, cc = draw.circle_perimeter(int(les.centroid_index[0]), int(les.centroid_index[1]),
                                       r, shape=img.shape)
        rgb[rr, cc] = [1, 0, 0]
    scale = min(1.0, 1400 / max(img.shape))
    if scale < 1:
        rgb = transform.rescale(rgb, scale, channel_axis=2, anti_aliasing=True)
    io.imsave(path, (rgb * 255).astype(np.uint8), check_contrast=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--films", type=Path, default=HERE / "real_xr_films.json")
    parser.add_argument("--root", type=Path, default=HERE.parent)
    parser.add_argument("--half", choices=("tune", "report", "all"), default="report")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--images", type=Path)
    parser.add_argument("--only", default="", help="comma-separated film names")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="an XrayParams field to change (for tuning on the tune half)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from napari_calcinosis.phantom import FilmScore, make_film_hybrid, score_film
    from napari_calcinosis.types import XrayParams
    from napari_calcinosis.xray import analyze_radiograph as _analyze
    # values as Python literals: 1.3, False, (200.0, 600.0)
    changes = {k: ast.literal_eval(v) for k, v in (p.split("=", 1) for p in args.param)}
    params = XrayParams(**changes)

    def analyze_radiograph(rad):
        return _analyze(rad, params=params)

    films = [f for f in json.loads(args.films.read_text())["films"]
             if (args.half == "all" or f["half"] == args.half)
             and (not args.only or f["name"] in args.only.split(","))]
    total, real_calls = FilmScore(films=0), []
    if args.images:
        args.images.mkdir(parents=True, exist_ok=True)
    print(f"{'film':<28} {'half':<6} {'real calls':>10} {'hyb sens':>9} {'hyb false/film':>15}")
    for film in films:
        rad = load_film(film, args.root)
        try:
            plain = analyze_radiograph(rad).lesions
        except Exception as exc:  # a film the detector refuses is reported, not fatal
            print(f"{film['name']:<28} {film['half']:<6} refused: {exc}")
            continue
        real_calls.append(len(plain))
        score = FilmScore(films=0)
        for seed in range(args.seeds):
            try:
                hybrid = make_film_hybrid(rad, seed=seed)
            except ValueError as exc:
                print(f"    no hybrid: {exc}")
                break
            lesions = analyze_radiograph(hybrid.radiograph).lesions
            score = score + score_film(hybrid, lesions)
            if args.images and seed == 0:
                overlay(args.images / f"{film['name']}-hybrid0.png", hybrid.radiograph,
                        lesions, hybrid.deposits)
        if args.images:
            overlay(args.images / f"{film['name']}-real.png", rad, plain, [])
        total = total + score
        print(f"{film['name']:<28} {film['half']:<6} {len(plain):>10} "
              f"{score.sensitivity:>9.3f} {score.false_calls / max(score.films, 1):>15.2f}")
        for miss in score.misses:
            print(f"    missed #{miss.ident} {miss.zone} {miss.diameter_mm} mm "
                  f"x{miss.cnr} noise at ({miss.row:.0f}, {miss.col:.0f})")
    print(f"{'TOTAL':<28} {args.half:<6} {sum(real_calls):>10} {total.sensitivity:>9.3f} "
          f"{total.false_calls / max(total.films, 1):>15.2f}")
    for low, high in ((5, 10), (10, 15)):
        found, count = total.sensitivity_where(
            lambda d, low=low, high=high: d.diameter_mm >= 2.0 and low <= d.cnr < high)
        tang, tcount = total.sensitivity_where(
            lambda d, low=low, high=high: d.diameter_mm >= 2.0 and low <= d.cnr < high
            and d.zone != "en_face")
        print(f"deposits >= 2 mm at {low}-{high} x noise: {found}/{count} found "
              f"(tangential {tang}/{tcount})")
    print(f"real films: {sum(real_calls)} calls on {len(films)} films "
          f"(max {max(real_calls, default=0)} on one; target <= {TARGET_FALSE_PER_FILM:g}); "
          f"hybrids: sensitivity {total.sensitivity:.3f} over {total.eligible} eligible "
          f"deposits (target >= {TARGET_SENSITIVITY}), "
          f"{total.false_calls / max(total.films, 1):.2f} false calls per film")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main())
