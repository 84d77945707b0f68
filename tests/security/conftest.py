"""Hostile local servers for the security tests.

`api_server` (the source's own server) and `crawl` are the crawler harness of
tests/crawlers; `other_server` is a second local server standing for another
host or an internal service (an Elasticsearch-like port): every request it
receives is recorded, so a test can assert that nothing reached it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.crawlers.conftest import ApiServer, api_server, crawl  # noqa: F401 (fixtures)


@pytest.fixture
def other_server() -> Iterator[ApiServer]:
    server = ApiServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
