"""Elasticsearch over TLS, for real: `ca_certs`, `ssl_assert_fingerprint`, an untrusted
CA refused with a clear message, and credentials sent as headers.

The local node (`esnode`, Maven Central jars) has no x-pack, so its HTTP layer cannot
be switched to TLS; a genuine TLS terminator (`tests/security/tls_proxy.py`, Python's
ssl over OpenSSL, certificates from a throwaway CA made with `cryptography`) sits in
front of the real node. The client does a real handshake and verification and talks
to the real Elasticsearch behind it; the proxy records the headers it forwards.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from brandpulse.config import parse_config
from store.client import make_client
from store.setup import setup_elasticsearch
from tests.security.tls_proxy import ServerCert, TcpProxy, make_certificates

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[ServerCert, ServerCert]:
    """The proxy's certificate, and one from another CA nobody here trusts."""
    d = tmp_path_factory.mktemp("certs")
    return make_certificates(d, "proxy"), make_certificates(d, "stranger")


@pytest.fixture
def tls_es(es_node, certs) -> Iterator[TcpProxy]:
    with TcpProxy(es_node.url.split("//", 1)[1], tls=certs[0]) as proxy:
        yield proxy


def _es(proxy: TcpProxy, **settings: object):
    data = {"brands": [{"name": "Acme"}],
            "elasticsearch": {"hosts": [proxy.url], "request_timeout": "60s", **settings}}  # fmt: skip
    return parse_config(data, env={}).elasticsearch


def test_connects_with_ca_certs_and_sends_basic_auth(tls_es, certs):
    cfg = _es(tls_es, ca_certs=str(certs[0].ca_file), username="elastic", password="s3cret-pw",
              index_prefix=f"tls{uuid.uuid4().hex[:6]}")  # fmt: skip
    client = make_client(cfg)
    assert client.cluster.health()["status"] in {"green", "yellow"}
    result = setup_elasticsearch(client, cfg)  # a real write path over TLS
    assert result.bootstrap_index
    expected = "Basic " + base64.b64encode(b"elastic:s3cret-pw").decode()
    assert tls_es.requests and all(r.get("authorization") == expected for r in tls_es.requests)
    client.indices.delete(index=result.bootstrap_index)


def test_connects_with_a_pinned_fingerprint_and_sends_the_api_key(tls_es, certs):
    cfg = _es(tls_es, ssl_assert_fingerprint=certs[0].fingerprint, api_key="a2V5OnNlY3JldA==")
    assert make_client(cfg).cluster.health()["status"] in {"green", "yellow"}
    assert tls_es.requests[-1]["authorization"] == "ApiKey a2V5OnNlY3JldA=="


def _setup_cli(tmp_path: Path, es_lines: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.yaml"
    config.write_text(f"brands: [{{name: Acme}}]\nelasticsearch:\n{es_lines}", encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(REPO / "scheduler.py"), "setup", "--elasticsearch", "--config", str(config)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=dict(os.environ),
    )  # fmt: skip


@pytest.mark.parametrize("trust", ["system store", "another CA"])
def test_an_untrusted_certificate_is_refused_with_a_message_naming_the_problem(
    tls_es, certs, tmp_path, trust
):
    ca = f"  ca_certs: {certs[1].ca_file}\n" if trust == "another CA" else ""
    proc = _setup_cli(tmp_path, f"  hosts: ['{tls_es.url}']\n{ca}")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert f"Elasticsearch at https://127.0.0.1:{tls_es.port}" in line
    assert "TLS certificate that is not trusted" in line and "elasticsearch.ca_certs" in line
    assert not [r for r in tls_es.requests if r["request-line"].startswith(("PUT", "POST"))]


def test_a_wrong_fingerprint_is_refused_with_a_message_naming_it(tls_es, certs, tmp_path):
    proc = _setup_cli(tmp_path, f"  hosts: ['{tls_es.url}']\n"
                                f"  ssl_assert_fingerprint: '{certs[1].fingerprint}'\n")  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "not elasticsearch.ssl_assert_fingerprint" in proc.stderr
    assert tls_es.requests == []
