from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from brandpulse.config import ElasticsearchConfig
from tests.store.conftest import _isolated


@pytest.fixture(scope="module")
def es_cfg_module(
    es_client: Elasticsearch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ElasticsearchConfig]:
    """An index prefix of this module's own (the store tests' isolation)."""
    with _isolated(es_client, tmp_path_factory.mktemp("spool")) as cfg:
        yield cfg
