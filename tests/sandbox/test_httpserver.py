"""sandbox.httpserver: the HTTP plumbing the Slack and bot sandboxes share."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from sandbox.bots import BotSandbox
from sandbox.httpserver import SandboxHandler, ThreadedServer
from sandbox.slack import SlackSandbox

ROOT = Path(__file__).resolve().parents[2]


class _Echo(SandboxHandler):
    def do_GET(self) -> None:
        self.reply_json(200, {"owner": self.owner, "path": self.path}, {"X-Seen": "1"})


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_each_server_binds_its_own_free_port_answers_for_its_owner_and_stops(capsys):
    first = ThreadedServer("127.0.0.1", 0, _Echo, "first", name="t1")
    second = ThreadedServer("127.0.0.1", 0, _Echo, "second", name="t2")
    try:
        assert first.port != second.port and 0 not in (first.port, second.port)
        for server, owner in ((first, "first"), (second, "second")):
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/x?y=1", timeout=10) as resp:
                body = resp.read()
                assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
                assert resp.headers["Content-Length"] == str(len(body))
                assert resp.headers["X-Seen"] == "1"
            assert json.loads(body) == {"owner": owner, "path": "/x?y=1"}
    finally:
        first.stop()
        second.stop()
    assert _refused(first.port) and _refused(second.port)
    assert capsys.readouterr().err == ""  # no request lines on stderr: the sandboxes keep their own log


def test_the_slack_and_bot_sandboxes_serve_through_it():
    with SlackSandbox() as slack, BotSandbox() as bots:
        for url, text in ((slack.url, "slack sandbox\n"), (bots.url, "bot sandbox\n")):
            with urllib.request.urlopen(f"{url}/health", timeout=10) as resp:
                assert resp.read().decode() == text
        slack_port, bots_port = slack.port, int(bots.url.rsplit(":", 1)[1])
    assert _refused(slack_port) and _refused(bots_port)


def test_bot_sandbox_command_line_on_port_0_says_its_port_and_stops_on_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.bots", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Bot sandbox listening."), first
        found = re.search(r"http://127\.0\.0\.1:(\d+)/hooks/brandpulse", proc.stdout.readline())
        assert found and found.group(1) != "0"
        with urllib.request.urlopen(f"http://127.0.0.1:{found.group(1)}/health", timeout=10) as resp:
            assert resp.read() == b"bot sandbox\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
