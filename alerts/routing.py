"""Which channels an alert goes to: `alerts.routes` applied to one alert.

A route matches an alert when each of its selectors does: `brands` (any brand the
alert is about, `Alert.brands`: its own brand, and for a competitor's wave told to an
own brand, `competitor_negative_spike`, the competitor too), `rules` (`Alert.rule`, the rule that raised it) and `severities`
(`Alert.severity`); an empty selector matches every alert. The alert goes to the
channels of every matching route, each channel once, in the order the routes name them.

Without routes every alert goes to the default channel (the first configured one:
Slack, then e-mail), as before routing existed: `channels_for` then returns None and
the engine keeps the single-channel outbox layout. With routes, an alert that no route
matches goes to the default channel too, with a warning in the log: an alert lost to a
gap in the routes costs more than one in an unexpected channel.

Escalation: a matching route with `escalate_after` sends the alert's escalation copy
(`Alert.escalated`) to its `escalate_to` channels once, if nobody acknowledged the
alert by then. Only alerts that open something escalate (a wave's `started`, a
`high_reach` post): acknowledging the first alert of a wave covers its follow-ups.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from alerts.model import Alert
from brandpulse.config import RouteConfig

log = logging.getLogger(__name__)

ESCALATING_KINDS = ("started", "high_reach")


@dataclass(frozen=True)
class Escalation:
    channel: str
    after: timedelta


def route_matches(route: RouteConfig, alert: Alert) -> bool:
    return (
        (not route.brands or any(brand in route.brands for brand in alert.brands))
        and (not route.rules or alert.rule in route.rules)
        and (not route.severities or alert.severity in route.severities)
    )


@dataclass(frozen=True)
class Router:
    """`routes` (from `alerts.routes`) and the name of the default channel."""

    routes: tuple[RouteConfig, ...]
    default: str

    @property
    def routed(self) -> bool:
        return bool(self.routes)

    def channels_for(self, alert: Alert) -> list[str] | None:
        """The channels `alert` goes to; None without routes (the default channel, in the
        outbox layout of a single channel)."""
        if not self.routes:
            return None
        channels: list[str] = []
        for route in self.routes:
            if route_matches(route, alert):
                channels += [c for c in route.channels if c not in channels]
        if not channels:
            log.warning(
                "alert %s (%s, %s, severity %s) matches no route; sending it to %s",
                alert.alert_id, alert.brand, alert.rule, alert.severity, self.default,
            )  # fmt: skip
            channels = [self.default]
        return channels

    def escalations_for(self, alert: Alert) -> list[Escalation]:
        """Per escalation channel, the shortest wait of the matching routes."""
        if alert.kind not in ESCALATING_KINDS or alert.escalated_after is not None:
            return []
        after: dict[str, timedelta] = {}
        for route in self.routes:
            if route.escalate_after is None or not route_matches(route, alert):
                continue
            for channel in route.escalate_to:
                after[channel] = min(after.get(channel, route.escalate_after), route.escalate_after)
        return [Escalation(channel, wait) for channel, wait in after.items()]

    def channels(self) -> set[str]:
        """Every channel a route names (to send to or to escalate to)."""
        return {c for r in self.routes for c in (*r.channels, *r.escalate_to)}
