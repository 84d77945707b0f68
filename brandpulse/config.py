"""The one configuration schema of BrandPulse, read from `config.yaml`.

Everything a stage needs to know comes from a section of `Config`; no stage reads
the YAML itself. Loading validates the whole file before anything runs and reports
every error at once, each with its field path, the bad value and what was expected.
Secrets are never in the file: `${NAME}` (or `${NAME:-default}`) is replaced by the
environment variable, and a missing variable is an error that names it.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import ipaddress
import os
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from brandpulse.alert_settings import (
    HISTORY_ANCHOR,
    RULE_NAMES,
    HighReachSettings,
    RulesSettings,
    Severity,
    SpikeSettings,
)
from brandpulse.secrets import mask_url, redact
from brandpulse.timeutil import local_to_utc, zone
from brandpulse.units import Duration, min_duration, parse_duration

# ---------------------------------------------------------------------------
# Small value types
# ---------------------------------------------------------------------------


def _blank_is_none(value: Any) -> Any:
    # `${TOKEN:-}` expands to "" when the variable is unset: that means "not configured".
    if isinstance(value, str) and not value.strip():
        return None
    return value


OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_blank_is_none)]

# A duration that must be strictly positive, and one that may be zero but not negative.
PositiveDuration = Annotated[Duration, min_duration(timedelta(seconds=1))]
NonNegativeDuration = Annotated[Duration, min_duration(timedelta(0))]

Problems = list[tuple[tuple[str | int, ...], str]]


def _given(value: Any) -> bool:
    """Whether a raw (not yet validated) value counts as set: blank text and an empty
    secret mean "not configured", like `_blank_is_none`."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value is not None and not (isinstance(value, str) and not value.strip())


def _url(value: str, schemes: tuple[str, ...], what: str) -> str:
    """`value` if it is an absolute URL with one of `schemes` and a host; the error
    shows the URL with its credentials masked."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme.lower() not in schemes or not host:
        expected = " or ".join(f"{s}://" for s in schemes)
        raise PydanticCustomError(
            "bad_url",
            "{what} must be an absolute {expected} URL with a host, got {shown}",
            {"what": what, "expected": expected, "shown": repr(mask_url(value))},
        )
    return value.strip()


def _loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _clear_text_hosts(hosts: Any) -> list[str]:
    """The http:// (not https) URLs among `hosts` whose host is not this machine."""
    from urllib.parse import urlsplit

    out: list[str] = []
    for host in hosts if isinstance(hosts, list | tuple) else [hosts]:
        if not isinstance(host, str):
            continue
        try:
            parts = urlsplit(host.strip())
            if parts.scheme.lower() == "http" and parts.hostname and not _loopback(parts.hostname):
                out.append(mask_url(host.strip()))
        except ValueError:
            continue
    return out


def _has_userinfo(urls: Any) -> bool:
    return any(isinstance(u, str) and "@" in u.split("//", 1)[-1].split("/", 1)[0]
               for u in (urls if isinstance(urls, list | tuple) else [urls]))  # fmt: skip


def _fingerprint(value: str | None) -> str | None:
    if value is None:
        return None
    digits = value.replace(":", "").strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digits):
        raise ValueError(
            "expected the SHA-256 fingerprint of the server certificate: 64 hex digits, "
            "colons allowed (openssl x509 -noout -fingerprint -sha256 -in cert.pem)"
        )
    return value.strip()


def cloud_endpoints(cloud_id: str) -> tuple[str, str | None]:
    """The Elasticsearch and Kibana https URLs an Elastic Cloud id stands for.

    A cloud id is `name:base64("host[:port]$es_uuid$kibana_uuid")`.
    """
    _, _, encoded = cloud_id.strip().rpartition(":")
    try:
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not an Elastic Cloud id (expected name:base64 from the Cloud console)") from None
    parts = decoded.split("$")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError("not an Elastic Cloud id (expected name:base64 from the Cloud console)")
    host, _, port = parts[0].partition(":")
    port = port or "443"
    es = f"https://{parts[1]}.{host}:{port}"
    kibana = f"https://{parts[2]}.{host}:{port}" if len(parts) > 2 and parts[2] else None
    return es, kibana


def _absolute(path: Path) -> Path:
    """A relative path taken against the current directory, once, at load time: the
    daemon, its crawl children and every later `chdir` then agree on one place."""
    path = path.expanduser()
    return path if path.is_absolute() else Path.cwd() / path


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors (they are usually typos).

    Checks that span several fields of a section live in `section_problems`, which
    reads the raw input: they run even when a field of the section is invalid, so
    one `validate` run reports them together with the field errors.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def section_problems(cls, data: dict[str, Any]) -> Problems:
        """(location inside the section, message) for every cross-field problem.

        `data` is the raw input: any field may be missing or of the wrong type, so a
        check looks only at what it can read and leaves the rest to field validation.
        """
        return []

    @model_validator(mode="wrap")
    @classmethod
    def _whole_section(cls, data: Any, handler: Any) -> Any:
        problems = cls.section_problems(data) if isinstance(data, dict) else []
        if not problems:
            return handler(data)
        errors: list[Any] = []
        try:
            handler(data)
        except ValidationError as exc:
            # re-raised as custom errors of the same type and text: pydantic cannot
            # rebuild its own error types (or ours from a nested section) from errors()
            errors = [
                {"type": PydanticCustomError(e["type"], e["msg"]), "loc": e["loc"], "input": e["input"]}
                for e in exc.errors(include_url=False)
            ]
        errors += [
            # input None: a section's raw data may hold secrets and is never echoed
            {"type": PydanticCustomError("section", "{problem}", {"problem": msg}),
             "loc": loc, "input": None}
            for loc, msg in problems
        ]  # fmt: skip
        raise ValidationError.from_exception_data(cls.__name__, errors)


# ---------------------------------------------------------------------------
# Brands
# ---------------------------------------------------------------------------


class BrandConfig(Strict):
    name: str = Field(min_length=1, description="display name, also the value stored on mentions")
    query: str | None = Field(
        default=None,
        description="brand query: quoted phrases, AND/OR/NOT, (), NEAR/n, site:, author:, lang:",
    )
    aliases: list[str] = Field(
        default_factory=list, description="other names; OR-ed with the name when no query is given"
    )
    own: bool = Field(default=True, description="our brand (true) or a competitor (false)")
    spike: SpikeSettings | None = Field(
        default=None, description="per-brand overrides of alerts.spike"
    )
    high_reach: HighReachSettings | None = None

    def effective_query(self) -> str:
        """The query text that selects this brand's mentions."""
        if self.query:
            return self.query
        terms = [self.name, *self.aliases]
        return " OR ".join('"' + t.replace('"', "") + '"' for t in terms)

    @classmethod
    def section_problems(cls, data: dict[str, Any]) -> Problems:
        # The query is compiled here so that a typo fails at start with its position,
        # not hours later inside a crawl.
        from brandpulse.query import QuerySyntaxError, compile_query

        query, name, aliases = data.get("query"), data.get("name"), data.get("aliases") or []
        if not query:
            if not isinstance(name, str) or not name or not isinstance(aliases, list):
                return []  # field validation reports what is wrong
            query = " OR ".join('"' + str(t).replace('"', "") + '"' for t in [name, *aliases])
        if not isinstance(query, str):
            return []
        try:
            compile_query(query)
        except QuerySyntaxError as exc:
            return [(("query",) if data.get("query") else (), f"brand query does not parse: {exc}")]
        return []


# ---------------------------------------------------------------------------
# Sources: one options model per source type, chosen by `type`
# ---------------------------------------------------------------------------


class Schedule(Strict):
    every: PositiveDuration = Field(default=timedelta(minutes=5), description="interval between crawls")
    jitter: NonNegativeDuration = Field(default=timedelta(seconds=30), description="random delay per run")


def _http_url(value: str | None, *, relative_ok: bool = False) -> str | None:
    """A crawl URL: http(s) only, so a config can never make a crawler read a file."""
    if value is None:
        return value
    from urllib.parse import urlsplit

    scheme = urlsplit(value.strip()).scheme.lower()
    if scheme in ("http", "https") or (relative_ok and not scheme):
        return value
    raise ValueError(
        f"{value!r} is not an http(s) URL: crawlers fetch http:// and https:// only"
        + (" (or a path relative to base_url)" if relative_ok else "")
    )


