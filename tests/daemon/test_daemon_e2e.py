"""The daemon over several cycles, as a real process, against real parts.

Local servers answering like Reddit, Hacker News and Mastodon; the real
Elasticsearch node; the real default model; the local Slack. Checked: mentions
arrive and are scored and indexed exactly once; exactly one alert reaches Slack
for the negative wave; SIGTERM in the middle of the wave stops the daemon within
its bound and loses nothing; a restart sends no duplicate.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from daemon.demo import demo_config, is_spike_message
from sandbox.corpus import build_corpus, publish_burst
from sandbox.slack import SlackSandbox
from sandbox.sources import SourcesServer

REPO = Path(__file__).resolve().parents[2]
SHUTDOWN_BOUND = 30.0


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class DaemonProcess:
    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "scheduler.py", "run", "--config", str(config_path)],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def terminate(self) -> float:
        """SIGTERM; returns how long the daemon took to exit."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=SHUTDOWN_BOUND + 30)
        finally:
            self._log.close()
        assert code == 0, f"daemon exited with {code}:\n{self.log()[-3000:]}"
        return time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def world(es_node, es_client, tmp_path) -> Iterator[dict]:
    prefix = f"e2e{uuid.uuid4().hex[:8]}"
    corpus = build_corpus(datetime.now(UTC))
    with SlackSandbox() as slack, SourcesServer() as sources:
        sources.publish(corpus.history)
        data = demo_config(es_node.url, sources.base_urls(), slack.base_url, tmp_path, index_prefix=prefix)
        data["daemon"]["log_format"] = "json"
        config_path = tmp_path / "config.yaml"
        config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        yield {
            "prefix": prefix, "corpus": corpus, "slack": slack, "sources": sources,
            "config": config_path, "tmp": tmp_path, "es": es_client,
        }  # fmt: skip


def _indexed(es, prefix: str) -> list[dict]:
    alias = f"{prefix}-mentions"
    if not es.indices.exists_alias(name=alias):
        return []
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=1000, query={"match_all": {}})["hits"]["hits"]
    return [h["_source"] for h in hits]


def _spike_messages(slack: SlackSandbox) -> list:
    # Top-level messages about a spike (not thread replies, not high-reach alerts).
    return [m for m in slack.messages if is_spike_message(m)]


def test_daemon_cycles_alert_once_survive_sigterm_and_restart(world):
    es, prefix, slack, sources, corpus = (
        world["es"], world["prefix"], world["slack"], world["sources"], world["corpus"],
    )  # fmt: skip
    expected_history = {p.id for p in corpus.history if p.tone != "noise"}

    first = DaemonProcess(world["config"], world["tmp"] / "daemon1.log")
    try:
        # Cycle 1..n: the history is crawled, scored and indexed.
        _wait(lambda: len(_indexed(es, prefix)) >= len(expected_history), 300, "the history indexed")
        docs = _indexed(es, prefix)
        assert len(docs) == len(expected_history), "each post indexed exactly once"
        assert all(d.get("sentiment", {}).get("label") for d in docs), "every mention scored"
        assert not any("Acme Thread" in d["text"] for d in docs), "the brand query's NOT filtered"
        assert {d["source"] for d in docs} == {"reddit", "hackernews", "mastodon"}

        # The wave: published over 30 s; the alert follows.
        wave = publish_burst(corpus.burst, datetime.now(UTC) + timedelta(seconds=30), timedelta(seconds=30))
        sources.publish(wave)
        _wait(lambda: len(_spike_messages(slack)) >= 1, 300, "the spike alert on Slack")
        # SIGTERM while the daemon is busy (crawls every 10 s, checks every 10 s).
        took = first.terminate()
    except BaseException:
        first.kill()
        print(first.log()[-5000:])
        raise
    assert took < SHUTDOWN_BOUND + 5, f"shutdown took {took:.1f}s"
    assert '"event": "daemon.stopped"' in first.log()

    # Restart: the cursor and the alert state carry over.
    second = DaemonProcess(world["config"], world["tmp"] / "daemon2.log")
    try:
        total = len(expected_history) + len(wave)
        _wait(lambda: len(_indexed(es, prefix)) >= total, 180, "the whole wave indexed")
        # A few more cycles of crawls and alert checks.
        _wait(lambda: second.log().count('"event": "crawl.finished"') >= 6, 180, "more crawl cycles")
        second.terminate()
    except BaseException:
        second.kill()
        print(second.log()[-5000:])
        raise

    docs = _indexed(es, prefix)
    assert len(docs) == total, "nothing lost, nothing doubled across SIGTERM and restart"
    assert len({d["id"] for d in docs}) == total
    spikes = _spike_messages(slack)
    assert len(spikes) == 1, [m.text for m in spikes]
    rendered = "\n".join(spikes[0].block_texts())
    assert "Acme" in rendered
    # The top negative posts quoted are the wave's own (English or Chinese).
    quoted = {p.text[:18] for p in wave if p.text[:18] in rendered}
    assert len(quoted) >= 2, rendered
