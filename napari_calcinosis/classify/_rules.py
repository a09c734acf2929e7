"""Rules for the types of calcinosis cutis (docs/clinical.md, "The differential"; weights are
design choices).

Idiopathic, dystrophic (connective-tissue disease), dystrophic (local), metastatic, iatrogenic
and calciphylaxis. The two dystrophic rules share the contract's diagnosis
``dystrophic_calcinosis_cutis``; they differ in ``subtype`` (``connective_tissue`` / ``local``)
and only the higher-scoring one is listed (see ``classify.py``). Look-alikes are in
``._lookalikes.py``. Weights are log-odds steps; see ``._base`` for the score.
"""

from __future__ import annotations

from napari_calcinosis.clinical import LAB_NAMES

from ._base import CTD_NAMES, HISTORY_LABELS, Facts, RuleResult, Tally, register

SEED_CASE = ("Seed case: idiopathic calcinosis cutis universalis found on a chest radiograph "
             "and body CT (docs/clinical.md, Sources)")
LETTER = ("Raj N, Phatak SV, Nagendra V, Singh V. Calcinosis circumscripta. J Datta Meghe Inst "
          "Med Sci Univ 2022;17:1026 (docs/clinical.md, Sources)")
HWANG = ("Hwang ZA, Suh KJ, Chen D, Chan WP, Wu JS. Imaging features of soft-tissue "
         "calcifications and related diseases: a systematic approach. Korean J Radiol "
         "2018;19:1147-60")
TABLE = "docs/clinical.md, Differential table and default lab ranges"

_SKIN_FAT = ("skin", "subcutaneous")
_CTD_SPECIFIC = ("systemic_sclerosis", "dermatomyositis")
_EXCLUSION_HISTORY = ("chronic_kidney_disease", "dialysis", "injections", "trauma_or_surgery",
                      "iv_calcium", "malignancy", "vitamin_d_excess", "sarcoidosis")


def skin_fat_imaging(f: Facts, t: Tally, *, weight_for: float, weight_against: float) -> None:
    """Deposits confined to skin and subcutis (calcinosis cutis proper) or deeper."""
    share, unknown = f.layer_share(*_SKIN_FAT), f.layer_share("unknown")
    breakdown = f.layer_breakdown(*_SKIN_FAT) or "none"
    if share >= 0.9:
        t.support("imaging", f"{share:.0%} of {f.n} deposits in skin or subcutis ({breakdown})"
                  f"{f.layer_note()}", weight_for)
    elif unknown >= 0.5:
        t.unseen(f"tissue layer (depth) of {f.layer_counts['unknown']} deposits", factor=0.7)
    elif share < 0.5:
        deeper = f.layer_breakdown("fascia", "muscle", "tendon", "periarticular")
        t.oppose("imaging", f"most deposits lie deeper than skin and subcutis ({deeper})"
                 f"{f.layer_note()}", weight_against)


@register(
    "idiopathic", diagnosis="idiopathic_calcinosis_cutis", title="Idiopathic calcinosis cutis",
    description="Calcium deposits in skin and subcutis with normal calcium and phosphate "
                "metabolism and no local or systemic cause; a diagnosis of exclusion (biopsy "
                "confirms). Universalis when generalized.",
    references=(SEED_CASE, LETTER, TABLE), calcinosis_cutis=True,
    inputs=(*LAB_NAMES, "connective_tissue_disease", *_EXCLUSION_HISTORY),
    would_change="Any abnormal calcium, phosphate, PTH, kidney function or muscle enzyme; a "
                 "connective-tissue disease, kidney disease, injections, trauma or IV calcium; "
                 "deposits in muscle or along vessels.")
def idiopathic(f: Facts) -> RuleResult:
    """All labs normal (a gate), skin/subcutis only, no cause in the history."""
    t = Tally(0.3)
    skin_fat_imaging(f, t, weight_for=1.0, weight_against=2.0)
    for key, text in (("muscle", "deposits in muscle"), ("vessel", "calcification along "
                      "vessels within the soft tissue"), ("visceral", "visceral deposits")):
        if f.deep(key):
            t.oppose("imaging", text, 1.5 if key != "visceral" else 1.0)
    _idiopathic_morphology(f, t)
    _idiopathic_labs(f, t)
    _idiopathic_history(f, t)
    return t.result()


