"""A crawl that read nothing says so: exit code, summary, WARNING lines in the parent."""

from __future__ import annotations

import logging
import subprocess
import sys

import yaml

from crawlers.runner import REPO_ROOT
from tests.crawlers.conftest import Reply
from tests.crawlers.sources_helpers import BRANDS

SEARCH = "/api/v1/search_by_date"


def hn(**extra):
    return {"type": "hackernews", "name": "hn", "lookback": "3650d", **extra}


def test_every_request_failing_is_reported_and_logged_in_the_parent(api_server, crawl, caplog):
    api_server.add(SEARCH, Reply.json({"message": "internal error"}, status=500))
    with caplog.at_level(logging.WARNING, logger="crawlers.runner"):
        result = crawl(hn(), brands=BRANDS, commit=False)
    assert result.error is None  # the crawl ran; the source failed
    assert result.read_nothing
    problem = result.problem()
    assert problem.startswith("no page of source 'hn' could be read")
    assert "http_500" in problem and "internal error" in problem
    relayed = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("had faults: http_500" in line for line in relayed), relayed


def test_a_crawl_that_read_pages_is_not_a_failure(api_server, crawl):
    api_server.add(SEARCH, Reply.json({"hits": [], "nbPages": 1, "page": 0}))
    result = crawl(hn(), brands=BRANDS)
    assert result.mentions == [] and not result.read_nothing and result.problem() is None


def test_scheduler_crawl_exits_non_zero_when_nothing_could_be_read(api_server, tmp_path):
    api_server.add(SEARCH, Reply.json({"message": "internal error"}, status=500))
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "brands": BRANDS,
                "sources": [hn(base_url=api_server.base_url)],
                "daemon": {"state_dir": str(tmp_path / "state")},
                "crawl": {"allowed_private_endpoints": [api_server.endpoint]},
            }
        )
    )
    proc = subprocess.run(
        [sys.executable, "scheduler.py", "crawl", "hn", "--config", str(config), "--no-score", "--commit"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, (proc.stdout, proc.stderr[-2000:])
    assert "hn: 0 mention(s)" in proc.stdout
    assert "error: no page of source 'hn' could be read" in proc.stderr
    assert "had faults: http_500" in proc.stderr  # the child's warning, relayed
    assert not (tmp_path / "state" / "hn.cursor.json").exists()
