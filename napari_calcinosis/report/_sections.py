"""Report sections drawn from the findings and the clinical input (see :mod:`.content`).

Counts in the findings table come from the lesions the summary counts (soft tissue, from the
summary's source series), so the table's totals equal ``summary.lesion_count`` and
``summary.by_layer`` / ``by_region`` of ``findings.json``.
"""

from __future__ import annotations

import html
from typing import Any

from napari_calcinosis.annotations import lesion_origin
from napari_calcinosis.classify import DISCLAIMER, input_label
from napari_calcinosis.clinical import CANONICAL_UNITS, reading_number
from napari_calcinosis.types import Findings, Lesion
from napari_calcinosis.types.findings import LAYER_COLORS, LAYERS, REGIONS

from ._blocks import Block, Figure, Table

__all__ = ["counted_lesions", "ct_confirmation_sentences", "findings_blocks", "fmt",
           "impression", "indication", "key_image_blocks", "legend_svg", "lesion_list",
           "limitations", "negatives", "recommendations", "region_layer_table",
           "symmetry_blocks", "symmetry_svg", "words"]

_SIDE_SHORT = {"left": "L", "right": "R", "midline": "M"}
_LAB_NAMES = ("calcium", "phosphate", "pth", "creatinine", "egfr", "ck", "aldolase")


def words(token: str) -> str:
    """A vocabulary word for people: ``chest_wall_anterior`` -> ``chest wall anterior``."""
    return str(token).replace("_", " ")


def fmt(value: float | None, digits: int = 1) -> str:
    """A number with ``digits`` decimals, ``—`` when unknown."""
    return "—" if value is None else f"{float(value):.{digits}f}"


def counted_lesions(findings: Findings) -> list[Lesion]:
    """The soft-tissue lesions the summary counts (from its source series only)."""
    kinds = {s.series_instance_uid: s for s in findings.series}
    if findings.summary.source == "CT":
        uids = {u for u, s in kinds.items() if s.kind == "volume"}
    else:
        radiographs = [s for s in findings.series if s.kind == "radiograph"]
        primary = next((s for s in radiographs if s.view == "frontal"),
                       radiographs[0] if radiographs else None)
        uids = {primary.series_instance_uid} if primary else set()
    return [les for les in findings.lesions
            if les.is_soft_tissue and les.series_instance_uid in uids]


def indication(clinical: Any) -> list[Block]:
    """Indication and history from the clinical input (unknowns said as unknown)."""
    if clinical is None:
        return [Block(paragraphs=["No clinical information was given: every lab and history "
                                  "item is unknown, and unknown is never read as normal."])]
    age = f"{clinical.age_years:g}" if clinical.age_years is not None else "not given"
    block = Block(paragraphs=[f"Age {age}; sex {clinical.sex or 'not given'}."])
    for key, value in clinical.history.items():
        shown = words(value) if isinstance(value, str) else ("yes" if value else "no")
        block.items.append(f"{input_label(key).capitalize()}: {shown}")
    missing = clinical.missing_history()
    if missing:
        block.items.append("History not given: " + ", ".join(input_label(k) for k in missing))
    rows = [_lab_row(clinical, name) for name in _LAB_NAMES if clinical.lab(name)]
    if rows:
        block.tables.append(Table(["Lab", "Value", "Reference range", "Status"], rows,
                                  key="labs"))
    if clinical.missing_labs():
        block.paragraphs.append("Labs not given: " + ", ".join(
            input_label(k) for k in clinical.missing_labs()) + ".")
    return [block]


def _lab_row(clinical: Any, name: str) -> list[str]:
    """The value as the reader gave it (with its conversion when the unit differs), the
    range that judged it, and the status."""
    unit = CANONICAL_UNITS[name]
    lab = clinical.lab(name)
    low, high, source = clinical.reference_range(name)
    if low is not None and high is not None:
        limits = f"{reading_number(low)}–{reading_number(high)} {unit}"
    elif high is not None:
        limits = f"up to {reading_number(high)} {unit}"
    elif low is not None:
        limits = f"from {reading_number(low)} {unit}"
    else:
        limits = "none"
    value = f"{reading_number(lab.value)} {lab.unit}"
    if lab.unit != unit:
        value += f" (= {reading_number(clinical.lab_value(name))} {unit})"
    return [input_label(name), value, f"{limits} ({source})", clinical.lab_status(name)]


