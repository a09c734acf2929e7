"""The ``napari-calcinosis`` command line (CONTRACT.md, "Command line").

``analyze`` reads a study, analyses it and writes the report files; ``view`` opens napari
with the study and the plugin's panels; ``demo`` builds the bundled sample study and analyses
it. Exit status: 0 success, 2 bad usage or clinical file, 3 no usable image series, 1 any other
failure. Errors are one sentence on stderr (a traceback only with ``--debug``); progress goes
to stderr unless ``--quiet``; the paths of the files written go to stdout.
"""

from __future__ import annotations

import argparse
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from napari_calcinosis.core.errors import (
    CalcinosisError,
    ClinicalInputError,
    DicomReadError,
    NoImageSeriesError,
)
from napari_calcinosis.core.report.formats import CONTRACT_FORMATS, WRITERS, default_formats

PROG = "napari-calcinosis"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NO_SERIES = 0, 1, 2, 3
DEFAULT_OUT = Path("calcinosis-report")
MAX_THRESHOLD_HU = 3000.0

class UsageError(Exception):
    """Bad command-line usage (exit 2)."""


def parse_formats(text: str) -> list[str]:
    """Split and check a ``--formats`` value; ``json`` is always included (contract).

    Raises
    ------
    UsageError
        Naming an unknown format.
    """
    names = [part.strip().lower() for part in text.split(",")]
    if not any(names):
        raise UsageError("--formats needs at least one format name.")
    for name in names:
        if name not in WRITERS:
            raise UsageError(f"Unknown format {name!r} in --formats; choose from "
                             f"{', '.join(CONTRACT_FORMATS)}.")
    return [n for n in CONTRACT_FORMATS if n in names or n == "json"]


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + error
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see '{self.prog} --help').\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (subcommands ``analyze``, ``view``, ``demo``)."""
    parser = _ArgumentParser(prog=PROG, description="Find, classify and report soft-tissue "
                             "calcifications on chest radiographs and body CT (DICOM).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=_ArgumentParser)
    analyze = sub.add_parser("analyze", help="analyse a study and write the report files")
    analyze.add_argument("study", metavar="STUDY", type=Path,
                         help="DICOM file, folder (searched recursively), DICOMDIR or .zip")
    _add_out(analyze)
    _add_clinical(analyze)
    analyze.add_argument("--series", metavar="UID", action="append", default=[],
                         help="analyse only this SeriesInstanceUID (repeatable)")
    analyze.add_argument("--threshold-hu", metavar="N", type=float, default=None,
                         help="CT calcium threshold in HU (default 130)")
    analyze.add_argument("--formats", metavar="LIST", default=",".join(default_formats()),
                         help=f"comma-separated formats to write (default: "
                              f"{','.join(default_formats())}; contract: "
                              f"{','.join(CONTRACT_FORMATS)})")
    analyze.add_argument("--anonymize", action="store_true",
                         help="new UIDs and no identifying values in the outputs")
    analyze.add_argument("--ignore-annotations", action="store_true",
                         help="analyse without the reader's saved marks of this study")
    _add_common(analyze)
    view = sub.add_parser("view", help="open napari with the study and the panels docked")
    view.add_argument("study", metavar="STUDY", type=Path)
    _add_clinical(view)
    view.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    demo = sub.add_parser("demo", help="build the bundled sample study and analyse it")
    _add_out(demo)
    _add_common(demo)
    return parser


def _add_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="DIR", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: ./{DEFAULT_OUT}/)")


def _add_clinical(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clinical", metavar="FILE", type=Path, default=None,
                        help="clinical input (labs and history) as JSON")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")


class ProgressPrinter:
    """``progress(fraction, message)`` that prints a line per step (or per 10 %) to a stream.

    Messages that differ only in their numbers ("read 5 of 120 files") are one step.
    """

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self._last: tuple[int, str] = (-100, "")

    def __call__(self, fraction: float, message: str) -> None:
        if self.quiet:
            return
        percent = int(round(100 * min(max(fraction, 0.0), 1.0)))
        step = re.sub(r"\d+", "#", message)
        last_percent, last_step = self._last
        if step == last_step and percent - last_percent < 10:
            return
        self._last = (percent, step)
        print(f"[{percent:3d}%] {message}", file=self.stream, flush=True)

    def stage(self, start: float, stop: float, prefix: str = "") -> Callable[[float, str], None]:
        """A progress callback whose 0..1 maps onto ``start..stop`` of this one."""
        def report(fraction: float, message: str) -> None:
            self(start + (stop - start) * min(max(fraction, 0.0), 1.0), f"{prefix}{message}")

        return report

    def warn(self, message: str) -> None:
        """A warning: printed even with ``--quiet`` (it is not progress)."""
        print(f"warning: {message}", file=self.stream, flush=True)


def run_analysis(study_path: Path, out_dir: Path, *, formats: Sequence[str],
                 clinical_path: Path | None = None, clinical_data: dict | None = None,
                 series_uids: Sequence[str] = (),
                 threshold_hu: float | None = None, anonymize: bool = False,
                 use_annotations: bool = True,
                 progress: ProgressPrinter | None = None) -> list[Path]:
    """Load, analyse and write: the body of ``analyze`` (and of ``demo``).

    Returns
    -------
    list of Path
        The files written, in the order of ``formats``.
    """
    from napari_calcinosis.core.clinical import load_clinical, parse_clinical
    from napari_calcinosis.core.dicom import load_study

    progress = progress or ProgressPrinter(quiet=True)
    _check_threshold(threshold_hu)
    clinical = (load_clinical(clinical_path) if clinical_path is not None else
                parse_clinical(clinical_data) if clinical_data is not None else None)
    if not study_path.exists():
        raise UsageError(f"STUDY {study_path} does not exist.")
    _check_out_dir(out_dir)
    progress(0.0, f"Reading {study_path}")
    study = load_study(study_path, series_uids=list(series_uids) or None,
                       progress=progress.stage(0.0, 0.3, "Reading: "))
    _check_series(study, study_path, series_uids)
    # The analysis modules are heavy to import: only now that there is something to analyse.
    from napari_calcinosis.core.analysis import ExportContext, analyze_study, anonymize_findings
    from napari_calcinosis.core.params import CTParams

    params = CTParams() if threshold_hu is None else CTParams(threshold_hu=threshold_hu)
    record = _saved_annotations(study, progress) if use_annotations else None
    result = analyze_study(study, params=params, clinical=clinical, annotations=record,
                           progress=progress.stage(0.3, 0.9, "Analysing: "))
    context = ExportContext(result=result, anonymize=anonymize, progress=progress)
    findings = result.findings
    if anonymize:
        findings, context.uid_map = anonymize_findings(findings, study)
    return _write_outputs(findings, out_dir, formats, context, progress)


def _saved_annotations(study, progress: ProgressPrinter):
    """The reader's saved record of this study (what the viewer saved), or ``None``."""
    from napari_calcinosis.core.annotations import default_store

    store = default_store()
    # Read-only here: an unusable file is reported, never moved (the viewer handles it).
    record = store.load(study.study_instance_uid, set_aside=False)
    for warning in store.warnings:
        progress.warn(warning)
    if record is not None:
        progress(0.3, "Using the reader's saved annotations of this study "
                      "(--ignore-annotations to analyse without them)")
    return record


