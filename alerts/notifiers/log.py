"""A notifier that writes alerts to the log: what runs when no channel is configured.

`brandpulse validate` says "alerts: the log only (no channel configured)"; this is that.
It counts as delivered, so the outbox does not pile up alerts that would flood a
channel connected weeks later.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from alerts.health import HealthNotice, notice_text
from alerts.model import Alert, Delivery
from alerts.notifiers.base import Notifier
from alerts.notifiers.slack_templates import headline, themes_line

if TYPE_CHECKING:
    from brandpulse.config import Config

log = logging.getLogger("brandpulse.alerts")


def _plain(text: str) -> str:
    # headline() escapes for Slack's mrkdwn; a log line wants the text as written.
    return (
        text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("\u2060", "")
    )


class LogNotifier(Notifier):
    name: ClassVar[str] = "log"
    fallback: ClassVar[bool] = True

    @classmethod
    def configured(cls, config: Config) -> bool:
        return True  # needs nothing

    @classmethod
    def build(cls, config: Config) -> LogNotifier:
        return cls()

    def send(self, alert: Alert, *, reply_to: Delivery | None = None) -> Delivery:
        posts = "; ".join(f"{p.author or '?'} {p.url or p.id}" for p in alert.top_posts[:3])
        themes = themes_line(alert)
        log.warning(
            "ALERT %s %s%s%s%s",
            alert.alert_id,
            _plain(headline(alert)),
            f" | {_plain(themes)}" if themes else "",
            f" | top posts: {posts}" if posts else "",
            f" | {alert.discover_url}" if alert.discover_url else "",
        )
        return Delivery(notifier=self.name, alert_id=alert.alert_id, delivered_at=datetime.now(UTC))

    def send_notice(self, notice: HealthNotice) -> Delivery:
        log.warning("HEALTH %s %s", notice.notice_id, notice_text(notice))
        return Delivery(notifier=self.name, alert_id=notice.notice_id, delivered_at=datetime.now(UTC))

    def check(self) -> str:
        return "log only (no alert channel configured)"
