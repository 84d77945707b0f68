"""Alerts as signed JSON to any HTTP receiver (config section `webhook:`).

Each alert (and each health notice) is one POST of the JSON body documented in
`alerts.notifiers.webhook_templates`, with these headers:

* `X-BrandPulse-Signature: t=<unix seconds>,v1=<hex>` where `<hex>` is
  HMAC-SHA256(key=webhook.secret, msg=f"{t}." + body), the scheme of Stripe's
  webhooks (https://docs.stripe.com/webhooks#verify-manually) and close to GitHub's
  `X-Hub-Signature-256` (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries);
* `X-BrandPulse-Event: alert` or `notice`, and `X-BrandPulse-Id: <id>` (also `id` in
  the body).

A receiver verifies it like this (Python; any language has HMAC-SHA256)::

    import hashlib, hmac, time

    def verify(secret: bytes, header: str, body: bytes, tolerance: int = 300) -> bool:
        fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        t, sig = fields.get("t", ""), fields.get("v1", "")
        if not t.isdigit() or abs(time.time() - int(t)) > tolerance:
            return False                    # too old (or from the future): a replay
        expected = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, sig)

over the raw body bytes as received (not re-serialised JSON). The timestamp bounds
replays to the tolerance; remembering the `id`s seen within it stops those too.

Answers: any 2xx is delivered. 429 is retried later (after `Retry-After` when given);
a 5xx or a timeout may have been taken (`maybe_delivered`); any other 4xx is a
refusal that needs a person (401/403: the receiver does not accept the signature or
the URL), not retryable.

Delivery: the engine's outbox (`alerts.engine`) never loses an alert and lets one
daemon at a time send it; an alert whose send may have arrived is looked for before
it is sent again. A webhook cannot be read back (`find` raises CannotTell), so such an
alert is sent again: delivery is at least once. It is exactly once *for a receiver
that deduplicates on `id`*, which is the same on every attempt of the same alert.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from alerts.health import HealthNotice
from alerts.model import Alert, Delivery
from alerts.notifiers.base import Notifier
from alerts.notifiers.http import ChannelError, host_of, http_failure, post_json
from alerts.notifiers.webhook_templates import build_body, build_notice_body
from brandpulse.config import Config, WebhookConfig
from brandpulse.secrets import reveal

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-BrandPulse-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-BrandPulse-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


class WebhookNotifier(Notifier):
    """POSTs signed JSON; see the module docstring for the body, the signature and
    what the answers mean."""

    name: ClassVar[str] = "webhook"

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not url or not secret:
            raise ValueError("WebhookNotifier needs webhook.url and webhook.secret")
        self._url = url
        self._secret = secret
        self.timeout = timeout
        self.clock = clock
        self.where = f"webhook {host_of(url)}"

    @classmethod
    def configured(cls, config: Config) -> bool:
        return reveal(config.webhook.url) is not None

    @classmethod
    def build(cls, config: Config) -> WebhookNotifier:
        return cls.from_config(config.webhook)

    @classmethod
    def from_config(cls, section: WebhookConfig, **overrides: Any) -> WebhookNotifier:
        url, secret = reveal(section.url), reveal(section.secret)
        if url is None or secret is None:
            raise ValueError("webhook: url and secret are both required")
        return cls(url=url, secret=secret, **overrides)

    def check(self) -> str:
        """A generic receiver has nothing to ask without posting: says where it goes."""
        return f"{self.where} (signed JSON; not verifiable without posting)"

    def send(self, alert: Alert, *, reply_to: Delivery | None = None) -> Delivery:
        self._post(build_body(alert), "alert", alert.alert_id)
        return Delivery(notifier=self.name, alert_id=alert.alert_id, delivered_at=datetime.now(UTC))

    def send_notice(self, notice: HealthNotice) -> Delivery:
        self._post(build_notice_body(notice), "notice", notice.notice_id)
        return Delivery(notifier=self.name, alert_id=notice.notice_id, delivered_at=datetime.now(UTC))

    def _post(self, body: bytes, event: str, ident: str) -> None:
        headers = {
            SIGNATURE_HEADER: signature(self._secret, int(self.clock()), body),
            "X-BrandPulse-Event": event,
            "X-BrandPulse-Id": ident,
        }
        secrets = (self._url, self._secret)
        answer = post_json(self.name, self._url, body, headers=headers, timeout=self.timeout,
                           secrets=secrets)  # fmt: skip
        failure = http_failure(
            self.name, answer, self.where, secrets=secrets,
            hint="the receiver does not accept the signature or the URL; check webhook.secret "
            "and webhook.url" if answer.status in (401, 403) else "",
        )  # fmt: skip
        if failure is not None:
            raise failure  # the engine logs it, with the alert id
        log.debug("%s took %s %s (HTTP %d)", self.where, event, ident, answer.status)


__all__ = ["SIGNATURE_HEADER", "ChannelError", "WebhookNotifier", "signature"]