class CrawlConfig(Strict):
    """Where crawlers may connect (the egress policy; docs/crawlers.md) and how crawls start."""

    allow_private_addresses: bool = Field(
        default=False,
        description="let crawls connect to loopback, private, link-local and CGNAT addresses "
        "(the local sandbox, an intranet forum); metadata endpoints stay refused",
    )
    allowed_private_endpoints: list[str] = Field(
        default_factory=list,
        description="single non-public endpoints crawls may reach: IP:port, [IPv6]:port, IP "
        "or a CIDR network",
    )

    child_start: Literal["fork", "spawn"] = Field(
        default="fork" if sys.platform.startswith("linux") else "spawn",
        description="how each crawl's child process starts: `fork` from a server that "
        "imported Scrapy and the crawlers once (started by the first crawl of a process "
        "that crawls; crawlers/forkserver.py), or `spawn` a new interpreter per crawl (~2.3 "
        "CPU-s of fixed cost per crawl instead of ~0.17: bench/crawl_startup.py). Default `fork` on Linux, `spawn` elsewhere; a "
        "server that cannot start falls back to `spawn` with one warning",
    )

    @field_validator("allowed_private_endpoints")
    @classmethod
    def _endpoints(cls, value: list[str]) -> list[str]:
        if not value:
            return value
        from brandpulse.endpoints import parse_endpoint  # the egress policy's own parser

        for entry in value:
            parse_endpoint(entry)
        return value


class SourceBase(Strict):
    name: str = Field(
        min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="unique name of this source"
    )
    enabled: bool = True
    schedule: Schedule = Field(default_factory=Schedule)
    brands: list[str] | None = Field(
        default=None, description="names of brands to search here; default all brands"
    )
    base_url: str | None = Field(
        default=None, description="override the API's address (a mirror, a proxy or a test server)"
    )
    max_pages: int = Field(default=5, ge=1, le=1000, description="pages per crawl per query")
    concurrency: int = Field(default=2, ge=1, le=32, description="parallel requests to this source")
    requests_per_minute: float | None = Field(
        default=None, gt=0, description="upper bound on request rate; None = the source's default"
    )
    timeout: PositiveDuration = Field(default=timedelta(seconds=30))
    lookback: PositiveDuration = Field(
        default=timedelta(days=1), description="how far back the first crawl (no cursor yet) goes"
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="other hosts this source may follow links and redirects to "
        "('*.example.com' for subdomains, '*' for any); credentials are never sent there",
    )

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str | None) -> str | None:
        return _http_url(value)


class RedditSource(SourceBase):
    type: Literal["reddit"]
    subreddits: list[str] = Field(default_factory=list, description="restrict to these subreddits")
    client_id: OptionalSecret = None
    client_secret: OptionalSecret = None
    user_agent: str = "brandpulse/0.1 (brand monitoring)"


class HackerNewsSource(SourceBase):
    type: Literal["hackernews"]
    tags: list[Literal["story", "comment"]] = Field(default_factory=lambda: ["story", "comment"])


class StackExchangeSource(SourceBase):
    type: Literal["stackexchange"]
    site: str = "stackoverflow"
    key: OptionalSecret = None


class DiscourseSource(SourceBase):
    type: Literal["discourse"]
    forum_url: str = Field(description="root URL of the Discourse forum")

    @field_validator("forum_url")
    @classmethod
    def _http(cls, value: str) -> str:
        return _http_url(value) or value


class MastodonSource(SourceBase):
    type: Literal["mastodon"]
    instance_url: str = Field(description="e.g. https://mastodon.social")
    tags: list[str] = Field(default_factory=list, description="hashtags to follow, without '#'")
    access_token: OptionalSecret = Field(
        default=None, description="enables full-text search; tag timelines need none"
    )

    @field_validator("instance_url")
    @classmethod
    def _http(cls, value: str) -> str:
        return _http_url(value) or value


class RssSource(SourceBase):
    type: Literal["rss"]
    feeds: list[str] = Field(
        default_factory=list, description="feed URLs; {query} is replaced by the brand's query"
    )

    @field_validator("feeds")
    @classmethod
    def _http(cls, value: list[str]) -> list[str]:
        for feed in value:
            _http_url(feed, relative_ok=True)
        return value


class YouTubeSource(SourceBase):
    type: Literal["youtube"]
    api_key: OptionalSecret = None
    video_ids: list[str] = Field(default_factory=list)
    channel_ids: list[str] = Field(default_factory=list)


class BlueskySource(SourceBase):
    type: Literal["bluesky"]
    handle: str | None = None
    app_password: OptionalSecret = None


class XSource(SourceBase):
    type: Literal["x"]
    bearer_token: OptionalSecret = None


class BilibiliSource(SourceBase):
    type: Literal["bilibili"]
    sessdata: OptionalSecret = Field(
        default=None,
        description="optional SESSDATA login cookie of a bilibili.com account; sent only to "
        "the source's own origins. Without it the search is often refused (-412)",
    )
    user_agent: str = Field(
        default="Mozilla/5.0 (compatible; brandpulse/0.1; brand monitoring)",
        min_length=1,
        description="User-Agent sent to Bilibili",
    )
    comments: bool = Field(
        default=True, description="also read the comments of each new video that names a brand"
    )
    uploader_reach: bool = Field(
        default=True,
        description="look up each new uploader's follower count (one request per uploader per crawl)",
    )
    delay_jitter: float = Field(
        default=0.5,
        ge=0,
        le=5,
        description="extra random pause per request, as a fraction of the pace "
        "(60 / requests_per_minute), drawn from 0.5x-1.5x of it",
    )


class WeiboSource(SourceBase):
    type: Literal["weibo"]
    concurrency: int = Field(
        default=1, ge=1, le=32, description="parallel requests to this source (Weibo: one at a time)"
    )
    cookie: OptionalSecret = Field(
        default=None,
        description="the Cookie header of a logged-in m.weibo.cn session (SUB=...); sent only "
        "to Weibo's own origin. Without it Weibo often answers searches with a login wall",
    )
    search_type: Literal["realtime", "all"] = Field(
        default="realtime",
        description="'realtime' (实时, newest first: incremental) or 'all' (综合, ranked: "
        "every page up to max_pages is read)",
    )
    user_agent: str = Field(
        default="Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1 brandpulse/0.1",
        min_length=1,
        description="User-Agent sent to Weibo (m.weibo.cn serves its JSON to mobile browsers)",
    )
    download_delay: PositiveDuration = Field(
        default=timedelta(seconds=10),
        description="pause between requests, randomised to 0.5-1.5x (Scrapy's "
        "DOWNLOAD_DELAY_JITTER); on top of requests_per_minute",
    )
    api: Literal["mobile", "open_platform"] = Field(
        default="mobile",
        description="'mobile': the m.weibo.cn JSON with an optional cookie; 'open_platform': "
        "api.weibo.com/2 (search/topics, comments/show) with access_token (docs/crawlers.md)",
    )
    access_token: OptionalSecret = Field(
        default=None,
        description="an Open Platform OAuth2 access token (api: open_platform); sent as an "
        "Authorization header to api.weibo.com only, never in a URL or a log",
    )
    comments: bool = Field(
        default=True,
        description="also read the comments of each post that names a brand (kept when a "
        "comment names a brand itself)",
    )
    comments_window: PositiveDuration = Field(
        default=timedelta(days=3),
        description="how long after a matched post its comments are read again on each crawl "
        "(new ones only)",
    )
    comments_max_posts: int = Field(
        default=20,
        ge=1,
        le=500,
        description="read the comments of at most this many watched posts per crawl (the newest "
        "posts first; every comment page is a request at the source's slow pace)",
    )

    @model_validator(mode="after")
    def _token_with_open_platform(self) -> WeiboSource:
        if self.access_token is not None and self.api != "open_platform":
            raise ValueError("access_token is only used with api: open_platform")
        return self


class ZhihuSource(SourceBase):
    type: Literal["zhihu"]
    concurrency: int = Field(
        default=1, ge=1, le=32, description="parallel requests to this source (Zhihu: one at a time)"
    )
    cookie: OptionalSecret = Field(
        default=None,
        description="the Cookie header of a logged-in www.zhihu.com session (z_c0=...; required: "
        "Zhihu's API answers 401 without a login); sent only to Zhihu's own origin",
    )
    user_agent: str = Field(
        default="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0 Safari/537.36 brandpulse/0.1",
        min_length=1,
        description="User-Agent sent to Zhihu",
    )
    comments: bool = Field(
        default=True,
        description="also read the root comments of each new answer that names a brand (kept "
        "when a comment names a brand itself)",
    )
    download_delay: PositiveDuration = Field(
        default=timedelta(seconds=10),
        description="pause between requests, randomised to 0.5-1.5x; on top of requests_per_minute",
    )
    questions: list[str] = Field(
        default_factory=list,
        description="questions whose answers are also read (ids or https://www.zhihu.com/question/<id> "
        "URLs), besides the keyword search: a brand's 如何评价 question names it in the title, "
        "not always in its answers",
    )

    @field_validator("questions")
    @classmethod
    def _question_ids(cls, value: list[str]) -> list[str]:
        ids = []
        for item in value:
            match = re.fullmatch(r"(?:https?://(?:www\.)?zhihu\.com/question/)?(\d+)/?", item.strip())
            if not match:
                raise ValueError(
                    f"{item!r} is not a Zhihu question id or https://www.zhihu.com/question/<id> URL"
                )
            ids.append(match.group(1))
        return list(dict.fromkeys(ids))


