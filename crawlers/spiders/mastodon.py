"""Mastodon: hashtag timelines of one instance, plus full-text search with a token.

- `GET /api/v1/timelines/tag/{tag}` for each configured tag (no token needed on most
  instances). Pages are followed through the `Link: <...>; rel="next"` header, as
  Mastodon asks clients to do; a `since_id` of the newest status seen last time
  makes later crawls incremental.
- `GET /api/v2/search?type=statuses&q=<term>` for each search term of the brands,
  only when `access_token` is set (instances answer full-text status search to
  logged-in users only). Mastodon's search has no OR, hence one search per term.
  Search sends no Link header; older pages are asked for with `max_id`.

A status is identified by its ActivityPub `uri`, not its `id`: ids are local to
the instance that served them, the uri is the same on every instance, so the same
post crawled from two instances is one mention. The content warning
(`spoiler_text`) becomes the title. Reach is the account's `followers_count`.

Rate limits: Mastodon sends `X-RateLimit-Remaining` with an ISO 8601
`X-RateLimit-Reset`; the shared middleware reads only numeric resets, so
`backoff_from_response` handles Mastodon's form.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import quote

from scrapy.http import Request, Response

from brandpulse.config import MastodonSource
from brandpulse.mention import Mention
from crawlers.spiders.base import MentionSpider, Page, SearchQuery, SourceFault
from crawlers.spiders.social_common import header_text, language_code, seconds_until, unique_terms

_PAGE_SIZE = 40  # the API's maximum for both endpoints


def next_link(response: Response) -> str | None:
    """The rel="next" URL of an RFC 8288 Link header, if any."""
    header = header_text(response, "Link")
    if not header:
        return None
    for part in header.split(","):
        url, _, params = part.partition(";")
        url = url.strip()
        if (
            url.startswith("<")
            and url.endswith(">")
            and any(
                p.strip().replace(" ", "") in ('rel="next"', "rel=next") for p in params.split(";")
            )
        ):
            return url[1:-1]
    return None


class MastodonSpider(MentionSpider):
    name = "mastodon"
    source_type = "mastodon"
    source_model = MastodonSource
    # Instances allow 300 requests per 5 minutes per account or IP.
    default_requests_per_minute: ClassVar[float] = 30.0

    def configure_settings(self, settings: Any) -> None:
        # The API root is the instance itself; `base_url` (a proxy, the test server)
        # still wins. This is the first hook that runs once the source is known.
        self.base_url = (self.source.base_url or self.source.instance_url).rstrip("/")

    def check_credentials(self) -> str | None:
        token = self.source.access_token
        if token is not None and token.get_secret_value().strip():
            self.default_headers["Authorization"] = f"Bearer {token.get_secret_value().strip()}"
        elif not self.source.tags:
            return (
                "no tags configured and no access_token set: hashtag timelines need `tags`, "
                "full-text search needs `access_token`"
            )
        return None

    def search_queries(self) -> list[SearchQuery]:
        queries = [
            self.make_query(f"tag:{tag.lstrip('#').lower()}", None, tag.lstrip("#"), kind="tag")
            for tag in self.source.tags
        ]
        if "Authorization" in self.default_headers:
            for term, brands in unique_terms(self.brand_queries):
                brand = brands[0] if len(brands) == 1 else None
                queries.append(self.make_query(f"search:{term}", brand, term, kind="search"))
        return queries

    def build_request(self, query: SearchQuery, page_token: Any) -> Request:
        if query.params["kind"] == "tag":
            if page_token:
                return Request(str(page_token))  # the server's own rel="next" URL
            path = f"/api/v1/timelines/tag/{quote(query.text, safe='')}"
            return Request(self.url(path, limit=_PAGE_SIZE, since_id=query.token))
        return Request(
            self.url(
                "/api/v2/search",
                q=query.text,
                type="statuses",
                resolve="false",
                limit=_PAGE_SIZE,
                max_id=page_token,
                # In search, min_id is a plain lower bound (not a page anchor as in
                # timelines), so it stays on every page.
                min_id=query.token,
            )
        )

    def parse_page(self, response: Response, query: SearchQuery, data: Any) -> Page:
        if query.params["kind"] == "tag":
            if not isinstance(data, list):
                raise SourceFault(
                    "parse_error", f"{response.url}: expected a list of statuses, got {_kind(data)}"
                )
            statuses = data
            next_page = next_link(response) if statuses else None
        else:
            if not isinstance(data, dict) or not isinstance(data.get("statuses"), list):
                raise SourceFault(
                    "parse_error",
                    f"{response.url}: expected a search result with statuses, got {_kind(data)}",
                )
            statuses = data["statuses"]
            next_page = statuses[-1]["id"] if len(statuses) >= _PAGE_SIZE else None
        newest = max((s["id"] for s in statuses), key=_id_order, default=None)
        return Page(statuses, next_page=next_page, cursor_token=newest)

    def post_to_mention(self, raw: Any, query: SearchQuery) -> Mention | None:
        if raw.get("reblog"):
            return None  # a boost repeats a status that is found on its own
        account = raw.get("account") or {}
        return self.make_mention(
            source_id=raw.get("uri") or raw["id"],
            created_at=raw["created_at"],
            text=raw.get("content") or "",
            html=True,
            title=raw.get("spoiler_text") or None,
            url=raw.get("url") or raw.get("uri"),
            author=account.get("acct"),
            author_reach=account.get("followers_count"),
            language=language_code(raw.get("language")),
            likes=raw.get("favourites_count"),
            replies=raw.get("replies_count"),
            shares=raw.get("reblogs_count"),
        )

    def describe_error(self, response: Response) -> str | None:
        try:
            data = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            return None
        if isinstance(data, dict) and data.get("error"):
            return str(data["error"])
        return None

    def backoff_from_response(self, response: Response) -> float | None:
        if response.status == 429 or header_text(response, "X-RateLimit-Remaining") == "0":
            return seconds_until(header_text(response, "X-RateLimit-Reset")) or None
        return None


def _id_order(status_id: str) -> tuple[int, str]:
    # Ids are numeric strings (Snowflake-like since Mastodon 2.0); length-then-text
    # orders them numerically without int() failing on other servers' ids.
    return (len(status_id), status_id)


def _kind(data: Any) -> str:
    return type(data).__name__
