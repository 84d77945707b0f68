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
import ipaddress
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
from pydantic_core import PydanticCustomError

from brandpulse.alert_settings import HighReachSettings, SpikeSettings
from brandpulse.secrets import mask_url, redact
from brandpulse.units import Duration, min_duration

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
    | HtmlForumSource
    | WeiboSource,
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
    spool_dir: Path = Field(
        default=Path("var/spool"), validate_default=True,
        description="mentions wait here while Elasticsearch is down; relative to the "
        "directory the command runs in",
    )  # fmt: skip

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
    def section_problems(cls, data: dict[str, Any]) -> Problems:
        if _given(data.get("token")) and not _given(data.get("channel")):
            return [((), "slack.token is set but slack.channel is not: the bot needs a channel")]
        return []


class AlertsConfig(Strict):
    enabled: bool = True
    check_every: PositiveDuration = Field(default=timedelta(minutes=1))
    query_delay: NonNegativeDuration = Field(
        default=timedelta(minutes=2),
        description="ignore the newest stretch of time: crawl and indexing lag behind",
    )
    history: Annotated[Duration, min_duration(timedelta(hours=1))] = Field(
        default=timedelta(days=14), description="how much past the detector learns from (at least 1h)"
    )
    spike: SpikeSettings = Field(default_factory=SpikeSettings)
    high_reach: HighReachSettings = Field(default_factory=HighReachSettings)
    top_posts: int = Field(default=5, ge=1, le=20)


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


class DaemonConfig(Strict):
    state_dir: Path = Field(
        default=Path("var/state"), validate_default=True,
        description="crawl cursors and caches; relative to the directory the command runs in",
    )  # fmt: skip
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=9464, ge=0, le=65535, description="health and metrics; 0=off")
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_timeout: PositiveDuration = Field(default=timedelta(seconds=30))

    @field_validator("state_dir")
    @classmethod
    def _state_absolute(cls, value: Path) -> Path:
        return _absolute(value)


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
        sources = data.get("sources") if isinstance(data.get("sources"), list) else []
        for i, source in enumerate(sources):
            wanted = source.get("brands") if isinstance(source, dict) else None
            for brand in wanted if isinstance(wanted, list) else []:
                if names and brand not in names:
                    problems.append((("sources", i, "brands"), f"{brand!r} is not a configured "
                                     f"brand (expected one of {list(dict.fromkeys(names))})"))  # fmt: skip
        return problems

    def warnings(self) -> list[str]:
        """Settings that work but deserve a word at start (e.g. certificates unchecked)."""
        return self.elasticsearch.tls_warnings("elasticsearch") + self.kibana.tls_warnings("kibana")

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
