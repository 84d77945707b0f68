"""Alerts to a Microsoft Teams channel through an incoming webhook (config `teams:`).

Setup: a Teams channel's incoming webhook (the Office 365 connector URL
`https://<tenant>.webhook.office.com/webhookb2/...`) or its successor, a Power
Automate "Post to a channel when a webhook request is received" workflow URL; both
take the Adaptive Card message of `alerts.notifiers.teams_templates`
(https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook).
The URL is the credential.

Answers (the add-incoming-webhook page above: "more than four requests in a second"
are throttled; the message size limit is 28 KB; a connector reports a refusal of
Teams inside an HTTP 200, as e.g. the msteams_hermes gem documents for 413):

* HTTP 200 with body `1` (connector) or 202 (workflow): delivered.
* HTTP 200 whose body reads `Webhook message delivery failed with error: Microsoft
  Teams endpoint returned HTTP error 429 ...`: the connector's way of saying Teams
  refused it; the inner status decides (429: rate limited, retryable; 413: too large,
  a bug; other: retryable). Not delivered.
* 429 (throttled: Teams allows a few messages per second per webhook), 5xx, timeouts:
  as every HTTP channel (`alerts.notifiers.http`). 400: Teams refused the card (a
  BrandPulse bug); 401/403/404/410: the webhook was removed or disabled.

Delivery: a webhook cannot read the channel back, so `find` raises CannotTell and an
alert whose send may have arrived (5xx, timeout, crash) is posted again by the
engine's outbox: at least once, the alert id in the card's footer making a repeat
obvious. No threads: each follow-up of a wave is its own card.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any, ClassVar

from alerts.health import HealthNotice
from alerts.model import Alert, Delivery
from alerts.notifiers.base import Notifier
from alerts.notifiers.http import ChannelError, host_of, http_failure, post_json
from alerts.notifiers.teams_templates import build_message, build_notice_message
from brandpulse.config import Config, TeamsConfig
from brandpulse.secrets import redact, reveal

log = logging.getLogger(__name__)

_SOFT_FAILURE = re.compile(r"delivery failed with error.*?HTTP error (\d{3})", re.IGNORECASE | re.DOTALL)


class TeamsNotifier(Notifier):
    """Posts Adaptive Cards to one Teams incoming webhook (or workflow) URL."""

    name: ClassVar[str] = "teams"

    def __init__(self, *, url: str, timeout: float = 15.0) -> None:
        if not url:
            raise ValueError("TeamsNotifier needs teams.url")
        self._url = url
        self.timeout = timeout
        self.where = f"Teams webhook at {host_of(url)}"

    @classmethod
    def configured(cls, config: Config) -> bool:
        return reveal(config.teams.url) is not None

    @classmethod
    def build(cls, config: Config) -> TeamsNotifier:
        return cls.from_config(config.teams)

    @classmethod
    def from_config(cls, section: TeamsConfig, **overrides: Any) -> TeamsNotifier:
        url = reveal(section.url)
        if url is None:
            raise ValueError("teams: url is required")
        return cls(url=url, **overrides)

    def check(self) -> str:
        """A Teams webhook has no call that verifies it without posting."""
        return f"{self.where} (not verifiable without posting)"

    def send(self, alert: Alert, *, reply_to: Delivery | None = None) -> Delivery:
        self._post(build_message(alert))
        return Delivery(notifier=self.name, alert_id=alert.alert_id, delivered_at=datetime.now(UTC))

    def send_notice(self, notice: HealthNotice) -> Delivery:
        self._post(build_notice_message(notice))
        return Delivery(notifier=self.name, alert_id=notice.notice_id, delivered_at=datetime.now(UTC))

    def _post(self, body: bytes) -> None:
        secrets = (self._url,)
        answer = post_json(self.name, self._url, body, timeout=self.timeout, secrets=secrets)
        hint = ""
        if answer.status == 400:
            hint = "Teams refused the card layout (a BrandPulse bug; please report)"
        elif answer.status in (401, 403, 404, 410):
            hint = "the webhook was removed or disabled; create a new one and set teams.url"
        failure = http_failure(self.name, answer, self.where, hint=hint, secrets=secrets)
        if failure is not None:
            raise failure
        soft = _SOFT_FAILURE.search(answer.text)
        if soft is not None:
            inner = int(soft.group(1))
            said = redact(" ".join(answer.text.split())[:200], secrets)
            raise ChannelError(
                self.name,
                f"{self.where} answered HTTP {answer.status} but Teams refused the message "
                f"(HTTP {inner}){'; too large (a BrandPulse bug)' if inner == 413 else ''}: {said}",
                status=inner,
                retryable=inner != 413 and inner not in (400, 401, 403, 404, 410),
                retry_after=answer.retry_after,
            )
        log.debug("%s took the card (HTTP %d)", self.where, answer.status)
