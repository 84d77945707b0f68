"""Alerts to a WeCom (企业微信) group through a group bot webhook (config `wecom:`).

Setup: in the WeCom group, *Add group bot*; copy its webhook URL,
`https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=<key>`. The key is the
credential (https://developer.work.weixin.qq.com/document/path/91770, 群机器人配置说明,
also at https://work.weixin.qq.com/api/doc/90000/90136/91770). Messages are
Markdown (`alerts.notifiers.wecom_templates`).

Answers are JSON `{"errcode": 0, "errmsg": "ok"}` with HTTP 200, also for errors
(global codes: https://developer.work.weixin.qq.com/document/path/90313):

* 45009 `api freq out of limit`: a bot may send 20 messages a minute; retryable
  (WeCom gives no wait; the outbox tries again at a later check);
* 93000 `invalid webhook url`: the key is wrong or the bot was removed; not retryable;
* 40058 content too long, 40008 invalid message type: a BrandPulse bug; not retryable;
* -1 system busy, and any code not listed: retryable.

HTTP 5xx, 429 and timeouts are handled as on every HTTP channel (`alerts.notifiers.http`).

`check()` validates the key without posting: it sends an empty body, which WeCom
refuses as a message (no `msgtype`) *after* checking the key, so 93000 means a bad key
and any other refusal a good one.

Delivery: a group bot cannot read the group back, so `find` raises CannotTell and an
alert whose send may have arrived (5xx, timeout, crash) is sent again by the engine's
outbox: at least once, with the alert id in the footer to make a repeat obvious.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from alerts.health import HealthNotice
from alerts.model import Alert, Delivery
from alerts.notifiers.base import Notifier
from alerts.notifiers.http import (
    BUG,
    BUSY,
    CREDENTIAL,
    RATE,
    ChannelError,
    HttpAnswer,
    bot_http_failure,
    code_failure,
    encode_json,
    host_of,
    post_json,
)
from alerts.notifiers.wecom_templates import build_message, build_notice_message
from brandpulse.config import Config, WecomConfig
from brandpulse.secrets import reveal

ERRORS: dict[int, tuple[str, str]] = {
    -1: (BUSY, "WeCom is busy"),
    45009: (RATE, "a WeCom bot may send 20 messages a minute"),
    93000: (CREDENTIAL, "the bot's key is wrong or the bot was removed; check wecom.url"),
    40058: (BUG, "the message is longer than WeCom allows (a BrandPulse bug; please report)"),
    40008: (BUG, "WeCom did not accept the message type (a BrandPulse bug; please report)"),
}


class WecomNotifier(Notifier):
    """Posts Markdown messages to one WeCom group bot."""

    name: ClassVar[str] = "wecom"

    def __init__(self, *, url: str, timeout: float = 15.0) -> None:
        if not url:
            raise ValueError("WecomNotifier needs wecom.url")
        self._url = url
        self._key = (parse_qs(urlsplit(url).query).get("key") or [""])[0]
        self.timeout = timeout
        self.where = f"WeCom bot at {host_of(url)}"

    @classmethod
    def configured(cls, config: Config) -> bool:
        return reveal(config.wecom.url) is not None

    @classmethod
    def build(cls, config: Config) -> WecomNotifier:
        return cls.from_config(config.wecom)

    @classmethod
    def from_config(cls, section: WecomConfig, **overrides: Any) -> WecomNotifier:
        url = reveal(section.url)
        if url is None:
            raise ValueError("wecom: url is required")
        return cls(url=url, **overrides)

    @property
    def _secrets(self) -> tuple[str, ...]:
        return (self._url, self._key)

    def check(self) -> str:
        """Validate the key with an empty body, which WeCom refuses without posting."""
        answer = self._request({})
        data = answer.json()
        code = data.get("errcode") if isinstance(data, dict) else None
        if not isinstance(code, int):
            raise self._refusal(answer)  # not a WeCom answer at all
        kind = ERRORS.get(code, ("", ""))[0]
        if kind in (CREDENTIAL, RATE, BUSY):
            raise self._refusal(answer)  # a bad key, or the key could not be checked now
        return f"{self.where}: key accepted (checked without posting)"

    def send(self, alert: Alert, *, reply_to: Delivery | None = None) -> Delivery:
        self._deliver(build_message(alert))
        return Delivery(notifier=self.name, alert_id=alert.alert_id, delivered_at=datetime.now(UTC))

    def send_notice(self, notice: HealthNotice) -> Delivery:
        self._deliver(build_notice_message(notice))
        return Delivery(notifier=self.name, alert_id=notice.notice_id, delivered_at=datetime.now(UTC))

    def _request(self, payload: dict[str, Any]) -> HttpAnswer:
        answer = post_json(self.name, self._url, encode_json(payload), timeout=self.timeout,
                           secrets=self._secrets)  # fmt: skip
        failure = bot_http_failure(self.name, answer, self.where, "errcode",
                                   secrets=self._secrets, hint="check wecom.url")  # fmt: skip
        if failure is not None:
            raise failure
        return answer

    def _refusal(self, answer: HttpAnswer) -> ChannelError:
        data = answer.json()
        if not isinstance(data, dict) or not isinstance(data.get("errcode"), int):
            return ChannelError(self.name, f"{self.where} answered HTTP {answer.status} without an "
                                "errcode (not a WeCom bot URL? check wecom.url)",
                                status=answer.status, retryable=False)  # fmt: skip
        return code_failure(self.name, self.where, data["errcode"], str(data.get("errmsg", "")),
                            ERRORS, answer=answer, secrets=self._secrets)  # fmt: skip

    def _deliver(self, payload: dict[str, Any]) -> None:
        answer = self._request(payload)
        data = answer.json()
        if isinstance(data, dict) and data.get("errcode") == 0:
            return
        raise self._refusal(answer)
