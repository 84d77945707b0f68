"""What every channel does to an alert's untrusted text, links and figures before its markup.

A post's title, text, author and link are written by strangers; the brand and the
figures are ours. Every channel (Slack, e-mail, the webhook-style channels through
`alerts.notifiers.digest`, the log) shows them through these helpers, so the rules that
keep a post from misleading a reader are kept once:

* `untrusted`: bidi override and isolate characters removed (a U+202E can make "nimda"
  read "admin") and runs of more than three of the same symbol shortened (300 `<` must
  not eat an excerpt's budget);
* `clean_url`: a link only when it is http(s) with a host, without bidi controls and
  without a `user@` part (in `https://trusted.example@evil.example/` only what follows
  the `@` is where the link goes), whitespace percent-encoded, never otherwise altered;
* `clip` and `one_line`: cut to a length with an ellipsis, runs of whitespace made one
  space;
* the figures every channel words alike (`window_text`, `count_text`, `expected_text`,
  `escalation_note`).

Nothing here escapes for a markup: each channel's template does that for its own
(Slack's mrkdwn, HTML, Markdown) after these, and cuts to its own limits.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from alerts.model import Alert, base_alert_id
from alerts.notifiers.summary import _duration, _when

EXCERPT_CHARS = 280  # per post: enough to judge it, short enough for five of them
ELLIPSIS = "…"

# Characters that reorder what follows them (LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI,
# PDI) or flip the direction of neutral characters (LRM, RLM, ALM): invisible, and able
# to make text read differently from what it is.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
# More than three of the same punctuation or symbol in a row says nothing three do not.
_NOISE_RUN = re.compile(r"([^\w\s])\1{3,}")


def untrusted(text: str) -> str:
    """A post's text made fit to show: bidi controls removed, long symbol runs shortened."""
    return _NOISE_RUN.sub(r"\1\1\1", _BIDI.sub("", text))


def clean_url(url: str | None) -> str | None:
    """`url` when it is http(s) with a host, without bidi controls and without a
    `user@` part (in `https://trusted.example@evil.example/` only what follows the `@`
    is where the link goes), whitespace percent-encoded; None for anything else
    (javascript:, data:, garbage). Nothing else in it changes: a link must still lead
    where the post's link led."""
    if not url:
        return None
    try:
        parts = urlsplit(_BIDI.sub("", url.strip()))
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    clean = urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, parts.fragment))
    # whitespace inside a URL ends it in every markup: percent-encode it
    return re.sub(r"\s", lambda m: f"%{ord(m.group(0)):02X}", clean)


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + ELLIPSIS


def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines included) made one space, trimmed."""
    return re.sub(r"\s+", " ", text).strip()


def window_text(alert: Alert) -> str:
    """The alert's interval: "2026-11-27 14:00–14:30 UTC", both dates when it spans two."""
    start, end = alert.interval_start, alert.interval_end
    if start.date() == end.date():
        return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC"
    return f"{_when(start)} – {_when(end)}"


def count_text(value: int | None) -> str:
    """A count with thousands separators, "unknown" for None (a reach nobody reported)."""
    return "unknown" if value is None else f"{value:,}"


def expected_text(value: float) -> str:
    """An expected count: whole from 10 up, one decimal below (0.4 is not 0)."""
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def escalation_note(alert: Alert) -> str | None:
    """For an escalation copy (`Alert.escalated`): that nobody acknowledged the alert in
    time and how to. Plain text; None for any other alert."""
    if alert.escalated_after is None:
        return None
    waited = _duration(alert.created_at, alert.created_at + alert.escalated_after)
    original = base_alert_id(alert.alert_id)
    return (f"Escalated: not acknowledged within {waited} "
            f"(acknowledge with: scheduler.py alerts ack {original})")  # fmt: skip
