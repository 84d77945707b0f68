"""An Elasticsearch client from the `elasticsearch` config section."""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from brandpulse.config import ElasticsearchConfig


def make_client(cfg: ElasticsearchConfig) -> Elasticsearch:
    kwargs: dict[str, Any] = {
        "hosts": list(cfg.hosts),
        "request_timeout": cfg.request_timeout.total_seconds(),
        "verify_certs": cfg.verify_certs,
    }
    if cfg.api_key is not None:
        kwargs["api_key"] = cfg.api_key.get_secret_value()
    elif cfg.username is not None:
        password = cfg.password.get_secret_value() if cfg.password is not None else ""
        kwargs["basic_auth"] = (cfg.username, password)
    return Elasticsearch(**kwargs)
