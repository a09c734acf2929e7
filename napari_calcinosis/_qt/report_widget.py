"""Report panel: export the reviewed findings of the current study in the chosen formats.

It exports the study session's reviewed findings (rejected lesions absent, manual ones
present, the reader's calls applied, the differential recomputed with the clinical input),
assembled from the viewer's CT and radiograph detection runs by the same step as
``napari-calcinosis analyze`` and written through the same format registry, so the files
equal what it writes for the same study and saved record. The writers run in a worker
thread; one failing format does not stop the others. "Send to PACS" stores the SR, SEG and
key images in the study on its PACS (:mod:`.pacs_send`).
"""

import datetime
import hashlib
import webbrowser
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import CheckBox, Container, FileEdit, Label, ProgressBar, PushButton
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt, QUrl
from qtpy.QtGui import QDesktopServices
from qtpy.QtWidgets import QFrame, QScrollArea, QSizePolicy

from napari_calcinosis.pipeline import AnalysisResult, assemble_result
from napari_calcinosis.report import (
    CONTRACT_FORMATS,
    WRITERS,
    ExportContext,
    anonymize_findings,
    default_formats,
)
from napari_calcinosis.types import AnalysisError, CalcinosisError
from napari_calcinosis.types.progress import percent

from .pacs_send import start_send
from .session import StudySession, follow, get_session

if TYPE_CHECKING:
    import napari

#: Where reports go unless the reader picked another folder.
DEFAULT_ROOT = Path.home() / "calcinosis-report"
HTML_NAME = "report.html"
_COLUMN_PX = 170  # width of the left column of format boxes
_MIN_HEIGHT_PX = 300  # the panel scrolls below this height
#: Formats written whatever the boxes say (the contract: ``findings.json`` always).
ALWAYS = ("json",)
# The folder last exported to, per study and overall (for the next study's default).
_LAST: dict[str, Path] = {}
_ANY = ""


@dataclass
class ExportOutcome:
    """What an export wrote: the files, and per failed format its error message."""

    out_dir: Path
    written: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def html(self) -> Path | None:
        """``report.html`` when it was written."""
        return next((p for p in self.written if p.name == HTML_NAME), None)


def study_folder_name(study_uid: str | None) -> str:
    """Folder name of a study's report: a short hash of its UID (no patient data), else
    today's date."""
    if not study_uid:
        return datetime.date.today().isoformat()
    return "study-" + hashlib.sha256(study_uid.encode()).hexdigest()[:12]


def default_folder(study_uid: str | None) -> Path:
    """The study's last export folder, else ``<last used root>/<study folder name>``."""
    if study_uid and study_uid in _LAST:
        return _LAST[study_uid]
    root = _LAST[_ANY].parent if _ANY in _LAST else DEFAULT_ROOT
    return root / study_folder_name(study_uid)


# -- the export, as the command line would do it --------------------------------------------
def export_result(session: StudySession) -> AnalysisResult:
    """The session's reviewed study as an ``AnalysisResult`` for the format writers.

    Assembled by :func:`~napari_calcinosis.pipeline.assemble_result`, the step
    ``napari-calcinosis analyze`` uses, from the viewer's detection runs (CT and
    radiographs), the loaded study's warnings and the reader's saved record: the findings
    (ids, summary, warnings, parameters, differential) equal what ``analyze`` writes for the
    same study and record.

    Raises
    ------
    AnalysisError
        When no study is open or no series has a detection run yet.
    """
    review = session.review
    if review is None:
        raise AnalysisError("Open a study with napari-calcinosis before exporting a report.")
    if not review.runs:
        raise AnalysisError("No series of this study has been analysed yet: run the "
                            "Calcinosis detection panel before exporting a report.")
    items = review.series_results()
    # ``analyze`` reads the record only when one was saved (every edit saves it).
    saved = review.store.path_for(review.study_instance_uid).is_file()
    return assemble_result(review.study(items), items, clinical=review.clinical(),
                           annotations=review.record if saved else None)


def export_steps(result: AnalysisResult, out_dir: Path, formats: Sequence[str], *,
                 anonymize: bool = False
                 ) -> Generator[tuple[float, str], None, ExportOutcome]:
    """Write ``formats`` of ``result`` into ``out_dir``, yielding ``(fraction, message)``.

    Each format is written on its own: a failure (the calcinosis error family, an OS error,
    or a bug in one writer) is recorded in the outcome and the next format is written.

    Raises
    ------
    CalcinosisError
        When the output folder cannot be created (nothing can be written then).
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CalcinosisError(f"Cannot create the report folder {out_dir}: "
                              f"{exc.strerror or exc}.") from exc
    context = ExportContext(result=result, anonymize=anonymize)
    findings = result.findings
    if anonymize:
        findings, context.uid_map = anonymize_findings(findings, result.study)
    outcome = ExportOutcome(out_dir)
    for number, name in enumerate(formats):
        writer = WRITERS[name]
        yield number / len(formats), f"Writing {writer.files} ..."
        try:
            outcome.written.extend(writer.write(findings, out_dir, context))
        except (CalcinosisError, OSError) as exc:
            outcome.failed[name] = str(exc)
        except Exception as exc:  # noqa: BLE001 - one writer's bug must not lose the others
            outcome.failed[name] = f"unexpected {type(exc).__name__}: {exc}"
    yield 1.0, "Done"
    return outcome


def open_in_browser(path: Path) -> bool:
    """Open a local file with the desktop's handler (a web browser for HTML)."""
    if QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
        return True
    return bool(webbrowser.open(path.resolve().as_uri()))


