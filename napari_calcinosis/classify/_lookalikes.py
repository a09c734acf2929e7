"""Rules for the look-alikes of calcinosis cutis (docs/clinical.md, "The differential").

Tumoral calcinosis, myositis ossificans, vascular calcification, phleboliths, calcific
tendinitis, synovial chondromatosis, cysticercosis, mineralized soft-tissue tumour and
heterotopic ossification. They carry no form (``null`` in ``findings.json``).

Several defining features cannot be seen in the findings (they describe calcifications, not
their internal structure or the tissue around them): fluid-calcium levels, zonal ossification,
a lucent centre, ring-and-arc matrix, a soft-tissue mass, growth, organised bone. Such a
feature is never invented: the rule lists it as missing (``imaging: ...``) and, where it is
the defining one, caps the score.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ._base import Facts, RuleResult, Tally, register
from ._rules import HWANG, TABLE

#: Regions around the big joints where tumoral calcinosis occurs (hip > elbow > shoulder).
JOINT_REGIONS = ("pelvis", "gluteal", "lower_limb", "upper_limb", "shoulder_girdle")
_ROUND = ("punctate", "nodular")


def _kidney(f: Facts, t: Tally) -> bool:
    """True when dialysis or chronic kidney disease is recorded (both read, unknowns listed)."""
    dialysis = t.history(f, "dialysis")
    ckd = t.history(f, "chronic_kidney_disease")
    return bool(dialysis or ckd)


@register(
    "tumoral_calcinosis", diagnosis="tumoral_calcinosis", title="Tumoral calcinosis",
    description="Mass-like, lobulated periarticular calcification (hip > elbow > shoulder), "
                "often with fluid-calcium levels; familial (young, high phosphate) or "
                "secondary to chronic kidney disease.",
    references=(HWANG, TABLE), inputs=("dialysis", "chronic_kidney_disease", "age", "phosphate",
                                       "trauma_or_surgery"),
    would_change="Fluid-calcium levels (CT or MRI), kidney disease, phosphate, age and family "
                 "history; bands, sheets or many small symmetric dots argue against it.")
def tumoral_calcinosis(f: Facts) -> RuleResult:
    """Lobulated periarticular masses."""
    t = Tally(0.1)
    masses = [les for les in f.lesions if les.morphology == "mass"]
    beside_joint = [les for les in masses if les.layer == "periarticular"]
    if beside_joint:
        t.support("imaging", f"{len(beside_joint)} mass-like lobulated deposit(s) beside a "
                  f"joint{f.layer_note()}", 3.0)
    elif masses:
        t.support("imaging", f"{len(masses)} mass-like deposit(s), not beside a joint", 1.0)
    else:
        t.cap(0.2, "imaging", "no mass-like deposit")
    if any(les.region in JOINT_REGIONS for les in masses):
        t.support("imaging", "near the hip, elbow or shoulder", 0.3)
    if masses and f.n <= 5:
        t.support("imaging", f"few deposits ({f.n})", 0.3)
    if max(f.diameters_mm(masses), default=0.0) >= 30.0:
        t.support("imaging", f"large ({max(f.diameters_mm(masses)):.0f} mm)", 0.5)
    if f.morphology_share("linear", "sheet") >= 0.3:
        t.oppose("imaging", "bands or sheets", 1.0)
    if f.morphology_share("punctate") >= 0.5 and f.symmetry_call == "symmetric":
        t.oppose("imaging", f"symmetric small dots{f.note('symmetry_call')}", 1.0)
    t.unseen("fluid-calcium levels")
    _tumoral_clinical(f, t)
    return t.result()


def _tumoral_clinical(f: Facts, t: Tally) -> None:
    if _kidney(f, t):
        t.support("history", "kidney disease (secondary tumoral calcinosis)", 0.5)
    age = t.history(f, "age")
    if age is not None and age < 30:
        t.support("history", f"young ({age:g} years; familial form)", 0.5)
    if t.lab(f, "phosphate") == "high":
        t.support("labs", f.lab_phrase("phosphate") + " (hyperphosphataemic familial form)",
                  0.5)
    if t.history(f, "trauma_or_surgery"):
        t.oppose("history", "trauma or surgery: periarticular mineral after it is more often "
                 "heterotopic ossification", 1.5)


@register(
    "myositis_ossificans", diagnosis="myositis_ossificans", title="Myositis ossificans",
    description="Heterotopic bone in a muscle after trauma, maturing from the rim inwards "
                "(zonal ossification); usually a single lesion.",
    references=(HWANG, TABLE), inputs=("trauma_or_surgery",),
    would_change="Zonal (rim) ossification on CT, a history of trauma, follow-up showing "
                 "maturation; many symmetric subcutaneous deposits argue against it.")
def myositis_ossificans(f: Facts) -> RuleResult:
    """A single intramuscular lesion after trauma."""
    t = Tally(0.1)
    muscle = [les for les in f.lesions if les.layer == "muscle"]
    if not muscle:
        t.cap(0.1, "imaging", f"no deposit in muscle{f.layer_note()}")
    elif f.n <= 2:
        t.support("imaging", f"a single intramuscular lesion{f.layer_note()}", 2.5)
    elif len(muscle) >= 0.5 * f.n:
        t.support("imaging", f"{len(muscle)} muscle deposits (myositis ossificans is usually "
                  "single)", 0.3)
    if max(f.diameters_mm(muscle), default=0.0) >= 20.0:
        t.support("imaging", f"{max(f.diameters_mm(muscle)):.0f} mm across", 0.3)
    if (f.n >= 10 and f.layer_share("skin", "subcutaneous") >= 0.5
            and f.symmetry_call == "symmetric"):
        t.oppose("imaging", f"many symmetric subcutaneous deposits{f.note('symmetry_call')}",
                 1.5)
    trauma = t.history(f, "trauma_or_surgery")
    if trauma:
        t.support("history", "trauma or surgery", 1.5)
    elif trauma is False:
        t.oppose("history", "no trauma", 0.5)
    t.unseen("zonal (rim) ossification")
    return t.result()


@register(
    "vascular_calcification", diagnosis="vascular_calcification",
    title="Vascular calcification",
    description="Tram-track or tubular branching calcification of artery walls (medial "
                "calcification), typical of chronic kidney disease and diabetes.",
    references=(HWANG, TABLE), inputs=("chronic_kidney_disease", "dialysis", "egfr",
                                       "pain_or_ulceration"),
    would_change="Whether the deposits follow a vessel (tram-tracks); diabetes (not recorded "
                 "in the clinical input); kidney function.")
def vascular_calcification(f: Facts) -> RuleResult:
    """Tram-tracks along vessels, with kidney disease or diabetes."""
    t = Tally(0.1)
    along = [les for les in f.lesions if les.extra.get("follows_vessel")]
    tram = sum(les.morphology == "linear" for les in along)
    share = len(along) / f.n if f.n else 0.0
    if share >= 0.5:
        t.support("imaging", f"{len(along)} of {f.n} deposits follow vessels ({tram} tubular "
                  "or tram-track)", 2.5)
    elif along:
        t.support("imaging", f"{len(along)} of {f.n} deposits follow vessels", 1.0)
    else:
        t.cap(0.2, "imaging", "the deposits do not follow a vessel")
    off_vessel = f.count(lambda les: les.layer in ("skin", "subcutaneous")
                         and not les.extra.get("follows_vessel"))
    if off_vessel >= 0.5 * f.n:
        t.oppose("imaging", f"{off_vessel} deposits in skin or fat away from vessels", 1.0)
    net = f.share(lambda les: les.morphology == "reticular"
                  and les.layer in ("skin", "subcutaneous"))
    if net >= 0.3:
        t.oppose("imaging", "a net-like small-vessel pattern in the skin (calciphylaxis)", 0.8)
    if f.incidental("vessel_wall"):
        t.support("imaging", f"vessel-wall calcification elsewhere "
                  f"({f.incidental('vessel_wall')})", 0.5)
    if _kidney(f, t):
        t.support("history", "chronic kidney disease or dialysis", 0.8)
    if t.lab(f, "egfr") == "low":
        t.support("labs", f.lab_phrase("egfr"), 0.3)
    if t.history(f, "pain_or_ulceration"):
        t.oppose("history", "pain or ulceration (favours calciphylaxis)", 0.5)
    return t.result()


@register(
    "phleboliths", diagnosis="phleboliths", title="Phleboliths",
    description="Calcified venous thrombi: round, often with a lucent centre, in the pelvic "
                "veins or in a venous malformation.",
    references=(HWANG, TABLE), inputs=(),
    would_change="A lucent centre (phlebolith) on thin-slice CT; a venous malformation on "
                 "ultrasound or MRI; linear or sheet-like deposits argue against it.")
def phleboliths(f: Facts) -> RuleResult:
    """Round deposits in the pelvis or along veins."""
    t = Tally(0.05)
    pelvic = f.share(lambda les: les.region == "pelvis" and les.morphology in _ROUND)
    venous = f.share(lambda les: bool(les.extra.get("follows_vessel"))
                     and les.morphology in _ROUND)
    if pelvic >= 0.5:
        t.support("imaging", f"round deposits in the pelvis ({pelvic:.0%})", 4.0)
    elif venous >= 0.5:
        t.support("imaging", f"round deposits along veins ({venous:.0%}; venous malformation?)",
                  2.0)
    else:
        t.cap(0.15, "imaging", "not round deposits in the pelvis or along veins")
    sizes = f.diameters_mm()
    if sizes and np.mean([2.0 <= d <= 10.0 for d in sizes]) >= 0.7:
        t.support("imaging", "2-10 mm across, the size of phleboliths", 0.3)
    if f.morphology_share("linear", "sheet") >= 0.5:
        t.oppose("imaging", "linear or sheet-like deposits", 1.5)
    if f.layer_share("periarticular", "tendon") >= 0.5:
        t.oppose("imaging", f"beside a joint or in a tendon, not in veins{f.layer_note()}", 1.5)
    elif f.layer_share("skin", "subcutaneous") >= 0.5:
        t.oppose("imaging", f"in skin or subcutaneous fat, not in pelvic veins{f.layer_note()}",
                 1.0)
    t.unseen("lucent centre")
    return t.result()


@register(
    "calcific_tendinitis", diagnosis="calcific_tendinitis", title="Calcific tendinitis",
    description="Homogeneous hydroxyapatite deposit in a tendon near its insertion, most "
                "often the rotator cuff.",
    references=(HWANG, TABLE), inputs=("pain_or_ulceration",),
    would_change="The deposit's position in the tendon near its insertion (ultrasound or "
                 "MRI); deposits in subcutaneous fat argue against it.")
def calcific_tendinitis(f: Facts) -> RuleResult:
    """Deposits in a tendon, especially at the shoulder."""
    t = Tally(0.1)
    tendon = [les for les in f.lesions if les.layer == "tendon"]
    share = len(tendon) / f.n if f.n else 0.0
    if share >= 0.5:
        t.support("imaging", f"{len(tendon)} deposit(s) in a tendon{f.layer_note()}", 3.0)
    elif tendon:
        t.support("imaging", f"{len(tendon)} of {f.n} deposits in a tendon", 1.0)
    else:
        t.cap(0.1, "imaging", f"no deposit in a tendon{f.layer_note()}")
    if any(les.region == "shoulder_girdle" for les in tendon):
        t.support("imaging", "at the shoulder (rotator cuff)", 0.5)
    if tendon and f.n <= 3:
        t.support("imaging", f"few deposits ({f.n})", 0.3)
    if f.layer_share("subcutaneous") >= 0.5:
        t.oppose("imaging", f"in subcutaneous fat{f.layer_note()}", 1.5)
    if t.history(f, "pain_or_ulceration"):
        t.support("history", "pain", 0.3)
    t.unseen("position at the tendon insertion")
    return t.result()


@register(
    "synovial_chondromatosis", diagnosis="synovial_chondromatosis",
    title="Synovial chondromatosis",
    description="Many similar calcified cartilage bodies (ring-and-arc) inside one joint.",
    references=(HWANG, TABLE), inputs=(),
    would_change="Bodies inside the joint capsule with ring-and-arc matrix (CT or MRI); "
                 "deposits outside joints argue against it.")
def synovial_chondromatosis(f: Facts) -> RuleResult:
    """Many similar bodies at one joint (one region, one side)."""
    t = Tally(0.05)
    groups = Counter((les.region, les.side) for les in f.lesions if les.layer == "periarticular")
    if not groups:
        t.cap(0.1, "imaging", f"no deposit at a joint{f.layer_note()}")
    else:
        (region, side), count = groups.most_common(1)[0]
        group = [les for les in f.lesions if les.layer == "periarticular"
                 and (les.region, les.side) == (region, side)]
        sizes = f.diameters_mm(group)
        similar = len(sizes) >= 3 and np.std(sizes) <= 0.35 * np.mean(sizes)
        rounded = np.mean([les.morphology in _ROUND for les in group]) >= 0.8
        where = f"{region.replace('_', ' ')}, {side}"
        if count >= 5 and similar and rounded:
            t.support("imaging", f"{count} similar rounded bodies at one joint ({where})", 4.0)
        elif count >= 5:
            t.support("imaging", f"{count} bodies at one joint ({where}), unequal", 1.5)
        else:
            t.support("imaging", f"{count} deposit(s) at a joint ({where})", 0.5)
        if count < 0.5 * f.n:
            t.oppose("imaging", "most deposits lie away from that joint", 1.0)
    t.unseen("ring-and-arc matrix")
    t.unseen("position inside the joint capsule")
    return t.result()


@register(
    "cysticercosis", diagnosis="cysticercosis", title="Cysticercosis",
    description="Calcified cysticerci: many rice-grain calcifications (4-10 x 2-5 mm) along "
                "muscle fibres.",
    references=(HWANG, TABLE), inputs=(),
    would_change="Alignment with the muscle fibres, travel or endemic exposure, brain "
                 "imaging; round dots in fat argue against it.")
def cysticercosis(f: Facts) -> RuleResult:
    """Many elongated 4-10 mm deposits in muscle."""
    t = Tally(0.05)
    rice = [les for les in f.lesions if les.layer == "muscle" and les.morphology == "linear"
            and (les.max_diameter_mm is None or 4.0 <= les.max_diameter_mm <= 10.0)]
    if len(rice) >= 10 and len(rice) >= 0.5 * f.n:
        t.support("imaging", f"{len(rice)} rice-grain deposits (elongated, 4-10 mm) in muscle"
                  f"{f.layer_note()}", 4.0)
    elif len(rice) >= 3:
        t.support("imaging", f"{len(rice)} rice-grain deposits in muscle", 1.5)
    else:
        t.cap(0.1, "imaging", "no rice-grain deposits in muscle")
    if len({les.region for les in rice}) >= 3:
        t.support("imaging", "spread over several regions", 0.3)
    if f.share(lambda les: les.layer == "subcutaneous" and les.morphology in _ROUND) >= 0.5:
        t.oppose("imaging", "round dots in fat", 1.5)
    t.unseen("alignment along muscle fibres")
    return t.result()


@register(
    "mineralized_soft_tissue_tumor", diagnosis="mineralized_soft_tissue_tumor",
    title="Mineralized soft-tissue tumour",
    description="A soft-tissue tumour with calcified or ossified matrix (e.g. synovial "
                "sarcoma, extraskeletal osteosarcoma, lipoma with calcification): a single "
                "lesion with a soft-tissue mass, enlarging.",
    references=(HWANG, TABLE), inputs=("malignancy",),
    would_change="A soft-tissue mass around the calcification and growth on comparison (CT "
                 "with contrast or MRI, earlier images); many small symmetric deposits argue "
                 "against it.")
def mineralized_soft_tissue_tumor(f: Facts) -> RuleResult:
    """A single mass-like lesion."""
    t = Tally(0.05)
    if f.n == 1:
        t.support("imaging", "a single lesion", 1.5)
    elif f.n <= 3:
        t.support("imaging", f"few lesions ({f.n})", 0.5)
    elif f.n > 5:
        t.oppose("imaging", f"many deposits ({f.n})", 1.5)
    if f.morphology_counts["mass"]:
        t.support("imaging", "mass-like", 1.5)
    if max(f.diameters_mm(), default=0.0) >= 30.0:
        t.support("imaging", f"{max(f.diameters_mm()):.0f} mm across", 0.5)
    if f.layer_share("periarticular", "tendon") >= 0.5:
        t.oppose("imaging", "at a joint or tendon (tumoral calcinosis or tendinitis fit "
                 "better)", 0.5)
    if f.n >= 5 and f.symmetry_call == "symmetric":
        t.oppose("imaging", f"symmetric deposits{f.note('symmetry_call')}", 1.5)
    if t.history(f, "malignancy"):
        t.support("history", "malignancy", 1.0)
    t.unseen("a soft-tissue mass around the calcification")
    t.unseen("growth on comparison with earlier images")
    t.cap(0.7)  # its defining features (mass, growth) are not in the findings
    return t.result()


@register(
    "heterotopic_ossification", diagnosis="heterotopic_ossification",
    title="Heterotopic ossification",
    description="Organised bone (cortex and trabeculae) in soft tissue, often bridging a "
                "joint after surgery, trauma, burns or neurological injury.",
    references=(HWANG, TABLE), inputs=("trauma_or_surgery",),
    would_change="Organised bone with cortex and trabeculae, bridging across a joint; trauma, "
                 "surgery, burns or neurological injury; amorphous mineral argues against it.")
def heterotopic_ossification(f: Facts) -> RuleResult:
    """Large dense deposits beside joints or in muscle after trauma or surgery."""
    t = Tally(0.05)
    dense = [les for les in f.lesions if (les.peak_hu or 0.0) >= 1000.0]
    if dense:
        t.support("imaging", f"{len(dense)} deposit(s) as dense as cortical bone "
                  "(peak >= 1000 HU)", 0.8)
    deep = [les for les in f.lesions if les.layer in ("periarticular", "muscle")]
    if max(f.diameters_mm(deep), default=0.0) >= 20.0:
        t.support("imaging", f"large deposit(s) beside a joint or in muscle{f.layer_note()}", 1.5)
    if f.morphology_share("punctate") >= 0.7:
        t.oppose("imaging", "small amorphous dots", 1.5)
    trauma = t.history(f, "trauma_or_surgery")
    if trauma:
        t.support("history", "trauma or surgery", 2.0)
    elif trauma is False:
        t.oppose("history", "no trauma or surgery", 0.5)
    t.unseen("organised bone (cortex and trabeculae)")
    t.unseen("bridging across a joint")
    t.cap(0.75)  # organised bone, its defining feature, is not in the findings
    return t.result()
