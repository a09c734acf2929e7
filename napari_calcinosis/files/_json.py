"""JSON text read back with a clear sentence when it is not JSON."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["parse_json"]


def parse_json(text: str, *, what: str, error: type[Exception]) -> Any:
    """``json.loads`` whose failure is one sentence naming the document.

    Parameters
    ----------
    text : str
        The JSON text.
    what : str
        The document as a reader knows it (``"Clinical file /x/clinical.json"``).
    error : type of Exception
        Raised (chained) when ``text`` is not JSON.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON ({exc.msg} at line {exc.lineno}, "
                    f"column {exc.colno}).") from exc
    except RecursionError as exc:
        raise error(f"{what} is nested too deeply to be read.") from exc
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise error(f"{what} holds a value that cannot be read ({exc}).") from exc
