"""A local stand-in for Slack: the Web API's `chat.postMessage`, `chat.update`,
`auth.test`, `conversations.history`/`conversations.replies`, the external file upload
(`files.getUploadURLExternal`, a POST of the bytes to the URL it returns,
`files.completeUploadExternal`: what slack-sdk's `files_upload_v2` calls), incoming
webhooks and Socket Mode (`apps.connections.open` with an app-level token, then a real
WebSocket on loopback), over real HTTP, so slack-sdk (and BrandPulse's notifier and
button listener) run unchanged against it.

Uploaded files are recorded (`SlackSandbox.files`: name, title, bytes, where shared); a
file shared to a channel is also a message there, with `files` and the initial comment.

Socket Mode as Slack documents it: the app opens a connection with its `xapp-` token
and gets a `wss` URL (here `ws://127.0.0.1:<port>/link/?ticket=...`); the server says
`hello`, then sends envelopes (`{"envelope_id", "type": "interactive", "payload":
<block_actions payload>, "accepts_response_payload"}`) that the app must acknowledge by
sending `{"envelope_id": ...}` back. `click(message, action_id, user_id=, user_name=)`
plays a person clicking a button of a message and waits for the acknowledgement.

It records every message, checks what Slack would reject (unknown tokens and channels,
Block Kit limits), can be told to rate limit or fail, and renders messages the way a
person reads them, threads indented under their parent.

From tests::

    with SlackSandbox() as slack:
        notifier = SlackNotifier(token=slack.token, channel=slack.channel, base_url=slack.base_url)
        ...
        assert slack.messages[0].thread_ts is None

From a shell (the demo)::

    python -m sandbox.slack --port 8765
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import parse_qs

from alerts.notifiers.slack_text import mrkdwn_to_text, render_blocks
from sandbox.httpserver import SandboxHandler, ThreadedServer, serve_until_stopped

DEFAULT_TOKEN = "xoxb-sandbox-token"
DEFAULT_APP_TOKEN = "xapp-1-A0SANDBOX-1-sandbox-app-token"
SANDBOX_APP_ID = "A0SANDBOX"
SANDBOX_TEAM = {"id": "T0SANDBOX", "domain": "brandpulse-sandbox"}
DEFAULT_CHANNEL_ID = "C0SANDBOX01"
DEFAULT_CHANNEL_NAME = "brand-alerts"
WEBHOOK_PATH = "/services/T0SANDBOX/B0SANDBOX/sandboxwebhooksecret"

# Block Kit limits that real Slack enforces by rejecting the message.
_MAX_BLOCKS = 50
_MAX_HEADER = 150
_MAX_SECTION = 3000
_MAX_FIELDS = 10
_MAX_FIELD = 2000
_MAX_CONTEXT_ELEMENTS = 10
_MAX_BUTTON_URL = 3000
_MAX_TEXT = 40000

_READ_METHODS = ("conversations.history", "conversations.replies")
_FILE_METHODS = ("files.getUploadURLExternal", "files.completeUploadExternal")
UPLOAD_PATH = "/upload/v1/"


@dataclass(frozen=True)
class SlackMessage:
    """One message Slack accepted."""

    seq: int
    via: Literal["api", "webhook"]
    channel: str
    ts: str
    thread_ts: str | None
    text: str
    blocks: list[dict[str, Any]]
    payload: dict[str, Any]
    received_at: datetime

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def block_texts(self) -> list[str]:
        """Every text in the blocks, raw (escaped) as Slack received it."""
        out: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if isinstance(node.get("text"), str):
                    out.append(node["text"])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.blocks)
        return out


@dataclass
class SlackFile:
    """A file announced by `files.getUploadURLExternal`; `data` once its bytes arrived,
    `completed` once `files.completeUploadExternal` named it."""

    id: str
    filename: str
    length: int  # as announced
    alt_txt: str | None
    upload_key: str
    data: bytes | None = None
    title: str | None = None
    completed: bool = False
    channels: tuple[str, ...] = ()
    message_ts: str | None = None  # the channel message that shares it

    @property
    def mimetype(self) -> str:
        import mimetypes

        return mimetypes.guess_type(self.filename)[0] or "application/octet-stream"

    def view(self) -> dict[str, Any]:
        """The file object Slack's file methods answer with (the fields we rely on)."""
        return {"id": self.id, "name": self.filename, "title": self.title or self.filename,
                "mimetype": self.mimetype, "filetype": self.filename.rsplit(".", 1)[-1],
                "size": len(self.data or b""), "alt_txt": self.alt_txt,
                "channels": list(self.channels)}


