"""Elasticsearch failures speak in one line that names the host (credentials masked)
and what to do: refused, timed out, missing index or alias, 401, 403; in the CLI as
well as from `describe_es_error`. Invalid UTF-8 on `score`'s stdin is a warning, not
a traceback.

Real failures wherever a real part can produce them: a port where nothing listens, a
proxy that accepts and never answers, the real node without the index. The local
node has no security layer, so 401 and 403 are the client's own exception types
built with the body Elasticsearch sends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import AuthenticationException, AuthorizationException, Elasticsearch

from store.errors import describe_es_error
from tests.security.tls_proxy import TcpProxy

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, str(REPO / "scheduler.py"), *args],
        cwd=cwd, input=stdin, capture_output=True, timeout=300, env=dict(os.environ),
    )  # fmt: skip


def _write_config(tmp_path: Path, hosts: list[str], prefix: str = "errs", timeout: str = "2s") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "brands: [{name: Acme}]\n"
        f"elasticsearch: {{hosts: {hosts!r}, index_prefix: {prefix}, request_timeout: {timeout}}}\n"
        "alerts: {enabled: true}\n",
        encoding="utf-8",
    )
    return path


def test_refused_connection_names_the_host_and_what_to_do(closed_port: int):
    url = f"http://elastic:s3cret-pw@127.0.0.1:{closed_port}"
    with pytest.raises(Exception) as err:
        Elasticsearch(url, request_timeout=2, max_retries=0).info()
    line = describe_es_error(err.value, [url])
    assert "refused the connection" in line and "is Elasticsearch running" in line
    assert "127.0.0.1" in line and "s3cret-pw" not in line
    assert "\n" not in line


def test_a_node_that_never_answers_is_a_timeout():
    with TcpProxy("127.0.0.1:9", blackhole=True) as hung, pytest.raises(Exception) as err:
        Elasticsearch(hung.url, request_timeout=1, max_retries=0).info()
    line = describe_es_error(err.value, [hung.url])
    assert "did not answer in time" in line and "request_timeout" in line


def test_a_missing_alias_says_to_run_setup(es_client: Elasticsearch):
    missing = f"nothere{uuid.uuid4().hex[:6]}-mentions"
    with pytest.raises(Exception) as err:
        es_client.count(index=missing)
    line = describe_es_error(err.value)
    assert f"has no index or alias '{missing}'" in line and "setup --elasticsearch" in line


def _meta(status: int) -> ApiResponseMeta:
    return ApiResponseMeta(status=status, http_version="1.1", headers=HttpHeaders(), duration=0.0,
                           node=NodeConfig("https", "es.example.com", 9200))  # fmt: skip


def test_401_and_403_say_which_setting_to_check():
    unauthenticated = AuthenticationException(
        message="security_exception", meta=_meta(401),
        body={"error": {"type": "security_exception",
                        "reason": "unable to authenticate user [elastic]"}, "status": 401},
    )  # fmt: skip
    line = describe_es_error(unauthenticated)
    assert line.startswith("Elasticsearch at https://es.example.com:9200 refused the credentials")
    assert "elasticsearch.api_key" in line
    forbidden = AuthorizationException(
        message="security_exception", meta=_meta(403),
        body={"error": {"type": "security_exception", "reason": "action [indices:data/write/bulk] "
                        "is unauthorized for API key"}, "status": 403},
    )  # fmt: skip
    line = describe_es_error(forbidden)
    assert "denied the request (HTTP 403" in line and "lacks a privilege" in line


def test_cli_commands_print_one_line_not_a_traceback_when_elasticsearch_is_down(
    tmp_path: Path, closed_port: int
):
    dead = f"http://user:s3cret-pw@127.0.0.1:{closed_port}"
    config = _write_config(tmp_path, [dead])
    for command in (["setup", "--elasticsearch"], ["check-alerts"]):
        proc = _cli(*command, "--config", str(config), cwd=tmp_path)
        err = proc.stderr.decode()
        assert proc.returncode == 1, (command, err)
        assert "Traceback" not in err, (command, err)
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, (command, err)
        assert "refused the connection" in lines[0] and "127.0.0.1" in lines[0]
        assert "s3cret-pw" not in err + proc.stdout.decode()


def test_cli_rescore_before_setup_says_to_run_setup(es_node, tmp_path: Path):
    config = _write_config(tmp_path, [es_node.url], prefix=f"nosetup{uuid.uuid4().hex[:6]}",
                           timeout="60s")
    proc = _cli("rescore", "--config", str(config), cwd=tmp_path)
    err = proc.stderr.decode()
    assert "Traceback" not in err, err
    assert proc.returncode == 1, err
    assert "has no index or alias" in err and "setup --elasticsearch" in err


def test_score_reads_invalid_utf8_on_stdin_with_a_warning(tmp_path: Path):
    proc = _cli("score", "--model", "default", cwd=tmp_path,
                stdin=b"Acme is great\n\xff\xfe broken \xc3 bytes about Acme\n")  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "not valid UTF-8 (first bad byte on line 2)" in err
    out = proc.stdout.decode().splitlines()
    assert len(out) == 2 and "\ufffd" in out[1]
