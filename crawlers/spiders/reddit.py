"""Reddit posts via the listing JSON of `/search.json` (or `/r/a+b/search.json`).

Anonymous by default (www.reddit.com, about 10 requests/min). With `client_id`
and `client_secret` the spider first asks `/api/v1/access_token` for an
application-only token (client-credentials grant, HTTP Basic auth) and searches
oauth.reddit.com with `Authorization: bearer <token>` (about 100 requests/min).
`base_url` replaces both hosts (the token path and the search path are distinct).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from scrapy.http import FormRequest, Request, Response

from brandpulse.config import RedditSource
from brandpulse.mention import Mention
from crawlers.spiders.base import MentionSpider, Page, SearchQuery, SourceFault, iter_items

WWW = "https://www.reddit.com"
OAUTH = "https://oauth.reddit.com"
# Reddit search's `t` window must cover the cursor; the narrowest that does keeps
# the result list short (sort=new already orders it).
_WINDOWS = [
    (timedelta(hours=1), "hour"),
    (timedelta(days=1), "day"),
    (timedelta(days=7), "week"),
    (timedelta(days=31), "month"),
    (timedelta(days=366), "year"),
]


class RedditSpider(MentionSpider):
    name = "reddit"
    source_type = "reddit"
    source_model = RedditSource
    # Reddit's search index trails new posts by minutes.
    cursor_overlap = timedelta(minutes=15)
    default_base_url = WWW
    page_size = 100

    def _use_oauth(self) -> bool:
        return self.source.client_id is not None and self.source.client_secret is not None

    def default_rate(self) -> float:
        # Reddit's published limits: ~100/min per OAuth client, ~10/min anonymous.
        return 90.0 if self._use_oauth() else 10.0

    def configure_settings(self, settings: Any) -> None:
        # Reddit blocks generic user agents; the config carries a descriptive one.
        settings.set("USER_AGENT", self.source.user_agent, priority="spider")
        if self._use_oauth() and not self.source.base_url:
            self.base_url = OAUTH

    def egress_urls(self) -> list[str]:
        # The token request goes to www.reddit.com, the searches to oauth.reddit.com.
        token_root = self.source.base_url.rstrip("/") if self.source.base_url else WWW
        return [self.base_url, token_root]

    def check_credentials(self) -> str | None:
        has_id = self.source.client_id is not None and self.source.client_id.get_secret_value()
        has_secret = (
            self.source.client_secret is not None and self.source.client_secret.get_secret_value()
        )
        if bool(has_id) != bool(has_secret):
            missing = "client_secret" if has_id else "client_id"
            return f"{missing} is not set (OAuth needs both client_id and client_secret; set neither for anonymous access)"
        return None

    def setup_request(self) -> Request | None:
        if not self._use_oauth():
            return None
        client = f"{self.source.client_id.get_secret_value()}:{self.source.client_secret.get_secret_value()}"
        token_root = self.source.base_url.rstrip("/") if self.source.base_url else WWW
        return FormRequest(
            f"{token_root}/api/v1/access_token",
            formdata={"grant_type": "client_credentials"},
            headers={"Authorization": "Basic " + base64.b64encode(client.encode()).decode()},
            dont_filter=True,
        )

    def handle_setup(self, response: Response, data: Any) -> None:
        if not isinstance(data, dict) or not data.get("access_token"):
            error = data.get("error") if isinstance(data, dict) else None
            raise SourceFault(
                "auth", f"token request answered without access_token (error: {error!r})"
            )
        self.default_headers["Authorization"] = f"bearer {data['access_token']}"

    def describe_error(self, response: Response) -> str | None:
        try:
            data = response.json()
        except ValueError:
            return None
        if isinstance(data, dict) and ("message" in data or "error" in data):
            return f"{data.get('error')} {data.get('message', '')}".strip()
        return None

    def build_request(self, query: SearchQuery, page_token: Any) -> Request:
        subs = self.source.subreddits
        path = f"/r/{'+'.join(subs)}/search.json" if subs else "/search.json"
        return Request(
            self.url(
                path,
                q=query.text,
                sort="new",
                t=_window(query.since),
                limit=self.page_size,
                raw_json=1,  # text unescaped (no &amp;)
                restrict_sr=1 if subs else None,
                after=page_token,
                type="link",
            )
        )

    def parse_page(self, response: Response, query: SearchQuery, data: Any) -> Page:
        if not isinstance(data, dict) or data.get("kind") != "Listing":
            raise SourceFault("api_error", f"{response.url}: expected a Listing, got {_kind(data)}")
        listing = data["data"]
        children = [
            c.get("data") for c in iter_items(listing.get("children")) if c.get("kind") == "t3"
        ]
        return Page(children, listing.get("after") or None)

    def post_to_mention(self, raw: Any, query: SearchQuery) -> Mention | None:
        author = raw.get("author")
        if author in ("[deleted]", None):
            author = None
        selftext = raw.get("selftext") or ""
        if selftext in ("[removed]", "[deleted]"):
            selftext = ""
        permalink = raw.get("permalink")
        return self.make_mention(
            source_id=raw["name"],  # fullname (t3_...): unique across Reddit kinds
            created_at=raw["created_utc"],
            title=raw.get("title"),
            text=selftext,
            url=f"https://www.reddit.com{permalink}" if permalink else raw.get("url"),
            author=author,
            score=raw.get("score"),
            replies=raw.get("num_comments"),
            shares=raw.get("num_crossposts"),
        )


def _window(since: datetime) -> str:
    age = datetime.now(UTC) - since
    for span, name in _WINDOWS:
        if age <= span:
            return name
    return "all"


def _kind(data: Any) -> str:
    if isinstance(data, dict):
        return f"kind={data.get('kind')!r}, keys={sorted(data)[:6]}"
    return type(data).__name__
