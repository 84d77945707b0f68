"""`import_saved_objects` against a local HTTP server that answers like Kibana's import API.

The server behaves as Kibana 8.x/9.x documents and does: it insists on `kbn-xsrf`,
on a multipart body with a `file` part whose name ends in `.ndjson`, skips the export
summary line, answers `missing_references` for references that resolve neither in
the upload nor in what it already holds, and answers 401 without credentials when
asked to. Every test also checks what the importer actually sent.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from kibana import NDJSON_PATH
from kibana.importer import KibanaImportError, auth_from_env, import_saved_objects

SHIPPED = 12  # objects in kibana/brandpulse.ndjson (tests/kibana/test_saved_objects.py)

ICONS = {
    "index-pattern": "indexPatternApp",
    "search": "discoverApp",
    "lens": "lensApp",
    "dashboard": "dashboardApp",
}


class FakeKibana:
    """State shared with the handler: what was received, and how to answer."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.require_auth: str | None = None  # expected Authorization header value
        self.existing: set[tuple[str, str]] = set()  # (type, id) already in Kibana

    def answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict]:
        parts = urlsplit(path)
        record: dict[str, Any] = {
            "method": method,
            "path": parts.path,
            "query": parse_qs(parts.query),
            "headers": headers,
            "body": body,
        }
        self.requests.append(record)
        if self.require_auth and headers.get("authorization") != self.require_auth:
            return 401, {
                "statusCode": 401,
                "error": "Unauthorized",
                "message": "[security_exception]: missing authentication credentials",
            }
        if method != "POST" or not parts.path.endswith("/api/saved_objects/_import"):
            return 404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"}
        if headers.get("kbn-xsrf") is None:
            return 400, {
                "statusCode": 400,
                "error": "Bad Request",
                "message": "Request must contain a kbn-xsrf header.",
            }
        content_type = headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return 415, {
                "statusCode": 415,
                "error": "Unsupported Media Type",
                "message": "Unsupported Media Type",
            }
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        files = [
            p
            for p in message.iter_parts()
            if p.get_param("name", header="content-disposition") == "file"
        ]
        if len(files) != 1:
            return 400, {
                "statusCode": 400,
                "error": "Bad Request",
                "message": "[request body.file]: expected value of type [Stream]",
            }
        filename = files[0].get_filename() or ""
        if not filename.endswith(".ndjson"):
            ext = filename[filename.rfind(".") :] if "." in filename else ""
            return 400, {
                "statusCode": 400,
                "error": "Bad Request",
                "message": f"Invalid file extension {ext}",
            }
        content = files[0].get_payload(decode=True)
        record["file"] = {"filename": filename, "content": content}

        objects = [json.loads(line) for line in content.decode().splitlines() if line.strip()]
        objects = [o for o in objects if "exportedCount" not in o]  # the export summary line
        known = self.existing | {(o["type"], o["id"]) for o in objects}
        results, errors = [], []
        for obj in objects:
            meta = {"title": obj["attributes"].get("title"), "icon": ICONS.get(obj["type"], "")}
            missing = [
                {"type": r["type"], "id": r["id"]}
                for r in obj.get("references", [])
                if (r["type"], r["id"]) not in known
            ]
            if missing:
                errors.append(
                    {
                        "id": obj["id"],
                        "type": obj["type"],
                        "title": meta["title"],
                        "meta": meta,
                        "error": {"type": "missing_references", "references": missing},
                    }
                )
            else:
                result = {"type": obj["type"], "id": obj["id"], "meta": meta}
                if (obj["type"], obj["id"]) in self.existing:
                    result["overwrite"] = True
                results.append(result)
        response: dict[str, Any] = {
            "successCount": len(results),
            "success": not errors,
            "warnings": [],
            "successResults": results,
        }
        if errors:
            response["errors"] = errors
        return 200, response


