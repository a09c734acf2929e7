"""The ``napari-calcinosis`` command line: argument parsing, exit codes, messages.

The interface is the contract's (``docs/contract.md``, "Command line"); the work is done by
:func:`napari_calcinosis.run.run_analysis` and, for ``view``, by the napari viewer in
:mod:`napari_calcinosis._qt.viewer`.

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
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from napari_calcinosis import __version__
from napari_calcinosis.clinical import load_clinical
from napari_calcinosis.phantom import SAMPLE_CLINICAL, sample_study_path
from napari_calcinosis.report import CONTRACT_FORMATS, WRITERS, default_formats, formats_to_send
from napari_calcinosis.run import run_analysis
from napari_calcinosis.types import (
    CalcinosisError,
    ClinicalInputError,
    DicomReadError,
    NoImageSeriesError,
    UsageError,
    sub_progress,
)
from napari_calcinosis.types.progress import percent

PROG = "napari-calcinosis"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NO_SERIES = 0, 1, 2, 3
DEFAULT_OUT = Path("calcinosis-report")

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
                             "calcifications on chest radiographs and body CT (DICOM).",
                             epilog="Exit status: 0 success, 2 bad usage or clinical file, 3 "
                             "no usable image series, 1 any other failure. The outputs, the "
                             "clinical file and findings.json are described in docs/contract.md "
                             "of the source repository.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=_ArgumentParser)
    analyze = sub.add_parser("analyze", help="analyse a study and write the report files")
    analyze.add_argument("study", metavar="STUDY",
                         help="DICOM file, folder (searched recursively), DICOMDIR, .zip, or "
                              "pacs://SERVER/STUDYUID (a study on a PACS of the servers file)")
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
    analyze.add_argument("--send", action="store_true",
                         help="with pacs://: store the SR, SEG and key images back on that "
                              "PACS")
    _add_common(analyze)
    view = sub.add_parser("view", help="open napari with the study and the panels docked")
    view.add_argument("study", metavar="STUDY", type=Path)
    _add_clinical(view)
    view.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    batch = sub.add_parser("batch", help="analyse every study of an archive on Dask and "
                                         "write cohort tables")
    batch.add_argument("archives", metavar="ARCHIVE", nargs="+",
                       help="folders (searched recursively), DICOMDIRs, .zip files, "
                            "pacs://SERVER/STUDYUID, or pacs://SERVER with --uids")
    batch.add_argument("--out", metavar="DIR", type=Path, required=True,
                       help="output folder: DIR/<study>/ per study, studies.csv, "
                            "studies.parquet, lesions.parquet")
    batch.add_argument("--clinical-dir", metavar="DIR", type=Path, default=None,
                       help="clinical files named <StudyInstanceUID>.json or "
                            "<PatientID>.json")
    batch.add_argument("--clinical-csv", metavar="FILE", type=Path, default=None,
                       help="one row of labs and history per study_instance_uid or "
                            "patient_id (columns in docs/contract.md)")
    batch.add_argument("--workers", metavar="N", type=int, default=2,
                       help="local worker processes (default 2; ignored with --scheduler)")
    batch.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    batch.add_argument("--memory-limit", metavar="SIZE", default="4GiB",
                       help="memory per local worker (default 4GiB)")
    batch.add_argument("--resume", action="store_true",
                       help="skip studies already done with the same version and options")
    batch.add_argument("--threshold-hu", metavar="N", type=float, default=None)
    batch.add_argument("--formats", metavar="LIST", default=",".join(default_formats()))
    batch.add_argument("--anonymize", action="store_true",
                       help="new UIDs, hashed study folders, no identifying values")
    batch.add_argument("--uids", metavar="FILE", type=Path, default=None,
                       help="StudyInstanceUIDs, one a line, of the studies to take from "
                            "each pacs://SERVER given")
    batch.add_argument("--send", action="store_true",
                       help="store each PACS study's SR, SEG and key images back on its PACS")
    _add_common(batch)
    pacs = sub.add_parser("pacs", help="query a PACS of the servers file")
    pacs_sub = pacs.add_subparsers(dest="pacs_command", metavar="ACTION", required=True,
                                   parser_class=_ArgumentParser)
    find = pacs_sub.add_parser("find", help="list the studies that match")
    find.add_argument("server", metavar="SERVER", help="a server name of the servers file")
    for option, what in (("--patient-id", "PatientID"), ("--patient-name", "PatientName"),
                         ("--accession", "AccessionNumber"),
                         ("--date-from", "first StudyDate, YYYYMMDD"),
                         ("--date-to", "last StudyDate, YYYYMMDD"),
                         ("--modality", "a modality in the study, e.g. CT")):
        find.add_argument(option, default="", help=what)
    find.add_argument("--dimse", action="store_true", help="C-FIND instead of DICOMweb")
    find.add_argument("--debug", action="store_true", help="show tracebacks on errors")
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
        done = percent(fraction)
        step = re.sub(r"\d+", "#", message)
        last_percent, last_step = self._last
        if step == last_step and done - last_percent < 10:
            return
        self._last = (done, step)
        print(f"[{done:3d}%] {message}", file=self.stream, flush=True)

    def warn(self, message: str) -> None:
        """A warning: printed even with ``--quiet`` (it is not progress)."""
        print(f"warning: {message}", file=self.stream, flush=True)


def _cmd_analyze(args: argparse.Namespace, out: TextIO) -> int:
    from napari_calcinosis.pacs import parse_pacs_url

    formats = parse_formats(args.formats)
    if args.send:
        formats = formats_to_send(formats)
    printer = ProgressPrinter(quiet=args.quiet)
    remote = parse_pacs_url(args.study)
    if args.send and remote is None:
        raise UsageError("--send needs a pacs://SERVER/STUDYUID study.")
    if args.send and args.anonymize:
        raise UsageError("--send with --anonymize would store the results under a new, "
                         "anonymous study: not sent.")
    client = None
    if remote is not None:
        client = _pacs_client(remote[0], dimse=False)
        printer(0.0, f"Retrieving study {remote[1]} from PACS {remote[0]}")
        study = client.retrieve_study(remote[1])
    else:
        study = Path(args.study)
    written = run_analysis(
        study, args.out, formats=formats, clinical_path=args.clinical,
        series_uids=args.series, threshold_hu=args.threshold_hu, anonymize=args.anonymize,
        use_annotations=not args.ignore_annotations, progress=printer, warn=printer.warn)
    for path in written:
        print(path, file=out)
    if args.send:
        names = client.store_outputs(written)
        printer.warn(f"stored {len(names)} file(s) ({', '.join(names)}) on PACS "
                     f"{remote[0]} in study {remote[1]}")
    return EXIT_OK


def _pacs_client(name: str, *, dimse: bool):
    from napari_calcinosis.pacs import PacsClient

    return PacsClient.named(name, protocol="dimse" if dimse else "auto")


def _cmd_pacs(args: argparse.Namespace, out: TextIO) -> int:
    client = _pacs_client(args.server, dimse=args.dimse)
    hits = client.find_studies(patient_id=args.patient_id, patient_name=args.patient_name,
                               accession=args.accession, date_from=args.date_from,
                               date_to=args.date_to, modality=args.modality)
    print("\t".join(["StudyInstanceUID", "StudyDate", "PatientID", "PatientName",
                     "Modalities", "Instances", "Description"]), file=out)
    for hit in hits:
        print("\t".join([hit.study_uid, hit.study_date, hit.patient_id, hit.patient_name,
                         hit.modalities, "" if hit.instances is None else str(hit.instances),
                         hit.description]), file=out)
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    # Building takes a while only the first time (the study is cached): its own progress run.
    building = ProgressPrinter(quiet=args.quiet)
    building(0.0, "Building the bundled sample study 'generalized' (cached after first use)")
    study_path = sample_study_path("generalized",
                                   progress=sub_progress(building, 0.0, 1.0, "Building: "))
    printer = ProgressPrinter(quiet=args.quiet)
    written = run_analysis(study_path, args.out, formats=default_formats(),
                           clinical_data=SAMPLE_CLINICAL["generalized"],
                           progress=printer, warn=printer.warn)
    print(f"Sample study: {study_path} (with the seed case's labs and history)", file=out)
    print(f"Outputs in {args.out.resolve()}:", file=out)
    for path in written:
        print(f"  {path}", file=out)
    return EXIT_OK


def _cmd_view(args: argparse.Namespace, out: TextIO) -> int:
    clinical = None
    if args.clinical is not None:
        clinical = load_clinical(args.clinical)
    if not args.study.exists():
        raise UsageError(f"STUDY {args.study} does not exist.")
    # napari and Qt are imported only for this command (seconds to import, needs a display).
    from napari_calcinosis._qt.viewer import launch_viewer

    launch_viewer(args.study, clinical=clinical)
    return EXIT_OK


def _cmd_batch(args: argparse.Namespace, out: TextIO) -> int:
    from napari_calcinosis.batch import BatchOptions, run_batch

    if args.workers < 1:
        raise UsageError("--workers must be 1 or more.")
    if args.clinical_dir is not None and args.clinical_csv is not None:
        raise UsageError("Give --clinical-dir or --clinical-csv, not both.")
    if args.clinical_dir is not None and not args.clinical_dir.is_dir():
        raise UsageError(f"--clinical-dir {args.clinical_dir} is not a folder.")
    archives, remote = _batch_targets(args)
    formats = parse_formats(args.formats)
    options = BatchOptions(out=args.out, formats=formats_to_send(formats) if args.send
                           else formats,
                           workers=args.workers, scheduler=args.scheduler, resume=args.resume,
                           anonymize=args.anonymize, clinical_dir=args.clinical_dir,
                           clinical_csv=args.clinical_csv,
                           threshold_hu=args.threshold_hu, memory_limit=args.memory_limit,
                           send=args.send)
    log = (lambda message: None) if args.quiet else None
    summary = run_batch(archives, options, log=log, pacs_studies=remote)
    for path in summary.tables:
        print(path, file=out)
    if summary.failed:
        raise CalcinosisError(f"{summary.failed} of {summary.studies} studies failed; their "
                              f"errors are in {args.out / 'studies.csv'} and "
                              "<study>/error.txt.")
    return EXIT_OK


def _batch_targets(args: argparse.Namespace) -> tuple[list[Path], list[tuple[str, str]]]:
    """The local archives and the (server, StudyInstanceUID) pairs of a ``batch`` command."""
    from napari_calcinosis.batch import read_uid_list
    from napari_calcinosis.pacs import parse_pacs_target

    archives: list[Path] = []
    remote: list[tuple[str, str]] = []
    bare: list[str] = []
    for item in args.archives:
        target = parse_pacs_target(item)
        if target is None and item.lower().startswith("pacs:"):
            raise UsageError(f"{item} is neither pacs://SERVER/STUDYUID nor pacs://SERVER.")
        if target is None:
            archives.append(Path(item))
        elif target[1]:
            remote.append(target)
        else:
            bare.append(target[0])
    if args.uids is not None and not bare:
        raise UsageError("--uids needs a pacs://SERVER argument: the server the studies "
                         "are on.")
    if bare and args.uids is None:
        raise UsageError(f"pacs://{bare[0]} needs --uids FILE (or name each study as "
                         f"pacs://{bare[0]}/STUDYUID).")
    if bare:
        uids = read_uid_list(args.uids)
        remote += [(server, uid) for server in bare for uid in uids]
    if args.send and not remote:
        raise UsageError("--send needs studies on a PACS (pacs://SERVER/STUDYUID, or "
                         "pacs://SERVER with --uids FILE).")
    if args.send and args.anonymize:
        raise UsageError("--send with --anonymize would store the results under new, "
                         "anonymous studies: not sent.")
    return archives, remote


_COMMANDS = {"analyze": _cmd_analyze, "view": _cmd_view, "demo": _cmd_demo,
             "batch": _cmd_batch, "pacs": _cmd_pacs}


def _warning_as_sentence(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning a library raised outside the places that turn them into findings
    warnings: one line on stderr, never a source line (``--debug`` shows them raw)."""
    text = str(message).split(" Please see <")[0].strip()
    print(f"warning: {text}", file=sys.stderr, flush=True)


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
    shown = warnings.showwarning
    if not getattr(args, "debug", False):
        warnings.showwarning = _warning_as_sentence
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
    finally:
        warnings.showwarning = shown


def _fail(message: str, status: int, args: argparse.Namespace) -> int:
    if getattr(args, "debug", False):
        traceback.print_exc(file=sys.stderr)
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr, flush=True)
    return status


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _version() -> str:
    return __version__
