"""A `FullReport` as a self-contained HTML file and as a PDF.

HTML: one file, nothing fetched when it is opened: CSS inline in a `<style>`, the two
charts as `data:image/png;base64` images. Every piece of user text (brand names, posts,
authors, theme labels, URLs) goes through `html.escape`, and only http(s) URLs become
links, so a post holding `<script>` shows as text.

PDF: matplotlib's `PdfPages` (pure pip, no system package): a page of text (headline
figures, brands compared, themes), a page with both charts (vectors), then pages of text
for posts, authors and alerts. Without a font with Chinese characters (`charts.cjk_font`)
Chinese text in the PDF shows as empty boxes: the PDF's labels then fall back to English
and the HTML (which the browser draws with its own fonts) is the form to read.

`headline` is the one place the figures of the top of the report are worded; the Slack
summary (`reports.slack_message`) uses it too.
"""

from __future__ import annotations

import base64
import html
import io
import textwrap
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from brandpulse.mention import Mention
from brandpulse.timeutil import zone
from reports.charts import (
    CHARTS,
    chart_language,
    chart_style,
    chart_title_key,
    charts_page,
    png,
    sentiment_chart,
    share_of_voice_chart,
)
from reports.full import FullReport
from reports.labels import Language, label
from reports.themes import ComplaintThemes


@dataclass(frozen=True)
class Figure:
    """One headline figure: its value now, before, and the change, as text."""

    key: str  # label key
    value: str
    previous: str
    change: str


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _signed_pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.0f}%"


def _points(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f} pt"


def _net(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value * 100:+.0f}" if signed else f"{value * 100:.0f}"


def headline(report: FullReport) -> list[Figure]:
    """Mentions, share of voice, net sentiment (×100) and negative mentions, each with
    its value in the previous period of equal length and the change."""
    f = report.insight.share_of_voice.focus
    neg_change = (f.counts.negative / f.previous.negative - 1.0) if f.previous.negative else None
    return [
        Figure("mentions", f"{f.counts.mentions:,}", f"{f.previous.mentions:,}",
               _signed_pct(f.mentions_change)),
        Figure("share_of_voice", _pct(f.share_of_voice), _pct(f.previous_share_of_voice),
               _points(f.share_of_voice_change)),
        Figure("net_sentiment", _net(f.counts.net_sentiment), _net(f.previous.net_sentiment),
               _net(f.net_sentiment_change, signed=True)),
        Figure("negative_mentions", f"{f.counts.negative:,}", f"{f.previous.negative:,}",
               _signed_pct(neg_change)),
    ]


