"""The crawler's egress policy: where a crawl may send requests, and with what.

A crawl follows URLs that other people wrote: a forum's "next" link, a Mastodon
`Link` header, a redirect. Without a policy a hostile page can make the crawler
read local files (`file://`), call internal services (the local Elasticsearch,
a cloud metadata endpoint) or carry the source's token to another host. Three
Scrapy components enforce the policy; each is switched by settings:

`EgressPolicyMiddleware` (downloader middleware, `DOWNLOADER_MIDDLEWARES`)
    Sees every request before it is downloaded -- start requests, next pages,
    robots.txt, and redirects (Scrapy's RedirectMiddleware answers with a new
    Request, which is scheduled again and passes here like any other). It
    refuses (raises `EgressRefused`, an `IgnoreRequest`; the request's errback
    counts it as the fault `egress_refused`):

    - any scheme but http and https (`file:`, `ftp:`, `data:`, `s3:`...);
    - a host:port that is not one of the source's own configured origins
      (`BRANDPULSE_EGRESS_ORIGINS`, set by the spider from its config) nor in
      the source's `allowed_hosts` (`BRANDPULSE_EGRESS_EXTRA_HOSTS`; `*.example.com`
      for subdomains, `*` for any host);
    - an IP-literal host whose address is not public (see below).

    It strips credential headers (`BRANDPULSE_EGRESS_CREDENTIAL_HEADERS`:
    Authorization, Cookie, API-key headers) from any request whose origin
    (scheme, host, port) is not one of the source's own origins: a token is only
    ever sent where the configuration sends it. (Such a request can only exist
    when the source opted in to other hosts; otherwise it is refused outright.)

`EgressResolver` (Twisted name resolver, `TWISTED_DNS_RESOLVER`)
    Scrapy's caching resolver with a filter: every address a host name resolves
    to is checked, and a non-public one is never handed to the connection code.
    Twisted's HTTP client connects exactly to the addresses the resolver
    returns, so the address checked is the address connected to: a DNS answer
    that changes between a check and the connection (DNS rebinding) cannot get
    past it, and neither can a public name that resolves to 127.0.0.1.

`AddressPolicy` (what "not public" means)
    Refused: loopback, private (RFC 1918, IPv6 ULA), link-local, carrier-grade
    NAT (100.64.0.0/10), multicast, unspecified (0.0.0.0, ::), reserved and
    documentation ranges, and the cloud metadata endpoints (169.254.169.254,
    fd00:ec2::254, 100.100.100.200, 169.254.170.2). IPv4-mapped, 6to4 and NAT64
    IPv6 forms are judged by the IPv4 address they carry.
    `BRANDPULSE_EGRESS_ALLOW_PRIVATE` (config `crawl.allow_private_addresses`)
    allows loopback, private, link-local and CGNAT addresses (the sandbox, the
    demo, an intranet forum); `BRANDPULSE_EGRESS_ALLOWED_ENDPOINTS` (config
    `crawl.allowed_private_endpoints`) allows single `IP:port`, `IP` or CIDR
    entries (the tests allow exactly their local server's port). Metadata,
    unspecified, multicast and reserved addresses are refused whatever is set.

What is guaranteed, and what is not: with the default settings (Scrapy's
HTTP/1.1 download handler, this resolver) no connection is opened to a refused
address and no request with a refused scheme or host leaves the crawler. The
guarantee covers the direct connection only: with an HTTP proxy
(`HttpProxyMiddleware`, `http_proxy` in the environment) the crawler connects to
the proxy, whose address is checked, and the proxy resolves the target itself.
The resolver's policy is per process (Twisted has one resolver per reactor):
each crawl runs in its own process (`crawlers.runner`, `scrapy crawl`); if
several crawlers share a process, an address must pass every crawler's policy.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Request
from scrapy.resolver import CachingHostnameResolver
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.interfaces import IHostnameResolver, IHostResolution, IResolutionReceiver
from zope.interface import implementer, provider

from brandpulse.endpoints import IPNetwork, parse_endpoint

__all__ = [
    "AddressPolicy",
    "EgressPolicyMiddleware",
    "EgressRefused",
    "EgressResolver",
    "parse_endpoint",
    "resolver_refusal",
]

logger = logging.getLogger(__name__)

STATS_PREFIX = "brandpulse/egress"
ALLOWED_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata services (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba, ECS task
# metadata): they hand out credentials to whoever asks from the host.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Categories an operator may allow (the sandbox, tests, an intranet source).
ALLOWABLE = frozenset({"loopback", "private", "link-local", "cgnat"})


class EgressRefused(IgnoreRequest):
    """A request the egress policy does not let out; `reason` says why."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"egress policy refused {url}: {reason}")
        self.url = url
        self.reason = reason


