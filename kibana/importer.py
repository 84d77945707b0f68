"""Import BrandPulse saved objects into Kibana through its saved objects import API.

`import_saved_objects()` sends `POST /api/saved_objects/_import?overwrite=true` with the
`kbn-xsrf` header and the NDJSON as the multipart field `file`, then turns Kibana's
answer into an `ImportResult` or a `KibanaImportError` that names every object Kibana
rejected and why. `python scheduler.py setup --kibana` calls it; it also runs alone:

    python -m kibana.importer http://localhost:5601 [--space SPACE]

with credentials from KIBANA_USERNAME/KIBANA_PASSWORD or KIBANA_API_KEY.

Only the standard library is used: the importer runs in the setup container and in
CI, where pulling in an HTTP client for one request is not worth a dependency.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote
from urllib.request import Request, urlopen

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


def import_saved_objects(
    kibana_url: str,
    ndjson_path: str | Path = NDJSON_PATH,
    *,
    auth: Auth | None = None,
    space: str | None = None,
    timeout: float = 60.0,
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
    try:
        with urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except HTTPError as exc:
        raw = exc.read()
        try:
            payload: Any = json.loads(raw)
            message = payload.get("message") or payload.get("error") or raw.decode()
        except (ValueError, AttributeError):
            payload, message = raw.decode(errors="replace"), raw.decode(errors="replace")
        raise KibanaImportError(
            f"Kibana refused the import at {url}: HTTP {exc.code}: {message}",
            status=exc.code,
            body=payload,
        ) from exc
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise KibanaImportError(f"cannot reach Kibana at {url}: {reason}") from exc

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
