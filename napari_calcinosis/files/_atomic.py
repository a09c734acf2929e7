"""Atomic file writes: a crash never leaves a half-written file under its final name.

The data go to a temporary file in the destination folder (same file system, so the final
rename is atomic), are flushed and fsync'ed, and only then replace the final name with
``os.replace``. On any failure the temporary file is removed and an existing file under the
final name is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_text", "atomic_write_with"]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", *,
                encoding: str | None = "utf-8", newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` only when the ``with`` block succeeds.

    Parameters
    ----------
    path : str or os.PathLike
        Final file name. Its folder must exist.
    mode : str
        ``"w"`` (text) or ``"wb"`` (binary).
    encoding : str or None
        Text encoding (ignored in binary mode).
    newline : str or None
        Passed to :func:`open` in text mode (``""`` for the csv module).

    Yields
    ------
    IO
        The open temporary file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    final = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    with _replacing(final, tmp_name):
        kwargs = {} if mode == "wb" else {"encoding": encoding, "newline": newline}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_open(path, "w", encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def atomic_write_with(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Let ``write(temp_path)`` produce a file, then move it atomically to ``path``.

    For libraries that insist on writing to a file name themselves (pydicom's
    ``dcmwrite``, matplotlib's ``savefig``): the callable writes the temporary path, which is
    fsync'ed and renamed only when it returns without raising.
    """
    final = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    with _replacing(final, tmp_name):
        write(tmp_name)
        with open(tmp_name, "rb+") as handle:
            os.fsync(handle.fileno())
    return final


@contextlib.contextmanager
def _replacing(final: Path, tmp_name: str) -> Iterator[None]:
    """Move the temporary file over ``final`` when the block succeeds; delete it otherwise."""
    try:
        yield
        _copy_permissions(final, tmp_name)
        os.replace(tmp_name, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(final.parent)


def _copy_permissions(final: Path, tmp_name: str) -> None:
    # mkstemp creates 0600 files; keep the permissions of the file being replaced, else give
    # the usual rw-r--r-- (reading the umask would need os.umask, which is not thread-safe).
    try:
        mode = final.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    os.chmod(tmp_name, mode)


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable; not every platform lets a directory be opened.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
