"""The configuration schema: the shipped example validates, and every kind of
mistake is reported with its field path, the bad value and what was expected."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from brandpulse.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]

MINIMAL = {"brands": [{"name": "Acme"}]}


def test_shipped_example_validates_without_any_environment():
    config = load_config(REPO / "config.yaml", env={})
    assert [b.name for b in config.brands] == ["Acme", "Globex"]
    assert {s.type for s in config.sources} >= {"reddit", "hackernews", "rss", "html_forum"}
    # Unset optional secrets mean "not configured", not an empty password.
    reddit = next(s for s in config.sources if s.type == "reddit")
    assert reddit.client_id is None
    assert config.slack.token is None


def test_environment_references_are_expanded_and_secrets_hidden():
    data = {**MINIMAL, "slack": {"token": "${SLACK_BOT_TOKEN}", "channel": "#pr"}}
    config = parse_config(data, env={"SLACK_BOT_TOKEN": "xoxb-123"})
    assert config.slack.token is not None
    assert config.slack.token.get_secret_value() == "xoxb-123"
    assert "xoxb-123" not in repr(config.slack)


def test_missing_environment_variable_is_named():
    data = {**MINIMAL, "slack": {"token": "${SLACK_BOT_TOKEN}", "channel": "#pr"}}
    with pytest.raises(ConfigError) as err:
        parse_config(data, env={})
    assert "slack.token: environment variable SLACK_BOT_TOKEN is not set" in str(err.value)


def test_every_error_is_reported_at_once_with_path_value_and_expectation():
    data = {
        "brands": [{"name": "Acme", "colour": "red"}],
        "sources": [
            {"name": "r", "type": "reddit", "schedule": {"every": "soon"}},
            {"name": "t", "type": "telegraph"},
        ],
        "nlp": {"batch_size": 0},
    }
    with pytest.raises(ConfigError) as err:
        parse_config(data, source="bad.yaml", env={})
    problems = err.value.problems
    text = str(err.value)
    assert "bad.yaml" in text
    # an unknown key may be a misspelt secret (`tokn`): its value is never echoed
    assert any(p.startswith("brands.0.colour: unknown field") and "'red'" not in p for p in problems)
    assert any(
        p.startswith("sources.0.reddit.schedule.every") and "'soon'" in p and "duration" in p
        for p in problems
    )
    assert any(p.startswith("sources.1") and "telegraph" in p for p in problems)
    assert any(p.startswith("nlp.batch_size") and "greater than or equal to 1" in p for p in problems)
    assert len(problems) >= 4


def test_durations_are_human():
    data = {**MINIMAL, "alerts": {"check_every": "90s", "query_delay": "2m", "history": "14d"}}
    alerts = parse_config(data, env={}).alerts
    assert alerts.check_every == timedelta(seconds=90)
    assert alerts.query_delay == timedelta(minutes=2)
    assert alerts.history == timedelta(days=14)


def test_cross_references_are_checked():
    data = {
        "brands": [{"name": "Acme"}, {"name": "Acme"}],
        "sources": [{"name": "hn", "type": "hackernews", "brands": ["Initech"]}],
    }
    with pytest.raises(ConfigError) as err:
        parse_config(data, env={})
    text = str(err.value)
    assert "'Acme' is used twice" in text
    assert "'Initech' is not a configured brand" in text


def test_routes_must_name_configured_channels_reported_with_every_other_error():
    data = {
        **MINIMAL,
        "slack": {"webhook_url": "https://hooks.slack.com/services/T/B/X"},
        "email": {"host": "", "to": []},  # an unset ${SMTP_HOST:-}: e-mail is not set up
        "nlp": {"batch_size": 0},
        "alerts": {"routes": [
            {"channels": ["slack", "email"], "severities": ["critical"]},
            {"channels": ["slack"], "brands": ["Initech"], "rules": ["flat_line"],
             "escalate_after": "30m", "escalate_to": ["pager"]},
            {"channels": ["log"], "escalate_to": ["slack"]},
        ]},
    }  # fmt: skip
    with pytest.raises(ConfigError) as err:
        parse_config(data, env={})
    problems = err.value.problems
    text = "\n".join(problems)
    assert any(p.startswith("alerts.routes.0.channels") and "'email' is not configured" in p
               and "configured: ['slack', 'log']" in p for p in problems)  # fmt: skip
    assert any(p.startswith("alerts.routes.1.escalate_to") and "'pager' is not a channel" in p
               for p in problems)  # fmt: skip
    assert any(p.startswith("alerts.routes.0.severities") for p in problems)
    assert "'Initech' is not a configured brand" in text
    assert "unknown rule(s) ['flat_line']" in text
    assert "set escalate_after and escalate_to together" in text
    assert any(p.startswith("nlp.batch_size") for p in problems)  # and the rest, at once
    assert "hooks.slack.com/services/T/B/X" not in text  # the webhook is a secret

    ok = parse_config({**MINIMAL, "alerts": {"routes": [{"channels": ["log"]}]}}, env={})
    assert ok.alerts.routes[0].channels == ["log"] and ok.alerts.routes[0].brands == []


HTTP_CHANNELS = {
    "webhook": {"url": "https://hooks.example.com/brandpulse", "secret": "whsec-1"},
    "teams": {"url": "https://acme.webhook.office.com/webhookb2/g@t/IncomingWebhook/i/o"},
    "wecom": {"url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k-1"},
    "dingtalk": {"url": "https://oapi.dingtalk.com/robot/send?access_token=t-1", "secret": "SEC1"},
    "feishu": {"url": "https://open.feishu.cn/open-apis/bot/v2/hook/h-1", "secret": "s-1"},
}


@pytest.mark.parametrize("name", sorted(HTTP_CHANNELS))
def test_each_webhook_style_channel_can_be_routed_once_its_url_is_set(name):
    route = {"alerts": {"routes": [{"channels": ["slack", name], "escalate_after": "30m",
                                    "escalate_to": [name]}]}}  # fmt: skip
    slack = {"webhook_url": "https://hooks.slack.com/services/T/B/X"}
    config = parse_config({**MINIMAL, "slack": slack, name: HTTP_CHANNELS[name], **route}, env={})
    assert config.alerts.routes[0].channels == ["slack", name]

    # `url: ${VAR:-}` with the variable unset: the section sets nothing up
    unset = {**HTTP_CHANNELS[name], "url": "${NO_SUCH_URL:-}"}
    with pytest.raises(ConfigError) as err:
        parse_config({**MINIMAL, "slack": slack, name: unset, **route}, env={})
    problems = [p for p in err.value.problems if p.startswith("alerts.routes.0.")]
    assert len(problems) == 2, err.value.problems  # channels and escalate_to
    assert all(f"{name!r} is not configured" in p and "configured: ['slack', 'log']" in p
               for p in problems)  # fmt: skip


def test_slack_bot_token_needs_a_channel():
    data = {**MINIMAL, "slack": {"token": "xoxb-1"}}
    with pytest.raises(ConfigError, match=r"slack\.channel is not"):
        parse_config(data, env={})


def test_per_brand_spike_settings_override_only_what_they_set():
    data = {
        "brands": [{"name": "Acme", "spike": {"min_count": 3}}, {"name": "Globex"}],
        "alerts": {"spike": {"threshold": 6.0, "min_count": 20}},
    }
    config = parse_config(data, env={})
    acme = config.spike_settings("Acme")
    assert acme.min_count == 3
    assert acme.threshold == 6.0
    assert config.spike_settings("Globex").min_count == 20


def test_brand_query_that_does_not_parse_fails_with_its_position():
    data = {"brands": [{"name": "Acme", "query": '("acme" OR acme corp'}]}
    with pytest.raises(ConfigError) as err:
        parse_config(data, env={})
    assert "brands.0" in str(err.value)
    assert "position" in str(err.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("brands: [\n  - name: Acme\n bad indent", "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping"),
        ("", "expected a mapping"),
    ],
)
def test_unreadable_files_are_explained(tmp_path, text, expected):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=expected):
        load_config(path, env={})


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_unknown_time_zone_is_named():
    data = {
        **MINIMAL,
        "sources": [{
            "name": "board", "type": "html_forum", "start_urls": ["https://x/{query}"],
            "selectors": {"post": "li", "text": "p", "time": "span"}, "timezone": "Mars/Olympus",
        }],
    }  # fmt: skip
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        parse_config(data, env={})


def test_reports_section_every_error_at_once():
    data = {**MINIMAL, "reports": {
        "schedules": [
            {"period": "week", "day_of_week": "monday", "time": "9am", "time_zone": "Europe/Lndon"},
            {"period": "fortnight"},
        ],
        "brands": ["Acme", "Initech"], "language": "fr", "slack": True,
    }}
    with pytest.raises(ConfigError) as err:
        parse_config(data, env={})
    text = "\n".join(err.value.problems)
    assert "reports.schedules.0.day_of_week" in text and "'monday'" in text
    assert "reports.schedules.0.time" in text and "'9am' is not a time HH:MM" in text
    assert "reports.schedules.0.time_zone" in text and "unknown time zone 'Europe/Lndon'" in text
    assert "reports.schedules.1.period" in text
    assert "reports.language" in text
    assert "'Initech' is not a configured brand" in text
    assert "reports.slack needs slack.token and slack.channel" in text


def test_reports_schedule_defaults():
    data = {**MINIMAL, "reports": {"schedules": [
        {"time": "09:00", "time_zone": "Europe/London"},
        {"period": "day", "time": "07:30", "time_zone": "Asia/Shanghai"},
        {"period": "week", "day_of_week": "Mon-Fri,sun", "time": "23:59"},
    ]}}
    weekly, daily, odd = parse_config(data, env={}).reports.schedules
    assert (weekly.period, weekly.days, weekly.hour_minute) == ("week", "mon", (9, 0))
    assert (daily.days, daily.hour_minute, daily.time_zone) == ("*", (7, 30), "Asia/Shanghai")
    assert odd.days == "mon-fri,sun" and odd.time_zone == "UTC"
    assert parse_config(MINIMAL, env={}).reports.schedules == []


def test_routes_may_select_every_rule_of_the_registry():
    """The further rules (more-rules) are rule names a route may select by."""
    data = {**MINIMAL, "alerts": {"routes": [
        {"channels": ["log"], "rules": ["flatline", "sov_shift", "competitor_negative_spike"]},
    ]}}  # fmt: skip
    config = parse_config(data, env={})
    assert config.alerts.routes[0].rules == ["flatline", "sov_shift", "competitor_negative_spike"]


def test_slack_buttons_need_a_bot_token_and_the_app_token_stays_hidden():
    data = {**MINIMAL, "slack": {"webhook_url": "https://hooks.slack.com/services/T/B/x",
                                 "app_token": "xapp-1-A0-1-verysecret"}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"slack\.app_token: the Slack buttons") as err:
        parse_config(data, env={})
    assert "verysecret" not in str(err.value)
    config = parse_config({**MINIMAL, "slack": {"token": "xoxb-1", "channel": "C1",
                                                "app_token": "xapp-1-A0-1-verysecret"}}, env={})  # fmt: skip
    assert "verysecret" not in repr(config)


def test_maintenance_windows_in_local_time_with_every_error_at_once():
    from datetime import UTC, datetime

    window = {"brands": ["Acme"], "rules": ["negative_spike"], "from": "2026-12-01T22:00",
              "to": "2026-12-02T06:00", "timezone": "Europe/Paris"}  # fmt: skip
    [parsed] = parse_config({**MINIMAL, "alerts": {"maintenance": [window]}}, env={}).alerts.maintenance
    assert parsed.start_utc == datetime(2026, 12, 1, 21, 0, tzinfo=UTC)
    assert parsed.covers("Acme", "negative_spike", datetime(2026, 12, 2, 4, 59, tzinfo=UTC))
    assert not parsed.covers("Acme", "high_reach", datetime(2026, 12, 2, 4, 0, tzinfo=UTC))
    assert not parsed.covers("Acme", "negative_spike", datetime(2026, 12, 2, 5, 0, tzinfo=UTC))
    bad = [window | {"brands": ["Nobody"], "rules": ["nope"]}, window | {"timezone": "Mars/Base"}]
    with pytest.raises(ConfigError) as err:
        parse_config({**MINIMAL, "alerts": {"maintenance": bad}}, env={})
    text = str(err.value)
    assert "'Nobody' is not a configured brand" in text and "unknown rule(s) ['nope']" in text
    assert "unknown time zone 'Mars/Base'" in text


def test_redis_is_optional_and_its_password_comes_from_the_environment():
    assert parse_config(MINIMAL, env={}).redis is None
    data = {**MINIMAL, "redis": {"url": "rediss://cache.internal:6380/2",
                                 "password": "${REDIS_PASSWORD}", "lease_ttl": "2m"}}
    config = parse_config(data, env={"REDIS_PASSWORD": "s3cret-pw"})
    assert config.redis is not None
    assert config.redis.password is not None
    assert config.redis.password.get_secret_value() == "s3cret-pw"
    assert "s3cret-pw" not in repr(config)
    assert config.redis.lease_ttl == timedelta(minutes=2)
    assert config.redis.key_prefix == "brandpulse:"


def test_redis_section_every_error_at_once():
    data = {**MINIMAL, "redis": {"url": "redis://:pw-in-url@cache:6379/0", "key_prefix": "a b",
                                 "lease_ttl": "0s", "password": "x-secret-1"}}
    with pytest.raises(ConfigError) as err:
        parse_config(data, env={})
    text = str(err.value)
    assert "redis.url: the Redis URL must not carry credentials" in text
    assert "redis.password: ${REDIS_PASSWORD}" in text
    assert "redis.key_prefix" in text
    assert "redis.lease_ttl" in text
    assert "pw-in-url" not in text and "x-secret-1" not in text


def test_redis_password_in_clear_text_to_another_machine_is_refused():
    data = {**MINIMAL, "redis": {"url": "redis://cache.internal:6379/0", "password": "pw-123456"}}
    with pytest.raises(ConfigError, match=r"use rediss://, or set redis\.allow_clear_text"):
        parse_config(data, env={})
    allowed = {**data, "redis": {**data["redis"], "allow_clear_text": True}}
    assert parse_config(allowed, env={}).redis is not None
    local = {**MINIMAL, "redis": {"url": "redis://127.0.0.1:6379/0", "password": "pw-123456"}}
    assert parse_config(local, env={}).redis is not None


def test_health_port_is_a_number_off_or_auto_with_one_message_per_mistake():
    def port(value: object) -> object:
        return parse_config({**MINIMAL, "daemon": {"http_port": value}}, env={}).daemon.http_port

    assert port(9464) == 9464 and port("9464") == 9464  # a quoted number, as ever
    assert port(0) == 0 and port("auto") == "auto"
    for bad in (70000, -1, "any", True):
        with pytest.raises(ConfigError) as err:
            port(bad)
        (problem,) = err.value.problems  # not one per branch of the union
        assert problem.startswith("daemon.http_port:") and "0-65535 (0: off) or 'auto'" in problem