def findings_blocks(findings: Findings) -> list[Block]:
    """Summary sentence, region x layer table with sides, incidental calcifications."""
    summary = findings.summary
    lesions = counted_lesions(findings)
    source = "CT" if summary.source == "CT" else "the radiograph"
    linked = ct_confirmation_sentences(findings)
    if not lesions:
        text = f"No soft-tissue calcification was detected on {source}."
        return [Block(paragraphs=[text, *linked, _incidental(summary)])]
    size = (f"total volume {summary.total_volume_mm3:.1f} mm³" if summary.source == "CT"
            else f"total area {sum(les.area_mm2 or 0 for les in lesions):.1f} mm²")
    text = (f"{summary.lesion_count} soft-tissue calcifications on {source}, {size}; extent "
            f"{summary.extent}, form {summary.form}.")
    deep = [k for k, v in summary.deep_involvement.items() if v]
    paragraphs = [text]
    if deep:
        paragraphs.append("Deep involvement: " + ", ".join(deep) + ".")
    paragraphs += [*linked, _incidental(summary)]
    return [Block(paragraphs=paragraphs, tables=[region_layer_table(lesions, summary.source)])]


def ct_confirmation_sentences(findings: Findings) -> list[str]:
    """One sentence per radiograph the CT was registered to: how many of its dots CT
    lesions confirm (``ct_confirmation`` of :mod:`..xray_ct_link`).

    A radiograph whose dots are all ``not_assessed`` (link refused, lateral view) or that
    has no dot gets no sentence: its warning says why.
    """
    radiographs = [s for s in findings.series if s.kind == "radiograph"]
    out = []
    for entry in radiographs:
        states = [les.extra["ct_confirmation"] for les in findings.lesions
                  if les.series_instance_uid == entry.series_instance_uid
                  and "ct_confirmation" in les.extra]
        if not states or all(state == "not_assessed" for state in states):
            continue
        same_view = [s for s in radiographs if s.view == entry.view]
        name = f"the {entry.view or 'unlabelled'} radiograph"
        if len(same_view) > 1:
            name += f" {same_view.index(entry) + 1}"
        confirmed = states.count("confirmed")
        parts = [f"{confirmed} {'is' if confirmed == 1 else 'are'} confirmed by CT lesions"]
        for state, text in (("not_seen_on_ct", "not seen on CT"),
                            ("outside_ct_coverage", "outside the CT's coverage")):
            if states.count(state):
                parts.append(f"{states.count(state)} {text}")
        dots = f"{len(states)} dot{'s' if len(states) != 1 else ''}"
        out.append(f"Of {dots} on {name}, {_joined(parts)}.")
    return out


