"""Hacker News stories and comments via the Algolia HN Search API.

`GET /api/v1/search_by_date?query=..&tags=(story,comment)&numericFilters=created_at_i>TS
&hitsPerPage=100&page=N` returns `hits[]` newest first plus `page`/`nbPages`.
Algolia ANDs the words of a query and has no OR, so each search term of a brand
query is its own search; the brand filter then decides on the full query.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from scrapy.http import Request, Response

from brandpulse.config import HackerNewsSource
from brandpulse.mention import Mention
from crawlers.spiders.base import MentionSpider, Page, SearchQuery, SourceFault, iter_items

HN_ITEM_URL = "https://news.ycombinator.com/item?id={}"


class HackerNewsSpider(MentionSpider):
    name = "hackernews"
    source_type = "hackernews"
    source_model = HackerNewsSource
    # Algolia indexes HN within seconds to a few minutes.
    cursor_overlap = timedelta(minutes=5)
    default_base_url = "https://hn.algolia.com"
    # Algolia allows ~10k requests/hour per IP; a fraction of that is plenty.
    default_requests_per_minute = 60.0
    # Algolia ANDs words and has no OR: one search per term.
    search_style = "terms"
    hits_per_page = 100

    def build_request(self, query: SearchQuery, page_token: Any) -> Request:
        tags = self.source.tags
        tag_filter = tags[0] if len(tags) == 1 else "(" + ",".join(tags) + ")"
        return Request(
            self.url(
                "/api/v1/search_by_date",
                query=query.text,
                tags=tag_filter,
                # Strictly after the cursor second; the boundary ids cover ties.
                numericFilters=f"created_at_i>={int(query.since.timestamp())}",
                hitsPerPage=self.hits_per_page,
                page=page_token or 0,
            )
        )

    def parse_page(self, response: Response, query: SearchQuery, data: Any) -> Page:
        if not isinstance(data, dict) or "hits" not in data:
            message = data.get("message") if isinstance(data, dict) else None
            raise SourceFault(
                "api_error",
                f"{response.url}: no 'hits' in response ({message or type(data).__name__})",
            )
        page = int(data.get("page") or 0)
        pages = int(data.get("nbPages") or 0)
        return Page(iter_items(data["hits"]), page + 1 if page + 1 < pages else None)

    def post_to_mention(self, raw: Any, query: SearchQuery) -> Mention | None:
        tags = raw.get("_tags") or []
        is_comment = "comment" in tags or raw.get("comment_text") is not None
        object_id = raw["objectID"]
        return self.make_mention(
            source_id=object_id,
            created_at=raw.get("created_at_i") or raw["created_at"],
            title=None if is_comment else raw.get("title"),
            text=(raw.get("comment_text") if is_comment else raw.get("story_text")) or "",
            html=True,
            url=HN_ITEM_URL.format(object_id),
            author=raw.get("author"),
            score=raw.get("points"),
            replies=None if is_comment else raw.get("num_comments"),
        )
