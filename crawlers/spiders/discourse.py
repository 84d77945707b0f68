"""Discourse forums via `/search.json?q=<term> order:latest after:<date>&page=N`.

The answer holds `posts[]` (id, username, created_at, like_count, blurb,
post_number, topic_id) and `topics[]` (id, title, slug...) to join on `topic_id`;
`grouped_search_result.more_full_page_results` says whether another page exists.
Discourse search ANDs words, so each search term is its own search. `forum_url`
is the forum's public address (used for links); `base_url` may point requests
elsewhere (a mirror or the test server).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from scrapy.http import Request, Response

from brandpulse.config import DiscourseSource
from brandpulse.mention import Mention
from crawlers.spiders.base import MentionSpider, Page, SearchQuery, SourceFault, iter_items


class DiscourseSpider(MentionSpider):
    name = "discourse"
    source_type = "discourse"
    source_model = DiscourseSource
    # Discourse indexes posts for search in a background job.
    cursor_overlap = timedelta(minutes=15)
    default_base_url = ""  # forum_url
    # Discourse's default per-IP limits for anonymous users are generous, but
    # forums are run by small teams: stay gentle.
    default_requests_per_minute = 20.0
    search_style = "terms"

    def configure_settings(self, settings: Any) -> None:
        self.forum_url = self.source.forum_url.rstrip("/")
        if not self.source.base_url:
            self.base_url = self.forum_url

    def build_request(self, query: SearchQuery, page_token: Any) -> Request:
        # `after:` is day-granular and exclusive; one day earlier never misses a post
        # and the cursor filter drops what was already seen.
        after = (query.since - timedelta(days=1)).date().isoformat()
        return Request(
            self.url("/search.json", q=f"{query.text} order:latest after:{after}", page=page_token)
        )

    def parse_page(self, response: Response, query: SearchQuery, data: Any) -> Page:
        if not isinstance(data, dict) or "grouped_search_result" not in data:
            errors = data.get("errors") if isinstance(data, dict) else None
            raise SourceFault(
                "api_error",
                f"{response.url}: not a search result ({errors or type(data).__name__})",
            )
        topics = {t.get("id"): t for t in iter_items(data.get("topics"))}
        posts = [
            {**p, "_topic": topics.get(p.get("topic_id"), {})}
            for p in iter_items(data.get("posts"))
        ]
        grouped = data.get("grouped_search_result") or {}
        page = int(response.meta.get("brandpulse_page", 1))
        more = bool(grouped.get("more_full_page_results")) and bool(posts)
        return Page(posts, page + 1 if more else None)

    def post_to_mention(self, raw: Any, query: SearchQuery) -> Mention | None:
        topic = raw["_topic"]
        topic_id = raw["topic_id"]
        slug = topic.get("slug") or "-"
        post_number = raw.get("post_number") or 1
        return self.make_mention(
            source_id=raw["id"],
            created_at=raw["created_at"],
            title=topic.get("title") if post_number == 1 else None,
            text=raw.get("blurb") or "",
            html=True,  # blurbs carry <span class="search-highlight"> and entities
            url=f"{self.forum_url}/t/{slug}/{topic_id}/{post_number}",
            author=raw.get("username"),
            likes=raw.get("like_count"),
            replies=topic.get("reply_count") if post_number == 1 else None,
        )
