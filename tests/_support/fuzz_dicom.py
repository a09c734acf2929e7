"""Mutated DICOM files for the robustness test (issue 15), and a runner.

``mutations(seed, n)`` gives ``n`` named mutations of one CT slice: every case the issue
lists (matrix missing, 0 or 65535; positions and spacings of 1e308, 1e-300, 1e300; rescale
-1, 0, 1e300; modality missing or MR; blank UIDs; frames, bits and colour that disagree with
the pixel data; truncated headers and pixel data; garbled file meta; byte flips) and seeded
random values in the attributes that matter. ``python fuzz_dicom.py SLAB OUT N SEED`` runs
each mutation alone and mixed into the valid series, in this process, and writes a JSON
report: per run the outcome, the error text, the time, and whether the mutated file was
named; the process's own peak memory.
"""

from __future__ import annotations

import io
import json
import random
import resource
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

Mutation = tuple[str, Callable[[bytes], bytes]]


def _edit(change: Callable[[Dataset], None]) -> Callable[[bytes], bytes]:
    def apply(raw: bytes) -> bytes:
        ds = pydicom.dcmread(io.BytesIO(raw), force=True)
        change(ds)
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=False)
        return out.getvalue()
    return apply


def _set(keyword: str, value) -> Callable[[Dataset], None]:
    def change(ds: Dataset) -> None:
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return change


def _raw_set(keyword: str, text: str) -> Callable[[Dataset], None]:
    """Store a value as raw text, bypassing pydicom's validation (what broken writers do)."""
    def change(ds: Dataset) -> None:
        tag = pydicom.datadict.tag_for_keyword(keyword)
        vr = pydicom.datadict.dictionary_VR(tag)
        ds[tag] = pydicom.dataelem.RawDataElement(
            pydicom.tag.Tag(tag), vr, len(text.encode()), text.encode(), 0, False, True)
    return change


def _truncate(fraction: float) -> Callable[[bytes], bytes]:
    return lambda raw: raw[:max(1, int(len(raw) * fraction))]


def _flip(seed: int, count: int) -> Callable[[bytes], bytes]:
    def apply(raw: bytes) -> bytes:
        rng = random.Random(seed)
        data = bytearray(raw)
        for _ in range(count):
            data[rng.randrange(132, min(len(data), 2000))] = rng.randrange(256)
        return bytes(data)
    return apply


def _garble_meta_vr(raw: bytes) -> bytes:
    data = bytearray(raw)
    at = data.find(b"\x02\x00\x10\x00UI")  # (0002,0010) TransferSyntaxUID, explicit VR
    if at >= 0:
        data[at + 4:at + 6] = b"ZZ"
    return bytes(data)


def _set_syntax(raw: bytes, uid: bytes) -> bytes:
    """Claim another transfer syntax in the file meta (the data stay as they are)."""
    at = raw.find(b"\x02\x00\x10\x00UI")
    if at < 0:
        return raw
    length = int.from_bytes(raw[at + 6:at + 8], "little")
    return raw[:at + 6] + len(uid).to_bytes(2, "little") + uid + raw[at + 8 + length:]


