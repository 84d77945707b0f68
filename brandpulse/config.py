"""The one configuration schema of BrandPulse, read from `config.yaml`.

Everything a stage needs to know comes from a section of `Config`; no stage reads
the YAML itself. Loading validates the whole file before anything runs and reports
every error at once, each with its field path, the bad value and what was expected.
Secrets are never in the file: `${NAME}` (or `${NAME:-default}`) is replaced by the
environment variable, and a missing variable is an error that names it.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

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

from alerts.settings import HighReachSettings, SpikeSettings
from brandpulse.units import Duration

# ---------------------------------------------------------------------------
# Small value types
# ---------------------------------------------------------------------------


def _blank_is_none(value: Any) -> Any:
    # `${TOKEN:-}` expands to "" when the variable is unset: that means "not configured".
    if isinstance(value, str) and not value.strip():
        return None
    return value


OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_blank_is_none)]


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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

    @model_validator(mode="after")
    def _query_parses(self) -> BrandConfig:
        # The query is compiled here so that a typo fails at start with its position,
        # not hours later inside a crawl.
        from brandpulse.query import QuerySyntaxError, compile_query

        try:
            compile_query(self.effective_query())
        except QuerySyntaxError as exc:
            raise ValueError(f"brand query does not parse: {exc}") from exc
        return self


# ---------------------------------------------------------------------------
# Sources: one options model per source type, chosen by `type`
# ---------------------------------------------------------------------------


class Schedule(Strict):
    every: Duration = Field(default=timedelta(minutes=5), description="interval between crawls")
    jitter: Duration = Field(default=timedelta(seconds=30), description="random delay per run")

    @field_validator("every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("must be at least 1s")
        return value


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
    """Where crawlers may connect (the egress policy; docs/crawlers.md)."""

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

    @field_validator("allowed_private_endpoints")
    @classmethod
    def _endpoints(cls, value: list[str]) -> list[str]:
        if not value:
            return value
        from crawlers.egress import parse_endpoint  # the policy's own parser

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
    timeout: Duration = Field(default=timedelta(seconds=30))
    lookback: Duration = Field(
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


class HtmlSelectors(Strict):
    post: str = Field(description="CSS selector of one post on a list/search page")
    text: str = Field(description="CSS selector, inside a post, of its text")
    id: str | None = Field(default=None, description="CSS selector/attr of the post's id")
    url: str | None = None
    title: str | None = None
    author: str | None = None
    time: str | None = None
    next_page: str | None = None


class HtmlForumSource(SourceBase):
    type: Literal["html_forum"]
    start_urls: list[str] = Field(min_length=1, description="list or search pages; {query} allowed")
    selectors: HtmlSelectors
    time_format: str | None = Field(default=None, description="strptime format; default: ISO 8601")
    timezone: str | None = Field(
        default=None,
        description="IANA zone of times the board shows without one (e.g. Asia/Shanghai); "
        "default UTC",
    )
    language: str | None = None

    @field_validator("start_urls")
    @classmethod
    def _http(cls, value: list[str]) -> list[str]:
        for url in value:
            _http_url(url)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (expected an IANA name such as Asia/Shanghai)") from None
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
    | HtmlForumSource,
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
    threads: int | None = Field(default=None, ge=1,
                                description="inference threads; default: the cores this process may use")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    runtime: Literal["auto", "onnx", "torch"] = Field(
        default="auto",
        description="'onnx' scores a checkpoint's ONNX export on CPU without torch (about "
        "0.25 GB instead of 1.5 GB); 'torch' runs any checkpoint, on GPU too; 'auto' picks "
        "onnx when the checkpoint has a current export and no GPU is wanted",
    )

    @model_validator(mode="after")
    def _onnx_is_cpu_only(self) -> NlpConfig:
        if self.runtime == "onnx" and self.device == "cuda":
            raise ValueError("runtime 'onnx' runs on the CPU; use runtime 'torch' with device 'cuda'")
        return self


class ElasticsearchConfig(Strict):
    hosts: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:9200"], min_length=1)
    username: str | None = None
    password: OptionalSecret = None
    api_key: OptionalSecret = None
    verify_certs: bool = True
    index_prefix: str = Field(default="brandpulse", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    request_timeout: Duration = Field(default=timedelta(seconds=30))
    bulk_size: int = Field(default=500, ge=1, le=10000, description="documents per bulk request")
    spool_dir: Path = Field(
        default=Path("var/spool"), description="mentions wait here while Elasticsearch is down"
    )


class SlackConfig(Strict):
    token: OptionalSecret = Field(default=None, description="bot token (xoxb-...)")
    channel: str | None = Field(default=None, description="channel id or name for the bot token")
    webhook_url: OptionalSecret = Field(default=None, description="incoming webhook instead")
    base_url: str | None = Field(
        default=None, description="Web API base URL override (for a proxy or a test server)"
    )
    kibana_url: str | None = Field(default=None, description="links in messages point here")

    @model_validator(mode="after")
    def _bot_needs_channel(self) -> SlackConfig:
        if self.token is not None and not self.channel:
            raise ValueError("slack.token is set but slack.channel is not: the bot needs a channel")
        return self


class AlertsConfig(Strict):
    enabled: bool = True
    check_every: Duration = Field(default=timedelta(minutes=1))
    query_delay: Duration = Field(
        default=timedelta(minutes=2),
        description="ignore the newest stretch of time: crawl and indexing lag behind",
    )
    history: Duration = Field(
        default=timedelta(days=14), description="how much past the detector learns from"
    )
    spike: SpikeSettings = Field(default_factory=SpikeSettings)
    high_reach: HighReachSettings = Field(default_factory=HighReachSettings)
    top_posts: int = Field(default=5, ge=1, le=20)


class KibanaConfig(Strict):
    url: str | None = Field(default=None, description="Kibana base URL, for imports and links")
    username: str | None = None
    password: OptionalSecret = None


class DaemonConfig(Strict):
    state_dir: Path = Field(default=Path("var/state"), description="crawl cursors and caches")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=9464, ge=0, le=65535, description="health and metrics; 0=off")
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_timeout: Duration = Field(default=timedelta(seconds=30))


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
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="spike detection")
    kibana: KibanaConfig = Field(default_factory=KibanaConfig, description="saved objects import")
    daemon: DaemonConfig = Field(
        default_factory=DaemonConfig, description="state, HTTP endpoint, logs, shutdown"
    )
    crawl: CrawlConfig = Field(
        default_factory=CrawlConfig, description="where crawlers may connect (egress policy)"
    )

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        problems: list[str] = []
        names = [b.name for b in self.brands]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"brands: brand name {dup!r} is used twice")
        source_names = [s.name for s in self.sources]
        for dup in sorted({n for n in source_names if source_names.count(n) > 1}):
            problems.append(f"sources: source name {dup!r} is used twice")
        for i, source in enumerate(self.sources):
            for brand in source.brands or []:
                if brand not in names:
                    problems.append(
                        f"sources.{i}.brands: {brand!r} is not a configured brand "
                        f"(expected one of {names})"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def brand(self, name: str) -> BrandConfig:
        for brand in self.brands:
            if brand.name == name:
                return brand
        raise KeyError(name)

    def spike_settings(self, brand: str) -> SpikeSettings:
        """The brand's own spike settings merged over the global ones."""
        override = self.brand(brand).spike
        if override is None:
            return self.alerts.spike
        merged = self.alerts.spike.model_dump() | override.model_dump(exclude_unset=True)
        return SpikeSettings.model_validate(merged)


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


def _describe(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    value = error.get("input")
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    message = error["msg"]
    if error["type"] == "missing":
        return f"{location}: required field is missing"
    if error["type"] == "extra_forbidden":
        return f"{location}: unknown field (value {shown}); check the spelling"
    if error["type"] == "union_tag_invalid":
        return f"{location}: {message}"
    return f"{location}: {message} (got {shown})"


def parse_config(
    data: Any, *, source: str = "<config>", env: dict[str, str] | None = None
) -> Config:
    """Validate an already-parsed YAML document; raise ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(
            source, [f"(top level): expected a mapping of sections, got {type(data).__name__}"]
        )
    problems: list[str] = []
    expanded = _expand_env(data, "", dict(os.environ) if env is None else env, problems)
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        problems.extend(_describe(e) for e in exc.errors(include_url=False))
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
        raise ConfigError(str(path), [f"not valid YAML: {exc}"]) from None
    return parse_config(data, source=str(path), env=env)
