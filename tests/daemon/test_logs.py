"""Structured logs: one line per event in both formats, with the event's fields."""

from __future__ import annotations

import io
import json
import logging

from daemon.logs import configure_logging, log_event


def test_logfmt_line_carries_event_and_fields():
    out = io.StringIO()
    configure_logging("text", "INFO", stream=out)
    log_event(logging.getLogger("brandpulse.test"), "crawl.finished", source="reddit", n=12, note="two words")
    line = out.getvalue().strip()
    assert "\n" not in line
    assert "level=info" in line and "event=crawl.finished" in line
    assert "source=reddit" in line and "n=12" in line and 'note="two words"' in line


def test_json_line_parses_and_keeps_types():
    out = io.StringIO()
    configure_logging("json", "INFO", stream=out)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("brandpulse.test").exception("job.crashed", extra={"event_fields": {"job": "x"}})
    doc = json.loads(out.getvalue().strip().splitlines()[-1])
    assert doc["event"] == "job.crashed" and doc["job"] == "x" and doc["level"] == "error"
    assert "ValueError: boom" in doc["exc"]