def _check_series(study, study_path: Path, series_uids: Sequence[str]) -> None:
    found = {img.info.series_instance_uid for img in [*study.volumes, *study.radiographs]}
    missing = [uid for uid in series_uids if uid not in found]
    if missing:
        raise NoImageSeriesError(
            f"No usable image series with UID {', '.join(missing)} in {study_path}.")
    if study.is_empty:
        raise NoImageSeriesError(f"No usable image series found in {study_path}.")


def _check_threshold(threshold_hu: float | None) -> None:
    if threshold_hu is not None and not 0 < threshold_hu <= MAX_THRESHOLD_HU:
        raise UsageError(f"--threshold-hu must be between 0 and {MAX_THRESHOLD_HU:g} HU "
                         f"(calcium is usually 130), not {threshold_hu:g}.")


def _check_out_dir(out_dir: Path) -> None:
    # Fail before the (long) analysis rather than after it.
    if out_dir.exists() and not out_dir.is_dir():
        raise CalcinosisError(f"Cannot create the output folder {out_dir}: a file of that "
                              "name exists.")


def _write_outputs(findings, out_dir: Path, formats: Sequence[str], context,
                   progress: ProgressPrinter) -> list[Path]:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CalcinosisError(f"Cannot create the output folder {out_dir}: "
                              f"{exc.strerror or exc}.") from exc
    written: list[Path] = []
    for number, name in enumerate(formats):
        writer = WRITERS[name]
        progress(0.9 + 0.1 * number / len(formats), f"Writing {writer.files}")
        try:
            written.extend(writer.write(findings, out_dir, context))
        except OSError as exc:
            raise CalcinosisError(f"Cannot write {writer.files} in {out_dir}: "
                                  f"{exc.strerror or exc}.") from exc
    progress(1.0, f"Done: {len(written)} file{'s' if len(written) != 1 else ''} in {out_dir}")
    return written