@dataclass(frozen=True)
class SandboxRequest:
    """One HTTP request, accepted or not (for asserting retries)."""

    path: str
    status: int
    error: str | None
    at: datetime


@dataclass
class _Fault:
    status: int
    retry_after: float | None = None
    after_posting: bool = False  # take the message, then fail (a proxy error after Slack)


def validate_blocks(blocks: Any) -> list[str]:
    """What Slack would object to in `blocks` (empty when it would accept them)."""
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    problems: list[str] = []
    if len(blocks) > _MAX_BLOCKS:
        problems.append(f"too many blocks: {len(blocks)} > {_MAX_BLOCKS}")
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(block, dict) or "type" not in block:
            problems.append(f"{where}: a block needs a type")
            continue
        kind = block["type"]
        text = block.get("text")
        if kind == "header":
            if not isinstance(text, dict) or text.get("type") != "plain_text":
                problems.append(f"{where}: header text must be plain_text")
            elif len(text.get("text", "")) > _MAX_HEADER:
                problems.append(f"{where}: header text longer than {_MAX_HEADER}")
        elif kind == "section":
            if text is None and not block.get("fields"):
                problems.append(f"{where}: section needs text or fields")
            if isinstance(text, dict) and not 1 <= len(text.get("text", "")) <= _MAX_SECTION:
                problems.append(f"{where}: section text must be 1..{_MAX_SECTION} characters")
            fields = block.get("fields") or []
            if len(fields) > _MAX_FIELDS:
                problems.append(f"{where}: more than {_MAX_FIELDS} fields")
            for j, f in enumerate(fields):
                if len(f.get("text", "")) > _MAX_FIELD:
                    problems.append(f"{where}.fields[{j}]: longer than {_MAX_FIELD}")
        elif kind == "context":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= _MAX_CONTEXT_ELEMENTS:
                problems.append(f"{where}: context needs 1..{_MAX_CONTEXT_ELEMENTS} elements")
        elif kind == "actions":
            for j, element in enumerate(block.get("elements") or []):
                url = element.get("url")
                if url is not None and len(url) > _MAX_BUTTON_URL:
                    problems.append(f"{where}.elements[{j}]: url longer than {_MAX_BUTTON_URL}")
    return problems


# ---------------------------------------------------------------------------
# Rendering for a terminal: alerts.notifiers.slack_text (the product's dry run uses it)
# ---------------------------------------------------------------------------


def render_message(message: SlackMessage, channel_name: str | None = None) -> str:
    """One message as a person would read it; replies carry a thread marker."""
    where = f"#{channel_name}" if channel_name else message.channel
    head = f"── {where} · ts {message.ts} · via {message.via}"
    if message.is_reply:
        head += f" · reply in thread {message.thread_ts}"
    body = render_blocks(message.blocks) if message.blocks else [mrkdwn_to_text(message.text)]
    body += [f"[file: {f.get('title') or f.get('name')}]" for f in message.payload.get("files") or []]
    return "\n".join([head, *body])


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


