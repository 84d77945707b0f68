"""Selectors for forum software whose markup is the same on every board running it.

A preset (`preset:` of an `html_forum` source) fills `selectors` so a user gives
only start URLs; any selector the user writes replaces that one field. Each
selector lists the page kinds it serves, comma-separated (CSS "or"), so one
preset reads both list/search pages and thread pages of its software. The
markup each was written against is in the test fixtures
(tests/crawlers/fixtures/html_forum/preset_*), copied from saved real pages; the
Tieba thread page (tieba_thread_page*) and the Discuz! pager (discuz_viewthread_page*)
are reconstructed from the markup public crawlers and Discuz!'s source read (their
headers say which).

Thread lists: a preset may say how its software lists threads (`ThreadList`): the
spider then opens each listed thread instead of taking the list entry for a post,
and the thread's pages give the mentions (Tieba: a `/f?kw=` list opens `/p/<tid>`;
Discuz!: a `forumdisplay` list opens its rows' `viewthread` pages).
Tieba prints its thread list inside an HTML comment of a `<code class="pagelet_html">`
element (its BigPipe loader inserts it in the browser); `reveal_pagelets` uncomments
it so the selectors see it, as recorded in tests/crawlers/fixtures/html_forum/
tieba_list_recorded.html.

Times: a preset's `time` selector may match several strings (Discuz! puts the
exact time in a `title` and "3 天前" in the text; Tieba's tail shows "2楼" before
the time); the spider takes the first that reads as a board time
(`brandpulse.timeutil.parse_board_time`), in the source's `timezone`, else the
preset's `timezone`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


@dataclass(frozen=True)
class ThreadList:
    """How a forum software lists threads, so a list page's threads can be opened.

    `entry` selects one listed thread, `link` its link inside it; `replies(entry)`
    reads the reply count the list shows (None when it shows none) and `last_reply`
    selects the time of the last reply as the list shows it. A thread's last page is
    what `pages(entry)` reads off the list (Discuz! links a long thread's pages there),
    else the reply count over `per_page` floors a page; with `per_page` known, a thread
    whose count grew from n is opened at the page of floor n + 2 (its first new floor).
    `page_url(url, n)` is page n of a thread.
    """

    entry: str
    link: str
    replies: Callable[[Any], int | None]
    last_reply: str
    page_url: Callable[[str, int], str]
    per_page: int | None = None  # None: the software's boards differ
    pages: Callable[[Any], int | None] | None = None
    # The thread's one URL whichever list page linked it (None: the link as it is).
    canonical: Callable[[str], str] | None = None


@dataclass(frozen=True)
class ForumPreset:
    selectors: dict[str, str]
    timezone: str | None = None  # the zone boards of this software usually show
    notes: list[str] = field(default_factory=list)
    # The link of a post that carries none to itself (a Tieba floor), from the page's
    # URL and the post's element (a Scrapy selector); None when it cannot be made.
    permalink: Callable[[str, Any], str | None] | None = None
    # Thread lists whose threads are opened (None: list entries are posts themselves).
    threads: ThreadList | None = None
    # The page's HTML as the selectors should see it (None: as served).
    reveal: Callable[[str], str] | None = None


_PAGELET = re.compile(
    r"(<code\b[^>]*\bclass=\"pagelet_html\"[^>]*>)\s*<!--(.*?)-->\s*(</code>)", re.S
)


def with_param(url: str, name: str, value: str) -> str:
    """`url` with the query parameter `name` set to `value` (replacing any)."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    return urlunsplit(parts._replace(query=urlencode([*kept, (name, value)])))


def tieba_page_url(url: str, page: int) -> str:
    """Page `page` of a Tieba thread: `/p/<tid>?pn=<page>`."""
    return url if page == 1 else with_param(url, "pn", str(page))


_DISCUZ_REWRITE = re.compile(r"(thread-\d+-)(\d+)(-\d+\.html)$")


def discuz_page_url(url: str, page: int) -> str:
    """Page `page` of a Discuz! thread: `thread-<tid>-<page>-<n>.html` when the board
    rewrites its URLs, else `forum.php?mod=viewthread&tid=<tid>&page=<page>`."""
    parts = urlsplit(url)
    match = _DISCUZ_REWRITE.search(parts.path)
    if match:
        path = parts.path[: match.start()] + f"{match.group(1)}{page}{match.group(3)}"
        return urlunsplit(parts._replace(path=path))
    return url if page == 1 else with_param(url, "page", str(page))


def discuz_thread_url(url: str) -> str:
    """A Discuz! thread's URL as its first page, whichever list page linked it: rewritten
    `thread-<tid>-<page>-<list page>.html` -> `thread-<tid>-1-1.html`; otherwise without
    `extra` (the list page it came from) and `page`."""
    parts = urlsplit(url)
    match = _DISCUZ_THREAD.search(parts.path)
    if match:
        path = parts.path[: match.start()] + f"thread-{match.group(1)}-1-1.html"
        return urlunsplit(parts._replace(path=path))
    kept = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k not in ("extra", "page")
    ]  # fmt: skip
    return urlunsplit(parts._replace(query=urlencode(kept)))


_DISCUZ_THREAD = re.compile(r"thread-(\d+)-\d+-\d+\.html$")


