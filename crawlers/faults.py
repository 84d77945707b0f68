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
    "REFUSAL_KINDS",
    "STATS_PREFIX",
    "FaultLog",
    "MaskUrlSecrets",
    "SecretMaskingLog",
    "fault_line",
    "mask_url_secrets",
    "record_fault",
    "recorded_faults",
]

logger = logging.getLogger(__name__)

STATS_PREFIX = "brandpulse"
_FAILED = f"{STATS_PREFIX}/failed/"

# Faults that mean the site refused us rather than failed: a login wall
# (`login_required`), a captcha or bot check (`captcha`), a throttle
# (`rate_limited`). A page answered with a refusal is not a page read (the base
# spider takes it out of `brandpulse/pages`), so a crawl refused on every page
# "read nothing": the daemon counts it as a failed crawl and the source-health
# alert (alerts/health.py, `health.source_failures`) fires after enough of them.
REFUSAL_KINDS = frozenset({"login_required", "captcha", "rate_limited"})
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
