"""The report's content model: sections of blocks holding paragraphs, tables and figures.

Built by :func:`._content.build_report_content` (sections filled by :mod:`._sections`) and
rendered by :mod:`._html` and :mod:`._pdf`, so every format says the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Block", "Figure", "ReportContent", "Section", "Table"]


@dataclass
class Table:
    """A table: header row, body rows (all strings) and an optional caption."""

    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    key: str = ""


@dataclass
class Figure:
    """A figure: a PNG (key image) or an inline SVG (chart), with title and caption."""

    title: str
    caption: str
    png: bytes | None = None
    svg: str | None = None
    file_name: str = ""


@dataclass
class Block:
    """A run of content under an optional heading."""

    heading: str = ""
    paragraphs: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    labelled: list[tuple[str, list[str]]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


@dataclass
class Section:
    key: str
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class ReportContent:
    """Everything a report shows, in order."""

    title: str
    subtitle: str
    sections: list[Section]
    disclaimer: str

    def section(self, key: str) -> Section:
        """The section with key ``key`` (KeyError when absent)."""
        return next(s for s in self.sections if s.key == key)
