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

Long posts: the search answer holds the first ~140 characters and a "全文" link;
the link is dropped and the truncated text kept (the full text costs one more
request per post, `statuses/extend`, which this spider does not make).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any, ClassVar

from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from brandpulse.config import WeiboSource
from brandpulse.mention import Mention
from brandpulse.timeutil import parse_board_time
from crawlers.faults import BLOCKED, LOGIN_HOSTS, LOGIN_WORDS, REFUSAL_KINDS, refusal
from crawlers.spiders.base import MentionSpider, Page, SearchQuery, SourceFault

__all__ = ["WeiboSpider", "parse_count", "weibo_html"]

ZONE = "Asia/Shanghai"  # every local time Weibo shows
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

    def configure_settings(self, settings: Any) -> None:
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
        cookie = self.source.cookie
        if cookie is not None and cookie.get_secret_value().strip():
            self.default_headers["Cookie"] = cookie.get_secret_value().strip()
        self.default_headers["Referer"] = f"{self.base_url}/"
        self.default_headers["X-Requested-With"] = "XMLHttpRequest"
        return None

    def build_request(self, query: SearchQuery, page_token: Any) -> Request:
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

    def parse_page(self, response: Response, query: SearchQuery, data: Any) -> Page:
        refused = refusal(response.url, data=data)
        if refused is not None:
            raise SourceFault(*refused)
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

    @staticmethod
    def _next_page(response: Response, body: dict[str, Any]) -> int:
        current = int(response.meta.get("brandpulse_page") or 1)
        info = body.get("cardlistInfo")
        given = info.get("page") if isinstance(info, dict) else None
        return given if isinstance(given, int) and given > current else current + 1

    def post_to_mention(self, raw: Any, query: SearchQuery) -> Mention | None:
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

    def classify_failure(self, failure: Failure) -> tuple[str, str]:
        request: Request = failure.request  # type: ignore[attr-defined]
        exc = failure.value
        where = f"{request.method} {request.url}"
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


def _body_words(response: Response) -> str:
    try:
        data = json.loads(response.body)
    except (ValueError, UnicodeDecodeError):
        return ""
    if isinstance(data, dict):
        return "; ".join(str(data[k]) for k in ("msg", "message", "url") if data.get(k))
    return ""
