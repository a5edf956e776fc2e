"""HTML and Markdown building blocks: tables from polars frames, figures, sections, the page.

The page is one self-contained file: inline CSS, PNG figures as base64 ``data:`` URIs,
no script, no external resource.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import polars as pl

Formatter = Callable[[Any], str]

DASH = "–"


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def fmt_num(digits: int = 3) -> Formatter:
    def f(v: Any) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return DASH
        if isinstance(v, (int,)) and not isinstance(v, bool):
            return f"{v:,}"
        try:
            return f"{float(v):.{digits}f}"
        except (TypeError, ValueError):
            return str(v)

    return f


def fmt_pct(digits: int = 1) -> Formatter:
    def f(v: Any) -> str:
        return DASH if v is None or v != v else f"{float(v):.{digits}f}%"

    return f


def fmt_ratio(v: Any) -> str:
    return DASH if v is None or v != v else f"{float(v):.2f}x"


def fmt_seconds(v: Any) -> str:
    """A duration with a readable unit (s, ms, µs)."""
    if v is None or v != v:
        return DASH
    v = float(v)
    a = abs(v)
    if a >= 1 or a == 0:
        return f"{v:.3g} s"
    if a >= 1e-3:
        return f"{v * 1e3:.3g} ms"
    return f"{v * 1e6:.3g} µs"


def fmt_text(v: Any) -> str:
    return DASH if v is None else str(v)


@dataclass
class Table:
    """A polars frame with per-column formatters and optional emphasis.

    Args:
        frame: The data; column names are the headers.
        formats: Column -> formatter (default: numbers to 3 digits, text as is).
        bold: (row index, column) cells to emphasize (e.g. the best value).
        row_class: Row index -> CSS class (e.g. ``"noise"`` for the noise-floor row).
        numeric: Columns to right-align (default: every non-string column).
        html_cells: Columns whose formatted value is already HTML.
    """

    frame: pl.DataFrame
    formats: Mapping[str, Formatter] = field(default_factory=dict)
    bold: set[tuple[int, str]] = field(default_factory=set)
    row_class: Mapping[int, str] = field(default_factory=dict)
    numeric: set[str] | None = None
    html_cells: set[str] = field(default_factory=set)
    caption: str | None = None

    def _fmt(self, col: str) -> Formatter:
        if col in self.formats:
            return self.formats[col]
        dtype = self.frame.schema[col]
        return fmt_num() if dtype.is_numeric() else fmt_text

    def _numeric(self) -> set[str]:
        if self.numeric is not None:
            return self.numeric
        return {c for c, t in self.frame.schema.items() if t.is_numeric()}

    def html(self) -> str:
        num = self._numeric()
        head = "".join(f'<th{" class=num" if c in num else ""}>{esc(c)}</th>' for c in self.frame.columns)
        rows = []
        for i, row in enumerate(self.frame.iter_rows(named=True)):
            cells = []
            for c in self.frame.columns:
                text = self._fmt(c)(row[c])
                text = text if c in self.html_cells else esc(text)
                if (i, c) in self.bold:
                    text = f"<strong>{text}</strong>"
                cells.append(f'<td{" class=num" if c in num else ""}>{text}</td>')
            cls = f' class="{self.row_class[i]}"' if i in self.row_class else ""
            rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
        cap = f"<caption>{esc(self.caption)}</caption>" if self.caption else ""
        return (
            f'<div class="tablewrap"><table>{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )

    def markdown(self) -> str:
        num = self._numeric()
        cols = self.frame.columns
        lines = [
            "| " + " | ".join(c.replace("|", "\\|") for c in cols) + " |",
            "| " + " | ".join("---:" if c in num else "---" for c in cols) + " |",
        ]
        for i, row in enumerate(self.frame.iter_rows(named=True)):
            cells = []
            for c in cols:
                text = self._fmt(c)(row[c]).replace("|", "\\|")
                if c in self.html_cells:
                    text = _strip_tags(text)
                if (i, c) in self.bold:
                    text = f"**{text}**"
                elif self.row_class.get(i) == "noise":
                    text = f"*{text}*"
                cells.append(text)
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _strip_tags(s: str) -> str:
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", s))


def figure(png: bytes | None, alt: str, caption: str, reason: str | None = None) -> str:
    """An embedded PNG with its caption, or a "no data" note giving ``reason``."""
    if png is None:
        return nodata(reason or alt)
    b64 = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{b64}" alt="{esc(alt)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


@dataclass
class Figure:
    """A drawn figure (PNG bytes, or ``None`` when there was nothing to draw) and its words."""

    png: bytes | None
    alt: str
    caption: str
    reason: str | None = None

    def html(self) -> str:
        return figure(self.png, self.alt, self.caption, reason=self.reason)


#: What a report section returns: tables, figures and HTML text, in reading order.
Block = Table | Figure | str


def render_blocks(blocks: Iterable[Block]) -> str:
    """The one renderer: a section's blocks as its HTML body."""
    return "\n".join(b if isinstance(b, str) else b.html() for b in blocks)


