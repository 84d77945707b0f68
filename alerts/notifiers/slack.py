"""Slack delivery through slack-sdk: a bot token + channel, or an incoming webhook.

A bot (`chat.postMessage`) gets a message `ts` back, so the follow-ups of a wave go into
the thread of its first message. An incoming webhook returns no id and cannot thread,
so with a webhook every alert is its own message (the text says which wave it belongs to).

A 429 is retried after Slack's `Retry-After`, a bounded number of times and only for a
bounded wait; every other failure raises `SlackDeliveryError` naming the cause. This
module never drops an alert silently: it either returns a `Delivery` or raises, and the
engine's outbox keeps what raised.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.client import RemoteDisconnected
from typing import Any, ClassVar
from urllib.error import URLError

from pydantic import SecretStr
from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookResponse

from alerts.health import HealthNotice
from alerts.model import Alert, Delivery
from alerts.notifiers.base import CannotTell, Notifier, NotifierError
from alerts.notifiers.slack_health_templates import build_notice_message
from alerts.notifiers.slack_templates import build_message
from brandpulse.config import Config, SlackConfig
from brandpulse.secrets import reveal

log = logging.getLogger(__name__)

# What a person should do about each error Slack names; the error code alone rarely says.
_HINTS: dict[str, tuple[str, bool]] = {
    "invalid_auth": ("the bot token is not valid; check slack.token", False),
    "not_authed": ("no token was sent; set slack.token", False),
    "token_revoked": ("the bot token was revoked; install the app again", False),
    "token_expired": ("the bot token expired; rotate it", False),
    "account_inactive": ("the bot's workspace account is deactivated", False),
    "channel_not_found": ("slack.channel does not exist or the bot cannot see it", False),
    "not_in_channel": ("the bot is not a member of slack.channel; /invite it", False),
    "is_archived": ("slack.channel is archived", False),
    "missing_scope": ("the bot token lacks a scope this call needs", False),
    "invalid_blocks": (
        "Slack rejected the message layout (a BrandPulse bug; please report)",
        False,
    ),
    "msg_too_long": ("the message is longer than Slack allows (a BrandPulse bug)", False),
    "ratelimited": ("Slack is rate limiting this app", True),
    "fatal_error": ("Slack had an internal error", True),
    "internal_error": ("Slack had an internal error", True),
    "service_unavailable": ("Slack is unavailable", True),
    "request_timeout": ("Slack timed out", True),
    # Incoming-webhook errors (plain-text bodies).
    "no_service": ("the webhook URL is unknown or was revoked; check slack.webhook_url", False),
    "no_active_hooks": ("the webhook was disabled; create a new one", False),
    "action_prohibited": ("the workspace admin restricted this webhook", False),
    "channel_is_archived": ("the webhook's channel is archived", False),
    "invalid_payload": ("Slack rejected the webhook payload (a BrandPulse bug)", False),
    "invalid_token": ("the webhook URL's secret is wrong; check slack.webhook_url", False),
}


_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
# What conversations.history/replies answer when the token may not read the channel.
_NO_HISTORY = {"missing_scope", "not_in_channel", "channel_not_found", "not_allowed_token_type"}
_FIND_LIMIT = 200  # a crashed send is minutes old: the newest page is enough


class SlackDeliveryError(NotifierError):
    """A Slack message could not be delivered; the text names the cause and the fix."""

    def __init__(
        self,
        cause: str,
        *,
        error: str | None = None,
        status: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
        maybe_delivered: bool = False,
    ) -> None:
        self.error = error
        self.status = status
        super().__init__(
            "slack",
            cause,
            retryable=retryable,
            retry_after=retry_after,
            maybe_delivered=maybe_delivered,
        )


class BoundedRateLimitRetryHandler(RetryHandler):
    """Retry a 429 after its `Retry-After`, but at most `max_retry_count` times and only
    when the wait is at most `max_wait` seconds.

    slack-sdk's own handler sleeps for whatever the header says, without a bound; an
    alert check blocked for minutes by one channel would stall every other brand. A
    longer wait is reported instead (`SlackDeliveryError.retry_after`) and the outbox
    sends the alert on a later check.
    """

    def __init__(
        self,
        max_retry_count: int = 2,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait
        self.sleep = sleep

    @staticmethod
    def retry_after(response: HttpResponse | None) -> float | None:
        if response is None:
            return None
        for key, values in response.headers.items():
            if key.lower() == "retry-after":
                value = values[0] if isinstance(values, list) else values
                try:
                    return max(float(value), 0.0)
                except (TypeError, ValueError):
                    return None
        return None

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = self.retry_after(response)
        # Slack always sends the header; without it one second is its documented minimum.
        return (1.0 if wait is None else wait) <= self.max_wait

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        wait = self.retry_after(response)
        wait = 1.0 if wait is None else wait
        log.warning(
            "Slack rate limit: retrying in %.1fs (attempt %d)", wait, state.current_attempt + 1
        )
        self.sleep(wait)
        state.next_attempt_requested = True
        state.increment_current_attempt()


def secret(value: SecretStr | None) -> str | None:
    """The secret's text, or None when unset or blank (an unset `${VAR:-}`)."""
    return reveal(value)


