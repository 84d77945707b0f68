"""Local stand-ins for the webhook-style alert channels, over real HTTP on loopback:
a generic signed JSON webhook, Microsoft Teams incoming webhooks, WeCom (企业微信) group
bots, DingTalk (钉钉) custom robots and Feishu/Lark (飞书) custom bots.

One server speaks all of them, each on the path its real service uses, so the
notifiers run unchanged against it with only the host swapped. Like `sandbox.slack`,
it checks what the real service checks (keys, access tokens, signatures and their
timestamps, message shapes, size limits, per-minute rate limits) and answers with the
documented error codes and HTTP statuses; it records what it accepted; and it can be
told to fail (`fail_next`, `rate_limit_next`).

From tests::

    with BotSandbox() as bots:
        notifier = WebhookNotifier(url=bots.webhook_url, secret=bots.webhook_secret)
        ...
        assert bots.messages("webhook")[0].payload["event"] == "alert"

From a shell (the demo)::

    python -m sandbox.bots --port 8766
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from sandbox.httpserver import SandboxHandler, ThreadedServer, serve_until_stopped

Api = Literal["webhook", "teams", "wecom", "dingtalk", "feishu"]
APIS: tuple[Api, ...] = ("webhook", "teams", "wecom", "dingtalk", "feishu")

WEBHOOK_PATH = "/hooks/brandpulse"
DEFAULT_WEBHOOK_SECRET = "whsec-sandbox-secret"
WEBHOOK_TOLERANCE = 300  # seconds, as the receiver example in alerts.notifiers.webhook
MOVED_PATH = "/moved"  # answers 308 to the generic webhook: redirects are not followed

# A Teams connector URL's path: /webhookb2/<group>@<tenant>/IncomingWebhook/<id>/<owner>
TEAMS_PATH = "/webhookb2/0sandbox-group@0sandbox-tenant/IncomingWebhook/0sandboxhook/0sandbox-owner"
TEAMS_MAX_BYTES = 28 * 1024  # "about 28 KB" per message
TEAMS_PER_SECOND = 4  # connectors are throttled at a few messages per second

WECOM_PATH = "/cgi-bin/webhook/send"
DEFAULT_WECOM_KEY = "0sandbox-wecom-key-0000"
WECOM_MAX_BYTES = 4096  # markdown.content, UTF-8

DINGTALK_PATH = "/robot/send"
DEFAULT_DINGTALK_TOKEN = "0sandbox-dingtalk-token"
DEFAULT_DINGTALK_SECRET = "SEC0sandbox-dingtalk-secret"
DINGTALK_TOLERANCE_MS = 3600 * 1000  # "within an hour of the request"

FEISHU_PREFIX = "/open-apis/bot/v2/hook/"
DEFAULT_FEISHU_HOOK = "0sandbox-feishu-hook"
DEFAULT_FEISHU_SECRET = "0sandbox-feishu-secret"
FEISHU_MAX_BYTES = 20 * 1024  # request body
FEISHU_PER_SECOND = 5
FEISHU_TOLERANCE = 3600  # seconds
_FEISHU_TAGS = {"div", "hr", "action", "note", "markdown", "img", "column_set"}


@dataclass(frozen=True)
class BotMessage:
    """One message a bot accepted."""

    seq: int
    api: Api
    path: str
    payload: dict[str, Any]
    headers: dict[str, str]
    body: bytes
    received_at: datetime


@dataclass(frozen=True)
class BotRequest:
    """One HTTP request, accepted or not (for asserting retries and refusals)."""

    api: Api | None
    path: str
    status: int
    code: int | str | None
    at: datetime


@dataclass
class _Fault:
    status: int
    retry_after: float | None = None
    after_posting: bool = False  # take the message, then fail (a proxy error on the way back)
    body: dict[str, Any] | None = None  # a JSON answer instead of the plain text


@dataclass
class Answer:
    """One HTTP answer of a bot; `code` is what the request log records, `accepted`
    whether the message was taken."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    code: int | str | None = None
    accepted: bool = False

    @classmethod
    def json(cls, status: int, data: Any, *, code: int | str | None = None,
             accepted: bool = False, headers: dict[str, str] | None = None) -> Answer:  # fmt: skip
        return cls(status, json.dumps(data, ensure_ascii=False).encode(), code=code,
                   accepted=accepted, headers=headers or {})  # fmt: skip

    @classmethod
    def text(cls, status: int, text: str, *, code: int | str | None = None,
             accepted: bool = False, headers: dict[str, str] | None = None) -> Answer:  # fmt: skip
        return cls(status, text.encode(), "text/plain; charset=utf-8", headers or {}, code, accepted)


