"""Anonymized copies of findings (new UIDs, identifying header values scrubbed from text).

Kept apart from :mod:`.analysis`, which re-exports :func:`anonymize_findings`.
"""

from __future__ import annotations

import copy
from typing import Any

from .findings import Findings
from .model import Study

__all__ = ["anonymize_findings"]


def anonymize_findings(findings: Findings, study: Study | None = None,
                       *, uid_map: dict[str, str] | None = None
                       ) -> tuple[Findings, dict[str, str]]:
    """A copy of the findings with new UIDs and identifying values removed from the text.

    Study and series UIDs are replaced by new ones (the same old UID always gets the same new
    one, also across exporters that share ``uid_map``). Patient name (and its parts), ID,
    birth date, accession number, referring physician and institution found in the study's
    headers are replaced by ``[removed]`` wherever they appear in warnings.

    Returns
    -------
    tuple
        ``(anonymized findings, uid_map)``.
    """
    from pydicom.uid import generate_uid

    uid_map = {} if uid_map is None else uid_map

    def new_uid(uid: str) -> str:
        if uid and uid not in uid_map:
            uid_map[uid] = generate_uid()
        return uid_map.get(uid, uid)

    out = copy.deepcopy(findings)
    out.study["study_instance_uid"] = new_uid(out.study.get("study_instance_uid", ""))
    for entry in out.series:
        entry.series_instance_uid = new_uid(entry.series_instance_uid)
    for lesion in out.lesions:
        lesion.series_instance_uid = new_uid(lesion.series_instance_uid)
    secrets = _identifying_values(study) + sorted(uid_map, key=len, reverse=True)
    out.warnings = [_scrub(w, secrets, uid_map) for w in out.warnings]
    # extra lesion keys and the parameters may name series too (the CT-to-radiograph link)
    for lesion in out.lesions:
        lesion.extra = _scrub_tree(lesion.extra, secrets, uid_map)
    out.parameters = _scrub_tree(out.parameters, secrets, uid_map)
    return out, uid_map


def _scrub_tree(value: Any, secrets: list[str], uid_map: dict[str, str]) -> Any:
    """:func:`_scrub` applied to every string inside nested dicts, lists and tuples."""
    if isinstance(value, str):
        return _scrub(value, secrets, uid_map)
    if isinstance(value, dict):
        return {key: _scrub_tree(item, secrets, uid_map) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub_tree(item, secrets, uid_map) for item in value)
    return value


def _identifying_values(study: Study | None) -> list[str]:
    if study is None:
        return []
    values: set[str] = set()
    for image in [*study.volumes, *study.radiographs]:
        info = image.info
        for value in (info.patient_name, info.patient_id, info.patient_birth_date,
                      info.accession_number, info.referring_physician, info.institution_name):
            value = str(value or "").strip()
            if len(value) >= 3:
                values.add(value)
        # "DOE^JOHN" also appears as "DOE", "JOHN" or "DOE JOHN" in file and folder names.
        parts = [p.strip() for p in str(info.patient_name or "").split("^")]
        values.update(p for p in parts if len(p) >= 3)
        values.add(" ".join(p for p in parts if p))
    return sorted((v for v in values if len(v) >= 3), key=len, reverse=True)


def _scrub(text: str, secrets: list[str], uid_map: dict[str, str]) -> str:
    for secret in secrets:
        replacement = uid_map.get(secret, "[removed]")
        text = text.replace(secret, replacement)
    return text