def _network_error(exc: BaseException) -> SlackDeliveryError:
    reason = getattr(exc, "reason", None) or exc
    # Refused or unresolvable: the request never reached Slack. Anything else (a reset,
    # a timeout) may have hit after Slack took the message.
    never_sent = isinstance(reason, ConnectionRefusedError | socket.gaierror)
    return SlackDeliveryError(
        f"cannot reach Slack ({type(reason).__name__}: {reason})", maybe_delivered=not never_sent
    )


class SlackNotifier(Notifier):
    """Posts alerts to Slack.

    Exactly one of `token` (+ `channel`) or `webhook_url` must be given. `base_url`
    points the Web API elsewhere (a proxy, or `sandbox.slack.SlackSandbox` in tests).
    """

    name: ClassVar[str] = "slack"

    def __init__(
        self,
        *,
        token: str | None = None,
        channel: str | None = None,
        webhook_url: str | None = None,
        base_url: str | None = None,
        timeout: float = 15.0,
        rate_limit_retries: int = 2,
        max_retry_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        interactive: bool = False,
    ) -> None:
        if bool(token) == bool(webhook_url):
            raise ValueError(
                "SlackNotifier needs either a bot token (slack.token with slack.channel) "
                "or an incoming webhook (slack.webhook_url), not "
                + ("both" if token else "neither")
            )
        if token and not channel:
            raise ValueError("SlackNotifier: a bot token needs a channel (slack.channel)")
        self.channel = channel
        # Response buttons: only a bot's messages, and only with Socket Mode listening.
        self.interactive = interactive and bool(token)
        # Reading history needs the channel's id, not its name; learnt from each post.
        self._channel_id: str | None = channel if channel and _CHANNEL_ID.match(channel) else None
        self._rate_limit = BoundedRateLimitRetryHandler(
            max_retry_count=rate_limit_retries, max_wait=max_retry_wait, sleep=sleep
        )
        # Only connection failures before a response are retried at once: a retried 5xx
        # could post twice if Slack had in fact accepted the message.
        handlers: list[RetryHandler] = [
            ConnectionErrorRetryHandler(
                max_retry_count=1, error_types=[ConnectionResetError, RemoteDisconnected]
            ),
            self._rate_limit,
        ]
        self._web: WebClient | None = None
        self._webhook: WebhookClient | None = None
        if token:
            kwargs: dict[str, Any] = {
                "token": token,
                "timeout": int(timeout),
                "retry_handlers": handlers,
            }
            if base_url:
                kwargs["base_url"] = base_url.rstrip("/") + "/"
            self._web = WebClient(**kwargs)
        else:
            assert webhook_url is not None
            self._webhook = WebhookClient(
                webhook_url, timeout=int(timeout), retry_handlers=handlers
            )

    @classmethod
    def configured(cls, config: Config) -> bool:
        """A bot token or an incoming webhook. An empty value counts as unset:
        `token: ${SLACK_BOT_TOKEN:-}` with the variable missing must not produce a
        notifier that fails on every alert."""
        return secret(config.slack.token) is not None or secret(config.slack.webhook_url) is not None

    @classmethod
    def build(cls, config: Config) -> SlackNotifier:
        return cls.from_config(config.slack)

    @classmethod
    def from_config(cls, slack: SlackConfig, **overrides: Any) -> SlackNotifier:
        """Build from the `slack:` config section; a bot token wins over a webhook."""
        token = secret(slack.token)
        webhook = secret(slack.webhook_url)
        if token:
            webhook = None
        return cls(
            token=token,
            channel=slack.channel,
            webhook_url=webhook,
            base_url=slack.base_url,
            interactive=secret(slack.app_token) is not None,
            **overrides,
        )

    @property
    def supports_threads(self) -> bool:  # type: ignore[override]
        return self._web is not None

    def check(self) -> str:
        """auth.test for a bot (a webhook cannot be tested without posting)."""
        if self._web is None:
            return "slack incoming webhook (not verifiable without posting)"
        try:
            response = self._web.auth_test()
        except SlackApiError as exc:
            raise self._api_error(exc, "auth.test") from exc
        except (URLError, OSError, SlackClientError) as exc:
            raise _network_error(exc) from exc
        return f"slack bot {response.get('user')} in team {response.get('team')}"

    def send(self, alert: Alert, *, reply_to: Delivery | None = None) -> Delivery:
        thread_ts = reply_to.thread_root if (reply_to and self._web is not None) else None
        message = build_message(alert, in_thread=thread_ts is not None, interactive=self.interactive)
        if self._web is not None:
            return self._post(alert, message, thread_ts, reply_to)
        return self._post_webhook(alert, message)

    def send_notice(self, notice: HealthNotice) -> Delivery:
        """Post a health notice as its own message (never in a brand's thread)."""
        message = build_notice_message(notice)
        if self._web is None:
            assert self._webhook is not None
            try:
                response = self._webhook.send(
                    text=message["text"], blocks=message["blocks"],
                    unfurl_links=False, unfurl_media=False,
                )  # fmt: skip
            except (URLError, OSError, SlackClientError) as exc:
                raise _network_error(exc) from exc
            if response.status_code != 200:
                raise self._webhook_failure(response)
            return Delivery(notifier=self.name, alert_id=notice.notice_id, delivered_at=datetime.now(UTC))
        try:
            response = self._web.chat_postMessage(
                channel=self.channel, text=message["text"], blocks=message["blocks"],
                unfurl_links=False, unfurl_media=False, link_names=False,
                metadata={"event_type": "brandpulse_health",
                          "event_payload": {"notice_id": notice.notice_id}},
            )  # fmt: skip
        except SlackApiError as exc:
            raise self._api_error(exc, "chat.postMessage") from exc
        except (URLError, OSError, SlackClientError) as exc:
            raise _network_error(exc) from exc
        if response.get("channel"):
            self._channel_id = response["channel"]
        return Delivery(notifier=self.name, alert_id=notice.notice_id, delivered_at=datetime.now(UTC),
                        channel=response.get("channel") or self.channel, ts=response.get("ts"))  # fmt: skip

    # ------------------------------------------------------------------

    def _post(
        self,
        alert: Alert,
        message: dict[str, Any],
        thread_ts: str | None,
        reply_to: Delivery | None,
    ) -> Delivery:
        assert self._web is not None
        channel = (reply_to.channel if reply_to and reply_to.channel else None) or self.channel
        try:
            response = self._web.chat_postMessage(
                channel=channel,
                text=message["text"],
                blocks=message["blocks"],
                thread_ts=thread_ts,
                # "Back to normal" is worth seeing in the channel too, not only in the thread.
                reply_broadcast=True if thread_ts and alert.kind == "ended" else None,
                unfurl_links=False,
                unfurl_media=False,
                link_names=False,
                metadata={
                    "event_type": "brandpulse_alert",
                    "event_payload": {"alert_id": alert.alert_id, "wave_id": alert.wave_id},
                },
            )
        except SlackApiError as exc:
            raise self._api_error(exc, "chat.postMessage") from exc
        except (URLError, OSError, SlackClientError) as exc:
            raise _network_error(exc) from exc
        if response.get("channel"):
            self._channel_id = response["channel"]
        return Delivery(
            notifier=self.name,
            alert_id=alert.alert_id,
            delivered_at=datetime.now(UTC),
            channel=response.get("channel") or channel,
            ts=response.get("ts"),
            thread_ts=thread_ts,
        )

    def find(
        self, alert: Alert, *, reply_to: Delivery | None = None, channel: str | None = None
    ) -> Delivery | None:
        """Search the newest messages (or the wave's thread) for this alert's metadata.

        Needs the `channels:history` scope (`groups:history` for a private channel);
        without it, or with a webhook, raises CannotTell.
        """
        if self._web is None:
            raise CannotTell("an incoming webhook cannot read the channel back")
        root = reply_to.thread_root if reply_to else None
        where = (reply_to.channel if reply_to else None) or self._channel_id or channel
        if not where:
            raise CannotTell(
                f"the id of channel {self.channel} is not known yet (nothing posted since start)"
            )
        message = self._find_by_metadata(where, "brandpulse_alert", "alert_id", alert.alert_id, root)
        if message is None:
            return None
        thread = message.get("thread_ts")
        return Delivery(
            notifier=self.name,
            alert_id=alert.alert_id,
            delivered_at=datetime.now(UTC),
            channel=where,
            ts=message.get("ts"),
            thread_ts=thread if thread and thread != message.get("ts") else None,
        )

    def find_notice(self, notice: HealthNotice) -> Delivery | None:
        """Search the channel's newest messages for this health notice's metadata (the
        same scopes as `find`; a webhook, or no history scope, raises CannotTell)."""
        if self._web is None:
            raise CannotTell("an incoming webhook cannot read the channel back")
        where = self._channel_id
        if not where:
            raise CannotTell(f"the id of channel {self.channel} is not known yet (nothing posted since start)")
        message = self._find_by_metadata(where, "brandpulse_health", "notice_id", notice.notice_id)
        if message is None:
            return None
        return Delivery(notifier=self.name, alert_id=notice.notice_id,
                        delivered_at=datetime.now(UTC), channel=where, ts=message.get("ts"))  # fmt: skip

    def _find_by_metadata(
        self, where: str, event_type: str, key: str, value: str, root: str | None = None
    ) -> dict[str, Any] | None:
        """The newest message of `where` (or of thread `root`) whose metadata is
        `event_type` with `key` == `value`; None when it is not among them. A missing
        history scope raises CannotTell; other failures raise as `post` does."""
        assert self._web is not None
        method = "conversations.replies" if root else "conversations.history"
        try:
            if root:
                response = self._web.conversations_replies(
                    channel=where, ts=root, include_all_metadata=True, limit=_FIND_LIMIT
                )
            else:
                response = self._web.conversations_history(
                    channel=where, include_all_metadata=True, limit=_FIND_LIMIT
                )
        except SlackApiError as exc:
            failure = self._api_error(exc, method)
            if failure.error in _NO_HISTORY:
                raise CannotTell(str(failure)) from exc
            raise failure from exc
        except (URLError, OSError, SlackClientError) as exc:
            raise _network_error(exc) from exc
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == event_type and payload.get(key) == value:
                return message
        return None

    def _post_webhook(self, alert: Alert, message: dict[str, Any]) -> Delivery:
        assert self._webhook is not None
        try:
            response = self._webhook.send(
                text=message["text"],
                blocks=message["blocks"],
                unfurl_links=False,
                unfurl_media=False,
            )
        except (URLError, OSError, SlackClientError) as exc:
            raise _network_error(exc) from exc
        if response.status_code != 200:
            raise self._webhook_failure(response)
        return Delivery(notifier=self.name, alert_id=alert.alert_id, delivered_at=datetime.now(UTC))

    def _webhook_failure(self, response: WebhookResponse) -> SlackDeliveryError:
        body = (response.body or "").strip()
        code = body if body and len(body) < 60 and " " not in body else None
        return self._failure(
            "incoming webhook",
            status=response.status_code,
            error=code,
            detail=body[:200],
            retry_after=BoundedRateLimitRetryHandler.retry_after(
                HttpResponse(status_code=response.status_code, headers=response.headers or {})
            ),
        )

    def _api_error(self, exc: SlackApiError, method: str) -> SlackDeliveryError:
        response = exc.response
        status = getattr(response, "status_code", None)
        data = getattr(response, "data", None)
        error = data.get("error") if isinstance(data, dict) else None
        headers = getattr(response, "headers", {}) or {}
        retry_after = BoundedRateLimitRetryHandler.retry_after(
            HttpResponse(status_code=status or 0, headers=dict(headers))
        )
        detail = "" if isinstance(data, dict) else str(data)[:200]
        return self._failure(
            method, status=status, error=error, detail=detail, retry_after=retry_after
        )

    def _failure(
        self,
        what: str,
        *,
        status: int | None,
        error: str | None,
        detail: str = "",
        retry_after: float | None = None,
    ) -> SlackDeliveryError:
        if status == 429 or error == "ratelimited":
            wait = f"; Slack asks to wait {retry_after:g}s" if retry_after is not None else ""
            return SlackDeliveryError(
                f"{what} was rate limited (HTTP 429) and retries ran out{wait}",
                error=error or "ratelimited",
                status=status,
                retryable=True,
                retry_after=retry_after,
            )
        # A 5xx usually comes with an HTML page, which slack-sdk turns into a long
        # pseudo error code; the status says more.
        if status is not None and status >= 500:
            code = f" ({error})" if error and len(error) < 40 else ""
            return SlackDeliveryError(
                f"{what} failed: Slack answered HTTP {status}{code} (outage or overload)",
                error=error,
                status=status,
                maybe_delivered=True,
            )
        if error:
            hint, retryable = _HINTS.get(error, ("", True))
            cause = f"{what} failed: {error}" + (f" ({hint})" if hint else "")
            if status and status != 200:
                cause += f" [HTTP {status}]"
            return SlackDeliveryError(cause, error=error, status=status, retryable=retryable)
        return SlackDeliveryError(
            f"{what} failed: unexpected HTTP {status}" + (f": {detail}" if detail else ""),
            status=status,
        )