def _cmd_analyze(args: argparse.Namespace, out: TextIO) -> int:
    formats = parse_formats(args.formats)
    written = run_analysis(
        args.study, args.out, formats=formats, clinical_path=args.clinical,
        series_uids=args.series, threshold_hu=args.threshold_hu, anonymize=args.anonymize,
        use_annotations=not args.ignore_annotations, progress=ProgressPrinter(quiet=args.quiet))
    for path in written:
        print(path, file=out)
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from napari_calcinosis.core.phantom import sample_study_path

    # Building takes a while only the first time (the study is cached): its own progress run.
    building = ProgressPrinter(quiet=args.quiet)
    building(0.0, "Building the bundled sample study 'generalized' (cached after first use)")
    study_path = sample_study_path("generalized",
                                   progress=building.stage(0.0, 1.0, "Building: "))
    from napari_calcinosis.core.phantom_samples import SAMPLE_CLINICAL

    written = run_analysis(study_path, args.out, formats=default_formats(),
                           clinical_data=SAMPLE_CLINICAL["generalized"],
                           progress=ProgressPrinter(quiet=args.quiet))
    print(f"Sample study: {study_path} (with the seed case's labs and history)", file=out)
    print(f"Outputs in {args.out.resolve()}:", file=out)
    for path in written:
        print(f"  {path}", file=out)
    return EXIT_OK


def launch_viewer(study_path: Path, *, clinical=None, run: bool = True):
    """Open napari with the study (through this plugin's reader) and the plugin's panels.

    Panels that have a ``set_clinical(ClinicalInput)`` method receive ``clinical``.
    Returns the viewer (``run=False`` returns before entering the event loop, for tests).
    """
    import napari

    viewer = napari.Viewer()
    viewer.open(str(study_path), plugin=PROG)
    for display_name in _plugin_widget_names():
        _, widget = viewer.window.add_plugin_dock_widget(PROG, display_name)
        if clinical is not None and hasattr(widget, "set_clinical"):
            widget.set_clinical(clinical)
    if run:
        napari.run()
    return viewer


def _plugin_widget_names() -> list[str]:
    from npe2 import PluginManager

    try:
        manifest = PluginManager.instance().get_manifest(PROG)
    except KeyError as exc:
        raise CalcinosisError(f"The {PROG} plugin is not registered with napari "
                              "(is the package installed?).") from exc
    return [w.display_name for w in (manifest.contributions.widgets or [])]


def _cmd_view(args: argparse.Namespace, out: TextIO) -> int:
    clinical = None
    if args.clinical is not None:
        from napari_calcinosis.core.clinical import load_clinical

        clinical = load_clinical(args.clinical)
    if not args.study.exists():
        raise UsageError(f"STUDY {args.study} does not exist.")
    launch_viewer(args.study, clinical=clinical)
    return EXIT_OK


_COMMANDS = {"analyze": _cmd_analyze, "view": _cmd_view, "demo": _cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return _COMMANDS[args.command](args, sys.stdout)
    except KeyboardInterrupt:
        return _fail("Interrupted.", EXIT_FAILURE, args)
    except (UsageError, ClinicalInputError) as exc:
        return _fail(str(exc), EXIT_USAGE, args)
    except NoImageSeriesError as exc:
        return _fail(str(exc), EXIT_NO_SERIES, args)
    except DicomReadError as exc:
        return _fail(f"Cannot read the study ({exc}).", EXIT_NO_SERIES, args)
    except CalcinosisError as exc:
        return _fail(str(exc), EXIT_FAILURE, args)
    except Exception as exc:  # noqa: BLE001 - the last line of defence prints one sentence
        return _fail(f"Unexpected {type(exc).__name__}: {_one_line(str(exc)) or 'no details'}"
                     " (run with --debug for the traceback).", EXIT_FAILURE, args)


def _fail(message: str, status: int, args: argparse.Namespace) -> int:
    if getattr(args, "debug", False):
        traceback.print_exc(file=sys.stderr)
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr, flush=True)
    return status


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _version() -> str:
    from napari_calcinosis import __version__

    return __version__
