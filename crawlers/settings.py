"""Scrapy settings of the BrandPulse crawlers.

Per-source values (concurrency, timeout, rate, base URL) come from the source's
entry in config.yaml and are applied by `MentionSpider` at start; what is here are
the defaults and the wiring of BrandPulse's components.
"""

from __future__ import annotations

BOT_NAME = "brandpulse"
SPIDER_MODULES = ["crawlers.spiders"]
NEWSPIDER_MODULE = "crawlers.spiders"

# --- BrandPulse ------------------------------------------------------------
# The crawl's one input: a `crawlers.job.CrawlJob` (the source, its brands, the
# state and output locations), set by the crawl child process from the job the
# runner sent it. No configuration file is read inside a crawl.
BRANDPULSE_CRAWL_JOB = None
# Longest server-requested pause (Retry-After, X-Ratelimit-Reset, backoff) a crawl
# waits out; a longer one abandons the source's remaining requests for this run.
BRANDPULSE_MAX_RETRY_AFTER = 120.0
# The parts of a crawl besides parsing, each a component switched by a setting
# (docs/crawlers.md "How a crawl is split"): turning one off is for tests and
# dry runs (e.g. BRANDPULSE_CURSOR_ENABLED=False never touches the cursor).
BRANDPULSE_FAULT_ACCOUNTING_ENABLED = True  # middlewares.FaultAccountingMiddleware
BRANDPULSE_FAULT_LOG_ENABLED = True  # faults.FaultLog
BRANDPULSE_BRAND_FILTER_ENABLED = True  # pipelines.BrandFilterPipeline
BRANDPULSE_CURSOR_ENABLED = True  # extensions.CursorWriter
BRANDPULSE_MASK_LOG_SECRETS = True  # faults.SecretMaskingLog (key=, access_token=... in URLs)
# Near-duplicate memory kept across runs (per source).
BRANDPULSE_RECENT_HASHES = 20000
BRANDPULSE_RECENT_HASH_DAYS = 7

# --- Egress policy (crawlers/egress.py; docs/crawlers.md "Egress policy and safety")
# Off only for debugging: it keeps hostile pages from making the crawler read local
# files, call internal services or carry a token to another host.
BRANDPULSE_EGRESS_ENABLED = True
# The source's own URLs (scheme://host:port); the spider sets them from the config.
# Requests go to these hosts only, and credentials only to these origins.
BRANDPULSE_EGRESS_ORIGINS: list[str] = []
# Other hosts the source may follow (config `allowed_hosts`; "*.example.com", "*").
BRANDPULSE_EGRESS_EXTRA_HOSTS: list[str] = []
# Loopback/private/link-local/CGNAT addresses (config `crawl.allow_private_addresses`).
BRANDPULSE_EGRESS_ALLOW_PRIVATE = False
# Single non-public endpoints allowed: "IP:port", "IP" or a CIDR network
# (config `crawl.allowed_private_endpoints`).
BRANDPULSE_EGRESS_ALLOWED_ENDPOINTS: list[str] = []
# Headers that carry credentials: sent only to the source's own origins.
BRANDPULSE_EGRESS_CREDENTIAL_HEADERS = [
    "Authorization", "Cookie", "X-Api-Key", "Api-Key", "X-Auth-Token", "X-Access-Token",
    "X-Goog-Api-Key",  # YouTube's key (crawlers/spiders/youtube.py)
]  # fmt: skip
# The resolver that checks the address actually connected to (after DNS).
TWISTED_DNS_RESOLVER = "crawlers.egress.EgressResolver"
# http(s) only: the other schemes' handlers are removed outright, so even with the
# policy off no file is read and no FTP/S3/data request is made.
DOWNLOAD_HANDLERS = {"file": None, "data": None, "ftp": None, "s3": None}

# --- Politeness --------------------------------------------------------------
USER_AGENT = "brandpulse/0.1 (brand monitoring; +https://github.com/brandpulse/brandpulse)"
# True for HTML scrapers; API spiders opt out per request (see spiders/base.py).
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2  # per source: `concurrency` in config.yaml
DOWNLOAD_DELAY = 0  # the per-source rate limit and AutoThrottle pace requests
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.5
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
COOKIES_ENABLED = False  # APIs: a cookie jar only leaks state between runs
TELNETCONSOLE_ENABLED = False
# Scrapy 2.19's remote-control extension runs Python sent over a local HTTP port
# and writes job files with its token into the home directory: nothing a crawl
# run by the daemon should expose.
REMOTE_CONTROL_ENABLED = False

# --- Bounded crawls -------------------------------------------------------------
DOWNLOAD_TIMEOUT = 30
RETRY_ENABLED = True
RETRY_TIMES = 2
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
# A source's faults are logged once per source at close (crawlers.faults.FaultLog);
# Scrapy's per-request give-up lines would repeat them.
RETRY_GIVE_UP_LOG_LEVEL = "DEBUG"
CLOSESPIDER_TIMEOUT = 600
DOWNLOAD_MAXSIZE = 32 * 1024 * 1024
DOWNLOAD_WARNSIZE = 8 * 1024 * 1024

# --- Components -------------------------------------------------------------
DOWNLOADER_MIDDLEWARES = {
    # First on the way in: nothing (not even a robots.txt fetch) happens for a
    # request the policy refuses; redirects come back through here as new requests.
    "crawlers.egress.EgressPolicyMiddleware": 40,
    # After RetryMiddleware (550) on the way in, before it on the way out, so a
    # 429's Retry-After is recorded before the retry is scheduled.
    "crawlers.middlewares.RateLimitMiddleware": 560,
}
SPIDER_MIDDLEWARES = {
    "crawlers.middlewares.FaultAccountingMiddleware": 45,
}
ITEM_PIPELINES = {
    "crawlers.pipelines.BrandFilterPipeline": 100,
    "crawlers.pipelines.DuplicatePipeline": 300,
    "crawlers.pipelines.JsonLinesOutputPipeline": 900,
}
EXTENSIONS = {
    # Early: credentials in URLs are masked in every log line of the crawl.
    "crawlers.faults.SecretMaskingLog": 0,
    "crawlers.faults.FaultLog": 400,
    "crawlers.extensions.SourceStats": 500,
    "crawlers.extensions.CursorWriter": 600,
}

LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"
