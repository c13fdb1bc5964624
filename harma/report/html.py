"""Deterministic, offline HTML pages: a Page is a list of sections holding escaped text, tables and Plotly
figures; `write_page` builds a report folder, `index.html` and the CSV table behind every figure and table
beside it, in a hidden folder and swaps it in whole (harma.report.folder); `write_page_files` writes a page's
files one by one, index.html last, into a folder shared with other things (the index).  Every file goes
through harma.atomic, readable by others (0666 less the umask).  A page with figures loads plotly.js from one
shared file, `assets/plotly-<version>.min.js` in the folder above the page's (so `reports/NAME/index.html`
uses `reports/assets/`; written atomically, only when missing or different), by a relative path, so a copied
report folder opens offline; `self_contained=True` inlines plotly.js into the page instead.  The page is readable
before plotly.js arrives: the shared file loads with `defer` and each figure's data waits in a JSON block until
its load event draws them all (`drawFigures`), and an inlined plotly.js sits at the end of the body, after the
text, tables and banners.  No CDN, no network, no timestamps, stable div ids.
Everything that comes from users (study, arm and parameter names, error messages) is escaped here, in
`text`, `table` and `code`; only the fixed markup of this module and Plotly's own output go in raw.
"""
from __future__ import annotations

import html
import json

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline

from harma.atomic import check_replaceable, write_text_atomic
from harma.errors import WriteError
from harma.results.trials import is_missing
from harma.report.folder import replace_report_folder, report_target

PLOT_CONFIG = {"displaylogo": False, "responsive": True}
DRAW = ("function drawFigures() { document.querySelectorAll('script[data-plot-for]').forEach(function (s) {"
        " var f = JSON.parse(s.textContent); Plotly.newPlot(s.dataset.plotFor, f.data, f.layout, "
        + json.dumps(PLOT_CONFIG) + "); }); }")
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #222;
       background: #fafafa; }
