"""What an alert or a health notice says, as plain text, before any channel's markup.

The webhook-style channels (`webhook`, `teams`, `wecom`, `dingtalk`, `feishu`) all show
the same things: a title, the counts, the top posts with their links, a Kibana link and
the alert id. `AlertDigest` holds them as plain text that is already fit to show (bidi
controls removed and long symbol runs shortened by `text.untrusted`, posts
on one line, URLs reduced to http(s) without a `user@` part) but neither escaped nor
cut: each channel's template escapes for its own markup and cuts to its own limits.
The wording is the Slack message's (the same helpers), so a team that moves from
Slack to another channel reads the same sentences.

`fit()` is the one size-fitting rule of these templates: shorten the post excerpts
first, then show fewer posts; the title, the counts, the Kibana link and the alert id
are never cut, because they are what a reader acts on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from alerts.health import HealthNotice, notice_text
from alerts.model import Alert
from alerts.notifiers.summary import _pct, _when, summary_lines
from alerts.notifiers.text import (
    EXCERPT_CHARS,
    clean_url,
    clip,
    count_text,
    escalation_note,
    expected_text,
    one_line,
    untrusted,
    window_text,
)
from brandpulse.mention import Mention

TITLE_CHARS = 150
AUTHOR_CHARS = 100

_TITLES = {
    "started": "Negative spike",
    "continuing": "Still elevated",
    "ended": "Back to normal",
    "high_reach": "High-reach negative post",
}
_NOTICE_TITLES = {
    "source_down": "Source failing",
    "source_back": "Source recovered",
    "elasticsearch_down": "Elasticsearch down",
    "elasticsearch_back": "Elasticsearch back",
}


@dataclass(frozen=True)
class PostDigest:
    title: str
    url: str | None  # clean_url(): http(s) only, or None
    host: str | None
    excerpt: str  # the whole text on one line; templates cut it
    author: str
    meta: str  # "reach 1,000 · reddit · 2026-11-27 14:00 UTC · negative 90%"


@dataclass(frozen=True)
class AlertDigest:
    kind: str
    brand: str
    title: str  # "Negative spike: Acme"
    headline: str  # one sentence, the notification preview
    summary: tuple[str, ...]  # sentences
    facts: tuple[tuple[str, str], ...]
    posts_title: str
    posts: tuple[PostDigest, ...]
    discover_url: str | None
    footer: str  # "alert started-… · wave wave-…"
    alert_id: str
    wave_id: str


@dataclass(frozen=True)
class NoticeDigest:
    kind: str
    title: str
    sentence: str
    footer: str
    notice_id: str


def _post(post: Mention) -> PostDigest:
    # titles and names cut like the Slack message's: a 5,000-character title must not
    # push every other post out of a size-limited message
    title = clip(one_line(untrusted(post.title or "")), TITLE_CHARS) or f"Post on {post.source}"
    url = clean_url(post.url)
    host = urlsplit(url).hostname if url else None
    meta = [f"reach {count_text(post.author_reach)}",
            post.source if post.source_name == post.source else f"{post.source} · {post.source_name}",
            _when(post.created_at)]  # fmt: skip
    engagement = post.engagement.total()
    if engagement:
        meta.append(f"{engagement:,} interactions")
    if post.sentiment is not None:
        meta.append(f"negative {post.sentiment.negative:.0%}")
    return PostDigest(
        title=title,
        url=url,
        host=host,
        excerpt=one_line(untrusted(post.text)),
        author=clip(one_line(untrusted(post.author or "")), AUTHOR_CHARS) or "unknown author",
        meta=one_line(untrusted(" · ".join(meta))),
    )


def _headline(alert: Alert, brand: str) -> str:
    if alert.kind == "high_reach":
        post = alert.top_posts[0] if alert.top_posts else None
        who = (one_line(untrusted(post.author or "")) or "an author") if post else "an author"
        reach = count_text(post.author_reach) if post else "unknown"
        return f"High-reach negative post about {brand} by {who} (reach {reach})"
    counts = f"{alert.observed} negative mentions {window_text(alert)}, usually {expected_text(alert.expected)}"
    if alert.kind == "started":
        what = "Negative sentiment dip" if alert.signal == "share" else "Negative spike"
        return f"{what} for {brand}: {counts}"
    if alert.kind == "continuing":
        return f"Still elevated for {brand}: {counts}"
    return f"Back to normal for {brand}: {counts}"


def _summary(alert: Alert, brand: str) -> tuple[str, ...]:
    if alert.kind == "high_reach":
        return (f"A negative post about {brand} from an account with a large audience.",)
    ratio = alert.ratio
    times = f" ({ratio:.1f}× usual)" if ratio is not None else ""
    lines = [f"{alert.observed} negative mentions of {brand} in {window_text(alert)}, "
             f"against a usual {expected_text(alert.expected)}{times}."]  # fmt: skip
    lines += summary_lines(alert)
    return tuple(lines)


def alert_digest(alert: Alert) -> AlertDigest:
    """The alert as plain, display-safe text (see the module docstring)."""
    brand = one_line(untrusted(alert.brand))
    title = _TITLES[alert.kind]
    if alert.kind == "started" and alert.signal == "share":
        title = "Negative sentiment dip"
    facts: list[tuple[str, str]] = []
    if alert.kind != "high_reach":
        facts = [("Brand", brand), ("Window", window_text(alert)),
                 ("Negative mentions", f"{alert.observed} (usual {expected_text(alert.expected)})"),
                 ("Negative share", f"{_pct(alert.negative_share)} (usual {_pct(alert.usual_share)})")]  # fmt: skip
        if alert.score is not None:
            facts.append(("Score", f"{alert.score:.1f}"))
    # An escalation copy (`Alert.escalated`, sent to a route's `escalate_to`) says so in
    # its title and preview, and first thing how to acknowledge it, as on Slack and
    # by e-mail: every channel a route can escalate to must read as an escalation.
    note = escalation_note(alert)
    mark = "ESCALATED: " if note is not None else ""
    return AlertDigest(
        kind=alert.kind,
        brand=brand,
        title=f"{mark}{title}: {brand}",
        headline=mark + _headline(alert, brand),
        summary=(note, *_summary(alert, brand)) if note is not None else _summary(alert, brand),
        facts=tuple(facts),
        posts_title="Top negative posts" if alert.kind != "high_reach" else "The post",
        posts=tuple(_post(p) for p in alert.top_posts),
        discover_url=clean_url(alert.discover_url),
        footer=f"alert {alert.alert_id} · wave {alert.wave_id}",
        alert_id=alert.alert_id,
        wave_id=alert.wave_id,
    )


def notice_digest(notice: HealthNotice) -> NoticeDigest:
    """A health notice as plain, display-safe text (its error comes from a remote server)."""
    title = _NOTICE_TITLES[notice.kind]
    if notice.kind.startswith("source"):
        title += f": {notice.subject}"
    return NoticeDigest(
        kind=notice.kind,
        title=one_line(untrusted(title)),
        sentence=untrusted(notice_text(notice)),
        footer=f"BrandPulse health notice {notice.notice_id}",
        notice_id=notice.notice_id,
    )


# Excerpt budgets tried in turn, then fewer posts: see `fit`.
_EXCERPT_STEPS = (EXCERPT_CHARS, 160, 80, 0)


def fit(render: Callable[[int, int], str | bytes], posts: int, max_bytes: int) -> str | bytes:
    """The first rendering within `max_bytes` UTF-8 bytes, trying the full excerpt
    budget with all `posts`, then shorter excerpts, then fewer posts (down to none).

    `render(shown_posts, excerpt_chars)` builds the message; what it always contains
    (title, counts, links, alert id) must fit on its own, or the last attempt is
    returned as is and the channel's own check refuses it.
    """
    attempt: str | bytes = b""
    for shown in range(posts, -1, -1):
        for chars in _EXCERPT_STEPS:
            attempt = render(shown, chars)
            size = len(attempt.encode("utf-8")) if isinstance(attempt, str) else len(attempt)
            if size <= max_bytes:
                return attempt
            if shown == 0:
                break  # no excerpt to shorten
    return attempt


def excerpt(post: PostDigest, chars: int) -> str:
    """The post's text cut to `chars` characters (with an ellipsis when cut)."""
    return clip(post.excerpt, chars) if chars > 0 else ""
