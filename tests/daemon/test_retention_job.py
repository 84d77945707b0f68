"""`scheduler.py retention [--dry-run]` and the daemon's daily retention job, against
the session's real Elasticsearch node with a config file on disk."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from apscheduler.triggers.interval import IntervalTrigger
from elasticsearch import Elasticsearch

from brandpulse.config import load_config
from daemon.cli import main
from daemon.service import Daemon
from store.retention import list_mention_indices
from store.setup import ensure_index, install_templates

NOW = "2026-12-15T12:00:00+00:00"  # keep 13 months: cutoff 2025-11-15 12:00 UTC


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def cluster(es_node, es_client: Elasticsearch, tmp_path: Path) -> Iterator[dict]:
    """A config (as a dict) whose prefix has one old and one kept index."""
    prefix = f"ret{uuid.uuid4().hex[:8]}"
    data = {
        "brands": [{"name": "Acme"}],
        "elasticsearch": {"hosts": [es_node.url], "index_prefix": prefix,
                          "spool_dir": str(tmp_path / "spool"),
                          "retention": {"keep": "13 months"}},
        "alerts": {"enabled": False},
        "daemon": {"state_dir": str(tmp_path / "state")},
    }  # fmt: skip
    config = load_config(_write(tmp_path / "config.yaml", data), env={})
    install_templates(es_client, config.elasticsearch)
    for suffix in ("2025.01", "2025.11.20"):
        ensure_index(es_client, f"{prefix}-mentions-{suffix}")
    yield data
    names = es_client.indices.get(index=f"{prefix}-*", allow_no_indices=True, expand_wildcards="all")
    if names:
        es_client.indices.delete(index=",".join(names))
    es_client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-mentions")


def test_cli_dry_run_lists_then_the_real_run_deletes(cluster, es_client, tmp_path, capsys):
    prefix = cluster["elasticsearch"]["index_prefix"]
    path = tmp_path / "config.yaml"
    assert main(["retention", "--dry-run", "--at", NOW, "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"would be deleted: {prefix}-mentions-2025.01" in out
    assert "2025.11.20" not in out.split("kept:")[0]
    assert set(list_mention_indices(es_client, prefix)) == {
        f"{prefix}-mentions-2025.01", f"{prefix}-mentions-2025.11.20"
    }
    assert main(["retention", "--at", NOW, "-c", str(path)]) == 0
    assert f"deleted: {prefix}-mentions-2025.01" in capsys.readouterr().out
    assert set(list_mention_indices(es_client, prefix)) == {f"{prefix}-mentions-2025.11.20"}


def test_cli_without_retention_says_so(cluster, tmp_path, capsys):
    data = {**cluster, "elasticsearch": {k: v for k, v in cluster["elasticsearch"].items()
                                         if k != "retention"}}  # fmt: skip
    path = _write(tmp_path / "plain.yaml", data)
    assert main(["retention", "-c", str(path)]) == 2
    assert "elasticsearch.retention is not set" in capsys.readouterr().err


def test_the_daemon_schedules_retention_daily_and_runs_it_at_start(cluster, es_client, tmp_path):
    # keep 1 month from the real now: 2025.01 is old, and so is the 2025.11.20 day
    data = {**cluster, "elasticsearch": {**cluster["elasticsearch"], "retention": {"keep": "1 month"}}}
    prefix = data["elasticsearch"]["index_prefix"]
    daemon = Daemon(load_config(_write(tmp_path / "daemon.yaml", data), env={}))
    try:
        daemon.start()
        job = daemon.scheduler.get_job("retention")
        assert isinstance(job.trigger, IntervalTrigger)
        assert job.trigger.interval.total_seconds() == 86400
        # the first run is due at start; wait for its effect (no bound on speed asserted)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            left = set(list_mention_indices(es_client, prefix))
            if not left & {f"{prefix}-mentions-2025.01", f"{prefix}-mentions-2025.11.20"}:
                break
            time.sleep(0.5)
        # only the current month's index, which the daemon's set-up created, is left
        assert len(left) == 1 and not left & {f"{prefix}-mentions-2025.01"}, left
    finally:
        daemon.stop()


def test_the_daemon_has_no_retention_job_unless_configured(cluster, tmp_path):
    data = {**cluster, "elasticsearch": {k: v for k, v in cluster["elasticsearch"].items()
                                         if k != "retention"}}  # fmt: skip
    daemon = Daemon(load_config(_write(tmp_path / "plain.yaml", data), env={}))
    try:
        daemon.start()
        assert daemon.scheduler.get_job("retention") is None
    finally:
        daemon.stop()
