"""One self-contained ``report.html`` per run: headline facts and charts, no network.

Charts are drawn with matplotlib (Agg) as inline SVG, so the page opens from a report
directory copied anywhere, in any browser, with nothing fetched.
"""

from __future__ import annotations

import html
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes

PAGE_NAME = "report.html"
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}"
    "figure{margin:2rem 0}figcaption{color:#555;font-size:.9rem}svg{max-width:100%;height:auto}"
    "li{margin:.2rem 0}code{background:#f3f3f3;padding:0 .2rem}"
)


@dataclass(frozen=True)
class Chart:
    """A titled figure: inline SVG and a one-line caption saying how to read it."""

    title: str
    svg: str
    caption: str


@contextmanager
def drawing(title: str, caption: str, charts: list[Chart]) -> Iterator[Axes]:
    """Axes to draw on; on exit the figure is appended to ``charts`` as SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 3.6), layout="constrained")
    try:
        axes.set_title(title)
        yield axes
        out = io.StringIO()
        # text stays text (searchable, small); a fixed salt makes the same data the same file
        with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "sluice"}):
            figure.savefig(out, format="svg", metadata={"Date": None})
        svg = out.getvalue()
        charts.append(Chart(title, svg[svg.index("<svg") :], caption))
    finally:
        plt.close(figure)


def write_page(directory: Path, title: str, facts: Sequence[str], charts: Sequence[Chart]) -> Path:
    """Write ``report.html`` into ``directory``; returns its path."""
    items = "".join(f"<li>{html.escape(fact)}</li>" for fact in facts)
    figures = "".join(
        f"<figure aria-label='{html.escape(c.title, quote=True)}'>{c.svg}"
        f"<figcaption>{html.escape(c.caption)}</figcaption></figure>"
        for c in charts
    )
    page = directory / PAGE_NAME
    page.write_text(
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><ul>{items}</ul>{figures}</body></html>\n"
    )
    return page
