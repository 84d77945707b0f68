"""Structured logs: one line per event, readable by a person and parseable by a shipper.

Every line passes through `brandpulse.secrets.redact`: credentials inside URLs
(userinfo, `key=`/`token=`-style query parameters, Slack webhook paths) are masked
whoever logged them.

`text` format is logfmt (`ts=... level=info event=crawl.finished source=reddit n=12`),
`json` format is one JSON object per line. Components log an event name plus
key/value fields through `log_event`, so both formats carry the same data.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from brandpulse.secrets import redact

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# Libraries whose DEBUG (and, for some, INFO) lines print request URLs, headers or
# bodies: the Slack webhook URL, `Authorization` headers, API keys in query strings.
# They stay at WARNING whatever `daemon.log_level` says; `BRANDPULSE_LIBRARY_DEBUG=1`
# lets them follow the root level when a person debugs a library on purpose.
THIRD_PARTY_LOGGERS = (
    "elasticsearch", "elastic_transport", "urllib3", "requests", "httpx", "httpcore",
    "slack_sdk", "slack_bolt", "scrapy", "twisted", "filelock", "asyncio",
)  # fmt: skip


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` with structured fields (kept as record attributes, not in the text)."""
    logger.log(level, event, extra={"event_fields": fields})


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(getattr(record, "event_fields", {}) or {})
    # Third-party libraries pass extras as plain attributes; keep them too.
    for key, value in record.__dict__.items():
        if key not in _RESERVED and key != "event_fields" and not key.startswith("_"):
            fields.setdefault(key, value)
    return fields


def _logfmt_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    if text == "" or any(c in text for c in ' ="\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
        parts = [
            f"ts={ts}",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"event={_logfmt_value(record.getMessage())}",
        ]
        parts += [f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items()]
        if record.exc_info:
            parts.append(f"exc={_logfmt_value(self.formatException(record.exc_info))}")
        return redact(" ".join(parts))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(doc, default=str, ensure_ascii=False))


def configure_logging(fmt: str = "text", level: str = "INFO", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries that chat at INFO about every request would bury our events, and
    # their DEBUG lines carry secrets (see THIRD_PARTY_LOGGERS).
    library_debug = os.environ.get("BRANDPULSE_LIBRARY_DEBUG") == "1"
    for noisy in THIRD_PARTY_LOGGERS:
        logging.getLogger(noisy).setLevel(root.level if library_debug else max(logging.WARNING, root.level))
    # The Elasticsearch transport warns with a full traceback on every retry of every
    # request while the cluster is down; BrandPulse says it once per outage instead
    # (store.errors.describe_es_error), so only its errors pass.
    if not library_debug:
        for chatty in ("elastic_transport", "elasticsearch"):
            logging.getLogger(chatty).setLevel(max(logging.ERROR, root.level))
    # APScheduler warns about every skipped overlapping run; the daemon reports job
    # outcomes itself (job.crashed, job.missed, job.still_running).
    logging.getLogger("apscheduler").setLevel(max(logging.ERROR, root.level))
    # transformers draws progress bars while loading weights: not a log line.
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