@pytest.fixture
def kibana() -> Iterator[tuple[str, FakeKibana]]:
    state = FakeKibana()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = state.answer(self.command, self.path, headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def test_imports_the_shipped_file_with_overwrite_xsrf_and_multipart_file(kibana):
    url, state = kibana
    result = import_saved_objects(url, NDJSON_PATH)

    (request,) = state.requests
    assert request["method"] == "POST"
    assert request["path"] == "/api/saved_objects/_import"
    assert request["query"] == {"overwrite": ["true"]}
    assert request["headers"]["kbn-xsrf"] == "true"
    assert "authorization" not in request["headers"]
    assert request["file"]["filename"] == "brandpulse.ndjson"
    assert request["file"]["content"] == NDJSON_PATH.read_bytes()

    objects = [json.loads(line) for line in NDJSON_PATH.read_text().splitlines()][:-1]
    assert result.success_count == len(objects) == SHIPPED
    assert [(o.type, o.id) for o in result.imported] == [(o["type"], o["id"]) for o in objects]
    assert ("dashboard", "brandpulse-dashboard") in {(o.type, o.id) for o in result.imported}
    assert "BrandPulse — brand sentiment" in result.summary()
    assert str(result) == result.summary()


def test_space_goes_into_the_path(kibana):
    url, state = kibana
    import_saved_objects(url + "/", NDJSON_PATH, space="marketing")
    assert state.requests[0]["path"] == "/s/marketing/api/saved_objects/_import"


def test_default_space_uses_the_plain_path(kibana):
    url, state = kibana
    import_saved_objects(url, NDJSON_PATH, space="default")
    assert state.requests[0]["path"] == "/api/saved_objects/_import"


def test_basic_auth_is_sent(kibana):
    url, state = kibana
    expected = "Basic " + base64.b64encode(b"elastic:s3cret").decode()
    state.require_auth = expected
    result = import_saved_objects(url, NDJSON_PATH, auth=("elastic", "s3cret"))
    assert result.success_count == SHIPPED
    assert state.requests[0]["headers"]["authorization"] == expected


def test_api_key_auth_is_sent(kibana):
    url, state = kibana
    state.require_auth = "ApiKey a2V5OnNlY3JldA=="
    import_saved_objects(url, NDJSON_PATH, auth="a2V5OnNlY3JldA==")
    assert state.requests[0]["headers"]["authorization"] == "ApiKey a2V5OnNlY3JldA=="


def test_http_error_is_reported_with_kibanas_message(kibana):
    url, state = kibana
    state.require_auth = "Basic something-else"
    with pytest.raises(KibanaImportError) as caught:
        import_saved_objects(url, NDJSON_PATH)
    assert caught.value.status == 401
    assert "HTTP 401" in str(caught.value)
    assert "missing authentication credentials" in str(caught.value)


def test_rejected_objects_are_listed(kibana, tmp_path: Path):
    url, _state = kibana
    lens = {
        "type": "lens",
        "id": "orphan-chart",
        "attributes": {"title": "Orphan chart"},
        "references": [
            {
                "type": "index-pattern",
                "id": "no-such-view",
                "name": "indexpattern-datasource-layer-l1",
            }
        ],
    }
    view = {
        "type": "index-pattern",
        "id": "ok-view",
        "attributes": {"title": "ok-*"},
        "references": [],
    }
    path = tmp_path / "objects.ndjson"
    path.write_text("\n".join(json.dumps(o) for o in (view, lens)) + "\n")

    with pytest.raises(KibanaImportError) as caught:
        import_saved_objects(url, path)
    message = str(caught.value)
    assert "imported 1 objects and rejected 1" in message
    assert (
        "lens orphan-chart (Orphan chart): missing references: index-pattern no-such-view"
        in message
    )
    assert caught.value.body["success"] is False


def test_a_file_not_named_ndjson_is_uploaded_under_an_ndjson_name(kibana, tmp_path: Path):
    url, state = kibana
    path = tmp_path / "export.json"
    path.write_bytes(NDJSON_PATH.read_bytes())
    assert import_saved_objects(url, path).success_count == SHIPPED
    assert state.requests[0]["file"]["filename"] == "export.ndjson"


def test_overwrite_of_existing_objects_succeeds(kibana):
    url, state = kibana
    state.existing = {("index-pattern", "brandpulse-mentions")}
    result = import_saved_objects(url, NDJSON_PATH)
    assert result.success_count == SHIPPED


def test_unreachable_kibana_is_a_clear_error(tmp_path: Path, closed_port: int):
    with pytest.raises(KibanaImportError, match="cannot reach Kibana"):
        import_saved_objects(f"http://127.0.0.1:{closed_port}", NDJSON_PATH, timeout=5)


def test_auth_from_env():
    assert auth_from_env({}) is None
    assert auth_from_env({"KIBANA_USERNAME": "u", "KIBANA_PASSWORD": "p"}) == ("u", "p")
    assert auth_from_env({"KIBANA_API_KEY": "k", "KIBANA_USERNAME": "u"}) == "k"


# --- TLS: a real TLS terminator in front of the fake Kibana (tests/security/tls_proxy.py)


@pytest.fixture
def tls_kibana(kibana, tmp_path: Path):
    from tests.security.tls_proxy import TcpProxy, make_certificates

    url, state = kibana
    cert = make_certificates(tmp_path / "certs", "kibana")
    with TcpProxy(url.split("//", 1)[1], tls=cert) as proxy:
        yield proxy, state, cert


def test_imports_over_tls_with_ca_certs_and_with_a_pinned_fingerprint(tls_kibana):
    proxy, state, cert = tls_kibana
    result = import_saved_objects(proxy.url, NDJSON_PATH, auth="a2V5OnNlY3JldA==", ca_certs=cert.ca_file)
    assert result.success_count == SHIPPED
    assert state.requests[-1]["headers"]["authorization"] == "ApiKey a2V5OnNlY3JldA=="
    result = import_saved_objects(proxy.url, NDJSON_PATH, ssl_assert_fingerprint=cert.fingerprint)
    assert result.success_count == SHIPPED and len(state.requests) == 2


def test_an_untrusted_kibana_certificate_is_refused_clearly(tls_kibana, tmp_path: Path):
    from tests.security.tls_proxy import make_certificates

    proxy, state, _ = tls_kibana
    with pytest.raises(KibanaImportError, match=r"not trusted .*kibana\.ca_certs"):
        import_saved_objects(proxy.url, NDJSON_PATH)
    stranger = make_certificates(tmp_path / "other", "stranger")
    with pytest.raises(KibanaImportError, match=r"not kibana\.ssl_assert_fingerprint"):
        import_saved_objects(proxy.url, NDJSON_PATH, ssl_assert_fingerprint=stranger.fingerprint)
    assert state.requests == []
    # a URL's credentials never appear in a message
    with pytest.raises(KibanaImportError) as err:
        import_saved_objects(proxy.url.replace("https://", "https://elastic:pw@"), NDJSON_PATH)
    assert "pw@" not in str(err.value) and "https://***@127.0.0.1" in str(err.value)
