"""``report.html``: the report content as one self-contained HTML page that prints well.

Images are embedded as ``data:`` URIs and the symmetry chart is inline SVG, so the file can
be mailed or archived alone. The print style sheet lays it out on A4 and keeps tables,
figures and each differential entry from breaking across pages; ``report.pdf`` renders this
same page (:mod:`.pdf_report`). Every text goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

from napari_calcinosis.files import atomic_write_text
from napari_calcinosis.types import Findings

from ._blocks import Block, Figure, ReportContent, Section, Table
from ._content import build_report_content

__all__ = ["HTML_FILENAME", "render_html", "write_html"]

HTML_FILENAME = "report.html"

CSS = """
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; font-size: 10.5pt;
       color: #111; max-width: 190mm; margin: 1.5em auto; line-height: 1.35; }
header { border-bottom: 2px solid #333; margin-bottom: 0.8em; }
h1 { font-size: 17pt; margin: 0 0 0.2em 0; }
.subtitle { color: #555; font-size: 9pt; margin: 0 0 0.5em 0; }
h2 { font-size: 12.5pt; margin: 1.1em 0 0.35em 0; border-bottom: 1px solid #bbb;
     break-after: avoid; page-break-after: avoid; }
h3 { font-size: 10.5pt; margin: 0.8em 0 0.25em 0; break-after: avoid; }
p { margin: 0.25em 0; }
ul { margin: 0.25em 0 0.4em 1.2em; padding: 0; }
table { border-collapse: collapse; margin: 0.4em 0; font-size: 9pt; width: 100%;
        break-inside: avoid; page-break-inside: avoid; }
table.long { break-inside: auto; page-break-inside: auto; }
tr { break-inside: avoid; page-break-inside: avoid; }
th, td { border: 1px solid #bbb; padding: 2px 5px; text-align: left; vertical-align: top; }
th { background: #eee; }
caption { caption-side: bottom; text-align: left; font-size: 8.5pt; color: #444;
          padding-top: 2px; }
figure { margin: 0.5em 0; break-inside: avoid; page-break-inside: avoid; }
figure img { max-width: 100%; max-height: 120mm; display: block; background: #000; }
figcaption { font-size: 8.5pt; color: #333; margin-top: 2px; }
.entry { border-left: 3px solid #4a7ab5;
         padding-left: 8px; margin: 0.5em 0; }
.label { font-weight: bold; }
section.disclaimer { border: 2px solid #b30000; padding: 0.2em 0.8em 0.5em 0.8em;
                     margin-top: 1.2em; break-inside: avoid; }
@page { size: A4; margin: 16mm 14mm 18mm 14mm;
        @bottom-center { content: "Decision support, not a diagnosis · page "
                                  counter(page) " of " counter(pages);
                         font-size: 8pt; color: #555; } }
@media print { body { margin: 0; max-width: none; } a { color: inherit; } }
"""


def render_html(content: ReportContent) -> str:
    """The whole page as a string."""
    body = "\n".join(_section(section) for section in content.sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{escape(content.title)}</title>\n"
        "<meta name=\"generator\" content=\"napari-calcinosis\">\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{escape(content.title)}</h1>"
        f"<p class=\"subtitle\">{escape(content.subtitle)}</p></header>\n"
        f"{body}\n</body>\n</html>\n")


def _section(section: Section) -> str:
    css = f' class="{section.key}"' if section.key == "disclaimer" else ""
    blocks = "\n".join(_block(block, section.key) for block in section.blocks)
    return (f'<section id="{escape(section.key)}"{css}>\n<h2>{escape(section.title)}</h2>\n'
            f"{blocks}\n</section>")


def _block(block: Block, key: str) -> str:
    parts = []
    if block.heading:
        parts.append(f"<h3>{escape(block.heading)}</h3>")
    parts += [f"<p>{escape(text)}</p>" for text in block.paragraphs]
    if block.items:
        parts.append("<ul>" + "".join(f"<li>{escape(i)}</li>" for i in block.items) + "</ul>")
    for label, values in block.labelled:
        parts.append(f'<p><span class="label">{escape(label)}:</span> '
                     f"{escape('; '.join(values))}</p>")
    parts += [_table(table) for table in block.tables]
    parts += [_figure(figure) for figure in block.figures]
    inner = "\n".join(parts)
    return f'<div class="entry">{inner}</div>' if key == "impression" and block.heading \
        else inner


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.header)
    rows = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in table.rows)
    caption = f"<caption>{escape(table.caption)}</caption>" if table.caption else ""
    css = ' class="long"' if len(table.rows) > 25 else ""
    key = f' data-key="{escape(table.key)}"' if table.key else ""
    return (f"<table{css}{key}>{caption}<thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _figure(figure: Figure) -> str:
    if figure.png is not None:
        data = base64.b64encode(figure.png).decode("ascii")
        media = (f'<img src="data:image/png;base64,{data}" alt="{escape(figure.title)}">')
    else:
        media = figure.svg or ""  # built by content_findings.symmetry_svg with escaped text
    return (f"<figure>{media}<figcaption><b>{escape(figure.title)}.</b> "
            f"{escape(figure.caption)}</figcaption></figure>")


def write_html(findings: Findings, out_dir: str | Path, context: Any = None) -> list[Path]:
    """Format writer ``html``: ``report.html`` in ``out_dir``, written atomically."""
    html_text = render_html(build_report_content(findings, context))
    return [atomic_write_text(Path(out_dir) / HTML_FILENAME, html_text)]
