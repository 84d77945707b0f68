"""The summary lines of an alert every channel shows: one list, rendered by each channel.

Slack's message, the e-mail body and the HTTP channels' digest (`alerts.notifiers.digest`:
Teams, Feishu, DingTalk, WeCom, the webhook) all say the same things under their
headline: the negative share (and its usual level), what the wave is about (themes,
where the channel shows them), for how long a wave has been going on, and that an
ended wave is over. `summary_lines` builds them once, as plain text; a channel passes
how it emphasises a figure (`strong`: Slack's `*bold*`) and how it renders a
configured name (`name`: Slack escapes `&`, `<`, `>`), so no channel keeps a copy of
the sentences that could drift from the others'.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from alerts.model import Alert


def _plain(text: str) -> str:
    return text


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(start: datetime, end: datetime) -> str:
    minutes = int((end - start).total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes} min"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def counted(alert: Alert, name: Callable[[str], str] = _plain) -> str:
    """What `observed` counts, in words (see `Alert.rule`); `name` renders the
    competitor's name for the channel."""
    if alert.rule == "volume_spike" or alert.rule == "flatline":
        return "mentions"
    if alert.rule == "positive_spike":
        return "positive mentions"
    if alert.rule == "competitor_negative_spike":
        return f"negative mentions of {name(alert.subject or 'the competitor')}"
    return "negative mentions"


def wave_over(alert: Alert, name: Callable[[str], str] = _plain) -> str:
    """The sentence of an ended wave, in the rule's own terms."""
    since = ""
    if alert.wave_started_at is not None:
        since = f" after {_duration(alert.wave_started_at, alert.interval_end)}"
    back = (
        "negative volume is back at its"
        if alert.rule == "negative_spike"
        else f"{counted(alert, name)} are back at their"
    )
    return f"The wave is over{since}; {back} usual level."


def summary_lines(
    alert: Alert,
    *,
    strong: Callable[[str], str] = _plain,
    name: Callable[[str], str] = _plain,
    themes: str | None = None,
) -> list[str]:
    """The lines under an alert's headline, in order: its negative share against the
    usual one (the negative spike rule's alerts carry it), `themes` (a channel's
    rendering of `Alert.themes`, for a started or continuing wave), how long a
    continuing wave has been going on, and that an ended wave is over."""
    lines: list[str] = []
    if alert.negative_share is not None:
        share = f"Negative share {strong(_pct(alert.negative_share))}"
        if alert.usual_share is not None:
            share += f" (usually {_pct(alert.usual_share)})"
        if alert.total is not None:
            share += f" of {alert.total:,} mentions"
        lines.append(share + ".")
    if themes is not None and alert.kind in ("started", "continuing"):
        lines.append(themes + ".")
    if alert.kind == "continuing" and alert.wave_started_at is not None:
        lines.append(
            f"The wave started {_when(alert.wave_started_at)} and is still going on "
            f"({_duration(alert.wave_started_at, alert.interval_end)} so far)."
        )
    if alert.kind == "ended":
        lines.append(wave_over(alert, name))
    return lines
