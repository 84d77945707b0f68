"""WeCom (企业微信) group bot messages: `msgtype` markdown (`alerts.notifiers.wecom`).

The documented shape (https://developer.work.weixin.qq.com/document/path/91770,
群机器人配置说明)::

    {"msgtype": "markdown", "markdown": {"content": "..."}}

`content` is at most 4096 bytes of UTF-8 (the API answers errcode 40058 above it), so
the text is fitted to `MAX_CONTENT_BYTES` by `digest.fit`: shorter excerpts, then
fewer posts; the title, the counts, the Kibana link and the alert id stay. WeCom's
Markdown subset has headings, bold, links, quotes and `<font color="info|comment|
warning">`; untrusted text is made inert by `chat_markdown.escape` (full-width twins
of the active characters: WeCom has no escape), which also defeats `<@userid>`.
"""

from __future__ import annotations

from typing import Any

from alerts.health import HealthNotice
from alerts.model import Alert
from alerts.notifiers.chat_markdown import render_alert, render_notice
from alerts.notifiers.digest import alert_digest, notice_digest

MAX_CONTENT_BYTES = 4096


def _comment(text: str) -> str:
    return f'<font color="comment">{text}</font>'


def build_message(alert: Alert) -> dict[str, Any]:
    """The request body for `alert`; its content within 4096 UTF-8 bytes."""
    content = render_alert(alert_digest(alert), max_bytes=MAX_CONTENT_BYTES, subtle=_comment)
    return {"msgtype": "markdown", "markdown": {"content": content}}


def build_notice_message(notice: HealthNotice) -> dict[str, Any]:
    content = render_notice(notice_digest(notice), subtle=_comment)
    return {"msgtype": "markdown", "markdown": {"content": content}}
