"""Weibo: keyword search of public posts through the mobile site's JSON (m.weibo.cn).

- `GET /api/container/getIndex?containerid=100103type=61&q=<term>&page_type=searchall&page=N`
  (`type=61` 实时: newest first; `type=1` 综合 with `search_type: all`). The answer
  is `{"ok": 1, "data": {"cardlistInfo": {..., "page": <next>}, "cards": [...]}}`;
  a post is a card's `mblog`, either on the card itself (`card_type` 9) or inside
  a group card's `card_group` (`card_type` 11). Other cards (users, topics) are
  not posts. Weibo's search has no OR, hence one search per term of the brands.
- This is not a documented public API: it is the JSON the mobile web site loads.
  Hence `obey_robots = True` (m.weibo.cn's robots.txt is fetched and obeyed, and
  a disallowed path is the fault `robots_txt`), a low default rate with a
  randomised delay (`DOWNLOAD_DELAY_JITTER`), and a configurable User-Agent. Weibo's terms of use must be
  checked by whoever deploys this (docs/crawlers.md).
- An optional `cookie` (a logged-in session) goes only to Weibo's own origin
  (the egress policy strips `Cookie` anywhere else).

Refusals are faults of their own, never parsed as posts (`crawlers.faults.REFUSAL_KINDS`;
an answer's refusal is read by `crawlers.faults.refusal`, as the forums' pages are):
`login_required` (`{"ok": -100, "url": "https://passport.weibo.cn/..."}`, `ok: 0`
with a login message, a redirect to passport/login pages), `blocked` (HTTP 412, the
request intercepted, as for Bilibili and the forums), `captcha` (bot checks),
`rate_limited` (HTTP 418/432/403, `ok: 0` "访问频繁"); the first one ends
the crawl (finish reason `refused`): every other search would be refused too. `{"ok": 0, "msg":
"这里还没有内容"}` is an empty result, not a refusal. HTTP 403 is `login_required`
when Weibo says so (请登录), else `rate_limited` (Weibo blocks with 403 after too
many searches).

Times: Weibo shows local (Asia/Shanghai) times in several forms -- "刚刚",
"5分钟前", "3小时前", "今天 12:30", "昨天 08:15", "03-15", "2023-03-15" and
"Sat Mar 15 10:00:00 +0800 2025" -- read by `brandpulse.timeutil.parse_board_time`
in that zone against the injected clock (`MentionSpider.now()`; `BRANDPULSE_NOW`
pins it for tests), as the forums' times are. Relative times are
coarse (a "3小时前" is up to an hour off), so the cursor also keeps the newest
post id: Weibo's mids grow with time, and a realtime search stops paging at the
first id at or below it. Reach is `user.followers_count`, an int or a display
string such as "105.9万" / "1.2亿" (`parse_count`).

Comments (``comments: true``, the default): each post a crawl finds that names a
brand is *watched* for ``comments_window`` (default 3 days, kept in the cursor as
``watch``); every crawl in that window reads its comments, new ones only:
``GET /comments/hotflow?id=<mid>&mid=<mid>&max_id_type=0``, then ``&max_id=<data.max_id>
&max_id_type=<data.max_id_type>`` until ``max_id`` is 0 or ``max_pages``. The answer is
``{"ok": 1, "data": {"data": [comment...], "total_number", "max_id", "max_id_type"}}``
(at most ``comments_max_posts`` posts per crawl, the newest first: each page is a
request at the site's slow pace);
a bare ``{"ok": 0}`` is a post without (visible) comments. Hot comments are ranked, not
in time order, so a comment query pages on past old comments and ends at a page holding
nothing newer than its cursor (per comment query: the newest comment time seen, with
the same hour of overlap and ids as the searches). A comment is a Mention of its own
(``source_id`` ``comment:<id>``, the post's URL, ``author_reach`` = the commenter's
``followers_count``) and, like Bilibili's, is kept only when it names a brand itself
(`crawlers.pipelines.BrandFilterPipeline`). Refusals on comments are the same faults
and end the crawl the same way.

Open Platform (``api: open_platform`` + ``access_token``): the documented API at
https://api.weibo.com instead of the mobile site's JSON. Searches are
``GET /2/search/topics.json?q=<term>&count=50&page=N`` (``{"statuses": [...]}``: the
same post objects), comments ``GET /2/comments/show.json?id=<mid>&count=50&page=N
[&since_id=<newest comment id seen>]`` (``{"comments": [...], "next_cursor", ...}``,
newest first; ``next_cursor`` 0 is the last page). The token goes in an
``Authorization: OAuth2 <token>`` header (never a URL, so never a log line), only to
the API's origin (the egress policy strips it elsewhere); robots.txt is not consulted
for a documented API (as for the other API spiders). Which endpoints a token may call
is the app's grant on open.weibo.com: search/topics is an advanced permission and
comments/show answers for the posts the grant covers. Errors come as
``{"error": "expired_token", "error_code": 21327, "request": "/2/..."}``: token errors
(21314-21319, 21327, 21332, 21501) are ``login_required``, 10022-10024 (request
limits) ``rate_limited``, anything else ``api_error``.

Long posts: the search answer holds the first ~140 characters and a "全文" link;
the link is dropped and the truncated text kept (the full text costs one more
request per post, `statuses/extend`, which this spider does not make).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from brandpulse.config import WeiboSource
from brandpulse.mention import Mention
from brandpulse.query import match_brands
from brandpulse.secrets import reveal
from brandpulse.timeutil import parse_board_time
from crawlers.faults import (
    BLOCKED,
    LOGIN_HOSTS,
    LOGIN_REQUIRED,
    LOGIN_WORDS,
    RATE_LIMITED,
    REFUSAL_KINDS,
    refusal,
)
from crawlers.spiders.base import MentionSpider, Page, SearchQuery, SourceFault, iter_items
from crawlers.text import parse_time

__all__ = [
    "WeiboSpider",
    "open_platform_refusal",
    "parse_count",
    "weibo_html",
]

ZONE = "Asia/Shanghai"  # every local time Weibo shows
OPEN_PLATFORM_URL = "https://api.weibo.com"
COMMENTS = "comments"  # SearchQuery.params["kind"] of a comment query
_SEARCH_TYPE = {"realtime": "61", "all": "1"}

_COUNT = re.compile(r"^(\d+(?:\.\d+)?)\s*(万|亿|w|W|k|K)?\+?$")
_MULTIPLIER = {"万": 10_000, "w": 10_000, "W": 10_000, "亿": 100_000_000, "k": 1000, "K": 1000}


def parse_count(value: object) -> int | None:
    """Weibo's follower/engagement counts: 293997, "293997", "105.9万", "1.51亿", "100万+".

    None for anything else (a missing or hidden count is unknown, not zero).
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    match = _COUNT.match(value.strip().replace(",", ""))
    if not match:
        return None
    number = float(match.group(1)) * _MULTIPLIER.get(match.group(2) or "", 1)
    return round(number)