def _joined(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _incidental(summary: Any) -> str:
    inc = summary.incidental
    return ("Incidental calcifications outside the soft tissues (not counted above): costal "
            f"cartilage {inc.get('costal_cartilage', 0)}, vessel wall "
            f"{inc.get('vessel_wall', 0)}, visceral {inc.get('visceral', 0)}.")


def region_layer_table(lesions: list[Lesion], source: str) -> Table:
    """Rows: regions; columns: layers; cells: counts per side (``2 L, 1 R``)."""
    layers = [lay for lay in LAYERS if any(les.layer == lay for les in lesions)]
    regions = [reg for reg in REGIONS if any(les.region == reg for les in lesions)]
    measure = "Volume (mm³)" if source == "CT" else "Area (mm²)"
    rows = []
    for region in regions:
        mine = [les for les in lesions if les.region == region]
        rows.append([words(region), *(_sides([les for les in mine if les.layer == lay])
                                      for lay in layers), _total(mine), _size(mine)])
    rows.append(["Total", *(_total([les for les in lesions if les.layer == lay])
                            for lay in layers), _total(lesions), _size(lesions)])
    return Table(["Region", *map(words, layers), "All layers", measure], rows,
                 caption="Number of soft-tissue calcifications per region and tissue layer, "
                         "by side (L left, R right, M midline).", key="region_layer")


def _sides(lesions: list[Lesion]) -> str:
    counts = [(s, sum(les.side == s for les in lesions)) for s in _SIDE_SHORT]
    return ", ".join(f"{n} {_SIDE_SHORT[s]}" for s, n in counts if n) or "—"


def _total(lesions: list[Lesion]) -> str:
    return f"{len(lesions)} ({_sides(lesions)})" if lesions else "—"


def _size(lesions: list[Lesion]) -> str:
    values = [les.volume_mm3 if les.volume_mm3 is not None else les.area_mm2 for les in lesions]
    return fmt(sum(v for v in values if v is not None))


def negatives(findings: Findings) -> list[Block]:
    """What was looked for and not found."""
    deep = findings.summary.deep_involvement
    texts = {"muscle": "No calcification within skeletal muscle.",
             "vessel": "No calcification following vessels in the skin, fat or muscle "
                       "(no calciphylaxis pattern).",
             "visceral": "No visceral calcification."}
    items = [text for key, text in texts.items() if not deep.get(key, False)]
    if not counted_lesions(findings):
        items.insert(0, "No soft-tissue calcification.")
    items += _set_aside_items(findings)
    return [Block(items=items or ["None: muscle, vessel and visceral involvement are all "
                                  "present (see Findings)."])]


def _set_aside_items(findings: Findings) -> list[str]:
    """One sentence per look-alike reason: dense spots the detector saw and did not count."""
    counts: dict[str, tuple[int, str]] = {}
    for entry in findings.series:
        for item in getattr(entry, "set_aside", None) or []:
            n, text = counts.get(item["reason"], (0, item["explanation"]))
            counts[item["reason"]] = (n + 1, text)
    return [f"{n} dense spot{'s' if n > 1 else ''} set aside, {text}."
            for n, text in counts.values()]


def symmetry_blocks(findings: Findings) -> list[Block]:
    """The symmetry call with its index, a table and the left/right bar figure."""
    sym = findings.summary.symmetry
    text = f"Symmetry: {sym.call}"
    if sym.index is not None:
        text += f" (index {sym.index:.2f}"
        text += (f"; {100 * sym.matched_fraction:.0f}% of deposits have a mirrored partner)"
                 if sym.matched_fraction is not None else ")")
    block = Block(paragraphs=[text + "."])
    regions = [r for r in REGIONS if r in sym.by_region] + \
        [r for r in sym.by_region if r not in REGIONS]
    if regions:
        # left before right, as in every other table of the report and in the panels
        rows = [[words(r), str(sym.by_region[r].get("left_count", 0)),
                 str(sym.by_region[r].get("right_count", 0)),
                 fmt(sym.by_region[r].get("index"), 2)] for r in regions]
        block.tables.append(Table(["Region", "Left", "Right", "Symmetry index"], rows,
                                  key="symmetry"))
        block.figures.append(Figure("Left/right distribution", "Deposits per region on the "
                                    "patient's right and left (midline deposits left out).",
                                    svg=symmetry_svg(sym.by_region, regions)))
    block.paragraphs.append("Asymmetry does not rule out idiopathic disease, and symmetry "
                            "alone proves nothing (nipple shadows are symmetric too).")
    return [block]


def symmetry_svg(by_region: dict[str, dict[str, Any]], regions: list[str]) -> str:
    """Inline SVG: per region, a bar to the left (patient's right) and one to the right."""
    label_w, half_w, row_h, top = 170, 160, 22, 26
    width, height = label_w + 2 * half_w + 20, top + row_h * len(regions) + 8
    center = label_w + half_w
    biggest = max([max(by_region[r].get("left_count", 0), by_region[r].get("right_count", 0))
                   for r in regions] + [1])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" '
             'font-size="11" role="img" aria-label="Left/right deposits per region">',
             f'<text x="{center - 8}" y="14" text-anchor="end">patient\'s right</text>',
             f'<text x="{center + 8}" y="14">patient\'s left</text>',
             f'<line x1="{center}" y1="18" x2="{center}" y2="{height - 4}" stroke="#444"/>']
    for n, region in enumerate(regions):
        y = top + n * row_h
        right = int(by_region[region].get("right_count", 0))
        left = int(by_region[region].get("left_count", 0))
        wr, wl = half_w * right / biggest, half_w * left / biggest
        parts += [
            f'<text x="4" y="{y + 14}">{html.escape(words(region))}</text>',
            f'<rect x="{center - wr:.1f}" y="{y + 3}" width="{wr:.1f}" height="{row_h - 6}" '
            'fill="#1f77b4"/>',
            f'<rect x="{center}" y="{y + 3}" width="{wl:.1f}" height="{row_h - 6}" '
            'fill="#ff7f0e"/>',
            f'<text x="{center - wr - 4:.1f}" y="{y + 14}" text-anchor="end">{right}</text>',
            f'<text x="{center + wl + 4:.1f}" y="{y + 14}">{left}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)


def key_image_blocks(images: list[Figure], findings: Findings) -> list[Block]:
    """The key images with a colour legend of the layers present."""
    if not images:
        return [Block(paragraphs=["No key image: no analysed image series was available to "
                                  "the exporter."])]
    present = [lay for lay in LAYERS if any(les.layer == lay for les in findings.lesions)]
    legend = [Figure("Colour key", "Tissue layer of the marked deposits.",
                     svg=legend_svg(present))] if present else []
    return [Block(figures=[*legend, *images])]


def legend_svg(layers: list[str]) -> str:
    """Inline SVG: a coloured square and the name of each layer, in one row."""
    x, parts = 2, []
    for layer in layers:
        name = html.escape(words(layer))
        parts += [f'<rect x="{x}" y="3" width="12" height="12" fill="{LAYER_COLORS[layer]}" '
                  'stroke="#333" stroke-width="0.6"/>',
                  f'<text x="{x + 17}" y="13">{name}</text>']
        x += 30 + 7 * len(name)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{x}" height="18" '
            f'viewBox="0 0 {x} 18" font-family="DejaVu Sans, Arial, sans-serif" '
            f'font-size="11" role="img" aria-label="Colour key">{"".join(parts)}</svg>')


