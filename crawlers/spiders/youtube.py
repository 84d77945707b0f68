"""YouTube comments: Data API v3 `commentThreads.list`.

Needs an API key (`api_key`) and something to read: `video_ids` (comments on those
videos) and/or `channel_ids` (every comment thread related to the channel,
`allThreadsRelatedToChannelId`). One query per video or channel; threads come
newest first (`order=time`), so paging stops after a page whose last comment is
older than the crawl window. A pinned comment comes first whatever its age, so an
old first comment does not stop it. Brand matching is ours: the API's `searchTerms` would cost the
same quota and miss aliases.

The key travels in the `X-Goog-Api-Key` header rather than the `key=` parameter,
so that request URLs in logs and fault lines never contain it.

Quota: every call costs 1 unit of a 10,000/day project quota. When the API says
`quotaExceeded`, more calls today only fail, so `backoff_from_response` asks for
a pause until the quota resets (midnight Pacific time), which makes the shared
rate limiter abandon the rest of this crawl instead of burning requests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from scrapy.http import Request, Response

from brandpulse.config import YouTubeSource
from brandpulse.mention import Mention
from crawlers.spiders.base import MentionSpider, Page, SearchQuery, SourceFault, iter_items

_QUOTA_RESET_ZONE = ZoneInfo("America/Los_Angeles")
# Reasons after which nothing else of this source can succeed today.
_DAILY = {"quotaExceeded", "dailyLimitExceeded"}
# Short-term throttling: Google does not say for how long; a minute is its usual window.
_SHORT_TERM = {"rateLimitExceeded", "userRateLimitExceeded"}


def seconds_to_quota_reset(now: datetime | None = None) -> float:
    """Seconds until the next midnight in Pacific time, when Data API quotas reset."""
    local = (now or datetime.now(UTC)).astimezone(_QUOTA_RESET_ZONE)
    midnight = datetime.combine(
        local.date() + timedelta(days=1), datetime.min.time(), _QUOTA_RESET_ZONE
    )
    return (midnight - local).total_seconds()


def error_reason(body: bytes) -> tuple[str | None, str | None]:
    """(reason, message) of a Google API error body, e.g. ('quotaExceeded', 'The request...')."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, None
    reasons = [e.get("reason") for e in iter_items(error.get("errors")) if isinstance(e, dict)]
    return next((r for r in reasons if r), None), error.get("message")


class YouTubeSpider(MentionSpider):
    name = "youtube"
    source_type = "youtube"
    source_model = YouTubeSource
    default_base_url = "https://www.googleapis.com/youtube/v3"
    default_requests_per_minute: ClassVar[float] = 60.0

    def check_credentials(self) -> str | None:
        key = self.source.api_key
        if key is None or not key.get_secret_value().strip():
            return "api_key is not set (YouTube Data API v3 needs an API key)"
        if not self.source.video_ids and not self.source.channel_ids:
            return "neither video_ids nor channel_ids is configured: no comments to read"
        self.default_headers["X-Goog-Api-Key"] = key.get_secret_value().strip()
        return None

    def search_queries(self) -> list[SearchQuery]:
        queries = [
            self.make_query(f"video:{vid}", None, vid, param="videoId")
            for vid in self.source.video_ids
        ]
        queries += [
            self.make_query(f"channel:{cid}", None, cid, param="allThreadsRelatedToChannelId")
            for cid in self.source.channel_ids
        ]
        return queries

    def build_request(self, query: SearchQuery, page_token: Any) -> Request:
        params = {
            "part": "snippet",
            query.params["param"]: query.text,
            "order": "time",
            "maxResults": 100,
            "pageToken": page_token,
        }
        return Request(self.url("/commentThreads", **params))

    def parse_page(self, response: Response, query: SearchQuery, data: Any) -> Page:
        if not isinstance(data, dict):
            raise SourceFault(
                "parse_error", f"{response.url}: expected a JSON object, got {type(data).__name__}"
            )
        if "error" in data:
            reason, message = error_reason(response.body)
            raise SourceFault("api_error", f"{response.url}: {reason}: {message}")
        return Page(list(iter_items(data.get("items"))), next_page=data.get("nextPageToken"))

    def post_to_mention(self, raw: Any, query: SearchQuery) -> Mention | None:
        thread = raw["snippet"]
        comment = thread["topLevelComment"]["snippet"]
        video = comment.get("videoId") or thread.get("videoId")
        comment_id = raw["snippet"]["topLevelComment"].get("id") or raw["id"]
        # textOriginal is the plain text as typed; textDisplay is HTML (links,
        # <br>, entities) and only a fallback when the original is withheld.
        original = comment.get("textOriginal")
        return self.make_mention(
            source_id=comment_id,
            created_at=comment["publishedAt"],
            text=original if original is not None else comment.get("textDisplay", ""),
            html=original is None,
            url=f"https://www.youtube.com/watch?v={video}&lc={comment_id}" if video else None,
            author=comment.get("authorDisplayName"),
            likes=comment.get("likeCount"),
            replies=thread.get("totalReplyCount"),
        )

    def describe_error(self, response: Response) -> str | None:
        reason, message = error_reason(response.body)
        if reason is None and message is None:
            return None
        return f"{reason or 'error'}: {message or ''}".strip()

    def backoff_from_response(self, response: Response) -> float | None:
        if response.status in (403, 429):
            reason, _ = error_reason(response.body)
            if reason in _DAILY:
                return seconds_to_quota_reset()
            if reason in _SHORT_TERM:
                return 60.0
        return None
