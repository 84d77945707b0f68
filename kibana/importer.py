"""Import BrandPulse saved objects into Kibana through its saved objects import API.

`import_saved_objects()` sends `POST /api/saved_objects/_import?overwrite=true` with the
`kbn-xsrf` header and the NDJSON as the multipart field `file`, then turns Kibana's
answer into an `ImportResult` or a `KibanaImportError` that names every object Kibana
rejected and why. `python scheduler.py setup --kibana` calls it; it also runs alone:

    python -m kibana.importer http://localhost:5601 [--space SPACE]

with credentials from KIBANA_USERNAME/KIBANA_PASSWORD or KIBANA_API_KEY.

TLS: `ca_certs` (a PEM CA file) is trusted besides the system store;
`ssl_assert_fingerprint` trusts exactly the certificate with that SHA-256
fingerprint (chain and host name are then not checked, as with Elasticsearch's
client); `verify_certs=False` checks nothing. URLs in messages have their
credentials masked.

Only the standard library is used: the importer runs in the setup container and in
CI, where pulling in an HTTP client for one request is not worth a dependency.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import ssl
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote
from urllib.request import HTTPSHandler, Request, build_opener

from brandpulse.secrets import mask_url
from kibana import NDJSON_PATH

IMPORT_PATH = "/api/saved_objects/_import"

# (username, password) for basic auth, or an API key string ("id:key" encoded as
# Kibana shows it, i.e. the base64 value that goes after "ApiKey ").
Auth = tuple[str, str] | str


class KibanaImportError(RuntimeError):
    """Kibana answered, but not every object was imported (or the request failed)."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class ImportedObject:
    type: str
    id: str
    title: str | None


@dataclass(frozen=True)
class ImportResult:
    success_count: int
    imported: list[ImportedObject] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"Kibana imported {self.success_count} saved objects:"]
        lines += [
            f"  {o.type} {o.id}" + (f" ({o.title})" if o.title else "") for o in self.imported
        ]
        lines += [f"  warning: {w.get('message', w)}" for w in self.warnings]
        return "\n".join(lines)

    # Callers print the result as is (`print(f"kibana: {result}")`); make that readable.
    def __str__(self) -> str:
        return self.summary()


def _describe_error(error: dict[str, Any]) -> str:
    """One line per rejected object, in the words of Kibana's error types."""
    obj = f"{error.get('type')} {error.get('id')}"
    title = error.get("title") or (error.get("meta") or {}).get("title")
    if title:
        obj += f" ({title})"
    detail = error.get("error") or {}
    kind = detail.get("type", "unknown")
    if kind == "missing_references":
        refs = ", ".join(f"{r.get('type')} {r.get('id')}" for r in detail.get("references", []))
        return f"{obj}: missing references: {refs}"
    if kind in ("conflict", "ambiguous_conflict"):
        return f"{obj}: {kind} with an existing object (the import was not run with overwrite?)"
    if kind == "unsupported_type":
        return f"{obj}: unsupported type (this Kibana does not know the saved object type)"
    message = detail.get("message") or detail.get("error") or json.dumps(detail)
    return f"{obj}: {kind}: {message}"


