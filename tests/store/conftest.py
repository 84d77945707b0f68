from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from brandpulse.config import ElasticsearchConfig

_counter = itertools.count()


@pytest.fixture
def es_cfg(es_client: Elasticsearch, tmp_path: Path) -> Iterator[ElasticsearchConfig]:
    """A config with an index prefix of its own, so tests sharing the node never meet."""
    prefix = f"bptest{os.getpid()}-{next(_counter)}"
    yield ElasticsearchConfig(index_prefix=prefix, spool_dir=tmp_path / "spool", bulk_size=500)
    # wildcard deletes are refused (action.destructive_requires_name): name them
    names = list(es_client.indices.get(index=f"{prefix}-mentions-*", allow_no_indices=True))
    if names:
        es_client.indices.delete(index=",".join(names))
    es_client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-mentions")
    for suffix in ("settings", "mappings"):
        es_client.options(ignore_status=404).cluster.delete_component_template(
            name=f"{prefix}-mentions-{suffix}"
        )