_IMG_ALT = re.compile(r"""<img\b[^>]*?\balt=(?:"([^"]*)"|'([^']*)'|([^\s>"']+))[^>]*>""", re.I)
_FULL_TEXT_LINK = re.compile(r"""<a\b[^>]*href=["']?/status/[^>]*>\s*全文\s*</a>""", re.I)


def weibo_html(fragment: str) -> str:
    """Weibo's post HTML prepared for `html_to_text`: an emoji image becomes its alt
    text ("[偷笑]", the form people type), the "全文" (full text) link goes."""
    fragment = _FULL_TEXT_LINK.sub("", fragment)
    return _IMG_ALT.sub(lambda m: next(g for g in m.groups() if g is not None), fragment)


# Open Platform error codes (open.weibo.com/wiki/Error_code): the token is missing,
# invalid, expired or revoked...
_TOKEN_ERRORS = frozenset({21301, 21314, 21315, 21316, 21317, 21318, 21319, 21327, 21332, 21501})
# ...or the IP / user / app request limit is reached.
_LIMIT_ERRORS = frozenset({10022, 10023, 10024})


def open_platform_refusal(data: Any) -> tuple[str, str] | None:
    """(fault kind, Weibo's words) for an Open Platform error body
    (``{"error": ..., "error_code": ..., "request": ...}``); None for anything else."""
    if not isinstance(data, dict) or "error_code" not in data:
        return None
    code = data.get("error_code")
    said = f"error_code {code}: {data.get('error')!r} ({data.get('request')})"
    if code in _TOKEN_ERRORS:
        return LOGIN_REQUIRED, said
    if code in _LIMIT_ERRORS:
        return RATE_LIMITED, said
    return "api_error", said


