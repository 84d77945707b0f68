"""Stack Exchange questions via `/2.3/search/advanced`.

Every response is a wrapper: `items[]`, `has_more`, `quota_max`,
`quota_remaining` and, when the server is under load, `backoff` (seconds to wait
before calling the same method again -- obeyed through the rate-limit
middleware). Errors come as HTTP 400/4xx/5xx with `error_id`, `error_name` and
`error_message`. `q` has no OR, so each search term is its own search.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from scrapy.http import Request, Response

from brandpulse.config import StackExchangeSource
from brandpulse.mention import Mention
from crawlers.spiders.base import MentionSpider, Page, SearchQuery, SourceFault, iter_items


class StackExchangeSpider(MentionSpider):
    name = "stackexchange"
    source_type = "stackexchange"
    source_model = StackExchangeSource
    # Stack Exchange's search index trails new questions by minutes.
    cursor_overlap = timedelta(minutes=15)
    default_base_url = "https://api.stackexchange.com"
    # 300 requests/day without a key; the daily quota, not the rate, is the limit.
    default_requests_per_minute = 20.0
    search_style = "terms"
    page_size = 100

    def build_request(self, query: SearchQuery, page_token: Any) -> Request:
        key = self.source.key.get_secret_value() if self.source.key else None
        return Request(
            self.url(
                "/2.3/search/advanced",
                q=query.text,
                site=self.source.site,
                sort="creation",
                order="desc",
                fromdate=int(query.since.timestamp()),
                filter="withbody",
                pagesize=self.page_size,
                page=page_token or 1,
                key=key or None,
            )
        )

    def parse_page(self, response: Response, query: SearchQuery, data: Any) -> Page:
        if not isinstance(data, dict):
            raise SourceFault(
                "api_error", f"{response.url}: expected a wrapper object, got {type(data).__name__}"
            )
        if "error_id" in data:
            raise SourceFault("api_error", _error_text(data))
        remaining = data.get("quota_remaining")
        if isinstance(remaining, int):
            self.crawler.stats.set_value("brandpulse/stackexchange/quota_remaining", remaining)
        page = int(response.meta.get("brandpulse_page", 1))
        more = bool(data.get("has_more")) and remaining != 0
        if data.get("has_more") and remaining == 0:
            self.fault(
                "quota_exhausted",
                f"{response.url}: quota_remaining is 0 (quota_max {data.get('quota_max')})",
            )
        return Page(iter_items(data.get("items")), page + 1 if more else None)

    def post_to_mention(self, raw: Any, query: SearchQuery) -> Mention | None:
        owner = raw.get("owner") or {}
        return self.make_mention(
            source_id=raw["question_id"],
            created_at=raw["creation_date"],
            # Titles and display names arrive HTML-escaped (&#39;); clean_text decodes.
            title=raw.get("title"),
            text=raw.get("body") or "",
            html=True,
            url=raw.get("link"),
            author=owner.get("display_name"),
            author_reach=owner.get("reputation"),
            score=raw.get("score"),
            replies=raw.get("answer_count"),
        )

    def backoff_from_response(self, response: Response) -> float | None:
        if b'"backoff"' not in response.body:
            return None
        try:
            value = json.loads(response.body).get("backoff")
        except (ValueError, AttributeError):
            return None
        return float(value) if isinstance(value, int | float) and value > 0 else None

    def describe_error(self, response: Response) -> str | None:
        try:
            data = json.loads(response.body)
        except ValueError:
            return None
        return _error_text(data) if isinstance(data, dict) and "error_id" in data else None


def _error_text(data: dict[str, Any]) -> str:
    return f"error {data.get('error_id')} {data.get('error_name')}: {data.get('error_message')}"
