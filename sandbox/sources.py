"""Local servers that answer like Reddit, Hacker News (Algolia) and Mastodon.

The demo and the end-to-end benchmark point the real spiders (through each
source's `base_url`) at these servers, so the whole pipeline runs on this machine
exactly as it would against the sites: same paths, same query parameters, same
JSON shapes and paging. A post is visible only once its creation time has come,
so a burst published "now" shows up at the next crawl, as on a real site.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from sandbox.corpus import Post

_WORD = re.compile(r"\w+", re.UNICODE)
_OPERATORS = {"and", "or", "not", "near"}


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def _slug(text: str) -> str:
    return "_".join(re.findall(r"[a-z0-9]+", text.lower())[:6]) or "post"


class PostStore:
    """Posts per source, with a publish time gate, shared by the handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._posts: dict[str, list[Post]] = {"reddit": [], "hackernews": [], "mastodon": []}
        self.requests: dict[str, int] = {}

    def add(self, source: str, posts: Iterable[Post]) -> None:
        with self._lock:
            self._posts[source].extend(posts)
            self._posts[source].sort(key=lambda p: (p.created_at, p.id), reverse=True)

    def visible(self, source: str, query: str | None) -> list[Post]:
        """Newest first; only posts already created; loosely matching the query words.

        Real search APIs over-match (they stem, ignore quotes, match other fields), so
        this matches ANY word of the query and leaves the exact filtering to the crawler.
        """
        now = datetime.now(UTC)
        words = [w.lower() for w in _WORD.findall(query or "") if w.lower() not in _OPERATORS]
        with self._lock:
            posts = [p for p in self._posts[source] if p.created_at <= now]
        if not words:
            return posts
        return [p for p in posts if any(w in p.text.lower() for w in words)]

    def count(self, source: str) -> None:
        with self._lock:
            self.requests[source] = self.requests.get(source, 0) + 1


def assign_source(post: Post) -> str:
    """Which demo source publishes a post: Chinese posts on Mastodon, English split."""
    if post.language == "zh":
        return "mastodon"
    return "reddit" if post.id % 2 else "hackernews"


