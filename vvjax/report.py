"""The reproduction report: sections of tables and figures, written as Markdown and as one
self-contained HTML file (figures embedded).

Each experiment's report module (:mod:`vvjax.reports`) builds its :class:`Section` from its
finished jobs (``section(jobs, *, full, smoke)``); :mod:`vvjax.reproduce` collects them and calls
:func:`write_report`. A table compares our numbers with the paper's (``docs/paper.md`` §8) and
explains every difference in one sentence. The jobs of a sweep arrive labelled
``"<sweep>/<point>"``: :func:`sweep_groups` groups them and :func:`member_rows` gives the sweep's
rows, one per member, as :func:`vvjax.results.load_sweep` reads them from disk.
"""

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from vvjax.results import atomic_write_bytes, expand_members, flatten

__all__ = ["JobResult", "Table", "Figure", "Section", "sweep_groups", "member_rows", "fmt",
           "render_markdown", "render_html", "write_report"]


class JobResult(NamedTuple):
    """A finished job: its label (``"preset=random"``), folder and ``metrics.json`` content."""

    label: str
    folder: Path
    metrics: dict[str, Any]


class Table(NamedTuple):
    """A table: column names, rows of cells (strings) and a caption."""

    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str = ""


class Figure(NamedTuple):
    """A figure file (PNG) and its caption."""

    path: Path
    caption: str


class Section(NamedTuple):
    """One experiment's part of the report.

    Attributes:
      key: the experiment's name (``"neuron_sharing"``); also the HTML anchor.
      title: heading. command: the command that reproduces it alone.
      text: paragraphs (Markdown inline syntax: backticks, ``**bold**``).
      tables: the comparison tables; figures: its figures.
    """

    key: str
    title: str
    command: str
    text: Sequence[str]
    tables: Sequence[Table]
    figures: Sequence[Figure]


def sweep_groups(jobs: Sequence[JobResult]) -> dict[str, list[JobResult]]:
    """Jobs by sweep: the label's part before ``"/"`` (a job outside a sweep is a group of one,
    under its own label), in the order they came."""
    out: dict[str, list[JobResult]] = {}
    for j in jobs:
        out.setdefault(j.label.split("/", 1)[0], []).append(j)
    return out


def member_rows(jobs: Sequence[JobResult]) -> list[dict[str, Any]]:
    """One flat row per member of the jobs (:func:`vvjax.results.expand_members`; a job without
    ``members`` is one row): the job's metrics as dotted keys, ``job`` its label, plus the
    member's keys, as in the sweep's ``summary.csv``."""
    return expand_members([{"job": j.label, **flatten(j.metrics)} for j in jobs])


def fmt(x: Any, digits: int = 3) -> str:
    """A number as short text: integers as they are, floats with ``digits`` significant digits,
    ranges ``[a, b]`` as ``a–b``; ``None`` as ``—``."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    if isinstance(x, (list, tuple)) and len(x) == 2:
        return f"{fmt(x[0], digits)}–{fmt(x[1], digits)}"
    return str(x)


def _md_table(t: Table) -> str:
    out = []
    if t.caption:
        out.append(f"*{t.caption}*\n")
    out.append("| " + " | ".join(t.columns) + " |")
    out.append("|" + "---|" * len(t.columns))
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in t.rows]
    return "\n".join(out)


def render_markdown(sections: Sequence[Section], root: Path, *, title: str,
                    preamble: Sequence[str] = ()) -> str:
    """The report as Markdown; figure links are relative to ``root`` (the report's folder)."""
    out = [f"# {title}", "", *[p + "\n" for p in preamble], "## Contents", ""]
    out += [f"- [{s.title}](#{s.key})" for s in sections]
    for s in sections:
        out += ["", f'<a id="{s.key}"></a>', "", f"## {s.title}", "",
                f"Reproduce alone: `{s.command}`", ""]
        out += [p + "\n" for p in s.text]
        for t in s.tables:
            out += [_md_table(t), ""]
        for f in s.figures:
            rel = os.path.relpath(f.path, root)
            out += [f"![{f.caption}]({rel})", "", f"*{f.caption}*", ""]
    return "\n".join(out).rstrip() + "\n"


def _inline(text: str) -> str:
    """Markdown's inline code and bold as HTML (enough for the report's own text)."""
    parts = html.escape(text).split("`")
    for i in range(1, len(parts), 2):
        parts[i] = f"<code>{parts[i]}</code>"
    text = "".join(parts)
    bits = text.split("**")
    for i in range(1, len(bits), 2):
        bits[i] = f"<b>{bits[i]}</b>"
    return "".join(bits)


def render_html(sections: Sequence[Section], *, title: str, preamble: Sequence[str] = ()) -> str:
    """The report as one HTML document with every figure embedded (base64 PNG)."""
    css = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}"
           "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;"
           "padding:3px 8px;text-align:left}th{background:#eee}img{max-width:100%}"
           "code{background:#f4f4f4;padding:0 3px}figcaption{font-style:italic}")
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
           f"</title><style>{css}</style></head><body><h1>{html.escape(title)}</h1>"]
    out += [f"<p>{_inline(p)}</p>" for p in preamble]
    out.append("<ul>" + "".join(f"<li><a href='#{s.key}'>{html.escape(s.title)}</a></li>"
                                for s in sections) + "</ul>")
    for s in sections:
        out.append(f"<h2 id='{s.key}'>{html.escape(s.title)}</h2>")
        out.append(f"<p>Reproduce alone: <code>{html.escape(s.command)}</code></p>")
        out += [f"<p>{_inline(p)}</p>" for p in s.text]
        for t in s.tables:
            cap = f"<caption>{_inline(t.caption)}</caption>" if t.caption else ""
            head = "".join(f"<th>{_inline(c)}</th>" for c in t.columns)
            body = "".join("<tr>" + "".join(f"<td>{_inline(str(c))}</td>" for c in row) + "</tr>"
                           for row in t.rows)
            out.append(f"<table>{cap}<tr>{head}</tr>{body}</table>")
        for f in s.figures:
            data = base64.b64encode(Path(f.path).read_bytes()).decode()
            out.append(f"<figure><img src='data:image/png;base64,{data}' "
                       f"alt='{html.escape(f.caption)}'><figcaption>{_inline(f.caption)}"
                       "</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(sections: Sequence[Section], out_dir: str | os.PathLike, *, title: str,
                 preamble: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write ``REPORT.md`` and ``REPORT.html`` into ``out_dir`` (atomically); returns both paths.

    Raises:
      FileNotFoundError: a figure file of a section is missing.
    """
    out_dir = Path(out_dir)
    for s in sections:
        for f in s.figures:
            if not Path(f.path).is_file():
                raise FileNotFoundError(f"figure {f.path} of section {s.key!r} is missing")
    md = atomic_write_bytes(out_dir / "REPORT.md",
                            render_markdown(sections, out_dir, title=title,
                                            preamble=preamble).encode())
    page = atomic_write_bytes(out_dir / "REPORT.html",
                              render_html(sections, title=title, preamble=preamble).encode())
    return md, page