class BotSandbox:
    """The local bots. Use as a context manager, or `start()`/`stop()`.

    `rate_limits` is, per bot (per key, token or hook), messages per minute for WeCom
    and DingTalk (20, as documented) and Feishu (100; its 5 per second is fixed), and
    messages per second for Teams (4); set lower in tests. `clock` (unix seconds) is
    what signatures' timestamps and the rate windows are measured on. The bots' keys,
    tokens and secrets are the `DEFAULT_*` values unless given.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        rate_limits: dict[str, int] | None = None,
        wecom_keys: tuple[str, ...] = (DEFAULT_WECOM_KEY,),
        dingtalk_robots: dict[str, str | None] | None = None,
        dingtalk_keywords: tuple[str, ...] = (),
        feishu_hooks: dict[str, str | None] | None = None,
        clock: Callable[[], float] = time.time,
        on_message: Callable[[BotMessage], None] | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self.webhook_secret = webhook_secret
        self.wecom_keys = wecom_keys
        # access token -> signing secret (None: the robot does not use signing)
        self.dingtalk_robots = dict(dingtalk_robots or {DEFAULT_DINGTALK_TOKEN: DEFAULT_DINGTALK_SECRET})
        self.dingtalk_keywords = dingtalk_keywords
        # hook id -> signing secret (None: the bot does not verify signatures)
        self.feishu_hooks = dict(feishu_hooks or {DEFAULT_FEISHU_HOOK: DEFAULT_FEISHU_SECRET})
        self.rate_limits: dict[str, int] = {"wecom": 20, "dingtalk": 20, "feishu": 100,
                                            "teams": TEAMS_PER_SECOND}  # fmt: skip
        self.rate_limits.update(rate_limits or {})
        self.clock = clock
        self.on_message = on_message
        self._lock = threading.Lock()
        self._messages: list[BotMessage] = []
        self._requests: list[BotRequest] = []
        self._faults: list[_Fault] = []
        self._sent: dict[str, deque[float]] = {}
        self._seq = 0
        self._server: ThreadedServer | None = None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> BotSandbox:
        if self._server is not None:
            return self
        self._server = ThreadedServer(self.host, self._port, _Handler, self, name="bot-sandbox")
        self._port = self._server.port
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop()
        self._server = None

    def __enter__(self) -> BotSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests and the demo use -----------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    @property
    def teams_url(self) -> str:
        return self.url + TEAMS_PATH

    @property
    def dingtalk_url(self) -> str:
        return f"{self.url}{DINGTALK_PATH}?access_token={next(iter(self.dingtalk_robots))}"

    @property
    def dingtalk_secret(self) -> str | None:
        return next(iter(self.dingtalk_robots.values()))

    @property
    def feishu_url(self) -> str:
        return f"{self.url}{FEISHU_PREFIX}{next(iter(self.feishu_hooks))}"

    @property
    def feishu_secret(self) -> str | None:
        return next(iter(self.feishu_hooks.values()))

    @property
    def wecom_url(self) -> str:
        return f"{self.url}{WECOM_PATH}?key={self.wecom_keys[0]}"

    def messages(self, api: Api | None = None) -> list[BotMessage]:
        with self._lock:
            return [m for m in self._messages if api is None or m.api == api]

    @property
    def requests(self) -> list[BotRequest]:
        with self._lock:
            return list(self._requests)

    def fail_next(self, n: int = 1, status: int = 503, *, after_posting: bool = False) -> None:
        """The next `n` requests fail with HTTP `status` (`after_posting`: the message is
        recorded first, as when the service took it and a proxy failed on the way back)."""
        with self._lock:
            self._faults.extend(_Fault(status, after_posting=after_posting) for _ in range(n))

    def rate_limit_next(self, retry_after: float | None = 1, n: int = 1,
                        body: dict[str, Any] | None = None) -> None:  # fmt: skip
        """The next `n` requests get HTTP 429 (with `Retry-After` unless None), with
        `body` as JSON when given (some bot APIs put their error code in a 429)."""
        with self._lock:
            self._faults.extend(_Fault(429, retry_after, body=body) for _ in range(n))

    # -- helpers of the API handlers -----------------------------------------

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _over_rate(self, api: str, bucket: str, *, window: float = 60.0, limit: int | None = None) -> bool:
        """Count one message of `bucket` (a bot); True when it is over the limit."""
        limit = self.rate_limits.get(api) if limit is None else limit
        if limit is None:
            return False
        now = self.clock()
        with self._lock:
            sent = self._sent.setdefault(f"{api}:{bucket}:{window}", deque())
            while sent and sent[0] <= now - window:
                sent.popleft()
            if len(sent) >= limit:
                return True
            sent.append(now)
            return False

    def _record(self, api: Api, path: str, payload: dict[str, Any], headers: dict[str, str],
                body: bytes) -> BotMessage:  # fmt: skip
        with self._lock:
            self._seq += 1
            message = BotMessage(self._seq, api, path, payload, headers, body, datetime.now(UTC))
            self._messages.append(message)
        if self.on_message is not None:
            self.on_message(message)
        return message

    def _log(self, api: Api | None, path: str, status: int, code: int | str | None) -> None:
        with self._lock:
            self._requests.append(BotRequest(api, path, status, code, datetime.now(UTC)))

    # -- the APIs -------------------------------------------------------------

    def route(self, path: str) -> Api | None:
        if path == WEBHOOK_PATH:
            return "webhook"
        if path.startswith("/webhookb2/"):
            return "teams"
        if path == WECOM_PATH:
            return "wecom"
        if path == DINGTALK_PATH:
            return "dingtalk"
        if path.startswith(FEISHU_PREFIX):
            return "feishu"
        return None

    def handle(self, api: Api, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> tuple[Answer, dict[str, Any] | None]:  # fmt: skip
        """(the answer, the payload to record when the message is accepted)."""
        handler = getattr(self, f"_handle_{api}")
        return handler(path, query, headers, body)

    def _handle_webhook(self, path: str, query: dict[str, str], headers: dict[str, str],
                        body: bytes) -> tuple[Answer, dict[str, Any] | None]:  # fmt: skip
        header = headers.get("x-brandpulse-signature", "")
        fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        t, sig = fields.get("t", ""), fields.get("v1", "")
        if not t.isdigit() or abs(self.clock() - int(t)) > WEBHOOK_TOLERANCE:
            return Answer.json(401, {"error": "timestamp missing or outside the tolerance"},
                               code="stale_timestamp"), None  # fmt: skip
        expected = hmac.new(self.webhook_secret.encode(), t.encode() + b"." + body,
                            hashlib.sha256).hexdigest()  # fmt: skip
        if not hmac.compare_digest(expected, sig):
            return Answer.json(401, {"error": "signature mismatch"}, code="bad_signature"), None
        try:
            payload = json.loads(body)
        except ValueError:
            return Answer.json(400, {"error": "body is not JSON"}, code="bad_json"), None
        if not isinstance(payload, dict) or payload.get("event") not in ("alert", "notice"):
            return Answer.json(400, {"error": "unknown event"}, code="bad_event"), None
        return Answer.json(200, {"ok": True}, accepted=True), payload

    def _handle_teams(self, path: str, query: dict[str, str], headers: dict[str, str],
                      body: bytes) -> tuple[Answer, dict[str, Any] | None]:  # fmt: skip
        if path != TEAMS_PATH:
            # a removed connector: Teams answers 404 (410 once the URL is retired)
            return Answer.text(404, "Webhook not found", code="not_found"), None
        if len(body) > TEAMS_MAX_BYTES:
            return Answer.text(413, "Request Entity Too Large", code="too_large"), None
        # The connector answers throttling with HTTP 200 and a text saying so.
        if self._over_rate("teams", path, window=1.0):
            return Answer.text(200, "Webhook message delivery failed with error: Microsoft Teams "
                               "endpoint returned HTTP error 429 with ContextId tcid=0,server=sandbox",
                               code="soft_429"), None  # fmt: skip
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        problem = teams_card_problem(payload)
        if problem is not None:
            return Answer.text(400, f"Bad payload received by generic incoming webhook. ({problem})",
                               code="bad_payload"), None  # fmt: skip
        assert isinstance(payload, dict)
        return Answer.text(200, "1", accepted=True), payload

    def _handle_wecom(self, path: str, query: dict[str, str], headers: dict[str, str],
                      body: bytes) -> tuple[Answer, dict[str, Any] | None]:  # fmt: skip
        # WeCom answers HTTP 200 with errcode/errmsg, errors included.
        def error(code: int, msg: str) -> tuple[Answer, None]:
            hint = f"{msg}, hint: [sandbox], more info at https://open.work.weixin.qq.com/devtool/query?e={code}"
            return Answer.json(200, {"errcode": code, "errmsg": hint}, code=code), None

        key = query.get("key", "")
        if key not in self.wecom_keys:
            return error(93000, "invalid webhook url")
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return error(40001, "invalid json")  # sandbox's code for a body that is not JSON
        msgtype = payload.get("msgtype") if isinstance(payload, dict) else None
        if msgtype not in ("text", "markdown"):
            return error(40008, "invalid message type")
        content = (payload.get(msgtype) or {}).get("content")
        if not isinstance(content, str) or not content:
            return error(44004, "empty content")
        if len(content.encode("utf-8")) > WECOM_MAX_BYTES:
            return error(40058, f"{msgtype}.content exceed max length {WECOM_MAX_BYTES}")
        if self._over_rate("wecom", key):
            return error(45009, "api freq out of limit")
        return Answer.json(200, {"errcode": 0, "errmsg": "ok"}, code=0, accepted=True), payload

    def _handle_dingtalk(self, path: str, query: dict[str, str], headers: dict[str, str],
                         body: bytes) -> tuple[Answer, dict[str, Any] | None]:  # fmt: skip
        # DingTalk answers HTTP 200 with errcode/errmsg, errors included.
        def error(code: int, msg: str) -> tuple[Answer, None]:
            return Answer.json(200, {"errcode": code, "errmsg": msg}, code=code), None

        token = query.get("access_token", "")
        if token not in self.dingtalk_robots:
            return error(300001, "token is not exist")
        secret = self.dingtalk_robots[token]
        if secret is not None:
            ts = query.get("timestamp", "")
            if not ts.isdigit() or abs(self.clock() * 1000 - int(ts)) > DINGTALK_TOLERANCE_MS:
                return error(310000, "invalid timestamp")
            # parse_qs has URL-decoded `sign` already: compare the base64 text
            expected = _b64_hmac(secret.encode(), f"{ts}\n{secret}".encode())
            if not hmac.compare_digest(expected, query.get("sign", "")):
                return error(310000, "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]")
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return error(40035, "缺少参数 json")
        msgtype = payload.get("msgtype") if isinstance(payload, dict) else None
        if msgtype != "markdown" and msgtype != "text":
            return error(40035, "缺少参数 msgtype")
        part = payload.get(msgtype) or {}
        text = part.get("text") if msgtype == "markdown" else part.get("content")
        if not isinstance(text, str) or not text or (msgtype == "markdown" and not part.get("title")):
            return error(40035, "缺少参数 markdown.title/text")
        if self.dingtalk_keywords and not any(k in text or k in str(part.get("title")) for k in self.dingtalk_keywords):
            return error(310000, "keywords not in content, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]")
        if self._over_rate("dingtalk", token):
            return error(130101, "send too fast, exceed 20 times per minute")
        return Answer.json(200, {"errcode": 0, "errmsg": "ok"}, code=0, accepted=True), payload

    def _handle_feishu(self, path: str, query: dict[str, str], headers: dict[str, str],
                       body: bytes) -> tuple[Answer, dict[str, Any] | None]:  # fmt: skip
        def error(code: int, msg: str, status: int = 200) -> tuple[Answer, None]:
            return Answer.json(status, {"code": code, "msg": msg, "data": {}}, code=code), None

        hook = path[len(FEISHU_PREFIX):]
        if hook not in self.feishu_hooks:
            return error(19001, "param invalid: incoming webhook access token invalid", 400)
        # "Bad Request" is the documented answer to a malformed body or one over 20 KB
        if len(body) > FEISHU_MAX_BYTES:
            return error(9499, "Bad Request", 400)
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return error(9499, "Bad Request", 400)
        if not isinstance(payload, dict):
            return error(9499, "Bad Request", 400)
        secret = self.feishu_hooks[hook]
        if secret is not None:
            ts = str(payload.get("timestamp", ""))
            expected = _b64_hmac(f"{ts}\n{secret}".encode(), b"")
            fresh = ts.isdigit() and abs(self.clock() - int(ts)) <= FEISHU_TOLERANCE
            if not fresh or not hmac.compare_digest(expected, str(payload.get("sign", ""))):
                return error(19021, "sign match fail or timestamp is not within one hour from current time")
        problem = feishu_message_problem(payload)
        if problem is not None:
            return error(9499, "Bad Request", 400)
        if self._over_rate("feishu", hook, window=1.0, limit=FEISHU_PER_SECOND):
            return error(9499, "too many request")
        if self._over_rate("feishu", hook):
            return error(11232, "frequency limited psm[lark.oapi.app_platform_runtime]")
        return Answer.json(200, {"code": 0, "msg": "success", "data": {}}, code=0, accepted=True), payload


def feishu_message_problem(payload: dict[str, Any]) -> str | None:
    """What Feishu would object to in a custom bot message (None: it is fine)."""
    kind = payload.get("msg_type")
    if kind not in ("text", "post", "interactive", "image", "share_chat"):
        return "msg_type need"
    if kind != "interactive":
        return None if isinstance(payload.get("content"), dict) else "content need"
    card = payload.get("card")
    if not isinstance(card, dict) or not isinstance(card.get("elements"), list):
        return "card.elements need"
    for element in card["elements"]:
        if element.get("tag") not in _FEISHU_TAGS:
            return f"unknown element tag {element.get('tag')!r}"
        texts = [element.get("text")] + [f.get("text") for f in element.get("fields", [])]
        texts += list(element.get("elements", []))
        for text in texts:
            if text is not None and text.get("tag") not in ("plain_text", "lark_md"):
                return "text tag must be plain_text or lark_md"
        for action in element.get("actions", []):
            if not str(action.get("url", "")).startswith(("http://", "https://")):
                return "button url must be http(s)"
    return None


def feishu_texts(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(tag, content) of every text in a card, header first."""
    out: list[tuple[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("tag") in ("plain_text", "lark_md"):
                out.append((node["tag"], node.get("content", "")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(payload.get("card"))
    return out


def teams_card_problem(payload: Any) -> str | None:
    """What Teams would object to in a webhook message carrying an Adaptive Card."""
    if not isinstance(payload, dict) or payload.get("type") != "message":
        return "type must be 'message'"
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "attachments must be a non-empty list"
    for attachment in attachments:
        if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
            return "contentType must be application/vnd.microsoft.card.adaptive"
        card = attachment.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
            return "content.type must be AdaptiveCard"
        if not isinstance(card.get("version"), str) or not isinstance(card.get("body"), list):
            return "an AdaptiveCard needs a version and a body"
        for action in card.get("actions") or []:
            if action.get("type") == "Action.OpenUrl" and not str(action.get("url", "")).startswith(("http://", "https://")):
                return "Action.OpenUrl needs an http(s) url"
    return None


def teams_texts(payload: dict[str, Any]) -> list[str]:
    """Every TextBlock text and FactSet title/value of the cards in `payload`."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                out.append(node.get("text", ""))
            if node.get("type") == "FactSet":
                for fact in node.get("facts", []):
                    out.extend([fact.get("title", ""), fact.get("value", "")])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(payload.get("attachments"))
    return out


def _b64_hmac(key: bytes, msg: bytes) -> str:
    return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()


class _Handler(SandboxHandler):
    owner: BotSandbox
    server_version = "BotSandbox/1"

    def _send(self, answer: Answer) -> None:
        self.reply(answer.status, answer.body, answer.content_type, answer.headers)

    def do_GET(self) -> None:
        self._send(Answer.text(200 if self.path in ("/", "/health") else 404, "bot sandbox\n"))

    def do_POST(self) -> None:
        owner = self.owner
        parts = urlsplit(self.path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if path == MOVED_PATH:  # a webhook URL that redirects (to the generic webhook)
            owner._log(None, path, 308, "moved")
            self._send(Answer.text(308, "moved\n", headers={"Location": owner.webhook_url}))
            return
        api = owner.route(path)
        if api is None:
            owner._log(None, path, 404, "not_found")
            self._send(Answer.text(404, "not found\n"))
            return
        fault = owner._take_fault()
        if fault is not None and not fault.after_posting:
            self._fail(api, path, fault)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer, payload = owner.handle(api, path, query, headers, body)
        if answer.accepted and payload is not None:
            owner._record(api, path, payload, headers, body)
        if fault is not None:
            self._fail(api, path, fault)
            return
        owner._log(api, path, answer.status, answer.code)
        self._send(answer)

    def _fail(self, api: Api, path: str, fault: _Fault) -> None:
        if fault.status == 429:
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            self.owner._log(api, path, 429, "rate_limited")
            if fault.body is not None:
                self._send(Answer.json(429, fault.body, headers=headers))
            else:
                self._send(Answer.text(429, "Too Many Requests", headers=headers))
            return
        self.owner._log(api, path, fault.status, "injected_failure")
        self._send(Answer.text(fault.status, f"<html><body>{fault.status} sandbox failure</body></html>"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.bots",
        description="Local webhook, Teams, WeCom, DingTalk and Feishu bots that print every message.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args(argv)

    def show(message: BotMessage) -> None:
        print(f"── {message.api} · {message.path}\n"
              + json.dumps(message.payload, ensure_ascii=False, indent=2) + "\n", flush=True)  # fmt: skip

    sandbox = BotSandbox(host=args.host, port=args.port, on_message=show)
    return serve_until_stopped(sandbox, f"{args.host}:{args.port}", lambda: (
        "Bot sandbox listening. For config.yaml (sandbox credentials, not real ones):\n"
        f"  webhook:  url: {sandbox.webhook_url}\n            secret: {sandbox.webhook_secret}\n"
        f"  teams:    url: {sandbox.teams_url}\n"
        f"  feishu:   url: {sandbox.feishu_url}\n            secret: {sandbox.feishu_secret}\n"
        f"  dingtalk: url: {sandbox.dingtalk_url}\n            secret: {sandbox.dingtalk_secret}\n"
        f"  wecom:    url: {sandbox.wecom_url}\n"
        "Messages appear below as they arrive. Ctrl-C stops.\n"
    ))  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
