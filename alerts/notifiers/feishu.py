"""Alerts to a Feishu / Lark (飞书) group through a custom bot (config `feishu:`).

Setup: in the group, *settings → bots → add bot → custom bot (自定义机器人)*; enable
*signature verification (签名校验)* and copy its secret and the webhook URL,
`https://open.feishu.cn/open-apis/bot/v2/hook/<id>` (Lark:
`https://open.larksuite.com/open-apis/bot/v2/hook/<id>`)
(https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot). Both are
credentials. Messages are interactive cards (`alerts.notifiers.feishu_templates`).

Signing: the body carries `timestamp` (unix seconds, as a string, within an hour of
Feishu's clock) and `sign` = base64(HmacSHA256(key=f"{timestamp}\\n{secret}", msg=b""))
— the key is the string, the message empty, unlike DingTalk.

Answers are JSON `{"code": 0, "msg": "success", "data": {}}` (older deployments:
`{"StatusCode": 0, "StatusMessage": "success"}`); a refusal carries a non-zero `code`,
with HTTP 200 or 4xx, so the code is read whatever the status:

* 11232 (rate limited: a bot may send 100 messages a minute and 5 a second, and Feishu
  warns of 11232 under load at full and half hours) and 9499 with `too many request`:
  retryable at a later check;
* 9499 `Bad Request`: the body is malformed or over 20 KB, a BrandPulse bug; not
  retryable (the same code as the rate limit above: the `msg` tells them apart);
* 19021 `sign match fail or timestamp is not within one hour from current time`,
  19022 `Ip Not Allowed`, 19024 `Key Words Not Found`, 19001 the hook id is invalid:
  the bot's security settings refused it; not retryable;
* any unlisted code: retryable.

HTTP 5xx, 429 and timeouts are handled as on every HTTP channel (`alerts.notifiers.http`).
`check()` validates the hook id and the signature without posting: a signed request
without a message, which Feishu refuses as one after checking both.

Delivery: a custom bot cannot read the group back, so `find` raises CannotTell and an
alert whose send may have arrived (5xx, timeout, crash) is sent again by the engine's
outbox: at least once, with the alert id in the card's note to make a repeat obvious.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any, ClassVar

from alerts.health import HealthNotice
from alerts.model import Alert
from alerts.notifiers.feishu_templates import build_message, build_notice_message
from alerts.notifiers.http import BUG, CREDENTIAL, RATE, BotNotifier
from brandpulse.config import Config, FeishuConfig
from brandpulse.secrets import reveal

_RATE_HINT = "a Feishu bot may send 100 messages a minute and 5 a second"


def sign(secret: str, timestamp: int) -> str:
    """Feishu's `sign`: base64(HmacSHA256(key=f"{timestamp}\\n{secret}", msg=b""))."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


class FeishuNotifier(BotNotifier):
    """Posts interactive cards to one Feishu/Lark custom bot, signed when a secret is set."""

    name: ClassVar[str] = "feishu"
    label: ClassVar[str] = "Feishu bot"
    setting: ClassVar[str] = "feishu.url"
    # `StatusCode`/`StatusMessage`: the older answer, still sent alongside
    code_keys: ClassVar[tuple[str, ...]] = ("code", "StatusCode")
    message_keys: ClassVar[tuple[str, ...]] = ("msg", "StatusMessage")
    errors: ClassVar[dict[int, tuple[str, str]]] = {
        9499: (BUG, "Feishu found the request malformed or over 20 KB (a BrandPulse bug; please report)"),
        11232: (RATE, _RATE_HINT),
        19021: (CREDENTIAL, "check feishu.secret, and that this machine's clock is right"),
        19022: (CREDENTIAL, "this machine's IP is not in the bot's allow-list"),
        19024: (CREDENTIAL, "the message lacks the bot's custom keyword; use signature verification instead"),
        19001: (CREDENTIAL, "the hook id is wrong or the bot was removed; check feishu.url"),
    }

    def __init__(
        self,
        *,
        url: str,
        secret: str | None = None,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(url=url, timeout=timeout)
        self._secret = secret
        self._hook = url.rstrip("/").rsplit("/", 1)[-1]
        self.clock = clock

    @classmethod
    def configured(cls, config: Config) -> bool:
        return reveal(config.feishu.url) is not None

    @classmethod
    def build(cls, config: Config) -> FeishuNotifier:
        return cls.from_config(config.feishu)

    @classmethod
    def from_config(cls, section: FeishuConfig, **overrides: Any) -> FeishuNotifier:
        url = reveal(section.url)
        if url is None:
            raise ValueError("feishu: url is required")
        return cls(url=url, secret=reveal(section.secret), **overrides)

    @property
    def _secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._url, self._hook, self._secret) if s)

    def _request_body(self, payload: dict[str, Any]) -> dict[str, Any]:
        """`payload` with `timestamp` (seconds, a string) and `sign` when signed."""
        if not self._secret:
            return payload
        ts = int(self.clock())
        return {"timestamp": str(ts), "sign": sign(self._secret, ts), **payload}

    def _kind(self, code: int, message: str) -> str:
        # 9499 is both "Bad Request" (documented) and "too many request" (seen in use)
        if code == 9499 and "too many" in message.lower():
            return RATE
        return super()._kind(code, message)

    def check(self) -> str:
        """Validate the hook id and the signature with a request that is not a message."""
        self._probe()
        mode = "signed" if self._secret else "unsigned"
        return f"{self.where}: hook and signature accepted ({mode}; checked without posting)"

    def message(self, alert: Alert) -> dict[str, Any]:
        return build_message(alert)

    def notice_message(self, notice: HealthNotice) -> dict[str, Any]:
        return build_notice_message(notice)
