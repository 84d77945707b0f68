"""The Elasticsearch side of BrandPulse: index layout, bulk writer with spool, queries.

See docs/elasticsearch.md for the design.
"""

from store.client import make_client
from store.setup import (
    SetupResult,
    alias_name,
    index_for,
    install_templates,
    setup_elasticsearch,
)
from store.writer import BulkWriter, DocFailure, WriteReport

__all__ = [
    "BulkWriter",
    "DocFailure",
    "SetupResult",
    "WriteReport",
    "alias_name",
    "index_for",
    "install_templates",
    "make_client",
    "setup_elasticsearch",
]
