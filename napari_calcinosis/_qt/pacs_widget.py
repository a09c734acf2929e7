"""PACS panel: find studies on a configured PACS and open one; the Report panel's "Send to
PACS".

The panel lists the servers of the servers file (:func:`napari_calcinosis.pacs.load_servers`),
queries the chosen one (patient ID, name, accession number, a date range, a modality) and
shows the studies found (patient, date, modality, description, number of images). "Open"
retrieves the chosen study into the PACS cache in a worker thread, with progress, then opens
the cached folder with this plugin's reader, exactly as File > Open does for a folder.

:func:`start_send` is what the Report panel's "Send to PACS" button runs: the session's
reviewed findings are written as DICOM SR, SEG and key images (Secondary Capture) into a
temporary folder and stored, all together, in the study on the PACS it came from (else the
server chosen in this panel, else the only one configured). Every failure is one sentence
in the panel's status line and in a notification; credentials are never shown.
"""

import datetime
import queue
import re
import tempfile
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, Label, LineEdit, ProgressBar, PushButton
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
)

from napari_calcinosis.pacs import PacsClient, StudyHit, load_servers, servers_file
from napari_calcinosis.report import WRITERS, ExportContext
from napari_calcinosis.types import CalcinosisError, UsageError
from napari_calcinosis.types.progress import percent

from .session import StudySession, get_session

if TYPE_CHECKING:
    import napari

PLUGIN = "napari-calcinosis"
#: Columns of the result list.
COLUMNS = ("Patient", "Date", "Modality", "Description", "Images")
MODALITIES = ("", "CT", "CR", "DX")
#: What "Send to PACS" stores: the DICOM objects a PACS viewer shows.
SEND_FORMATS = ("sr", "seg", "sc")
# The PACS each study was opened from, and the server chosen in each viewer's panel.
_ORIGIN: dict[str, str] = {}
_CHOSEN: "weakref.WeakKeyDictionary[StudySession, str]" = weakref.WeakKeyDictionary()
_RUNNING: set = set()  # send workers, kept alive until they finish
_MIN_WIDTH_PX = 420  # the five columns of the result list stay readable


def parse_date(text: str, what: str) -> str:
    """``YYYY-MM-DD`` or ``YYYYMMDD`` (or nothing) as ``YYYYMMDD``.

    Raises
    ------
    UsageError
        Naming the field when the text is not a date.
    """
    text = text.strip()
    if not text:
        return ""
    digits = re.sub(r"[-./ ]", "", text)
    try:
        return datetime.datetime.strptime(digits, "%Y%m%d").strftime("%Y%m%d")
    except ValueError as exc:
        raise UsageError(f"{what} {text!r} is not a date: write it as YYYY-MM-DD.") from exc


def hit_cells(hit: StudyHit) -> list[str]:
    """A study's row of the result list (the columns of :data:`COLUMNS`)."""
    name = " ".join(hit.patient_name.replace("^", " ").split())
    patient = f"{name} ({hit.patient_id})" if name and hit.patient_id and \
        name != hit.patient_id else name or hit.patient_id
    date = hit.study_date
    if re.fullmatch(r"\d{8}", date):
        date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    return [patient, date, hit.modalities.replace("\\", ", "), hit.description,
            "" if hit.instances is None else str(hit.instances)]


def _with_progress(function: Any, *args: Any):
    """Generator for ``thread_worker``: runs ``function(*args, progress=...)`` in one more
    thread and yields its ``(fraction, message)`` reports as they come; returns its result
    (the pattern of the detection panel)."""
    messages: queue.Queue = queue.Queue()
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(function, *args, progress=lambda f, m: messages.put((f, m)))
        while not (future.done() and messages.empty()):
            try:
                yield messages.get(timeout=0.05)
            except queue.Empty:
                continue
        return future.result()


def _caught(steps: Any):
    """Generator for ``thread_worker``: passes on ``steps``' reports and returns
    ``(result, None)``, or ``(None, exception)`` when it failed: the panel turns the
    exception into its sentence, and napari never shows it with a traceback."""
    try:
        result = yield from steps
    except Exception as exc:  # noqa: BLE001 - every failure becomes one sentence
        return None, exc
    return result, None


def _call(function: Any, **kwargs: Any):
    """``function(**kwargs)`` as a generator without reports (for :func:`_caught`)."""
    return function(**kwargs)
    yield  # pragma: no cover - makes this a generator


