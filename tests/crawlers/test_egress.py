"""The egress policy's components alone: the middleware on Requests, the address rules."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Request
from scrapy.settings import Settings
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IHostnameResolver, IResolutionReceiver
from zope.interface import implementer, provider

from crawlers.egress import (
    AddressPolicy,
    EgressPolicyMiddleware,
    EgressRefused,
    EgressResolver,
    address_category,
    parse_endpoint,
    resolver_refusal,
    unregister_policy,
)

SOURCE = "https://social.example:443"


def middleware(**settings):
    base = Settings()
    base.setmodule("crawlers.settings", priority="project")
    base.setdict({"BRANDPULSE_EGRESS_ORIGINS": [SOURCE], **settings}, priority="cmdline")
    crawler = Crawler(Spider, base)
    mw = EgressPolicyMiddleware.from_crawler(crawler)
    unregister_policy(mw.policy)  # nothing resolves in this process
    return mw


def refused(mw, url: str, **kwargs) -> str | None:
    try:
        mw.process_request(Request(url, **kwargs))
    except EgressRefused as exc:
        return exc.reason
    return None


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "data:text/plain,hello",
        "ftp://social.example/x",
        "s3://bucket/key",
        "https://other.example/api",  # offsite
        "http://social.example/api",  # same name, other port (a downgrade to http)
        "https://127.0.0.1/x",
        "https://[::ffff:127.0.0.1]/x",  # IPv4-mapped loopback
        "https://[::1]:9200/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/latest/",
        "https://10.1.2.3/",
        "https://100.64.0.1/",  # carrier-grade NAT
        "https://0.0.0.0:9200/",
    ],
)
def test_refused_requests(url):
    # Any host may be followed here: what is refused is the scheme or the address.
    anywhere = middleware(BRANDPULSE_EGRESS_EXTRA_HOSTS=["*"])
    assert refused(middleware() if "example" in url else anywhere, url)


def test_own_and_opted_in_hosts_pass():
    mw = middleware(BRANDPULSE_EGRESS_EXTRA_HOSTS=["*.cdn.example", "feeds.example"])
    assert refused(mw, "https://social.example/api/v1/x?max_id=3") is None
    assert refused(mw, "https://a.cdn.example/img") is None
    assert refused(mw, "https://feeds.example/rss") is None
    assert refused(mw, "https://cdn.example/") is not None  # the bare domain was not listed
    assert refused(mw, "https://evilfeeds.example/") is not None


def test_an_http_source_may_upgrade_to_https_on_its_host_only():
    mw = middleware(BRANDPULSE_EGRESS_ORIGINS=["http://feeds.example/rss"])
    assert refused(mw, "https://feeds.example/rss") is None
    assert refused(mw, "https://feeds.example:8443/rss") is not None
    upgraded = Request("https://feeds.example/rss", headers={"Authorization": "t"})
    mw.process_request(upgraded)
    assert "Authorization" not in upgraded.headers  # not the configured origin


def test_private_addresses_need_an_explicit_allowance():
    assert refused(middleware(BRANDPULSE_EGRESS_ORIGINS=["http://127.0.0.1:8080"]), "http://127.0.0.1:8080/")
    exact = middleware(
        BRANDPULSE_EGRESS_ORIGINS=["http://127.0.0.1:8080"],
        BRANDPULSE_EGRESS_EXTRA_HOSTS=["127.0.0.1"],
        BRANDPULSE_EGRESS_ALLOWED_ENDPOINTS=["127.0.0.1:8080"],
    )
    assert refused(exact, "http://127.0.0.1:8080/") is None
    assert "loopback" in refused(exact, "http://127.0.0.1:9200/")  # another local port
    anything = middleware(
        BRANDPULSE_EGRESS_ORIGINS=["http://127.0.0.1:8080"],
        BRANDPULSE_EGRESS_EXTRA_HOSTS=["*"],
        BRANDPULSE_EGRESS_ALLOW_PRIVATE=True,
    )
    assert refused(anything, "http://127.0.0.1:9200/") is None
    assert refused(anything, "http://10.0.0.5/") is None
    # Metadata endpoints stay refused whatever is allowed.
    assert "metadata" in refused(anything, "http://169.254.169.254/latest/")


def test_credentials_go_only_to_the_sources_own_origin():
    mw = middleware(BRANDPULSE_EGRESS_EXTRA_HOSTS=["media.example"])
    headers = {
        "Authorization": "Bearer t0ken", "Cookie": "s=1", "X-Api-Key": "k",
        "X-Goog-Api-Key": "AIza", "Accept": "a",
    }  # fmt: skip
    own = Request("https://social.example/api", headers=headers)
    mw.process_request(own)
    assert own.headers["Authorization"] == b"Bearer t0ken"
    other = Request("https://media.example/next", headers=headers)
    mw.process_request(other)
    assert [k.decode() for k in other.headers] == ["Accept"]


def test_switched_off_and_misconfigured():
    with pytest.raises(NotConfigured):
        middleware(BRANDPULSE_EGRESS_ENABLED=False)
    with pytest.raises(RuntimeError, match="TWISTED_DNS_RESOLVER"):
        middleware(TWISTED_DNS_RESOLVER="scrapy.resolver.CachingThreadedResolver")


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 form of 127.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 form of 127.0.0.1
        ("fd12::1", "private"),
        ("fe80::1", "link-local"),
        ("169.254.10.10", "link-local"),
        ("169.254.169.254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("100.64.3.3", "cgnat"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.10", "private"),
    ],
)
def test_address_categories(address, category):
    assert address_category(address) == category


def test_endpoints_parse_or_say_what_is_expected():
    net, port = parse_endpoint("127.0.0.1:8080")
    assert str(net) == "127.0.0.1/32" and port == 8080
    assert parse_endpoint("[::1]:9")[1] == 9
    assert str(parse_endpoint("10.0.0.0/8")[0]) == "10.0.0.0/8"
    assert parse_endpoint("::1")[1] is None
    with pytest.raises(ValueError, match="expected IP:port"):
        parse_endpoint("localhost:8080")
    policy = AddressPolicy(endpoints=(parse_endpoint("10.0.0.0/8"),))
    assert policy.refusal("10.9.9.9", 443) is None
    assert policy.refusal("192.168.1.1", 443) is not None


@implementer(IHostnameResolver)
class Zone:
    """A DNS zone in memory: each lookup of a name gets its next answer (a
    rebinding zone answers a public address first and a private one next)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers

    def resolveHostName(
        self, receiver, hostName, portNumber=0, addressTypes=None, transportSemantics="TCP"
    ):
        receiver.resolutionBegan(None)
        for ip in self.answers[hostName].pop(0):
            kind = IPv6Address if ":" in ip else IPv4Address
            receiver.addressResolved(kind("TCP", ip, portNumber))
        receiver.resolutionComplete()
        return receiver


