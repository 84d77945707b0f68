"""The JSON body of the generic webhook (`alerts.notifiers.webhook`), version 1.

An alert::

    {"schema": "brandpulse.alert/1", "event": "alert", "id": "<alert_id>",
     "text": "<one-line headline>",
     "alert": {"kind": "started|continuing|ended|high_reach", "signal": "volume|share|reach",
               "brand": ..., "title": ..., "summary": [sentences],
               "alert_id": ..., "wave_id": ...,
               "interval_start": ISO-8601 UTC, "interval_end": ..., "wave_started_at": ... | null,
               "observed": int, "expected": float, "total": int | null,
               "negative_share": float | null, "usual_share": float | null, "score": float | null,
               "discover_url": Kibana link | null,
               "top_posts": [{"title", "url" (http(s) or null), "author", "author_reach",
                              "source", "source_name", "created_at", "excerpt",
                              "excerpt_truncated": bool, "negative": float | null}],
               "posts_omitted": int,
               "escalated_after": seconds | null}}

`escalated_after` is set on an escalation copy (a route's `escalate_to`: nobody
acknowledged the alert `alert_id` without its `-escalated` suffix in that many
seconds); its title, text and first summary sentence say so too.

A health notice::

    {"schema": "brandpulse.notice/1", "event": "notice", "id": "<notice_id>",
     "text": "<the sentence>",
     "notice": {"kind": "source_down|source_back|elasticsearch_down|elasticsearch_back",
                "title": ..., "subject": ..., "since": ISO-8601, "at": ISO-8601,
                "failures": int, "error": str | null, "spooled": int | null,
                "pending": int | null}}

Text is what a post said, with bidi controls removed (`digest`), not escaped: a
receiver that renders it into a markup must escape it for that markup. `id` is
deterministic and the same on every attempt: receivers deduplicate on it (see the
delivery notes in `alerts.notifiers.webhook`). An excerpt is cut to 280 characters and
the body to `MAX_BODY_BYTES` (shorter excerpts, then fewer posts; never the links).
"""

from __future__ import annotations

from typing import Any

from alerts.health import HealthNotice
from alerts.model import Alert
from alerts.notifiers.digest import alert_digest, excerpt, fit, notice_digest
from alerts.notifiers.http import encode_json

SCHEMA_ALERT = "brandpulse.alert/1"
SCHEMA_NOTICE = "brandpulse.notice/1"
MAX_BODY_BYTES = 64 * 1024


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def build_body(alert: Alert) -> bytes:
    """The exact bytes POSTed (and signed) for `alert`."""
    d = alert_digest(alert)

    def render(shown: int, chars: int) -> bytes:
        posts = []
        for post, raw in list(zip(d.posts, alert.top_posts, strict=True))[:shown]:
            text = excerpt(post, chars)
            posts.append({
                "title": post.title, "url": post.url, "author": post.author,
                "author_reach": raw.author_reach, "source": raw.source,
                "source_name": raw.source_name, "created_at": _iso(raw.created_at),
                "excerpt": text, "excerpt_truncated": text != post.excerpt,
                "negative": raw.sentiment.negative if raw.sentiment else None,
            })  # fmt: skip
        body = {
            "schema": SCHEMA_ALERT,
            "event": "alert",
            "id": alert.alert_id,
            "text": d.headline,
            "alert": {
                "kind": alert.kind, "signal": alert.signal, "brand": d.brand,
                "title": d.title, "summary": list(d.summary),
                "alert_id": alert.alert_id, "wave_id": alert.wave_id,
                "interval_start": _iso(alert.interval_start), "interval_end": _iso(alert.interval_end),
                "wave_started_at": _iso(alert.wave_started_at),
                "observed": alert.observed, "expected": alert.expected, "total": alert.total,
                "negative_share": alert.negative_share, "usual_share": alert.usual_share,
                "score": alert.score, "discover_url": d.discover_url,
                "top_posts": posts, "posts_omitted": len(d.posts) - len(posts),
                "escalated_after": (alert.escalated_after.total_seconds()
                                    if alert.escalated_after is not None else None),
            },
        }  # fmt: skip
        return encode_json(body)

    out = fit(render, len(d.posts), MAX_BODY_BYTES)
    assert isinstance(out, bytes)
    return out


def build_notice_body(notice: HealthNotice) -> bytes:
    """The exact bytes POSTed (and signed) for a health notice."""
    d = notice_digest(notice)
    return encode_json({
        "schema": SCHEMA_NOTICE, "event": "notice", "id": notice.notice_id, "text": d.sentence,
        "notice": {"kind": notice.kind, "title": d.title, "subject": notice.subject,
                   "since": _iso(notice.since), "at": _iso(notice.at), "failures": notice.failures,
                   "error": notice.error, "spooled": notice.spooled, "pending": notice.pending},
    })  # fmt: skip
