"""Bluesky: `app.bsky.feed.searchPosts` with an app-password session.

Post search refuses anonymous callers, so the spider first logs in with
`com.atproto.server.createSession` (`handle` + `app_password`; create the app
password in Settings -> Privacy and security -> App passwords) and sends the
returned `accessJwt` as a bearer token. Both calls go to `base_url`, by default
the bsky.social PDS, which proxies app.bsky.* calls to the AppView.

One search per search term of the brands (the search syntax has no documented
OR), `sort=latest`, newest first; `since` bounds the search at the cursor (or the
lookback on a first crawl) and the base drops anything at or before it.

Post URLs are built as https://bsky.app/profile/{handle}/post/{rkey}. Post views
carry no follower count, so reach is unknown. `createdAt` is what the client
claimed; a post dated in the future (clock skew, or on purpose) is placed at
`indexedAt`, when the network first saw it.

Rate limits: `ratelimit-remaining` / `ratelimit-reset` (epoch seconds) headers.
Sessions: createSession is limited to 30 per 5 minutes and 300 per day per
account, so schedule this source no more often than every 5 minutes.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from scrapy.http import JsonRequest, Request, Response

from brandpulse.config import BlueskySource
from brandpulse.mention import Mention
from crawlers.spiders.base import MentionSpider, Page, SearchQuery, SourceFault, iter_items
from crawlers.spiders.social_common import (
    header_text,
    iso_utc,
    language_code,
    seconds_until,
    unique_terms,
)
from crawlers.text import parse_time

_PAGE_SIZE = 100  # the lexicon's maximum


def post_url(uri: str, handle: str | None, did: str | None) -> str | None:
    """at://did/app.bsky.feed.post/rkey -> the bsky.app web URL of the post."""
    if not uri.startswith("at://"):
        return None
    parts = uri[len("at://") :].split("/")
    if len(parts) != 3 or parts[1] != "app.bsky.feed.post":
        return None
    # Handles change and can be "handle.invalid"; the DID works in the URL too.
    who = handle if handle and handle != "handle.invalid" else (did or parts[0])
    return f"https://bsky.app/profile/{who}/post/{parts[2]}"


class BlueskySpider(MentionSpider):
    name = "bluesky"
    source_type = "bluesky"
    source_model = BlueskySource
    default_base_url = "https://bsky.social"
    # 3000 requests per 5 minutes per IP; a monitor has no business near that.
    default_requests_per_minute: ClassVar[float] = 60.0

    def check_credentials(self) -> str | None:
        missing = []
        if not (self.source.handle or "").strip():
            missing.append("handle")
        password = self.source.app_password
        if password is None or not password.get_secret_value().strip():
            missing.append("app_password")
        if missing:
            return (
                f"{' and '.join(missing)} not set (Bluesky post search needs a logged-in session)"
            )
        return None

    def setup_request(self) -> Request | None:
        return JsonRequest(
            self.url("/xrpc/com.atproto.server.createSession"),
            data={
                "identifier": self.source.handle.strip(),
                "password": self.source.app_password.get_secret_value().strip(),
            },
        )

    def handle_setup(self, response: Response, data: Any) -> None:
        token = data.get("accessJwt") if isinstance(data, dict) else None
        if not token:
            raise SourceFault(
                "auth", f"createSession at {response.url} answered without an accessJwt"
            )
        self.default_headers["Authorization"] = f"Bearer {token}"

    def search_queries(self) -> list[SearchQuery]:
        queries = []
        for term, brands in unique_terms(self.brand_queries):
            brand = brands[0] if len(brands) == 1 else None
            queries.append(self.make_query(f"term:{term}", brand, term))
        return queries

    def build_request(self, query: SearchQuery, page_token: Any) -> Request:
        return Request(
            self.url(
                "/xrpc/app.bsky.feed.searchPosts",
                q=query.text,
                sort="latest",
                limit=_PAGE_SIZE,
                since=iso_utc(query.since),
                cursor=page_token,
            )
        )

    def parse_page(self, response: Response, query: SearchQuery, data: Any) -> Page:
        if not isinstance(data, dict) or not isinstance(data.get("posts"), list):
            raise SourceFault(
                "parse_error", f"{response.url}: expected {{posts: [...]}}, got {_shape(data)}"
            )
        posts = data["posts"]
        # An exhausted search may still hand out a cursor; an empty page ends it.
        return Page(posts, next_page=data.get("cursor") if posts else None)

    def post_to_mention(self, raw: Any, query: SearchQuery) -> Mention | None:
        record = raw.get("record") or {}
        if record.get("$type", "app.bsky.feed.post") != "app.bsky.feed.post":
            return None
        author = raw.get("author") or {}
        created = parse_time(record["createdAt"])
        indexed = raw.get("indexedAt")
        if indexed:
            created = min(created, parse_time(indexed))
        langs = list(iter_items(record.get("langs")))
        return self.make_mention(
            source_id=raw["uri"],
            created_at=created,
            text=record.get("text") or "",
            url=post_url(raw["uri"], author.get("handle"), author.get("did")),
            author=author.get("handle"),
            language=language_code(langs[0]) if langs else None,
            likes=raw.get("likeCount"),
            replies=raw.get("replyCount"),
            shares=(raw.get("repostCount") or 0) + (raw.get("quoteCount") or 0),
        )

    def describe_error(self, response: Response) -> str | None:
        try:
            data = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict) or not (data.get("error") or data.get("message")):
            return None
        return ": ".join(str(data[k]) for k in ("error", "message") if data.get(k))

    def backoff_from_response(self, response: Response) -> float | None:
        if response.status == 429 or header_text(response, "ratelimit-remaining") == "0":
            return seconds_until(header_text(response, "ratelimit-reset")) or None
        return None


def _shape(data: Any) -> str:
    if isinstance(data, dict):
        return "an object with keys " + ", ".join(sorted(data)[:5])
    return type(data).__name__
