"""Report building blocks shared by trustvl's jobs: Markdown/HTML tables, PNG plots, a page.

Plots use matplotlib's Agg backend (no display needed). HTML pages embed their PNGs by relative
path so the run folder can be copied or uploaded as is.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def fmt(value: Any, digits: int = 3) -> str:
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


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1d1d1f;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .55rem;text-align:right}th{background:#f3f3f6}
td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee;margin:.5rem 0}
.note{color:#555;font-size:.9rem}code{background:#f3f3f6;padding:0 .2rem}
"""


def html_page(title: str, sections: Sequence[tuple[str, str]], intro: str = "") -> str:
    """A standalone HTML page: ``sections`` are (heading, raw HTML body) pairs."""
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
    ]
    if intro:
        parts.append(f"<p class='note'>{intro}</p>")
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
    parts.append("</body></html>")
    return "\n".join(parts)


def html_image(rel_path: str, alt: str) -> str:
    return f"<img src='{html.escape(rel_path)}' alt='{html.escape(alt)}'>"


def plot_skew_per_prompt(
    path: Path, prompts: Sequence[str], max_skew: Sequence[float], min_skew: Sequence[float], title: str
) -> Path:
    """Horizontal bars of MaxSkew (right) and MinSkew (left) for each prompt."""
    n = len(prompts)
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.32 * n + 1.2)))
    y = range(n)
    ax.barh(list(y), list(max_skew), color="#d9534f", label="MaxSkew")
    ax.barh(list(y), list(min_skew), color="#337ab7", label="MinSkew")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(list(y))
    ax.set_yticklabels([p if len(p) <= 40 else p[:37] + "..." for p in prompts], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("skew (ln of observed / target share in top k)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_group_shares(
    path: Path,
    prompts: Sequence[str],
    group_names: Sequence[str],
    shares: Sequence[Sequence[float]],
    target: Sequence[float],
    title: str,
) -> Path:
    """Stacked bars: each prompt's top-k share per group, with the target as a reference bar."""
    labels = ["target", *prompts]
    rows = [list(target), *[list(s) for s in shares]]
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.32 * len(labels) + 1.2)))
    left = [0.0] * len(labels)
    cmap = plt.get_cmap("viridis", max(len(group_names), 2))
    for g, name in enumerate(group_names):
        vals = [r[g] for r in rows]
        ax.barh(range(len(labels)), vals, left=left, color=cmap(g), label=str(name))
        left = [a + b for a, b in zip(left, vals)]
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels([p if len(p) <= 40 else p[:37] + "..." for p in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the top k")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