def outcome_text(outcome: ExportOutcome) -> str:
    """The status line: files written (names) and the formats that failed."""
    count = len(outcome.written)
    text = f"Wrote {count} file{'s' if count != 1 else ''} to {outcome.out_dir}"
    text += (": " + ", ".join(p.name for p in outcome.written) + ".") if count else "."
    if outcome.failed:
        text += " Failed: " + ", ".join(outcome.failed) + "."
    return text


def scope_text(review: Any) -> str:
    """What an export would hold now (or why there is nothing to export yet)."""
    if review is None or not review.runs:
        return "Waiting for detection: open a study and detect calcifications first."
    findings = review.effective
    manual = sum("annotation_uid" in les.extra for les in findings.lesions)
    clinical = "with" if review.clinical() is not None else "without"
    count = findings.summary.lesion_count
    text = (f"Reviewed findings: {count} soft-tissue lesion{'s' if count != 1 else ''} "
            f"({len(review.rejected)} rejected, {manual} added), {clinical} clinical input.")
    unread = sum(1 for uid, entry in review.series.items()
                 if entry.kind == "radiograph" and uid not in review.runs)
    if unread:  # analyze would detect on them: the export lists them as not analysed
        text += (f" Radiographs not analysed yet: {unread} (detect on them in the "
                 "Calcinosis detection panel).")
    return text


def _text(value: str = "") -> Label:
    label = Label(value=value)
    label.native.setWordWrap(True)
    label.native.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    # A word-wrapped label asks for little width; let it take the panel's.
    label.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    return label


def _box(widgets: list, *, layout: str = "vertical", labels: bool = False) -> Container:
    box = Container(widgets=widgets, layout=layout, labels=labels)
    box.margins = (0, 0, 0, 0)
    return box


def _scroll_area(content: Container) -> QScrollArea:
    # napari docks a magicgui Container's inner widget, so ``scrollable=True`` would lose
    # its scroll bars: the area is made here and put into the panel's own layout.
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(content.native)
    # Never squeezed to a sliver: at least what is exported, where, and the export button.
    scroll.setMinimumHeight(min(content.native.sizeHint().height(), _MIN_HEIGHT_PX))
    return scroll


