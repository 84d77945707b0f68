"""Item pipelines: duplicates within and across runs, and the JSONL hand-off.

`DuplicatePipeline` drops a mention whose id was already yielded in this run
(several brand queries find the same post) and marks reposts and near-copies with
`duplicate_of`: an exact hash of the normalised text catches reposts, a 64-bit
SimHash within Hamming distance 3 catches copies with small edits. The hashes of
recent mentions are kept per source in the state dir so reposts are recognised
across runs too. The first mention seen keeps the text; later ones point to it.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from itertools import pairwise
from pathlib import Path
from typing import IO, Any

import numpy as np
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem, NotConfigured

from brandpulse.mention import Mention
from crawlers.cursors import atomic_write_json
from crawlers.job import CrawlJob
from crawlers.spiders.base import STATS_PREFIX

_URL = re.compile(r"https?://\S+|www\.\S+")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_MIN_EXACT_CHARS = 24  # "lol", "+1", "same here" repeat without being reposts
_MIN_SIMHASH_TOKENS = 8  # below this a few shared words flip most bits
# Posts are short: a one-word edit of a 15-word post moves ~5 of 64 bits, while
# unrelated posts (even on the same topic) stay 15+ apart; see tests/crawlers/test_dedupe.py.
_MAX_DISTANCE = 5
# Six bands of 10-11 bits: with at most 5 differing bits one band is identical
# (pigeonhole), so candidates are found by exact band lookups, not a scan.
_BAND_EDGES = (0, 10, 20, 31, 42, 53, 64)
_BANDS = len(_BAND_EDGES) - 1


def _band(value: int, band: int) -> int:
    low, high = _BAND_EDGES[band], _BAND_EDGES[band + 1]
    return value >> low & ((1 << (high - low)) - 1)


def normalise_for_hash(text: str) -> str:
    """Lowercase words only: links, punctuation, emoji and spacing do not make a new post."""
    text = _URL.sub(" ", text.lower())
    return " ".join(_NON_WORD.sub(" ", text).split())


def exact_hash(normalised: str) -> str:
    return hashlib.sha1(normalised.encode("utf-8")).hexdigest()[:20]


def simhash(tokens: list[str]) -> int:
    """64-bit SimHash over word unigrams and bigrams (vectorised: it runs per post)."""
    features = tokens + [f"{a} {b}" for a, b in pairwise(tokens)]
    if not features:
        return 0
    digests = b"".join(
        hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest() for feature in features
    )
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8)).reshape(len(features), 64)
    majority = bits.sum(axis=0, dtype=np.int32) * 2 > len(features)
    return int.from_bytes(np.packbits(majority).tobytes(), "big")


class RecentHashes:
    """Exact and SimHash index of recent mentions (banded for fast near lookups)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str | None, int | None, float]] = []
        self.by_exact: dict[str, str] = {}
        self.bands: list[dict[int, list[int]]] = [{} for _ in range(_BANDS)]

    def add(self, mention_id: str, exact: str | None, sim: int | None, seen: float) -> None:
        index = len(self.entries)
        self.entries.append((mention_id, exact, sim, seen))
        if exact is not None:
            self.by_exact.setdefault(exact, mention_id)
        if sim is not None:
            for band in range(_BANDS):
                self.bands[band].setdefault(_band(sim, band), []).append(index)

    def find(self, mention_id: str, exact: str | None, sim: int | None) -> str | None:
        if exact is not None:
            hit = self.by_exact.get(exact)
            if hit is not None and hit != mention_id:
                return hit
        if sim is None:
            return None
        for band in range(_BANDS):
            for index in self.bands[band].get(_band(sim, band), ()):
                other_id, _, other_sim, _ = self.entries[index]
                if (
                    other_id != mention_id
                    and other_sim is not None
                    and (other_sim ^ sim).bit_count() <= _MAX_DISTANCE
                ):
                    return other_id
        return None


