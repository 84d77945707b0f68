from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from brandpulse.config import ElasticsearchConfig

_counter = itertools.count()


@contextlib.contextmanager
def _isolated(es: Elasticsearch, spool: Path,
              prefix: str | None = None) -> Iterator[ElasticsearchConfig]:
    """A config with an index prefix of its own, so tests sharing the node never meet.
    `prefix` fixes the name for a test whose result may depend on it (left over indices
    of that name are deleted first)."""
    if prefix is not None:
        _delete_prefix(es, prefix)
    else:
        prefix = f"bptest{os.getpid()}-{next(_counter)}"
    yield ElasticsearchConfig(index_prefix=prefix, spool_dir=spool, bulk_size=500)
    _delete_prefix(es, prefix)


def _delete_prefix(es: Elasticsearch, prefix: str) -> None:
    # wildcard deletes are refused (action.destructive_requires_name): name them
    # closed ones too (retention tests close indices)
    names = list(
        es.indices.get(index=f"{prefix}-mentions-*", allow_no_indices=True, expand_wildcards="all")
    )
    if names:
        es.indices.delete(index=",".join(names))
    es.options(ignore_status=404).indices.delete(index=f"{prefix}-counts-hourly")
    es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-mentions")
    es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-counts-hourly")
    for suffix in ("settings", "mappings"):
        es.options(ignore_status=404).cluster.delete_component_template(
            name=f"{prefix}-mentions-{suffix}"
        )


@pytest.fixture
def es_cfg(es_client: Elasticsearch, tmp_path: Path) -> Iterator[ElasticsearchConfig]:
    with _isolated(es_client, tmp_path / "spool") as cfg:
        yield cfg


@pytest.fixture(scope="module")
def es_cfg_module(
    es_client: Elasticsearch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ElasticsearchConfig]:
    with _isolated(es_client, tmp_path_factory.mktemp("spool")) as cfg:
        yield cfg
