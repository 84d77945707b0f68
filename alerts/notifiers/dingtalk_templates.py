"""DingTalk (钉钉) custom robot messages: `msgtype` markdown (`alerts.notifiers.dingtalk`).

The documented shape (https://open.dingtalk.com/document/orgapp/custom-robot-access,
message types: https://open.dingtalk.com/document/orgapp/message-type)::

    {"msgtype": "markdown",
     "markdown": {"title": "<shown in the conversation list>", "text": "<Markdown>"},
     "at": {"isAtAll": false, "atMobiles": [], "atUserIds": []}}

Nobody is @-mentioned: `at` lists no one, and `@` in post text gets a word joiner
(`chat_markdown.escape`, which also replaces the Markdown-active characters by their
full-width twins, DingTalk having no escape; its Markdown also takes `<font>` tags,
which `<` being replaced defeats). DingTalk's Markdown needs a blank line between
paragraphs and two spaces before a line break.

Size: DingTalk documents no limit for a Markdown message; BrandPulse keeps the text
under `MAX_TEXT_BYTES` (8,000 bytes of UTF-8) with `digest.fit` all the same, because
phones truncate long robot messages and an unbounded post could make it huge.

`keyword`: a robot whose security setting is *custom keywords* refuses (errcode
310000) a message that contains none of them; the configured keyword is then added to
the title and the footer.
"""

from __future__ import annotations

from typing import Any

from alerts.health import HealthNotice
from alerts.model import Alert
from alerts.notifiers.chat_markdown import escape, render_alert, render_notice
from alerts.notifiers.digest import alert_digest, notice_digest

MAX_TEXT_BYTES = 8000
BR, PARA = "  \n", "\n\n"


def _message(title: str, text: str, keyword: str | None) -> dict[str, Any]:
    if keyword:
        title = f"{title} [{keyword}]"
        text = f"{text}{PARA}{escape(keyword)}"
    return {"msgtype": "markdown", "markdown": {"title": title[:100], "text": text},
            "at": {"isAtAll": False, "atMobiles": [], "atUserIds": []}}  # fmt: skip


def build_message(alert: Alert, *, keyword: str | None = None) -> dict[str, Any]:
    """The request body for `alert`; its text within `MAX_TEXT_BYTES`."""
    d = alert_digest(alert)
    room = MAX_TEXT_BYTES - (len(escape(keyword).encode()) + len(PARA) if keyword else 0)
    text = render_alert(d, max_bytes=room, br=BR, para=PARA)
    return _message(d.title, text, keyword)


def build_notice_message(notice: HealthNotice, *, keyword: str | None = None) -> dict[str, Any]:
    d = notice_digest(notice)
    return _message(d.title, render_notice(d, para=PARA), keyword)
