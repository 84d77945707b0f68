"""Feishu / Lark (飞书) custom bot messages: interactive cards (`alerts.notifiers.feishu`).

The documented shape (https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot,
which also states the 20 KB request limit, and its message-card pages)::

    {"msg_type": "interactive",
     "card": {"config": {"wide_screen_mode": true},
              "header": {"title": {"tag": "plain_text", "content": "..."}, "template": "red"},
              "elements": [{"tag": "div", "text": {"tag": "plain_text", "content": "..."}},
                           {"tag": "action", "actions": [{"tag": "button", "url": "...", ...}]},
                           {"tag": "hr"}, {"tag": "note", "elements": [...]}]}}

(plus `timestamp` and `sign` added by the notifier when the bot is signed). This is
the card JSON 1.0 structure (`elements` at the top of `card`), which the custom-bot
page still uses in its examples beside the newer `schema: "2.0"` with `body.elements`.

Text: every text that holds something from a post, an author or a brand is a
`plain_text` element, which Feishu shows as written and never parses (`lark_md` would
turn `<at id=all></at>` into a ping of the whole group and `[x](url)` into a link), so
it needs no escaping, only the bidi and noise cleaning `digest` does. Links are
buttons whose URL comes from `text.clean_url` (http(s) only, no `user@`), labelled
with the host they go to.

Size: a custom bot's request body may be at most 20 KB; the card is kept under
`MAX_BODY_BYTES` by `digest.fit` (shorter excerpts, then fewer posts; the title, the
counts, the Kibana button and the alert id stay).
"""

from __future__ import annotations

import json
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

MAX_BODY_BYTES = 19_000  # 20 KB documented, less room for timestamp and sign
_TEMPLATES = {"started": "red", "continuing": "orange", "ended": "green", "high_reach": "red"}


def _plain(text: str) -> dict[str, str]:
    return {"tag": "plain_text", "content": text}


def _div(text: str) -> dict[str, Any]:
    return {"tag": "div", "text": _plain(text)}


def _button(label: str, url: str, kind: str = "default") -> dict[str, Any]:
    return {"tag": "button", "text": _plain(label), "url": url, "type": kind}


def _post(post: PostDigest, chars: int) -> list[dict[str, Any]]:
    lines = [post.title, f"{post.author} · {post.meta}"]
    text = excerpt(post, chars)
    if text:
        lines.append(f"“{text}”")
    out: list[dict[str, Any]] = [_div("\n".join(lines))]
    if post.url:
        out.append({"tag": "action", "actions": [_button(f"Open post ({post.host})", post.url)]})
    return out


def _card(title: str, template: str, elements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"config": {"wide_screen_mode": True},
            "header": {"title": _plain(title), "template": template},
            "elements": elements}  # fmt: skip


def _render(d: AlertDigest, shown: int, chars: int) -> bytes:
    elements: list[dict[str, Any]] = [_div("\n".join(d.summary))]
    if d.facts:
        elements.append({"tag": "div", "fields": [
            {"is_short": True, "text": _plain(f"{name}: {value}")} for name, value in d.facts]})  # fmt: skip
    if d.posts:
        elements.append({"tag": "hr"})
        elements.append(_div(d.posts_title))
        for post in d.posts[:shown]:
            elements.extend(_post(post, chars))
        if shown < len(d.posts):
            elements.append(_div(f"…and {len(d.posts) - shown} more in Kibana."))
    elements.append({"tag": "hr"})
    if d.discover_url:
        elements.append({"tag": "action", "actions": [_button("Open in Kibana", d.discover_url, "primary")]})
    elements.append({"tag": "note", "elements": [_plain(d.footer)]})
    card = _card(d.title, _TEMPLATES.get(d.kind, "blue"), elements)
    return encode_json({"msg_type": "interactive", "card": card})


def build_message(alert: Alert) -> dict[str, Any]:
    """The request body for `alert` (without `timestamp`/`sign`), under `MAX_BODY_BYTES`."""
    d = alert_digest(alert)
    out = fit(lambda shown, chars: _render(d, shown, chars), len(d.posts), MAX_BODY_BYTES)
    assert isinstance(out, bytes)
    return json.loads(out)


def build_notice_message(notice: HealthNotice) -> dict[str, Any]:
    d = notice_digest(notice)
    template = "green" if notice.recovered else "orange"
    card = _card(d.title, template, [_div(d.sentence), {"tag": "note", "elements": [_plain(d.footer)]}])
    return {"msg_type": "interactive", "card": card}