def _int(text: Any) -> int | None:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def discuz_replies(entry: Any) -> int | None:
    """A forumdisplay row's reply count: `td.num a.xi2` (views follow in an `em`)."""
    return _int(entry.css("td.num a.xi2::text").get())


def discuz_pages(entry: Any) -> int | None:
    """The last page a forumdisplay row links to (`span.tps`, "... 2 3 .. 15"), else None."""
    numbers = [n for n in (_int(t) for t in entry.css("span.tps a::text").getall()) if n]
    return max(numbers) if numbers else None


def reveal_pagelets(html: str) -> str:
    """Tieba's page with the HTML its `<code class="pagelet_html">` elements carry as
    comments put back as markup (the thread list is one of them)."""
    return _PAGELET.sub(r"\1\2\3", html)


def tieba_replies(entry: Any) -> int | None:
    """A listed Tieba thread's reply count: `reply_num` of the entry's `data-field`
    JSON, else the `span.threadlist_rep_num` text."""
    try:
        value = json.loads(entry.attrib.get("data-field") or "{}").get("reply_num")
    except (ValueError, AttributeError):
        value = None
    if value is None:
        value = (entry.css("span.threadlist_rep_num::text").get() or "").strip()
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def tieba_floor_url(page_url: str, post: Any) -> str | None:
    """A Tieba floor's own link, `/p/<tid>?pid=<pid>#<pid>` (what Tieba links a floor
    by), from the thread page's URL and the floor's `div#post_content_<pid>`."""
    content_id = post.css("div.d_post_content::attr(id)").get() or ""
    pid = content_id.removeprefix("post_content_")
    parts = urlsplit(page_url)
    if not pid.isdigit() or not parts.path.startswith("/p/"):
        return None
    return urlunsplit(parts._replace(query=f"pid={pid}", fragment=pid))


PRESETS: dict[str, ForumPreset] = {
    # Discuz! X3.x: viewthread (div#postlist > div#post_<pid>, td.t_f#postmessage_<pid>,
    # em#authorposton<pid>) and search.php results (li.pbw); forumdisplay lists
    # (tbody#normalthread_<tid>) open their threads.
    "discuz_x3": ForumPreset(
        selectors={
            "post": 'div#postlist > div[id^="post_"], li.pbw',
            "text": "td.t_f, p.xg1 + p",
            "id": "::attr(id)",
            "url": "h3 a::attr(href)",
            "title": "h3 a",
            # the author's space link: home.php?mod=space&uid=N, or space-uid-N.html on
            # boards with URL rewriting (as a live board's search row shows)
            "author": 'div.authi a.xw1::text, p.xg1 + p + p a[href*="uid"]::text',
            "time": 'em[id^="authorposton"] span::attr(title), em[id^="authorposton"]::text, '
            "p.xg1 + p + p > span::text",
            "next_page": "div.pg a.nxt::attr(href)",
        },
        timezone="Asia/Shanghai",
        # forumdisplay rows (sticky and normal threads): opened like Tieba's; a board
        # sets its own posts per page, so only the pages the row links are known.
        threads=ThreadList(
            entry='tbody[id^="normalthread_"], tbody[id^="stickthread_"]',
            link="a.s.xst::attr(href)",
            replies=discuz_replies,
            last_reply="td.by em a span::attr(title), td.by em a::text",
            page_url=discuz_page_url,
            pages=discuz_pages,
            canonical=discuz_thread_url,
        ),
    ),
    # Baidu Tieba: thread list /f?kw= (li.j_thread_list inside the commented
    # pagelet, next page a.next.pagination-item), whose threads are opened; thread
    # /p/<tid>: its floors, the mentions (div.l_post.j_l_post, a.p_author_name,
    # div#post_content_<pid>.d_post_content, span.tail-info "来自…" / "2楼" / the time),
    # paged ?pn=N through li.l_pager (the link after the current page's span.tP). A
    # floor's id is its own link (`tieba_floor_url`).
    "tieba": ForumPreset(
        selectors={
            "post": "div.l_post.j_l_post",
            "text": "div.d_post_content",
            "url": "a.j_th_tit::attr(href)",
            "title": "a.j_th_tit",
            "author": "a.p_author_name::text",
            "time": "span.tail-info::text",
            "next_page": "a.next.pagination-item::attr(href), li.l_pager span.tP + a::attr(href)",
        },
        timezone="Asia/Shanghai",
        permalink=tieba_floor_url,
        threads=ThreadList(
            entry="li.j_thread_list",
            link="a.j_th_tit::attr(href)",
            replies=tieba_replies,
            last_reply="span.threadlist_reply_date::text",
            page_url=tieba_page_url,
            per_page=30,  # floors on a thread page of Tieba's PC site
        ),
        reveal=reveal_pagelets,
    ),
    # phpBB 3.x (prosilver): viewtopic (div.post#p<id> > div.postbody, p.author,
    # div.content) and search.php?sr=posts (div.search.post).
    "phpbb": ForumPreset(
        selectors={
            "post": 'div.post[id^="p"], div.search.post',
            "text": "div.postbody div.content",
            "url": "h3 a::attr(href)",
            "title": "h3 a",
            "author": "p.author a.username::text, p.author a.username-coloured::text, "
            "dt.author a.username::text, dt.author a.username-coloured::text",
            "time": "p.author time::attr(datetime), dd.search-result-date::text, p.author::text",
            "next_page": "li.arrow.next a::attr(href)",
        },
    ),
}
