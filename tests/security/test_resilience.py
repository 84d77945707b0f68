"""Elasticsearch down when the daemon starts: it starts anyway, crawled mentions wait
in the spool, the outage is logged once (not once per check), and when Elasticsearch
comes up the set-up is finished and the spool delivered, with one line saying so.

Real parts: the session's Elasticsearch node, reached through a TCP proxy that is
simply not listening yet (the "down" phase) and then started on the same port; the
default model; `scheduler.py run` as a subprocess.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from brandpulse.config import parse_config
from brandpulse.mention import Mention
from daemon.service import Daemon
from tests.security.tls_proxy import TcpProxy

REPO = Path(__file__).resolve().parents[2]


def _events(caplog, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == name]


def test_daemon_starts_spools_and_delivers_after_elasticsearch_comes_up(
    es_node, tmp_path, caplog, closed_port
):
    caplog.set_level(logging.DEBUG, logger="brandpulse")
    port = closed_port  # the proxy to the real node will listen here, later
    prefix = f"resil{uuid.uuid4().hex[:8]}"
    config = parse_config(
        {
            "brands": [{"name": "Acme"}],
            "elasticsearch": {"hosts": [f"http://127.0.0.1:{port}"], "index_prefix": prefix,
                              "spool_dir": str(tmp_path / "spool"), "request_timeout": "60s"},
            "alerts": {"enabled": True},
            "daemon": {"state_dir": str(tmp_path / "state"), "http_port": 0},
        },
        env={},
    )  # fmt: skip
    daemon = Daemon(config)
    try:
        daemon.start()  # used to raise ConnectionError (and `run` exited 1)
        assert daemon.scheduler.running
        mention = Mention(source="hackernews", source_id="1", source_name="hn", brands=["Acme"],
                          text="Acme lost my order", created_at=datetime.now(UTC))  # fmt: skip
        report = daemon.pipeline.ingest("hn", [mention])
        assert report.write.spooled == 1 and report.write.indexed == 0
        assert daemon.writer.pending() == 1
        # checks and housekeeping during the outage: no traceback, no repeated warning
        for _ in range(3):
            daemon.alert_job()
            daemon.housekeeping_job()
        down = _events(caplog, "elasticsearch.unavailable")
        assert len(down) == 1 and down[0].levelno == logging.WARNING
        reason = down[0].event_fields["reason"]
        assert f"127.0.0.1:{port}" in reason and "refused the connection" in reason
        # (the transport's own per-retry tracebacks are silenced by configure_logging,
        # which `run` calls; the subprocess test below sees the whole log)
        ours = [r for r in caplog.records if not r.name.startswith(("elastic_transport", "elasticsearch"))]
        assert not [r for r in ours if r.levelno >= logging.WARNING and r.exc_info]
        assert daemon.health()["status"] == "degraded"

        with TcpProxy(es_node.url.split("//", 1)[1], port=port):
            daemon.housekeeping_job()  # finishes the set-up, then replays the spool
            assert daemon.writer.pending() == 0
            assert len(_events(caplog, "elasticsearch.recovered")) == 1
            alias = f"{prefix}-mentions"
            daemon.client.indices.refresh(index=alias)
            hits = daemon.client.search(index=alias)["hits"]["hits"]
            assert [h["_id"] for h in hits] == [mention.id]
            assert hits[0]["_source"]["sentiment"]["label"] in {"negative", "neutral", "positive"}
            # the template was installed before the replay: the mapping is ours, not dynamic
            mapping = daemon.client.indices.get_mapping(index=alias)
            assert next(iter(mapping.values()))["mappings"]["dynamic"] == "strict"
            daemon.alert_job()
            assert len(_events(caplog, "elasticsearch.unavailable")) == 1
    finally:
        daemon.stop()


def test_run_starts_when_elasticsearch_is_down_and_stops_cleanly(tmp_path: Path, closed_port: int):
    config = tmp_path / "config.yaml"
    config.write_text(
        "brands: [{name: Acme}]\n"
        f"elasticsearch: {{hosts: ['http://127.0.0.1:{closed_port}'], spool_dir: spool}}\n"
        "alerts: {enabled: false}\n"
        "daemon: {state_dir: state, http_port: 0}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scheduler.py"), "run", "--config", str(config)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        lines: list[str] = []
        assert proc.stderr is not None
        while time.monotonic() < deadline:
            line = proc.stderr.readline().decode()
            if not line:
                break
            lines.append(line)
            if "event=daemon.started" in line:
                break
        assert any("event=daemon.started" in line for line in lines), "".join(lines)
        assert proc.poll() is None, "the daemon exited although it should run"
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=120)[1].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(lines) + rest
    assert proc.returncode == 0, text
    assert text.count("event=elasticsearch.unavailable") == 1, text
    assert "Traceback" not in text
    # the relative spool_dir landed in the directory the daemon runs in
    assert (tmp_path / "spool").is_dir()
