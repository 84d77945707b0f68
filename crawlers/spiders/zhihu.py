"""Zhihu (知乎): questions, answers and articles found by keyword search, and the
root comments of the answers that name a brand. Zhihu's API needs a logged-in
session: the user supplies its cookie.

Requests (all to ``base_url``, default https://www.zhihu.com):

1. ``GET /api/v4/search_v3?t=general&q=<term>&correction=1&offset=<n>&limit=20``, one
   search per positive term of the brands (Zhihu's search has no boolean OR). The
   answer is ``{"data": [{"type": "search_result", "highlight": {...}, "object":
   {...}}, ...], "paging": {"is_end": bool, "next": "<url>"}}``. Paging follows
   ``paging.next`` (its ``offset``/``limit``/``search_hash_id``... on our own
   ``base_url`` and with our own ``q``: a next link is never followed to another
   host) until ``paging.is_end`` or ``max_pages``. Results are ranked, not in time
   order, so every page up to ``max_pages`` is read on each crawl and the cursor
   (the newest ``created_time`` seen per search, with its ids) keeps what was
   seen from being yielded again.
2. For each configured question (``questions``): ``GET /api/v4/questions/<id>/feeds?
   include=<the web client's field list>&limit=5&offset=0&order=default&platform=desktop``,
   the answers as Zhihu's question page loads them: ``{"data": [{"type":
   "question_feed_card", "target_type": "answer", "target": {<answer>}, "cursor"}...],
   "session": {"id"}, "paging": {"is_end", "next"}}``, paged through ``paging.next``
   (its ``cursor``/``session_id``/``offset``... on our own ``base_url``), ranked, so
   read up to ``max_pages`` with the same cursor as the searches.
3. For each new answer that names a brand (``comments: true``):
   ``GET /api/v4/answers/<id>/root_comments?order=normal&limit=20&offset=0&status=open``,
   paged the same way through ``paging.next``; read once, when the answer is first
   found (as Bilibili's comments).

Objects (``object.type``): ``answer`` -> ``answer:<id>``, URL
``https://www.zhihu.com/question/<qid>/answer/<id>``, title the question's;
``question`` -> ``question:<id>``, ``https://www.zhihu.com/question/<id>``;
``article`` -> ``article:<id>``, ``https://zhuanlan.zhihu.com/p/<id>``; others
(topics, people, videos, ads) are not posts. A question feed's card holds its
answer in ``target``. An anonymous author (``匿名用户``, id ``"0"``) is no author and
no reach. Text: the object's ``content`` or, in a
search result, its ``excerpt`` (HTML with ``<em>`` highlights) cleaned to plain
text by `crawlers.text.html_to_text`. Author ``author.name`` (a comment's
``author.member.name`` in the v4 comment format), reach ``author.follower_count``
where the answer has it (unknown otherwise, never 0). Times are epoch seconds
(``created_time``; a question's or article's ``created``) -> UTC. A question found by
search carries neither (a recorded search answer has only ``updated_time``, its last
edit, and its text in ``description``): its time is that ``updated_time``, the only one
Zhihu gives there, rather than losing the question.

Refusals (`crawlers.faults`): HTTP 401 (no cookie, or an expired one:
``{"error": {"message": "ZERR_NO_AUTH_TOKEN", "code": 100, "name":
"AuthenticationInvalidRequest"}}``) and a 403 or 200 whose error names
authentication (codes 100/101/102) are ``login_required``; code 40352 ("系统监测到您的
网络环境存在异常，请点击下方验证按钮进行验证", HTTP 403, often with ``need_login``: Zhihu
wants a human check at /account/unhuman) is ``captcha``; a 403 with code 10003
("请求参数异常，请升级客户端后重试": Zhihu's risk control, e.g. for a request without
its browser signature) or 40362 is ``blocked``; HTTP 429 is ``rate_limited``.
None is retried, none is parsed as posts, and the first one ends the crawl
(finish reason ``refused``): Zhihu refuses the session, not a search.

Politeness: robots.txt is fetched and obeyed (this is the site's web API, not a
published one; a disallowed path is the fault ``robots_txt`` and nothing is
fetched there; there is deliberately no switch to ignore it); default 6
requests/min plus ``download_delay`` randomised to 0.5-1.5x; one request at a
time; configurable ``user_agent``; ``Referer: https://www.zhihu.com/search``.
Zhihu's web client also signs requests (``x-zse-93``/``x-zse-96``) with a script
this spider does not run; where Zhihu insists on it, the answer is the 403 10003
above, reported as ``blocked``.

Login: ``cookie`` (the Cookie header of a logged-in session, ``z_c0=...``) is
required; without it the source is skipped with one warning. The egress policy
lets it reach only the source's own origin.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from brandpulse.config import ZhihuSource
from brandpulse.mention import Mention
from brandpulse.query import match_brands
from brandpulse.secrets import reveal
from crawlers.faults import BLOCKED, CAPTCHA, LOGIN_REQUIRED, RATE_LIMITED, REFUSAL_KINDS
from crawlers.spiders.base import MentionSpider, Page, SearchQuery, SourceFault

__all__ = ["ZhihuSpider", "zhihu_refusal"]

SEARCH_PATH = "/api/v4/search_v3"
COMMENTS = "comments"  # SearchQuery.params["kind"] of a comment query
FEEDS = "feeds"  # SearchQuery.params["kind"] of a question's answers
PAGE_SIZE = 20
FEED_PAGE_SIZE = 5  # what the web client asks for
# The fields the web client asks a question feed for (recorded request, decoded): without
# them the answers come without content or the authors' follower counts.
FEEDS_INCLUDE = (
    "data[*].is_normal,admin_closed_comment,reward_info,is_collapsed,annotation_action,"
    "annotation_detail,collapse_reason,is_sticky,collapsed_by,suggest_edit,comment_count,"
    "can_comment,content,editable_content,attachment,voteup_count,reshipment_settings,"
    "comment_permission,created_time,updated_time,review_info,relevant_info,question,excerpt,"
    "is_labeled,paid_info,paid_info_content,reaction_instruction,relationship.is_authorized,"
    "is_author,voting,is_thanked,is_nothelp;data[*].mark_infos[*].url;"
    "data[*].author.follower_count,vip_info,badge[*].topics;"
    "data[*].settings.table_of_content.enabled"
)
# Error codes that mean "log in (again)": ZERR_NO_AUTH_TOKEN / ERR_LOGIN_TICKET_EXPIRED
# (100, AuthenticationInvalidRequest), 101 AuthenticationError ("身份未经过验证").
_LOGIN_CODES = frozenset({100, 101, 102})
# Risk control: 10003 "请求参数异常，请升级客户端后重试", 40362 "您当前请求存在异常".
_BLOCK_CODES = frozenset({10001, 10003, 40362})
# A human check: 40352 "系统监测到您的网络环境存在异常，请点击下方验证按钮进行验证".
_CAPTCHA_CODES = frozenset({40352})
# Query parameters of a paging.next link that may be carried over (never a host).
_PAGING_PARAMS = frozenset(
    {"offset", "limit", "search_hash_id", "lc_idx", "show_all_topics", "vertical_info", "order",
     "status", "correction", "t", "cursor", "session_id", "platform"}
)  # fmt: skip


def zhihu_refusal(data: Any, status: int = 200) -> tuple[str, str] | None:
    """(fault kind, Zhihu's words) for an error answer; None for anything else.

    Zhihu writes ``{"error": {"message", "code", "name"}}`` (some endpoints the
    same three keys unwrapped). A 401 is a login problem whatever it says.
    """
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) and isinstance(data, dict) and "name" in data and "code" in data:
        error = data
    if not isinstance(error, dict):
        return (LOGIN_REQUIRED, f"HTTP {status}") if status == 401 else None
    code, name = error.get("code"), str(error.get("name") or "")
    said = f"code {code}: {error.get('message')!r}" + (f" ({name})" if name else "")
    if code in _CAPTCHA_CODES:
        need_login = " (need_login)" if error.get("need_login") else ""
        return CAPTCHA, said + need_login
    if status == 401 or code in _LOGIN_CODES or name.startswith("Authentication"):
        return LOGIN_REQUIRED, said
    if code in _BLOCK_CODES or status == 403:
        return BLOCKED, said
    if status == 429:
        return RATE_LIMITED, said
    return "api_error", said


class ZhihuSpider(MentionSpider):
    name = "zhihu"
    source_type = "zhihu"
    source_model = ZhihuSource
    default_base_url = "https://www.zhihu.com"
    default_requests_per_minute: ClassVar[float] = 6.0
    obey_robots: ClassVar[bool] = True  # the site's web API: its robots.txt rules
    search_style: ClassVar[str] = "terms"
    newest_first: ClassVar[bool] = False  # ranked search: read up to max_pages
    cursor_overlap: ClassVar[timedelta] = timedelta(minutes=30)

    _stopping = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._comments_queued: set[str] = set()

    # ------------------------------------------------------------- setup

    def configure_settings(self, settings: Any) -> None:
        settings.set("USER_AGENT", self.source.user_agent, priority="spider")
        middlewares = dict(settings.getdict("DOWNLOADER_MIDDLEWARES"))
        middlewares["scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware"] = None
        middlewares["crawlers.spiders.html_forum.WaitingRobotsTxtMiddleware"] = 100
        settings.set("DOWNLOADER_MIDDLEWARES", middlewares, priority="spider")
        settings.set("DOWNLOAD_DELAY", self.source.download_delay.total_seconds(), priority="spider")
        settings.set("DOWNLOAD_DELAY_JITTER", 0.5, priority="spider")  # 0.5-1.5x the delay
        # One host: a refusal (which ends the crawl) is not followed by queued searches.
        settings.set("CONCURRENT_REQUESTS", self.source.concurrency, priority="spider")

    def check_credentials(self) -> str | None:
        cookie = reveal(self.source.cookie)
        if cookie is None:
            return "cookie is not set (Zhihu's API needs a logged-in session)"
        self.default_headers["Cookie"] = cookie
        self.default_headers["Referer"] = "https://www.zhihu.com/search"
        self.default_headers["x-requested-with"] = "fetch"
        return None

    def fault(self, kind: str, detail: str) -> None:
        """Count the fault; on a refusal, stop the whole crawl (finish reason `refused`):
        Zhihu refuses the session, so every other request would be refused too."""
        super().fault(kind, detail)
        if kind in REFUSAL_KINDS and not self._stopping:
            self._stopping = True
            from scrapy.utils.defer import deferred_from_coro

            deferred_from_coro(self.crawler.engine.close_spider_async(reason="refused"))

    # ------------------------------------------------------------- requests

    def search_queries(self) -> list[SearchQuery]:
        """The brands' term searches, then one query per configured question (its
        answers: ``question:<id>``, brand left to the filter)."""
        queries = super().search_queries()
        for qid in self.source.questions:
            queries.append(self.make_query(f"question:{qid}", None, qid, kind=FEEDS, question=qid))
        return queries

    def build_request(self, query: SearchQuery, page_token: Any) -> Request:
        params = dict(page_token or {})
        if query.params.get("kind") == FEEDS:
            path = f"/api/v4/questions/{query.params['question']}/feeds"
            params = {
                "include": FEEDS_INCLUDE, "limit": FEED_PAGE_SIZE, "offset": 0,
                "order": "default", "platform": "desktop", **params,
            }  # fmt: skip
        elif query.params.get("kind") == COMMENTS:
            path = f"/api/v4/answers/{query.params['answer']}/root_comments"
            params = {"order": "normal", "limit": PAGE_SIZE, "offset": 0, "status": "open", **params}
        else:
            path = SEARCH_PATH
            params = {"t": "general", "correction": 1, "offset": 0, "limit": PAGE_SIZE, **params}
            params["q"] = query.text
        # A redirect goes to a sign-in page: read as a refusal, never followed.
        return Request(self.url(path, **params), meta={"dont_redirect": True})

    def parse_page(self, response: Response, query: SearchQuery, data: Any) -> Page:
        refused = zhihu_refusal(data)
        if refused is not None:
            kind, said = refused
            raise SourceFault(kind, f"{response.url}: {said}")
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise SourceFault("api_error", f"{response.url}: no data list in the answer")
        items = data["data"]
        paging = data.get("paging") if isinstance(data.get("paging"), dict) else {}
        end = paging.get("is_end") is not False or not items or self._stopping
        return Page(items, next_page=None if end else _next_params(paging, response))

    def post_to_mention(self, raw: Any, query: SearchQuery) -> Mention | None:
        if query.params.get("kind") == COMMENTS:
            return self._comment(raw, query)
        if raw.get("type") == "question_feed_card":
            obj = raw.get("target") if isinstance(raw.get("target"), dict) else {}
        elif raw.get("type") not in ("search_result", None):
            return None  # topic/people boxes, ads, "related searches"
        else:
            obj = raw.get("object") if isinstance(raw.get("object"), dict) else raw
        kind = obj.get("type")
        author = obj.get("author") if isinstance(obj.get("author"), dict) else {}
        if str(author.get("id")) == "0":
            author = {}  # 匿名用户: Zhihu hides who wrote it (and shows 0 followers)
        common = {
            "author": author.get("name"),
            "author_reach": author.get("follower_count"),
            "likes": obj.get("voteup_count"),
            "replies": obj.get("comment_count") if kind != "question" else obj.get("answer_count"),
            "html": True,
        }
        if kind == "answer":
            question = obj.get("question") or {}
            qid, aid = question.get("id"), obj["id"]
            return self.make_mention(
                source_id=f"answer:{aid}",
                created_at=obj["created_time"],
                title=_html_title(question.get("name") or question.get("title")),
                text=obj.get("content") or obj.get("excerpt") or "",
                url=f"https://www.zhihu.com/question/{qid}/answer/{aid}",
                **common,
            )
        if kind == "question":
            qid = obj["id"]
            # A question found by search has neither `created` nor `created_time`, only
            # `updated_time` (its last edit), and its text in `description`.
            created = obj.get("created_time") or obj.get("created") or obj["updated_time"]
            return self.make_mention(
                source_id=f"question:{qid}",
                created_at=created,
                title=_html_title(obj.get("title") or obj.get("name")),
                text=obj.get("detail") or obj.get("excerpt") or obj.get("description") or "",
                url=f"https://www.zhihu.com/question/{qid}",
                **common,
            )
        if kind == "article":
            pid = obj["id"]
            return self.make_mention(
                source_id=f"article:{pid}",
                created_at=obj.get("created_time") or obj["created"],
                title=_html_title(obj.get("title")),
                text=obj.get("content") or obj.get("excerpt") or "",
                url=f"https://zhuanlan.zhihu.com/p/{pid}",
                **common,
            )
        return None

    def _comment(self, raw: Any, query: SearchQuery) -> Mention:
        author = raw.get("author") if isinstance(raw.get("author"), dict) else {}
        member = author.get("member") if isinstance(author.get("member"), dict) else author
        return self.make_mention(
            source_id=f"comment:{raw['id']}",
            created_at=raw["created_time"],
            text=raw.get("content") or "",
            html=True,
            url=query.params["url"],
            author=member.get("name"),
            author_reach=member.get("follower_count"),
            likes=raw.get("vote_count", raw.get("like_count")),
            replies=raw.get("child_comment_count"),
        )

    # ------------------------------------------------------------- per answer

    def _on_page(self, response: Response) -> Iterator[Any]:
        query = self._queries[response.meta["brandpulse_query"]].query
        for out in super()._on_page(response):
            yield out
            if isinstance(out, Mention) and query.params.get("kind") != COMMENTS:
                yield from self._answer_comments(out, query)

    def _answer_comments(self, mention: Mention, query: SearchQuery) -> Iterator[Request]:
        """The first comment page of a new answer that names a brand."""
        if not self.source.comments or self._stopping or not mention.source_id.startswith("answer:"):
            return
        answer = mention.source_id.split(":", 1)[1]
        if answer in self._comments_queued:
            return
        named = match_brands(
            self.brand_queries, mention.body, url=mention.url, author=mention.author,
            language=mention.language,
        )  # fmt: skip
        if not named:
            return
        self._comments_queued.add(answer)
        comments = self.make_query(
            f"{COMMENTS}:{answer}", named[0], answer, kind=COMMENTS, answer=answer, url=mention.url
        )
        yield self._page_request(comments, None, 1)

    def cursor_data(self) -> dict[str, Any] | None:
        # Comments are read once, with their answer: their cursors would only grow the file.
        data = super().cursor_data()
        if data is not None:
            data["queries"] = {
                k: v for k, v in data["queries"].items() if not k.startswith(f"{COMMENTS}:")
            }
        return data

    # ------------------------------------------------------------- refusals

    def classify_failure(self, failure: Failure) -> tuple[str, str]:
        request: Request = failure.request  # type: ignore[attr-defined]
        exc = failure.value
        where = f"{request.method} {request.url}"
        if isinstance(exc, HttpError):
            response = exc.response
            status = response.status
            if 300 <= status < 400:
                location = (response.headers.get("Location") or b"").decode("latin-1")
                return LOGIN_REQUIRED, f"{where} -> {status} to {location or '?'}"
            if status in (401, 403, 429):
                refused = zhihu_refusal(_json_body(response), status)
                if refused is None:  # a 403/429 without an error body
                    refused = (BLOCKED if status == 403 else RATE_LIMITED, f"HTTP {status}")
                kind, said = refused
                return kind, f"{where} -> {status}: {said}"
        if isinstance(exc, IgnoreRequest) and "robots.txt" in str(exc):
            return "robots_txt", f"{where}: disallowed by the site's robots.txt"
        return super().classify_failure(failure)

    def describe_error(self, response: Response) -> str | None:
        refused = zhihu_refusal(_json_body(response), response.status)
        return refused[1] if refused else None


def _next_params(paging: dict[str, Any], response: Response) -> dict[str, Any]:
    """The next page's parameters from ``paging.next`` (only paging parameters: the
    host, path and query of the link are not trusted), else offset + limit."""
    link = paging.get("next")
    if isinstance(link, str) and link:
        params = {k: v for k, v in parse_qsl(urlsplit(link).query) if k in _PAGING_PARAMS}
        if "offset" in params:
            return params
    current = dict(parse_qsl(urlsplit(response.url).query))
    offset = int(current.get("offset") or 0) + int(current.get("limit") or PAGE_SIZE)
    return {"offset": offset, "limit": current.get("limit") or PAGE_SIZE}


def _html_title(value: Any) -> str | None:
    from crawlers.text import html_to_text

    return html_to_text(value) if isinstance(value, str) and value else None


def _json_body(response: Response) -> Any:
    try:
        return json.loads(response.body)
    except (ValueError, UnicodeDecodeError):
        return None