FIXED: list[Mutation] = [
    ("rows-0", _edit(_set("Rows", 0))), ("columns-0", _edit(_set("Columns", 0))),
    ("rows-missing", _edit(_set("Rows", None))), ("columns-missing", _edit(_set("Columns", None))),
    ("matrix-65535", _edit(lambda ds: (_set("Rows", 65535)(ds), _set("Columns", 65535)(ds)))),
    ("position-1e308", _edit(_set("ImagePositionPatient", [1e308, 1e308, 1e308]))),
    ("position-missing", _edit(_set("ImagePositionPatient", None))),
    ("position-text", _edit(_raw_set("ImagePositionPatient", "a\\b\\c "))),
    ("orientation-zero", _edit(_set("ImageOrientationPatient", [0, 0, 0, 0, 0, 0]))),
    ("spacing-1e-300", _edit(_set("PixelSpacing", [1e-300, 1e-300]))),
    ("spacing-1e300", _edit(_set("PixelSpacing", [1e300, 1e300]))),
    ("spacing-negative", _edit(_set("PixelSpacing", [-0.7, -0.7]))),
    ("spacing-missing", _edit(_set("PixelSpacing", None))),
    ("slope-minus-1", _edit(_set("RescaleSlope", -1))),
    ("slope-0", _edit(_set("RescaleSlope", 0))),
    ("slope-1e300", _edit(_set("RescaleSlope", 1e300))),
    ("slope-text", _edit(_raw_set("RescaleSlope", "abc "))),
    ("intercept-1e300", _edit(_set("RescaleIntercept", 1e300))),
    ("modality-missing", _edit(_set("Modality", None))),
    ("modality-mr", _edit(_set("Modality", "MR"))),
    ("series-uid-missing", _edit(_set("SeriesInstanceUID", None))),
    ("series-uid-blank", _edit(_set("SeriesInstanceUID", ""))),
    ("sop-uid-blank", _edit(_set("SOPInstanceUID", ""))),
    ("frames-2", _edit(_set("NumberOfFrames", 2))), ("frames-0", _edit(_set("NumberOfFrames", 0))),
    ("frames-text", _edit(_raw_set("NumberOfFrames", "x "))),
    ("bits-12", _edit(_set("BitsAllocated", 12))), ("bits-64", _edit(_set("BitsAllocated", 64))),
    ("rgb", _edit(lambda ds: (_set("SamplesPerPixel", 3)(ds),
                              _set("PhotometricInterpretation", "RGB")(ds)))),
    ("palette", _edit(_set("PhotometricInterpretation", "PALETTE COLOR"))),
    ("thickness-negative", _edit(_set("SliceThickness", -3))),
    ("syntax-jpeg", lambda raw: _set_syntax(raw, b"1.2.840.10008.1.2.4.50")),
    ("syntax-big-endian", lambda raw: _set_syntax(raw, b"1.2.840.10008.1.2.2\0")),
    ("meta-vr-garbled", _garble_meta_vr),
    ("cut-in-header", _truncate(0.02)), ("cut-before-pixels", _truncate(0.06)),
    ("cut-in-pixels", _truncate(0.5)), ("empty", lambda raw: b""),
    ("not-dicom", lambda raw: b"hello, world\n" * 20),
]

_ATTRIBUTES = ["Rows", "Columns", "ImagePositionPatient", "ImageOrientationPatient",
               "PixelSpacing", "RescaleSlope", "RescaleIntercept", "SliceThickness",
               "Modality", "SeriesInstanceUID", "NumberOfFrames", "BitsAllocated",
               "BitsStored", "HighBit", "PixelRepresentation", "SamplesPerPixel",
               "PhotometricInterpretation", "InstanceNumber", "SliceLocation",
               "StudyInstanceUID", "PixelPaddingValue", "WindowCenter", "WindowWidth"]
_VALUES = ["", "0", "-1", "1e308", "-1e308", "1e-300", "nan", "inf", "65535", "4294967296",
           "abc", "1\\2", "1\\2\\3\\4\\5\\6\\7", " ", "\\\\", "0.5\\0.5", "-0", "2"]


def mutations(seed: int, n: int) -> list[Mutation]:
    """The fixed cases first, then seeded random ones, ``n`` in all."""
    rng = random.Random(seed)
    out = list(FIXED)
    k = 0
    while len(out) < n:
        k += 1
        if k % 4 == 0:
            out.append((f"flip-{k}", _flip(seed * 1000 + k, rng.randrange(1, 6))))
            continue
        keyword, value = rng.choice(_ATTRIBUTES), rng.choice(_VALUES)
        out.append((f"random-{k}-{keyword}={value!r}", _edit(_raw_set(keyword, value + (
            " " if len(value) % 2 else "")))))
    return out[:n]