def _idiopathic_morphology(f: Facts, t: Tally) -> None:
    if f.small_share() >= 0.7:
        t.support("imaging", f"small punctate or nodular deposits ({f.small_share():.0%})", 0.5)
    if f.morphology_counts["mass"]:
        t.oppose("imaging", f"{f.morphology_counts['mass']} mass-like deposit(s)", 0.7)
    if f.morphology_share("sheet", "linear") >= 0.3:
        t.oppose("imaging", "bands or sheets (the pattern of dystrophic disease)", 0.5)
    if max(f.diameters_mm(), default=0.0) >= 20.0:
        t.oppose("imaging", f"a large deposit ({max(f.diameters_mm()):.0f} mm)", 0.5)
    if f.symmetry_call == "symmetric":
        t.support("imaging", f"symmetric distribution{f.note('symmetry_call')}", 0.4)
    if f.extent == "generalized":
        t.support("imaging", f"generalized ({len(f.regions)} regions){f.note('extent')}", 0.3)


def _idiopathic_labs(f: Facts, t: Tally) -> None:
    normal, abnormal = [], []
    for name in LAB_NAMES:
        status = t.lab(f, name, factor=0.85)
        if status in ("low", "high"):
            abnormal.append(f.lab_phrase(name))
        elif status == "normal":
            normal.append(f.lab_phrase(name))
    if abnormal:
        t.cap(0.1, "labs", "abnormal lab(s): " + "; ".join(abnormal))
    if normal and not abnormal:
        whole = "all labs normal: " if len(normal) == len(LAB_NAMES) else "normal so far: "
        t.support("labs", whole + "; ".join(normal), 0.15 * len(normal))
    unknown_cap = {1: 0.3, 2: 0.15}
    n_unknown = sum(name in t.missing for name in ("calcium", "phosphate"))
    if n_unknown:
        # Without calcium and phosphate, metastatic calcinosis is not excluded.
        t.cap(unknown_cap[n_unknown])


def _idiopathic_history(f: Facts, t: Tally) -> None:
    ctd = t.history(f, "connective_tissue_disease", factor=0.85)
    if ctd is None:
        t.cap(0.5)
    elif ctd == "none":
        t.support("history", "no connective-tissue disease", 0.3)
    else:
        t.cap(0.1, "history", f"{CTD_NAMES[ctd]}: dystrophic calcinosis explains the deposits")
    negatives = []
    for key in _EXCLUSION_HISTORY:
        value = t.history(f, key, factor=0.9 if key in _EXCLUSION_HISTORY[:5] else 0.95)
        if value is True and key in _EXCLUSION_HISTORY[:5]:
            # A recorded cause: idiopathic means that no cause is found.
            t.oppose("history", f"{HISTORY_LABELS[key]}: a known cause of calcification", 1.5)
            t.cap(0.4 if key in _EXCLUSION_HISTORY[:2] else 0.6)
        elif value is True:
            t.oppose("history", f"{HISTORY_LABELS[key]}: a known cause of calcification", 0.7)
        elif value is False:
            negatives.append(HISTORY_LABELS[key])
    if negatives:
        t.support("history", "no " + ", ".join(negatives), 0.1 * len(negatives))


@register(
    "dystrophic_connective_tissue", diagnosis="dystrophic_calcinosis_cutis",
    title="Dystrophic calcinosis cutis (connective-tissue disease)",
    description="Calcification of damaged tissue with normal calcium and phosphate, in "
                "systemic sclerosis (up to 40%), dermatomyositis (juvenile ~40%, adult ~20%) "
                "or lupus; SSc: fingertip and periarticular clusters; DM: sheets along fascia.",
    references=(SEED_CASE, LETTER, HWANG, TABLE), calcinosis_cutis=True,
    subtype="connective_tissue",
    inputs=("connective_tissue_disease", "ck", "aldolase", "calcium", "phosphate",
            "pain_or_ulceration"),
    would_change="A connective-tissue disease ruled out (or found); high calcium or phosphate "
                 "(metastatic); muscle enzymes; the pattern (fingertip/periarticular clusters "
                 "or fascial sheets).")
def dystrophic_connective_tissue(f: Facts) -> RuleResult:
    """Connective-tissue disease with its pattern and muscle enzymes."""
    # The most common type of calcinosis cutis (seed case), hence the highest prior.
    t = Tally(0.3)
    ctd = t.history(f, "connective_tissue_disease", factor=0.85)
    if ctd in _CTD_SPECIFIC:
        t.support("history", f"{CTD_NAMES[ctd]} (calcinosis is common in it)", 2.5)
    elif ctd is not None and ctd != "none":
        t.support("history", CTD_NAMES[ctd], 2.0)
    elif ctd == "none":
        t.cap(0.15, "history", "no connective-tissue disease")
    _ctd_pattern(f, t, ctd)
    _ctd_labs(f, t)
    if t.history(f, "pain_or_ulceration") is True:
        t.support("history", "pain or ulceration (dystrophic deposits are often painful)", 0.3)
    return t.result()


