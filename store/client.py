"""An Elasticsearch client from the `elasticsearch` config section.

Everything a production cluster asks for is passed through: `cloud_id` (Elastic
Cloud) or `hosts`; an API key or basic auth (username/password, also accepted inside
a host URL); `ca_certs` (the CA a new Elasticsearch 9 generates, `http_ca.crt`) or
`ssl_assert_fingerprint` (trust exactly one certificate). `verify_certs: false`
works but is warned about once per client: any server could pose as the cluster
and collect the credentials. Credentials over plain http to another machine are
refused when the config is loaded (`elasticsearch.allow_insecure_http`).
"""

from __future__ import annotations

import logging
from typing import Any

from elasticsearch import Elasticsearch

from brandpulse.config import ElasticsearchConfig
from brandpulse.secrets import reveal

log = logging.getLogger(__name__)


def client_options(cfg: ElasticsearchConfig) -> dict[str, Any]:
    """The keyword arguments of `Elasticsearch(...)` for this section."""
    kwargs: dict[str, Any] = {
        "request_timeout": cfg.request_timeout.total_seconds(),
        "verify_certs": cfg.verify_certs,
    }
    if cfg.cloud_id:
        kwargs["cloud_id"] = cfg.cloud_id
    else:
        kwargs["hosts"] = list(cfg.hosts)
    if cfg.ca_certs is not None:
        kwargs["ca_certs"] = str(cfg.ca_certs)
    if cfg.ssl_assert_fingerprint:
        # the transport then checks the pinned certificate instead of its chain
        kwargs["ssl_assert_fingerprint"] = cfg.ssl_assert_fingerprint
    api_key = reveal(cfg.api_key)
    if api_key is not None:
        kwargs["api_key"] = api_key
    elif cfg.username:
        kwargs["basic_auth"] = (cfg.username, reveal(cfg.password) or "")
    return kwargs


def make_client(cfg: ElasticsearchConfig) -> Elasticsearch:
    for warning in cfg.tls_warnings("elasticsearch"):
        log.warning(warning)
    return Elasticsearch(**client_options(cfg))
