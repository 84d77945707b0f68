"""The report's two charts, drawn with matplotlib (no pyplot: safe in the daemon's threads).

* **share of voice by day**: each brand's share of the set's mentions, stacked bars to
  100 % (a day with no mention of any brand has no bar);
* **sentiment by day**: the reported brand's positive / neutral / negative / uncertain
  mentions per day (stacked bars) and its net sentiment (line, right axis).

Steps are the trend's (`BrandFigures.trend`): local days of the report's time zone, or
hours for a report of a day.
Each chart is a `Figure`: `png` makes the bytes the HTML embeds and Slack receives, the
PDF draws the same figure as vectors.

Fonts: matplotlib's bundled DejaVu has no Chinese characters. `cjk_font()` looks for an
installed font that has them (Noto Sans CJK, WenQuanYi, Source Han, ...; Debian's
`fonts-wqy-microhei` is 5 MB and the Docker image installs it) and `chart_style` puts it
in matplotlib's font fallback list: first for a Chinese report, after DejaVu Sans for
an English one, so a Chinese brand name or post in an English report is drawn too.
Without one, charts keep English labels even in a Chinese report, the report says so,
Chinese characters of user text are empty boxes, and the log says it once per process
(not once per glyph). Nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from brandpulse.timeutil import zone
from reports.labels import Language, label
from reports.share_of_voice import ShareOfVoice

log = logging.getLogger(__name__)

# Family names of common fonts that cover CJK ideographs.
_CJK_FAMILIES = ("Noto Sans CJK", "Noto Serif CJK", "Noto Sans SC", "Noto Sans TC",
                 "Source Han Sans", "Source Han Serif", "WenQuanYi", "AR PL", "Droid Sans Fallback",
                 "SimHei", "SimSun", "Microsoft YaHei", "PingFang", "Heiti", "Hiragino Sans GB")

_COLOURS = {"positive": "#2e7d32", "neutral": "#9e9e9e", "negative": "#c62828",
            "uncertain": "#f9a825"}
_BRAND_COLOURS = ("#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#558b2f",
                  "#4e342e", "#37474f")


def _cjk_family(names: set[str]) -> str | None:
    for wanted in _CJK_FAMILIES:
        for name in sorted(names):
            if name.startswith(wanted):
                return name
    return None


@cache
def cjk_font() -> str | None:
    """The family name of an installed font with Chinese characters, or None.

    matplotlib lists the system's fonts once and caches the list on disk
    (`fontlist-*.json`), so a font installed after that (`apt-get install
    fonts-wqy-microhei` on a machine where matplotlib already ran) is not in it: when the
    list has none, the system font files missing from it are added, then looked at again.
    """
    from matplotlib import font_manager

    manager = font_manager.fontManager
    found = _cjk_family({f.name for f in manager.ttflist})
    if found is None:
        known = {f.fname for f in manager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in known:
                with contextlib.suppress(Exception):  # an unreadable file is not ours to fix
                    manager.addfont(path)
        found = _cjk_family({f.name for f in manager.ttflist})
    return found


@cache
def _say_no_cjk_font() -> None:
    log.warning("no font with Chinese characters is installed: report charts and PDFs show "
                "Chinese text as empty boxes and their labels in English (install one, e.g. "
                "Debian's fonts-wqy-microhei or fonts-noto-cjk)")


def chart_language(language: Language) -> Language:
    """The language chart text can be drawn in: Chinese only with a CJK font installed."""
    return language if language == "en" or cjk_font() else "en"


@contextmanager
def chart_style(language: Language) -> Iterator[None]:
    """matplotlib settings for the report's figures: a font fallback list with a CJK font
    when one is installed (first for Chinese, after DejaVu Sans otherwise)."""
    from matplotlib import rc_context

    font = cjk_font()
    if font is None:
        families = ["DejaVu Sans"]
        _say_no_cjk_font()
    else:
        families = [font, "DejaVu Sans"] if language == "zh" else ["DejaVu Sans", font]
    with rc_context({"font.family": families, "axes.unicode_minus": False,
                     "font.size": 9, "svg.fonttype": "none", "pdf.fonttype": 42}), \
            warnings.catch_warnings(), _quiet_font_manager():
        if font is None:
            # every Chinese character of a post or brand would warn once per drawing; the
            # limitation is logged once (above) and said in the report, not hundreds of times
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        yield


class _NoBoldFallbackNotice(logging.Filter):
    """Most CJK fonts have one weight: matplotlib logs "Failed to find font weight bold
    for ..., now using 400" for every bold title drawn with one. It draws them regular;
    that is no news for the daemon's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Failed to find font weight" not in record.getMessage()


