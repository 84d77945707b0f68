"""Forums without an API (phpBB, vBulletin, Discuz!, Tieba-style boards), read with CSS selectors.

Everything site-specific is configuration (`HtmlForumSource`): `start_urls` (list or
search pages), and `selectors` for one post on such a page and, inside it, its
text, id, url, title, author and time, plus the "next page" link. Selectors are
Scrapy CSS: `a.title::text` and `a::attr(href)` give strings; a selector without
a pseudo-element gives the element, whose HTML is turned into text.

`{query}` in a start URL makes it a search page, fetched once per search term of
the brands (forum search boxes have no OR), URL-encoded as UTF-8. Many Chinese
forums (Discuz! GBK editions) decode the query in their page encoding instead:
write `{query:gbk}` (any Python codec name) to encode it that way.

Politeness: robots.txt is obeyed (a disallowed start URL is skipped and counted as
`ignored`), the default pace is 10 requests a minute and cookies are off.

Ids: the `id` selector's value when configured, else the post's URL with session
and highlight parameters removed (`sid`, `PHPSESSID`, `highlight`...), which
otherwise change between visits and would make every crawl a new post. A post
with no link to itself (a Tieba floor) gets the one its preset makes
(`ForumPreset.permalink`).
Times: `time_format` (strptime) or, by default, ISO 8601 / RFC 2822 / epoch.
A time without a zone is read in `timezone` (the preset's by default, else UTC). A post whose time does not parse is a `bad_item`: without a time it
cannot be placed in the alert windows.

Presets (`preset: discuz_x3 | tieba | phpbb`, `crawlers.spiders.forum_presets`)
supply the selectors and read board times ("2024-3-5 14:22", "昨天 10:05", "3 天前",
Tieba's "14:22"/"3-5", phpBB's "Tue Mar 05, 2024 2:22 pm") with
`brandpulse.timeutil.parse_board_time` in the board's zone against the clock
(`MentionSpider.now`: `BRANDPULSE_NOW` injects it; default the real time).

Encodings: Scrapy decodes by the HTTP header, else the page's meta charset;
gb2312/gbk are read as GB18030 (their superset) and undecodable bytes become
U+FFFD, so a page with bad bytes still yields its posts.

Refusals: a login wall or captcha page (`crawlers.faults.refusal`) is counted as
`login_required` / `captcha`, never parsed as posts, and not counted as a page read.

Incremental: the base's time cursor per start URL and term. Pages are not assumed
to be sorted, so paging goes on to `max_pages` (or the last page) every crawl.

Thread lists (a preset's `ThreadList`: Tieba's `/f?kw=`, Discuz!'s `forumdisplay`): a
list page's entries are
not posts; each listed thread is opened as a query of its own (`thread:<url>`, with
its own time cursor, paging and `max_pages`), and its floors are the mentions. A
thread is opened only when it may hold something new: its reply count differs from
the one stored when it was last read (or it was never read), and its last reply as
the list shows it is not before the list query's window (now - `lookback`; a date
shown without a time counts as the end of that day; a time that does not read is no
reason to skip). A thread is opened at most `max_pages` pages before its last page
(the highest page its row links, else its reply count over the preset's floors per
page), so the newest floors are read; with floors per page known (Tieba), a thread
whose count grew from n is opened at the page of its first new floor. A thread seen on no list page read cleanly this crawl is dropped from
the cursor (a thread that comes back is read again within `lookback`: the same
floors are the same ids).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote_plus, urlencode, urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.http import Request, Response, TextResponse
from scrapy.robotstxt import RobotParser
from scrapy.selector import Selector
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from brandpulse.config import HtmlForumSource, HtmlSelectors
from brandpulse.mention import Mention
from brandpulse.timeutil import parse_board_time
from crawlers.faults import refusal
from crawlers.spiders.base import MentionSpider, Page, SearchQuery, SourceFault
from crawlers.spiders.forum_presets import PRESETS, ForumPreset
from crawlers.spiders.social_common import unique_terms
from crawlers.text import html_to_text, parse_time

_PLACEHOLDER = re.compile(r"\{query(?::([A-Za-z0-9_.-]+))?\}")
# Query parameters that identify a visit or a search, not a post.
_VOLATILE_PARAMS = {
    "sid",
    "phpsessid",
    "sessionid",
    "jsessionid",
    "highlight",
    "hilit",
    "sessionhash",
}
_SESSION_HASH = re.compile(r"^[0-9a-f]{32}$")  # vBulletin's s=<md5>; a plain s= may be content


def canonical_url(url: str) -> str:
    """The URL without session/highlight parameters (they change between crawls)."""
    parts = urlsplit(url)
    kept = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in _VOLATILE_PARAMS and not (k == "s" and _SESSION_HASH.match(v))
    ]
    return urlunsplit(parts._replace(query=urlencode(kept)))


_YEAR_MONTH = re.compile(r"(\d{4})-(\d{1,2})")


def fill_query(template: str, term: str) -> str:
    """`template` with each {query} / {query:codec} replaced by the encoded term."""

    def encode(match: re.Match[str]) -> str:
        return quote_plus(term, encoding=match.group(1) or "utf-8")

    return _PLACEHOLDER.sub(encode, template)


def _strings(scope: Any, css: str) -> list[str]:
    if "::" in css:
        values = [v.strip() for v in scope.css(css).getall()]
    else:
        values = [html_to_text(v) for v in scope.css(css).getall()]
    return [v for v in values if v]


def _first(scope: Any, css: str | None) -> str | None:
    if not css:
        return None
    values = _strings(scope, css)
    return values[0] if values else None


class WaitingRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, fixed for requests that wait for robots.txt.

    Since Scrapy 2.13 every request that arrives while a host's robots.txt is
    still downloading awaits the same Deferred; the first await consumes its
    result and the others receive None, which the middleware reads as "no
    robots.txt, allowed". With two start URLs on one host the second was fetched
    even when robots.txt disallowed it. Here each waiter gets its own Deferred,
    fed from the shared one without consuming it.
    """

    async def robot_parser(self, request: Request) -> RobotParser | None:
        pending = self._parsers.get(urlparse_cached(request).netloc)
        if isinstance(pending, Deferred):
            mine: Deferred[RobotParser | None] = Deferred()

            def relay(result: Any) -> Any:
                mine.callback(result)
                return result  # keep it for the other waiters

            pending.addBoth(relay)
            return await maybe_deferred_to_future(mine)
        return await super().robot_parser(request)


