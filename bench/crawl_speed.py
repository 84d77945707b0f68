"""Crawl throughput: the Hacker News spider against a local server.

    python bench/crawl_speed.py [--terms 4] [--pages 50] [--per-page 100]

Serves `terms x pages` pages of `per-page` posts each in the Algolia
search_by_date format (default 4 x 50 x 100 = 200 pages, 20,000 posts), then
crawls them through `crawlers.runner.run_crawl` (a real Scrapy engine in a child
process, output through the JSONL hand-off) once per settings profile, each in
its own process, printing mentions/s and the crawl child's peak RSS:

- project:             crawlers/settings.py and the spider's defaults as shipped:
                       Hacker News is capped at 60 requests/min, concurrency 2,
                       AutoThrottle, rate limiter, retries, duplicate pipeline
- project-uncapped:    the same without the requests/min cap (what the
                       machinery itself costs)
- project-uncapped-c8: the same with the source's concurrency at 8
- project-uncapped-c8-noat: and without AutoThrottle (what AutoThrottle costs)
- project-uncapped-c8-noat-nolimiter: and without the BrandPulse rate limiter
- scrapy-default:      Scrapy's own defaults for everything that paces a crawl
                       (no AutoThrottle, no BrandPulse rate limiter, 8 per domain,
                       16 total); the BrandPulse pipelines stay, they produce the output

Every post matches a brand, so all of them go through parsing, HTML cleaning,
brand matching, duplicate hashing and the JSONL hand-off.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

UNCAPPED = 1_000_000.0  # requests/min: takes the per-source rate cap out of the picture
PROFILES: dict[str, dict] = {
    "project": {"settings": {}, "source": {}},
    "project-uncapped": {"settings": {}, "source": {"requests_per_minute": UNCAPPED}},
    "project-uncapped-c8": {
        "settings": {},
        "source": {"requests_per_minute": UNCAPPED, "concurrency": 8},
    },
    "project-uncapped-c8-noat": {
        "settings": {"AUTOTHROTTLE_ENABLED": False},
        "source": {"requests_per_minute": UNCAPPED, "concurrency": 8},
    },
    "project-uncapped-c8-noat-nolimiter": {
        "settings": {"AUTOTHROTTLE_ENABLED": False, "BRANDPULSE_RATELIMIT_ENABLED": False},
        "source": {"requests_per_minute": UNCAPPED, "concurrency": 8},
    },
    "scrapy-default": {
        "settings": {
            "AUTOTHROTTLE_ENABLED": False,
            "BRANDPULSE_RATELIMIT_ENABLED": False,
            "CONCURRENT_REQUESTS": 16,
            "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
            "RETRY_TIMES": 2,
            "DOWNLOAD_TIMEOUT": 180,
        },
        "source": {"concurrency": 8},
    },
}
WORDS = ["cloud", "latency", "storage", "support", "billing", "outage", "release", "pricing", "team", "api", "region", "backup", "deploy", "cluster", "database", "monitoring", "network", "incident", "upgrade", "customer"]  # fmt: skip


def build_pages(terms: list[str], pages: int, per_page: int) -> dict[tuple[str, int], bytes]:
    out: dict[tuple[str, int], bytes] = {}
    base = 1_704_189_600
    for t, term in enumerate(terms):
        for page in range(pages):
            hits = []
            for i in range(per_page):
                n = (t * pages + page) * per_page + i
                words = " ".join(WORDS[(n * 7 + k * 3) % len(WORDS)] for k in range(28))
                hits.append({
                    "objectID": str(40_000_000 + n), "created_at_i": base - n * 7,
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base - n * 7)),
                    "author": f"user{n % 977}", "_tags": ["comment"], "points": None, "story_id": 1,
                    "comment_text": f"<p>{term} {n}: {words} &amp; more</p><p>second paragraph {n}</p>",
                })  # fmt: skip
            out[(term, page)] = json.dumps({
                "hits": hits, "nbHits": pages * per_page, "nbPages": pages, "page": page,
                "hitsPerPage": per_page, "query": term, "params": "", "processingTimeMS": 1,
            }).encode()  # fmt: skip
    return out


def serve(pages: dict[tuple[str, int], bytes]) -> ThreadingHTTPServer:
    empty = json.dumps({"hits": [], "nbPages": 0, "page": 0}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            q = parse_qs(urlsplit(self.path).query)
            body = pages.get((q.get("query", [""])[0], int(q.get("page", ["0"])[0])), empty)
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def one_profile(args: argparse.Namespace) -> None:
    """Child: run one crawl, print a JSON line with the figures."""
    import tempfile

    from brandpulse.config import parse_config
    from crawlers.job import CrawlJob
    from crawlers.runner import run_crawl

    profile = PROFILES[args.profile]
    brand_query = " OR ".join(args.term_list)
    with tempfile.TemporaryDirectory() as state:
        config = parse_config({
            "brands": [{"name": "Bench", "query": brand_query}],
            "sources": [{"type": "hackernews", "name": "bench", "base_url": args.base_url,
                         "max_pages": args.pages, "lookback": "3650d", **profile["source"]}],
            # The benchmark's server is on this machine (the egress policy refuses
            # loopback addresses unless told otherwise).
            "crawl": {"allow_private_addresses": True},
        }, env={})  # fmt: skip
        started = time.perf_counter()
        result = run_crawl(
            CrawlJob.from_config(config, "bench", state_dir=state),
            timeout=600,
            settings={"LOG_LEVEL": "WARNING", **profile["settings"]},
        )
        wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB
    crawl_s = float(result.stats.get("elapsed_seconds") or wall)
    print(json.dumps({
        "profile": args.profile, "mentions": len(result.mentions), "pages": result.stats.get("pages"),
        "crawl_seconds": round(crawl_s, 2), "wall_seconds": round(wall, 2),
        "mentions_per_s": round(len(result.mentions) / crawl_s, 1),
        "mentions_per_s_wall": round(len(result.mentions) / wall, 1),
        "peak_rss_mib": round(peak_kb / 1024, 1), "error": result.error, "failed": result.stats.get("failed"),
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--terms", type=int, default=4, help="parallel queries (search terms)")
    parser.add_argument("--pages", type=int, default=50, help="pages per term")
    parser.add_argument("--per-page", type=int, default=100)
    parser.add_argument("--profiles", default=",".join(PROFILES))
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.term_list = [f"bench{chr(97 + i)}" for i in range(args.terms)]
    if args.profile:
        one_profile(args)
        return
    httpd = serve(build_pages(args.term_list, args.pages, args.per_page))
    base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    total = args.terms * args.pages * args.per_page
    print(
        f"{args.terms} queries x {args.pages} pages x {args.per_page} posts = {total} posts, {args.terms * args.pages} pages"
    )
    print(
        f"{'profile':<15} {'mentions':>8} {'crawl s':>8} {'mentions/s':>11} {'wall s':>7} {'/s wall':>8} {'peak RSS MiB':>13}"
    )
    for name in args.profiles.split(","):
        cmd = [sys.executable, __file__, "--profile", name, "--base-url", base_url, "--terms", str(args.terms),
               "--pages", str(args.pages), "--per-page", str(args.per_page)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if proc.returncode != 0:
            print(f"{name}: failed\n{proc.stderr[-2000:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{name:<15} {r['mentions']:>8} {r['crawl_seconds']:>8} {r['mentions_per_s']:>11} "
              f"{r['wall_seconds']:>7} {r['mentions_per_s_wall']:>8} {r['peak_rss_mib']:>13}"
              + (f"  error: {r['error']}" if r["error"] else "") + (f"  failed: {r['failed']}" if r["failed"] else ""))  # fmt: skip
    httpd.shutdown()


if __name__ == "__main__":
    main()