def _unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 transition form carries (mapped, 6to4, NAT64)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_category(address: str | IPAddress) -> str | None:
    """Why an address is not public ("loopback", "metadata"...), or None if it is."""
    ip = _unwrap(ipaddress.ip_address(address) if isinstance(address, str) else address)
    if ip in METADATA_ADDRESSES:
        return "metadata"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "cgnat"
    if ip.is_private and not ip.is_reserved:
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which resolved addresses a crawl may connect to (see the module docstring)."""

    allow_private: bool = False
    endpoints: tuple[tuple[IPNetwork, int | None], ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> AddressPolicy:
        entries = settings.getlist("BRANDPULSE_EGRESS_ALLOWED_ENDPOINTS")
        return cls(
            allow_private=settings.getbool("BRANDPULSE_EGRESS_ALLOW_PRIVATE", False),
            endpoints=tuple(parse_endpoint(e) for e in entries),
        )

    def refusal(self, address: str, port: int | None) -> str | None:
        """Why connecting to address:port is refused, or None when it is allowed."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"{address!r} is not an IP address"
        category = address_category(ip)
        if category is None:
            return None
        if category in ALLOWABLE:
            if self.allow_private:
                return None
            for network, allowed_port in self.endpoints:
                in_network = _unwrap(ip) in network or ip in network
                if in_network and allowed_port in (None, port):
                    return None
            return (
                f"{address} is a {category} address (allow it with crawl.allow_private_"
                "addresses or crawl.allowed_private_endpoints)"
            )
        return f"{address} is a {category} address (never allowed)"


# --------------------------------------------------------------------- resolver

_lock = threading.Lock()
_process_policies: list[AddressPolicy] = []  # registered by the middleware(s)
_refused_hosts: dict[str, str] = {}  # host -> why its addresses were refused


def register_policy(policy: AddressPolicy) -> None:
    """Make `policy` one the process's resolver applies (see `EgressResolver`)."""
    with _lock:
        _process_policies.append(policy)


def unregister_policy(policy: AddressPolicy) -> None:
    with _lock:
        if policy in _process_policies:
            _process_policies.remove(policy)


def resolver_refusal(host: str | None) -> str | None:
    """Why the resolver refused every address of `host` in this process, if it did."""
    if not host:
        return None
    with _lock:
        return _refused_hosts.get(host.lower().rstrip("."))


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:  # pragma: no cover - Twisted never cancels these
        pass


@provider(IResolutionReceiver)
class _FilteringReceiver:
    """Passes on only the addresses every policy allows; remembers why not."""

    def __init__(
        self,
        receiver: IResolutionReceiver,
        host: str,
        port: int,
        policies: Sequence[AddressPolicy],
    ) -> None:
        self.receiver = receiver
        self.host = host
        self.port = port
        self.policies = policies
        self.passed = 0
        self.refused: list[str] = []

    def resolutionBegan(self, resolution: IHostResolution) -> None:
        self.receiver.resolutionBegan(resolution)

    def addressResolved(self, address: Any) -> None:
        ip = getattr(address, "host", None)
        reasons = [r for p in self.policies if (r := p.refusal(str(ip), self.port))]
        if reasons:
            self.refused.append(reasons[0])
            return
        self.passed += 1
        self.receiver.addressResolved(address)

    def resolutionComplete(self) -> None:
        key = self.host.lower().rstrip(".")
        with _lock:
            if self.refused and not self.passed:
                _refused_hosts[key] = f"{self.host} resolves to {self.refused[0]}"
            else:
                _refused_hosts.pop(key, None)
        if self.refused:
            logger.warning(
                "egress policy: refused %d address(es) of %s:%s: %s",
                len(self.refused), self.host, self.port, "; ".join(sorted(set(self.refused))),
            )  # fmt: skip
        self.receiver.resolutionComplete()


@implementer(IHostnameResolver)
class EgressResolver(CachingHostnameResolver):
    """Scrapy's caching resolver (IPv4 and IPv6) that hands out allowed addresses only.

    Its policy comes from the process settings; an `EgressPolicyMiddleware` of a
    crawl in this process registers the crawl's own policy (built from the crawl's
    settings, which the spider fills from the config), and then every registered
    policy must allow an address. With `BRANDPULSE_EGRESS_ENABLED` off it filters
    nothing.
    """

    def __init__(self, reactor: Any, cache_size: int, policy: AddressPolicy | None) -> None:
        super().__init__(reactor, cache_size)
        self.policy = policy

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> EgressResolver:
        settings = crawler.settings
        cache_size = settings.getint("DNSCACHE_SIZE") if settings.getbool("DNSCACHE_ENABLED") else 0
        enabled = settings.getbool("BRANDPULSE_EGRESS_ENABLED", True)
        return cls(reactor, cache_size, AddressPolicy.from_settings(settings) if enabled else None)

    def policies(self) -> list[AddressPolicy]:
        if self.policy is None:
            return []
        with _lock:
            registered = list(_process_policies)
        return registered or [self.policy]

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[Any] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        policies = self.policies()
        if policies:
            resolutionReceiver = _FilteringReceiver(
                resolutionReceiver, hostName, portNumber, policies
            )
        return super().resolveHostName(
            resolutionReceiver, hostName, portNumber, addressTypes, transportSemantics
        )