def _worker(steps: Any, on_done: Any, on_fail: Any) -> Any:
    """A worker of :func:`_caught` ``steps`` that calls ``on_done(result)`` or
    ``on_fail(exception)`` on the main thread."""
    worker = thread_worker(_caught, start_thread=False, ignore_errors=True)(steps)
    worker.returned.connect(lambda outcome: on_fail(outcome[1]) if outcome[1] is not None
                            else on_done(outcome[0]))
    return worker


def _text(value: str = "") -> Label:
    label = Label(value=value)
    label.native.setWordWrap(True)
    label.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    return label


class PacsWidget(Container):
    """Find studies on a PACS of the servers file and open the chosen one."""

    def __init__(self, viewer: "napari.viewer.Viewer"):
        super().__init__(labels=False)
        self._viewer = viewer
        self._session = get_session(viewer)
        self._servers: dict[str, Any] = {}
        # a callable: napari resets the choices of a docked panel's widgets
        self.server = ComboBox(label="Server", choices=lambda _: list(self._servers))
        self.patient_id = LineEdit(label="Patient ID")
        self.patient_name = LineEdit(label="Patient name")
        self.accession = LineEdit(label="Accession")
        self.date_from = LineEdit(label="Date from")
        self.date_to = LineEdit(label="Date to")
        self.modality = ComboBox(label="Modality", choices=MODALITIES, value="")
        for field, hint in ((self.patient_name, "DOE^JANE, or DOE* (wildcards)"),
                            (self.date_from, "YYYY-MM-DD"), (self.date_to, "YYYY-MM-DD")):
            field.native.setPlaceholderText(hint)
        self.search_button = PushButton(text="Search")
        self.open_button = PushButton(text="Open", enabled=False)
        self.progress = ProgressBar(min=0, max=100, value=0, visible=False)
        self.status = _text()
        # magicgui's Table has no row selection to speak of: a plain QTableWidget here.
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        for column, name in enumerate(COLUMNS):  # the free text shares what is left
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch
                                        if name in ("Patient", "Description") else
                                        QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(160)
        form = Container(labels=True)
        # added after construction, so that magicgui lines the fields up
        form.extend([self.server, self.patient_id, self.patient_name, self.accession,
                     self.date_from, self.date_to, self.modality])
        form.margins = (0, 0, 0, 0)
        results = Container(labels=False)
        results.margins = (0, 0, 0, 0)
        results.native.layout().addWidget(self.table)
        self.extend([form, self.search_button, results, self.open_button, self.progress,
                     self.status])
        self.native.setMinimumWidth(_MIN_WIDTH_PX)
        self.hits: list[StudyHit] = []
        self._worker: Any = None
        self.search_button.changed.connect(lambda: self.search())
        self.open_button.changed.connect(lambda: self.open_study())
        self.server.changed.connect(self._on_server_chosen)
        self.table.itemSelectionChanged.connect(self._show_state)
        self.table.cellDoubleClicked.connect(lambda row, column: self.open_study(row))
        for field in (self.patient_id, self.patient_name, self.accession, self.date_from,
                      self.date_to):
            field.native.returnPressed.connect(self.search)
        self.load_servers()

    # -- servers ---------------------------------------------------------------------------
    def load_servers(self) -> None:
        """(Re)read the servers file into the server choice."""
        try:
            self._servers = load_servers()
        except CalcinosisError as exc:
            self._servers = {}
            self.status.value = str(exc)
        names = list(self._servers)
        self.server.reset_choices()
        if names:
            self.server.value = _CHOSEN.get(self._session) if \
                _CHOSEN.get(self._session) in names else names[0]
            self._on_server_chosen()
        elif not self.status.value:
            self.status.value = (f"No PACS is configured: describe one in {servers_file()} "
                                 "(see docs/contract.md, PACS).")
        self._show_state()

    def _on_server_chosen(self) -> None:
        if self.server.value:
            _CHOSEN[self._session] = self.server.value

    @property
    def is_running(self) -> bool:
        return self._worker is not None

    def _show_state(self) -> None:
        ready = bool(self._servers) and not self.is_running
        self.search_button.enabled = ready
        self.open_button.enabled = ready and self.selected_row() is not None

    def selected_row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def _client(self) -> PacsClient:
        return PacsClient.named(self.server.value)

    # -- searching -------------------------------------------------------------------------
    def search(self) -> None:
        """Query the chosen server with the form's criteria (in a worker thread)."""
        if self.is_running or not self._servers:
            return
        try:
            query = {"patient_id": self.patient_id.value.strip(),
                     "patient_name": self.patient_name.value.strip(),
                     "accession": self.accession.value.strip(),
                     "date_from": parse_date(self.date_from.value, "Date from"),
                     "date_to": parse_date(self.date_to.value, "Date to"),
                     "modality": self.modality.value or ""}
            client = self._client()
        except CalcinosisError as exc:
            self._fail(exc)
            return
        worker = _worker(_call(client.find_studies, **query), self._on_found, self._fail)
        self._start(worker, f"Searching PACS {client.server.name} ...")

    def _on_found(self, hits: list[StudyHit]) -> None:
        self.hits = sorted(hits, key=lambda h: h.study_date, reverse=True)
        self.table.setRowCount(len(self.hits))
        for row, hit in enumerate(self.hits):
            for column, text in enumerate(hit_cells(hit)):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{text}\nAccession {hit.accession or '-'}\n"
                                f"StudyInstanceUID {hit.study_uid}")
                self.table.setItem(row, column, item)
        count = len(self.hits)
        self.status.value = (f"{count} stud{'ies' if count != 1 else 'y'} found on PACS "
                             f"{self.server.value}." if count else
                             f"No study on PACS {self.server.value} matches.")
        if count:
            self.table.selectRow(0)

    # -- opening ---------------------------------------------------------------------------
    def open_study(self, row: int | None = None) -> None:
        """Retrieve the chosen study (in a worker thread, with progress) and open it."""
        row = self.selected_row() if row is None else row
        if self.is_running or row is None or not 0 <= row < len(self.hits):
            return
        hit = self.hits[row]
        try:
            client = self._client()
        except CalcinosisError as exc:
            self._fail(exc)
            return
        worker = _worker(_with_progress(client.retrieve_study, hit.study_uid),
                         lambda folder: self._on_retrieved(client, hit, folder), self._fail)
        worker.yielded.connect(self._on_progress)
        self._start(worker, f"Retrieving the study of {hit_cells(hit)[0] or hit.study_uid} "
                            f"from PACS {client.server.name} ...")

    def _on_progress(self, step: tuple[float, str]) -> None:
        fraction, message = step
        self.progress.max = 100
        self.progress.value = percent(fraction)
        self.status.value = message

    def _on_retrieved(self, client: PacsClient, hit: StudyHit, folder: Path) -> None:
        _ORIGIN[hit.study_uid] = client.server.name
        try:
            self._viewer.open(str(folder), plugin=PLUGIN)
        except Exception as exc:  # noqa: BLE001 - napari's own errors: one sentence
            self._fail(CalcinosisError(f"The study retrieved from PACS {client.server.name} "
                                       f"into {folder} could not be opened ({exc})."))
            return
        self.status.value = (f"Opened the study of {hit_cells(hit)[0] or hit.study_uid} "
                             f"from PACS {client.server.name}.")

    # -- worker plumbing -------------------------------------------------------------------
    def _start(self, worker: Any, message: str) -> None:
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.progress.max, self.progress.value = 0, 0  # busy until the first report
        self.progress.visible = True
        self.status.value = message
        self._show_state()
        worker.start()

    def _fail(self, exc: BaseException) -> None:
        sentence = _sentence(exc)
        self.status.value = sentence
        show_error(sentence)

    def _on_finished(self) -> None:
        self._worker = None
        self.progress.visible = False
        self._show_state()


