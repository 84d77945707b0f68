"""Credentials a crawl sends never appear in its log, summary or fault lines."""

from __future__ import annotations

import json

from tests.crawlers.conftest import Reply

SEARCH = "/2.3/search/advanced"
KEY = "SEkey-0123456789abcdef"


def test_a_query_string_key_stays_out_of_a_debug_log(api_server, crawl):
    # Stack Exchange takes its key only as a query parameter: the URL carries it.
    api_server.add(
        SEARCH,
        Reply.json({"error_id": 400, "error_name": "bad_parameter", "error_message": "page"}, status=400),
    )
    result = crawl(
        {"type": "stackexchange", "site": "superuser", "key": KEY},
        settings={"LOG_LEVEL": "DEBUG"},
    )
    assert result.error is None, result.log
    assert api_server.hits(SEARCH)[0].param("key") == KEY  # it was sent, to the API
    assert "http_400" in result.stats["failed"]
    assert "key=***" in result.stats["fault_examples"]["http_400"]
    assert "Crawled (400)" in result.log or "GET http" in result.log  # the URLs were logged
    assert KEY not in result.log
    assert KEY not in json.dumps(result.stats)