def local(value: datetime, time_zone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return value.astimezone(zone(time_zone)).strftime(fmt)


def period_text(report: FullReport) -> str:
    p, tz = report.period, report.time_zone
    return f"{local(p.start, tz)} → {local(p.end, tz)} ({tz})"


def charts_png(report: FullReport) -> dict[str, bytes]:
    """The two charts as PNG: {"share_of_voice": ..., "sentiment": ...}."""
    sov, lang, tz = report.insight.share_of_voice, report.language, report.time_zone
    with chart_style(lang):
        return {"share_of_voice": png(share_of_voice_chart(sov, lang, tz)),
                "sentiment": png(sentiment_chart(sov, lang, tz))}


def _one_line(text: str, limit: int = 280) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _post_text(m: Mention) -> str:
    return _one_line(" — ".join(x for x in (m.title, m.text) if x))


# ---------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans","Noto Sans CJK SC","PingFang SC",
"Microsoft YaHei",sans-serif;margin:2em auto;max-width:60em;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
.meta{color:#666}.figures{display:flex;flex-wrap:wrap;gap:1em}
.figure{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:10em}
.figure .v{font-size:1.6em;font-weight:600}.figure .c{color:#555}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:.3em .5em;
text-align:left;vertical-align:top}th{background:#fafafa}td.n{text-align:right;white-space:nowrap}
img{max-width:100%}.note{color:#8a6d3b;background:#fcf8e3;padding:.4em .8em;border-radius:4px}
blockquote{margin:.3em 0 .3em 1em;color:#444}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _link(url: str | None, text: str) -> str:
    if url and url.lower().startswith(("http://", "https://")):
        return f'<a href="{_e(url)}" rel="noopener noreferrer">{_e(text)}</a>'
    return ""


def _posts_html(posts: tuple[Mention, ...], lang: Language) -> str:
    if not posts:
        return f"<p>{_e(label('no_posts', lang))}</p>"
    rows = "".join(
        f"<tr><td>{_e(_post_text(m))} {_link(m.url, label('open_post', lang))}</td>"
        f"<td>{_e(m.author or '?')}</td><td>{_e(m.source)}</td>"
        f"<td class=n>{_e(f'{m.author_reach:,}' if m.author_reach is not None else '–')}</td></tr>"
        for m in posts
    )
    return (f"<table><tr><th></th><th>{_e(label('author', lang))}</th>"
            f"<th>{_e(label('source', lang))}</th><th>{_e(label('reach', lang))}</th></tr>"
            f"{rows}</table>")


def to_html(report: FullReport, charts: dict[str, bytes] | None = None) -> str:
    """The report as one self-contained HTML document."""
    lang = report.language
    charts = charts if charts is not None else charts_png(report)
    sov = report.insight.share_of_voice
    L = lambda key: _e(label(key, lang))  # noqa: E731
    parts = [
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{L('title')}: {_e(report.brand)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{L('title')}: {_e(report.brand)}</h1>",
        f"<p class=meta>{L('period')}: {_e(period_text(report))}, {L('compared')}; "
        f"{L('reposts_excluded' if sov.exclude_duplicates else 'reposts_counted')}. "
        f"{L('generated')} {_e(local(report.generated_at, 'UTC'))} UTC</p>",
        f"<h2>{L('headline')}</h2><div class=figures>",
    ]
    for f in headline(report):
        parts.append(f'<div class=figure data-figure="{f.key}"><div>{L(f.key)}</div>'
                     f"<div class=v>{_e(f.value)}</div><div class=c>{L('previous')} "
                     f"{_e(f.previous)} · {L('change')} {_e(f.change)}</div></div>")
    parts.append("</div>")
    rows = "".join(
        f"<tr><td>{_e(b.brand)}</td><td class=n>{b.counts.mentions:,}</td>"
        f"<td class=n>{_e(_pct(b.share_of_voice))}</td>"
        f"<td class=n>{_e(_points(b.share_of_voice_change))}</td>"
        f"<td class=n>{_e(_net(b.counts.net_sentiment, True))}</td></tr>"
        for b in sov.brands
    )
    parts.append(f"<h2>{L('competitors')}</h2><table><tr><th>{L('brand')}</th>"
                 f"<th>{L('mentions')}</th><th>{L('share_of_voice')}</th><th>{L('change')}</th>"
                 f"<th>{L('net_sentiment')}</th></tr>{rows}</table>")
    if chart_language(lang) != lang:
        parts.append(f"<p class=note>{L('charts_note')}</p>")
    for key in CHARTS:
        title = chart_title_key(key, sov)
        data = base64.b64encode(charts[key]).decode("ascii")
        parts.append(f"<h2>{L(title)}</h2><img alt=\"{L(title)}\" "
                     f'src="data:image/png;base64,{data}">')
    parts.append(f"<h2>{L('themes')}</h2>")
    themes = report.insight.themes
    if themes is None or not themes.themes:
        parts.append(f"<p>{L('no_themes')}</p>")
    else:
        if themes.sampled:
            parts.append(f"<p class=note>{_e(sampled_note(themes, lang))}</p>")
        parts.append(f"<table><tr><th>{L('theme')}</th><th>{L('size')}</th>"
                     f"<th>{L('previous')}</th></tr>")
        for t in themes.themes[:5]:
            quotes = "".join(f"<blockquote>“{_e(_one_line(x.text, 200))}” — {_e(x.author or '?')}"
                             f"</blockquote>" for x in t.examples[:2])
            parts.append(f"<tr><td><b>{_e(t.label)}</b> [{_e(t.language)}]{quotes}</td>"
                         f"<td class=n>{t.size:,} ({_e(_pct(themes.share(t)))})</td>"
                         f"<td class=n>{t.previous_size:,}</td></tr>")
        parts.append("</table>")
    parts.append(f"<h2>{L('top_negative')}</h2>{_posts_html(report.negative_posts, lang)}")
    parts.append(f"<h2>{L('top_positive')}</h2>{_posts_html(report.positive_posts, lang)}")
    parts.append(f"<h2>{L('authors')}</h2>")
    if report.authors:
        parts.append(f"<table><tr><th>{L('author')}</th><th>{L('source')}</th>"
                     f"<th>{L('reach')}</th><th>{L('mentions')}</th><th>{L('negative')}</th></tr>")
        parts += [f"<tr><td>{_e(a.name)}</td><td>{_e(a.source)}</td><td class=n>{a.reach:,}</td>"
                  f"<td class=n>{a.mentions:,}</td><td class=n>{a.negative:,}</td></tr>"
                  for a in report.authors]
        parts.append("</table>")
    else:
        parts.append(f"<p>{L('no_posts')}</p>")
    parts.append(f"<h2>{L('alerts')}</h2>")
    if report.alerts is None:
        parts.append(f"<p class=note>{L('alerts_unavailable')}: {_e(report.alerts_note)}</p>")
    else:
        if report.alerts_note:
            parts.append(f"<p class=note>{_e(report.alerts_note)}</p>")
        if not report.alerts:
            parts.append(f"<p>{L('no_alerts')}</p>")
        else:
            parts.append(f"<table><tr><th>{L('when')}</th><th>{L('kind')}</th>"
                         f"<th>{L('observed')}</th><th>{L('status')}</th></tr>")
            parts += [f"<tr><td>{_e(local(a.created_at, report.time_zone))}</td>"
                      f"<td>{_e(a.kind)} ({_e(a.signal)})</td>"
                      f"<td class=n>{a.observed:,} / {a.expected:.1f}</td><td>{_e(a.status)}</td></tr>"
                      for a in report.alerts]
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- PDF


def file_stem(report: FullReport) -> str:
    """`brandpulse-<brand>-<period start>-<days>d`: deterministic, filesystem-safe."""
    import hashlib
    import re

    slug = re.sub(r"[^\w-]+", "-", report.brand).strip("-").lower()
    if not slug or not slug.isascii():
        slug = "brand-" + hashlib.sha1(report.brand.encode()).hexdigest()[:8]
    days = round(report.period.length.total_seconds() / 86400)
    return f"brandpulse-{slug}-{local(report.period.start, report.time_zone, '%Y-%m-%d')}-{days}d"


def write_html(report: FullReport, out_dir: Path, charts: dict[str, bytes] | None = None) -> Path:
    path = out_dir / f"{file_stem(report)}.html"
    path.write_text(to_html(report, charts), encoding="utf-8")
    return path


def sampled_note(themes: ComplaintThemes, lang: Language) -> str:
    """What a sampled theme list says about its sizes (`ComplaintThemes.sampled`)."""
    return label("themes_sampled", lang).format(sampled=f"{themes.sampled:,}",
                                                total=f"{themes.total:,}")


def _wrap(text: str, width: int = 95) -> list[str]:
    return textwrap.wrap(text, width) or [""]


def _text_lines(report: FullReport, lang: Language) -> list[tuple[str, str]]:
    """The PDF's text as (style, line): style "h1", "h2", "" (body) or "break"."""
    sov = report.insight.share_of_voice
    out: list[tuple[str, str]] = [
        ("h1", f"{label('title', lang)}: {report.brand}"),
        ("", f"{label('period', lang)}: {period_text(report)}, {label('compared', lang)}"),
        ("h2", label("headline", lang)),
    ]
    out += [("", f"{label(f.key, lang)}: {f.value}   ({label('previous', lang)} {f.previous}, "
                 f"{label('change', lang)} {f.change})") for f in headline(report)]
    out.append(("h2", label("competitors", lang)))
    out += [("", f"{b.brand}: {b.counts.mentions:,} {label('mentions', lang).lower()}, "
                 f"{label('share_of_voice', lang).lower()} {_pct(b.share_of_voice)} "
                 f"({_points(b.share_of_voice_change)}), {label('net_sentiment', lang).lower()} "
                 f"{_net(b.counts.net_sentiment, True)}") for b in sov.brands]
    out.append(("h2", label("themes", lang)))
    themes = report.insight.themes
    if themes is None or not themes.themes:
        out.append(("", label("no_themes", lang)))
    else:
        if themes.sampled:
            out += [("", line) for line in _wrap(sampled_note(themes, lang))]
        for n, t in enumerate(themes.themes[:5], 1):
            out.append(("", f"{n}. {t.label} [{t.language}]: {t.size:,} "
                            f"({label('previous', lang)} {t.previous_size:,})"))
            out += [("", f"     “{line}”") for x in t.examples[:1] for line in _wrap(
                _one_line(x.text, 200), 85)]
    out.append(("break", ""))  # the charts' pages come here; posts start a page of their own
    for key, posts in (("top_negative", report.negative_posts),
                       ("top_positive", report.positive_posts)):
        out.append(("h2", label(key, lang)))
        if not posts:
            out.append(("", label("no_posts", lang)))
        for m in posts:
            reach = f"{m.author_reach:,}" if m.author_reach is not None else "–"
            lines = _wrap(f"• {_post_text(m)} ({m.author or '?'}, {m.source}, "
                          f"{label('reach', lang)} {reach})")
            out += [("", lines[0])] + [("", "   " + line) for line in lines[1:]]
    out.append(("h2", label("authors", lang)))
    out += [("", f"{a.name} ({a.source}): {label('reach', lang)} {a.reach:,}, "
                 f"{a.mentions:,} {label('mentions', lang).lower()}, {a.negative:,} "
                 f"{label('negative', lang)}") for a in report.authors] or [
        ("", label("no_posts", lang))]
    out.append(("h2", label("alerts", lang)))
    if report.alerts is None:
        out.append(("", f"{label('alerts_unavailable', lang)}: {report.alerts_note}"))
    else:
        if report.alerts_note:
            out += [("", line) for line in _wrap(report.alerts_note)]
        out += [("", f"{local(a.created_at, report.time_zone)}  {a.kind} ({a.signal})  "
                     f"{a.observed:,} / {a.expected:.1f}  {a.status}")
                for a in report.alerts] or [("", label("no_alerts", lang))]
    return out


_LINES_PER_PAGE = 52
_STYLE = {"h1": (15, "bold", 2.0), "h2": (11, "bold", 1.6), "": (8.5, "normal", 1.0)}


def to_pdf(report: FullReport) -> bytes:
    """The report as PDF bytes: text pages around the two chart pages (A4 portrait)."""
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure as MplFigure

    lang = chart_language(report.language)  # text in Chinese only with a CJK font
    sov, tz = report.insight.share_of_voice, report.time_zone
    lines = _text_lines(report, lang)
    pages: list[list[tuple[str, str]]] = [[]]
    used = 0.0
    for style, text in lines:
        if style == "break":
            pages.append([])
            used = 0.0
            continue
        height = _STYLE[style][2]
        if used + height > _LINES_PER_PAGE:
            pages.append([])
            used = 0.0
        pages[-1].append((style, text))
        used += height
    out = io.BytesIO()
    with chart_style(lang), warnings.catch_warnings(), PdfPages(
        out, metadata={"Title": f"BrandPulse report: {report.brand}", "Creator": "BrandPulse"}
    ) as pdf:
        # Posts quote emoji, which no installed text font draws: the PDF shows a box and
        # matplotlib warns once per glyph in the middle of the command's output. Only
        # those are silenced; a missing CJK glyph (no CJK font) still warns, see charts.py.
        warnings.filterwarnings(
            "ignore", message=r"Glyph \d+ \(\\N\{(?!CJK)[^}]*\}\) missing from font"
        )
        for n, page in enumerate(pages):
            fig = MplFigure(figsize=(8.27, 11.69))
            y = 0.95
            for style, text in page:
                size, weight, height = _STYLE[style]
                fig.text(0.07, y, text, fontsize=size, fontweight=weight, va="top")
                y -= 0.0172 * height
            pdf.savefig(fig)
            if n == 0:  # the charts follow the headline figures
                pdf.savefig(charts_page(sov, lang, tz))
    return out.getvalue()


def write_pdf(report: FullReport, out_dir: Path) -> Path:
    path = out_dir / f"{file_stem(report)}.pdf"
    path.write_bytes(to_pdf(report))
    return path
