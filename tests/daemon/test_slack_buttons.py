"""The daemon runs the Slack button listener when `slack.app_token` is set.

Real parts: the daemon's start/stop, the session's Elasticsearch node, slack-sdk's
Socket Mode client against `sandbox.slack`'s WebSocket server.
"""

from __future__ import annotations

import time
import uuid

from brandpulse.config import parse_config
from daemon.service import Daemon
from sandbox.slack import SlackSandbox


def test_the_daemon_listens_for_the_buttons_and_lets_go_when_stopped(es_node, tmp_path):
    with SlackSandbox() as slack:
        config = parse_config({
            "brands": [{"name": "Acme"}],
            "elasticsearch": {"hosts": [es_node.url], "index_prefix": f"t{uuid.uuid4().hex[:10]}"},
            "slack": {"token": slack.token, "channel": slack.channel, "base_url": slack.base_url,
                      "app_token": slack.app_token},
            "alerts": {"enabled": False},
            "health": {"enabled": False},
            "daemon": {"state_dir": str(tmp_path / "state"), "http_port": 0},
        }, env={})  # fmt: skip
        daemon = Daemon(config)
        daemon.start()
        try:
            assert daemon.slack_actions is not None
            assert slack.wait_connected()
            # a click on something the outbox does not know is acknowledged and ignored
            ack = slack.send_envelope({"type": "block_actions", "actions": []})
            assert ack["envelope_id"]
        finally:
            daemon.stop()
        deadline = time.monotonic() + 60
        while slack.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slack.connected == 0


def test_without_an_app_token_there_is_no_listener(es_node, tmp_path):
    config = parse_config({
        "brands": [{"name": "Acme"}],
        "elasticsearch": {"hosts": [es_node.url], "index_prefix": f"t{uuid.uuid4().hex[:10]}"},
        "alerts": {"enabled": False}, "health": {"enabled": False},
        "daemon": {"state_dir": str(tmp_path / "state"), "http_port": 0},
    }, env={})  # fmt: skip
    daemon = Daemon(config)
    daemon.start()
    try:
        assert daemon.slack_actions is None
    finally:
        daemon.stop()
