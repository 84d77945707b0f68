"""The Markdown dialect of the Chinese group bots (WeCom and DingTalk): one renderer,
two templates (`wecom_templates`, `dingtalk_templates`) that set its line breaks,
its limit and its extras.

Neither service documents a way to escape Markdown: a backslash is shown as is. So the
characters that open markup in their dialects (`*` `_` `[` `]` `` ` `` `~` `#` `<`
`>`: emphasis, links, code, headings, quotes and the HTML-ish `<font>` and WeCom's
`<@userid>` mentions) are replaced in untrusted text by their full-width twins
(`＊` `［` `＜` ...), which read the same and mean nothing to either renderer. `@`
gets a word joiner after it, so `@all` in a post is not a mention on clients that
parse one out of text (DingTalk mentions only what the request's `at` lists, and
BrandPulse lists nobody). Links are built here from `text.clean_url` with their
host shown beside them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from alerts.notifiers.digest import AlertDigest, NoticeDigest, PostDigest, excerpt, fit

_FULL_WIDTH = str.maketrans({"*": "＊", "_": "＿", "[": "［", "]": "］", "`": "｀", "~": "～",
                             "#": "＃", "<": "＜", ">": "＞"})  # fmt: skip
_AT = re.compile(r"@(?=\w)")


def escape(text: str) -> str:
    """`text` with every Markdown-active character made inert (see the module docstring)."""
    return _AT.sub("@\u2060", text.translate(_FULL_WIDTH))


_ID_TEXT = re.compile(r"[\w\- ·]*")


def _ids(footer: str) -> str:
    """A footer of fixed words and ids (`high_reach-…`, `health-source_down-…`) shown as
    is: full-width `＿` would make an id that cannot be searched for. A lone `_` between
    word characters opens no emphasis in either dialect."""
    return footer if _ID_TEXT.fullmatch(footer) else escape(footer)


def link_target(url: str) -> str:
    """`url` safe inside `(...)` of a Markdown link."""
    return url.replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")


def link(label: str, url: str | None) -> str:
    """A Markdown link followed by its host, or the escaped label for no URL."""
    if not url:
        return escape(label)
    from urllib.parse import urlsplit

    return f"[{escape(label)}]({link_target(url)}) ({escape(urlsplit(url).hostname or '')})"


def _post(post: PostDigest, chars: int, br: str) -> list[str]:
    lines = [f"**{link(post.title, post.url)}**", f"> {escape(post.author)} · {escape(post.meta)}"]
    text = excerpt(post, chars)
    if text:
        lines.append(f"> {escape(text)}")
    return [br.join(lines)]


def render_alert(
    d: AlertDigest,
    *,
    max_bytes: int,
    br: str = "\n",
    para: str = "\n\n",
    subtle: Callable[[str], str] = lambda s: s,
) -> str:
    """The alert as Markdown within `max_bytes` UTF-8 bytes (`digest.fit`).

    `br` separates lines of a block, `para` blocks; `subtle` wraps de-emphasised text
    (WeCom: `<font color="comment">`), applied to already escaped text.
    """

    def render(shown: int, chars: int) -> str:
        blocks = [f"### {escape(d.title)}", br.join(escape(s) for s in d.summary)]
        if d.facts:
            blocks.append(br.join(f"> {escape(k)}: {escape(v)}" for k, v in d.facts))
        if d.posts:
            blocks.append(f"**{escape(d.posts_title)}**")
            for post in d.posts[:shown]:
                blocks.extend(_post(post, chars, br))
            if shown < len(d.posts):
                blocks.append(subtle(f"…and {len(d.posts) - shown} more in Kibana."))
        if d.discover_url:
            blocks.append(f"[Open in Kibana]({link_target(d.discover_url)})")
        blocks.append(subtle(_ids(d.footer)))
        return para.join(blocks)

    out = fit(render, len(d.posts), max_bytes)
    assert isinstance(out, str)
    return out


def render_notice(d: NoticeDigest, *, para: str = "\n\n",
                  subtle: Callable[[str], str] = lambda s: s) -> str:  # fmt: skip
    """A health notice as Markdown: title, sentence, notice id (short: no limit applies)."""
    return para.join([f"### {escape(d.title)}", escape(d.sentence), subtle(_ids(d.footer))])
