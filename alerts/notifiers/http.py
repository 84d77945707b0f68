"""The one HTTP transport of the webhook-style channels (generic JSON webhook, Teams,
WeCom, DingTalk, Feishu): POST a JSON body, and turn what can go wrong into a
`NotifierError` the engine's outbox understands.

What each outcome means, the same for every channel:

* The request never left (connection refused, name not resolved): retryable, and the
  message cannot have arrived (`maybe_delivered=False`).
* It left and no answer came back (a timeout, a reset): retryable, and it may have
  arrived (`maybe_delivered=True`). The same for any HTTP 5xx: a proxy or the
  service may have failed after taking the message.
* HTTP 429: retryable, after the `Retry-After` the service gave (when it gave one).
* Anything else is for the channel to judge from the answer (`HttpAnswer`): the
  group bots (WeCom, DingTalk, Feishu) answer with an error code in a JSON body, read
  by their shared base `BotNotifier`.

Secrets: the webhook URLs of these channels *are* credentials (a key, an access token
or an id in the path), so no text produced here contains the URL: errors name the
channel and the host only, and every text passes through `brandpulse.secrets.redact`
with the channel's secret values as a second line of defence.
"""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from alerts.model import Alert, Delivery
from alerts.notifiers.base import Notifier, NotifierError
from brandpulse.secrets import redact

if TYPE_CHECKING:
    from alerts.health import HealthNotice

USER_AGENT = "BrandPulse-alerts/1"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is misconfigured: following would re-send the request
    (as a GET, or with the body for 307/308) somewhere not configured. The 3xx is
    returned as the answer instead, and reported as a refusal."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# Environment proxies (HTTPS_PROXY, NO_PROXY) apply, as for every HTTP client here.
_OPENER = urllib.request.build_opener(_NoRedirect)


class ChannelError(NotifierError):
    """A webhook-style channel refused or failed a message. `status` is the HTTP status
    when there was an answer; `code` the channel's own error code when it gave one."""

    def __init__(
        self,
        notifier: str,
        cause: str,
        *,
        status: int | None = None,
        code: int | str | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
        maybe_delivered: bool = False,
    ) -> None:
        self.status = status
        self.code = code
        super().__init__(
            notifier,
            cause,
            retryable=retryable,
            retry_after=retry_after,
            maybe_delivered=maybe_delivered,
        )