class WeiboSpider(MentionSpider):
    name = "weibo"
    source_type = "weibo"
    source_model = WeiboSource
    default_base_url = "https://m.weibo.cn"
    # A few requests a minute: the mobile site throttles (418) quickly.
    default_requests_per_minute: ClassVar[float] = 6.0
    obey_robots: ClassVar[bool] = True  # not a documented API: the site's robots.txt rules
    search_style: ClassVar[str] = "terms"
    # Relative times ("3小时前") are up to an hour coarse: look back that much and
    # skip what was seen there by id.
    cursor_overlap: ClassVar[timedelta] = timedelta(hours=1)

    _stopping = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_platform = False
        self._watch: dict[str, dict[str, str]] = {}  # mid -> {"brand", "at"}: watched posts
        self._comments_queued: set[str] = set()

    def configure_settings(self, settings: Any) -> None:
        self.open_platform = self.source.api == "open_platform"
        if self.open_platform:
            # A documented API under its own terms and limits: no robots.txt (as the
            # other API spiders), its own origin unless base_url says otherwise.
            if not self.source.base_url:
                self.base_url = OPEN_PLATFORM_URL
            self.obey_robots = False  # type: ignore[misc]
            settings.set("ROBOTSTXT_OBEY", False, priority="spider")
            self.newest_first = True  # type: ignore[misc]
        else:
            # Only the realtime search is newest first; ranked results are read to max_pages.
            self.newest_first = self.source.search_type == "realtime"  # type: ignore[misc]
        settings.set("USER_AGENT", self.source.user_agent, priority="spider")
        settings.set("DOWNLOAD_DELAY", self.source.download_delay.total_seconds(), priority="spider")
        settings.set("DOWNLOAD_DELAY_JITTER", 0.5, priority="spider")  # 0.5-1.5x the delay
        # One host: no more requests in flight than the source's concurrency, so a
        # refusal (which ends the crawl) is not followed by already-queued searches.
        settings.set("CONCURRENT_REQUESTS", self.source.concurrency, priority="spider")

    def fault(self, kind: str, detail: str) -> None:
        """Count the fault; on a refusal, stop the whole crawl (finish reason `refused`).

        Weibo refuses a visitor, not a search: the other searches would be refused
        too, and every refused request deepens a throttle or a ban. Queries not
        finished keep their cursors, so the next crawl re-reads them.
        """
        super().fault(kind, detail)
        if kind in REFUSAL_KINDS and not self._stopping:
            self._stopping = True
            from scrapy.utils.defer import deferred_from_coro

            deferred_from_coro(self.crawler.engine.close_spider_async(reason="refused"))

    def check_credentials(self) -> str | None:
        if self.open_platform:
            token = reveal(self.source.access_token)
            if token is None:
                return "access_token is not set (api: open_platform needs one)"
            self.default_headers["Authorization"] = f"OAuth2 {token}"
            return None
        cookie = self.source.cookie
        if cookie is not None and cookie.get_secret_value().strip():
            self.default_headers["Cookie"] = cookie.get_secret_value().strip()
        self.default_headers["Referer"] = f"{self.base_url}/"
        self.default_headers["X-Requested-With"] = "XMLHttpRequest"
        return None

    def search_queries(self) -> list[SearchQuery]:
        """The searches, then the comment queries of the posts still watched."""
        queries = super().search_queries()
        if self.source.comments:
            for mid, entry in self._watched(self._old_watch()).items():
                queries.append(self._comment_query(mid, entry.get("brand")))
        return queries

    def _watched(self, watch: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        """The posts still watched: within `comments_window` of the crawl's clock,
        at most `comments_max_posts` of them, the newest first."""
        cutoff = self.now() - self.source.comments_window
        recent = sorted(
            ((m, e) for m, e in watch.items() if _watch_time(e) >= cutoff),
            key=lambda item: _watch_time(item[1]),
            reverse=True,
        )
        return dict(recent[: self.source.comments_max_posts])

    def _old_watch(self) -> dict[str, dict[str, str]]:
        watch = self._old_cursor.get("watch")
        return {str(k): v for k, v in watch.items() if isinstance(v, dict)} if isinstance(watch, dict) else {}

    def _comment_query(self, mid: str, brand: str | None) -> SearchQuery:
        self._comments_queued.add(mid)
        return self.make_query(f"{COMMENTS}:{mid}", brand, mid, kind=COMMENTS, mid=mid)

    def build_request(self, query: SearchQuery, page_token: Any) -> Request:
        if query.params.get("kind") == COMMENTS:
            return self._comments_request(query, page_token)
        if self.open_platform:
            url = self.url("/2/search/topics.json", q=query.text, count=50, page=page_token or 1)
            return Request(url, meta={"dont_redirect": True})
        kind = _SEARCH_TYPE[self.source.search_type]
        url = self.url(
            "/api/container/getIndex",
            containerid=f"100103type={kind}&q={query.text}",
            page_type="searchall",
            page=page_token,
        )
        # A redirect from here goes to a login or verification page: it is read
        # as a refusal (classify_failure), never followed to another host.
        return Request(url, meta={"dont_redirect": True})

    def _comments_request(self, query: SearchQuery, page_token: Any) -> Request:
        mid = query.params["mid"]
        if self.open_platform:
            since = query.token if str(query.token or "").isdigit() else None
            url = self.url(
                "/2/comments/show.json", id=mid, count=50, page=page_token or 1, since_id=since
            )
            return Request(url, meta={"dont_redirect": True})
        token = page_token or {}
        url = self.url(
            "/comments/hotflow",
            id=mid,
            mid=mid,
            max_id=token.get("max_id"),
            max_id_type=token.get("max_id_type", 0),
        )
        headers = {"Referer": f"{self.base_url}/detail/{mid}"}
        return Request(url, headers=headers, meta={"dont_redirect": True})

    def parse_page(self, response: Response, query: SearchQuery, data: Any) -> Page:
        if self.open_platform:
            refused = open_platform_refusal(data)
            if refused is not None:
                kind, said = refused
                raise SourceFault(kind, f"{response.url}: {said}")
        else:
            # Weibo's ok/msg/url answers (crawlers.faults); a bare {"ok": 0} is no
            # refusal: an empty search, or a post without comments (_comments_page)
            refused = refusal(response.url, data=data)
            if refused is not None:
                raise SourceFault(*refused)
        if query.params.get("kind") == COMMENTS:
            return self._comments_page(response, query, data)
        if self.open_platform:
            if not isinstance(data, dict) or not isinstance(data.get("statuses"), list):
                raise SourceFault("api_error", f"{response.url}: no statuses in the answer")
            statuses = data["statuses"]
            page = int(response.meta.get("brandpulse_page") or 1)
            return Page(statuses, next_page=page + 1 if statuses else None)
        if not isinstance(data, dict):
            raise SourceFault("api_error", f"{response.url}: expected an object, got {type(data).__name__}")
        if data.get("ok") != 1:
            return Page([])  # an empty result ("这里还没有内容")
        body = data.get("data")
        if not isinstance(body, dict) or not isinstance(body.get("cards"), list):
            raise SourceFault("api_error", f"{response.url}: no data.cards in the answer")
        posts = _mblogs(body["cards"])
        if not self.newest_first:
            return Page(posts, next_page=self._next_page(response, body) if posts else None)
        # Realtime results are newest first, except promoted posts (推荐内容, ads,
        # pinned), which can be of any age: they neither end the paging nor move
        # the cursor, and an old one is left out so the base does not stop at it.
        seen = _mid(query.token)
        organic = [m for m in posts if not _promoted(m)]
        keep = []
        for post in posts:
            mid = _post_mid(post)
            if seen is not None and mid <= seen:
                self.drop("before_cursor")
            elif _promoted(post) and _older_than(post, query.since, self.now()):
                self.drop("promoted_old")
            else:
                keep.append(post)
        reached = seen is not None and bool(organic) and _post_mid(organic[-1]) <= seen
        next_page = None if reached or not posts else self._next_page(response, body)
        newest = max([_post_mid(m) for m in organic] + ([seen] if seen is not None else []), default=0)
        return Page(keep, next_page=next_page, cursor_token=str(newest) if newest else query.token)

    def _comments_page(self, response: Response, query: SearchQuery, data: Any) -> Page:
        """One page of a post's comments: the new ones, and the next page while the
        page held anything newer than the query's cursor (hot comments are ranked,
        not in time order, so an old comment alone does not end the paging)."""
        if not isinstance(data, dict):
            raise SourceFault("api_error", f"{response.url}: expected an object")
        if self.open_platform:
            comments = list(iter_items(data.get("comments")))
            more = bool(comments) and data.get("next_cursor") not in (0, "0", None)
            page = int(response.meta.get("brandpulse_page") or 1)
            next_page: Any = page + 1 if more else None
        else:
            if data.get("ok") != 1:
                return Page([])  # {"ok": 0}: no (visible) comments
            body = data.get("data")
            if not isinstance(body, dict):
                raise SourceFault("api_error", f"{response.url}: no data in the answer")
            comments = list(iter_items(body.get("data")))
            max_id = body.get("max_id")
            more = bool(comments) and max_id not in (0, "0", None)
            next_page = {"max_id": max_id, "max_id_type": body.get("max_id_type", 0)} if more else None
        now = self.now()
        fresh = []
        for comment in comments:
            try:
                old = parse_board_time(comment.get("created_at"), ZONE, now) < query.since
            except (ValueError, AttributeError):
                old = False  # post_to_mention reports the bad item
            if old:
                self.drop("before_cursor")
            else:
                fresh.append(comment)
        if not fresh:
            next_page = None
        newest = max([_mid(c.get("id")) or 0 for c in fresh] + [_mid(query.token) or 0])
        return Page(fresh, next_page=next_page, cursor_token=str(newest) if newest else query.token)

    @staticmethod
    def _next_page(response: Response, body: dict[str, Any]) -> int:
        current = int(response.meta.get("brandpulse_page") or 1)
        info = body.get("cardlistInfo")
        given = info.get("page") if isinstance(info, dict) else None
        return given if isinstance(given, int) and given > current else current + 1

    def post_to_mention(self, raw: Any, query: SearchQuery) -> Mention | None:
        if query.params.get("kind") == COMMENTS:
            return self._comment(raw, query)
        user = raw.get("user") or {}
        mid = str(raw.get("mid") or raw.get("id") or raw["idstr"])
        text = weibo_html(raw.get("text") or "")
        quoted = raw.get("retweeted_status")
        if isinstance(quoted, dict) and quoted.get("text"):
            # A repost's own words are often "转发" or a reaction; what it reposts
            # is what names the brand, so it comes along, marked as quoted.
            author = (quoted.get("user") or {}).get("screen_name") or "?"
            text = f"{text}<br/><br/>//@{author}: {weibo_html(quoted['text'])}"
        bid = raw.get("bid")
        url = f"https://m.weibo.cn/status/{bid or mid}"
        return self.make_mention(
            source_id=mid,
            created_at=parse_board_time(raw["created_at"], ZONE, self.now()),
            text=text,
            html=True,
            url=url,
            author=user.get("screen_name"),
            author_reach=parse_count(user.get("followers_count")),
            likes=parse_count(raw.get("attitudes_count")),
            replies=parse_count(raw.get("comments_count")),
            shares=parse_count(raw.get("reposts_count")),
        )

    def _comment(self, raw: Any, query: SearchQuery) -> Mention:
        user = raw.get("user") or {}
        cid = str(raw.get("idstr") or raw["id"])
        likes = raw.get("like_count", raw.get("like_counts"))
        return self.make_mention(
            source_id=f"comment:{cid}",
            created_at=parse_board_time(raw["created_at"], ZONE, self.now()),
            text=weibo_html(raw.get("text") or ""),
            html=True,
            url=f"https://m.weibo.cn/detail/{query.params['mid']}",
            author=user.get("screen_name"),
            author_reach=parse_count(user.get("followers_count")),
            likes=parse_count(likes),
            replies=parse_count(raw.get("total_number")),
        )

    # ------------------------------------------------------------- watched posts

    def _on_page(self, response: Response) -> Iterator[Any]:
        query = self._queries[response.meta["brandpulse_query"]].query
        for out in super()._on_page(response):
            if isinstance(out, Mention) and query.params.get("kind") != COMMENTS:
                yield from self._watch_post(out, query)
            else:
                yield out

    def _watch_post(self, post: Mention, query: SearchQuery) -> Iterator[Any]:
        """The post, then (for a post that names a brand) its first comment page;
        the post is watched for `comments_window` from its creation."""
        yield post
        if not self.source.comments or self._stopping:
            return
        if post.source_id in self._comments_queued or post.source_id in self._watch:
            return  # found again by another search
        named = match_brands(
            self.brand_queries, post.body, url=post.url, author=post.author, language=post.language
        )
        if not named:
            return
        self._watch[post.source_id] = {"brand": named[0], "at": post.created_at.isoformat()}
        if len(self._comments_queued) >= self.source.comments_max_posts:
            self.drop("comments_deferred")  # watched: read by a later crawl if still among the newest
            return
        comments = self._comment_query(post.source_id, named[0])
        yield self._page_request(comments, None, 1)

    def cursor_data(self) -> dict[str, Any] | None:
        """The base's cursor plus `watch` (posts whose comments are still read),
        pruned to `comments_window` and `comments_max_posts`; comment cursors of
        unwatched posts go."""
        data = super().cursor_data()
        if data is None:
            return None
        data["watch"] = self._watched({**self._old_watch(), **self._watch})
        prefix = f"{COMMENTS}:"
        data["queries"] = {
            k: v
            for k, v in data["queries"].items()
            if not k.startswith(prefix) or k[len(prefix) :] in data["watch"]
        }
        return data

    def classify_failure(self, failure: Failure) -> tuple[str, str]:
        request: Request = failure.request  # type: ignore[attr-defined]
        exc = failure.value
        where = f"{request.method} {request.url}"
        if isinstance(exc, HttpError) and self.open_platform:
            refused = open_platform_refusal(_json_body(exc.response))
            if refused is not None:
                kind, said = refused
                return kind, f"{where} -> {exc.response.status}: {said}"
        if isinstance(exc, HttpError):
            response = exc.response
            status = response.status
            said = _body_words(response)
            location = (response.headers.get("Location") or b"").decode("latin-1")
            if 300 <= status < 400:
                if any(host in location for host in LOGIN_HOSTS):
                    return "login_required", f"{where} -> {status} to {location}"
                return "captcha", f"{where} -> {status} to {location or '?'} (a verification page)"
            if status == 403 and any(w in said.lower() for w in LOGIN_WORDS):
                return "login_required", f"{where} -> {status}: {said}"
            if status in (403, 418, 432):
                # 418 and 432 are Weibo's throttles; a 403 without a login
                # message is the block that follows too many searches.
                return "rate_limited", f"{where} -> {status}: {said or 'throttled'}"
            if status == 412:
                # blocked, as HTTP 412 is for Bilibili and the forums (crawlers.faults)
                return BLOCKED, f"{where} -> {status}: {said or 'request intercepted (bot check)'}"
        if isinstance(exc, IgnoreRequest) and "robots.txt" in str(exc):
            return "robots_txt", f"{where}: disallowed by the site's robots.txt"
        return super().classify_failure(failure)

    def describe_error(self, response: Response) -> str | None:
        return _body_words(response) or None


def _mblogs(cards: list[Any]) -> list[dict[str, Any]]:
    """The posts among search cards: a card's own `mblog`, or those in its `card_group`."""
    found: list[dict[str, Any]] = []
    for card in cards:
        if not isinstance(card, dict):
            continue
        if isinstance(card.get("mblog"), dict):
            found.append(card["mblog"])
        for inner in card.get("card_group") or []:
            if isinstance(inner, dict) and isinstance(inner.get("mblog"), dict):
                found.append(inner["mblog"])
    return found


def _promoted(post: dict[str, Any]) -> bool:
    """An ad, a "推荐内容" recommendation or a pinned post: not in time order."""
    return bool(
        post.get("promotion_info")
        or post.get("isTop")
        or post.get("readtimetype") == "adMblog"
        or post.get("timestamp_text") == "推荐内容"
    )


def _post_mid(post: dict[str, Any]) -> int:
    return _mid(post.get("mid") or post.get("id")) or 0


def _older_than(post: dict[str, Any], since: datetime, now: datetime) -> bool:
    try:
        return parse_board_time(post.get("created_at"), ZONE, now) < since
    except ValueError:
        return False  # post_to_mention reports the bad time


def _mid(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _watch_time(entry: Any) -> datetime:
    try:
        return parse_time(entry.get("at"))
    except (AttributeError, TypeError, ValueError):
        return datetime.min.replace(tzinfo=UTC)  # unreadable: no longer watched


def _json_body(response: Response) -> Any:
    try:
        return json.loads(response.body)
    except (ValueError, UnicodeDecodeError):
        return None


def _body_words(response: Response) -> str:
    data = _json_body(response)
    if isinstance(data, dict):
        return "; ".join(str(data[k]) for k in ("msg", "message", "url") if data.get(k))
    return ""
