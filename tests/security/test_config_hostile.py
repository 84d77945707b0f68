"""Hostile and careless configurations: every problem reported at once, each with its
path and (unless it may be a secret) the bad value, and no secret in any output.

The CLI runs as a real subprocess with the secrets in environment variables, the way
a deployment passes them; its stdout and stderr are searched for every secret.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from brandpulse.config import ConfigError, parse_config

REPO = Path(__file__).resolve().parents[2]

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-1111-SECRET-slack-token",
    "ES_API_KEY": "RVNfQVBJX0tFWV9TRUNSRVQ=",
    "ES_PASSWORD": "hunter2-es-password",
    "KIBANA_PASSWORD": "kibana-secret-password",
    "SE_KEY": "stackexchange-secret-key",
    "WEBHOOK": "https://hooks.slack.com/services/T0001/B0001/webhooksecretpart",
}

HOSTILE_YAML = """
brands:
  - name: Acme
    query: 'acme NEAR/99999999999999999999 outage'
  - name: Acme
sources:
  - name: so
    type: stackexchange
    key: ${SE_KEY}
    timeout: 0
    schedule: {every: -5, jitter: -1}
  - name: hn
    type: hackernews
    brands: [Initech]
nlp: {runtime: onnx, device: cuda, batch_size: 0}
elasticsearch:
  hosts: ["http://elastic:${ES_PASSWORD}@es.example.com:9200", "not a url"]
  api_kye: ${ES_API_KEY}
  request_timeout: 0
slack:
  token: ${SLACK_BOT_TOKEN}
  tokn: ${SLACK_BOT_TOKEN}
  webhook_url: "javascript:alert(1)//${SLACK_BOT_TOKEN}"
  kibana_url: "file:///etc/passwd"
kibana:
  url: "javascript:alert(document.cookie)"
  password: ${KIBANA_PASSWORD}
  pasword: ${KIBANA_PASSWORD}
