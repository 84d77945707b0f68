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

from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from alerts.health import HealthNotice
from alerts.model import Alert
from alerts.notifiers.http import BUG, BUSY, CREDENTIAL, RATE, BotNotifier
from alerts.notifiers.wecom_templates import build_message, build_notice_message
from brandpulse.config import Config, WecomConfig
from brandpulse.secrets import reveal


class WecomNotifier(BotNotifier):
    """Posts Markdown messages to one WeCom group bot."""

    name: ClassVar[str] = "wecom"
    label: ClassVar[str] = "WeCom bot"
    setting: ClassVar[str] = "wecom.url"
    code_keys: ClassVar[tuple[str, ...]] = ("errcode",)
    message_keys: ClassVar[tuple[str, ...]] = ("errmsg",)
    errors: ClassVar[dict[int, tuple[str, str]]] = {
        -1: (BUSY, "WeCom is busy"),
        45009: (RATE, "a WeCom bot may send 20 messages a minute"),
        93000: (CREDENTIAL, "the bot's key is wrong or the bot was removed; check wecom.url"),
        40058: (BUG, "the message is longer than WeCom allows (a BrandPulse bug; please report)"),
        40008: (BUG, "WeCom did not accept the message type (a BrandPulse bug; please report)"),
    }

    def __init__(self, *, url: str, timeout: float = 15.0) -> None:
        super().__init__(url=url, timeout=timeout)
        self._key = (parse_qs(urlsplit(url).query).get("key") or [""])[0]

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
        return tuple(s for s in (self._url, self._key) if s)

    def check(self) -> str:
        """Validate the key with an empty body, which WeCom refuses without posting."""
        self._probe()
        return f"{self.where}: key accepted (checked without posting)"

    def message(self, alert: Alert) -> dict[str, Any]:
        return build_message(alert)

    def notice_message(self, notice: HealthNotice) -> dict[str, Any]:
        return build_notice_message(notice)