class HtmlSelectors(Strict):
    post: str | None = Field(
        default=None, description="CSS selector of one post on a list/search page (or the preset's)"
    )
    text: str | None = Field(
        default=None, description="CSS selector, inside a post, of its text (or the preset's)"
    )
    id: str | None = Field(default=None, description="CSS selector/attr of the post's id")
    url: str | None = None
    title: str | None = None
    author: str | None = None
    time: str | None = None
    next_page: str | None = None


class HtmlForumSource(SourceBase):
    type: Literal["html_forum"]
    start_urls: list[str] = Field(min_length=1, description="list or search pages; {query} allowed")
    preset: Literal["discuz_x3", "tieba", "phpbb"] | None = Field(
        default=None,
        description="selectors and board-time reading for Discuz! X3.x, Baidu Tieba or phpBB 3.x "
        "pages (docs/crawlers.md); explicit selectors override single fields",
    )
    selectors: HtmlSelectors = Field(default_factory=HtmlSelectors)
    time_format: str | None = Field(default=None, description="strptime format; default: ISO 8601")
    timezone: str | None = Field(
        default=None,
        description="IANA zone of times the board shows without one (e.g. Asia/Shanghai); "
        "default UTC, Asia/Shanghai for the discuz_x3 and tieba presets",
    )
    language: str | None = None

    @model_validator(mode="after")
    def _selectors_or_preset(self) -> HtmlForumSource:
        if self.preset is None:
            missing = [f"selectors.{k}" for k in ("post", "text") if not getattr(self.selectors, k)]
            if missing:
                raise ValueError(f"{' and '.join(missing)} required (or set a preset)")
        return self

    @field_validator("start_urls")
    @classmethod
    def _http(cls, value: list[str]) -> list[str]:
        for url in value:
            _http_url(url)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)  # ValueError naming the zone
        return value


class ExportDropSource(SourceBase):
    """Exports (CSV / JSON Lines) dropped in a folder, e.g. Xiaohongshu or Douyin data
    from a licensed vendor; columns in docs/crawlers.md ("Export folder")."""

    type: Literal["export_drop"]
    path: str = Field(min_length=1, description="folder the export files are dropped in")
    patterns: list[str] = Field(
        default_factory=lambda: ["*.csv", "*.jsonl"], min_length=1,
        description="file name patterns read (glob); others are ignored",
    )  # fmt: skip
    settle: NonNegativeDuration = Field(
        default=timedelta(minutes=1),
        description="a file is read once unchanged this long (files still being written wait)",
    )
    encoding: str | None = Field(
        default=None,
        description="the files' encoding; default: UTF-8 (with or without BOM), else GB18030",
    )
    platform: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_-]+$",
        description="Mention.source of rows without a platform column (default 'export')",
    )
    language: str | None = None

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str | None) -> str | None:
        if value is not None:
            import codecs

            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(f"unknown encoding {value!r}") from None
        return value


SourceConfig = Annotated[
    RedditSource
    | HackerNewsSource
    | StackExchangeSource
    | DiscourseSource
    | MastodonSource
    | RssSource
    | YouTubeSource
    | BlueskySource
    | XSource
    | HtmlForumSource
    | BilibiliSource
    | ExportDropSource
    | WeiboSource
    | ZhihuSource,
    Field(discriminator="type"),
]


# ---------------------------------------------------------------------------
# The other stages
# ---------------------------------------------------------------------------


class NlpConfig(Strict):
    model: str = Field(
        default="default",
        description="'default' (the offline model built by `make model`), a local path, "
        "or a Hugging Face sequence-classification checkpoint name",
    )
    labels: dict[str, Literal["negative", "neutral", "positive"]] | None = Field(
        default=None,
        description="map the checkpoint's labels (e.g. LABEL_0) to negative/neutral/positive",
    )
    batch_size: int = Field(default=32, ge=1, le=1024)
    max_length: int = Field(default=256, ge=16, le=4096, description="tokens per chunk")
    max_tokens_per_mention: int | None = Field(
        default=512, ge=16, le=1_000_000,
        description="cap on the tokens scored per text (a post, a brand's clauses): longer "
        "texts are scored on their first and last half of this many tokens; null = no cap",
    )
    uncertain_below: float | None = Field(
        default=0.55, ge=0.0, le=1.0,
        description="a calibrated confidence under this marks a result uncertain: it keeps "
        "its label but is counted apart from negative/neutral/positive; null = never. "
        "Under 0.55 the default model's labels are right less than half the time",
    )
    threads: int | None = Field(default=None, ge=1,
                                description="inference threads; default: the cores this process may use")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    runtime: Literal["auto", "onnx", "torch"] = Field(
        default="auto",
        description="'onnx' scores a checkpoint's ONNX export on CPU without torch (about "
        "0.25 GB instead of 1.5 GB); 'torch' runs any checkpoint, on GPU too; 'auto' picks "
        "onnx when the checkpoint has a current export and no GPU is wanted",
    )

    @classmethod
    def section_problems(cls, data: dict[str, Any]) -> Problems:
        if data.get("runtime") == "onnx" and data.get("device") == "cuda":
            return [((), "runtime 'onnx' runs on the CPU; use runtime 'torch' with device 'cuda'")]
        return []


class TlsSettings(Strict):
    """How to trust a server's certificate and when clear text is acceptable (shared by
    the `elasticsearch` and `kibana` sections)."""

    verify_certs: bool = Field(
        default=True, description="check the server certificate; false is for experiments only"
    )
    ca_certs: Path | None = Field(
        default=None,
        description="PEM file of the CA that signed the server certificate (e.g. the "
        "http_ca.crt a new Elasticsearch 9 prints)",
    )
    ssl_assert_fingerprint: str | None = Field(
        default=None,
        description="SHA-256 fingerprint of the server certificate; trusts exactly that "
        "certificate instead of a CA",
    )
    allow_insecure_http: bool = Field(
        default=False,
        description="allow credentials over plain http to a host other than this machine "
        "(only on a network you trust)",
    )

    @field_validator("ssl_assert_fingerprint")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        return _fingerprint(value)

    @field_validator("ca_certs")
    @classmethod
    def _ca_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        path = _absolute(value)
        if not path.is_file():
            raise ValueError(f"CA certificate file {str(path)!r} does not exist")
        return path

    def tls_warnings(self, section: str) -> list[str]:
        if not self.verify_certs and self.ssl_assert_fingerprint is None:
            return [
                f"{section}.verify_certs is false: any server can pose as this one and read "
                f"the credentials; set {section}.ca_certs or {section}.ssl_assert_fingerprint "
                "instead"
            ]
        return []

    @staticmethod
    def clear_text_problems(section: str, urls: Any, data: dict[str, Any], secrets: tuple[str, ...]) -> Problems:
        """Credentials over http to another machine are refused unless allowed."""
        if data.get("allow_insecure_http") is True:
            return []
        if not (any(_given(data.get(k)) for k in secrets) or _has_userinfo(urls)):
            return []
        clear = _clear_text_hosts(urls)
        if not clear:
            return []
        return [((), f"credentials would be sent in clear text over http to {', '.join(clear)}; "
                     f"use https, or set {section}.allow_insecure_http: true on a network you trust")]  # fmt: skip


# One mention index per UTC month or day of created_at (`store.setup.index_for`).
IndexPeriod = Literal["month", "day"]

_KEEP_MONTHS = re.compile(r"^\s*(\d+)\s*(?:months?|mo)\s*$", re.IGNORECASE)


class RetentionConfig(Strict):
    """How long mention indices are kept (`store.retention`); the section is off
    unless given. An index is removed only when its whole period (month or day, read
    from its name) ended before now minus `keep`."""

    keep: str = Field(
        description="how long mentions are kept: calendar months ('13 months', '13mo') or "
        "a duration of at least one day ('400d', '8w')",
    )
    action: Literal["delete", "close"] = Field(
        default="delete",
        description="delete the old indices, or close them (kept on disk, out of the alias, "
        "no heap; reopen with POST <index>/_open)",
    )

    @field_validator("keep")
    @classmethod
    def _keep(cls, value: str) -> str:
        match = _KEEP_MONTHS.match(value)
        if match:
            if int(match.group(1)) < 1:
                raise PydanticCustomError("keep", "must be at least 1 month")
            return f"{int(match.group(1))} months"
        try:
            delta = parse_duration(value)
        except ValueError:
            raise PydanticCustomError(
                "keep", "expected calendar months ('13 months') or a duration ('400d')"
            ) from None
        if delta < timedelta(days=1):
            raise PydanticCustomError("keep", "must be at least 1 day (1d)")
        return value.strip()

    def shortest(self) -> timedelta:
        """The least time `keep` spans whatever `now` is: a calendar month counts as
        28 days, a duration as itself (`Config` checks `alerts.history` against it)."""
        match = _KEEP_MONTHS.match(self.keep)
        return timedelta(days=28 * int(match.group(1))) if match else parse_duration(self.keep)

    def cutoff(self, now: datetime) -> datetime:
        """`now` minus `keep`: months are calendar months (the day clamped to the
        target month's last), anything else an exact duration."""
        match = _KEEP_MONTHS.match(self.keep)
        if match is None:
            return now - parse_duration(self.keep)
        months = now.year * 12 + now.month - 1 - int(match.group(1))
        year, month = divmod(months, 12)
        last = calendar.monthrange(year, month + 1)[1]
        return now.replace(year=year, month=month + 1, day=min(now.day, last))