def _ctd_pattern(f: Facts, t: Tally, ctd: str | None) -> None:
    ssc = f.share(lambda les: les.region in ("hand", "upper_limb")
                  or les.layer == "periarticular")
    dm = f.share(lambda les: les.layer in ("fascia", "muscle")
                 or les.morphology in ("sheet", "linear"))
    if ssc >= 0.5:
        bonus = 0.6 if ctd == "systemic_sclerosis" else 0.0
        t.support("imaging", f"fingertip or periarticular cluster ({ssc:.0%} in hand, arm or "
                  f"beside joints): the systemic sclerosis pattern{f.layer_note()}", 0.8 + bonus)
    if dm >= 0.4:
        bonus = 0.6 if ctd == "dermatomyositis" else 0.0
        t.support("imaging", f"sheets or bands along fascial planes or in muscle ({dm:.0%}): "
                  f"the dermatomyositis pattern{f.layer_note()}", 0.8 + bonus)
    if ssc < 0.5 and dm < 0.4 and f.extent == "generalized" and ctd is None:
        t.support("imaging", "generalized calcinosis, where systemic sclerosis and "
                  f"dermatomyositis should be suspected{f.note('extent')}", 0.3)


def _ctd_labs(f: Facts, t: Tally) -> None:
    enzymes = {name: t.lab(f, name, factor=0.95) for name in ("ck", "aldolase")}
    high = [f.lab_phrase(n) for n, s in enzymes.items() if s == "high"]
    if high:
        t.support("labs", "muscle enzymes high: " + "; ".join(high), 1.0)
    for name in ("calcium", "phosphate"):
        if t.lab(f, name) == "high":
            t.oppose("labs", f"{f.lab_phrase(name)}: favours metastatic calcinosis", 1.0)


@register(
    "dystrophic_local", diagnosis="dystrophic_calcinosis_cutis",
    title="Dystrophic calcinosis cutis (local: injection granuloma, trauma, fat necrosis)",
    description="Calcification of locally damaged skin or fat: injection granulomas (often "
                "gluteal), scars after trauma or surgery, fat necrosis.",
    references=(HWANG, TABLE), calcinosis_cutis=True, subtype="local",
    inputs=("injections", "trauma_or_surgery", "calcium", "phosphate",
            "connective_tissue_disease"),
    would_change="A history of injections, trauma or surgery at the site (or its absence); a "
                 "generalized symmetric pattern; fat necrosis on histology.")
def dystrophic_local(f: Facts) -> RuleResult:
    """Localized deposits at sites of injection or trauma."""
    t = Tally(0.15)
    injections = t.history(f, "injections")
    trauma = t.history(f, "trauma_or_surgery")
    if injections:
        t.support("history", "injections", 2.0)
    if trauma:
        t.support("history", "trauma or surgery", 1.5)
    if injections is False and trauma is False:
        t.cap(0.1, "history", "no injections, trauma or surgery")
    elif injections is None and trauma is None:
        t.cap(0.4)
    _local_imaging(f, t, bool(injections))
    for name in ("calcium", "phosphate"):
        if t.lab(f, name) == "high":
            t.oppose("labs", f"{f.lab_phrase(name)}: a systemic cause", 0.5)
    ctd = t.history(f, "connective_tissue_disease")
    if ctd not in (None, "none"):
        t.oppose("history", f"{CTD_NAMES[ctd]}: a systemic dystrophic cause", 0.5)
    return t.result()


def _local_imaging(f: Facts, t: Tally, injections: bool) -> None:
    weights = {"localized": 0.8, "regional": 0.3}
    if f.extent in weights:
        t.support("imaging", f"{f.extent} deposits{f.note('extent')}", weights[f.extent])
    elif f.extent == "generalized":
        symmetric = f.symmetry_call == "symmetric"
        t.oppose("imaging", f"generalized{' symmetric' if symmetric else ''} pattern"
                 f"{f.note('extent')}{f.note('symmetry_call')}", 1.5 if symmetric else 1.0)
    gluteal = f.share(lambda les: les.region == "gluteal" and les.layer in _SKIN_FAT)
    if gluteal >= 0.5:
        t.support("imaging", f"gluteal subcutaneous nodules ({gluteal:.0%}), the usual "
                  "injection site", 1.2 if injections else 0.8)
    if f.layer_share(*_SKIN_FAT) >= 0.5:
        t.support("imaging", f"in skin or subcutaneous fat{f.layer_note()}", 0.5)
    elif f.layer_share("unknown") < 0.5:
        t.oppose("imaging", f"mostly deeper than the subcutis{f.layer_note()}", 1.0)