@provider(IResolutionReceiver)
class Collected:
    def __init__(self) -> None:
        self.addresses: list[str] = []
        self.done = False

    def resolutionBegan(self, resolution) -> None:
        pass

    def addressResolved(self, address) -> None:
        self.addresses.append(address.host)

    def resolutionComplete(self) -> None:
        self.done = True


def resolve(resolver: EgressResolver, name: str, port: int = 443) -> list[str]:
    got = Collected()
    resolver.resolveHostName(got, name, port)
    assert got.done
    return got.addresses


def test_the_resolver_hands_out_allowed_addresses_only():
    zone = Zone({
        "rebind.test": [["93.184.216.34"], ["127.0.0.1"]],
        "mixed.test": [["10.0.0.1", "93.184.216.34", "::ffff:169.254.169.254"]],
        "local.test": [["127.0.0.1"], ["127.0.0.1"]],
    })  # fmt: skip
    resolver = EgressResolver(SimpleNamespace(nameResolver=zone), 0, AddressPolicy())
    # The address checked is the address handed to the connection, lookup by lookup.
    assert resolve(resolver, "rebind.test") == ["93.184.216.34"]
    assert resolve(resolver, "rebind.test") == []
    assert "127.0.0.1 is a loopback address" in resolver_refusal("rebind.test")
    assert resolve(resolver, "mixed.test") == ["93.184.216.34"]
    # An exact endpoint allowance is per port.
    exact = EgressResolver(
        SimpleNamespace(nameResolver=zone), 0,
        AddressPolicy(endpoints=(parse_endpoint("127.0.0.1:8080"),)),
    )  # fmt: skip
    assert resolve(exact, "local.test", 9200) == []
    assert resolve(exact, "local.test", 8080) == ["127.0.0.1"]