alerts: {check_every: 0, query_delay: -1s, history: 1s}
daemon: {shutdown_timeout: 0}
"""

# (path the problem starts with, a word the message must contain)
EXPECTED = [
    ("brands.0.query", "NEAR distance"),
    ("brands:", "used twice"),
    ("sources.0.stackexchange.schedule.every", "at least 1s"),
    ("sources.0.stackexchange.schedule.jitter", "at least 0s"),
    ("sources.0.stackexchange.timeout", "at least 1s"),
    ("sources.1.brands", "'Initech' is not a configured brand"),
    ("nlp.batch_size", "greater than or equal to 1"),
    ("nlp:", "runtime 'onnx' runs on the CPU"),
    ("elasticsearch.hosts", "'not a url'"),
    ("elasticsearch.api_kye", "unknown field"),
    ("elasticsearch.request_timeout", "at least 1s"),
    ("elasticsearch:", "credentials would be sent in clear text"),
    ("slack.tokn", "unknown field"),
    ("slack.webhook_url", "https://"),
    ("slack.kibana_url", "'file:///etc/passwd'"),
    ("slack:", "slack.channel is not"),
    ("kibana.url", "javascript:"),
    ("kibana.pasword", "unknown field"),
    ("alerts.check_every", "at least 1s"),
    ("alerts.history", "at least 1h"),
    ("daemon.shutdown_timeout", "at least 1s"),
]


def _problems(text: str) -> list[str]:
    return [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("- ")]


def _assert_no_secret(*outputs: str) -> None:
    for output in outputs:
        for name, value in SECRETS.items():
            assert value not in output, f"secret {name} printed"
        assert "webhooksecretpart" not in output


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, str(REPO / "scheduler.py"), *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_validate_reports_every_problem_at_once_and_no_secret(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(HOSTILE_YAML, encoding="utf-8")
    proc = _run("validate", "--config", str(path), cwd=tmp_path, env=SECRETS)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    _assert_no_secret(proc.stdout, proc.stderr)
    problems = _problems(proc.stderr)
    for prefix, word in EXPECTED:
        assert any(p.startswith(prefix) and word in p for p in problems), (prefix, word, problems)
    # the credentials inside the host URL are masked where the host is named
    assert "http://***@es.example.com:9200" in proc.stderr


def test_a_bot_token_without_a_channel_names_the_problem_not_the_token():
    data = {"brands": [{"name": "Acme"}], "slack": {"token": "${SLACK_BOT_TOKEN}"}}
    with pytest.raises(ConfigError) as err:
        parse_config(data, env=SECRETS)
    assert "slack.channel is not" in str(err.value)
    _assert_no_secret(str(err.value), repr(err.value))


@pytest.mark.parametrize(
    ("section", "value"),
    [
        ("password", 123456789),  # a secret of the wrong type: not echoed either
        ("api_key", ["RVNfQVBJX0tFWV9TRUNSRVQ="]),
    ],
)
def test_a_secret_of_the_wrong_type_is_not_echoed(section: str, value: object):
    data = {"brands": [{"name": "Acme"}], "elasticsearch": {section: value}}
    with pytest.raises(ConfigError) as err:
        parse_config(data, env={})
    text = str(err.value)
    assert f"elasticsearch.{section}" in text
    assert "123456789" not in text and "RVNfQVBJX0tFWV9TRUNSRVQ=" not in text


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("alerts", "check_every"), "0s", "at least 1s"),
        (("alerts", "check_every"), -60, "at least 1s"),
        (("alerts", "query_delay"), -1, "at least 0s"),
        (("alerts", "history"), "1s", "at least 1h"),
        (("elasticsearch", "request_timeout"), 0, "at least 1s"),
        (("daemon", "shutdown_timeout"), "0s", "at least 1s"),
        (("elasticsearch", "hosts"), ["es.example.com:9200"], "absolute http:// or https:// URL"),
        (("elasticsearch", "hosts"), ["file:///etc/passwd"], "absolute http:// or https:// URL"),
        (("kibana", "url"), "javascript:alert(1)", "absolute http:// or https:// URL"),
        (("kibana", "url"), "file:///etc/passwd", "absolute http:// or https:// URL"),
        (("slack", "kibana_url"), "javascript:alert(1)", "absolute http:// or https:// URL"),
        (("slack", "base_url"), "ftp://slack.example", "absolute http:// or https:// URL"),
        (("slack", "webhook_url"), "http://hooks.slack.com/services/T/B/x", "https://"),
        (("elasticsearch", "ssl_assert_fingerprint"), "abc", "64 hex digits"),
        (("elasticsearch", "ca_certs"), "/nonexistent/ca.pem", "does not exist"),
        (("elasticsearch", "cloud_id"), "nope:!!!", "not an Elastic Cloud id"),
    ],
)
def test_nonsense_values_are_refused_with_their_path(path, value, expected):
    section, key = path
    data = {"brands": [{"name": "Acme"}], section: {key: value}}
    with pytest.raises(ConfigError) as err:
        parse_config(data, env={})
    (problem,) = err.value.problems
    assert problem.startswith(f"{section}.{key}") and expected in problem, problem


def test_zero_jitter_and_zero_query_delay_stay_allowed():
    data = {
        "brands": [{"name": "Acme"}],
        "sources": [{"name": "hn", "type": "hackernews", "schedule": {"every": "1m", "jitter": 0}}],
        "alerts": {"query_delay": 0},
    }
    config = parse_config(data, env={})
    assert config.sources[0].schedule.jitter.total_seconds() == 0


def test_section_checks_come_with_the_field_errors_of_the_same_run():
    data = {
        "brands": [{"name": "Acme"}, {"name": "Acme", "query": "("}],
        "nlp": {"runtime": "onnx", "device": "cuda", "batch_size": 0},
        "slack": {"token": "xoxb-1", "base_url": "gopher://x"},
    }
    with pytest.raises(ConfigError) as err:
        parse_config(data, env={})
    text = str(err.value)
    for expected in ("brands.1.query", "used twice", "nlp.batch_size", "runtime 'onnx'",
                     "slack.base_url", "slack.channel is not"):  # fmt: skip
        assert expected in text, (expected, text)


@pytest.mark.parametrize(
    ("hosts", "extra", "ok"),
    [
        (["http://es.example.com:9200"], {"api_key": "k"}, False),
        (["http://es.example.com:9200"], {"username": "u", "password": "p"}, False),
        (["http://u:p@es.example.com:9200"], {}, False),
        (["http://es.example.com:9200"], {"api_key": "k", "allow_insecure_http": True}, True),
        (["https://es.example.com:9200"], {"api_key": "k"}, True),
        (["http://127.0.0.1:9200", "http://localhost:9200", "http://[::1]:9200"], {"api_key": "k"}, True),
        (["http://es.example.com:9200"], {}, True),  # no credentials: nothing to leak
        (["http://es.example.com:9200"], {"api_key": "${UNSET:-}"}, True),  # blank = unset
    ],
)
def test_credentials_over_clear_text_to_another_host_need_an_explicit_yes(hosts, extra, ok):
    data = {"brands": [{"name": "Acme"}], "elasticsearch": {"hosts": hosts, **extra}}
    if ok:
        parse_config(data, env={})
        return
    with pytest.raises(ConfigError, match=r"clear text over http to http://(\*\*\*@)?es\.example\.com"):
        parse_config(data, env={})


def test_kibana_credentials_over_clear_text_are_refused_too():
    data = {"brands": [{"name": "Acme"}],
            "kibana": {"url": "http://kibana.example.com:5601", "api_key": "k"}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"kibana: credentials would be sent in clear text"):
        parse_config(data, env={})


def test_unchecked_certificates_are_warned_about(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "brands: [{name: Acme}]\n"
        "elasticsearch: {hosts: ['https://es.example.com:9200'], verify_certs: false}\n",
        encoding="utf-8",
    )
    proc = _run("validate", "--config", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "warning: elasticsearch.verify_certs is false" in proc.stderr


def test_relative_state_and_spool_dirs_resolve_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = {"brands": [{"name": "Acme"}], "daemon": {"state_dir": "st"},
            "elasticsearch": {"spool_dir": "sp"}}  # fmt: skip
    config = parse_config(data, env={})
    assert config.daemon.state_dir == tmp_path / "st"
    assert config.elasticsearch.spool_dir == tmp_path / "sp"
    # defaults too: the crawl child and the daemon must name the same directory
    assert parse_config({"brands": [{"name": "Acme"}]}, env={}).daemon.state_dir == tmp_path / "var/state"


def test_an_elastic_cloud_id_gives_the_elasticsearch_and_kibana_urls():
    import base64

    from brandpulse.config import cloud_endpoints

    cloud_id = "prod:" + base64.b64encode(b"eu-west-1.aws.found.io:443$esuuid$kbuuid").decode()
    assert cloud_endpoints(cloud_id) == (
        "https://esuuid.eu-west-1.aws.found.io:443",
        "https://kbuuid.eu-west-1.aws.found.io:443",
    )
    config = parse_config({"brands": [{"name": "Acme"}], "elasticsearch": {"cloud_id": cloud_id},
                           "kibana": {"cloud_id": cloud_id}}, env={})  # fmt: skip
    assert config.kibana.base_url == "https://kbuuid.eu-west-1.aws.found.io:443"
    with pytest.raises(ConfigError, match="either cloud_id or hosts"):
        parse_config({"brands": [{"name": "Acme"}],
                      "elasticsearch": {"cloud_id": cloud_id, "hosts": ["https://x:9200"]}}, env={})  # fmt: skip


def test_a_yaml_error_names_the_position_not_the_line(tmp_path: Path):
    from brandpulse.config import load_config

    path = tmp_path / "config.yaml"
    path.write_text("brands: [{name: Acme}]\nslack:\n  token: xoxb-literal-SECRET: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    text = str(err.value)
    assert "not valid YAML at line 3" in text
    assert "xoxb-literal-SECRET" not in text