class ReportWidget(Container):
    """Export the reviewed findings to a folder in the chosen formats, then open the HTML."""

    def __init__(self, viewer: "napari.viewer.Viewer"):
        super().__init__(labels=False)
        self.session = get_session(viewer)
        self._study_uid = self.session.study_uid
        self.folder = FileEdit(label="Output folder", mode="d",
                               value=default_folder(self._study_uid))
        self.folder.native.setToolTip("Report files go here (created when needed).")
        self.format_boxes = {name: self._format_box(name) for name in CONTRACT_FORMATS
                             if name in WRITERS}
        self.anonymize = CheckBox(text="Anonymize (new UIDs, no patient identity)",
                                  value=False)
        self.scope = _text()
        self.export_button = PushButton(text="Export report")
        self.progress = ProgressBar(min=0, max=100, value=0, visible=False)
        self.status = _text()
        self.open_button = PushButton(text="Open HTML report", enabled=False)
        self.send_button = PushButton(text="Send to PACS")
        self.send_button.native.setToolTip("Store the SR, SEG and key images in the study "
                                           "on its PACS (see the PACS panel).")
        body = _box([self.scope, _box([self.folder], labels=True), _text("Formats"),
                     self._format_columns(), self.anonymize, self.export_button,
                     self.progress, self.status, self.open_button, self.send_button])
        body.native.layout().addStretch(1)
        # napari squeezes crowded docks below their content: scroll rather than clip.
        self.native.layout().addWidget(_scroll_area(body))
        self.max_width = 460
        self._folder_chosen = False  # the reader typed or picked a folder for this study
        self._setting_folder = False
        self._worker: Any = None
        self._export_uid: str | None = None  # the study being exported
        self.outcome: ExportOutcome | None = None
        self.folder.changed.connect(self._on_folder_edited)
        self.export_button.changed.connect(lambda: self.export())
        self.open_button.changed.connect(lambda: self.open_html())
        self.send_button.changed.connect(lambda: self.send_to_pacs())
        follow(self, self.session.changed, self._on_session_changed)
        self._show_state()

    def _format_columns(self) -> Container:
        """Two columns (documents left, DICOM objects and images right) built as rows, so
        that the boxes line up even when the panel is short of height."""
        boxes = list(self.format_boxes.values())
        half = (len(boxes) + 1) // 2
        rows = []
        for left, right in zip(boxes[:half], [*boxes[half:], None]):
            left.native.setFixedWidth(_COLUMN_PX)
            row = _box([left] if right is None else [left, right], layout="horizontal")
            row.native.layout().addStretch(1)  # a lone box stays in the left column
            rows.append(row)
        return _box(rows)

    def _format_box(self, name: str) -> CheckBox:
        writer = WRITERS[name]
        box = CheckBox(text=f"{writer.files}", value=name in default_formats(),
                       enabled=name not in ALWAYS)
        tip = writer.description + (" (always written)" if name in ALWAYS else "")
        box.native.setToolTip(tip)
        return box

    # -- state -----------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self._worker is not None

    def formats(self) -> list[str]:
        """The chosen formats in the contract's order (``json`` always included)."""
        return [name for name, box in self.format_boxes.items()
                if box.value or name in ALWAYS]

    def _on_folder_edited(self) -> None:
        if not self._setting_folder:
            self._folder_chosen = True

    def _set_folder(self, path: Path) -> None:
        self._setting_folder = True
        try:
            self.folder.value = path
        finally:
            self._setting_folder = False

    def _on_session_changed(self) -> None:
        uid = self.session.study_uid
        if uid != self._study_uid:
            self._study_uid, self._folder_chosen = uid, False
            self.outcome, self.status.value = None, ""
        if not self._folder_chosen:
            self._set_folder(default_folder(uid))
        self._show_state()

    def _show_state(self) -> None:
        review = self.session.review
        ready = review is not None and bool(review.runs)
        self.export_button.enabled = ready and not self.is_running
        self.open_button.enabled = (not self.is_running and self.outcome is not None
                                    and self.outcome.html is not None)
        self.scope.value = scope_text(review)

    # -- exporting -------------------------------------------------------------------------
    def export(self) -> None:
        """Write the chosen formats of the reviewed findings into the chosen folder."""
        if self.is_running:
            return
        try:
            result = export_result(self.session)
        except CalcinosisError as exc:
            show_error(str(exc))
            return
        if str(self.folder.value).strip() in ("", "."):
            show_error("Choose an output folder for the report first.")
            return
        out_dir = Path(self.folder.value).expanduser()
        steps = thread_worker(export_steps, start_thread=False)
        worker = steps(result, out_dir, self.formats(), anonymize=bool(self.anonymize.value))
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_done)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker, self._export_uid = worker, self._study_uid
        self.outcome = None
        self.progress.value, self.progress.visible = 0, True
        self.status.value = f"Exporting to {out_dir} ..."
        self._show_state()
        worker.start()

    def _on_progress(self, step: tuple[float, str]) -> None:
        fraction, message = step
        self.progress.value = percent(fraction)
        self.status.value = message

    def _on_done(self, outcome: ExportOutcome) -> None:
        _LAST[self._export_uid or _ANY] = _LAST[_ANY] = outcome.out_dir
        if self._export_uid == self._study_uid:  # else another study is open now
            self.outcome = outcome
        self.status.value = outcome_text(outcome)
        if outcome.failed:
            show_error("Report export: " + "; ".join(
                f"{name} ({WRITERS[name].files}) failed: {message}"
                for name, message in outcome.failed.items()))
        else:
            show_info(f"Report written to {outcome.out_dir}.")

    def _on_error(self, exc: BaseException) -> None:
        if isinstance(exc, (CalcinosisError, OSError)):
            show_error(str(exc))
        else:
            show_error(f"Report export failed: {type(exc).__name__}: {exc}")
        self.status.value = "Export failed."

    def _on_finished(self) -> None:
        self._worker = None
        self.progress.visible = False
        self._show_state()

    def send_to_pacs(self) -> None:
        """Store the reviewed findings' SR, SEG and key images in the study on its PACS
        (:func:`.pacs_send.start_send`)."""
        try:
            result = export_result(self.session)
        except CalcinosisError as exc:
            self.status.value = f"Not sent: {exc}"
            show_error(str(exc))
            return
        start_send(self, result, anonymize=bool(self.anonymize.value))

    def open_html(self) -> None:
        """Open the last exported ``report.html`` in the desktop's browser."""
        path = None if self.outcome is None else self.outcome.html
        if path is None or not path.is_file():
            show_error("No HTML report to open: export one with report.html checked first.")
            return
        if not open_in_browser(path):
            show_error(f"Could not open {path}: no web browser was found.")
