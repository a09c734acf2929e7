"""The Report panel's "Send to PACS", and what it shares with the PACS panel.

:func:`start_send` is what the Report panel's "Send to PACS" button runs: the session's
reviewed findings are written as DICOM SR, SEG and key images (Secondary Capture) into a
temporary folder and stored, all together, in the study on the PACS it came from (else the
server chosen in the PACS panel, else the only one configured). Every failure is one
sentence in the panel's status line and in a notification; credentials are never shown.
Workers here never raise into napari (:func:`caught_worker`): their failures come back as
values and become the panel's sentence, never a traceback.
"""

import tempfile
import weakref
from pathlib import Path
from typing import Any

from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info

from napari_calcinosis.pacs import PacsClient, load_servers, servers_file
from napari_calcinosis.report import WRITERS, ExportContext
from napari_calcinosis.types import CalcinosisError
from napari_calcinosis.types.progress import percent

from .session import StudySession

#: What "Send to PACS" stores: the DICOM objects a PACS viewer shows.
SEND_FORMATS = ("sr", "seg", "sc")
# The PACS each study was opened from, and the server chosen in each viewer's PACS panel.
_ORIGIN: dict[str, str] = {}
_CHOSEN: "weakref.WeakKeyDictionary[StudySession, str]" = weakref.WeakKeyDictionary()
_RUNNING: set = set()  # send workers, kept alive until they finish


def remember_origin(study_uid: str, server: str) -> None:
    """The study was opened from this PACS (results go back there)."""
    _ORIGIN[study_uid] = server


def remember_choice(session: StudySession, server: str) -> None:
    """The server chosen in the PACS panel of this session's viewer."""
    _CHOSEN[session] = server


def chosen_server(session: StudySession) -> str | None:
    """The server last chosen in the PACS panel of this session's viewer."""
    return _CHOSEN.get(session)


def _caught(steps: Any):
    """Generator for ``thread_worker``: passes on ``steps``' reports and returns
    ``(result, None)``, or ``(None, exception)`` when it failed: the panel turns the
    exception into its sentence, and napari never shows it with a traceback."""
    try:
        result = yield from steps
    except Exception as exc:  # noqa: BLE001 - every failure becomes one sentence
        return None, exc
    return result, None


def caught_worker(steps: Any, on_done: Any, on_fail: Any) -> Any:
    """A worker of :func:`_caught` ``steps`` that calls ``on_done(result)`` or
    ``on_fail(exception)`` on the main thread."""
    worker = thread_worker(_caught, start_thread=False, ignore_errors=True)(steps)
    worker.returned.connect(lambda outcome: on_fail(outcome[1]) if outcome[1] is not None
                            else on_done(outcome[0]))
    return worker


def sentence(exc: BaseException) -> str:
    """A failure as the one sentence a panel shows."""
    if isinstance(exc, (CalcinosisError, OSError)):
        return " ".join(str(exc).split())
    return f"Unexpected {type(exc).__name__}: {' '.join(str(exc).split())}"


# -- "Send to PACS" in the Report panel ------------------------------------------------------
def server_to_send_to(session: StudySession) -> str:
    """The PACS the session's study came from; else the one chosen in the PACS panel; else
    the only one configured.

    Raises
    ------
    CalcinosisError
        When none of these names a server.
    """
    uid = session.study_uid
    if uid in _ORIGIN:
        return _ORIGIN[uid]
    servers = load_servers()
    chosen = _CHOSEN.get(session)
    if chosen in servers:
        return chosen
    if len(servers) == 1:
        return next(iter(servers))
    if not servers:
        raise CalcinosisError(f"No PACS is configured: describe one in {servers_file()}.")
    raise CalcinosisError("Choose the PACS to send to in the PACS panel first.")


def send_steps(result: Any, server_name: str):
    """Generator for ``thread_worker``: write the SR, SEG and key images of ``result`` into
    a temporary folder and store them on the PACS; returns the names stored."""
    client = PacsClient.named(server_name)
    with tempfile.TemporaryDirectory(prefix="calcinosis-send-") as folder:
        context = ExportContext(result=result)
        written: list[Path] = []
        for number, name in enumerate(SEND_FORMATS):
            yield 0.6 * number / len(SEND_FORMATS), f"Writing {WRITERS[name].files} ..."
            written += WRITERS[name].write(result.findings, Path(folder), context)
        yield 0.6, f"Storing the DICOM objects on PACS {server_name} ..."
        return client.store_outputs(written)


def start_send(widget: Any, result: Any, *, anonymize: bool) -> None:
    """Run "Send to PACS" for the Report panel ``widget`` (its ``send_button``,
    ``progress`` and ``status``) with the session's reviewed ``result``."""
    def fail(exc: BaseException) -> None:
        text = sentence(exc)
        widget.status.value = f"Not sent: {text}"
        show_error(f"Send to PACS: {text}")

    if anonymize:
        fail(CalcinosisError("untick Anonymize: results sent to a PACS go into the "
                             "patient's own study."))
        return
    try:
        server = server_to_send_to(widget.session)
    except CalcinosisError as exc:
        fail(exc)
        return
    study = result.findings.study.get("study_instance_uid", "")

    def progress(step: tuple[float, str]) -> None:
        widget.progress.value, widget.status.value = percent(step[0]), step[1]

    def done(names: list[str]) -> None:
        # no UID in the sentence: it would not wrap in the panel (the tooltip has it)
        widget.status.value = (f"Stored {len(names)} DICOM objects in the study on PACS "
                               f"{server}: {', '.join(names)}.")
        widget.status.native.setToolTip(f"StudyInstanceUID {study}")
        show_info(f"Sent to PACS {server}.")

    def finished() -> None:
        _RUNNING.discard(worker)
        widget.send_button.enabled = True
        widget.progress.visible = False

    worker = caught_worker(send_steps(result, server), done, fail)
    worker.yielded.connect(progress)
    worker.finished.connect(finished)
    _RUNNING.add(worker)
    widget.send_button.enabled = False
    widget.progress.value, widget.progress.visible = 0, True
    widget.status.value = f"Sending to PACS {server} ..."
    worker.start()