@dataclass(frozen=True)
class HttpAnswer:
    """What the service answered (any status: the channel decides what it means)."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8")) if self.body else None
        except (UnicodeDecodeError, ValueError):
            return None

    @property
    def retry_after(self) -> float | None:
        """`Retry-After` in seconds (the delta-seconds form), None when absent or a date."""
        for key, value in self.headers.items():
            if key.lower() == "retry-after":
                try:
                    return max(float(value), 0.0)
                except (TypeError, ValueError):
                    return None
        return None


def host_of(url: str) -> str:
    """The host (and port) of `url`: all an error message may say about where."""
    try:
        parts = urlsplit(url)
        return parts.netloc.rsplit("@", 1)[-1] or "?"
    except ValueError:
        return "?"


def encode_json(payload: Any) -> bytes:
    """The exact bytes sent (and signed): compact UTF-8 JSON."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def post_json(
    notifier: str,
    url: str,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 15.0,
    secrets: Iterable[str] = (),
) -> HttpAnswer:
    """POST `body` (JSON bytes) to `url`; return the answer, whatever its status.

    Raises `ChannelError` only for failures without an answer (see the module
    docstring); the text names `notifier` and the host, never the URL.
    """
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json; charset=utf-8")
    request.add_header("User-Agent", USER_AGENT)
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    where = host_of(url)
    try:
        # The URL is configuration validated as https (or loopback http): no file:// here.
        with _OPENER.open(request, timeout=timeout) as response:
            return HttpAnswer(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as exc:
        try:
            data = exc.read()
        except OSError:
            data = b""
        return HttpAnswer(exc.code, dict(exc.headers.items()) if exc.headers else {}, data)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        # Refused, unresolvable or a certificate refused: the request never reached the
        # service. Anything else (a timeout, a reset) may have hit after it took it.
        never_sent = isinstance(reason, ConnectionRefusedError | socket.gaierror | ssl.SSLCertVerificationError)
        what = "timed out" if isinstance(reason, TimeoutError | socket.timeout) else "failed"
        cause = f"cannot reach {where}: request {what} ({type(reason).__name__}: {reason})"
        raise ChannelError(
            notifier, redact(cause, [url, *secrets]), maybe_delivered=not never_sent
        ) from None


def http_failure(
    notifier: str,
    answer: HttpAnswer,
    where: str,
    *,
    hint: str = "",
    secrets: Iterable[str] = (),
) -> ChannelError | None:
    """The error for an HTTP status that means the same on every channel (429, 5xx,
    other non-2xx); None for a 2xx, which the channel reads itself.

    `hint` says what a person should check for a 4xx refusal (401/403/404: usually the
    URL or the secret). The answer's body is quoted, redacted and cut short.
    """
    status = answer.status
    if 200 <= status < 300:
        return None
    detail = redact(" ".join(answer.text.split())[:200], secrets)
    said = f": {detail}" if detail else ""
    if status == 429:
        wait = answer.retry_after
        asks = f"; it asks to wait {wait:g}s" if wait is not None else ""
        return ChannelError(notifier, f"{where} rate limited the message (HTTP 429){asks}",
                            status=status, retry_after=wait)  # fmt: skip
    if status >= 500:
        return ChannelError(
            notifier,
            f"{where} answered HTTP {status} (outage or overload; the message may have arrived){said}",
            status=status,
            retry_after=answer.retry_after,
            maybe_delivered=True,
        )
    if status == 408:
        return ChannelError(notifier, f"{where} timed out reading the message (HTTP 408)",
                            status=status, maybe_delivered=True)  # fmt: skip
    if status == 413:
        return ChannelError(
            notifier,
            f"{where} refused the message as too large (HTTP 413; a BrandPulse bug, please report){said}",
            status=status,
            retryable=False,
        )
    extra = f" ({hint})" if hint else ""
    return ChannelError(notifier, f"{where} refused the message: HTTP {status}{extra}{said}",
                        status=status, retryable=False)  # fmt: skip


def json_code(answer: HttpAnswer, *keys: str) -> int | None:
    """The first integer among `keys` of the JSON answer (a bot API's `errcode`/`code`),
    or None when the answer is not such JSON."""
    data = answer.json()
    if not isinstance(data, dict):
        return None
    for key in keys:
        if isinstance(data.get(key), int) and not isinstance(data.get(key), bool):
            return data[key]
    return None


# What an error code of a bot API means for the outbox (see `BotNotifier`).
RATE = "rate"  # rate limited: retryable later
CREDENTIAL = "credential"  # key, token, signature, IP or keyword refused: needs a person
BUG = "bug"  # the message was refused as malformed or too large: a BrandPulse bug
BUSY = "busy"  # the service is busy: retryable


class BotNotifier(Notifier):
    """A group bot whose every answer carries a JSON error code (WeCom's and DingTalk's
    `errcode`, Feishu's `code`), usually with HTTP 200, sometimes with a 4xx or a 429.

    A subclass names its code and message keys, its table of known codes
    (code -> (kind, hint)) and the setting a person should check; it may sign the URL
    (`_request_url`) or the body (`_request_body`). This class sends, reads the code
    whatever the HTTP status below 500 (a 5xx always counts as "may have arrived"), and
    turns a non-zero code into a `ChannelError`: RATE and BUSY are retryable, with the
    answer's `Retry-After` when given; CREDENTIAL and BUG are not; an unknown code is
    retryable (the outbox keeps the alert either way, and an undocumented code is more
    often transient than not). The service's own message is quoted, redacted: some
    echo the request's key.

    `check()` sends a request that is not a message (no message type), which these
    services refuse only after checking the key, token and signature: a CREDENTIAL
    code means they are wrong, any other refusal that they passed.
    """

    code_keys: ClassVar[tuple[str, ...]]
    message_keys: ClassVar[tuple[str, ...]]
    errors: ClassVar[Mapping[int, tuple[str, str]]]
    setting: ClassVar[str]  # "wecom.url": what a person should check first

    def __init__(self, *, url: str, timeout: float) -> None:
        if not url:
            raise ValueError(f"{type(self).__name__} needs {self.setting}")
        self._url = url
        self.timeout = timeout

    @property
    def where(self) -> str:
        return f"{self.label} at {host_of(self._url)}"

    label: ClassVar[str] = "bot"

    @property
    def _secrets(self) -> tuple[str, ...]:
        """Every secret value the texts of this channel must never show."""
        return (self._url,)

    def _request_url(self) -> str:
        return self._url

    def _request_body(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    def _kind(self, code: int, message: str) -> str:
        return self.errors.get(code, ("", ""))[0]

    def _code(self, answer: HttpAnswer) -> int | None:
        return json_code(answer, *self.code_keys)

    def _message(self, answer: HttpAnswer) -> str:
        data = answer.json()
        if not isinstance(data, dict):
            return ""
        return next((str(data[k]) for k in self.message_keys if k in data), "")

    def _request(self, payload: dict[str, Any]) -> HttpAnswer:
        url = self._request_url()
        secrets = (url, *self._secrets)
        answer = post_json(self.name, url, encode_json(self._request_body(payload)),
                           timeout=self.timeout, secrets=secrets)  # fmt: skip
        if answer.status >= 500 or self._code(answer) is None:
            failure = http_failure(self.name, answer, self.where, secrets=secrets,
                                   hint=f"check {self.setting}")  # fmt: skip
            if failure is not None:
                raise failure
        return answer

    def _refusal(self, answer: HttpAnswer) -> ChannelError:
        code = self._code(answer)
        if code is None:
            return ChannelError(self.name, f"{self.where} answered HTTP {answer.status} without an "
                                f"error code (not a {self.label} URL? check {self.setting})",
                                status=answer.status, retryable=False)  # fmt: skip
        message = self._message(answer)
        kind = self._kind(code, message) or BUSY
        listed, hint = self.errors.get(code, ("", ""))
        if listed != kind:  # a code that means two things (Feishu's 9499)
            hint = "rate limited; the alert waits for a later check" if kind == RATE else ""
        said = redact(" ".join(message.split())[:200], self._secrets)
        cause = f"{self.where} refused the message: error {code} ({said})" + (f"; {hint}" if hint else "")
        retryable = kind in (RATE, BUSY)
        return ChannelError(self.name, cause, status=answer.status, code=code, retryable=retryable,
                            retry_after=answer.retry_after if retryable else None)  # fmt: skip

    def _deliver(self, payload: dict[str, Any]) -> None:
        answer = self._request(payload)
        if self._code(answer) != 0:
            raise self._refusal(answer)

    def _probe(self) -> None:
        """Raise unless the credentials pass (see the class docstring)."""
        answer = self._request({})
        code = self._code(answer)
        if code is None or (code != 0 and self._kind(code, self._message(answer)) in (CREDENTIAL, RATE, BUSY)):
            raise self._refusal(answer)

    def send(self, alert: Alert, *, reply_to: Delivery | None = None) -> Delivery:
        self._deliver(self.message(alert))
        return Delivery(notifier=self.name, alert_id=alert.alert_id, delivered_at=datetime.now(UTC))

    def send_notice(self, notice: HealthNotice) -> Delivery:
        self._deliver(self.notice_message(notice))
        return Delivery(notifier=self.name, alert_id=notice.notice_id, delivered_at=datetime.now(UTC))

    def message(self, alert: Alert) -> dict[str, Any]:
        """The request body for `alert` (the channel's template)."""
        raise NotImplementedError

    def notice_message(self, notice: HealthNotice) -> dict[str, Any]:
        """The request body for a health notice (the channel's template)."""
        raise NotImplementedError