@register(
    "metastatic", diagnosis="metastatic_calcinosis_cutis", title="Metastatic calcinosis cutis",
    description="Precipitation of calcium phosphate in normal tissue when calcium, phosphate "
                "or their product is high: kidney failure, hyperparathyroidism, vitamin D "
                "excess, milk-alkali, myeloma, sarcoidosis.",
    references=(LETTER, HWANG, TABLE), calcinosis_cutis=True,
    inputs=("calcium", "phosphate", "pth", "egfr", "creatinine", "dialysis",
            "chronic_kidney_disease", "vitamin_d_excess", "sarcoidosis", "malignancy"),
    would_change="Calcium and phosphate (and their product) measured normal closes the gate; "
                 "PTH, kidney function, vitamin D, milk-alkali intake, myeloma.")
def metastatic(f: Facts) -> RuleResult:
    """Gate: high calcium or phosphate, or Ca x P > 70 (> 55 weaker)."""
    t = Tally(0.25)
    negatives: list[str] = []
    _metastatic_gate(f, t)
    if t.lab(f, "pth") == "high":
        t.support("labs", f.lab_phrase("pth"), 0.7)
    egfr, creatinine = t.lab(f, "egfr"), t.lab(f, "creatinine")
    if egfr == "low":
        t.support("labs", f.lab_phrase("egfr") + ": kidney failure", 0.7)
    elif creatinine == "high":
        t.support("labs", f.lab_phrase("creatinine"), 0.5)
    for key, text, weight in (
            ("dialysis", "on dialysis", 1.0), ("chronic_kidney_disease", "chronic kidney "
             "disease", 0.5), ("vitamin_d_excess", "vitamin D excess", 1.0),
            ("sarcoidosis", "sarcoidosis", 0.7),
            ("malignancy", "malignancy (myeloma or bone metastases raise calcium)", 0.4)):
        value = t.history(f, key)
        if value is True:
            t.support("history", text, weight)
        elif value is False:
            negatives.append(HISTORY_LABELS[key])
    if negatives:
        t.oppose("history", "no " + ", ".join(negatives) + " recorded", 0.04 * len(negatives))
    _metastatic_pattern(f, t)
    return t.result()


def _metastatic_gate(f: Facts, t: Tally) -> None:
    status = {name: t.lab(f, name) for name in ("calcium", "phosphate")}
    product = f.ca_x_p()
    gate = False
    for name, value in status.items():
        if value == "high":
            t.support("labs", f.lab_phrase(name), 1.5)
            gate = True
    if product is not None and product > 55.0:
        strong = product > 70.0
        t.support("labs", f"Ca×P product {product:.0f} mg²/dL² above "
                  f"{70 if strong else 55}{'' if strong else ' (weaker)'}", 1.5 if strong else 0.7)
        gate = True
    if gate:
        return
    if product is not None:
        t.cap(0.1, "labs", f"calcium and phosphate not high ({f.lab_phrase('calcium')}; "
              f"{f.lab_phrase('phosphate')}; Ca×P {product:.0f} mg²/dL² ≤ 55)")
    else:
        t.cap(0.5)  # the gate cannot be judged: neither open nor closed


def _metastatic_pattern(f: Facts, t: Tally) -> None:
    periarticular = f.layer_share("periarticular")
    if periarticular >= 0.3:
        t.support("imaging", f"periarticular deposits ({periarticular:.0%}){f.layer_note()}", 0.6)
    if f.incidental("vessel_wall"):
        t.support("imaging", f"vessel-wall calcification ({f.incidental('vessel_wall')})", 0.3)
    if net_like_share(f) >= 0.3:
        t.oppose("imaging", "a net-like small-vessel pattern in skin and fat (calciphylaxis)",
                 1.0)
    if f.deep("visceral") or f.incidental("visceral"):
        t.support("imaging", "visceral calcification", 0.6)


