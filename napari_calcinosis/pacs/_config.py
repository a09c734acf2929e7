"""PACS server settings: the servers file, credentials from the environment."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from napari_calcinosis.types import CalcinosisError, UsageError

__all__ = ["STUDY_UID", "PacsError", "PacsServer", "load_servers", "parse_pacs_target",
           "parse_pacs_url", "servers_file"]


class PacsError(CalcinosisError):
    """The PACS could not be reached, refused, or answered something unusable."""


@dataclass
class PacsServer:
    """One PACS: its DICOMweb root and/or its DICOM (DIMSE) address.

    ``username``/``password`` are filled from ``NAPARI_CALCINOSIS_PACS_<NAME>_USER`` and
    ``..._PASSWORD`` (or the keyring service ``napari-calcinosis``), never from the file.
    """

    name: str
    dicomweb_url: str = ""
    aet: str = ""
    host: str = ""
    port: int = 0
    calling_aet: str = "CALCINOSIS"
    timeout_s: float = 30.0
    verify_tls: bool | str = True
    username: str = ""
    password: str = ""

    def __repr__(self) -> str:  # never show the password
        return (f"PacsServer(name={self.name!r}, dicomweb_url={self.dicomweb_url!r}, "
                f"aet={self.aet!r}, host={self.host!r}, port={self.port})")

    @property
    def label(self) -> str:
        return self.name


def servers_file() -> Path:
    """Where the servers are described (``NAPARI_CALCINOSIS_PACS_SERVERS`` overrides)."""
    override = os.environ.get("NAPARI_CALCINOSIS_PACS_SERVERS")
    if override:
        return Path(override)
    from platformdirs import user_config_dir

    return Path(user_config_dir("napari-calcinosis")) / "servers.json"


def load_servers(path: Path | None = None) -> dict[str, PacsServer]:
    """Every server of the servers file, with its credentials from the environment.

    The file: ``{"NAME": {"dicomweb_url": "https://pacs/dicom-web", "aet": "PACS",
    "host": "pacs", "port": 104, "calling_aet": "CALCINOSIS", "timeout_s": 30}}``.
    """
    path = path or servers_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"The PACS servers file {path} cannot be read ({exc}).") from exc
    if not isinstance(data, dict):
        raise UsageError(f"The PACS servers file {path} must hold an object of servers.")
    servers = {}
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise UsageError(f"Server {name!r} in {path} must be an object.")
        known = {k: entry[k] for k in ("dicomweb_url", "aet", "host", "port", "calling_aet",
                                       "timeout_s", "verify_tls") if k in entry}
        server = PacsServer(name=name, **known)
        server.username, server.password = _credentials(name)
        servers[name] = server
    return servers


def _credentials(name: str) -> tuple[str, str]:
    key = re.sub(r"[^A-Z0-9]", "_", name.upper())
    user = os.environ.get(f"NAPARI_CALCINOSIS_PACS_{key}_USER", "")
    password = os.environ.get(f"NAPARI_CALCINOSIS_PACS_{key}_PASSWORD", "")
    if user and not password:
        try:
            import keyring

            password = keyring.get_password("napari-calcinosis", f"{name}:{user}") or ""
        except Exception:  # noqa: BLE001 - no keyring on this system
            password = ""
    return user, password


_PACS_URL = re.compile(r"^pacs://(?P<server>[^/]+)(?:/(?P<uid>[0-9.]+))?/?$")
#: What a StudyInstanceUID looks like (PS3.5: digits and dots, at most 64 characters).
STUDY_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def parse_pacs_url(text: str) -> tuple[str, str] | None:
    """``pacs://SERVER/STUDYUID`` -> (server, study UID); None for anything else."""
    target = parse_pacs_target(text)
    return target if target is not None and target[1] else None


def parse_pacs_target(text: str) -> tuple[str, str] | None:
    """``pacs://SERVER/STUDYUID`` -> (server, study UID), ``pacs://SERVER`` -> (server, "");
    None for anything that is not a ``pacs://`` address."""
    match = _PACS_URL.match(str(text))
    return (match["server"], match["uid"] or "") if match else None
