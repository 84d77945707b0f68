"""Fault accounting: what went wrong with a source, counted in stats, logged once.

A fault is a failure of the source (an HTTP error, a timeout, a page that is not
JSON, a post without a date, a refused request), never a reason for a traceback.
`record_fault` puts it into Scrapy's stats -- `brandpulse/failed/<kind>` counts,
`brandpulse/fault_example/<kind>` keeps the first detail -- so any component can
record one and any component can read them, without holding each other.
`FaultLog` (an extension, `BRANDPULSE_FAULT_LOG_ENABLED`) writes them as one
WARNING line per source when the spider closes.

Details name URLs; query parameters that carry credentials (Stack Exchange and
YouTube `key=`, `access_token=`...) are masked before they are stored, so the
log and the summary never show them.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

__all__ = [
    "BLOCKED",
    "CAPTCHA",
    "LOGIN_HOSTS",
    "LOGIN_REQUIRED",
    "LOGIN_WORDS",
    "RATE_LIMITED",
    "REFUSAL_KINDS",
    "STATS_PREFIX",
    "FaultLog",
    "MaskUrlSecrets",
    "SecretMaskingLog",
    "fault_line",
    "mask_url_secrets",
    "record_fault",
    "recorded_faults",
    "refusal",
]

logger = logging.getLogger(__name__)

STATS_PREFIX = "brandpulse"

# Refusals: the site answered but would not serve us (a login wall, an anti-bot
# wall). Spiders report them under these kinds (not `api_error`, not posts), so the
# fault line says what happened. A refused page is not read as content and does not
# count as a page read (`REFUSAL_KINDS`, applied by the base spider to a SourceFault
# out of `parse_page`), so a source that only ever refuses ends as "no page could be
# read" and reaches the source-health notice (daemon.service ->
# alerts.health.HealthTracker.crawl_failed).
BLOCKED = "blocked"  # the site's firewall blocked the request (Bilibili -412 / HTTP 412, any spider)
CAPTCHA = "captcha"  # risk control wants a human check (Bilibili -352, Baidu 安全验证, HTTP 418 of a forum)
LOGIN_REQUIRED = "login_required"  # needs a logged-in account (Bilibili -101, Discuz!, phpBB, Weibo -100)
RATE_LIMITED = "rate_limited"  # too many requests (Bilibili -799, Weibo 418/403), as the middleware's kind
REFUSAL_KINDS = frozenset({BLOCKED, CAPTCHA, LOGIN_REQUIRED, RATE_LIMITED})
_FAILED = f"{STATS_PREFIX}/failed/"
_EXAMPLE = f"{STATS_PREFIX}/fault_example/"

_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:key|api[_-]?key|access[_-]?token|token|client[_-]?secret|password|"
    r"secret|sig|signature|auth)=)[^&#\s'\"]+"
)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"]+@")


def mask_url_secrets(text: str) -> str:
    """`text` with credential query parameters and URL user:password masked."""
    return _URL_USERINFO.sub(r"\1***@", _SECRET_PARAM.sub(r"\1***", text))


class MaskUrlSecrets(logging.Filter):
    """A logging filter that masks credentials in URLs of every record it sees.

    Scrapy logs request URLs (`Crawled (200) <GET ...?key=...>` at DEBUG,
    retries, download errors); Stack Exchange takes its key only as a query
    parameter, so without this a DEBUG log of a crawl prints it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_url_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class SecretMaskingLog:
    """Extension installing `MaskUrlSecrets` on the process's log handlers for the
    crawl (`BRANDPULSE_MASK_LOG_SECRETS`, on by default)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SecretMaskingLog:
        from scrapy import signals
        from scrapy.exceptions import NotConfigured

        if not crawler.settings.getbool("BRANDPULSE_MASK_LOG_SECRETS", True):
            raise NotConfigured("BRANDPULSE_MASK_LOG_SECRETS is off")
        ext = cls()
        # Scrapy replaces its root log handler after building the extensions, so
        # the filter goes on when the spider opens (before any request is made).
        crawler.signals.connect(ext.install, signal=signals.spider_opened)
        return ext

    def install(self) -> None:
        for handler in logging.getLogger().handlers:
            if not any(isinstance(f, MaskUrlSecrets) for f in handler.filters):
                handler.addFilter(MaskUrlSecrets())


# How sites refuse (`refusal`): login walls and anti-bot challenges of forum pages,
# and the refusals Weibo's JSON answers carry.
LOGIN_HOSTS = ("passport.weibo.cn", "passport.weibo.com", "login.sina.com.cn", "weibo.com/login")
LOGIN_WORDS = ("登录", "login")  # an answer that says so (lower-cased) asks for a login
_REFUSAL_URLS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (LOGIN_REQUIRED, re.compile(r"member\.php\?(?:[^#]*&)?mod=logging", re.I)),  # Discuz!
    (LOGIN_REQUIRED, re.compile(r"ucp\.php\?(?:[^#]*&)?mode=login", re.I)),  # phpBB
    (CAPTCHA, re.compile(r"^https?://wappass\.baidu\.com/", re.I)),  # Baidu security check
    (CAPTCHA, re.compile(r"/static/captcha/tuxing|passport\.baidu\.com/.*captcha", re.I)),
)
_REFUSAL_TEXTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (CAPTCHA, re.compile(r"百度安全验证|安全验证\s*</title>")),
    # Discuz! login walls. Not "您需要登录后才可以回帖": that is the guest reply box
    # under every readable thread.
    (LOGIN_REQUIRED, re.compile(r"您需要登录后才可以(?!回帖)|您需要先登录才能继续本操作|"
                                  r"抱歉，您尚未登录，没有权限|请先登录后才能继续浏览")),
    # phpBB's login box replacing a page a guest may not see (search.php included).
    (LOGIN_REQUIRED, re.compile(r'<form[^>]+action="[^"]*ucp\.php\?mode=login[^"]*"[^>]*id="login"'
                                  r'|<form[^>]+id="login"[^>]+action="[^"]*ucp\.php\?mode=login', re.I)),
)
_REFUSAL_STATUSES = {412: BLOCKED, 418: CAPTCHA}  # anti-bot answers of Chinese CDNs/WAFs
# What an `{"ok": 0, "msg": ...}` answer says, checked in this order.
_EMPTY_WORDS = ("没有内容", "暂无", "没有更多", "无结果")  # an honest empty result
_CAPTCHA_WORDS = ("验证码", "验证", "captcha", "verify")
_THROTTLE_WORDS = ("频繁", "频率", "过多", "稍后再试")


def refusal(
    url: str, status: int | None = None, text: str = "", data: Any = None
) -> tuple[str, str] | None:
    """(kind, detail) when a response is a site refusing us, else None.

    Recognised: Discuz! login walls ("您需要登录后才可以", a redirect to
    member.php?mod=logging), Baidu's "百度安全验证" captcha page or a redirect to
    wappass.baidu.com, HTTP 412 (`blocked`, as for Bilibili) and 418 (`captcha`) of
    anti-bot firewalls, and phpBB's login form
    in place of a page. `text` is the decoded body (its first 64 KiB are read).

    `data` is a decoded JSON answer of Weibo's kind (`{"ok": 1, "data": ...}` when it
    serves): `{"ok": -100, "url": <passport page>}` or a `url` to a login page
    (`LOGIN_HOSTS`) is `login_required`; an `ok` other than 1 whose `msg` asks for a
    captcha / says 访问频繁 / asks for a login is `captcha` / `rate_limited` /
    `login_required`. `{"ok": 0, "msg": "这里还没有内容"}` is an empty result, not a
    refusal, and so is an `msg` nothing here knows. The detail is `url: ok=...; msg; url`.
    """
    for kind, pattern in _REFUSAL_URLS:
        if pattern.search(url):
            return kind, f"{url}: the site sent us to its {kind.replace('_', ' ')} page"
    if status in _REFUSAL_STATUSES:
        return _REFUSAL_STATUSES[status], f"{url} -> {status}: an anti-bot challenge"
    if isinstance(data, dict):
        said = _json_refusal(data)
        if said is not None:
            return said[0], f"{url}: {said[1]}"
    head = text[:65536]
    for kind, pattern in _REFUSAL_TEXTS:
        found = pattern.search(head)
        if found:
            return kind, f"{url}: the page is a refusal ({found.group(0)[:40]!r}), not posts"
    return None


def _json_refusal(data: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, what the answer said) of a refusing JSON answer (`refusal`'s `data`)."""
    ok = data.get("ok")
    msg = str(data.get("msg") or data.get("message") or "")
    url = str(data.get("url") or "")
    said = "; ".join(part for part in (f"ok={ok}", msg, url) if part)
    if ok == -100 or any(host in url for host in LOGIN_HOSTS):
        return LOGIN_REQUIRED, said
    if ok == 1 or any(word in msg for word in _EMPTY_WORDS):
        return None
    lowered = msg.lower()
    if any(word in lowered for word in _CAPTCHA_WORDS):
        return CAPTCHA, said
    if any(word in msg for word in _THROTTLE_WORDS):
        return RATE_LIMITED, said
    if any(word in lowered for word in LOGIN_WORDS):
        return LOGIN_REQUIRED, said
    return None


