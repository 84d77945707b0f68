"""The response buttons of Slack alerts, over Socket Mode (no public URL needed).

With `slack.app_token` (an app-level `xapp-` token with `connections:write`) and a bot
token, alert messages that page carry four buttons (`slack_templates.RESPONSE_ACTIONS`:
Acknowledge, Snooze 1 h, Snooze 24 h, Not a real issue; each button's value is the
alert id), and the daemon runs a `SlackActionListener`: slack-sdk's builtin Socket Mode
client opens a connection (`apps.connections.open` -> a WebSocket URL -> `hello`) and
receives `interactive` envelopes with Slack's `block_actions` payloads.

On a click the listener

1. acknowledges the envelope at once (Slack redelivers one not acknowledged within
   3 seconds, so the work below must not hold the ack up);
2. records the response through the one state function,
   `AlertStateStore.acknowledge` (who: the Slack user's name and id from the payload;
   when: the injected clock; a snooze also holds back the brand and rule until then);
3. replies in the message's thread who did what (`chat.postMessage`), and replaces the
   message's buttons by the same line (`chat.update`), so the state is visible to
   everyone in the channel.

Anything else -- another app's action, a malformed payload, an alert id the outbox
does not know -- is ignored with a log line. The app token is never logged (slack-sdk
redacts the Authorization header; the URL it gets back carries a one-time ticket, not
the token).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from alerts.notifiers.slack_templates import RESPONSE_ACTIONS, escape, with_response
from alerts.state import Acknowledgement, AlertStateStore, UnknownAlert

log = logging.getLogger(__name__)


def _note(ack: Acknowledgement, user_id: str) -> str:
    """The line that tells the channel who did what (mrkdwn)."""
    when = ack.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    who = f"<@{user_id}>" if user_id else escape(ack.by or "someone")
    if ack.response == "snoozed":
        assert ack.until is not None
        what = escape(f"{ack.brand or 'this brand'} / {ack.rule or 'all rules'}")
        return (
            f":zzz: Snoozed by {who} at {when}: {what} alerts are held back until "
            f"{ack.until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        )
    if ack.response == "false_alarm":
        return f":no_entry_sign: Marked *not a real issue* by {who} at {when}"
    return f":white_check_mark: Acknowledged by {who} at {when}"


class SlackActionListener:
    """Listens for the response buttons over Socket Mode and records each click.

    `start()` connects (in slack-sdk's own threads) and returns; `close()` disconnects.
    `handle(payload)` is what a click does, given Slack's `block_actions` payload.
    """

    def __init__(
        self,
        *,
        app_token: str,
        bot_token: str,
        state: AlertStateStore,
        base_url: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        from slack_sdk import WebClient
        from slack_sdk.socket_mode.builtin import SocketModeClient

        kwargs: dict[str, Any] = {"token": bot_token}
        if base_url:
            kwargs["base_url"] = base_url.rstrip("/") + "/"
        self.web = WebClient(**kwargs)
        self.state = state
        self.clock = clock
        self.client = SocketModeClient(app_token=app_token, web_client=self.web)
        self.client.socket_mode_request_listeners.append(self._on_request)

    @classmethod
    def from_config(cls, config: Any, state: AlertStateStore, **kwargs: Any) -> SlackActionListener:
        from alerts.notifiers.slack import secret

        app_token, bot_token = secret(config.slack.app_token), secret(config.slack.token)
        if not app_token or not bot_token:
            raise ValueError("the Slack buttons need slack.app_token and slack.token")
        return cls(app_token=app_token, bot_token=bot_token, state=state,
                   base_url=config.slack.base_url, **kwargs)  # fmt: skip

    def start(self) -> None:
        self.client.connect()

    def close(self) -> None:
        self.client.close()

    def _on_request(self, client: Any, request: Any) -> None:
        from slack_sdk.socket_mode.response import SocketModeResponse

        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        if request.type != "interactive":
            log.info("ignored a Socket Mode %s envelope: only button clicks are handled", request.type)
            return
        try:
            self.handle(request.payload)
        except Exception:
            # A click that cannot be recorded must not end the listener.
            log.exception("a Slack button click could not be handled")

    def handle(self, payload: dict[str, Any]) -> list[Acknowledgement]:
        """Record every BrandPulse button click of one `block_actions` payload and show
        it in Slack; return what was recorded."""
        if not isinstance(payload, dict) or payload.get("type") != "block_actions":
            kind = payload.get("type") if isinstance(payload, dict) else type(payload).__name__
            log.warning("ignored a Slack interaction of type %r: not a button click", kind)
            return []
        user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
        user_id = str(user.get("id") or "")
        name = str(user.get("username") or user.get("name") or "")
        container = payload.get("container") if isinstance(payload.get("container"), dict) else {}
        channel = container.get("channel_id") or (payload.get("channel") or {}).get("id")
        message_ts = container.get("message_ts")
        message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
        done: list[Acknowledgement] = []
        for action in payload.get("actions") or []:
            action_id = action.get("action_id") if isinstance(action, dict) else None
            alert_id = action.get("value") if isinstance(action, dict) else None
            if action_id not in RESPONSE_ACTIONS or not isinstance(alert_id, str) or not alert_id:
                log.warning("ignored Slack action %r (value %r) from %s: not a BrandPulse response "
                            "button", action_id, alert_id, user_id or "unknown user")  # fmt: skip
                continue
            _label, response, snooze = RESPONSE_ACTIONS[action_id]
            now = self.clock()
            by = f"{name} ({user_id})" if name else user_id or None
            try:
                ack = self.state.acknowledge(
                    alert_id, at=now, by=by, response=response,  # type: ignore[arg-type]
                    until=now + snooze if snooze else None,
                )  # fmt: skip
            except UnknownAlert:
                log.warning("ignored Slack action %s from %s: no alert %r in the outbox",
                            action_id, user_id, alert_id)  # fmt: skip
                continue
            log.info("alert %s: %s by %s via Slack", ack.alert_id, ack.response, by)
            done.append(ack)
            if not channel or not message_ts:
                continue
            note = _note(ack, user_id)
            self.web.chat_postMessage(channel=channel, thread_ts=message_ts, text=note)
            blocks = message.get("blocks")
            if isinstance(blocks, list):
                self.web.chat_update(channel=channel, ts=message_ts, text=message.get("text") or note,
                                     blocks=with_response(blocks, note))  # fmt: skip
        return done


__all__ = ["SlackActionListener"]