class SlackSandbox:
    """A local Slack. Use as a context manager, or `start()`/`stop()`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: tuple[str, ...] = (DEFAULT_TOKEN,),
        channels: dict[str, str] | None = None,
        on_message: Callable[[SlackMessage], None] | None = None,
        history_scope: bool = True,
        app_tokens: tuple[str, ...] = (DEFAULT_APP_TOKEN,),
    ) -> None:
        self.host = host
        self.app_tokens = app_tokens
        self._tickets: set[str] = set()
        self._sockets: list[Any] = []  # open Socket Mode connections, newest last
        self._acks: dict[str, dict[str, Any]] = {}  # envelope_id -> what the app sent back
        self._socket_cond = threading.Condition()
        self._ws_server: Any = None
        self._ws_thread: threading.Thread | None = None
        # False: the token lacks channels:history, the read methods answer missing_scope.
        self.history_scope = history_scope
        self._port = port
        self.tokens = tokens
        self.channels = dict(channels or {DEFAULT_CHANNEL_ID: DEFAULT_CHANNEL_NAME})
        self.on_message = on_message
        self._lock = threading.Lock()
        self._messages: list[SlackMessage] = []
        self._requests: list[SandboxRequest] = []
        self._faults: list[_Fault] = []
        self._outage: int | None = None
        self._seq = 0
        self._files: dict[str, SlackFile] = {}
        self._server: ThreadedServer | None = None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> SlackSandbox:
        if self._server is not None:
            return self
        self._server = ThreadedServer(self.host, self._port, _Handler, self, name="slack-sandbox")
        self._port = self._server.port
        self._start_socket_mode()
        return self

    def _start_socket_mode(self) -> None:
        from websockets.sync.server import serve

        self._ws_server = serve(self._socket_session, self.host, 0)
        self._ws_thread = threading.Thread(
            target=self._ws_server.serve_forever, name="slack-sandbox-socket-mode", daemon=True
        )
        self._ws_thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        if self._ws_server is not None:
            self._ws_server.shutdown()
            if self._ws_thread is not None:
                self._ws_thread.join(timeout=5)
            self._ws_server = None
        self._server.stop()
        self._server = None

    def __enter__(self) -> SlackSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests and the demo use -----------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def base_url(self) -> str:
        """Give this to `WebClient(base_url=...)` / `slack.base_url`."""
        return f"{self.url}/api/"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{WEBHOOK_PATH}"

    @property
    def token(self) -> str:
        return self.tokens[0]

    @property
    def channel(self) -> str:
        return next(iter(self.channels))

    @property
    def messages(self) -> list[SlackMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def requests(self) -> list[SandboxRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def files(self) -> list[SlackFile]:
        """Files whose upload was completed (`files.completeUploadExternal`), in order."""
        with self._lock:
            return [f for f in self._files.values() if f.completed]

    @property
    def app_token(self) -> str:
        """Give this to `slack.app_token` (Socket Mode)."""
        return self.app_tokens[0]

    @property
    def socket_url(self) -> str:
        assert self._ws_server is not None, "the sandbox is not started"
        port = self._ws_server.socket.getsockname()[1]
        return f"ws://{self.host}:{port}/link/"

    # -- Socket Mode ------------------------------------------------------------

    def _socket_session(self, connection: Any) -> None:
        """One app connection: refuse an unknown ticket, say hello, collect acks."""
        from urllib.parse import urlsplit

        query = parse_qs(urlsplit(connection.request.path).query)
        ticket = (query.get("ticket") or [""])[0]
        with self._socket_cond:
            known = ticket in self._tickets
            self._tickets.discard(ticket)
        if not known:
            connection.close(4001, "invalid ticket")
            return
        connection.send(json.dumps({
            "type": "hello", "num_connections": 1,
            "debug_info": {"host": "sandbox", "approximate_connection_time": 3600},
            "connection_info": {"app_id": SANDBOX_APP_ID},
        }))  # fmt: skip
        with self._socket_cond:
            self._sockets.append(connection)
            self._socket_cond.notify_all()
        try:
            for raw in connection:
                try:
                    data = json.loads(raw)
                except (TypeError, ValueError):
                    continue
                if isinstance(data, dict) and data.get("envelope_id"):
                    with self._socket_cond:
                        self._acks[str(data["envelope_id"])] = data
                        self._socket_cond.notify_all()
        except Exception:  # the app went away: the connection is simply over
            pass
        finally:
            with self._socket_cond:
                if connection in self._sockets:
                    self._sockets.remove(connection)

    def wait_connected(self, timeout: float = 30.0) -> bool:
        """Whether an app holds a Socket Mode connection (waiting up to `timeout` s)."""
        with self._socket_cond:
            return self._socket_cond.wait_for(lambda: bool(self._sockets), timeout)

    @property
    def connected(self) -> int:
        with self._socket_cond:
            return len(self._sockets)

    def send_envelope(
        self, payload: dict[str, Any], *, type: str = "interactive", timeout: float = 30.0
    ) -> dict[str, Any]:
        """Deliver one envelope to the newest connection and wait for its ack (what the
        app sent back); TimeoutError when the app does not acknowledge it in time."""
        import uuid

        if not self.wait_connected(timeout):
            raise TimeoutError("no app is connected over Socket Mode")
        envelope_id = str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, "payload": payload, "type": type,
                    "accepts_response_payload": False}  # fmt: skip
        with self._socket_cond:
            connection = self._sockets[-1]
        connection.send(json.dumps(envelope))
        with self._socket_cond:
            if not self._socket_cond.wait_for(lambda: envelope_id in self._acks, timeout):
                raise TimeoutError(f"envelope {envelope_id} was not acknowledged")
            return self._acks[envelope_id]

    def click(
        self,
        message: SlackMessage,
        action_id: str,
        *,
        user_id: str = "U0ALICE",
        user_name: str = "alice",
        value: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """A person clicks the button `action_id` of `message`: Slack's `block_actions`
        payload over Socket Mode. Returns the app's ack; KeyError for a button the
        message does not have (pass `value` to click one that is not there)."""
        current = next((m for m in self.messages if m.channel == message.channel
                        and m.ts == message.ts), message)  # fmt: skip
        button: dict[str, Any] | None = None
        block_id = ""
        for block in current.blocks:
            for element in block.get("elements") or []:
                if isinstance(element, dict) and element.get("action_id") == action_id:
                    button, block_id = element, str(block.get("block_id") or "")
        if button is None:
            if value is None:
                raise KeyError(f"message {message.ts} has no button {action_id!r}")
            button = {"type": "button", "action_id": action_id,
                      "text": {"type": "plain_text", "text": action_id}, "value": value}  # fmt: skip
        action = {
            "action_id": action_id, "block_id": block_id, "text": button.get("text"),
            "value": value if value is not None else button.get("value"),
            "type": "button", "action_ts": f"{datetime.now(UTC).timestamp():.6f}",
        }  # fmt: skip
        if button.get("style"):
            action["style"] = button["style"]
        payload = {
            "type": "block_actions",
            "user": {"id": user_id, "username": user_name, "name": user_name,
                     "team_id": SANDBOX_TEAM["id"]},
            "api_app_id": SANDBOX_APP_ID,
            "token": "sandbox-verification-token",
            "container": {"type": "message", "message_ts": current.ts,
                          "channel_id": current.channel, "is_ephemeral": False},
            "trigger_id": f"{self._seq}.sandbox.trigger",
            "team": dict(SANDBOX_TEAM),
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": current.channel, "name": self.channels.get(current.channel, "")},
            "message": {"type": "message", "subtype": "bot_message", "text": current.text,
                        "ts": current.ts, "bot_id": "B0BRANDPULSE", "blocks": current.blocks},
            "state": {"values": {}},
            "response_url": f"{self.url}/actions/{current.channel}/{current.ts}",
            "actions": [action],
        }  # fmt: skip
        return self.send_envelope(payload, timeout=timeout)

    def replies(self, ts: str) -> list[SlackMessage]:
        return [m for m in self.messages if m.thread_ts == ts and m.ts != ts]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._files.clear()
            self._requests.clear()
            self._faults.clear()
            self._outage = None

    def fail_next(self, n: int = 1, status: int = 503, *, after_posting: bool = False) -> None:
        """The next `n` requests (API or webhook) fail with HTTP `status`.

        `after_posting`: the message is recorded first, as when Slack took it and a
        proxy or load balancer failed on the way back; the sender cannot know.
        """
        with self._lock:
            self._faults.extend(_Fault(status, after_posting=after_posting) for _ in range(n))

    def rate_limit_next(self, retry_after: float = 1, n: int = 1) -> None:
        """The next `n` requests get a 429 with `Retry-After: retry_after`."""
        with self._lock:
            self._faults.extend(_Fault(429, retry_after) for _ in range(n))

    def set_outage(self, status: int | None = 503) -> None:
        """Every request fails with `status` until `set_outage(None)`."""
        with self._lock:
            self._outage = status

    @contextmanager
    def outage(self, status: int = 503) -> Iterator[None]:
        self.set_outage(status)
        try:
            yield
        finally:
            self.set_outage(None)

    def render(self) -> str:
        """All messages as a person reads them, each thread's replies indented under it."""
        messages = self.messages
        roots = [m for m in messages if not m.is_reply]
        known = {m.ts for m in roots}
        chunks: list[str] = []
        for root in roots:
            chunks.append(render_message(root, self.channels.get(root.channel)))
            for reply in (m for m in messages if m.is_reply and m.thread_ts == root.ts):
                text = render_message(reply, self.channels.get(reply.channel))
                chunks.append("\n".join("    ┃ " + line for line in text.splitlines()))
        for orphan in (m for m in messages if m.is_reply and m.thread_ts not in known):
            chunks.append(render_message(orphan, self.channels.get(orphan.channel)))
        return "\n\n".join(chunks)

    # -- request handling (called from the server's threads) -----------------

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.pop(0)
            if self._outage is not None:
                return _Fault(self._outage)
        return None

    def _log(self, path: str, status: int, error: str | None) -> None:
        with self._lock:
            self._requests.append(SandboxRequest(path, status, error, datetime.now(UTC)))

    def _resolve_channel(self, value: Any) -> str | None:
        if not isinstance(value, str) or not value:
            return None
        if value in self.channels:
            return value
        name = value.lstrip("#")
        for cid, cname in self.channels.items():
            if cname == name:
                return cid
        return None

    def _record(
        self,
        via: Literal["api", "webhook"],
        channel: str,
        thread_ts: str | None,
        payload: dict[str, Any],
    ) -> SlackMessage:
        with self._lock:
            self._seq += 1
            # Slack ts: seconds.microseconds, unique per channel and increasing.
            ts = f"{1700000000 + self._seq // 10000}.{(self._seq % 10000) * 100:06d}"
            message = SlackMessage(
                seq=self._seq,
                via=via,
                channel=channel,
                ts=ts,
                thread_ts=thread_ts,
                text=payload.get("text") or "",
                blocks=list(payload.get("blocks") or []),
                payload=payload,
                received_at=datetime.now(UTC),
            )
            self._messages.append(message)
        if self.on_message is not None:
            self.on_message(message)
        return message

    def _thread_exists(self, channel: str, ts: str) -> bool:
        with self._lock:
            return any(m.channel == channel and m.ts == ts for m in self._messages)

    def handle_api(self, method: str, token: str | None, payload: dict[str, Any]) -> dict[str, Any]:
        if method not in ("auth.test", "chat.postMessage", "chat.update",
                          "apps.connections.open", *_READ_METHODS, *_FILE_METHODS):  # fmt: skip
            return {"ok": False, "error": "unknown_method"}
        if not token:
            return {"ok": False, "error": "not_authed"}
        if method == "apps.connections.open":
            # Only an app-level token opens a connection; a bot token is the wrong type.
            if token in self.tokens:
                return {"ok": False, "error": "not_allowed_token_type"}
            if token not in self.app_tokens:
                return {"ok": False, "error": "invalid_auth"}
            import uuid

            ticket = str(uuid.uuid4())
            with self._socket_cond:
                self._tickets.add(ticket)
            return {"ok": True, "url": f"{self.socket_url}?ticket={ticket}&app_id={SANDBOX_APP_ID}"}
        if token not in self.tokens:
            return {"ok": False, "error": "not_allowed_token_type" if token in self.app_tokens
                    else "invalid_auth"}  # fmt: skip
        if method == "chat.update":
            return self._update(payload)
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://brandpulse-sandbox.slack.com/",
                "team": "BrandPulse Sandbox",
                "user": "brandpulse",
                "team_id": "T0SANDBOX",
                "user_id": "U0BRANDPULSE",
                "bot_id": "B0BRANDPULSE",
            }
        if method in _READ_METHODS:
            return self._read(method, payload)
        if method == "files.getUploadURLExternal":
            return self._upload_url(payload)
        if method == "files.completeUploadExternal":
            return self._complete_upload(payload)
        channel = self._resolve_channel(payload.get("channel"))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        problem = self._check_content(payload)
        if problem is not None:
            return problem
        thread_ts = payload.get("thread_ts") or None
        # Real Slack posts a reply to an unknown ts as a new message; the sandbox is
        # stricter so that a lost thread reference shows up in tests.
        if thread_ts is not None and not self._thread_exists(channel, str(thread_ts)):
            return {"ok": False, "error": "thread_not_found"}
        message = self._record("api", channel, thread_ts, payload)
        return {
            "ok": True,
            "channel": channel,
            "ts": message.ts,
            "message": {
                "type": "message",
                "subtype": "bot_message",
                "text": message.text,
                "blocks": message.blocks,
                "ts": message.ts,
                "thread_ts": thread_ts,
                "bot_id": "B0BRANDPULSE",
            },
        }

    def _upload_url(self, payload: dict[str, Any]) -> dict[str, Any]:
        filename = payload.get("filename")
        try:
            length = int(payload.get("length"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            length = 0
        if not isinstance(filename, str) or not filename or length <= 0:
            # both are required; Slack names a missing or malformed argument so
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            self._seq += 1
            file_id = f"F0SANDBOX{self._seq:04d}"
            key = f"{file_id}-{self._seq * 7919 % 100003:05d}"
            self._files[file_id] = SlackFile(id=file_id, filename=filename, length=length,
                                             alt_txt=payload.get("alt_txt"), upload_key=key)
        return {"ok": True, "upload_url": f"{self.url}{UPLOAD_PATH}{key}", "file_id": file_id}

    def handle_upload(self, key: str, data: bytes) -> tuple[int, str]:
        """The POST of a file's bytes to its upload URL (raw, as slack-sdk sends them)."""
        with self._lock:
            found = next((f for f in self._files.values() if f.upload_key == key), None)
            if found is None:
                return 404, "not found"
            if len(data) != found.length:
                # Slack's upload service takes the announced length at its word; the
                # sandbox is stricter, so a wrong `length` shows up in tests
                return 400, f"length mismatch: announced {found.length}, received {len(data)}"
            found.data = data
        return 200, f"OK - {len(data)}"

    def _complete_upload(self, payload: dict[str, Any]) -> dict[str, Any]:
        files = payload.get("files")
        if isinstance(files, str):
            try:
                files = json.loads(files)
            except json.JSONDecodeError:
                return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(files, list) or not files or not all(
            isinstance(f, dict) and isinstance(f.get("id"), str) for f in files
        ):
            return {"ok": False, "error": "invalid_arguments"}
        wanted = payload.get("channel_id") or payload.get("channels") or ""
        names = [c.strip() for c in str(wanted).split(",") if c.strip()]
        channels = [self._resolve_channel(c) for c in names]
        if any(c is None for c in channels):
            return {"ok": False, "error": "channel_not_found"}
        thread_ts = payload.get("thread_ts") or None
        if thread_ts is not None and (len(channels) != 1
                                      or not self._thread_exists(channels[0], str(thread_ts))):
            return {"ok": False, "error": "thread_not_found"}
        with self._lock:
            chosen = [self._files.get(f["id"]) for f in files]
            if any(c is None or c.completed or c.data is None for c in chosen):
                # unknown id, completed twice, or bytes never uploaded
                return {"ok": False, "error": "file_not_found"}
            for f, entry in zip(chosen, files, strict=True):
                assert f is not None
                f.title = entry.get("title") or f.filename
                f.completed = True
                f.channels = tuple(c for c in channels if c)
        views = [f.view() for f in chosen if f is not None]
        for channel in channels:
            assert channel is not None
            message = self._record("api", channel, thread_ts, {
                "text": payload.get("initial_comment") or "", "files": views,
                **({"blocks": payload["blocks"]} if payload.get("blocks")
                   and not payload.get("initial_comment") else {}),
            })
            with self._lock:
                for f in chosen:
                    assert f is not None
                    f.message_ts = f.message_ts or message.ts
        return {"ok": True, "files": [{"id": v["id"], "title": v["title"]} for v in views]}
    def _update(self, payload: dict[str, Any]) -> dict[str, Any]:
        """chat.update: a message's text and blocks replaced (by channel id and ts)."""
        from dataclasses import replace

        channel, ts = payload.get("channel"), str(payload.get("ts") or "")
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        problem = self._check_content(payload)
        if problem is not None:
            return problem
        with self._lock:
            for i, m in enumerate(self._messages):
                if m.channel == channel and m.ts == ts:
                    text = payload.get("text") if payload.get("text") is not None else m.text
                    blocks = payload.get("blocks", m.blocks)
                    self._messages[i] = replace(m, text=text, blocks=list(blocks),
                                                payload=m.payload | {"edited": True})  # fmt: skip
                    return {"ok": True, "channel": channel, "ts": ts, "text": text}
        return {"ok": False, "error": "message_not_found"}

    def _read(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        if not self.history_scope:
            return {"ok": False, "error": "missing_scope", "needed": "channels:history"}
        channel = payload.get("channel")
        # Like Slack, the read methods take a channel id only, never a name.
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        with_metadata = str(payload.get("include_all_metadata", "")).lower() in ("1", "true")
        limit = int(payload.get("limit") or 100)
        messages = [m for m in self.messages if m.channel == channel]
        if method == "conversations.replies":
            root = str(payload.get("ts") or "")
            if not any(m.ts == root for m in messages):
                return {"ok": False, "error": "thread_not_found"}
            chosen = [m for m in messages if m.ts == root or m.thread_ts == root][:limit]
        else:
            # The channel's own messages, newest first; replies only when broadcast.
            top = [m for m in messages if not m.is_reply or m.payload.get("reply_broadcast")]
            chosen = list(reversed(top))[:limit]

        def view(m: SlackMessage) -> dict[str, Any]:
            out: dict[str, Any] = {
                "type": "message",
                "ts": m.ts,
                "text": m.text,
                "blocks": m.blocks,
            }
            if m.thread_ts:
                out["thread_ts"] = m.thread_ts
            if with_metadata and m.payload.get("metadata"):
                out["metadata"] = m.payload["metadata"]
            return out

        return {"ok": True, "messages": [view(m) for m in chosen], "has_more": False}

    def handle_webhook(self, payload: dict[str, Any]) -> tuple[int, str]:
        problem = self._check_content(payload)
        if problem is not None:
            return 400, "no_text" if problem["error"] == "no_text" else "invalid_blocks"
        self._record("webhook", self.channel, None, payload)
        return 200, "ok"

    @staticmethod
    def _check_content(payload: dict[str, Any]) -> dict[str, Any] | None:
        text = payload.get("text")
        blocks = payload.get("blocks")
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        if isinstance(text, str) and len(text) > _MAX_TEXT:
            return {"ok": False, "error": "msg_too_long"}
        if blocks:
            problems = validate_blocks(blocks)
            if problems:
                return {
                    "ok": False,
                    "error": "invalid_blocks",
                    "response_metadata": {"messages": problems},
                }
        return None


class _Handler(SandboxHandler):
    owner: SlackSandbox
    server_version = "SlackSandbox/1"

    def _read_payload(self) -> tuple[dict[str, Any], str | None]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8") if length else ""
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        token: str | None = None
        auth = self.headers.get("Authorization") or ""
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if content_type == "application/json":
            payload = json.loads(raw) if raw else {}
            if not isinstance(payload, dict):
                raise ValueError("the JSON body must be an object")
        else:
            payload = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
            # Form posts carry blocks and metadata as JSON strings.
            for key in ("blocks", "attachments", "metadata"):
                if isinstance(payload.get(key), str) and payload[key]:
                    payload[key] = json.loads(payload[key])
            token = token or payload.pop("token", None)
        return payload, token

    def do_GET(self) -> None:
        if self.path in ("/", "/health"):
            self.reply(200, "slack sandbox\n", "text/plain")
        else:
            self.reply(404, "not found\n", "text/plain")

    def do_POST(self) -> None:
        owner = self.owner
        path, _, query = self.path.partition("?")
        is_api = path.startswith("/api/")
        is_hook = path.startswith("/services/")
        if path.startswith(UPLOAD_PATH):
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length) if length else b""
            status, text = owner.handle_upload(path[len(UPLOAD_PATH):], data)
            owner._log(path, status, None if status == 200 else text)
            self.reply(status, text, "text/plain")
            return
        if not (is_api or is_hook):
            owner._log(path, 404, "not_found")
            self.reply(404, "not found\n", "text/plain")
            return
        fault = owner._take_fault()
        if fault is not None and not fault.after_posting:
            self._fail(path, fault, is_api)
            return
        try:
            payload, token = self._read_payload()
            if is_api and query:
                # arguments may come in the query string too (slack-sdk sends the file
                # methods' arguments there); the body wins on a clash
                args = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
                token = token or args.pop("token", None)
                payload = {**args, **payload}
        except (ValueError, json.JSONDecodeError) as exc:
            owner._log(path, 400, "invalid_json")
            if is_api:
                self.reply_json(200, {"ok": False, "error": "invalid_json", "detail": str(exc)})
            else:
                self.reply(400, "invalid_payload", "text/html")
            return
        if is_api:
            body = owner.handle_api(path[len("/api/") :], token, payload)
            if fault is not None:
                self._fail(path, fault, is_api, consumed=True)
                return
            owner._log(path, 200, None if body.get("ok") else body.get("error"))
            # Slack answers API errors with HTTP 200 and ok:false.
            self.reply_json(200, body)
            return
        if path != WEBHOOK_PATH:
            owner._log(path, 404, "no_service")
            self.reply(404, "no_service", "text/html")
            return
        status, text = owner.handle_webhook(payload)
        if fault is not None:
            self._fail(path, fault, is_api, consumed=True)
            return
        owner._log(path, status, None if status == 200 else text)
        self.reply(status, text, "text/html")

    def _fail(self, path: str, fault: _Fault, is_api: bool, *, consumed: bool = False) -> None:
        # The request body must still be consumed, or the client sees a reset.
        length = 0 if consumed else int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if fault.status == 429:
            self.owner._log(path, 429, "ratelimited")
            headers = {"Retry-After": f"{fault.retry_after:g}"}
            if is_api:
                self.reply_json(429, {"ok": False, "error": "ratelimited"}, headers)
            else:
                self.reply(429, "rate_limited", "text/html", headers)
            return
        phrase = (
            HTTPStatus(fault.status).phrase
            if fault.status in HTTPStatus._value2member_map_
            else "Error"
        )
        self.owner._log(path, fault.status, "injected_failure")
        self.reply(fault.status, f"<html><body>{fault.status} {phrase}</body></html>", "text/html")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.slack",
        description="A local Slack (Web API + incoming webhooks) that prints every message.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the bot token it accepts")
    parser.add_argument("--channel", default=DEFAULT_CHANNEL_NAME, help="channel name it knows")
    args = parser.parse_args(argv)

    channels = {DEFAULT_CHANNEL_ID: args.channel.lstrip("#")}
    sandbox = SlackSandbox(host=args.host, port=args.port, tokens=(args.token,), channels=channels)

    def show(message: SlackMessage) -> None:
        text = render_message(message, sandbox.channels.get(message.channel))
        if message.is_reply:
            text = "\n".join("    ┃ " + line for line in text.splitlines())
        print(text + "\n", flush=True)

    sandbox.on_message = show
    return serve_until_stopped(sandbox, f"{args.host}:{args.port}", lambda: (
        "Slack sandbox listening.\n"
        f"  slack.base_url:    {sandbox.base_url}\n"
        f"  slack.token:       {sandbox.token}\n"
        f"  slack.channel:     #{args.channel.lstrip('#')} (or {DEFAULT_CHANNEL_ID})\n"
        f"  slack.webhook_url: {sandbox.webhook_url}\n"
        "Messages appear below as they arrive. Ctrl-C stops.\n"
    ))  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