def _multipart(filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = f"brandpulse-{uuid.uuid4().hex}"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/ndjson\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + content + tail, f"multipart/form-data; boundary={boundary}"


def _auth_header(auth: Auth) -> str:
    if isinstance(auth, tuple):
        user, password = auth
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return f"Basic {token}"
    return f"ApiKey {auth}"


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection that accepts exactly the certificate with `fingerprint`."""

    fingerprint = ""

    def connect(self) -> None:
        super().connect()
        der = self.sock.getpeercert(binary_form=True) or b""  # type: ignore[union-attr]
        if hashlib.sha256(der).hexdigest() != self.fingerprint:
            self.sock.close()
            raise ssl.SSLError(
                "the server certificate's SHA-256 fingerprint is not kibana.ssl_assert_fingerprint"
            )


class _PinnedHTTPSHandler(HTTPSHandler):
    def __init__(self, context: ssl.SSLContext, fingerprint: str) -> None:
        super().__init__(context=context)
        self._connection = type("Pinned", (_PinnedHTTPSConnection,), {"fingerprint": fingerprint})

    def https_open(self, req: Request) -> Any:
        return self.do_open(self._connection, req, context=self._context)  # type: ignore[attr-defined]


def _opener(ca_certs: str | Path | None, ssl_assert_fingerprint: str | None, verify_certs: bool) -> Any:
    context = ssl.create_default_context()
    if ca_certs is not None:
        context.load_verify_locations(cafile=str(ca_certs))
    if ssl_assert_fingerprint or not verify_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if ssl_assert_fingerprint:
        digits = ssl_assert_fingerprint.replace(":", "").strip().lower()
        return build_opener(_PinnedHTTPSHandler(context, digits))
    return build_opener(HTTPSHandler(context=context))


def _unreachable(reason: Any) -> str:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return (f"its TLS certificate is not trusted ({reason.verify_message}); set "
                "kibana.ca_certs to the CA file, or kibana.ssl_assert_fingerprint")  # fmt: skip
    return str(reason)


def import_saved_objects(
    kibana_url: str,
    ndjson_path: str | Path = NDJSON_PATH,
    *,
    auth: Auth | None = None,
    space: str | None = None,
    timeout: float = 60.0,
    ca_certs: str | Path | None = None,
    ssl_assert_fingerprint: str | None = None,
    verify_certs: bool = True,
) -> ImportResult:
    """Import (overwriting) the saved objects in `ndjson_path` into Kibana.

    Raises `KibanaImportError` when Kibana cannot be reached, answers with an HTTP
    error, or reports `success: false`; the message lists each rejected object.
    """
    path = Path(ndjson_path)
    # Kibana rejects uploads whose file name does not end in .ndjson, whatever the content.
    filename = path.name if path.suffix == ".ndjson" else f"{path.stem}.ndjson"
    body, content_type = _multipart(filename, path.read_bytes())

    base = kibana_url.rstrip("/")
    space_prefix = f"/s/{quote(space, safe='')}" if space and space != "default" else ""
    url = f"{base}{space_prefix}{IMPORT_PATH}?overwrite=true"
    headers = {"kbn-xsrf": "true", "Content-Type": content_type, "Accept": "application/json"}
    if auth is not None:
        headers["Authorization"] = _auth_header(auth)

    request = Request(url, data=body, headers=headers, method="POST")
    opener = _opener(ca_certs, ssl_assert_fingerprint, verify_certs)
    shown = mask_url(url)
    try:
        with opener.open(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except HTTPError as exc:
        raw = exc.read()
        try:
            payload: Any = json.loads(raw)
            message = payload.get("message") or payload.get("error") or raw.decode()
        except (ValueError, AttributeError):
            payload, message = raw.decode(errors="replace"), raw.decode(errors="replace")
        raise KibanaImportError(
            f"Kibana refused the import at {shown}: HTTP {exc.code}: {message}",
            status=exc.code,
            body=payload,
        ) from exc
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise KibanaImportError(f"cannot reach Kibana at {shown}: {_unreachable(reason)}") from exc

    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise KibanaImportError(
            f"Kibana answered HTTP {status} with a body that is not JSON: {raw[:200]!r}",
            status=status,
            body=raw,
        ) from exc

    errors = payload.get("errors") or []
    if payload.get("success") is not True or errors:
        lines = [_describe_error(e) for e in errors] or ["(Kibana gave no error details)"]
        raise KibanaImportError(
            f"Kibana imported {payload.get('successCount', 0)} objects and rejected "
            f"{len(errors)}:\n  " + "\n  ".join(lines),
            status=status,
            body=payload,
        )

    imported = [
        ImportedObject(
            type=r.get("type", ""), id=r.get("id", ""), title=(r.get("meta") or {}).get("title")
        )
        for r in payload.get("successResults") or []
    ]
    return ImportResult(
        success_count=int(payload.get("successCount", len(imported))),
        imported=imported,
        warnings=list(payload.get("warnings") or []),
    )


def auth_from_env(environ: dict[str, str] | None = None) -> Auth | None:
    """Credentials from KIBANA_API_KEY, else KIBANA_USERNAME + KIBANA_PASSWORD, else none."""
    env = os.environ if environ is None else environ
    if env.get("KIBANA_API_KEY"):
        return env["KIBANA_API_KEY"]
    if env.get("KIBANA_USERNAME"):
        return (env["KIBANA_USERNAME"], env.get("KIBANA_PASSWORD", ""))
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Import BrandPulse saved objects into Kibana.")
    parser.add_argument("kibana_url", help="e.g. http://localhost:5601")
    parser.add_argument("--ndjson", type=Path, default=NDJSON_PATH)
    parser.add_argument("--space", default=None, help="Kibana space id (default space if unset)")
    args = parser.parse_args(argv)
    try:
        result = import_saved_objects(
            args.kibana_url, args.ndjson, auth=auth_from_env(), space=args.space
        )
    except KibanaImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