def record_fault(stats: Any, kind: str, detail: str) -> None:
    """Count one fault of `kind`; the first detail of each kind is kept (masked)."""
    stats.inc_value(f"{_FAILED}{kind}")
    if stats.get_value(f"{_EXAMPLE}{kind}") is None:
        stats.set_value(f"{_EXAMPLE}{kind}", mask_url_secrets(detail))


def recorded_faults(stats: Any) -> dict[str, tuple[int, str]]:
    """kind -> (count, first detail), from the stats."""
    found: dict[str, tuple[int, str]] = {}
    for key, value in stats.get_stats().items():
        if key.startswith(_FAILED):
            kind = key[len(_FAILED) :]
            found[kind] = (int(value), str(stats.get_value(f"{_EXAMPLE}{kind}") or ""))
    return found


def fault_line(faults: dict[str, tuple[int, str]]) -> str:
    """`kind xN (first: detail); ...`, sorted by kind."""
    return "; ".join(
        f"{kind} x{n} (first: {detail})" for kind, (n, detail) in sorted(faults.items())
    )


class FaultLog:
    """Logs a source's faults once, at close, at WARNING (with counts and examples)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FaultLog:
        # Scrapy is imported here, not at the top: the runner's parent process
        # (the daemon) uses `fault_line` without loading Scrapy.
        from scrapy import signals
        from scrapy.exceptions import NotConfigured

        if not crawler.settings.getbool("BRANDPULSE_FAULT_LOG_ENABLED", True):
            raise NotConfigured("BRANDPULSE_FAULT_LOG_ENABLED is off")
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_closed(self, spider: Any, reason: str) -> None:
        if getattr(spider, "skip_reason", None):
            return
        faults = recorded_faults(self.crawler.stats)
        if not faults:
            return
        source = getattr(getattr(spider, "source", None), "name", spider.name)
        kind = getattr(spider, "source_type", spider.name)
        logger.warning("source %r (%s) had faults: %s", source, kind, fault_line(faults))
