"""Block Kit messages for health notices (`alerts.health`): a source that keeps
failing, Elasticsearch staying down, and their recoveries.

Short on purpose: a header saying what is wrong or what recovered, the sentence of
`alerts.health.notice_text` (escaped: a source's error text comes from a remote
server) and a footer with the notice id, which makes a repeat after a crash obvious.
The same escaping and limits as the brand alerts (`slack_templates`) apply.
"""

from __future__ import annotations

from typing import Any

from alerts.health import HealthNotice, notice_text
from alerts.notifiers.slack_templates import (
    MAX_CONTEXT_TEXT,
    MAX_FALLBACK_TEXT,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    escaped_clip,
)
from alerts.notifiers.text import clip, untrusted

_TITLES = {
    "source_down": ":warning: Source failing",
    "source_back": ":white_check_mark: Source recovered",
    "elasticsearch_down": ":warning: Elasticsearch down",
    "elasticsearch_back": ":white_check_mark: Elasticsearch back",
}


def notice_headline(notice: HealthNotice) -> str:
    """The sentence for the `text` fallback, which Slack parses as mrkdwn too: escaped."""
    return escaped_clip(untrusted(notice_text(notice)), 1000, max_len=MAX_FALLBACK_TEXT)


def build_notice_message(notice: HealthNotice) -> dict[str, Any]:
    """`{"text": ..., "blocks": [...]}` for one notice, within Slack's limits."""
    title = _TITLES[notice.kind]
    if notice.kind.startswith("source"):
        title += f": {notice.subject}"
    sentence = untrusted(notice_text(notice))
    blocks: list[dict[str, Any]] = [
        # plain_text headers are never parsed as mrkdwn
        {"type": "header", "text": {"type": "plain_text", "text": clip(untrusted(title), MAX_HEADER_TEXT), "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "verbatim": True,
                                     "text": escaped_clip(sentence, 1000, max_len=MAX_SECTION_TEXT)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(
            f"BrandPulse health notice `{notice.notice_id}`", MAX_CONTEXT_TEXT)}]},
    ]  # fmt: skip
    return {"text": notice_headline(notice), "blocks": blocks}