class ElasticsearchConfig(TlsSettings):
    hosts: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:9200"], min_length=1,
        description="http(s) URLs of the cluster's nodes",
    )  # fmt: skip
    cloud_id: str | None = Field(
        default=None, description="Elastic Cloud deployment id, instead of hosts"
    )
    username: str | None = None
    password: OptionalSecret = None
    api_key: OptionalSecret = Field(default=None, description="an API key (the encoded form), instead of username/password")
    index_prefix: str = Field(default="brandpulse", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    request_timeout: PositiveDuration = Field(default=timedelta(seconds=30))
    bulk_size: int = Field(default=500, ge=1, le=10000, description="documents per bulk request")
    bulk_concurrency: int = Field(
        default=2, ge=1, le=16,
        description="bulk requests the writer keeps in flight at once (1: one at a time); "
        "the first of a write, and any after a 429/5xx or connection problem, go alone",
    )  # fmt: skip
    bulk_retries: int = Field(
        default=5, ge=0, le=20,
        description="retries of a bulk request Elasticsearch refused (429/5xx) or left "
        "unanswered, with backoff (0.5 s doubling to 30 s), before the rest of the write "
        "waits in the spool; a node that hangs costs one write at most (1 + bulk_retries) "
        "x request_timeout plus the backoffs (docs/elasticsearch.md, A node that hangs)",
    )  # fmt: skip
    spool_dir: Path = Field(
        default=Path("var/spool"), validate_default=True,
        description="mentions wait here while Elasticsearch is down; relative to the "
        "directory the command runs in",
    )  # fmt: skip
    index_period: IndexPeriod = Field(
        default="month",
        description="one mention index per calendar month (`<prefix>-mentions-YYYY.MM`) or "
        "per day (`-YYYY.MM.DD`) of created_at, UTC; switching on a live cluster leaves the "
        "old indices readable through the alias (docs/elasticsearch.md, Index design)",
    )
    retention: RetentionConfig | None = Field(
        default=None,
        description="delete or close mention indices older than this, and delete the hours "
        "older than it from the hourly counts index (`scheduler.py retention`, and once a day "
        "by the daemon); off when not given",
    )

    @field_validator("hosts")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        return [_url(h, ("http", "https"), "an Elasticsearch host") for h in value]

    @field_validator("cloud_id")
    @classmethod
    def _cloud_id(cls, value: str | None) -> str | None:
        if value is not None:
            cloud_endpoints(value)
        return value

    @field_validator("spool_dir")
    @classmethod
    def _spool_absolute(cls, value: Path) -> Path:
        return _absolute(value)

    @classmethod
    def section_problems(cls, data: dict[str, Any]) -> Problems:
        problems: Problems = []
        if _given(data.get("cloud_id")) and "hosts" in data:
            problems.append(((), "set either cloud_id or hosts, not both"))
        if not _given(data.get("cloud_id")):
            hosts = data.get("hosts", ["http://127.0.0.1:9200"])
            problems += cls.clear_text_problems(
                "elasticsearch", hosts, data, ("username", "password", "api_key")
            )
        return problems


class SlackConfig(Strict):
    token: OptionalSecret = Field(default=None, description="bot token (xoxb-...)")
    channel: str | None = Field(default=None, description="channel id or name for the bot token")
    webhook_url: OptionalSecret = Field(
        default=None,
        description="incoming webhook instead (https://hooks.slack.com/...; plain http "
        "only to this machine)",
    )
    base_url: str | None = Field(
        default=None, description="Web API base URL override (for a proxy or a test server)"
    )
    kibana_url: str | None = Field(default=None, description="links in messages point here")
    app_token: OptionalSecret = Field(
        default=None,
        description="app-level token (xapp-..., scope connections:write) for Socket Mode: with "
        "it (and a bot token) alert messages get Acknowledge / Snooze / Not a real issue "
        "buttons and the daemon listens for clicks; no public URL needed (docs/slack.md)",
    )

    @field_validator("webhook_url")
    @classmethod
    def _https_webhook(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        from urllib.parse import urlsplit

        try:
            _url(value.get_secret_value(), ("http", "https"), "the webhook URL")
            parts = urlsplit(value.get_secret_value().strip())
            ok = parts.scheme.lower() == "https" or _loopback(parts.hostname or "")
        except (PydanticCustomError, ValueError):
            ok = False
        if not ok:
            # the URL is the credential: never shown, and never sent in clear (plain
            # http only to this machine: a local test server such as sandbox.slack)
            raise PydanticCustomError("bad_url", "must be an https:// URL with a host")
        return value

    @field_validator("base_url", "kibana_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else _url(value, ("http", "https"), "the URL")

    @classmethod
    def channel_configured(cls, data: dict[str, Any]) -> bool:
        """Whether the raw section sets the channel up (for `alerts.routes` checks)."""
        return _given(data.get("token")) or _given(data.get("webhook_url"))

    @classmethod
    def section_problems(cls, data: dict[str, Any]) -> Problems:
        problems: Problems = []
        if _given(data.get("token")) and not _given(data.get("channel")):
            problems.append(((), "slack.token is set but slack.channel is not: the bot needs a channel"))
        if _given(data.get("app_token")) and not _given(data.get("token")):
            problems.append((("app_token",), "the Slack buttons (app_token) need a bot token "
                             "(slack.token): a webhook cannot update its messages"))  # fmt: skip
        return problems


_ADDRESS = re.compile(r"[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+\.[^@\s<>\"(),;:]+|[^@\s<>\"(),;:]+@localhost")


def _mail_address(value: str, what: str) -> str:
    """A bare address (`alerts@example.com`) or a named one (`BrandPulse <alerts@...>`);
    anything that could smuggle a second header line or a second recipient is refused."""
    from email.utils import parseaddr

    text = value.strip()
    name, address = parseaddr(text)
    if any(c in text for c in "\r\n") or not _ADDRESS.fullmatch(address or "") or (
        not name and address != text
    ):
        raise PydanticCustomError(
            "bad_address",
            "{what} must be one e-mail address (name@example.com or Name <name@example.com>), "
            "got {value}",
            {"what": what, "value": repr(value)},
        )
    return text


class EmailConfig(Strict):
    """Alerts by e-mail over SMTP: STARTTLS on port 587 by default, or implicit TLS
    (SMTPS, port 465). Replies of a wave carry `In-Reply-To`/`References` to its first
    message, so mail clients show one thread per wave."""

    host: str | None = Field(default=None, description="SMTP server (setting it enables e-mail)")
    port: int | None = Field(
        default=None, ge=1, le=65535,
        description="default 587 with `starttls`, 465 with `ssl`, 25 with `none`",
    )  # fmt: skip
    tls: Literal["starttls", "ssl", "none"] = Field(
        default="starttls",
        description="`starttls`: upgrade a plain connection (required, never skipped); "
        "`ssl`: TLS from the first byte (SMTPS); `none`: only for a relay on this machine",
    )
    username: str | None = Field(default=None, description="SMTP AUTH user (with `password`)")
    password: OptionalSecret = Field(default=None, description="SMTP AUTH password")
    sender: str | None = Field(
        default=None, alias="from", description="From: address, e.g. `BrandPulse <alerts@example.com>`"
    )
    to: list[str] = Field(default_factory=list, description="recipients of every alert")
    ca_certs: Path | None = Field(
        default=None, description="PEM file of the CA that signed the server certificate"
    )
    timeout: PositiveDuration = Field(
        default=timedelta(seconds=30), description="per SMTP connection and command"
    )

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        value = _blank_is_none(value)
        if value is not None and (not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", value.strip())):
            raise ValueError("expected a host name or address, without scheme or port")
        return value.strip() if value else None

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        return None if value is None else _mail_address(value, "email.from")

    @field_validator("to")
    @classmethod
    def _to(cls, value: list[str]) -> list[str]:
        return [_mail_address(v, "each of email.to") for v in value]

    @field_validator("ca_certs")
    @classmethod
    def _ca_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        path = _absolute(value)
        if not path.is_file():
            raise ValueError(f"CA certificate file {str(path)!r} does not exist")
        return path

    @classmethod
    def channel_configured(cls, data: dict[str, Any]) -> bool:
        """Whether the raw section sets the channel up (for `alerts.routes` checks)."""
        return _given(data.get("host"))

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return {"starttls": 587, "ssl": 465, "none": 25}[self.tls]

    @classmethod
    def section_problems(cls, data: dict[str, Any]) -> Problems:
        problems: Problems = []
        host = data.get("host")
        if _given(host):
            if not _given(data.get("from")):
                problems.append(((), "email.host is set but email.from is not"))
            if not data.get("to"):
                problems.append(((), "email.host is set but email.to lists no recipient"))
        elif _given(data.get("from")) or data.get("to"):
            problems.append(((), "email.from/email.to are set but email.host is not"))
        user, password = _given(data.get("username")), _given(data.get("password"))
        if user != password:
            problems.append(((), "set email.username and email.password together (SMTP AUTH)"))
        if (user or password) and data.get("tls") == "none" and isinstance(host, str) and not _loopback(host.strip()):
            problems.append(((), f"email.tls is none: the password would cross the network to "
                                 f"{host.strip()} in clear text; use starttls or ssl"))  # fmt: skip
        return problems


class RouteConfig(Strict):
    """Where alerts go: an alert that matches every selector of a route (an empty
    selector matches all) is sent to each of its channels; see docs/routing.md."""

    channels: list[str] = Field(
        min_length=1,
        description="channel names (`slack`, `email`, `teams`, `feishu`, `dingtalk`, `wecom`, "
        "`webhook`, `log`): each must be configured",
    )
    brands: list[str] = Field(default_factory=list, description="only these brands (empty: all)")
    rules: list[str] = Field(
        default_factory=list, description=f"only alerts of these rules: {', '.join(RULE_NAMES)} (empty: all)"
    )
    severities: list[Severity] = Field(
        default_factory=list, description="only these severities (empty: all; see docs/routing.md)"
    )
    escalate_after: PositiveDuration | None = Field(
        default=None,
        description="send to `escalate_to` once if the alert is not acknowledged this long "
        "after it was raised (`scheduler.py alerts ack ALERT_ID`)",
    )
    escalate_to: list[str] = Field(default_factory=list, description="channels for the escalation")

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, value: list[str]) -> list[str]:
        unknown = [r for r in value if r not in RULE_NAMES]
        if unknown:
            raise ValueError(f"unknown rule(s) {unknown}; expected some of {list(RULE_NAMES)}")
        return value

    @classmethod
    def section_problems(cls, data: dict[str, Any]) -> Problems:
        has_after, has_to = data.get("escalate_after") is not None, bool(data.get("escalate_to"))
        if has_after != has_to:
            return [((), "set escalate_after and escalate_to together")]
        return []


def _secret_url(value: SecretStr | None, *, query: str | None = None, path: str | None = None) -> SecretStr | None:
    """A webhook URL that is itself the credential: https (plain http only to this
    machine, for the local test servers of `sandbox.bots`), with a host, and with the
    `query` parameter or the `path` fragment its service puts the credential in. The
    error never shows the URL."""
    if value is None:
        return None
    from urllib.parse import parse_qs, urlsplit

    text = value.get_secret_value().strip()
    try:
        parts = urlsplit(text)
        ok = bool(parts.hostname) and (
            parts.scheme.lower() == "https"
            or (parts.scheme.lower() == "http" and _loopback(parts.hostname or ""))
        )
    except ValueError:
        ok = False
    if not ok:
        raise PydanticCustomError("bad_url", "must be an https:// URL with a host (the URL is not shown: it is a secret)")
    if query is not None and not (parse_qs(parts.query).get(query) or [""])[0].strip():
        raise PydanticCustomError("bad_url", "{what}", {"what": f"must carry the credential as ?{query}=... (the URL is not shown: it is a secret)"})
    if path is not None and path not in parts.path:
        raise PydanticCustomError("bad_url", "{what}", {"what": f"must be the bot's webhook URL (its path contains {path}; the URL is not shown: it is a secret)"})
    return SecretStr(text)


class UrlChannelConfig(Strict):
    """Base of the channels set up by one webhook URL that is itself the credential
    (Teams, WeCom, DingTalk, Feishu, the generic webhook), so that all five are
    checked, and named in `alerts.routes`, one way.

    Setting `url` enables the channel: `channel_configured` says so from the raw
    section (what `Config` needs to accept the channel's name in `alerts.routes`, and
    the same test as each notifier's `configured`: a blank `${VAR:-}` is unset). The
    URL must be https (plain http only to this machine) and, where the service puts
    the credential there, carry the query parameter `url_query` or the path fragment
    `url_path`; errors never show it.
    """

    url_query: ClassVar[str | None] = None
    url_path: ClassVar[str | None] = None

    url: OptionalSecret = Field(default=None, description="the channel's https:// webhook URL (a secret)")

    @field_validator("url")
    @classmethod
    def _https(cls, value: SecretStr | None) -> SecretStr | None:
        return _secret_url(value, query=cls.url_query, path=cls.url_path)

    @classmethod
    def channel_configured(cls, data: dict[str, Any]) -> bool:
        """Whether the raw section sets the channel up (for `alerts.routes` checks)."""
        return _given(data.get("url"))


class WebhookConfig(UrlChannelConfig):
    """A generic JSON webhook: BrandPulse POSTs each alert as a documented JSON body,
    signed with HMAC-SHA256 (docs/channels.md says how a receiver checks it)."""

    url: OptionalSecret = Field(
        default=None,
        description="the receiver's https:// URL (a secret: it may carry a token; plain http only to this machine)",
    )
    secret: OptionalSecret = Field(
        default=None,
        description="signing secret of the X-BrandPulse-Signature header (required with url)",
    )

    @classmethod
    def section_problems(cls, data: dict[str, Any]) -> Problems:
        if _given(data.get("url")) and not _given(data.get("secret")):
            return [((), "webhook.url is set but webhook.secret is not: without a signature "
                         "the receiver cannot tell BrandPulse's messages from anyone's")]  # fmt: skip
        return []


class TeamsConfig(UrlChannelConfig):
    """A Microsoft Teams channel's incoming webhook (or Power Automate workflow URL):
    alerts arrive as Adaptive Cards."""

    url: OptionalSecret = Field(
        default=None,
        description="the webhook URL (a secret; https://...webhook.office.com/webhookb2/... or a "
        "workflow URL; plain http only to this machine)",
    )


class WecomConfig(UrlChannelConfig):
    """A WeCom (企业微信) group bot: alerts arrive as Markdown messages."""

    url_query: ClassVar[str | None] = "key"

    url: OptionalSecret = Field(
        default=None,
        description="the bot's webhook URL, https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=... "
        "(a secret; plain http only to this machine)",
    )


class DingtalkConfig(UrlChannelConfig):
    """A DingTalk (钉钉) custom robot: alerts arrive as Markdown messages, signed with
    the robot's secret (its security setting "additional signature", 加签)."""

    url_query: ClassVar[str | None] = "access_token"

    url: OptionalSecret = Field(
        default=None,
        description="the robot's webhook URL, https://oapi.dingtalk.com/robot/send?access_token=... "
        "(a secret; plain http only to this machine)",
    )
    secret: OptionalSecret = Field(
        default=None, description="the robot's signing secret (SEC...); recommended"
    )
    keyword: str | None = Field(
        default=None,
        description="one of the robot's custom keywords, when its security setting uses them",
    )


class FeishuConfig(UrlChannelConfig):
    """A Feishu / Lark (飞书) custom bot: alerts arrive as interactive cards, signed
    with the bot's secret (its security setting "signature verification", 签名校验)."""

    url_path: ClassVar[str | None] = "/bot/v2/hook/"

    url: OptionalSecret = Field(
        default=None,
        description="the bot's webhook URL, https://open.feishu.cn/open-apis/bot/v2/hook/... "
        "(Lark: open.larksuite.com; a secret; plain http only to this machine)",
    )
    secret: OptionalSecret = Field(default=None, description="the bot's signing secret; recommended")


class MaintenanceWindow(Strict):
    """A planned quiet time: alerts of these brands and rules are not sent between
    `from` and `to` (written in `timezone` unless they carry an offset)."""

    brands: list[str] = Field(default_factory=list, description="only these brands (empty: all)")
    rules: list[str] = Field(
        default_factory=list, description=f"only these rules: {', '.join(RULE_NAMES)} (empty: all)"
    )
    start: datetime = Field(alias="from", description="start, e.g. 2026-12-01T22:00")
    end: datetime = Field(alias="to", description="end, exclusive")
    timezone: str = Field(default="UTC", description="IANA zone of `from`/`to` without an offset")

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, value: list[str]) -> list[str]:
        return RouteConfig._known_rules(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        if self.end_utc <= self.start_utc:
            raise ValueError("`to` must be after `from`")
        return self

    @property
    def start_utc(self) -> datetime:
        return local_to_utc(self.start, self.timezone)

    @property
    def end_utc(self) -> datetime:
        return local_to_utc(self.end, self.timezone)

    def covers(self, brand: str, rule: str, at: datetime) -> bool:
        """Whether an alert of `brand` and `rule` raised at `at` (aware) falls in it."""
        return (
            (not self.brands or brand in self.brands)
            and (not self.rules or rule in self.rules)
            and self.start_utc <= at < self.end_utc
        )


class AlertsConfig(Strict):
    enabled: bool = True
    check_every: PositiveDuration = Field(default=timedelta(minutes=1))
    query_delay: NonNegativeDuration = Field(
        default=timedelta(minutes=2),
        description="ignore the newest stretch of time: crawl and indexing lag behind",
    )
    history: Annotated[Duration, min_duration(timedelta(hours=1))] = Field(
        default=timedelta(days=21),
        description="how much past the detector learns from (at least 1h): the counts since "
        "this long before the check, rounded down to UTC midnight (so up to a day more); 21 "
        "days gives the spike detector its hour-of-week profile and a three-week record",
    )
    counts_source: Literal["rollup", "raw"] = Field(
        default="rollup",
        description="where the checks read counts from: `rollup`, the hourly counts index kept "
        "after every indexing batch (the newest hour still raw; see docs/alerting.md), or `raw`, "
        "aggregating the mentions over the whole history at every check; reports of a completed "
        "period follow it (docs/reports.md)",
    )
    keep_detectors: bool = Field(
        default=True,
        description="keep each spike rule's detector with its history between checks and feed it "
        "only the new intervals (about a fifth of the detector CPU), rebuilding it once a day "
        "when its history's start moves, or when the counts it fed, the stored state or the "
        "settings changed; the alerts are the same either way (docs/alerting.md, \"Detectors "
        "kept between checks\"); false rebuilds at every check, for the memory (about 130 kB "
        "per brand and spike rule with 21 days of 5-minute intervals)",
    )
    spike: SpikeSettings = Field(default_factory=SpikeSettings)
    high_reach: HighReachSettings = Field(default_factory=HighReachSettings)
    rules: RulesSettings = Field(
        default_factory=RulesSettings,
        description="the further rules (volume, positive and competitor spikes, share-of-voice "
        "shift, flatline), each off until `enabled: true`",
    )
    top_posts: int = Field(default=5, ge=1, le=20)
    routes: list[RouteConfig] = Field(
        default_factory=list,
        description="which channels get which alerts; none: every alert goes to the first "
        "configured channel (Slack, then e-mail); see docs/routing.md",
    )
    maintenance: list[MaintenanceWindow] = Field(
        default_factory=list,
        description="planned quiet times: alerts of the listed brands and rules are not sent "
        "during them (see docs/slack.md, snoozing)",
    )


class HealthConfig(Strict):
    """Operational notices to Slack: a source that keeps failing, Elasticsearch staying
    down. One message when the trouble passes its threshold and one when it ends; the
    thresholds keep a single failed crawl or a short blip from paging anyone."""

    enabled: bool = Field(
        default=True,
        description="post a notice when a source keeps failing or Elasticsearch stays down, "
        "and one when it recovers (independent of alerts.enabled)",
    )
    source_failures: int = Field(
        default=3, ge=1, description="a source is down after this many failed crawls in a row"
    )
    source_silence: PositiveDuration = Field(
        default=timedelta(hours=1),
        description="...or once it has been failing this long with no successful crawl",
    )
    elasticsearch_after: PositiveDuration = Field(
        default=timedelta(minutes=5),
        description="Elasticsearch is reported down once it has been unreachable this long",
    )


class KibanaConfig(TlsSettings):
    url: str | None = Field(default=None, description="Kibana base URL, for imports and links")
    cloud_id: str | None = Field(
        default=None, description="Elastic Cloud deployment id: the Kibana URL is taken from it"
    )
    username: str | None = None
    password: OptionalSecret = None
    api_key: OptionalSecret = Field(default=None, description="an API key (the encoded form), instead of username/password")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else _url(value, ("http", "https"), "the Kibana URL")

    @field_validator("cloud_id")
    @classmethod
    def _cloud_id(cls, value: str | None) -> str | None:
        if value is not None and cloud_endpoints(value)[1] is None:
            raise ValueError("this Elastic Cloud id names no Kibana")
        return value

    @property
    def base_url(self) -> str | None:
        """`url`, or the Kibana of `cloud_id`."""
        if self.url:
            return self.url
        return cloud_endpoints(self.cloud_id)[1] if self.cloud_id else None

    @classmethod
    def section_problems(cls, data: dict[str, Any]) -> Problems:
        return cls.clear_text_problems(
            "kibana", data.get("url"), data, ("username", "password", "api_key")
        )


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_FIELD = re.compile(rf"^(\*|({'|'.join(_DAYS)})(-({'|'.join(_DAYS)}))?)$")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class ReportSchedule(Strict):
    """When a report is made: a cron-like day-of-week and a wall-clock time in a named
    time zone. 09:00 Europe/London is 09:00 in London in winter and in summer (the
    daemon's CronTrigger runs in that zone), not a fixed UTC hour."""

    period: Literal["day", "week"] = Field(
        default="week",
        description="what it covers: the last full local day, or the 7 local days before "
        "the day it runs",
    )
    day_of_week: str | None = Field(
        default=None,
        description="cron day-of-week: mon..sun, a range (mon-fri), a list (mon,thu) or *; "
        "default mon for a week, * for a day",
    )
    time: str = Field(default="09:00", description="local time HH:MM (24-hour)")
    time_zone: str = Field(
        default="UTC", description="IANA time zone of day_of_week and time (Europe/London)"
    )

    @field_validator("day_of_week")
    @classmethod
    def _days(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if not value or not all(_DAY_FIELD.match(part) for part in value.split(",")):
            raise ValueError(
                f"{value!r} is not a day-of-week field (mon..sun, mon-fri, mon,thu or *)"
            )
        return value

    @field_validator("time")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        if not _TIME.match(value.strip()):
            raise ValueError(f"{value!r} is not a time HH:MM (00:00..23:59)")
        return value.strip()

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)  # ValueError naming the zone
        return value

    @property
    def days(self) -> str:
        """The day-of-week field with its default filled in."""
        return self.day_of_week or ("mon" if self.period == "week" else "*")

    @property
    def hour_minute(self) -> tuple[int, int]:
        hour, minute = self.time.split(":")
        return int(hour), int(minute)

    def describe(self) -> str:
        return f"{self.period} report, {self.days} at {self.time} {self.time_zone}"


class ReportsConfig(Strict):
    """Scheduled reports (`scheduler.py run`): files in `output_dir`, and to Slack."""

    schedules: list[ReportSchedule] = Field(
        default_factory=list, description="when reports are made; none: no scheduled report"
    )
    brands: list[str] = Field(
        default_factory=list, description="brands to report on; empty: every own brand"
    )
    language: Literal["en", "zh"] = Field(default="en", description="language of the report's labels")
    output_dir: Path = Field(
        default=Path("var/reports"), validate_default=True,
        description="where the HTML and PDF files are written; relative to the directory "
        "the command runs in",
    )  # fmt: skip
    slack: bool = Field(
        default=False,
        description="post a summary and the charts to slack.channel (needs slack.token)",
    )
    themes: bool = Field(default=True, description="include complaint themes")

    @field_validator("output_dir")
    @classmethod
    def _out_absolute(cls, value: Path) -> Path:
        return _absolute(value)


class DaemonConfig(Strict):
    state_dir: Path = Field(
        default=Path("var/state"), validate_default=True,
        description="crawl cursors and caches; relative to the directory the command runs in",
    )  # fmt: skip
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, Field(ge=0, le=65535)] | Literal["auto"] = Field(
        default=9464,
        description="health and metrics; 0=off; auto: a free port the system picks, logged "
        "(http.listening), e.g. for several daemons on one host",
    )
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_timeout: PositiveDuration = Field(default=timedelta(seconds=30))

    @field_validator("state_dir")
    @classmethod
    def _state_absolute(cls, value: Path) -> Path:
        return _absolute(value)

    @field_validator("http_port", mode="before")
    @classmethod
    def _port_or_auto(cls, value: Any) -> Any:
        # one message instead of one per branch of the union ("9464" as ever is 9464)
        port = int(value) if isinstance(value, str) and value.isdigit() else value
        if port == "auto" or (type(port) is int and 0 <= port <= 65535):
            return port
        raise ValueError("a port number 0-65535 (0: off) or 'auto'")


class RedisConfig(Strict):
    """Shared state in Redis: crawl leases, cursors and duplicate state (docs/deployment.md).

    Without this section everything stays in files under `daemon.state_dir`, as for
    one daemon. With it, several daemons (or the processes of `run --role`) share
    that state: a source is crawled by one of them at a time, under a lease that
    expires when its holder dies. The password comes from the environment
    (`password: ${REDIS_PASSWORD}`), never from the URL.
    """

    url: str = Field(
        description="redis:// (or rediss:// for TLS) URL with the database number, e.g. "
        "redis://127.0.0.1:6379/0; no credentials in it (use username/password)"
    )
    username: str | None = Field(default=None, description="ACL user (Redis 6+); default: `default`")
    password: OptionalSecret = None
    key_prefix: str = Field(
        default="brandpulse:", pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="prefix of every key BrandPulse writes, so one Redis can serve several "
        "deployments",
    )  # fmt: skip
    connect_timeout: PositiveDuration = Field(default=timedelta(seconds=5))
    socket_timeout: PositiveDuration = Field(
        default=timedelta(seconds=5), description="longest wait for one Redis command"
    )
    lease_ttl: PositiveDuration = Field(
        default=timedelta(seconds=60),
        description="a crawl lease lasts this long unless its holder renews it (every third "
        "of it while the crawl runs): a dead daemon's sources are free again after it",
    )
    leader_ttl: PositiveDuration = Field(
        default=timedelta(seconds=30),
        description="`run --role coordinator` and `--role alerter` (each role its own lock): "
        "the leader lock lasts this long unless the leader renews it (every third of it): a "
        "dead leader's successor takes over within it",
    )
    claim_idle: PositiveDuration = Field(
        default=timedelta(seconds=120),
        description="`run --role crawler` and `--role scorer`: a crawl job (a batch to "
        "score) its worker has not touched for this long (the worker died; a live one "
        "touches it every third of it) is taken over by another worker",
    )
    scoring: Literal["crawler", "scorer"] = Field(
        default="crawler",
        description="who scores what `run --role crawler` workers crawl: `crawler`, the worker "
        "itself, in-process (the default); `scorer`, `run --role scorer` workers: the crawler "
        "hands the unscored mentions to the Redis stream `<prefix>score-batches` and never "
        "loads the model. `--role all` always scores in-process",
    )
    allow_clear_text: bool = Field(
        default=False,
        description="allow the password over redis:// (no TLS) to a host other than this "
        "machine (only on a network you trust)",
    )

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        value = _url(value, ("redis", "rediss"), "the Redis URL")
        if _has_userinfo(value):
            raise PydanticCustomError(
                "bad_url",
                "the Redis URL must not carry credentials; set redis.username and "
                "redis.password: {example} instead",
                {"example": "${REDIS_PASSWORD}"},
            )
        return value

    @classmethod
    def section_problems(cls, data: dict[str, Any]) -> Problems:
        from urllib.parse import urlsplit

        url = data.get("url")
        if data.get("allow_clear_text") is True or not _given(data.get("password")):
            return []
        if not isinstance(url, str):
            return []
        try:
            parts = urlsplit(url.strip())
        except ValueError:
            return []
        if parts.scheme.lower() == "redis" and parts.hostname and not _loopback(parts.hostname):
            return [((), f"the password would be sent in clear text to {mask_url(url.strip())}; "
                         "use rediss://, or set redis.allow_clear_text: true on a network you trust")]  # fmt: skip
        return []


class Config(Strict):
    brands: list[BrandConfig] = Field(min_length=1, description="the brands to watch (ours and competitors)")
    sources: list[SourceConfig] = Field(
        default_factory=list, description="where mentions come from; `type` picks the options"
    )
    nlp: NlpConfig = Field(default_factory=NlpConfig, description="the sentiment model")
    elasticsearch: ElasticsearchConfig = Field(
        default_factory=ElasticsearchConfig, description="where mentions and alert state are kept"
    )
    slack: SlackConfig = Field(default_factory=SlackConfig, description="where alerts go")
    email: EmailConfig = Field(default_factory=EmailConfig, description="alerts by e-mail (SMTP)")
    webhook: WebhookConfig = Field(
        default_factory=WebhookConfig, description="alerts as signed JSON to any HTTP receiver"
    )
    teams: TeamsConfig = Field(
        default_factory=TeamsConfig, description="alerts as Adaptive Cards to a Microsoft Teams channel"
    )
    wecom: WecomConfig = Field(
        default_factory=WecomConfig, description="alerts as Markdown to a WeCom (企业微信) group bot"
    )
    dingtalk: DingtalkConfig = Field(
        default_factory=DingtalkConfig, description="alerts as Markdown to a DingTalk (钉钉) robot"
    )
    feishu: FeishuConfig = Field(
        default_factory=FeishuConfig, description="alerts as cards to a Feishu / Lark (飞书) bot"
    )
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="spike detection")
    health: HealthConfig = Field(
        default_factory=HealthConfig, description="notices of failing sources and Elasticsearch outages"
    )
    kibana: KibanaConfig = Field(default_factory=KibanaConfig, description="saved objects import")
    daemon: DaemonConfig = Field(
        default_factory=DaemonConfig, description="state, HTTP endpoint, logs, shutdown"
    )
    crawl: CrawlConfig = Field(
        default_factory=CrawlConfig, description="where crawlers may connect (egress policy)"
    )
    reports: ReportsConfig = Field(
        default_factory=ReportsConfig, description="scheduled HTML/PDF reports, and to Slack"
    )
    redis: RedisConfig | None = Field(
        default=None,
        description="shared state (crawl leases, cursors, duplicate state) for several "
        "daemons; none: files under daemon.state_dir",
    )

    @classmethod
    def section_problems(cls, data: dict[str, Any]) -> Problems:
        problems: Problems = []

        def names_of(key: str) -> list[str]:
            items = data.get(key)
            if not isinstance(items, list):
                return []
            return [x["name"] for x in items if isinstance(x, dict) and isinstance(x.get("name"), str)]

        names = names_of("brands")
        for dup in sorted({n for n in names if names.count(n) > 1}):
            problems.append((("brands",), f"brand name {dup!r} is used twice"))
        source_names = names_of("sources")
        for dup in sorted({n for n in source_names if source_names.count(n) > 1}):
            problems.append((("sources",), f"source name {dup!r} is used twice"))
        competitors = {
            x["name"] for x in data.get("brands") or [] if isinstance(x, dict) and x.get("own") is False
        } if isinstance(data.get("brands"), list) else set()  # fmt: skip
        alerts = data.get("alerts") if isinstance(data.get("alerts"), dict) else {}
        rules = alerts.get("rules") if isinstance(alerts.get("rules"), dict) else {}
        for rule in ("competitor_negative_spike", "sov_shift"):
            section = rules.get(rule) if isinstance(rules.get(rule), dict) else {}
            chosen = section.get("competitors")
            for name in chosen if isinstance(chosen, list) else []:
                if names and name not in competitors:
                    problems.append((("alerts", "rules", rule, "competitors"), f"{name!r} is not "
                                     f"a configured competitor (a brand with own: false; "
                                     f"configured: {sorted(competitors)})"))  # fmt: skip
        sources = data.get("sources") if isinstance(data.get("sources"), list) else []
        for i, source in enumerate(sources):
            wanted = source.get("brands") if isinstance(source, dict) else None
            for brand in wanted if isinstance(wanted, list) else []:
                if names and brand not in names:
                    problems.append((("sources", i, "brands"), f"{brand!r} is not a configured "
                                     f"brand (expected one of {list(dict.fromkeys(names))})"))  # fmt: skip
        reports = data.get("reports") if isinstance(data.get("reports"), dict) else {}
        wanted = reports.get("brands")
        for brand in wanted if isinstance(wanted, list) else []:
            if names and brand not in names:
                problems.append((("reports", "brands"), f"{brand!r} is not a configured brand "
                                 f"(expected one of {list(dict.fromkeys(names))})"))
        if reports.get("slack") is True:
            slack = data.get("slack") if isinstance(data.get("slack"), dict) else {}
            if not _given(slack.get("token")) or not _given(slack.get("channel")):
                problems.append((("reports", "slack"), "reports.slack needs slack.token and "
                                 "slack.channel: an incoming webhook cannot upload the charts"))
        problems += cls._route_problems(data, names)
        problems += cls._history_problems(data)
        alerts = data.get("alerts") if isinstance(data.get("alerts"), dict) else {}
        windows = alerts.get("maintenance") if isinstance(alerts.get("maintenance"), list) else []
        for i, window in enumerate(windows):
            wanted = window.get("brands") if isinstance(window, dict) else None
            for brand in wanted if isinstance(wanted, list) else []:
                if names and brand not in names:
                    problems.append((("alerts", "maintenance", i, "brands"), f"{brand!r} is not a "
                                     f"configured brand (expected one of {list(dict.fromkeys(names))})"))  # fmt: skip
        return problems

    @classmethod
    def _history_problems(cls, data: dict[str, Any]) -> Problems:
        """`alerts.history`, plus the day its start is rounded down by (`HISTORY_ANCHOR`),
        must fit inside `elasticsearch.retention.keep`: the detector would learn from hours
        retention has removed (raw indices and rollup hours alike), so a daemon that kept
        them in memory and one restarted after they went would judge the same brand on
        different baselines. Values that do not parse are left to their own section's
        error."""
        es = data.get("elasticsearch") if isinstance(data.get("elasticsearch"), dict) else {}
        retention = es.get("retention") if isinstance(es.get("retention"), dict) else {}
        alerts = data.get("alerts") if isinstance(data.get("alerts"), dict) else {}
        given = alerts.get("history")
        try:
            kept = RetentionConfig(keep=retention.get("keep")).shortest()
            history = parse_duration(given if given is not None
                                     else AlertsConfig.model_fields["history"].default)
        except (ValidationError, ValueError):
            return []
        if history + HISTORY_ANCHOR <= kept:
            return []
        shown = given if given is not None else f"{history / timedelta(days=1):g}d (the default)"
        return [(("alerts", "history"), f"{shown} plus the day its start is rounded down by is "
                 f"longer than elasticsearch.retention.keep ({retention['keep']}): the detector "
                 "would learn from hours retention deletes; shorten alerts.history or keep "
                 "mentions longer")]

    @classmethod
    def channel_sections(cls) -> dict[str, Any]:
        """The config sections that are alert channels (those with `channel_configured`),
        by channel name; `log` is a channel too and needs no section."""
        return {
            name: info.annotation
            for name, info in cls.model_fields.items()
            if hasattr(info.annotation, "channel_configured")
        }

    @classmethod
    def _route_problems(cls, data: dict[str, Any], brands: list[str]) -> Problems:
        alerts = data.get("alerts")
        routes = alerts.get("routes") if isinstance(alerts, dict) else None
        if not isinstance(routes, list):
            return []
        sections = cls.channel_sections()
        configured = [
            name for name, model in sections.items()
            if isinstance(data.get(name), dict) and model.channel_configured(data[name])
        ] + ["log"]  # fmt: skip
        known = [*sections, "log"]
        problems: Problems = []
        for i, route in enumerate(routes):
            if not isinstance(route, dict):
                continue
            for key in ("channels", "escalate_to"):
                names = route.get(key)
                for name in names if isinstance(names, list) else []:
                    if name in configured:
                        continue
                    why = (f"{name!r} is not configured (its `{name}:` section sets nothing up)"
                           if name in known else f"{name!r} is not a channel (known: {known})")  # fmt: skip
                    problems.append((("alerts", "routes", i, key), f"{why}; configured: {configured}"))
            wanted = route.get("brands")
            for brand in wanted if isinstance(wanted, list) else []:
                if brands and brand not in brands:
                    problems.append((("alerts", "routes", i, "brands"), f"{brand!r} is not a "
                                     f"configured brand (expected one of {list(dict.fromkeys(brands))})"))  # fmt: skip
        return problems

    def warnings(self) -> list[str]:
        """Settings that work but deserve a word at start (e.g. certificates unchecked)."""
        out = self.elasticsearch.tls_warnings("elasticsearch") + self.kibana.tls_warnings("kibana")
        for name, section in (("dingtalk", self.dingtalk), ("feishu", self.feishu)):
            if section.url is not None and section.secret is None:
                out.append(f"{name}.url is set without {name}.secret: the bot is not signed, so "
                           "anyone who learns the URL can post to the group (set its signing secret)")  # fmt: skip
        return out

    def brand(self, name: str) -> BrandConfig:
        for brand in self.brands:
            if brand.name == name:
                return brand
        raise KeyError(name)

    def spike_settings(self, brand: str, rule: SpikeSettings | None = None) -> SpikeSettings:
        """The brand's own spike settings merged over the global ones, and, for a spike
        rule of `alerts.rules`, that rule's fields merged over both (of its own type)."""
        override = self.brand(brand).spike
        if override is None and rule is None:
            return self.alerts.spike
        merged = self.alerts.spike.model_dump()
        if override is not None:
            merged |= override.model_dump(exclude_unset=True)
        if rule is None:
            return SpikeSettings.model_validate(merged)
        merged |= rule.model_dump(exclude_unset=True)
        return type(rule).model_validate(merged)

    def competitors(self, brand: str, chosen: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """The competitors an own brand is compared with: `chosen` (a rule's
        `competitors`), else every brand configured with `own: false`, in config
        order. A competitor has none (its rules about competitors do not run)."""
        if not self.brand(brand).own:
            return ()
        if chosen is not None:
            return tuple(chosen)
        return tuple(b.name for b in self.brands if not b.own)


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


class ConfigError(Exception):
    """The configuration cannot be used. `problems` lists every error found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"invalid configuration in {source} ({len(problems)} problem(s)):\n{lines}"
        )


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(node: Any, path: str, env: dict[str, str], problems: list[str]) -> Any:
    if isinstance(node, dict):
        return {
            k: _expand_env(v, f"{path}.{k}" if path else str(k), env, problems)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_expand_env(v, f"{path}.{i}", env, problems) for i, v in enumerate(node)]
    if isinstance(node, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(
                f"{path}: environment variable {name} is not set (referenced as ${{{name}}})"
            )
            return ""

        return _ENV_REF.sub(replace, node)
    return node


def _secret_values(data: Any, annotation: Any = None) -> set[str]:
    """Every value the raw document holds in a secret field (as text), found by walking
    the document along the schema: these never appear in an error message."""
    import types
    import typing

    annotation = Config if annotation is None else annotation
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _secret_values(data, args[0])
    if annotation is SecretStr:
        return _leaves(data)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _fields_secret_values(data, [annotation])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if SecretStr in members:
            return _leaves(data)
        models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        if models:
            return _fields_secret_values(data, models)
        return set().union(*(_secret_values(data, m) for m in members)) if members else set()
    if origin in (list, tuple) and isinstance(data, list) and args:
        return set().union(set(), *(_secret_values(item, args[0]) for item in data))
    if origin is dict and isinstance(data, dict) and len(args) == 2:
        return set().union(set(), *(_secret_values(v, args[1]) for v in data.values()))
    return set()


def _fields_secret_values(data: Any, models: list[type[BaseModel]]) -> set[str]:
    from typing import get_args

    if not isinstance(data, dict):
        return set()
    # a source's `type` picks its model; an unknown type is checked against all of them
    tagged = [m for m in models if "type" in m.model_fields
              and data.get("type") in get_args(m.model_fields["type"].annotation)]  # fmt: skip
    out: set[str] = set()
    for key, value in data.items():
        for model in tagged or models:
            info = model.model_fields.get(str(key))
            if info is not None:
                out |= _secret_values(value, info.annotation)
    return out


def _leaves(data: Any) -> set[str]:
    if isinstance(data, dict):
        return set().union(set(), *(_leaves(v) for v in data.values()))
    if isinstance(data, list):
        return set().union(set(), *(_leaves(v) for v in data))
    if isinstance(data, SecretStr):
        data = data.get_secret_value()
    return set() if data is None or isinstance(data, bool) else {str(data)}


def _describe(error: dict[str, Any], secrets: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    """One line per error: field path, what was expected and, unless it may be a
    secret, the bad value (URLs with their credentials masked)."""
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    value = error.get("input")
    if isinstance(value, dict):
        shown = "a mapping"
    elif isinstance(value, list):
        shown = "a list"
    elif value is not None and str(value) in secrets:
        shown = "a secret value, not shown"
    else:
        shown = repr(redact(value, secrets) if isinstance(value, str) else value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
    message = error["msg"]
    if error["type"] == "missing":
        line = f"{location}: required field is missing"
    elif error["type"] == "extra_forbidden":
        # a misspelt secret key (`tokn`, `api_kye`) holds a secret: never echo the value
        line = f"{location}: unknown field; check the spelling"
    elif error["type"] in ("union_tag_invalid", "section", "bad_url"):
        line = f"{location}: {message}"
    else:
        line = f"{location}: {message} (got {shown})"
    return redact(line, secrets)


def parse_config(
    data: Any, *, source: str = "<config>", env: dict[str, str] | None = None
) -> Config:
    """Validate an already-parsed YAML document; raise ConfigError listing every problem.

    No secret value appears in the problems: values of secret fields and of unknown
    keys are not echoed, and credentials in URLs are masked.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            source, [f"(top level): expected a mapping of sections, got {type(data).__name__}"]
        )
    problems: list[str] = []
    expanded = _expand_env(data, "", dict(os.environ) if env is None else env, problems)
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        secrets = _secret_values(expanded)
        problems.extend(_describe(e, secrets) for e in exc.errors(include_url=False))
        raise ConfigError(source, problems) from None
    if problems:
        raise ConfigError(source, problems)
    return config


def load_config(path: str | Path, *, env: dict[str, str] | None = None) -> Config:
    """Read and validate a config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), [f"file not found: {path}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [f"not UTF-8 text: {exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # PyYAML's message quotes the offending line, which may hold a secret someone
        # wrote into the file: name the position instead
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(str(path), [f"not valid YAML{where}: {problem}"]) from None
    return parse_config(data, source=str(path), env=env)
