"""EmailNotifier against a real local SMTP server (aiosmtpd): STARTTLS or SMTPS with a
throwaway CA, AUTH checked, every message parsed back with the `email` package."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from html import escape as html_escape
from pathlib import Path

import pytest

from alerts.model import Alert, Delivery
from alerts.notifiers import NOTIFIERS, EmailNotifier, SlackNotifier, notifier_from_config
from alerts.notifiers.base import CannotTell, NotifierError
from alerts.notifiers.email_templates import EXCERPT_CHARS, message_id
from brandpulse.config import Config, ConfigError, load_config
from tests.alerts.notifiers.smtp_server import SmtpServer


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with SmtpServer(tmp_path / "certs") as server:
        yield server


def config_for(server: SmtpServer, **overrides: object) -> Config:
    return Config.model_validate({"brands": [{"name": "Acme"}], "email": server.email_config(**overrides)})


def notifier_for(server: SmtpServer, **overrides: object) -> EmailNotifier:
    notifier = notifier_from_config(config_for(server, **overrides))
    assert isinstance(notifier, EmailNotifier)
    return notifier


def bodies(msg) -> tuple[str, str]:
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    return text, html


def test_an_alert_is_mailed_over_starttls_with_auth_as_text_and_html(smtp, make_alert):
    alert = make_alert()
    delivery = notifier_for(smtp).send(alert)

    [got] = smtp.messages
    assert got.tls and got.login == smtp.username
    assert smtp.logins == [(smtp.username, True)]
    assert got.mail_from == "alerts@brandpulse.example"
    assert got.rcpt_tos == ["pr-team@example.com", "oncall@example.com"]
    msg = got.message
    assert msg["Message-ID"] == message_id(alert.alert_id, "brandpulse.example")
    assert msg["Message-ID"] == f"<{alert.alert_id}@brandpulse.example>"
    assert "In-Reply-To" not in msg and "References" not in msg
    assert msg["Subject"].startswith("[BrandPulse] Negative spike: Acme (negative_spike, ")
    assert msg["X-BrandPulse-Severity"] == alert.severity == "high"  # 84 against 12: 7x
    assert msg.get_content_type() == "multipart/alternative"
    text, html = bodies(msg)
    assert "Negative spike for Acme: 84 negative mentions" in text
    assert "https://www.reddit.com/r/acme/comments/p0 (www.reddit.com)" in text
    assert '<a href="https://www.reddit.com/r/acme/comments/p0">' in html
    assert alert.discover_url is not None and html_escape(alert.discover_url) in html
    assert f"alert {alert.alert_id}" in text
    assert delivery == Delivery(
        notifier="email", alert_id=alert.alert_id, delivered_at=delivery.delivered_at,
        ts=msg["Message-ID"], thread_ts=None,
    )  # fmt: skip


def test_the_same_alert_always_gets_the_same_message_id(smtp, make_alert):
    notifier = notifier_for(smtp)
    first = notifier.send(make_alert())
    again = notifier.send(make_alert())
    assert first.ts == again.ts
    assert smtp.messages[0].message["Message-ID"] == smtp.messages[1].message["Message-ID"]


def test_follow_ups_thread_under_the_waves_first_message(smtp, make_alert):
    notifier = notifier_for(smtp)
    root = notifier.send(make_alert("started"))
    later = make_alert("continuing", interval_end=make_alert().interval_end + timedelta(hours=1))
    reply = notifier.send(later, reply_to=root)
    # the third message replies to the delivery of the second: still the first's thread
    end = notifier.send(
        make_alert("ended", interval_end=later.interval_end + timedelta(hours=1)), reply_to=reply
    )

    first, second, third = (m.message for m in smtp.messages)
    for msg in (second, third):
        assert msg["In-Reply-To"] == first["Message-ID"]
        assert msg["References"] == first["Message-ID"]
        assert msg["Subject"] == "Re: " + first["Subject"]
    assert reply.thread_root == end.thread_root == root.ts
    assert "Still elevated for Acme" in bodies(second)[0]
    assert "Back to normal for Acme" in bodies(third)[0]
    assert third["X-BrandPulse-Severity"] == "low"


def test_post_text_is_escaped_in_html_and_bidi_controls_are_removed(smtp, make_alert, make_post):
    evil = make_post(
        0,
        title='<script>alert("x")</script> \u202eevil',
        text='<img src=x onerror="steal()"> & "quotes" ' + "a" * 1000,
        author="<b>mallory</b>",
        url="https://trusted.example@evil.example/path?q=1&r=<x>",
    )
    notifier_for(smtp).send(make_alert(top_posts=(evil,)))

    text, html = bodies(smtp.messages[0].message)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html and "&lt;img src=x onerror=&quot;steal()&quot;&gt;" in html
    assert "<b>mallory</b>" not in html and "&lt;b&gt;mallory&lt;/b&gt;" in html
    assert "\u202e" not in text and "\u202e" not in html
    # the link goes where it says: userinfo dropped, host shown, never cut
    assert "(evil.example)" in text and "trusted.example@" not in text + html
    assert 'href="https://evil.example/path?q=1&amp;r=&lt;x&gt;"' in html
    # the excerpt is cut; nothing of the 1000 a's beyond the limit gets through
    assert "a" * EXCERPT_CHARS not in text and "…" in text


def test_a_long_link_is_kept_whole_while_the_excerpt_is_cut(smtp, make_alert, make_post):
    url = "https://forum.example/t/" + "x" * 1500
    post = make_post(0, url=url, text="word " * 400)
    notifier_for(smtp).send(make_alert(top_posts=(post,)))
    text, html = bodies(smtp.messages[0].message)
    assert url in text and f'href="{url}"' in html
    excerpt = next(line for line in text.splitlines() if line.startswith("  > "))
    assert len(excerpt) <= EXCERPT_CHARS + 4 and excerpt.endswith("…")
    # every line on the wire stays within SMTP's 998 octets
    assert max(len(line) for line in smtp.messages[0].raw.splitlines()) <= 998


def test_smtps_from_the_first_byte(tmp_path, make_alert):
    with SmtpServer(tmp_path / "certs", tls="ssl") as server:
        notifier = notifier_for(server)
        assert notifier.check().startswith(f"smtp 127.0.0.1:{server.port} (ssl)")
        notifier.send(make_alert())
        [got] = server.messages
        assert got.tls and got.login == server.username


def test_a_refusing_server_is_a_permanent_error_naming_the_channel(smtp, make_alert):
    smtp.refuse_rcpt = "550 5.1.1 No such mailbox"
    with pytest.raises(NotifierError) as info:
        notifier_for(smtp).send(make_alert())
    err = info.value
    assert err.notifier == "email" and str(err).startswith("email: ")
    assert not err.retryable and not err.maybe_delivered
    assert "550" in err.cause and "pr-team@example.com" in err.cause
    assert smtp.messages == []


def test_a_4xx_is_transient(smtp, make_alert):
    smtp.data_reply = "451 4.3.0 Try again later"
    with pytest.raises(NotifierError) as info:
        notifier_for(smtp).send(make_alert())
    assert info.value.retryable and not info.value.maybe_delivered
    assert "451" in info.value.cause


def test_a_connection_dropped_after_data_may_have_delivered(smtp, make_alert):
    smtp.drop_after_data = True
    with pytest.raises(NotifierError) as info:
        notifier_for(smtp).send(make_alert())
    assert info.value.retryable and info.value.maybe_delivered
    assert len(smtp.messages) == 1  # it did arrive; the sender cannot know
    with pytest.raises(CannotTell):
        notifier_for(smtp).find(make_alert())


def test_bad_credentials_are_permanent_and_no_secret_reaches_the_logs(smtp, make_alert, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-but-Secret-Pw"
    with pytest.raises(NotifierError) as info:
        notifier_for(smtp, password=wrong).send(make_alert())
    assert not info.value.retryable and "535" in info.value.cause
    assert smtp.logins and set(smtp.logins) == {(smtp.username, False)}  # each mechanism tried
    notifier_for(smtp).send(make_alert())  # the right one works, and is logged about
    assert caplog.records
    logged = caplog.text + str(info.value)
    assert wrong not in logged and smtp.password not in logged


def test_an_untrusted_certificate_is_refused_permanently(smtp, make_alert, tmp_path):
    from tests.security.tls_proxy import make_certificates

    other = make_certificates(tmp_path / "other", "other")
    with pytest.raises(NotifierError) as info:
        notifier_for(smtp, ca_certs=str(other.ca_file)).send(make_alert())
    assert not info.value.retryable and "email.ca_certs" in info.value.cause
    assert smtp.messages == []


def test_a_server_without_starttls_is_never_sent_to_in_clear(tmp_path, make_alert):
    with SmtpServer(tmp_path / "certs", tls="none", auth=False) as server:
        with pytest.raises(NotifierError) as info:
            notifier_for(server, tls="starttls").send(make_alert())
        assert not info.value.retryable and "STARTTLS" in info.value.cause
        assert server.messages == []
        # a relay on this machine without TLS is allowed when configured so
        notifier_for(server, tls="none").send(make_alert())
        assert len(server.messages) == 1 and not server.messages[0].tls


def test_health_notices_go_out_as_plain_mail(smtp):
    from datetime import UTC, datetime

    from alerts.health import HealthNotice

    at = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    notice = HealthNotice(kind="source_down", subject="reddit", since=at, at=at, failures=3)
    notifier_for(smtp).send_notice(notice)
    [got] = smtp.messages
    assert "Source 'reddit' has failed 3 crawls" in got.message["Subject"]


def test_registry_and_config(smtp, tmp_path):
    names = list(NOTIFIERS)
    assert NOTIFIERS["email"] is EmailNotifier and names.index("slack") < names.index("email")
    section = smtp.email_config()
    # Slack stays the first choice when both are configured (no routes: one channel)
    both = Config.model_validate({"brands": [{"name": "Acme"}], "email": section,
                                  "slack": {"webhook_url": "https://hooks.slack.com/services/T/B/X"}})  # fmt: skip
    assert isinstance(notifier_from_config(both), SlackNotifier)
    assert config_for(smtp).email.effective_port == smtp.port
    assert Config.model_validate({"brands": [{"name": "A"}], "email": {"host": "smtp.example.com", "tls": "ssl",
                                  "from": "a@example.com", "to": ["b@example.com"]}}).email.effective_port == 465  # fmt: skip

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "brands: [{name: Acme}]\n"
        "email:\n  host: mail.example.com\n  tls: none\n  username: u\n  password: hunter2-secret\n"
        "  to: ['x@example.com\\nBcc: spy@evil.example']\n  port: 0\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    problems = "\n".join(info.value.problems)
    assert "email.from" in problems  # host without from
    assert "clear text" in problems  # a password over tls: none to another host
    assert "one e-mail address" in problems  # header injection through a recipient
    assert "email.port" in problems
    assert "hunter2-secret" not in problems


def _alert_kinds(make_alert) -> list[Alert]:
    return [make_alert(k) for k in ("started", "continuing", "ended", "high_reach")]


def test_every_kind_renders(smtp, make_alert):
    notifier = notifier_for(smtp)
    for alert in _alert_kinds(make_alert):
        notifier.send(alert)
    subjects = [m.message["Subject"] for m in smtp.messages]
    assert subjects[3].startswith("[BrandPulse] High-reach negative post: Acme (high_reach, ")
    assert all("Acme" in s for s in subjects)
