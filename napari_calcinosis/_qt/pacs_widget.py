"""PACS panel: find studies on a configured PACS and open one.

The panel lists the servers of the servers file (:func:`napari_calcinosis.pacs.load_servers`),
queries the chosen one (patient ID, name, accession number, a date range, a modality) and
shows the studies found (patient, date, modality, description, number of images). "Open"
retrieves the chosen study into the PACS cache in a worker thread, with progress, then opens
the cached folder with this plugin's reader, exactly as File > Open does for a folder.

The Report panel's "Send to PACS" is in :mod:`.pacs_send`.
"""

import datetime
import queue
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, Label, LineEdit, ProgressBar, PushButton
from napari.utils.notifications import show_error
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
)

from napari_calcinosis.pacs import PacsClient, StudyHit, load_servers, servers_file
from napari_calcinosis.types import CalcinosisError, UsageError
from napari_calcinosis.types.progress import percent

from .pacs_send import caught_worker, chosen_server, remember_choice, remember_origin, sentence
from .panels import PLUGIN
from .session import get_session

if TYPE_CHECKING:
    import napari

#: Columns of the result list.
COLUMNS = ("Patient", "Date", "Modality", "Description", "Images")
MODALITIES = ("", "CT", "CR", "DX")
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


def _call(function: Any, **kwargs: Any):
    """``function(**kwargs)`` as a generator without reports (for
    :func:`.pacs_send.caught_worker`)."""
    return function(**kwargs)
    yield  # pragma: no cover - makes this a generator


def _result_table() -> QTableWidget:
    """The result list: one row per study, whole rows selected, read-only.

    magicgui's Table has no row selection to speak of: a plain QTableWidget here.
    """
    table = QTableWidget(0, len(COLUMNS))
    table.setHorizontalHeaderLabels(COLUMNS)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.setWordWrap(False)
    header = table.horizontalHeader()
    for column, name in enumerate(COLUMNS):  # the free text shares what is left
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch
                                    if name in ("Patient", "Description") else
                                    QHeaderView.ResizeMode.ResizeToContents)
    table.setMinimumHeight(160)
    return table


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
        self.table = _result_table()
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
        self._connect()
        self.load_servers()

    def _connect(self) -> None:
        self.search_button.changed.connect(lambda: self.search())
        self.open_button.changed.connect(lambda: self.open_study())
        self.server.changed.connect(self._on_server_chosen)
        self.table.itemSelectionChanged.connect(self._show_state)
        self.table.cellDoubleClicked.connect(lambda row, column: self.open_study(row))
        for field in (self.patient_id, self.patient_name, self.accession, self.date_from,
                      self.date_to):
            field.native.returnPressed.connect(self.search)

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
            chosen = chosen_server(self._session)
            self.server.value = chosen if chosen in names else names[0]
            self._on_server_chosen()
        elif not self.status.value:
            self.status.value = (f"No PACS is configured: describe one in {servers_file()} "
                                 "(see docs/contract.md, PACS).")
        self._show_state()

    def _on_server_chosen(self) -> None:
        if self.server.value:
            remember_choice(self._session, self.server.value)

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
        self.hits = []
        self.table.setRowCount(0)
        worker = caught_worker(_call(client.find_studies, **query), self._on_found, self._fail)
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
        worker = caught_worker(_with_progress(client.retrieve_study, hit.study_uid),
                                lambda folder: self._on_retrieved(client, hit, folder),
                                self._fail)
        worker.yielded.connect(self._on_progress)
        self._start(worker, f"Retrieving the study of {hit_cells(hit)[0] or hit.study_uid} "
                            f"from PACS {client.server.name} ...")

    def _on_progress(self, step: tuple[float, str]) -> None:
        fraction, message = step
        self.progress.max = 100
        self.progress.value = percent(fraction)
        self.status.value = message

    def _on_retrieved(self, client: PacsClient, hit: StudyHit, folder: Path) -> None:
        remember_origin(hit.study_uid, client.server.name)
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
        text = sentence(exc)
        self.status.value = text
        show_error(text)

    def _on_finished(self) -> None:
        self._worker = None
        self.progress.visible = False
        self._show_state()


