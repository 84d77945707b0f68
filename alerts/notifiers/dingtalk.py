"""Alerts to a DingTalk (钉钉) group through a custom robot (config `dingtalk:`).

Setup: in the DingTalk group, *group settings → bots → add robot → custom (自定义)*;
choose the security setting *additional signature (加签)* and copy its `SEC...`
secret and the webhook URL, `https://oapi.dingtalk.com/robot/send?access_token=<token>`
(https://open.dingtalk.com/document/orgapp/custom-robot-access). Both are credentials.

Signing (https://open.dingtalk.com/document/orgapp/customize-robot-security-settings):
every request carries `timestamp` (unix milliseconds, within an hour of DingTalk's
clock) and `sign` = urlencode(base64(HmacSHA256(key=secret, msg=f"{timestamp}\\n{secret}")))
as query parameters. A robot set up with *custom keywords* instead needs
`dingtalk.keyword`; one with an IP allow-list needs this machine's address in it.

Answers are JSON `{"errcode": 0, "errmsg": "ok"}` with HTTP 200, also for errors:

* 130101 `send too fast, exceed 20 times per minute`: retryable at a later check;
* 310000 (`sign not match`, `invalid timestamp`, `keywords not in content`,
  `ip not in whitelist`): the security setting refused it; not retryable;
* 300001 `token is not exist`: the access token is wrong or the robot was removed;
  not retryable;
* 40035 a missing parameter: a BrandPulse bug; -1 busy and any unlisted code: retryable.

HTTP 5xx, 429 and timeouts are handled as on every HTTP channel (`alerts.notifiers.http`).
`check()` validates the token and the signature without posting: a signed empty
request, which DingTalk refuses as a message after checking both.

Delivery: a robot cannot read the group back, so `find` raises CannotTell and an alert
whose send may have arrived (5xx, timeout, crash) is sent again by the engine's outbox:
at least once, with the alert id in the footer to make a repeat obvious.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote_plus, urlsplit

from alerts.health import HealthNotice
from alerts.model import Alert
from alerts.notifiers.dingtalk_templates import build_message, build_notice_message
from alerts.notifiers.http import BUG, BUSY, CREDENTIAL, RATE, BotNotifier
from brandpulse.config import Config, DingtalkConfig
from brandpulse.secrets import reveal


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's `sign` for `timestamp_ms`, base64 (not yet URL-encoded)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


class DingtalkNotifier(BotNotifier):
    """Posts Markdown messages to one DingTalk custom robot, signed when a secret is set."""

    name: ClassVar[str] = "dingtalk"
    label: ClassVar[str] = "DingTalk robot"
    setting: ClassVar[str] = "dingtalk.url"
    code_keys: ClassVar[tuple[str, ...]] = ("errcode",)
    message_keys: ClassVar[tuple[str, ...]] = ("errmsg",)
    errors: ClassVar[dict[int, tuple[str, str]]] = {
        -1: (BUSY, "DingTalk is busy"),
        130101: (RATE, "a DingTalk robot may send 20 messages a minute"),
        310000: (CREDENTIAL, "the robot's security setting refused it: check dingtalk.secret (signed "
                 "mode) and this machine's clock, dingtalk.keyword (custom keywords) or its IP allow-list"),
        300001: (CREDENTIAL, "the access token is wrong or the robot was removed; check dingtalk.url"),
        40035: (BUG, "DingTalk found a parameter missing (a BrandPulse bug; please report)"),
    }  # fmt: skip

    def __init__(
        self,
        *,
        url: str,
        secret: str | None = None,
        keyword: str | None = None,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(url=url, timeout=timeout)
        self._secret = secret
        self._token = (parse_qs(urlsplit(url).query).get("access_token") or [""])[0]
        self.keyword = keyword
        self.clock = clock

    @classmethod
    def configured(cls, config: Config) -> bool:
        return reveal(config.dingtalk.url) is not None

    @classmethod
    def build(cls, config: Config) -> DingtalkNotifier:
        return cls.from_config(config.dingtalk)

    @classmethod
    def from_config(cls, section: DingtalkConfig, **overrides: Any) -> DingtalkNotifier:
        url = reveal(section.url)
        if url is None:
            raise ValueError("dingtalk: url is required")
        return cls(url=url, secret=reveal(section.secret), keyword=section.keyword, **overrides)

    @property
    def _secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._url, self._token, self._secret) if s)

    def _request_url(self) -> str:
        """The URL with `timestamp` (ms) and the URL-encoded `sign` when signed."""
        if not self._secret:
            return self._url
        ts = int(self.clock() * 1000)
        return f"{self._url}&timestamp={ts}&sign={quote_plus(sign(self._secret, ts))}"

    def check(self) -> str:
        """Validate the token and the signature with an empty request (not a message)."""
        self._probe()
        mode = "signed" if self._secret else "unsigned"
        return f"{self.where}: token and signature accepted ({mode}; checked without posting)"

    def message(self, alert: Alert) -> dict[str, Any]:
        return build_message(alert, keyword=self.keyword)

    def notice_message(self, notice: HealthNotice) -> dict[str, Any]:
        return build_notice_message(notice, keyword=self.keyword)