# -------------------------------------------------------------------- middleware


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a URL with the scheme's default port filled in."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").rstrip(".")
    scheme = parts.scheme.lower()
    if not host:
        return None
    return scheme, host, port or _DEFAULT_PORTS.get(scheme, 0)


def _host_matches(host: str, pattern: str) -> bool:
    pattern = pattern.strip().lower().rstrip(".")
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


class EgressPolicyMiddleware:
    """Downloader middleware enforcing the egress policy on every request.

    Settings: `BRANDPULSE_EGRESS_ENABLED` (off -> NotConfigured), `_ORIGINS`,
    `_EXTRA_HOSTS`, `_ALLOW_PRIVATE`, `_ALLOWED_ENDPOINTS`, `_CREDENTIAL_HEADERS`
    (see the module docstring and crawlers/settings.py).
    """

    def __init__(
        self,
        *,
        origins: Iterable[str] = (),
        extra_hosts: Iterable[str] = (),
        policy: AddressPolicy | None = None,
        credential_headers: Iterable[str] = (),
        crawler: Crawler | None = None,
    ) -> None:
        self.origins = {o for o in (origin_of(u) for u in origins) if o is not None}
        self.own_hosts = {(host, port) for _, host, port in self.origins}
        # A site configured as http:// that upgrades to https:// stays on its host
        # (credentials are still only sent to the configured origin).
        self.own_hosts |= {(host, 443) for scheme, host, port in self.origins if scheme == "http"}
        self.extra_hosts = [h for h in extra_hosts if h.strip()]
        self.policy = policy or AddressPolicy()
        self.credential_headers = [h for h in credential_headers if h]
        self.crawler = crawler

    def _count(self, what: str) -> None:
        try:
            stats = self.crawler.stats if self.crawler is not None else None
        except RuntimeError:  # a crawler that is not crawling (a unit test)
            stats = None
        if stats is not None:
            stats.inc_value(f"{STATS_PREFIX}/{what}")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> EgressPolicyMiddleware:
        settings = crawler.settings
        if not settings.getbool("BRANDPULSE_EGRESS_ENABLED", True):
            raise NotConfigured("BRANDPULSE_EGRESS_ENABLED is off")
        resolver = settings.get("TWISTED_DNS_RESOLVER") or ""
        if resolver != f"{__name__}.EgressResolver":
            # Without it the address check would happen before the real lookup and
            # could be fooled by DNS rebinding: refuse to run half a policy.
            raise RuntimeError(
                f"the egress policy needs TWISTED_DNS_RESOLVER = '{__name__}.EgressResolver' "
                f"(got {resolver!r}); or switch the policy off with BRANDPULSE_EGRESS_ENABLED"
            )
        mw = cls(
            origins=settings.getlist("BRANDPULSE_EGRESS_ORIGINS"),
            extra_hosts=settings.getlist("BRANDPULSE_EGRESS_EXTRA_HOSTS"),
            policy=AddressPolicy.from_settings(settings),
            credential_headers=settings.getlist("BRANDPULSE_EGRESS_CREDENTIAL_HEADERS"),
            crawler=crawler,
        )
        register_policy(mw.policy)
        crawler.signals.connect(mw.engine_stopped, signal=signals.engine_stopped)
        return mw

    def engine_stopped(self) -> None:
        unregister_policy(self.policy)

    def refusal(self, request: Request) -> str | None:
        """Why `request` may not leave, or None."""
        parts = urlparse_cached(request)
        scheme = (parts.scheme or "").lower()
        if scheme not in ALLOWED_SCHEMES:
            return f"scheme {scheme or '(none)'!r} is not allowed (http and https only)"
        origin = origin_of(request.url)
        if origin is None:
            return "the URL has no valid host or port"
        _, host, port = origin
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            pass
        else:
            why = self.policy.refusal(host.strip("[]"), port)
            if why:
                return why
        own = not self.own_hosts or (host, port) in self.own_hosts
        if not own and not any(_host_matches(host, p) for p in self.extra_hosts):
            return (
                f"{host}:{port} is not one of the source's hosts "
                f"({', '.join(sorted(f'{h}:{p}' for h, p in self.own_hosts))}); "
                "list it in the source's allowed_hosts to follow it"
            )
        return None

    def process_request(self, request: Request) -> None:
        why = self.refusal(request)
        if why:
            self._count("refused")
            raise EgressRefused(request.url, why)
        origin = origin_of(request.url)
        if self.origins and origin not in self.origins:
            stripped = [h for h in self.credential_headers if h in request.headers]
            for name in stripped:
                del request.headers[name]
            if stripped:
                self._count("credentials_stripped")
                logger.info(
                    "egress policy: not sending %s to %s (not the source's own origin)",
                    ", ".join(stripped), f"{origin[0]}://{origin[1]}:{origin[2]}" if origin else "?",
                )
        return None
