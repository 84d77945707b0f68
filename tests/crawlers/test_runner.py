"""crawlers.runner / crawlers.run / crawlers.job: hand-off, cursor commit, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from brandpulse.config import load_config, parse_config
from brandpulse.mention import Mention
from crawlers.job import CrawlJob
from crawlers.run import main as run_main
from crawlers.runner import REPO_ROOT, run_crawl
from tests.crawlers.conftest import TEST_SETTINGS, Reply

SEARCH = "/api/v1/search_by_date"
BRANDS = [{"name": "Acme", "query": "acme"}]


def serve(api_server) -> None:
    api_server.add(SEARCH, Reply.fixture("hackernews", "search_page0.json"), when={"page": "0"})
    api_server.add(SEARCH, Reply.fixture("hackernews", "search_page1.json"), when={"page": "1"})


def test_cursor_advances_only_when_the_parent_commits(api_server, crawl, tmp_path):
    serve(api_server)
    cursor = tmp_path / "state" / "test-hackernews.cursor.json"
    first = crawl({"type": "hackernews"}, brands=BRANDS, commit=False)
    assert len(first.mentions) == 3 and not cursor.exists()
    # The parent "died" before committing: the next crawl re-fetches the same posts.
    again = crawl({"type": "hackernews"}, brands=BRANDS, commit=False)
    assert sorted(m.id for m in again.mentions) == sorted(m.id for m in first.mentions)
    assert again.commit_cursor() is True and cursor.exists()
    assert again.commit_cursor() is False  # once only
    entry = json.loads(cursor.read_text())["queries"]["brand:Acme|term:acme"]
    assert entry["since"] == "2024-01-02T10:00:00+00:00" and entry["ids"] == ["38867001"]
    assert entry["recent"] == [["38867001", 1704189600.0]]  # ids in the 5-minute overlap
    assert crawl({"type": "hackernews"}, brands=BRANDS).mentions == []
    assert not list((tmp_path / "state").glob("*pending*"))  # nothing left behind


def test_configuration_problems_are_found_before_a_crawl(tmp_path, capsys):
    config = parse_config(
        {"brands": BRANDS, "sources": [{"type": "hackernews", "name": "hn"}]}, env={}
    )
    with pytest.raises(ValueError, match="no source named 'nope'"):
        CrawlJob.from_config(config, "nope", state_dir=tmp_path)
    assert run_main(["--config", str(tmp_path / "missing.yaml"), "--source", "hn"]) == 2
    assert "file not found" in capsys.readouterr().err


def test_a_child_that_cannot_start_is_an_error_with_its_reason(api_server, tmp_path):
    config = parse_config(
        {
            "brands": BRANDS,
            "sources": [{"type": "hackernews", "name": "hn", "base_url": api_server.base_url}],
            "crawl": {"allowed_private_endpoints": [api_server.endpoint]},
        },
        env={},
    )
    result = run_crawl(
        CrawlJob.from_config(config, "hn", state_dir=tmp_path), timeout=20,
        settings={**TEST_SETTINGS, "ITEM_PIPELINES": {"crawlers.no_such_module.Pipeline": 100}},
    )  # fmt: skip
    assert result.error is not None and "exit code 1" in result.error
    assert "no_such_module" in result.error
    assert result.commit_cursor() is False


def write_config(api_server, tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "brands": BRANDS,
                "sources": [
                    {
                        "type": "hackernews",
                        "name": "hn",
                        "base_url": api_server.base_url,
                        "lookback": "3650d",
                    }
                ],
                "daemon": {"state_dir": str(tmp_path / "state")},
                "crawl": {"allowed_private_endpoints": [api_server.endpoint]},
            }
        )
    )
    return path


def test_command_line_writes_jsonl_and_commits(api_server, tmp_path):
    serve(api_server)
    config = write_config(api_server, tmp_path)
    out = tmp_path / "mentions.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "crawlers.run", "--config", str(config), "--source", "hn", "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    mentions = [Mention.model_validate_json(line) for line in out.read_text().splitlines()]
    assert sorted(m.source_id for m in mentions) == ["38866001", "38866950", "38867001"]
    assert json.loads(proc.stderr[proc.stderr.index("{") :])["yielded"] == 3
    assert (tmp_path / "state" / "hn.cursor.json").exists()


def test_a_crawl_runs_the_job_it_was_given_not_the_file(api_server, tmp_path):
    """The job is built from the configuration in memory; the file it came from may be
    edited or deleted before the crawl (a running daemon's config file): the crawl
    still searches the job's source for the job's brands."""
    serve(api_server)
    path = write_config(api_server, tmp_path)
    job = CrawlJob.from_config(load_config(path), "hn")
    edited = yaml.safe_load(path.read_text())
    edited["brands"] = [{"name": "Globex", "query": "globex"}]
    edited["sources"][0]["base_url"] = "http://127.0.0.1:9"  # nothing listens there
    path.write_text(yaml.safe_dump(edited))
    changed = run_crawl(job, timeout=60, settings=TEST_SETTINGS)
    assert changed.error is None and len(changed.mentions) == 3
    assert {b for m in changed.mentions for b in m.brands} == {"Acme"}
    path.unlink()
    deleted = run_crawl(job, timeout=60, settings=TEST_SETTINGS)
    assert deleted.error is None and len(deleted.mentions) == 3


def test_the_job_crosses_with_its_secrets_and_never_as_a_file(tmp_path):
    config = parse_config(
        {"brands": BRANDS, "sources": [{"type": "stackexchange", "name": "se", "key": "k-s3cret-42"}]},
        env={},
    )
    job = CrawlJob.from_config(config, "se", state_dir=tmp_path)
    assert "k-s3cret-42" not in repr(job) and "k-s3cret-42" not in job.model_dump_json()
    again = CrawlJob.from_wire(job.to_wire())
    assert again == job and again.source.key.get_secret_value() == "k-s3cret-42"


def test_scrapy_crawl_without_a_job_says_how_to_run_a_crawl(tmp_path):
    env = dict(os.environ)
    env.pop("SCRAPY_SETTINGS_MODULE", None)  # found through scrapy.cfg
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "hackernews"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "no crawl job" in proc.stderr and "python -m crawlers.run" in proc.stderr