header { background: #16324f; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 24px; }
header p { margin: 2px 0; opacity: 0.9; }
nav { padding: 8px 32px; background: #e8eef4; font-size: 14px; }
nav a { margin-right: 16px; }
main { padding: 8px 32px 40px 32px; max-width: 1400px; }
section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px 20px 16px 20px;
          margin: 16px 0; overflow-x: auto; }
h2 { font-size: 19px; border-bottom: 1px solid #eee; padding-bottom: 4px; }
p.note { color: #555; font-size: 14px; }
p.warn { color: #8a4b00; background: #fff4e0; padding: 6px 10px; border-radius: 4px; }
div.banner { background: #fff4e0; border-bottom: 2px solid #e0a040; color: #6b3a00; padding: 10px 32px;
             font-weight: 600; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #f0f3f6; }
td.text, th.text, th.code, th.wrap { text-align: left; }
td.wrap { white-space: pre-wrap; max-width: 640px; text-align: left; }
code, td.code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
td.code { text-align: left; white-space: normal; }
figure.harma-figure { margin: 12px 0; }
figcaption { font-size: 13px; color: #555; }
details { margin: 8px 0; }
footer { color: #777; font-size: 12px; padding: 0 32px 24px 32px; }
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


@dataclass
class Figure:
    fig_id: str
    figure: go.Figure
    caption: str
    csv_name: str


@dataclass
class Section:
    title: str
    anchor: str
    parts: list[str | Figure] = field(default_factory=list)

    def text(self, text: str, kind: str = "") -> None:
        """A paragraph of plain (escaped) text; kind: '' | 'note' | 'warn'."""
        cls = f' class="{kind}"' if kind else ""
        self.parts.append(f"<p{cls}>{esc(text)}</p>")

    def code(self, text: str) -> None:
        self.parts.append(f"<p><code>{esc(text)}</code></p>")

    def table(self, frame: pd.DataFrame, text_columns: tuple[str, ...] = (), code_columns: tuple[str, ...] = (),
              wrap_columns: tuple[str, ...] = (), details: str | None = None) -> None:
        """An HTML table of already formatted cells (every cell and header escaped)."""
        head = "".join(f'<th class="{_cls(c, text_columns, code_columns, wrap_columns)}">{esc(c)}</th>'
                       for c in frame.columns)
        body = "".join(
            "<tr>" + "".join(f'<td class="{_cls(c, text_columns, code_columns, wrap_columns)}">{esc(v)}</td>'
                             for c, v in zip(frame.columns, row)) + "</tr>"
            for row in frame.itertuples(index=False))
        markup = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        if details is not None:
            markup = f"<details><summary>{esc(details)}</summary>{markup}</details>"
        self.parts.append(markup)

    def figure(self, fig_id: str, figure: go.Figure, caption: str, csv_name: str) -> None:
        self.parts.append(Figure(fig_id, figure, caption, csv_name))

    def link(self, href: str, text: str) -> None:
        self.parts.append(f'<p class="note"><a href="{esc(href)}">{esc(text)}</a></p>')


def _cls(col: str, text_cols: tuple, code_cols: tuple, wrap_cols: tuple) -> str:
    if col in code_cols:
        return "code"
    if col in wrap_cols:
        return "wrap"
    return "text" if col in text_cols else "num"


@dataclass
class Page:
    title: str
    subtitle: list[str]
    footer: str
    sections: list[Section] = field(default_factory=list)
    csvs: dict[str, pd.DataFrame] = field(default_factory=dict)
    banners: list[str] = field(default_factory=list)

    def banner(self, text: str) -> None:
        """A warning shown right under the page header (plain text, escaped)."""
        if text not in self.banners:
            self.banners.append(text)

    def section(self, title: str) -> Section:
        anchor = slug(title)
        taken = {s.anchor for s in self.sections}
        n = 2
        while anchor in taken:
            anchor, n = f"{slug(title)}-{n}", n + 1
        self.sections.append(Section(title, anchor))
        return self.sections[-1]

    def csv(self, name: str, frame: pd.DataFrame) -> str:
        """Register a CSV file written beside the page; returns its name."""
        self.csvs[name] = frame
        return name

    def figures(self) -> list[Figure]:
        return [p for s in self.sections for p in s.parts if isinstance(p, Figure)]


def _json_block(figure: go.Figure) -> str:
    """The figure's data and layout as JSON that is safe inside a script element (<, > and & escaped)."""
    text = pio.to_json(figure, validate=True)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _figure_html(f: Figure) -> str:
    """The figure's empty div (drawn by drawFigures once plotly.js has loaded), its data and its caption."""
    height = f.figure.layout.height or 420
    div = (f'<div id="{esc(f.fig_id)}" class="plotly-graph-div" style="height:{height}px; width:100%;"></div>'
           f'<script type="application/json" data-plot-for="{esc(f.fig_id)}">{_json_block(f.figure)}</script>')
    return (f'<figure class="harma-figure" data-figure="{esc(f.fig_id)}">{div}'
            f'<figcaption>{esc(f.caption)} Data: <a href="{esc(f.csv_name)}">{esc(f.csv_name)}</a>'
            f"</figcaption></figure>")


def plotly_asset_name() -> str:
    """`plotly-<version>.min.js`: a new plotly.js gets a new file, so older pages keep theirs."""
    return f"plotly-{plotly.offline.get_plotlyjs_version()}.min.js"


def render(page: Page, plotly_src: str | None = None) -> str:
    """The whole page as one string: plotly.js from `plotly_src` (a relative URL) or, if None, inlined."""
    head, tail = _scripts(bool(page.figures()), plotly_src)
    nav = "".join(f'<a href="#{s.anchor}">{esc(s.title)}</a>' for s in page.sections)
    body = []
    for s in page.sections:
        parts = "".join(_figure_html(p) if isinstance(p, Figure) else p for p in s.parts)
        body.append(f'<section id="{s.anchor}"><h2>{esc(s.title)}</h2>{parts}</section>')
    subtitle = "".join(f"<p>{esc(line)}</p>" for line in page.subtitle)
    banners = "".join(f'<div class="banner" role="alert">{esc(b)}</div>' for b in page.banners)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(page.title)}"
            f"</title><style>{STYLE}</style>{head}</head><body><header><h1>{esc(page.title)}</h1>{subtitle}"
            f"</header>{banners}<nav>{nav}</nav><main>{''.join(body)}</main><footer>{esc(page.footer)}</footer>"
            f"{tail}</body></html>\n")


def _scripts(figures: bool, plotly_src: str | None) -> tuple[str, str]:
    """(in the head, at the end of the body): plotly.js from `plotly_src` loaded with `defer`, drawing the figures
    on its load event; or, inlined, at the very end after everything readable; nothing without figures."""
    if not figures:
        return "", ""
    draw = f"<script>{DRAW}</script>"
    if plotly_src is None:
        return draw, f"<script>{plotly.offline.get_plotlyjs()}</script><script>drawFigures();</script>"
    return f'{draw}<script defer src="{esc(plotly_src)}" onload="drawFigures()"></script>', ""


def write_page(page: Page, out_dir: str | os.PathLike, self_contained: bool = False) -> Path:
    """Build the report folder `out_dir` anew and return its index.html: the page's CSV files, then index.html,
    are written into a hidden folder beside it, then the shared plotly.js into `out_dir/../assets/` (unless
    self-contained, or the page has no figure), and the new folder replaces `out_dir` whole
    (harma.report.folder), so an error leaves the previous report as it was.  Every file is written by
    harma.atomic."""
    target = report_target(out_dir)
    uses_asset = bool(page.figures()) and not self_contained
    markup = render(page, f"../assets/{plotly_asset_name()}" if uses_asset else None)

    def fill(folder: Path) -> None:
        _write_files(page, markup, folder, target)
        if uses_asset:
            write_plotly_asset(target.parent / "assets")

    replace_report_folder(target, fill)
    return Path(out_dir) / "index.html"


def _write_files(page: Page, markup: str, folder: Path, shown: Path) -> None:
    """The page's CSV files, then index.html, into `folder`; errors name them under `shown`."""
    for name, frame in page.csvs.items():
        _write_as(folder / name, shown / name, _csv(frame))
    _write_as(folder / "index.html", shown / "index.html", markup)


def _write_as(path: Path, shown: Path, text: str) -> None:
    """Write `path` atomically (readable by others); a WriteError names `shown`, the file asked for."""
    try:
        write_text_atomic(path, text, shared=True)
    except WriteError as exc:
        raise WriteError(exc.errno, exc.strerror, os.fspath(shown)) from None


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")


def write_page_files(page: Page, folder: str | os.PathLike) -> Path:
    """Write the page's CSV files, then index.html last, each atomically, into `folder`, which also holds
    other things (the index page beside the study folders): nothing else there is touched.  A page with
    figures inlines plotly.js.  Returns the index.html path."""
    folder = Path(folder)
    for name in (*page.csvs, "index.html"):
        check_replaceable(folder / name)          # refused before any file is written
    for name, frame in page.csvs.items():
        write_text_atomic(folder / name, _csv(frame), shared=True)
    path = folder / "index.html"
    write_text_atomic(path, render(page, None), shared=True)
    return path


def write_plotly_asset(folder: str | os.PathLike) -> Path:
    """`folder/plotly-<version>.min.js`, written atomically unless an identical file is already there."""
    path = Path(folder) / plotly_asset_name()
    bundle = plotly.offline.get_plotlyjs()
    if not _holds(path, bundle):
        write_text_atomic(path, bundle, shared=True)
    return path


def _holds(path: Path, text: str) -> bool:
    try:
        return path.is_file() and path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


# cell formatting ------------------------------------------------------------------------------------------

def fmt(v: object, digits: int = 2) -> str:
    if is_missing(v):
        return "–"
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return f"{v:,}"
    try:
        return f"{float(v):.{digits}f}"
    except (TypeError, ValueError):
        return str(v)


def fmt_count(v: object) -> str:
    return "–" if is_missing(v) else f"{int(round(float(v))):,}"


def fmt_ci(mean: float, low: float, high: float, n: int, digits: int = 2, count: bool = False,
           clipped: bool = False) -> str:
    """'31.25 ± 0.84' (half-width of the interval), '0.50 [0.00, 3.10] clipped' when the interval was cut to
    its metric's range, or '31.25 (n=1)' when there is no interval."""
    if n == 0 or is_missing(mean):
        return "–"
    m = f"{mean:,.0f}" if count else f"{mean:.{digits}f}"
    if is_missing(low) or is_missing(high):
        return f"{m} (n={n})"
    if clipped:
        return f"{m} [{low:.{digits}f}, {high:.{digits}f}] clipped"
    half = (high - low) / 2
    h = f"{half:,.0f}" if count else f"{half:.{digits}f}"
    return f"{m} ± {h}"


def fmt_p(p: float) -> str:
    if is_missing(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"