def nodata(reason: str) -> str:
    """The note a section shows instead of a table or figure it cannot fill."""
    return f'<p class="nodata">no data: {esc(reason)}</p>'


def note(text: str, kind: str = "note") -> str:
    return f'<p class="{kind}">{text}</p>'


def ul(items: Iterable[str]) -> str:
    items = list(items)
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>" if items else ""


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


@dataclass
class Section:
    id: str
    title: str
    body: str


CSS = """
:root { --fg: #1d1d1f; --muted: #6e6e73; --line: #d2d2d7; --band: #f5f5f7; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 64px; }
header { border-bottom: 2px solid var(--fg); margin-bottom: 12px; }
h1 { font-size: 28px; margin: 8px 0 4px; }
h2 { font-size: 21px; margin: 36px 0 8px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 16px; margin: 20px 0 6px; }
p { margin: 6px 0 10px; max-width: 900px; }
.sub { color: var(--muted); margin: 0 0 10px; }
nav ol { columns: 3; margin: 8px 0 0; padding-left: 20px; color: var(--muted); }
nav a { color: var(--accent); text-decoration: none; }
.tablewrap { overflow-x: auto; margin: 8px 0 14px; }
table { border-collapse: collapse; font-size: 13.5px; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 4px 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--band); border-bottom: 1px solid #a1a1a6; white-space: nowrap; }
td.num, th.num { text-align: right; white-space: nowrap; }
tr.noise td { font-style: italic; background: #fbf7ea; border-top: 1px solid #a1a1a6; }
tr.missing td { color: var(--muted); }
strong { font-weight: 700; }
figure { margin: 10px 0 22px; }
figure img { max-width: 100%; height: auto; display: block; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 13.5px; margin-top: 4px; max-width: 900px; }
.nodata { color: #8a5a00; background: #fff6e0; border-left: 4px solid #e0a800; padding: 6px 10px; }
.note { color: var(--muted); font-size: 13.5px; }
.warn { background: #fdecea; border-left: 4px solid #c62828; padding: 6px 10px; }
.key { background: var(--band); border-left: 4px solid var(--accent); padding: 8px 12px; }
pre { background: var(--band); padding: 10px 12px; overflow-x: auto; font-size: 12.5px; line-height: 1.4;
  border: 1px solid var(--line); }
code { font-size: 13px; background: var(--band); padding: 0 3px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12.5px; }
"""


def page(title: str, subtitle: str, sections: list[Section], footer: str) -> str:
    nav = "".join(f'<li><a href="#{esc(s.id)}">{esc(s.title)}</a></li>' for s in sections)
    body = "\n".join(
        f'<section id="{esc(s.id)}">\n<h2>{esc(s.title)}</h2>\n{s.body}\n</section>' for s in sections
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header>
<h1>{esc(title)}</h1>
<p class="sub">{subtitle}</p>
<nav><ol>{nav}</ol></nav>
</header>
{body}
<footer>{footer}</footer>
</main>
</body>
</html>
"""
