"""X (Twitter): API v2 recent search, `GET /2/tweets/search/recent`.

Needs an app bearer token (`bearer_token`) of a paid tier; without one the source is
skipped. One search per brand: the brand's terms OR-ed, retweets excluded (a
retweet repeats a post that is found on its own). Recent search only reaches back
seven days, so the first crawl's window is clamped to that.

Incremental: the first page's `meta.newest_id` is kept as the cursor token and sent
as `since_id` next time; the base's time cursor drops anything older as well.
Rate limits: X answers 429 with `x-rate-limit-reset` (epoch seconds) and no
Retry-After; `backoff_from_response` turns that into a pause (or, when the window
resets later than a crawl may wait, into giving up until the next crawl).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from scrapy.http import Request, Response

from brandpulse.config import XSource
from brandpulse.mention import Mention
from crawlers.spiders.base import MentionSpider, Page, SearchQuery, SourceFault, iter_items
from crawlers.spiders.social_common import (
    header_text,
    iso_utc,
    language_code,
    seconds_until,
)

# Recent search refuses a start_time (or since_id) older than 7 days; a minute of
# slack covers the clock difference between us and X.
_RECENT_WINDOW = timedelta(days=7) - timedelta(minutes=1)
_TWEET_FIELDS = (
    "created_at,author_id,lang,public_metrics,conversation_id,referenced_tweets,note_tweet"
)
_USER_FIELDS = "username,name,public_metrics,verified"


class XSpider(MentionSpider):
    name = "x"
    source_type = "x"
    source_model = XSource
    default_base_url = "https://api.x.com"
    # Basic tier: 60 recent-search requests per 15 minutes per app.
    default_requests_per_minute: ClassVar[float] = 4.0

    def check_credentials(self) -> str | None:
        token = self.source.bearer_token
        if token is None or not token.get_secret_value().strip():
            return "bearer_token is not set (X API v2 recent search needs an app bearer token)"
        self.default_headers["Authorization"] = f"Bearer {token.get_secret_value().strip()}"
        return None

    def search_queries(self) -> list[SearchQuery]:
        queries = []
        for name, query in self.brand_queries:
            terms = query.search_terms()
            text = f"({' OR '.join(terms)}) -is:retweet"
            queries.append(self.make_query(f"brand:{name}", name, text))
        return queries

    def build_request(self, query: SearchQuery, page_token: Any) -> Request:
        params: dict[str, Any] = {
            "query": query.text,
            "max_results": 100,
            "tweet.fields": _TWEET_FIELDS,
            "expansions": "author_id",
            "user.fields": _USER_FIELDS,
            "next_token": page_token,
        }
        oldest_allowed = datetime.now(UTC) - _RECENT_WINDOW
        if query.token and query.since > oldest_allowed:
            params["since_id"] = str(query.token)
        else:
            # No usable since_id (first crawl, or the last one is over a week old).
            params["start_time"] = iso_utc(max(query.since, oldest_allowed))
        return Request(self.url("/2/tweets/search/recent", **params))

    def parse_page(self, response: Response, query: SearchQuery, data: Any) -> Page:
        if not isinstance(data, dict):
            raise SourceFault(
                "parse_error", f"{response.url}: expected a JSON object, got {type(data).__name__}"
            )
        if "data" not in data and data.get("errors") and "meta" not in data:
            # A 200 carrying only errors: the query itself was refused.
            raise SourceFault("api_error", f"{response.url}: {self._problem(data)}")
        users = {u.get("id"): u for u in iter_items((data.get("includes") or {}).get("users"))}
        items = [
            (tweet, users.get(tweet.get("author_id"))) for tweet in iter_items(data.get("data"))
        ]
        meta = data.get("meta") or {}
        return Page(items, next_page=meta.get("next_token"), cursor_token=meta.get("newest_id"))

    def post_to_mention(self, raw: Any, query: SearchQuery) -> Mention | None:
        tweet, user = raw
        if any(
            ref.get("type") == "retweeted" for ref in iter_items(tweet.get("referenced_tweets"))
        ):
            return None  # the original is a post of its own; a retweet only repeats it
        # Posts over 280 characters come truncated in `text`, whole in `note_tweet`.
        text = (tweet.get("note_tweet") or {}).get("text") or tweet["text"]
        username = (user or {}).get("username")
        tweet_id = str(tweet["id"])
        url = (
            f"https://x.com/{username}/status/{tweet_id}"
            if username
            else f"https://x.com/i/web/status/{tweet_id}"
        )
        metrics = tweet.get("public_metrics") or {}
        return self.make_mention(
            source_id=tweet_id,
            created_at=tweet["created_at"],
            text=text,  # X escapes &, < and > as entities even in v2; clean_text decodes them
            url=url,
            author=username,
            author_reach=((user or {}).get("public_metrics") or {}).get("followers_count"),
            language=language_code(tweet.get("lang")),
            likes=metrics.get("like_count"),
            replies=metrics.get("reply_count"),
            shares=(metrics.get("retweet_count") or 0) + (metrics.get("quote_count") or 0)
            if metrics
            else None,
        )

    def describe_error(self, response: Response) -> str | None:
        try:
            data = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            return None
        return self._problem(data) if isinstance(data, dict) else None

    @staticmethod
    def _problem(data: dict[str, Any]) -> str:
        # v2 errors are RFC 7807 problems (title/detail) with an optional errors[] list.
        parts = [str(data[k]) for k in ("title", "detail") if data.get(k)]
        if data.get("reason"):
            parts.append(f"reason={data['reason']}")
        for error in list(iter_items(data.get("errors")))[:2]:
            if isinstance(error, dict) and (error.get("message") or error.get("detail")):
                parts.append(str(error.get("message") or error.get("detail")))
        return "; ".join(dict.fromkeys(parts)) or "no error text"

    def backoff_from_response(self, response: Response) -> float | None:
        remaining = header_text(response, "x-rate-limit-remaining")
        if response.status == 429 or remaining == "0":
            return seconds_until(header_text(response, "x-rate-limit-reset")) or None
        return None
