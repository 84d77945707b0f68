"""The Slack sandbox speaks Slack's wire format to any HTTP client, not only slack-sdk."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk import WebClient

from alerts.notifiers.slack_text import render_blocks
from sandbox.slack import SlackSandbox, validate_blocks

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        yield sandbox


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def api_json(
    slack: SlackSandbox, method: str, payload: dict[str, Any], token: str | None = None
) -> dict:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    status, _, body = post(slack.base_url + method, json.dumps(payload).encode(), headers)
    assert status == 200  # Slack reports API errors in the body, with HTTP 200
    return json.loads(body)


def test_post_message_json_with_bearer(slack):
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}]
    answer = api_json(
        slack,
        "chat.postMessage",
        {"channel": slack.channel, "text": "hi", "blocks": blocks},
        slack.token,
    )
    assert answer["ok"] is True
    assert answer["channel"] == slack.channel
    assert answer["ts"] == "1700000000.000100"
    assert answer["message"]["blocks"] == blocks
    [message] = slack.messages
    assert message.text == "hi" and message.blocks == blocks and message.via == "api"


def test_post_message_form_encoded_with_token_field_and_channel_name(slack):
    body = urlencode(
        {
            "token": slack.token,
            "channel": "#brand-alerts",
            "text": "form",
            "blocks": json.dumps([{"type": "divider"}]),
        }
    ).encode()
    status, _, raw = post(
        slack.base_url + "chat.postMessage",
        body,
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    answer = json.loads(raw)
    assert status == 200 and answer["ok"] and answer["channel"] == slack.channel
    assert slack.messages[0].blocks == [{"type": "divider"}]


def test_timestamps_increase_and_threads_must_exist(slack):
    first = api_json(
        slack, "chat.postMessage", {"channel": slack.channel, "text": "a"}, slack.token
    )
    reply = api_json(
        slack,
        "chat.postMessage",
        {"channel": slack.channel, "text": "b", "thread_ts": first["ts"]},
        slack.token,
    )
    assert float(reply["ts"]) > float(first["ts"])
    assert slack.replies(first["ts"])[0].text == "b"
    lost = api_json(
        slack,
        "chat.postMessage",
        {"channel": slack.channel, "text": "c", "thread_ts": "1.000000"},
        slack.token,
    )
    assert lost == {"ok": False, "error": "thread_not_found"}


@pytest.mark.parametrize(
    ("token", "channel", "error"),
    [
        (None, "C0SANDBOX01", "not_authed"),
        ("xoxb-wrong", "C0SANDBOX01", "invalid_auth"),
        ("xoxb-sandbox-token", "C0NOPE", "channel_not_found"),
    ],
)
def test_errors_like_slack(slack, token, channel, error):
    answer = api_json(slack, "chat.postMessage", {"channel": channel, "text": "x"}, token)
    assert answer == {"ok": False, "error": error}
    assert not slack.messages
    assert slack.requests[-1].error == error


def test_auth_test(slack):
    assert api_json(slack, "auth.test", {}, slack.token)["team"] == "BrandPulse Sandbox"
    assert api_json(slack, "auth.test", {}, "xoxb-wrong") == {"ok": False, "error": "invalid_auth"}


def test_rejects_what_slack_rejects(slack):
    too_many = [{"type": "divider"}] * 51
    answer = api_json(
        slack, "chat.postMessage", {"channel": slack.channel, "blocks": too_many}, slack.token
    )
    assert answer["error"] == "invalid_blocks"
    assert "too many blocks: 51 > 50" in answer["response_metadata"]["messages"]
    assert (
        api_json(slack, "chat.postMessage", {"channel": slack.channel}, slack.token)["error"]
        == "no_text"
    )
    long_text = {"channel": slack.channel, "text": "x" * 40001}
    assert api_json(slack, "chat.postMessage", long_text, slack.token)["error"] == "msg_too_long"
    assert validate_blocks([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}])
    assert validate_blocks([{"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}}])
    assert validate_blocks(
        [{"type": "actions", "elements": [{"type": "button", "url": "u" * 3001}]}]
    )
    assert not validate_blocks(
        [{"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3000}}]
    )
    assert not slack.messages


def test_webhook(slack):
    headers = {"Content-Type": "application/json"}
    status, _, body = post(slack.webhook_url, json.dumps({"text": "hooked"}).encode(), headers)
    assert (status, body) == (200, "ok")
    assert slack.messages[0].via == "webhook" and slack.messages[0].channel == slack.channel
    status, _, body = post(slack.url + "/services/T1/B1/wrong", b'{"text":"x"}', headers)
    assert (status, body) == (404, "no_service")
    status, _, body = post(slack.webhook_url, b"{not json", headers)
    assert (status, body) == (400, "invalid_payload")
    assert len(slack.messages) == 1


def test_injected_rate_limit_and_failures(slack):
    slack.rate_limit_next(retry_after=3)
    slack.fail_next(1, status=502)
    payload = json.dumps({"channel": slack.channel, "text": "x"}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {slack.token}"}
    status, got, body = post(slack.base_url + "chat.postMessage", payload, headers)
    assert (
        status == 429 and got["Retry-After"] == "3" and json.loads(body)["error"] == "ratelimited"
    )
    status, _, _ = post(slack.base_url + "chat.postMessage", payload, headers)
    assert status == 502
    slack.set_outage(503)
    assert post(slack.webhook_url, b'{"text":"x"}', {"Content-Type": "application/json"})[0] == 503
    slack.set_outage(None)
    assert post(slack.base_url + "chat.postMessage", payload, headers)[0] == 200
    assert [r.status for r in slack.requests] == [429, 502, 503, 200]
    assert len(slack.messages) == 1


def test_render_blocks_for_a_terminal():
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": ":rotating_light: Spike: Acme"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*84* negative\n>quoted &lt;b&gt;"}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Brand*\nAcme"},
                {"type": "mrkdwn", "text": "*Share*\n42%"},
            ],
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "<https://r.com/1|post> · reach 5"}],
        },
        {"type": "divider"},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open"},
                    "url": "http://k/x",
                }
            ],
        },
    ]
    assert render_blocks(blocks) == [
        "🚨 Spike: Acme",
        "═" * 13,
        "84 negative",
        "│ quoted <b>",
        "Brand: Acme   Share: 42%",
        "  post (https://r.com/1) · reach 5",
        "─" * 40,
        "[ Open ] → http://k/x",
    ]


def test_render_indents_thread_replies(slack):
    root = api_json(
        slack, "chat.postMessage", {"channel": slack.channel, "text": "root"}, slack.token
    )
    api_json(slack, "chat.postMessage", {"channel": slack.channel, "text": "other"}, slack.token)
    api_json(
        slack,
        "chat.postMessage",
        {"channel": slack.channel, "text": "reply", "thread_ts": root["ts"]},
        slack.token,
    )
    lines = slack.render().splitlines()
    assert lines[1] == "root"
    assert lines[2:5] == [
        "",
        f"    ┃ ── #brand-alerts · ts 1700000000.000300 · via api · reply in thread {root['ts']}",
        "    ┃ reply",
    ]
    assert lines[-1] == "other"


def test_command_line_prints_messages_as_they_arrive():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(  # port 0: it binds a free port and its banner says which
        [sys.executable, "-m", "sandbox.slack", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        banner = [proc.stdout.readline() for _ in range(5)]  # type: ignore[union-attr]
        found = re.search(r"http://127\.0\.0\.1:(\d+)/api/", "".join(banner))
        assert found and found.group(1) != "0", banner
        port = int(found.group(1))
        blocks = [{"type": "header", "text": {"type": "plain_text", "text": "Hello from a test"}}]
        headers = {"Content-Type": "application/json", "Authorization": "Bearer xoxb-sandbox-token"}
        body = json.dumps({"channel": "#brand-alerts", "text": "x", "blocks": blocks}).encode()
        status, _, _ = post(f"http://127.0.0.1:{port}/api/chat.postMessage", body, headers)
        assert status == 200
        deadline = time.monotonic() + 10
        seen = ""
        while "Hello from a test" not in seen and time.monotonic() < deadline:
            seen += proc.stdout.readline()  # type: ignore[union-attr]
        assert "── #brand-alerts · ts 1700000000.000100 · via api" in seen
        assert "Hello from a test" in seen
    finally:
        # SIGTERM, not SIGINT: pytest may itself run as a background job with SIGINT
        # ignored, which the child would inherit.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert proc.returncode == 0


def test_conversations_history_and_replies(slack):
    meta = {"event_type": "brandpulse_alert", "event_payload": {"alert_id": "a1"}}
    root = api_json(
        slack,
        "chat.postMessage",
        {"channel": slack.channel, "text": "root", "metadata": meta},
        slack.token,
    )
    api_json(
        slack,
        "chat.postMessage",
        {"channel": slack.channel, "text": "r1", "thread_ts": root["ts"]},
        slack.token,
    )
    api_json(
        slack,
        "chat.postMessage",
        {"channel": slack.channel, "text": "r2", "thread_ts": root["ts"], "reply_broadcast": True},
        slack.token,
    )
    api_json(slack, "chat.postMessage", {"channel": slack.channel, "text": "later"}, slack.token)

    history = api_json(slack, "conversations.history", {"channel": slack.channel}, slack.token)
    assert [m["text"] for m in history["messages"]] == ["later", "r2", "root"]  # newest first
    assert "metadata" not in history["messages"][-1]
    with_meta = api_json(
        slack,
        "conversations.history",
        {"channel": slack.channel, "include_all_metadata": True},
        slack.token,
    )
    assert with_meta["messages"][-1]["metadata"] == meta
    replies = api_json(
        slack, "conversations.replies", {"channel": slack.channel, "ts": root["ts"]}, slack.token
    )
    assert [m["text"] for m in replies["messages"]] == ["root", "r1", "r2"]
    # Names are for posting only; reading takes the id, as in Slack.
    named = api_json(slack, "conversations.history", {"channel": "#brand-alerts"}, slack.token)
    assert named == {"ok": False, "error": "channel_not_found"}


def test_missing_history_scope():
    with SlackSandbox(history_scope=False) as slack:
        answer = api_json(slack, "conversations.history", {"channel": slack.channel}, slack.token)
        assert answer["error"] == "missing_scope"


def test_failure_after_posting_keeps_the_message(slack):
    slack.fail_next(1, status=502, after_posting=True)
    payload = json.dumps({"channel": slack.channel, "text": "x"}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {slack.token}"}
    assert post(slack.base_url + "chat.postMessage", payload, headers)[0] == 502
    assert len(slack.messages) == 1


def test_files_upload_v2_goes_through_the_three_steps() -> None:
    from slack_sdk.errors import SlackApiError

    with SlackSandbox() as sandbox:
        client = WebClient(token=sandbox.token, base_url=sandbox.base_url)
        root = client.chat_postMessage(channel=sandbox.channel, text="weekly report")
        done = client.files_upload_v2(
            file_uploads=[{"file": b"\x89PNG-one", "filename": "a.png", "title": "A"},
                          {"file": b"\x89PNG-two!", "filename": "b.png", "alt_txt": "bee"}],
            channel=sandbox.channel, thread_ts=root["ts"], initial_comment="charts")
        assert [f["title"] for f in done["files"]] == ["A", "b.png"]
        a, b = sandbox.files
        assert (a.data, b.data, b.alt_txt) == (b"\x89PNG-one", b"\x89PNG-two!", "bee")
        assert a.mimetype == "image/png" and a.channels == (sandbox.channel,)
        shared = sandbox.messages[-1]
        assert shared.thread_ts == root["ts"] and shared.text == "charts"
        assert [f["id"] for f in shared.payload["files"]] == [a.id, b.id]
        paths = [r.path for r in sandbox.requests]
        assert paths[1:] == ["/api/files.getUploadURLExternal", "/api/files.getUploadURLExternal",
                             f"/upload/v1/{a.upload_key}", f"/upload/v1/{b.upload_key}",
                             "/api/files.completeUploadExternal"]
        # what Slack refuses: missing arguments, completing a file never uploaded
        with pytest.raises(SlackApiError, match="invalid_arguments"):
            client.api_call("files.getUploadURLExternal", params={"filename": "x.png"})
        url = client.files_getUploadURLExternal(filename="x.png", length=3)
        with pytest.raises(SlackApiError, match="file_not_found"):
            client.files_completeUploadExternal(files=[{"id": url["file_id"]}],
                                                channel_id=sandbox.channel)


def test_socket_mode_with_slack_sdks_own_client(slack):
    """apps.connections.open needs the app token; the WebSocket says hello, delivers an
    envelope, and counts it acknowledged only when the app sends its envelope_id back."""
    from slack_sdk import WebClient
    from slack_sdk.socket_mode.builtin import SocketModeClient
    from slack_sdk.socket_mode.response import SocketModeResponse

    assert api_json(slack, "apps.connections.open", {}, token=slack.token)["error"] == (
        "not_allowed_token_type"
    )
    assert api_json(slack, "apps.connections.open", {}, token="xapp-wrong")["error"] == "invalid_auth"
    opened = api_json(slack, "apps.connections.open", {}, token=slack.app_token)
    assert opened["ok"] and opened["url"].startswith(slack.socket_url + "?ticket=")

    got: list[tuple[str, dict]] = []

    def listener(client, request):
        got.append((request.type, request.payload))
        if request.payload.get("ack", True):
            client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

    client = SocketModeClient(app_token=slack.app_token,
                              web_client=WebClient(token=slack.token, base_url=slack.base_url))  # fmt: skip
    client.socket_mode_request_listeners.append(listener)
    client.connect()
    try:
        assert slack.wait_connected()
        ack = slack.send_envelope({"type": "block_actions", "actions": []})
        assert ack == {"envelope_id": ack["envelope_id"]}
        assert got == [("interactive", {"type": "block_actions", "actions": []})]
        with pytest.raises(TimeoutError, match="not acknowledged"):
            slack.send_envelope({"type": "block_actions", "ack": False}, timeout=1)
    finally:
        client.close()


def test_click_builds_slacks_block_actions_payload_and_chat_update_edits(slack):
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}},
        {"type": "actions", "block_id": "b1", "elements": [
            {"type": "button", "action_id": "go", "value": "v1",
             "text": {"type": "plain_text", "text": "Go"}}]},
    ]  # fmt: skip
    posted = api_json(slack, "chat.postMessage", {"channel": slack.channel, "text": "hi",
                                                  "blocks": blocks}, token=slack.token)  # fmt: skip
    [message] = slack.messages
    with pytest.raises(KeyError):
        slack.click(message, "missing")
    seen: list[dict] = []
    from slack_sdk.socket_mode.builtin import SocketModeClient
    from slack_sdk.socket_mode.response import SocketModeResponse

    def listener(client, request):
        seen.append(request.payload)
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

    from slack_sdk import WebClient

    client = SocketModeClient(app_token=slack.app_token,
                              web_client=WebClient(token=slack.token, base_url=slack.base_url))  # fmt: skip
    client.socket_mode_request_listeners.append(listener)
    client.connect()
    try:
        slack.click(message, "go", user_id="U1", user_name="carol")
    finally:
        client.close()
    [payload] = seen
    assert payload["type"] == "block_actions" and payload["user"]["id"] == "U1"
    assert payload["user"]["username"] == "carol"
    assert payload["container"] == {"type": "message", "message_ts": posted["ts"],
                                    "channel_id": slack.channel, "is_ephemeral": False}  # fmt: skip
    [action] = payload["actions"]
    assert (action["action_id"], action["block_id"], action["value"], action["type"]) == (
        "go", "b1", "v1", "button"
    )
    assert payload["message"]["blocks"] == blocks and payload["response_url"]

    edited = api_json(slack, "chat.update", {"channel": slack.channel, "ts": posted["ts"],
                                             "text": "done", "blocks": blocks[:1]}, token=slack.token)  # fmt: skip
    assert edited["ok"] and slack.messages[0].blocks == blocks[:1] and slack.messages[0].text == "done"
    assert api_json(slack, "chat.update", {"channel": slack.channel, "ts": "1.2", "text": "x"},
                    token=slack.token)["error"] == "message_not_found"  # fmt: skip
