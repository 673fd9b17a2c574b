"""trustvl's one report writer: a :class:`Report` of sections renders to Markdown and to standalone HTML.

A section holds blocks: paragraphs (``str``; ``` `code` ``` and ``**bold**`` are kept in both formats),
:class:`Table`, :class:`Figure` (a PNG by relative path, so a run folder can be copied or uploaded as
is) and :class:`Links`. Every job (audit, α sweep, RaVL discovery, demo) builds one report and writes both
files with :meth:`Report.write`; :mod:`trustvl.evaluation.tables` builds the tables from typed results and
:mod:`trustvl.evaluation.plots` draws the figures.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Figure", "Links", "Report", "Section", "Table", "fmt", "html_table", "markdown_table"]


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats with ``digits`` decimals, everything else as ``str``."""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]


@dataclass
class Figure:
    """A PNG, ``path`` relative to the report's folder."""

    path: str
    alt: str


@dataclass
class Links:
    """A list of links to files of the run folder (relative paths)."""

    targets: list[str]


Block = str | Table | Figure | Links


@dataclass
class Section:
    heading: str
    blocks: list[Block] = field(default_factory=list)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1d1d1f;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .55rem;text-align:right}th{background:#f3f3f6}
td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee;margin:.5rem 0}
.note{color:#555;font-size:.9rem}code{background:#f3f3f6;padding:0 .2rem}
"""


def _inline_html(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _block_markdown(block: Block) -> str:
    if isinstance(block, Table):
        return markdown_table(block.headers, block.rows)
    if isinstance(block, Figure):
        return f"![{block.alt}]({block.path})"
    if isinstance(block, Links):
        return "\n".join(f"- [{t}]({t})" for t in block.targets)
    return block


def _block_html(block: Block) -> str:
    if isinstance(block, Table):
        return html_table(block.headers, block.rows)
    if isinstance(block, Figure):
        return f"<img src='{html.escape(block.path)}' alt='{html.escape(block.alt)}'>"
    if isinstance(block, Links):
        items = "".join(f"<li><a href='{html.escape(t)}'>{html.escape(t)}</a></li>" for t in block.targets)
        return f"<ul>{items}</ul>"
    return f"<p>{_inline_html(block)}</p>"


@dataclass
class Report:
    """A titled page: intro paragraphs, then sections (see the module docstring)."""

    title: str
    intro: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    def add(self, heading: str, *blocks: Block) -> Section:
        section = Section(heading, list(blocks))
        self.sections.append(section)
        return section

    def to_markdown(self) -> str:
        parts = [f"# {self.title}", *self.intro]
        for section in self.sections:
            parts.append(f"## {section.heading}")
            parts += [_block_markdown(b) for b in section.blocks]
        return "\n\n".join(parts) + "\n"

    def to_html(self) -> str:
        parts = [
            f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title.replace('`', ''))}</title>",
            f"<style>{_CSS}</style></head><body><h1>{_inline_html(self.title)}</h1>",
        ]
        parts += [f"<p class='note'>{_inline_html(p)}</p>" for p in self.intro]
        for section in self.sections:
            parts.append(
                f"<h2>{_inline_html(section.heading)}</h2>" + "".join(_block_html(b) for b in section.blocks)
            )
        parts.append("</body></html>")
        return "\n".join(parts)

    def write(
        self, folder: str | Path, markdown: str | None = "report.md", html_name: str | None = "report.html"
    ) -> None:
        """Write ``folder/markdown`` and ``folder/html_name`` (``None`` skips one). Callers write into a staging
        folder (:func:`trustvl.utils.io.atomic_output_dir`) so the run folder appears complete or not at all."""
        folder = Path(folder)
        if markdown:
            (folder / markdown).write_text(self.to_markdown(), encoding="utf-8")
        if html_name:
            (folder / html_name).write_text(self.to_html(), encoding="utf-8")
