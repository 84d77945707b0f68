"""Bilibili (bilibili.com): video search by keyword, the comments of new videos,
the uploader's follower count as reach.

Requests (all to ``base_url``, default https://api.bilibili.com):

1. ``GET /x/web-interface/nav`` once per crawl, for the WBI signing keys
   (``data.wbi_img.img_url`` / ``sub_url``). Without a login it answers code -101
   *with* the keys, so -101 is not a refusal here.
2. ``GET /x/web-interface/wbi/search/type?keyword=<term>&order=pubdate&page=<n>&search_type=video&wts=..&w_rid=..``,
   one query per search term of the brands (the search has no OR), newest first,
   paged by ``page`` up to ``data.numPages`` and ``max_pages``. WBI-signed.
3. For each new video that names a brand: ``GET /x/v2/reply?oid=<aid>&type=1&sort=0&ps=20&pn=<n>``
   (comments, newest first, paged while ``num * size < count``) and, once per
   uploader per crawl, ``GET /x/relation/stat?vmid=<mid>`` (``data.follower``
   becomes ``author_reach`` of that uploader's videos; a failed look-up leaves it
   unknown, the video is still yielded).

WBI signature (the web API's request signing; a missing or wrong one is answered
with risk control, -352 or a ``v_voucher``): implemented from the algorithm
documented in SocialSisterYi/bilibili-API-collect, ``docs/misc/sign/wbi.md``
(https://github.com/SocialSisterYi/bilibili-API-collect/blob/master/docs/misc/sign/wbi.md):
``img_key``/``sub_key`` are the file names (without extension) of the two nav
URLs; ``mixin_key`` = the characters of ``img_key + sub_key`` taken in the order
of the published 64-entry ``MIXIN_KEY_ENC_TAB``, first 32; add ``wts`` (unix
seconds), remove ``!'()*`` from the values, sort by key, percent-encode with
upper-case hex and ``%20`` for spaces, and ``w_rid = md5(query + mixin_key)``.
The documented worked example (keys ``7cd0849…``/``4932caf…`` -> mixin
``ea1db124…``; ``foo=114, bar=514, zab=1919810, wts=1702204169`` -> ``w_rid
8f6f2b5b…``) is a unit test.

Refusals: Bilibili answers most refusals with HTTP 200 and a JSON ``code``:
-412 (request blocked) and HTTP 412 -> ``blocked``; -352 (risk control), and a
code 0 whose ``data`` is only a ``v_voucher`` (the answer to a missing or wrong
signature) -> ``captcha``; -101 (login required) -> ``login_required``; -799 (too
frequent) -> ``rate_limited`` (kinds in `crawlers.faults`). A refused page is
never parsed as posts and does not count as read (so a crawl whose every page was
refused reads nothing and feeds the source-health alert). After a ``blocked``,
``captcha`` or ``rate_limited`` answer the spider sends nothing new this crawl
(hammering a wall makes it higher); ``login_required`` costs only the page behind
the wall. Any other non-zero code is an ``api_error`` quoting the site's message.

Live status: api.bilibili.com's robots.txt is ``User-agent: *`` / ``Disallow: /``
(as public projects recorded it in 2026). Obeyed, a crawl of the live site fetches
robots.txt and nothing else and fails visibly (``ignored``: Forbidden by
robots.txt; read_nothing). The spider is for endpoints whose robots.txt allows
it (``base_url``); there is deliberately no switch to ignore robots.txt.

Politeness: robots.txt is obeyed (Scrapy's middleware, with the waiting fix of
`crawlers.spiders.html_forum`); default 10 requests/min, plus a random extra pause
of ``delay_jitter`` x the pace (Scrapy's RANDOMIZE_DOWNLOAD_DELAY: 0.5x-1.5x);
``user_agent`` is configurable; ``Referer: https://www.bilibili.com/``.

Login: optional ``sessdata`` (the SESSDATA cookie of an account) is sent as a
``Cookie`` header, which the egress policy only lets reach the source's own
origin. Without it the search is often blocked (-412).

Limits: comments are read once, when their video is first found (comments posted
later on an older video are not collected); replies inside comment threads are
not read; play counts are not stored (a Mention has no view count).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from datetime import timedelta
from hashlib import md5
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from brandpulse.config import BilibiliSource
from brandpulse.mention import Mention
from brandpulse.query import match_brands
from crawlers.faults import BLOCKED, CAPTCHA, LOGIN_REQUIRED, RATE_LIMITED
from crawlers.spiders.base import MentionSpider, Page, SearchQuery, SourceFault, iter_items
from crawlers.text import html_to_text

__all__ = ["MIXIN_KEY_ENC_TAB", "BilibiliSpider", "mixin_key", "wbi_keys", "wbi_signed_query"]

# The published permutation (bilibili-API-collect docs/misc/sign/wbi.md).
MIXIN_KEY_ENC_TAB: tuple[int, ...] = (
    46, 47, 18, 2, 53, 8, 23, 32, 15, 50, 10, 31, 58, 3, 45, 35, 27, 43, 5, 49,
    33, 9, 42, 19, 29, 28, 14, 39, 12, 38, 41, 13, 37, 48, 7, 16, 24, 55, 40,
    61, 26, 17, 0, 1, 60, 51, 30, 4, 22, 25, 54, 21, 56, 59, 6, 63, 57, 62, 11,
    36, 20, 34, 44, 52,
)  # fmt: skip
_DROPPED_CHARS = str.maketrans("", "", "!'()*")

# JSON `code` -> fault kind of a refusal (bilibili-API-collect docs/misc/errcode.md).
REFUSALS: Mapping[int, str] = {
    -412: BLOCKED,
    -352: CAPTCHA,
    -101: LOGIN_REQUIRED,
    -799: RATE_LIMITED,
}
# After one of these the site is defending itself: nothing new is sent this crawl.
# (A login wall costs only what is behind it.)
_STOPPING = frozenset({BLOCKED, CAPTCHA, RATE_LIMITED})


def mixin_key(img_key: str, sub_key: str) -> str:
    """The WBI mixin key: `img_key + sub_key` permuted by MIXIN_KEY_ENC_TAB, first 32."""
    raw = img_key + sub_key
    if len(raw) < 64:
        raise ValueError(f"WBI keys too short ({len(raw)} characters, 64 expected)")
    return "".join(raw[i] for i in MIXIN_KEY_ENC_TAB)[:32]


def wbi_keys(nav: Any) -> tuple[str, str]:
    """(img_key, sub_key) from a nav response: the URL file names without extension."""
    img = nav["data"]["wbi_img"]
    keys = []
    for field in ("img_url", "sub_url"):
        name = urlsplit(str(img[field])).path.rsplit("/", 1)[-1]
        keys.append(name.split(".", 1)[0])
    if not all(keys):
        raise ValueError(f"empty WBI key in {img!r}")
    return keys[0], keys[1]


def wbi_signed_query(params: Mapping[str, Any], mixin: str, wts: int) -> str:
    """The query string to send: `params` + `wts`, signed with `w_rid`.

    The same string that is hashed is sent, so the server sees exactly the signed
    values (`!'()*` removed, keys sorted, RFC 3986 encoding with upper-case hex).
    """
    values = {str(k): str(v).translate(_DROPPED_CHARS) for k, v in params.items()}
    values["wts"] = str(int(wts))
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(values.items()))
    w_rid = md5((query + mixin).encode("utf-8")).hexdigest()
    return f"{query}&w_rid={w_rid}"


class BilibiliSpider(MentionSpider):
    name = "bilibili"
    source_type = "bilibili"
    source_model = BilibiliSource
    default_base_url = "https://api.bilibili.com"
    default_requests_per_minute: ClassVar[float] = 10.0
    obey_robots = True
    search_style = "terms"
    # The search index lags a little behind new uploads.
    cursor_overlap: ClassVar[timedelta] = timedelta(minutes=15)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mixin: str | None = None
        self._refused: str | None = None  # first stopping refusal: nothing new is sent after it
        self._comments_queued: set[Any] = set()  # aids whose comments are requested
        self._videos: dict[str, tuple[Any, Any]] = {}  # bvid -> (mid, aid), parse -> route
        self._followers: dict[Any, int | None] = {}  # mid -> follower count (None: unknown)
        self._waiting: dict[Any, list[Mention]] = {}  # mid -> videos waiting for the count

    # ------------------------------------------------------------- setup

    def configure_settings(self, settings: Any) -> None:
        settings.set("USER_AGENT", self.source.user_agent, priority="spider")
        middlewares = dict(settings.getdict("DOWNLOADER_MIDDLEWARES"))
        middlewares["scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware"] = None
        middlewares["crawlers.spiders.html_forum.WaitingRobotsTxtMiddleware"] = 100
        settings.set("DOWNLOADER_MIDDLEWARES", middlewares, priority="spider")
        # A random extra pause on top of the rate limiter's even pace, so requests
        # do not arrive like clockwork.
        pace = 60.0 / self.requests_per_minute
        settings.set("DOWNLOAD_DELAY", pace * self.source.delay_jitter, priority="spider")
        settings.set("RANDOMIZE_DOWNLOAD_DELAY", True, priority="spider")

    def check_credentials(self) -> str | None:
        self.default_headers["Referer"] = "https://www.bilibili.com/"
        if self.source.sessdata is not None:
            value = self.source.sessdata.get_secret_value().strip()
            if any(c in value for c in ";,= \r\n\t"):
                # Only the cookie's value: anything else would smuggle other cookies in.
                return "sessdata must be the bare value of the SESSDATA cookie (no 'SESSDATA=', ';' or spaces)"
            if value:
                self.default_headers["Cookie"] = f"SESSDATA={value}"
        return None

    def setup_request(self) -> Request:
        return Request(self.url("/x/web-interface/nav"))

    def handle_setup(self, response: Response, data: Any) -> None:
        code = data.get("code") if isinstance(data, dict) else None
        # -101 is the normal answer without a login, and still carries the keys.
        if code in REFUSALS and code != -101:
            self._refused = REFUSALS[code] if REFUSALS[code] in _STOPPING else None
            raise SourceFault(REFUSALS[code], _code_detail(response, data))
        try:
            self._mixin = mixin_key(*wbi_keys(data))
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceFault(
                "auth", f"{_code_detail(response, data)}: no WBI keys ({exc!r})"
            ) from None

    # ------------------------------------------------------------- requests

    def build_request(self, query: SearchQuery, page_token: Any) -> Request:
        page = int(page_token or 1)
        if query.params.get("kind") == "comments":
            return Request(
                self.url("/x/v2/reply", oid=query.params["aid"], type=1, sort=0, ps=20, pn=page)
            )
        assert self._mixin is not None, "the nav request sets the WBI key before any search"
        params = {"search_type": "video", "keyword": query.text, "order": "pubdate", "page": page}
        signed = wbi_signed_query(params, self._mixin, int(time.time()))
        return Request(f"{self.base_url}/x/web-interface/wbi/search/type?{signed}")

    def parse_page(self, response: Response, query: SearchQuery, data: Any) -> Page:
        body = self._checked(response, data)
        page = int(response.meta.get("brandpulse_page") or 1)
        if query.params.get("kind") == "comments":
            replies = list(iter_items(body.get("replies")))
            info = body.get("page") or {}
            num, size, count = (int(info.get(k) or 0) for k in ("num", "size", "count"))
            more = bool(replies) and num * size < count
            return Page(replies, next_page=num + 1 if more and not self._refused else None)
        items = list(iter_items(body.get("result")))
        pages = int(body.get("numPages") or 0)
        more = bool(items) and page < pages
        return Page(items, next_page=page + 1 if more and not self._refused else None)

    def post_to_mention(self, raw: Any, query: SearchQuery) -> Mention | None:
        if query.params.get("kind") == "comments":
            return self._comment(raw, query)
        if raw.get("type") != "video":
            return None
        bvid = str(raw["bvid"])
        self._videos[bvid] = (raw.get("mid"), raw.get("aid"))
        return self.make_mention(
            source_id=bvid,
            created_at=raw["pubdate"],
            # The search highlights matches: <em class="keyword">…</em>, entities.
            title=html_to_text(raw.get("title")),
            text=raw.get("description") or "",  # plain text with entities (&amp;)
            url=f"https://www.bilibili.com/video/{bvid}",
            author=raw.get("author"),
            likes=raw.get("like"),
            replies=raw.get("review"),
        )

    def _comment(self, raw: Any, query: SearchQuery) -> Mention:
        rpid = str(raw.get("rpid_str") or raw["rpid"])
        bvid = query.params.get("bvid")
        return self.make_mention(
            source_id=f"reply:{rpid}",
            created_at=raw["ctime"],
            text=raw["content"]["message"],
            url=f"https://www.bilibili.com/video/{bvid}#reply{rpid}" if bvid else None,
            author=(raw.get("member") or {}).get("uname"),
            likes=raw.get("like"),
            replies=raw.get("rcount"),
        )

    # ------------------------------------------------------------- per video

    def _on_page(self, response: Response) -> Iterator[Any]:
        query = self._queries[response.meta["brandpulse_query"]].query
        for out in super()._on_page(response):
            if isinstance(out, Mention) and query.params.get("kind") != "comments":
                yield from self._video_extras(out, query)
            else:
                yield out

    def _video_extras(self, video: Mention, query: SearchQuery) -> Iterator[Any]:
        """The video's comment query and its uploader's reach, for a video that
        names a brand (the others are dropped by the brand filter anyway)."""
        mid, aid = self._videos.pop(video.source_id, (None, None))
        named = match_brands(
            self.brand_queries, video.body, url=video.url, author=video.author,
            language=video.language,
        )  # fmt: skip
        if self._refused or not named:
            yield video
            return
        if self.source.comments and aid and aid not in self._comments_queued:
            self._comments_queued.add(aid)
            comments = self.make_query(
                f"comments:{aid}", query.brand, str(aid), kind="comments", aid=aid,
                bvid=video.source_id,
            )  # fmt: skip
            yield self._page_request(comments, None, 1)
        if not self.source.uploader_reach or not mid:
            yield video
        elif mid in self._followers:
            yield _with_reach(video, self._followers[mid])
        else:
            waiting = self._waiting.setdefault(mid, [])
            waiting.append(video)
            if len(waiting) == 1:
                request = Request(self.url("/x/relation/stat", vmid=mid))
                request = self._decorate(
                    request, callback=self._on_followers, meta={"bilibili_mid": mid}
                )
                yield request.replace(errback=self._on_followers_failed)

    def _on_followers(self, response: Response) -> Iterator[Mention]:
        count: int | None = None
        data = self.decode_json(response)
        if isinstance(data, dict):
            try:
                follower = self._checked(response, data).get("follower")
                count = follower if isinstance(follower, int) else None
            except SourceFault as exc:
                self.fault(exc.kind, exc.detail)
            except AttributeError:
                self.fault("api_error", f"{response.url}: no data object")
        yield from self._release(response.meta["bilibili_mid"], count)

    def _on_followers_failed(self, failure: Failure) -> Iterator[Mention]:
        kind, detail = self.classify_failure(failure)
        self.fault(kind, detail)
        yield from self._release(failure.request.meta["bilibili_mid"], None)  # type: ignore[attr-defined]

    def _release(self, mid: Any, count: int | None) -> Iterator[Mention]:
        self._followers[mid] = count
        for video in self._waiting.pop(mid, []):
            yield _with_reach(video, count)

    # ------------------------------------------------------------- refusals

    def _checked(self, response: Response, data: Any) -> dict[str, Any]:
        """`data.data` of a successful answer; a SourceFault for a refusal or an error."""
        if not isinstance(data, dict):
            raise SourceFault("parse_error", f"{response.url}: expected a JSON object")
        code = data.get("code")
        body = data.get("data")
        if code == 0 and isinstance(body, dict) and "v_voucher" in body and len(body) == 1:
            # A missing or wrong WBI signature: "success" holding only a risk-control voucher.
            kind: str | None = CAPTCHA
        elif code == 0 and isinstance(body, dict):
            return body
        else:
            kind = REFUSALS.get(code) if isinstance(code, int) else None
        if kind is None:
            raise SourceFault("api_error", _code_detail(response, data))
        if kind in _STOPPING:
            self._refused = self._refused or kind
        # A refusal out of parse_page is not counted as a page read: the base does
        # that for every kind in `crawlers.faults.REFUSAL_KINDS`.
        raise SourceFault(kind, _code_detail(response, data))

    def classify_failure(self, failure: Failure) -> tuple[str, str]:
        kind, detail = super().classify_failure(failure)
        exc = failure.value
        if isinstance(exc, HttpError) and exc.response.status == 412:
            self._refused = self._refused or BLOCKED
            return BLOCKED, detail
        return kind, detail

    def describe_error(self, response: Response) -> str | None:
        try:
            data = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            return None
        if isinstance(data, dict) and "code" in data:
            return f"code {data.get('code')}: {data.get('message')!r}"
        return None

    def cursor_data(self) -> dict[str, Any] | None:
        # Comment queries are read once, with their video: keeping their cursors
        # would only grow the file.
        data = super().cursor_data()
        if data is not None:
            data["queries"] = {
                k: v for k, v in data["queries"].items() if not k.startswith("comments:")
            }
        return data


def _with_reach(video: Mention, count: int | None) -> Mention:
    return video if count is None else video.model_copy(update={"author_reach": count})


def _code_detail(response: Response, data: Any) -> str:
    if isinstance(data, dict):
        return f"{response.url} -> code {data.get('code')}: {data.get('message')!r}"
    return f"{response.url} -> {type(data).__name__}"
