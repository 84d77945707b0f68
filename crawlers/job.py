"""`CrawlJob`: everything one crawl of one source needs, as one frozen value.

The daemon (or `python -m crawlers.run`, or `scheduler.py crawl`) builds it once
from the configuration it holds in memory with `CrawlJob.from_config`, and the
runner hands it to the crawl child process as JSON over the child's stdin. The
child puts it into the Scrapy settings (`BRANDPULSE_CRAWL_JOB`), where the spider,
pipelines and extensions read it in their `from_crawler` with
`CrawlJob.from_crawler(crawler)`. It is the only way configuration reaches a
crawl: the child never reads a config file, so a crawl sees exactly the
configuration the daemon runs with, even if the file changed or vanished since.

Secrets (a source's API key, token, cookie) travel inside the job: they are
written only to the child's stdin pipe (never to a file, the command line or the
environment) and stay `SecretStr` in both processes, so a log line or repr
shows `**********`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr
from pydantic_core import to_json

from brandpulse.config import BrandConfig, Config, CrawlConfig, SourceConfig

__all__ = ["SETTING", "CrawlJob"]

# The Scrapy setting that carries the job inside the crawl process.
SETTING = "BRANDPULSE_CRAWL_JOB"


class CrawlJob(BaseModel):
    """One crawl of one source: what to crawl, for which brands, where state and
    output go. Frozen: a crawl cannot change what it was asked to do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: SourceConfig
    # The brands this source searches for (`source.brands`, default all of them).
    brands: tuple[BrandConfig, ...]
    # Where the crawl may connect (the egress policy's allowances).
    crawl: CrawlConfig = CrawlConfig()
    # Cursor and duplicate-hash files of the source.
    state_dir: Path
    # JSONL file receiving the mentions (None: the mentions are not kept).
    output: Path | None = None
    # JSON file receiving the per-source summary at close.
    stats_file: Path | None = None
    # Where the cursor the crawl reached is left *pending* for the parent to
    # commit once it has the mentions (the runner sets it).
    cursor_pending: Path | None = None
    # Without `cursor_pending`: commit the cursor at close, and only when the
    # mentions went to `output` without a write error.
    commit_cursor: bool = True

    @classmethod
    def from_config(
        cls, config: Config, source_name: str, *, state_dir: str | Path | None = None
    ) -> CrawlJob:
        """The job of crawling `source_name` as `config` says; ValueError for a source
        the config does not have. `state_dir` defaults to `daemon.state_dir`."""
        source = next((s for s in config.sources if s.name == source_name), None)
        if source is None:
            names = [s.name for s in config.sources]
            raise ValueError(f"no source named {source_name!r} in the config (have {names})")
        wanted = source.brands
        return cls(
            source=source,
            brands=tuple(b for b in config.brands if wanted is None or b.name in wanted),
            crawl=config.crawl,
            state_dir=Path(state_dir) if state_dir is not None else config.daemon.state_dir,
        )

    @property
    def source_name(self) -> str:
        return self.source.name

    def to_wire(self) -> bytes:
        """The job as JSON *with secrets revealed*: only for the child's stdin pipe.

        `model_dump_json` would write `**********` for every secret; the values are
        revealed here and nowhere else, and `from_wire` makes them `SecretStr` again."""
        return to_json(_reveal(self.model_dump(mode="python")))

    @classmethod
    def from_wire(cls, data: bytes | str) -> CrawlJob:
        return cls.model_validate_json(data)

    @classmethod
    def from_crawler(cls, crawler: Any) -> CrawlJob:
        """The job of the crawl `crawler` runs (its `BRANDPULSE_CRAWL_JOB` setting)."""
        job = crawler.settings.get(SETTING)
        if not isinstance(job, CrawlJob):
            raise ValueError(
                f"no crawl job in the Scrapy settings ({SETTING}): run a crawl with "
                "`python -m crawlers.run --config FILE --source NAME` or "
                "`crawlers.runner.run_crawl(CrawlJob.from_config(config, name))`"
            )
        return job


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reveal(v) for v in value]
    return value
