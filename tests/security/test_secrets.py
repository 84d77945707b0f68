"""Secrets stay out of reprs, URLs as printed, and log lines at any level.

The log test sends a real alert through slack-sdk to the local Slack sandbox's
incoming webhook with the app logging at DEBUG: the webhook's secret path must not
reach the log. The same run with the library loggers let through shows the line
that used to leak, so the test proves what it guards against.
"""

from __future__ import annotations

import io
import logging

import pytest

from alerts.notifiers.slack import SlackNotifier
from brandpulse.config import parse_config
from brandpulse.secrets import mask_url, redact, reveal
from daemon.logs import configure_logging, log_event
from sandbox.slack import WEBHOOK_PATH, SlackSandbox
from tests.alerts.notifiers.conftest import _make_alert as make_alert


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://elastic:pw@es.example.com:9200/", "https://***@es.example.com:9200/"),
        ("https://api.stackexchange.com/2.3/search?site=so&key=K3Y&q=acme",
         "https://api.stackexchange.com/2.3/search?site=so&key=***&q=acme"),
        ("https://x.example/a?access_token=T0K&token=T1&client_secret=S&sig=SG&page=2",
         "https://x.example/a?access_token=***&token=***&client_secret=***&sig=***&page=2"),
        ("https://x.example/cb#access_token=T0K", "https://x.example/cb#access_token=***"),
        ("https://hooks.slack.com/services/T0/B0/abcdef", "https://hooks.slack.com/services/***"),
        ("https://www.reddit.com/r/acme/?q=key", "https://www.reddit.com/r/acme/?q=key"),
        ("http://[::1:9200/?key=x", "http://[::1:9200/?key=***"),  # unparsable, still masked
    ],
)  # fmt: skip
def test_mask_url_hides_credentials_and_keeps_the_address(url: str, masked: str):
    assert mask_url(url) == masked


def test_redact_masks_every_url_in_a_message_and_known_secrets():
    text = ("GET https://api.stackexchange.com/2.3/search?key=SEKRIT failed; "
            "retry http://u:p4ss@es:9200 with token xoxb-abcdef")  # fmt: skip
    out = redact(text, ["xoxb-abcdef"])
    assert "SEKRIT" not in out and "p4ss" not in out and "xoxb-abcdef" not in out
    assert "https://api.stackexchange.com/2.3/search?key=***" in out
    assert "http://***@es:9200" in out


def test_reveal_treats_blank_as_unset():
    assert reveal(None) is None
    assert reveal("  ") is None
    assert reveal(" x ") == "x"


def test_config_reprs_hide_every_secret():
    secrets = ["xoxb-secret-1", "https://hooks.slack.com/services/T/B/hooksecret",
               "es-pass-secret", "es-api-key-secret", "kb-pass-secret", "kb-key-secret",
               "se-key-secret", "mastodon-token-secret"]  # fmt: skip
    config = parse_config(
        {
            "brands": [{"name": "Acme"}],
            "sources": [
                {"name": "so", "type": "stackexchange", "key": secrets[6]},
                {"name": "m", "type": "mastodon", "instance_url": "https://m.example",
                 "access_token": secrets[7]},
            ],
            "slack": {"token": secrets[0], "channel": "#pr", "webhook_url": secrets[1]},
            "elasticsearch": {"hosts": ["https://es.example:9200"], "username": "elastic",
                              "password": secrets[2], "api_key": secrets[3]},
            "kibana": {"url": "https://kb.example", "password": secrets[4], "api_key": secrets[5]},
        },
        env={},
    )  # fmt: skip
    text = repr(config) + str(config) + str(config.model_dump())
    for value in secrets:
        assert value not in text


def _send_with_logging(slack: SlackSandbox, *, library_debug: bool, monkeypatch) -> str:
    if library_debug:
        monkeypatch.setenv("BRANDPULSE_LIBRARY_DEBUG", "1")
    else:
        monkeypatch.delenv("BRANDPULSE_LIBRARY_DEBUG", raising=False)
    stream = io.StringIO()
    configure_logging("text", "DEBUG", stream=stream)
    try:
        SlackNotifier(webhook_url=slack.webhook_url).send(make_alert())
    finally:
        configure_logging("text", "WARNING")
    return stream.getvalue()


def test_debug_logs_do_not_print_the_slack_webhook_url(monkeypatch):
    secret_part = WEBHOOK_PATH.rsplit("/", 1)[1]
    with SlackSandbox() as slack:
        leaky = _send_with_logging(slack, library_debug=True, monkeypatch=monkeypatch)
        assert secret_part in leaky, "slack-sdk no longer logs the URL: the guard below proves nothing"
        quiet = _send_with_logging(slack, library_debug=False, monkeypatch=monkeypatch)
        assert len(slack.messages) == 2
    assert secret_part not in quiet
    for name in ("slack_sdk", "elasticsearch", "elastic_transport", "urllib3"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_our_own_log_lines_mask_credentials_in_any_field(fmt: str):
    stream = io.StringIO()
    configure_logging(fmt, "DEBUG", stream=stream)
    try:
        log = logging.getLogger("brandpulse.test")
        log_event(log, "crawl.failed", logging.WARNING,
                  url="https://api.stackexchange.com/2.3/search?key=LEAKME&site=so")  # fmt: skip
        try:
            raise ConnectionError("cannot reach http://elastic:LEAKPW@es.example:9200/_bulk")
        except ConnectionError:
            log.exception("es down")
    finally:
        configure_logging("text", "WARNING")
    out = stream.getvalue()
    assert "crawl.failed" in out and "es down" in out
    assert "LEAKME" not in out and "LEAKPW" not in out
    assert "key=***" in out and "***@es.example:9200" in out