class _Handler(BaseHTTPRequestHandler):
    server: SourcesServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the demo prints its own story; request lines would drown it

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        store = self.server.store
        if path == "/robots.txt":
            return self._send(200, "User-agent: *\nAllow: /\n", "text/plain")
        if path.startswith("/reddit/") and path.endswith("search.json"):
            store.count("reddit")
            return self._json(self._reddit(params))
        if path.startswith("/hn/api/v1/search_by_date"):
            store.count("hackernews")
            return self._json(self._hackernews(params))
        match = re.fullmatch(r"/mastodon/api/v1/timelines/tag/([^/]+)", path)
        if match:
            store.count("mastodon")
            body, link = self._mastodon(match.group(1), params)
            return self._json(body, {"Link": link} if link else None)
        return self._json({"error": "Not Found", "path": path}, status=404)

    # -- Reddit: GET /search.json?q=&sort=new&t=day&limit=&after=&raw_json=1 ----------
    def _reddit(self, params: dict[str, str]) -> dict[str, Any]:
        posts = self.server.store.visible("reddit", params.get("q"))
        limit = min(int(params.get("limit", 25)), 100)
        start = 0
        if params.get("after"):
            names = [f"t3_{_base36(p.id)}" for p in posts]
            start = names.index(params["after"]) + 1 if params["after"] in names else len(posts)
        page = posts[start : start + limit]
        after = f"t3_{_base36(page[-1].id)}" if start + limit < len(posts) and page else None
        children = []
        for p in page:
            rid = _base36(p.id)
            title, _, body = p.text.partition(". ")
            permalink = f"/r/gadgets/comments/{rid}/{_slug(title)}/"
            children.append(
                {
                    "kind": "t3",
                    "data": {
                        "id": rid,
                        "name": f"t3_{rid}",
                        "title": title,
                        "selftext": body,
                        "author": p.author,
                        "author_fullname": f"t2_{_base36(p.id * 7)}",
                        "subreddit": "gadgets",
                        "subreddit_name_prefixed": "r/gadgets",
                        "created_utc": p.created_at.timestamp(),
                        "score": p.score,
                        "ups": p.score,
                        "upvote_ratio": 0.91,
                        "num_comments": p.replies,
                        "permalink": permalink,
                        "url": f"https://www.reddit.com{permalink}",
                        "over_18": False,
                        "is_self": True,
                    },
                }
            )
        return {
            "kind": "Listing",
            "data": {
                "after": after,
                "dist": len(children),
                "modhash": "",
                "geo_filter": "",
                "children": children,
                "before": None,
            },
        }

    # -- HN Algolia: GET /api/v1/search_by_date?query=&tags=&numericFilters=&page= ----
    def _hackernews(self, params: dict[str, str]) -> dict[str, Any]:
        posts = self.server.store.visible("hackernews", params.get("query"))
        for flt in params.get("numericFilters", "").split(","):
            m = re.fullmatch(r"created_at_i\s*(>=|>)\s*(\d+)", flt.strip())
            if m:
                bound = int(m.group(2))
                posts = [
                    p
                    for p in posts
                    if (p.created_at.timestamp() > bound)
                    or (m.group(1) == ">=" and int(p.created_at.timestamp()) == bound)
                ]
        per_page = min(int(params.get("hitsPerPage", 20)), 1000)
        page_no = int(params.get("page", 0))
        page = posts[page_no * per_page : (page_no + 1) * per_page]
        hits = []
        for p in page:
            story_id = p.id - p.id % 97
            hits.append(
                {
                    "objectID": str(p.id),
                    "created_at": p.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "created_at_i": int(p.created_at.timestamp()),
                    "title": None,
                    "url": None,
                    "author": p.author,
                    "points": None,
                    "story_text": None,
                    "comment_text": escape(p.text).replace("&#x27;", "&#x27;"),
                    "num_comments": None,
                    "story_id": story_id,
                    "story_title": "Ask HN: Cloud storage you actually trust?",
                    "story_url": None,
                    "parent_id": story_id,
                    "_tags": ["comment", f"author_{p.author}", f"story_{story_id}"],
                }
            )
        nb_pages = (len(posts) + per_page - 1) // per_page
        return {
            "hits": hits,
            "nbHits": len(posts),
            "page": page_no,
            "nbPages": nb_pages,
            "hitsPerPage": per_page,
            "exhaustiveNbHits": True,
            "exhaustiveTypo": True,
            "query": params.get("query", ""),
            "params": urlencode(params),
            "processingTimeMS": 1,
        }

    # -- Mastodon: GET /api/v1/timelines/tag/{tag}?limit=&max_id=&since_id=&min_id= ---
    def _mastodon(self, tag: str, params: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
        posts = self.server.store.visible("mastodon", None)
        limit = min(int(params.get("limit", 20)), 40)
        if params.get("max_id"):
            posts = [p for p in posts if p.id < int(params["max_id"])]
        if params.get("since_id"):
            posts = [p for p in posts if p.id > int(params["since_id"])]
        if params.get("min_id"):
            # min_id pages forward from the oldest newer post, as Mastodon does.
            newer = sorted((p for p in posts if p.id > int(params["min_id"])), key=lambda p: p.id)
            posts = sorted(newer[:limit], key=lambda p: p.id, reverse=True)
        page = posts[:limit]
        base = f"http://{self.headers.get('Host')}/mastodon/api/v1/timelines/tag/{tag}"
        link = ""
        if page:
            link = f'<{base}?max_id={page[-1].id}>; rel="next", <{base}?min_id={page[0].id}>; rel="prev"'
        statuses = []
        for p in page:
            url = f"https://mastodon.example/@{p.author}/{p.id}"
            statuses.append(
                {
                    "id": str(p.id),
                    "created_at": p.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "in_reply_to_id": None,
                    "sensitive": False,
                    "spoiler_text": "",
                    "visibility": "public",
                    "language": p.language,
                    "uri": url,
                    "url": url,
                    "replies_count": p.replies,
                    "reblogs_count": p.score // 3,
                    "favourites_count": p.score,
                    "content": f'<p>{escape(p.text)} <a href="https://mastodon.example/tags/{tag}" '
                    f'class="mention hashtag" rel="tag">#<span>{tag}</span></a></p>',
                    "reblog": None,
                    "account": {
                        "id": str(p.id * 3),
                        "username": p.author,
                        "acct": p.author,
                        "display_name": p.author,
                        "followers_count": p.followers,
                        "following_count": 100,
                        "statuses_count": 1000,
                        "url": f"https://mastodon.example/@{p.author}",
                    },
                    "media_attachments": [],
                    "mentions": [],
                    "tags": [{"name": tag, "url": f"https://mastodon.example/tags/{tag}"}],
                    "emojis": [],
                }
            )
        return statuses, link

    def _json(self, body: Any, headers: dict[str, str] | None = None, status: int = 200) -> None:
        self._send(
            status, json.dumps(body, ensure_ascii=False), "application/json; charset=utf-8", headers
        )

    def _send(
        self, status: int, text: str, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class SourcesServer(ThreadingHTTPServer):
    """One HTTP server answering as Reddit (/reddit), HN Algolia (/hn) and Mastodon (/mastodon)."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.store = PostStore()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def base_urls(self) -> dict[str, str]:
        return {
            "reddit": f"{self.url}/reddit",
            "hackernews": f"{self.url}/hn",
            "mastodon": f"{self.url}/mastodon",
        }

    def publish(self, posts: Iterable[Post]) -> None:
        by_source: dict[str, list[Post]] = {}
        for post in posts:
            by_source.setdefault(assign_source(post), []).append(post)
        for source, items in by_source.items():
            self.store.add(source, items)

    def start(self) -> SourcesServer:
        self._thread = threading.Thread(
            target=self.serve_forever, name="sandbox-sources", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> SourcesServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
