"""Files on disk: writes that are atomic (a crash never leaves a half-written file under its
final name), and JSON read back with a sentence when it is not JSON."""

from ._atomic import atomic_open, atomic_write_bytes, atomic_write_text, atomic_write_with
from ._json import parse_json

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_text", "atomic_write_with",
           "parse_json"]
