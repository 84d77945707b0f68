"""Adaptive Card messages for Microsoft Teams incoming webhooks (`alerts.notifiers.teams`).

The message is the documented webhook shape
(https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#send-adaptive-cards-using-an-incoming-webhook)::

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                      "contentUrl": null,
                      "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                                  "type": "AdaptiveCard", "version": "1.4",
                                  "body": [...], "actions": [...]}}]}

Text: Teams renders a subset of Markdown in `TextBlock` and `FactSet` text
(https://learn.microsoft.com/en-us/adaptive-cards/authoring-cards/text-features), so
everything from a post or a brand name has its Markdown punctuation backslash-escaped
(`escape`): a post cannot make bold text, a heading or a link that says one place and
goes to another. Links are built here, from `text.clean_url` (http(s) only, no
`user@`), with the host they go to shown beside them. A mention in Teams needs an
`msteams.entities` entry, which these cards never carry, so `<at>` in a post is text.

Size: Teams documents a limit of 28 KB per webhook message
(https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook)
and answers 413 above it; senders report 413 from ~21 KB (the msteams_hermes gem uses
21,000 bytes after testing), so the card is kept under
`MAX_BODY_BYTES` by `digest.fit` (shorter excerpts, then fewer posts; the title,
counts, Kibana button and alert id stay).
"""

from __future__ import annotations

import re
from typing import Any

from alerts.health import HealthNotice
from alerts.model import Alert
from alerts.notifiers.digest import (
    AlertDigest,
    PostDigest,
    alert_digest,
    excerpt,
    fit,
    notice_digest,
)
from alerts.notifiers.http import encode_json

MAX_BODY_BYTES = 20_000
CARD_VERSION = "1.4"
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"

# The characters that open Markdown in Teams' subset (emphasis, links, code, strike,
# headings, HTML-ish tags) wherever they stand, and list markers at a line's start; a
# backslash makes each literal. `(` and `!` need nothing once `[` is escaped.
_MARKDOWN = re.compile(r"([\\`*_\[\]#<>~|])")
_LIST_START = re.compile(r"^(\s*)([-+]|\d+\.)(?=\s)", re.MULTILINE)
_COLORS = {"started": "Attention", "continuing": "Warning", "ended": "Good", "high_reach": "Attention"}


def escape(text: str) -> str:
    """`text` with the characters that open Markdown backslash-escaped (CommonMark's
    escape: a backslash before ASCII punctuation; `12.` at a line start becomes `12\\.`)."""
    out = _MARKDOWN.sub(r"\\\1", text)

    def marker(m: re.Match[str]) -> str:
        mark = m.group(2)
        return m.group(1) + (mark[:-1] + "\\." if mark.endswith(".") else "\\" + mark)

    return _LIST_START.sub(marker, out)


def _link_target(url: str) -> str:
    # Inside (...) of a Markdown link: no spaces, parentheses or angle brackets.
    return url.replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _post_container(post: PostDigest, chars: int) -> dict[str, Any]:
    title = escape(post.title)
    if post.url:
        heading = f"[{title}]({_link_target(post.url)}) ({escape(post.host or '')})"
    else:
        heading = title
    items = [_text(f"**{heading}**"),
             _text(f"{escape(post.author)} · {escape(post.meta)}", isSubtle=True, size="Small", spacing="None")]  # fmt: skip
    text = excerpt(post, chars)
    if text:
        items.append(_text(escape(text), spacing="Small"))
    return {"type": "Container", "separator": True, "items": items}


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]], summary: str) -> dict[str, Any]:
    content: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if actions:
        content["actions"] = actions
    # `summary` is the notification preview; Teams takes it from the message.
    return {"type": "message", "summary": summary,
            "attachments": [{"contentType": CONTENT_TYPE, "contentUrl": None, "content": content}]}  # fmt: skip


def _render(d: AlertDigest, shown: int, chars: int) -> bytes:
    body: list[dict[str, Any]] = [
        _text(escape(d.title), size="Large", weight="Bolder", color=_COLORS.get(d.kind, "Default")),
        *(_text(escape(line), spacing="Small") for line in d.summary),
    ]
    if d.facts:
        body.append({"type": "FactSet", "facts": [{"title": escape(k), "value": escape(v)} for k, v in d.facts]})
    if d.posts:
        body.append(_text(f"**{d.posts_title}**", separator=True))
        body.extend(_post_container(p, chars) for p in d.posts[:shown])
        if shown < len(d.posts):
            body.append(_text(f"…and {len(d.posts) - shown} more in Kibana.", isSubtle=True, size="Small"))
    body.append(_text(escape(d.footer), isSubtle=True, size="Small", separator=True))
    actions = []
    if d.discover_url:
        actions.append({"type": "Action.OpenUrl", "title": "Open in Kibana", "url": d.discover_url})
    return encode_json(_card(body, actions, d.headline))


def build_message(alert: Alert) -> bytes:
    """The exact bytes POSTed for `alert`, under `MAX_BODY_BYTES` (see the module docstring)."""
    d = alert_digest(alert)
    out = fit(lambda shown, chars: _render(d, shown, chars), len(d.posts), MAX_BODY_BYTES)
    assert isinstance(out, bytes)
    return out


def build_notice_message(notice: HealthNotice) -> bytes:
    """A short card for a health notice: title, sentence, notice id."""
    d = notice_digest(notice)
    color = "Good" if notice.recovered else "Warning"
    body = [_text(escape(d.title), size="Large", weight="Bolder", color=color),
            _text(escape(d.sentence)),
            _text(escape(d.footer), isSubtle=True, size="Small", separator=True)]  # fmt: skip
    return encode_json(_card(body, [], d.sentence[:200]))
