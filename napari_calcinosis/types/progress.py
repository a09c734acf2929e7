"""Progress reporting shared by every long step: ``progress(fraction, message)``.

A step that takes more than a moment accepts an optional ``progress`` callable and calls it
with the fraction done (0..1) and a short sentence. The command line prints it to stderr,
napari shows it in a progress bar; :func:`sub_progress` lets a step report its own 0..1
inside a share of its caller's range.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress", "clamp01", "no_progress", "percent", "sub_progress"]

#: ``progress(fraction, message)`` with ``fraction`` in 0..1.
Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """The progress sink used when the caller gives none."""


def clamp01(fraction: float) -> float:
    """``fraction`` limited to 0..1."""
    return min(max(float(fraction), 0.0), 1.0)


def percent(fraction: float) -> int:
    """Whole percent (0..100) of a fraction, clamped."""
    return int(round(100 * clamp01(fraction)))


def sub_progress(report: Progress | None, start: float, stop: float,
                 prefix: str = "") -> Progress:
    """A progress callable whose 0..1 maps onto ``start..stop`` of ``report``.

    Parameters
    ----------
    report : callable or None
        The caller's progress (``None``: nothing is reported).
    start, stop : float
        The share of the caller's range this step covers.
    prefix : str
        Put before every message (e.g. ``"CT 1: "``).
    """
    outer = report or no_progress

    def sub(fraction: float, message: str) -> None:
        outer(start + (stop - start) * clamp01(fraction), f"{prefix}{message}")

    return sub