def _sentence(exc: BaseException) -> str:
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
        dicom = [p for p in written if p.suffix == ".dcm"]
        if not dicom:
            raise CalcinosisError("Nothing to send: no CT lesion or radiograph result gives "
                                  "a DICOM object.")
        yield 0.6, f"Storing {len(dicom)} DICOM objects on PACS {server_name} ..."
        client.store(dicom)
        return [p.name for p in dicom]


def start_send(widget: Any, result: Any, *, anonymize: bool) -> None:
    """Run "Send to PACS" for the Report panel ``widget`` (its ``send_button``,
    ``progress`` and ``status``) with the session's reviewed ``result``."""
    def fail(exc: BaseException) -> None:
        sentence = _sentence(exc)
        widget.status.value = f"Not sent: {sentence}"
        show_error(f"Send to PACS: {sentence}")

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
        widget.status.value = (f"Stored {len(names)} DICOM objects on PACS {server} in "
                               f"study {study}: {', '.join(names)}.")
        show_info(f"Sent to PACS {server}.")

    def finished() -> None:
        _RUNNING.discard(worker)
        widget.send_button.enabled = True
        widget.progress.visible = False

    worker = _worker(send_steps(result, server), done, fail)
    worker.yielded.connect(progress)
    worker.finished.connect(finished)
    _RUNNING.add(worker)
    widget.send_button.enabled = False
    widget.progress.value, widget.progress.visible = 0, True
    widget.status.value = f"Sending to PACS {server} ..."
    worker.start()