def peak_mb() -> float:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss`` it does not
    carry over the parent's peak across ``exec``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def _run(argv: list[str], limit_s: int) -> dict:
    from napari_calcinosis import cli

    err = io.StringIO()
    start = time.monotonic()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit_s)
    real_err = sys.stderr
    sys.stderr = err
    try:
        status = cli.main(argv)
        outcome = "exit"
    except _Timeout:
        status, outcome = None, "timeout"
    except BaseException:  # noqa: BLE001 - the test counts these
        status, outcome = None, "traceback"
        err.write(traceback.format_exc())
    finally:
        signal.alarm(0)
        sys.stderr = real_err
    return {"status": status, "outcome": outcome, "stderr": err.getvalue(),
            "seconds": round(time.monotonic() - start, 2)}


def main(slab: Path, out: Path, n: int, seed: int, limit_s: int = 120) -> None:
    files = sorted(slab.glob("*.dcm"))
    victim = files[len(files) // 2]
    raw = victim.read_bytes()
    report = []
    for k, (name, mutate) in enumerate(mutations(seed, n)):
        try:
            data = mutate(raw)
        except Exception as exc:  # noqa: BLE001 - a mutation pydicom refuses to write
            report.append({"name": name, "skipped": f"cannot be written ({exc})"})
            continue
        alone = out / f"alone-{k}"
        alone.mkdir(parents=True)
        (alone / "mutated.dcm").write_bytes(data)
        mixed = out / f"mixed-{k}"
        mixed.mkdir()
        for path in files:
            if path != victim:
                shutil.copy(path, mixed / path.name)
        (mixed / "mutated.dcm").write_bytes(data)
        entry = {"name": name}
        entry["alone"] = _run(["analyze", str(alone), "--out", str(out / f"o-alone-{k}"),
                               "--quiet", "--formats", "json"], limit_s)
        entry["mixed"] = _run(["analyze", str(mixed), "--out", str(out / f"o-mixed-{k}"),
                               "--quiet", "--formats", "json"], limit_s)
        findings = out / f"o-mixed-{k}" / "findings.json"
        if findings.exists():
            doc = json.loads(findings.read_text(encoding="utf-8"))
            entry["mixed"]["slices"] = max([s["shape"][0] for s in doc["series"]
                                           if s["kind"] == "volume"] or [0])
            entry["mixed"]["ct_analysed"] = any(
                s["kind"] == "volume" and s["shape"][0] >= len(files) - 1 and "contrast" in s
                for s in doc["series"])
            entry["mixed"]["named"] = any("mutated.dcm" in w for w in doc["warnings"])
        report.append(entry)
        shutil.rmtree(alone)
        shutil.rmtree(mixed)
    (out / "report.json").write_text(json.dumps({"runs": report, "peak_mb": peak_mb()},
                                                indent=1), encoding="utf-8")


def real_files() -> list[Path]:
    """Every DICOM file pydicom and pydicom-data ship (read from disk, nothing downloaded)."""
    import pydicom.data

    folders = [Path(pydicom.data.__file__).parent / "test_files"]
    try:
        import data_store  # pydicom-data

        folders.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    return sorted(p for folder in folders for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() not in (".py", ".pyc", ".json", ".txt",
                                                              ".gz", ".bz2", ".zip", ".xz"))


def main_files(out: Path, limit_s: int = 120) -> None:
    report = []
    for k, path in enumerate(real_files()):
        study = out / f"file-{k}"
        study.mkdir(parents=True)
        shutil.copy(path, study / path.name)
        entry = {"name": path.name, **_run(["analyze", str(study), "--out",
                                            str(out / f"o-file-{k}"), "--quiet", "--formats",
                                            "json"], limit_s)}
        report.append(entry)
        shutil.rmtree(study)
    (out / "files.json").write_text(json.dumps({"runs": report, "peak_mb": peak_mb()},
                                               indent=1), encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1] == "--files":
        main_files(Path(sys.argv[2]))
    else:
        main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
