"""One brand's insight over a period: share of voice, trend and complaint themes, together.

`brand_insight` gathers what `scheduler.py report` prints (`to_text`, `to_json`); the
full report (HTML/PDF/Slack, issue 13 item 4) is to render the same `BrandInsight`.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from brandpulse.config import Config
from reports.period import Period, iso
from reports.share_of_voice import (
    BrandFigures,
    SentimentCounts,
    ShareOfVoice,
    competitive_set,
    share_of_voice,
)
from reports.themes import ComplaintThemes, Theme, complaint_themes


@dataclasses.dataclass(frozen=True)
class BrandInsight:
    brand: str
    share_of_voice: ShareOfVoice
    themes: ComplaintThemes | None  # None when themes were not asked for


def brand_insight(
    client: Elasticsearch, config: Config, index: str, brand: str, period: Period, *,
    exclude_duplicates: bool = True, themes: bool = True, max_themes: int = 10,
    time_zone: str = "UTC", now: datetime | None = None,
) -> BrandInsight:
    """Share of voice of `brand` against its competitors and its complaint themes.

    `time_zone` aligns the trend's days (a scheduled report's zone); the period is exact.
    With `alerts.counts_source: rollup` (the default) the figures are read from the
    hourly counts rollup when it can answer them exactly (`share_of_voice`): a period
    ending by `now` (default: the current time) less `alerts.query_delay`, the newest
    stretch indexing may still be filling, as the alert checks judge it."""
    from nlp.enrich import brand_queries

    counts_index = settled = None
    if config.alerts.counts_source == "rollup":
        from store.rollup import counts_index_name

        counts_index = counts_index_name(config.elasticsearch.index_prefix)
        settled = (now or datetime.now(UTC)) - config.alerts.query_delay
    sov = share_of_voice(client, index, competitive_set(config, brand), period,
                         exclude_duplicates=exclude_duplicates, time_zone=time_zone,
                         counts_index=counts_index, settled=settled)
    found = None
    if themes:
        found = complaint_themes(client, index, brand, period,
                                 known_queries=brand_queries(config.brands),
                                 exclude_duplicates=exclude_duplicates, max_themes=max_themes)
    return BrandInsight(brand=brand, share_of_voice=sov, themes=found)


# ---------------------------------------------------------------------------- JSON


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, SentimentCounts):
        return {**dataclasses.asdict(value), "unscored": value.unscored,
                "net_sentiment": value.net_sentiment}
    if isinstance(value, BrandFigures):
        out = {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        out |= {"mentions_change": value.mentions_change,
                "share_of_voice_change": value.share_of_voice_change,
                "net_sentiment_change": value.net_sentiment_change}
        return out
    if isinstance(value, Theme):
        out = {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return out | {"change": value.change}
    if isinstance(value, Period):
        return {"start": iso(value.start), "end": iso(value.end),
                "previous_start": iso(value.previous.start)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def to_json(insights: list[BrandInsight]) -> str:
    return json.dumps({"reports": [_jsonable(i) for i in insights]}, ensure_ascii=False, indent=2)


# ---------------------------------------------------------------------------- text


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value * 100:+.0f}%" if signed else f"{value * 100:.1f}%"


def _points(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f} pt"


def _net(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value * 100:+.0f}" if signed or value else "0"


def _length(period: Period) -> str:
    days, rest = divmod(period.length.total_seconds(), 86400)
    if rest:
        return f"{period.length.total_seconds() / 3600:g} hours"
    return "day" if days == 1 else f"{days:g} days"


def _figures_row(f: BrandFigures) -> str:
    c = f.counts
    return (f"  {f.brand[:14]:<14} {c.mentions:>8,} {_pct(f.mentions_change, True):>7} "
            f"{_pct(f.share_of_voice):>7} {_points(f.share_of_voice_change):>9} "
            f"{c.positive:>6,} {c.neutral:>6,} {c.negative:>6,} {c.uncertain:>6,} "
            f"{_net(c.net_sentiment, True):>5} {_net(f.net_sentiment_change, True):>6}")


def _split_line(name: str, split: dict[str, SentimentCounts]) -> str:
    parts = [f"{k} {v.mentions:,} (net {_net(v.net_sentiment, True)})" for k, v in split.items()]
    return f"  {name}: " + ("; ".join(parts) if parts else "none")


def to_text(insight: BrandInsight) -> str:
    sov = insight.share_of_voice
    p = sov.period
    lines = [
        f"{insight.brand}: {p.start:%Y-%m-%d %H:%M} → {p.end:%Y-%m-%d %H:%M} UTC, compared with "
        f"the {_length(p)} before; "
        + ("reposts excluded" if sov.exclude_duplicates else "reposts counted"),
        "",
        "Share of voice and sentiment (each brand's own sentiment; uncertain apart)",
        f"  {'brand':<14} {'mentions':>8} {'change':>7} {'share':>7} {'Δshare':>9} "
        f"{'pos':>6} {'neu':>6} {'neg':>6} {'unc':>6} {'net':>5} {'Δnet':>6}",
        *(_figures_row(f) for f in sov.brands),
        "",
        _split_line("by source", dict(sov.focus.by_source)),
        _split_line("by language", dict(sov.focus.by_language)),
        "",
        f"Trend ({'hourly' if sov.trend_interval == 'hour' else 'daily'}, {insight.brand})",
    ]
    peak = max((t.counts.mentions for t in sov.focus.trend), default=0) or 1
    step = "%Y-%m-%d %H:00" if sov.trend_interval == "hour" else "%Y-%m-%d"
    for t in sov.focus.trend:
        bar = "█" * round(20 * t.counts.mentions / peak)
        lines.append(f"  {t.start:{step}}  {t.counts.mentions:>7,}  neg {t.counts.negative:>6,}  "
                     f"net {_net(t.counts.net_sentiment, True):>4}  {bar}")
    themes = insight.themes
    if themes is not None:
        lines += ["", f"Complaint themes ({themes.total:,} negative mentions, "
                      f"{themes.previous_total:,} the period before)"]
        if themes.truncated:
            lines.append("  (more negative mentions than the limit: the latest were left out)")
        if themes.sampled:
            lines.append(f"  (sizes estimated from a random sample of {themes.sampled:,} of the "
                         f"{themes.total:,} negative mentions)")
        for n, theme in enumerate(themes.themes, 1):
            lines.append(f"  {n}. {theme.label} [{theme.language}]: {theme.size:,} "
                         f"({_pct(themes.share(theme))}), before {theme.previous_size:,} "
                         f"({_pct(theme.change, True)})")
            for e in theme.examples:
                text = " ".join(e.text.split())[:140]
                who = f"{e.author or '?'}, reach {e.author_reach:,}" if e.author_reach is not None \
                    else (e.author or "?")
                lines.append(f"       “{text}” ({who})")
        lines.append(f"  other: {themes.other:,}, before {themes.previous_other:,}")
    return "\n".join(lines)
