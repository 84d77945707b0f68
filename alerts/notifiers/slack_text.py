"""Slack messages as a person reads them, in a terminal: Block Kit and mrkdwn to text.

Used by `scheduler.py check-alerts --dry-run` (what would be posted) and by the local
Slack sandbox (sandbox/slack.py) to print what it receives. It lives with the Slack
notifier because the product uses it: the image carries no sandbox.
"""

from __future__ import annotations

import html
import re
from typing import Any

_EMOJI = {
    "rotating_light": "🚨",
    "hourglass_flowing_sand": "⏳",
    "white_check_mark": "✅",
    "loudspeaker": "📢",
    "chart_with_downwards_trend": "📉",
}
_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def _emoji(text: str) -> str:
    return re.sub(r":([a-z0-9_+-]+):", lambda m: _EMOJI.get(m.group(1), m.group(0)), text)


def mrkdwn_to_text(text: str) -> str:
    """What a reader sees: links as `label (url)`, mentions as `@x`, entities decoded."""

    def link(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@") or target.startswith("#"):
            return target if not label else f"@{label}"
        if target.startswith("!"):
            return "@" + target[1:].split("^")[0]  # <!here> pings; shown loudly on purpose
        url = html.unescape(target)
        return f"{html.unescape(label)} ({url})" if label else url

    out = _LINK.sub(link, text)
    out = _emoji(out)
    # Bold as Slack shows it: without the asterisks.
    out = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"\1", out)
    # Decode only Slack's three entities: anything else is literal text.
    out = out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return out.replace("\u2060", "")


def _element_text(element: dict[str, Any]) -> str:
    kind = element.get("type")
    if kind in ("mrkdwn", "plain_text"):
        text = element.get("text", "")
        return mrkdwn_to_text(text) if kind == "mrkdwn" else _emoji(text)
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    if kind == "button":
        label = element.get("text", {}).get("text", "")
        return f"[ {label} ] → {element.get('url', '(no url)')}"
    return f"[{kind}]"


def render_blocks(blocks: list[dict[str, Any]], width: int = 88) -> list[str]:
    """One line or more per block: headers underlined, fields in two columns, buttons
    with their URLs, unknown blocks named."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = _element_text(block.get("text", {}))
            lines += [title, "═" * min(max(len(title), 8), width)]
        elif kind == "section":
            if block.get("text"):
                for line in _element_text(block["text"]).splitlines():
                    lines.append("│ " + line[1:] if line.startswith(">") else line)
            fields = [
                _element_text(f).replace("\n", ": ", 1).replace("\n", " ")
                for f in block.get("fields") or []
            ]
            col = max((len(f) for f in fields), default=0) + 3
            for i in range(0, len(fields), 2):
                pair = fields[i : i + 2]
                lines.append((pair[0].ljust(col) + (pair[1] if len(pair) > 1 else "")).rstrip())
            if block.get("accessory"):
                lines.append("  " + _element_text(block["accessory"]))
        elif kind == "context":
            lines.append("  " + "  ".join(_element_text(e) for e in block.get("elements", [])))
        elif kind == "divider":
            lines.append("─" * 40)
        elif kind == "actions":
            lines.append("  ".join(_element_text(e) for e in block.get("elements", [])))
        else:
            lines.append(f"[{kind} block]")
    return lines
