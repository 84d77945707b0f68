"""Elasticsearch failures as one line a person can act on.

A client call that fails raises an `elastic_transport` exception whose text is a
nested repr (`ConnectionError(Connection error caused by: NewConnectionError(...))`)
or a JSON error body; as a traceback it buries what happened. `describe_es_error`
names the host (credentials masked), what went wrong (refused, timed out, TLS not
trusted, 401, 403, missing index or alias) and what to do about it. The CLI prints
it instead of a traceback; the daemon logs it once per outage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from elasticsearch import ApiError, TransportError
from elasticsearch import ConnectionTimeout as EsConnectionTimeout
from elasticsearch import SSLError as EsSSLError

from brandpulse.secrets import mask_url, redact

# What "Elasticsearch failed" means for a caller that must not crash on it.
ES_ERRORS: tuple[type[Exception], ...] = (ApiError, TransportError)


def _where(exc: Exception, hosts: Sequence[str]) -> str:
    meta = getattr(exc, "meta", None)
    node = getattr(meta, "node", None)
    if node is not None and getattr(node, "host", None):
        return f"{node.scheme}://{node.host}:{node.port}"
    return ", ".join(mask_url(h) for h in hosts) or "the configured host"


def _api_error(exc: ApiError) -> str:
    status = exc.status_code
    body: Any = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    kind = error.get("type") or exc.error or ""
    reason = str(error.get("reason") or exc.message or "")[:200]
    if status == 401:
        return ("refused the credentials (HTTP 401); check elasticsearch.api_key, or "
                "elasticsearch.username and password")  # fmt: skip
    if status == 403:
        return (f"denied the request (HTTP 403: {reason}); the user or API key lacks a "
                "privilege this needs (see docs/elasticsearch.md for the roles)")  # fmt: skip
    if status == 404 and kind == "index_not_found_exception":
        index = error.get("index") or error.get("resource.id") or "?"
        return (f"has no index or alias {index!r} (HTTP 404); run `python scheduler.py setup "
                "--elasticsearch`, or check elasticsearch.index_prefix")  # fmt: skip
    if status == 404:
        return f"answered HTTP 404 ({kind or reason}); is this an Elasticsearch 9 endpoint?"
    if status == 429 or status >= 500:
        return f"is overloaded or failing (HTTP {status}: {kind or reason}); try again later"
    return f"refused the request (HTTP {status}: {kind}: {reason})"


def _transport_error(exc: TransportError) -> str:
    # str() is often just "Connection error"; the cause says refused, TLS, DNS...
    parts = [str(exc), repr(exc), *(repr(e) for e in exc.errors), repr(exc.__cause__)]
    text = " ".join(parts)
    if isinstance(exc, EsConnectionTimeout) or "timed out" in text.lower():
        # urllib3 says how long it waited ("read timeout=30.0"): the configured wait
        waited = re.search(r"timeout=(\d+(?:\.\d+)?)", text)
        after = f": {float(waited.group(1)):g} s" if waited else ""
        return (f"did not answer in time (timeout{after}); is it overloaded, hung or "
                "unreachable? elasticsearch.request_timeout sets the wait")  # fmt: skip
    if isinstance(exc, EsSSLError) or "SSL" in text or "certificate" in text.lower():
        if "Fingerprints did not match" in text or "fingerprint" in text.lower():
            return ("presented a certificate whose fingerprint is not "
                    "elasticsearch.ssl_assert_fingerprint; check the fingerprint")  # fmt: skip
        if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
            return "does not speak TLS on that port; use http://, or check the port"
        if "CERTIFICATE_VERIFY_FAILED" in text or "verify failed" in text:
            return ("presented a TLS certificate that is not trusted (certificate verify "
                    "failed: unknown or self-signed CA); set elasticsearch.ca_certs to the CA "
                    "file, or elasticsearch.ssl_assert_fingerprint")  # fmt: skip
        return f"TLS failed ({redact(repr(exc))[:200]})"
    if "refused" in text.lower():
        return "refused the connection (nothing listens there); is Elasticsearch running?"
    if any(s in text for s in ("Name or service not known", "nodename nor servname",
                               "Temporary failure in name resolution", "getaddrinfo")):  # fmt: skip
        return "cannot be resolved (unknown host name); check elasticsearch.hosts"
    return f"cannot be reached ({redact(repr(exc))[:200]})"


def describe_es_error(exc: Exception, hosts: Sequence[str] = ()) -> str:
    """One line: where (masked), what happened and what to do."""
    where = _where(exc, hosts)
    if isinstance(exc, ApiError):
        what = _api_error(exc)
    elif isinstance(exc, TransportError):
        what = _transport_error(exc)
    else:
        what = f"failed: {type(exc).__name__}: {redact(str(exc))[:200]}"
    return f"Elasticsearch at {where} {what}"