class BrandFilterPipeline:
    """Keeps a post only if a brand query matches it, with `brands` set to those brands.

    The brand queries are those of the crawl job's brands (`CrawlJob.brands`: the
    brands of its source) unless given. A post matching none is dropped and counted as `no_brand`; the
    cursor has moved past it already, as it should (it was read). Switched off by
    `BRANDPULSE_BRAND_FILTER_ENABLED` (every post then passes with no brands).
    """

    def __init__(self, crawler: Crawler | None = None, brand_queries: Any = None) -> None:
        self.crawler = crawler
        self.brand_queries = brand_queries

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BrandFilterPipeline:
        if not crawler.settings.getbool("BRANDPULSE_BRAND_FILTER_ENABLED", True):
            raise NotConfigured("BRANDPULSE_BRAND_FILTER_ENABLED is off")
        from brandpulse.query import compile_query

        job = CrawlJob.from_crawler(crawler)
        return cls(crawler, [(b.name, compile_query(b.effective_query())) for b in job.brands])

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, Mention):
            return item
        from brandpulse.query import match_brands

        brands = match_brands(
            self.brand_queries or [],
            item.body,
            url=item.url,
            author=item.author,
            language=item.language,
        )
        if not brands:
            if self.crawler is not None:
                self.crawler.stats.inc_value(f"{STATS_PREFIX}/dropped/no_brand")
            raise DropItem(f"no_brand: {item.id} matches no brand query", log_level="DEBUG")
        return item.model_copy(update={"brands": brands})


class DuplicatePipeline:
    """Drops in-run duplicates and marks reposts; the memory of recent mentions is
    `hashes_path` (`<state_dir>/<source>.hashes.json` of the crawl job; None: this
    run only)."""

    def __init__(self, crawler: Crawler, hashes_path: Path | None = None) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        settings = crawler.settings
        self.keep = settings.getint("BRANDPULSE_RECENT_HASHES", 20000)
        self.max_age = settings.getfloat("BRANDPULSE_RECENT_HASH_DAYS", 7) * 86400
        self.seen_ids: set[str] = set()
        self.index = RecentHashes()
        self.path = hashes_path

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DuplicatePipeline:
        job = CrawlJob.from_crawler(crawler)
        return cls(crawler, job.state_dir / f"{job.source_name}.hashes.json")

    def open_spider(self) -> None:
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entries = data["entries"]
        except (OSError, ValueError, KeyError, TypeError):
            return  # no or unreadable memory: only in-run duplicates are found
        cutoff = time.time() - self.max_age
        for entry in entries[-self.keep :]:
            try:
                mention_id, exact, sim, seen = entry
            except (TypeError, ValueError):
                continue
            if isinstance(seen, int | float) and seen >= cutoff:
                self.index.add(str(mention_id), exact, int(sim) if sim is not None else None, seen)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, Mention):
            return item
        mention_id = item.id
        if mention_id in self.seen_ids:
            self.stats.inc_value(f"{STATS_PREFIX}/dropped/duplicate_in_run")
            raise DropItem(
                f"duplicate_in_run: {mention_id} was already yielded in this crawl",
                log_level="DEBUG",  # counted in stats; one line per item would drown the log
            )
        self.seen_ids.add(mention_id)
        normalised = normalise_for_hash(item.body)
        exact = exact_hash(normalised) if len(normalised) >= _MIN_EXACT_CHARS else None
        tokens = normalised.split()
        sim = simhash(tokens) if len(tokens) >= _MIN_SIMHASH_TOKENS else None
        original = self.index.find(mention_id, exact, sim)
        self.index.add(mention_id, exact, sim, time.time())
        if original is not None and item.duplicate_of is None:
            self.stats.inc_value(f"{STATS_PREFIX}/marked_duplicate")
            return item.model_copy(update={"duplicate_of": original})
        return item

    def close_spider(self) -> None:
        if self.path is None:
            return
        entries = [list(e) for e in self.index.entries[-self.keep :]]
        atomic_write_json(self.path, {"version": 1, "entries": entries})


class JsonLinesOutputPipeline:
    """Appends each mention as one JSON line to the crawl job's `output` (flushed per line,
    so whatever was collected before a crash is still handed over).

    Counts `brandpulse/output/written` and `brandpulse/output/errors`: a mention
    that could not be written means the crawl's cursor must not advance
    (`crawlers.extensions.CursorWriter` checks)."""

    def __init__(self, path: str, crawler: Crawler | None = None) -> None:
        self.path = Path(path)
        self.crawler = crawler
        self.file: IO[str] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> JsonLinesOutputPipeline:
        path = CrawlJob.from_crawler(crawler).output
        if path is None:
            raise NotConfigured("the crawl job has no output")
        return cls(str(path), crawler)

    def _count(self, what: str) -> None:
        if self.crawler is not None:
            self.crawler.stats.inc_value(f"{STATS_PREFIX}/output/{what}")

    def open_spider(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = self.path.open("a", encoding="utf-8")

    def process_item(self, item: Any) -> Any:
        if isinstance(item, Mention):
            if self.file is None:
                self._count("errors")
                raise DropItem(f"output {self.path} is not open; {item.id} not written")
            try:
                self.file.write(item.model_dump_json() + "\n")
                self.file.flush()
            except (OSError, ValueError):
                self._count("errors")
                raise
            self._count("written")
        return item

    def close_spider(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