def impression(findings: Findings, differential: Any = None) -> list[Block]:
    """The ranked differential with its reasons (supporting, against, missing)."""
    if not findings.differential:
        return [Block(paragraphs=["No soft-tissue calcification: no differential."])]
    titles = {c.diagnosis: c.title for c in (differential or [])}
    blocks = []
    for rank, item in enumerate(findings.differential, start=1):
        title = titles.get(item["diagnosis"]) or words(item["diagnosis"]).capitalize()
        form = f" ({item['form']})" if item.get("form") else ""
        explanation = [line for line in str(item.get("explanation", "")).split("\n")
                       if line.strip() and line.strip() != DISCLAIMER]
        blocks.append(Block(
            heading=f"{rank}. {title}{form}: score {float(item['score']):.2f}",
            labelled=[("Supporting", list(item.get("supporting", [])) or ["none"]),
                      ("Against", list(item.get("against", [])) or ["none"]),
                      ("Missing", [input_label(m) for m in item.get("missing", [])]
                       or ["none"])],
            paragraphs=explanation))
    return blocks


def limitations(findings: Findings, result: Any) -> list[Block]:
    """Partial volume, kernel, projection, what was not assessed, and every warning."""
    params = findings.parameters or {}
    limit = float(params.get("thick_slice_mm", 3.0))
    items = []
    images = [s.image for s in result.series] if result is not None else []
    for entry, image in zip(findings.series, images + [None] * len(findings.series)):
        if entry.kind == "volume":
            items += _ct_limits(entry, image, limit)
    if any(e.kind == "radiograph" for e in findings.series):
        items.append("Radiographs are projections: deposits over the lungs, ribs or spine can "
                     "be hidden, the tissue layer can be told only at the body outline, and "
                     "sizes are magnified at the detector.")
    items.append("Bone is excluded from the search; bone integrity (erosion, fracture) was not "
                 "assessed.")
    items.append("Automatic detection and rules: every finding needs a reader's review.")
    items += [str(w) for w in findings.warnings]
    return [Block(items=items)]