class HtmlForumSpider(MentionSpider):
    name = "html_forum"
    source_type = "html_forum"
    source_model = HtmlForumSource
    expects_json = False
    obey_robots = True
    newest_first = False  # search and list pages are not reliably sorted by time
    default_requests_per_minute: ClassVar[float] = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._visited: dict[str, set[str]] = {}
        # list query key -> the thread query keys its pages listed this crawl
        self._listed: dict[str, set[str]] = {}

    @cached_property
    def selectors(self) -> HtmlSelectors:
        """The preset's selectors with the configured ones laid over them, field by field."""
        own = self.source.selectors.model_dump(exclude_none=True)
        if not self.source.preset:
            return self.source.selectors
        return HtmlSelectors(**{**PRESETS[self.source.preset].selectors, **own})

    @property
    def preset(self) -> ForumPreset | None:
        return PRESETS[self.source.preset] if self.source.preset else None

    @property
    def board_zone(self) -> str | None:
        if self.source.timezone:
            return str(self.source.timezone)
        return PRESETS[self.source.preset].timezone if self.source.preset else None

    def configure_settings(self, settings: Any) -> None:
        middlewares = dict(settings.getdict("DOWNLOADER_MIDDLEWARES"))
        middlewares["scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware"] = None
        middlewares[f"{__name__}.WaitingRobotsTxtMiddleware"] = 100  # Scrapy's own slot
        settings.set("DOWNLOADER_MIDDLEWARES", middlewares, priority="spider")

    def egress_urls(self) -> list[str]:
        # The start pages' hosts ({query} placeholders sit in paths and queries).
        return [*super().egress_urls(), *(fill_query(u, "") for u in self.source.start_urls)]

    def check_credentials(self) -> str | None:
        # No credentials; but a source that cannot date its posts yields nothing
        # useful, so it is refused with a reason instead of faulting on every post.
        if not self.selectors.time:
            return "selectors.time is not set: posts without a time cannot be placed in the alert windows"
        return None

    def search_queries(self) -> list[SearchQuery]:
        queries = []
        for template in self.source.start_urls:
            if not _PLACEHOLDER.search(template):
                queries.append(self.make_query(f"url:{template}", None, template, url=template))
                continue
            for term, brands in unique_terms(self.brand_queries):
                try:
                    url = fill_query(template, term)
                except (UnicodeEncodeError, LookupError) as exc:
                    self.fault("bad_query", f"cannot put {term!r} into {template}: {exc}")
                    continue
                brand = brands[0] if len(brands) == 1 else None
                queries.append(self.make_query(f"url:{template}|term:{term}", brand, term, url=url))
        return queries

    def build_request(self, query: SearchQuery, page_token: Any) -> Request:
        url = str(page_token or query.params["url"])
        self._visited.setdefault(query.key, set()).add(canonical_url(url))
        return Request(url)

    def parse_page(self, response: Response, query: SearchQuery, data: Any) -> Page:
        if (
            not isinstance(response, TextResponse)
            or "html"
            not in response.headers.get(b"Content-Type", b"text/html").decode("latin-1").lower()
        ):
            ctype = response.headers.get(b"Content-Type", b"").decode("latin-1")
            raise SourceFault(
                "not_html",
                f"{response.url} answered {ctype or 'no content type'}, not an HTML page",
            )
        refused = refusal(response.url, response.status, response.text)
        if refused:
            raise SourceFault(*refused)
        selectors = self.selectors
        preset = self.preset
        permalink = preset.permalink if preset else None
        page: Any = response
        if preset and preset.reveal:
            page = Selector(text=preset.reveal(response.text), type="html")
        follow = self._listed_threads(response, page, query) if preset else []
        items = []
        for post in page.css(selectors.post or ""):
            url = _first(post, selectors.url)
            if url is None and permalink is not None:
                url = permalink(response.url, post)
            items.append({
                "id": _first(post, selectors.id),
                "url": url,
                "title": _first(post, selectors.title),
                "author": _first(post, selectors.author),
                "time": _strings(post, selectors.time) if selectors.time else [],
                "html": "\n".join(post.css(selectors.text or "").getall()),
                "page": response.url,
            })  # fmt: skip
        next_page = None
        href = _first(page, selectors.next_page)
        if href:
            candidate = response.urljoin(href)
            # A "next" link back to a page already read (last pages often link to
            # themselves) ends the query here; left to Scrapy's duplicate filter it
            # would end without a callback and the cursor would never advance.
            if canonical_url(candidate) not in self._visited.get(query.key, set()):
                next_page = candidate
        # A thread's first page stores the reply count it was opened for.
        token = query.params.get("thread_token")
        return Page(items, next_page=next_page, cursor_token=token, follow=follow)

    def _listed_threads(
        self, response: Response, page: Any, query: SearchQuery
    ) -> list[SearchQuery]:
        """The threads a list page names that may hold something new, as queries of
        their own (see the module docstring for when a thread is opened and where)."""
        threads = self.preset.threads if self.preset else None
        if threads is None or "thread_token" in query.params:
            return []
        listed = self._listed.setdefault(query.key, set())
        old = self._old_cursor.get("queries") or {}
        follow = []
        for entry in page.css(threads.entry):
            href = _first(entry, threads.link)
            if not href:
                continue
            url = canonical_url(response.urljoin(href))
            if threads.canonical:
                url = threads.canonical(url)
            key = f"thread:{url}"
            listed.add(key)
            if key in self._queries:
                continue  # listed twice (a bumped thread moved between list pages)
            replies = threads.replies(entry)
            before = ((old.get(key) or {}).get("token") or {}).get("replies")
            if replies is not None and replies == before:
                self.drop("thread_unchanged")
                continue
            last = _first(entry, threads.last_reply)
            if last and self._before_window(last, query.since):
                self.drop("thread_outside_window")
                continue
            shown = threads.pages(entry) if threads.pages else None
            start = self._start_page(replies, before, threads.per_page, shown)
            start_url = threads.page_url(url, start)
            token = {"replies": replies, "list": query.key}
            follow.append(self.make_query(key, query.brand, url, url=start_url, thread_token=token))
        return follow

    def _before_window(self, shown: str, since: datetime) -> bool:
        """Whether a last-reply time as a list shows it is before the window; a date
        without a time is the end of that day, a year and month ("2020-05", Tieba's form
        for earlier years) the end of that month; a time that does not read is not."""
        month = _YEAR_MONTH.fullmatch(shown.strip())
        if month:
            year, number = int(month.group(1)), int(month.group(2))
            if not 1 <= number <= 12:
                return False
            year, number = (year + 1, 1) if number == 12 else (year, number + 1)
            zone = ZoneInfo(self.board_zone) if self.board_zone else UTC
            return datetime(year, number, 1, tzinfo=zone) < since
        try:
            when = parse_board_time(shown, self.board_zone, self.now())
        except ValueError:
            return False
        if ":" not in shown:
            when += timedelta(days=1)
        return when < since

    def _start_page(
        self, replies: int | None, before: Any, per_page: int | None, last_shown: int | None
    ) -> int:
        """The thread page to open at: never more than `max_pages` pages before the
        last page (the one the list links, else that of floor `replies` + 1), and, with
        `per_page` known, that of the first floor not read yet (floor `before` + 2)."""
        last = last_shown
        if last is None and per_page and replies is not None:
            last = math.ceil((replies + 1) / per_page)
        if not last:
            return 1
        start = max(1, last - self.source.max_pages + 1)
        if per_page and isinstance(before, int) and replies is not None and 0 <= before < replies:
            start = max(start, (before + 1) // per_page + 1)
        return start

    def cursor_data(self) -> dict[str, Any] | None:
        """The base's cursor, without threads that a cleanly read list no longer shows
        (so the file does not grow with every thread ever listed)."""
        data = super().cursor_data()
        if data is None or not self._listed:
            return data
        clean = {
            key
            for key in self._listed
            if key in self._queries
            and self._queries[key].complete
            and not self._queries[key].failed
        }
        shown = set().union(*self._listed.values())

        def keep(key: str, entry: Any) -> bool:
            if not key.startswith("thread:") or key in shown:
                return True
            lister = ((entry or {}).get("token") or {}).get("list")
            return lister not in clean

        data["queries"] = {k: v for k, v in data["queries"].items() if keep(k, v)}
        return data

    def post_to_mention(self, raw: Any, query: SearchQuery) -> Mention | None:
        if not raw["html"].strip() and not raw["title"]:
            return None
        url = canonical_url(urljoin(raw["page"], raw["url"])) if raw["url"] else None
        source_id = raw["id"] or url
        if not source_id:
            raise ValueError(
                f"post on {raw['page']} has neither an id nor a url (check selectors.id/url)"
            )
        return self.make_mention(
            source_id=source_id,
            created_at=self._parse_time(raw["time"]),
            title=raw["title"],
            text=raw["html"],
            html=True,
            url=url,
            author=raw["author"],
            language=self.source.language,
        )

    def classify_failure(self, failure: Any) -> tuple[str, str]:
        kind, detail = super().classify_failure(failure)
        # A redirect to a login or captcha page on another host (wappass.baidu.com)
        # is refused by the egress policy; 412/418 are anti-bot answers.
        response = getattr(failure.value, "response", None)
        status = getattr(response, "status", None)
        refused = refusal(failure.request.url, status)
        return refused if refused else (kind, detail)

    def _parse_time(self, values: list[str]) -> datetime:
        if not values:
            raise ValueError(f"selectors.time {self.selectors.time!r} matched nothing in the post")
        if self.source.preset and not self.source.time_format:
            # The first string that reads as a board time (a tail holds "2楼" too).
            for candidate in values:
                try:
                    return parse_board_time(candidate, self.board_zone, self.now())
                except ValueError:
                    continue
            raise ValueError(f"no board time in {values[:3]!r}")
        value = values[0]
        fmt = self.source.time_format
        if fmt:
            try:
                parsed = datetime.strptime(value.strip(), fmt)
            except ValueError as exc:
                raise ValueError(f"time {value!r} does not match time_format {fmt!r}") from exc
        else:
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                return parse_time(value)  # RFC 2822 / epoch carry their own zone
        if parsed.tzinfo is None and self.board_zone:
            # Boards show local wall-clock time; the configured zone says which.
            parsed = parsed.replace(tzinfo=ZoneInfo(self.board_zone))
        return parse_time(parsed)
