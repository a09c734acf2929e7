"""Notification text: what a toast shows first is the file's name, not its folders.

The analysis names files by their full path (the command line prints it whole). A napari
toast shows only its first line or so: a message that starts with ``/home/.../study/IM0001:``
is cut off before it says anything. :func:`toast_text` moves a leading path's folder to the
end of its line, so the toast starts with the file name and the problem.
"""

import re

__all__ = ["toast_text"]

# A line that starts with an absolute path (POSIX or Windows) followed by ": ".
_LEADING_PATH = re.compile(r"^(?P<path>(?:/|[A-Za-z]:[\\/])[^\n:]*?[^\n:\\/])(?P<rest>: .*)$")


def toast_text(message: str) -> str:
    """``message`` with each line's leading absolute path shortened to its file name and its
    folder named at the end of the line (``IM0001: empty file (in /data/study)``)."""
    return "\n".join(_shorten(line) for line in str(message).split("\n"))


def _shorten(line: str) -> str:
    match = _LEADING_PATH.match(line)
    if match is None:
        return line
    path = match["path"]
    windows = re.match(r"^[A-Za-z]:[\\/]", path) is not None
    sep = "\\" if windows and "\\" in path else "/"
    folder, _, name = path.rpartition(sep)
    if not name or not folder:
        return line
    rest = match["rest"].rstrip()
    end = "" if not rest.endswith(".") else "."
    rest = rest[:-1] if end else rest
    return f"{name}{rest} (in {folder}){end}"