@register(
    "iatrogenic", diagnosis="iatrogenic_calcinosis_cutis", title="Iatrogenic calcinosis cutis",
    description="Deposits at the site of IV calcium (extravasation) or calcium-containing "
                "pastes or electrodes, appearing 1-3 weeks after the exposure.",
    references=(LETTER, TABLE), calcinosis_cutis=True, inputs=("iv_calcium",),
    would_change="Whether calcium was given IV or applied at the site, and when (deposits "
                 "appear 1-3 weeks later); images from before the exposure.")
def iatrogenic(f: Facts) -> RuleResult:
    """IV calcium or calcium paste at the site."""
    t = Tally(0.1)
    exposed = t.history(f, "iv_calcium")
    if exposed:
        t.support("history", "IV calcium or calcium-containing paste", 3.0)
    elif exposed is False:
        t.cap(0.05, "history", "no IV calcium or calcium paste exposure")
    else:
        t.cap(0.3)
    weights = {"localized": 0.7, "regional": 0.2}
    if f.extent in weights:
        t.support("imaging", f"{f.extent} deposits, as at an exposure site{f.note('extent')}",
                  weights[f.extent])
    elif f.extent == "generalized":
        t.oppose("imaging", f"generalized deposits{f.note('extent')}", 0.8)
    if f.region_share("upper_limb", "hand", "foot", "lower_limb") >= 0.5:
        t.support("imaging", "in a limb, where IV lines and extravasation occur", 0.3)
    if f.layer_share(*_SKIN_FAT) >= 0.5:
        t.support("imaging", f"in skin or subcutaneous fat{f.layer_note()}", 0.3)
    return t.result()


@register(
    "calciphylaxis", diagnosis="calciphylaxis", title="Calciphylaxis",
    description="Calcification of small vessels of the dermis and subcutis with thrombosis "
                "and necrosis, mostly in end-stage kidney disease or dialysis (non-uremic "
                "cases exist): painful necrotic plaques, livedo.",
    references=(SEED_CASE, HWANG, TABLE), calcinosis_cutis=True,
    inputs=("dialysis", "chronic_kidney_disease", "pain_or_ulceration", "egfr", "calcium",
            "phosphate", "pth"),
    would_change="Kidney disease or dialysis (or its absence); painful necrotic plaques or "
                 "livedo; a net-like small-vessel pattern in the dermis and subcutis; skin "
                 "biopsy.")
def calciphylaxis(f: Facts) -> RuleResult:
    """Kidney failure, pain or ulcers, net-like small-vessel deposits in skin and fat."""
    t = Tally(0.1)
    dialysis = t.history(f, "dialysis", factor=0.85)
    ckd = t.history(f, "chronic_kidney_disease", factor=0.85)
    if dialysis:
        t.support("history", "on dialysis", 2.0)
    elif ckd:
        t.support("history", "chronic kidney disease", 1.5)
    if t.lab(f, "egfr") == "low" and not dialysis:
        t.support("labs", f.lab_phrase("egfr"), 0.5)
    if dialysis is False and ckd is False:
        t.cap(0.15, "history", "no kidney disease (non-uremic calciphylaxis exists, so it "
              "is not excluded)")
    pain = t.history(f, "pain_or_ulceration")
    if pain:
        t.support("history", "pain or ulceration", 1.5)
    elif pain is False:
        t.oppose("history", "no pain or ulceration", 1.0)
    _calciphylaxis_pattern(f, t)
    product = f.ca_x_p()
    if product is not None and product > 55.0:
        t.support("labs", f"Ca×P product {product:.0f} mg²/dL²", 0.3)
    for name in ("calcium", "phosphate"):
        t.lab(f, name)
    if t.lab(f, "pth") == "high":
        t.support("labs", f.lab_phrase("pth"), 0.3)
    return t.result()


def net_like_share(f: Facts) -> float:
    """Share of net-like (reticular) or vessel-following deposits in skin and fat."""
    return f.share(lambda les: les.layer in _SKIN_FAT and (
        les.morphology == "reticular" or bool(les.extra.get("follows_vessel"))))


def _calciphylaxis_pattern(f: Facts, t: Tally) -> None:
    net = net_like_share(f)
    if net >= 0.3:
        t.support("imaging", f"net-like small-vessel calcification in skin and fat ({net:.0%})"
                  f"{f.layer_note()}", 2.5)
    elif net > 0:
        t.support("imaging", f"some net-like small-vessel deposits ({net:.0%})", 1.0)
    else:
        t.oppose("imaging", f"no net-like small-vessel pattern in skin or fat{f.layer_note()}",
                 1.5)
    if f.layer_share(*_SKIN_FAT) >= 0.5:
        t.support("imaging", "in dermis and subcutis", 0.3)
