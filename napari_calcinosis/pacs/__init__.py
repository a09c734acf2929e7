"""The hospital's archive: find, retrieve and store studies on a PACS (no Qt).

:class:`PacsServer` (:mod:`._config`) is one server's settings, read from the servers file
(``servers.json`` in the user's configuration folder, or ``NAPARI_CALCINOSIS_PACS_SERVERS``);
credentials come from the environment (or the system keyring), never from that file.
:class:`PacsClient` (:mod:`._client`) speaks DICOMweb (QIDO-RS, WADO-RS, STOW-RS, with
``dicomweb-client``) or DIMSE (C-FIND, C-GET, C-STORE, with ``pynetdicom``) and keeps
retrieved studies in a size-limited cache. Every failure is a :class:`PacsError`: one
sentence naming the server and what went wrong.
"""

from ._client import PacsClient, StudyHit
from ._config import (
    STUDY_UID,
    PacsError,
    PacsServer,
    load_servers,
    parse_pacs_target,
    parse_pacs_url,
    servers_file,
)

__all__ = ["STUDY_UID", "PacsClient", "PacsError", "PacsServer", "StudyHit", "load_servers",
           "parse_pacs_target", "parse_pacs_url", "servers_file"]