def _ct_limits(entry: Any, image: Any, limit_mm: float) -> list[str]:
    thickness = entry.slice_thickness_mm or (entry.spacing_mm or [None])[0]
    out = []
    if thickness:
        more = ("thicker than" if thickness > limit_mm else "within")
        out.append(f"CT slices of {thickness:g} mm ({more} the {limit_mm:g} mm advised): "
                   f"deposits smaller than about {thickness:g} mm lose peak HU to partial "
                   "volume and may be missed or under-measured.")
    kernel = getattr(getattr(image, "info", None), "kernel", "") or ""
    out.append(f"Reconstruction kernel {kernel or 'not stated'}: a smooth kernel shows about "
               "half of the calcified nodules under 4 mm that a sharp kernel shows.")
    return out


def recommendations(findings: Findings, clinical: Any) -> list[Block]:
    """Missing labs, specialist review, biopsy when clinically indicated."""
    if not counted_lesions(findings):
        return [Block(items=["No soft-tissue calcification: no work-up for calcinosis cutis "
                             "is suggested by the imaging; correlate clinically."])]
    scores = {d["diagnosis"]: float(d["score"]) for d in findings.differential}
    missing = {m for d in findings.differential for m in d.get("missing", [])
               if m in _LAB_NAMES}
    items = []
    if missing:
        items.append("Obtain the missing labs: " + ", ".join(
            input_label(m) for m in _LAB_NAMES if m in missing) + ".")
    history = clinical.history if clinical is not None else {}
    ctd = history.get("connective_tissue_disease") not in (None, "none")
    if ctd or max(scores.get("dystrophic_calcinosis_cutis", 0),
                  scores.get("idiopathic_calcinosis_cutis", 0)) >= 0.2:
        items.append("Rheumatology review (connective-tissue disease: systemic sclerosis, "
                     "dermatomyositis, lupus).")
    renal = any(history.get(k) is True for k in ("chronic_kidney_disease", "dialysis"))
    if renal or max(scores.get("metastatic_calcinosis_cutis", 0), scores.get("calciphylaxis", 0),
                    scores.get("tumoral_calcinosis", 0)) >= 0.2:
        items.append("Nephrology review (calcium-phosphate metabolism, kidney function, PTH).")
    if findings.summary.deep_involvement.get("muscle"):
        items.append("Correlate with muscle enzymes (CK, aldolase) and examination for "
                     "myositis.")
    items.append("Biopsy of a representative lesion when clinically indicated (uncertain "
                 "diagnosis, ulceration, suspected calciphylaxis or tumour).")
    return [Block(items=items)]


def lesion_list(findings: Findings) -> list[Block]:
    """Every listed lesion with its measurements (incidental ones included, marked); a
    "CT confirmation" column when the CT was linked to a radiograph (empty on CT rows)."""
    if not findings.lesions:
        return [Block(paragraphs=["No lesion listed."])]
    modality = {s.series_instance_uid: s.modality for s in findings.series}
    lesions = sorted(findings.lesions, key=lambda les: les.id)
    linked = any("ct_confirmation" in les.extra for les in lesions)
    rows = [[str(les.id), modality.get(les.series_instance_uid, "?"), lesion_origin(les),
             words(les.region), words(les.layer) + ("" if les.is_soft_tissue else " *"),
             les.side, les.morphology,
             fmt(les.volume_mm3 if les.volume_mm3 is not None else les.area_mm2),
             fmt(les.max_diameter_mm), fmt(les.peak_hu, 0),
             *([words(les.extra.get("ct_confirmation", ""))] if linked else [])]
            for les in lesions]
    header = ["ID", "Series", "Source", "Region", "Layer", "Side", "Morphology",
              "Volume mm³ / area mm²", "Max diameter mm", "Peak HU",
              *(["CT confirmation"] if linked else [])]
    return [Block(tables=[Table(header, rows, caption="* outside the soft tissues (incidental, "
                                "not counted).", key="lesions")])]