@contextmanager
def _quiet_font_manager() -> Iterator[None]:
    logger = logging.getLogger("matplotlib.font_manager")
    notice = _NoBoldFallbackNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


CHARTS = ("share_of_voice", "sentiment")


def chart_title_key(name: str, sov: ShareOfVoice) -> str:
    """The label key of a chart's title: by day, or by hour for a day's report."""
    key = "sov_chart" if name == "share_of_voice" else "sentiment_chart"
    return key + ("_hourly" if sov.trend_interval == "hour" else "")


def _ticks(ax: Axes, sov: ShareOfVoice, starts: list[datetime], time_zone: str) -> None:
    """Local dates under daily bars; every third local hour under hourly ones."""
    tz = zone(time_zone)
    hourly = sov.trend_interval == "hour"
    shown = [(i, s.astimezone(tz).strftime("%H:00" if hourly else "%m-%d"))
             for i, s in enumerate(starts) if not hourly or i % 3 == 0]
    ax.set_xticks([i for i, _ in shown], [text for _, text in shown])


def share_of_voice_chart(sov: ShareOfVoice, language: Language, time_zone: str) -> Figure:
    fig = Figure(figsize=(8, 3.6), dpi=110)
    draw_share_of_voice(fig.add_subplot(), sov, language, time_zone)
    fig.tight_layout()
    return fig


def sentiment_chart(sov: ShareOfVoice, language: Language, time_zone: str) -> Figure:
    fig = Figure(figsize=(8, 3.6), dpi=110)
    draw_sentiment(fig.add_subplot(), sov, language, time_zone)
    fig.tight_layout()
    return fig


def charts_page(sov: ShareOfVoice, language: Language, time_zone: str) -> Figure:
    """Both charts on one A4 portrait page (the PDF's)."""
    fig = Figure(figsize=(8.27, 11.69))
    draw_share_of_voice(fig.add_axes((0.08, 0.56, 0.62, 0.36)), sov, language, time_zone)
    draw_sentiment(fig.add_axes((0.08, 0.08, 0.62, 0.36)), sov, language, time_zone)
    return fig


def draw_share_of_voice(ax: Axes, sov: ShareOfVoice, language: Language, time_zone: str) -> None:
    lang = chart_language(language)
    steps = [p.start for p in sov.focus.trend]
    totals = [sum(b.trend[i].counts.mentions for b in sov.brands if i < len(b.trend))
              for i in range(len(steps))]
    series = []
    for b in sov.brands:
        series.append([100.0 * b.trend[i].counts.mentions / totals[i] if totals[i] else 0.0
                       for i in range(len(steps))])
    x = list(range(len(steps)))
    colours = [_BRAND_COLOURS[i % len(_BRAND_COLOURS)] for i in range(len(series))]
    bottom = [0.0] * len(steps)
    for b, values, colour in zip(sov.brands, series, colours, strict=True):
        ax.bar(x, values, bottom=bottom, color=colour, label=b.brand, width=0.7)
        bottom = [a + v for a, v in zip(bottom, values, strict=True)]
    _ticks(ax, sov, steps, time_zone)
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    ax.set_title(label(chart_title_key("share_of_voice", sov), lang))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)


def draw_sentiment(ax: Axes, sov: ShareOfVoice, language: Language, time_zone: str) -> None:
    lang = chart_language(language)
    trend = sov.focus.trend
    x = list(range(len(trend)))
    bottom = [0] * len(trend)
    for bucket in ("positive", "neutral", "negative", "uncertain"):
        values = [p.counts.count(bucket) for p in trend]
        ax.bar(x, values, bottom=bottom, color=_COLOURS[bucket], label=label(bucket, lang),
               width=0.7)
        bottom = [a + b for a, b in zip(bottom, values, strict=True)]
    ax.set_ylabel(label("mentions", lang))
    _ticks(ax, sov, [p.start for p in trend], time_zone)
    net = ax.twinx()
    values = [p.counts.net_sentiment for p in trend]
    net.plot([i for i, v in zip(x, values, strict=True) if v is not None],
             [100 * v for v in values if v is not None], color="black", marker="o",
             linewidth=1.5, label=label("net_sentiment", lang))
    net.set_ylim(-100, 100)
    net.axhline(0, color="black", linewidth=0.5, alpha=0.4)
    net.set_ylabel(label("net_sentiment", lang))
    ax.set_title(f"{label(chart_title_key('sentiment', sov), lang)}: {sov.focus.brand}")
    handles, names = ax.get_legend_handles_labels()
    h2, n2 = net.get_legend_handles_labels()
    ax.legend(handles + h2, names + n2, loc="upper left", bbox_to_anchor=(1.08, 1.0),
              fontsize=8, frameon=False)


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    FigureCanvasAgg(fig)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
