"""Secrets that stay secret: one place that knows how to reveal, mask and redact them.

- Secret config fields are pydantic `SecretStr` (`brandpulse.config.OptionalSecret`):
  their repr and `str()` print `**********`. `reveal()` is the one way product code
  reads the text, and treats a blank value (an unset `${VAR:-}`) as "not configured".
- `mask_url()` hides what a URL may carry besides its address: the userinfo
  (`https://user:pass@host` -> `https://***@host`), credential query parameters
  (`key=`, `access_token=`, `token=`, `client_secret=`, `sig=`, ... -> `key=***`) and
  the secret path of an incoming webhook (Slack, Teams, Feishu/Lark). Every URL BrandPulse prints (config
  errors, log lines, CLI messages) goes through it.
- `redact()` applies `mask_url()` to every URL inside a free text (an exception
  message, a log line), plus any known secret value given to it.

Masking keeps the scheme, host, port and path, so a message still says *where*
something failed, which is what a person needs to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

MASK = "***"

# Query parameters that carry credentials in the APIs BrandPulse talks to (Stack
# Exchange `key`, OAuth `access_token`/`client_secret`, YouTube/Google `key`, signed
# URLs' `sig`/`signature`) and the generic spellings people use.
SECRET_PARAMS = frozenset(
    {
        "key",
        "api_key",
        "apikey",
        "access_token",
        "refresh_token",
        "id_token",
        "token",
        "auth",
        "client_secret",
        "password",
        "passwd",
        "secret",
        "sig",
        "signature",
        "x-amz-signature",
        "x-goog-signature",
    }
)

# Hosts whose URL path itself is the credential (incoming webhooks: Slack, Teams
# connectors, Feishu/Lark custom bots).
_SECRET_PATH_HOSTS = ("hooks.slack.com", "webhook.office.com", "open.feishu.cn", "open.larksuite.com")

# A URL inside free text: scheme://, then anything up to whitespace or a quote/bracket.
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()\[\]{}]+")
_PARAM = re.compile(r"(^|[?&;])([^=&;#]+)=([^&;#]*)")


def reveal(value: SecretStr | str | None) -> str | None:
    """The secret's text, or None when unset or blank (an unset `${VAR:-}`)."""
    if value is None:
        return None
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    return text.strip() or None


def _mask_query(query: str) -> str:
    def repl(match: re.Match[str]) -> str:
        sep, name, value = match.groups()
        if name.strip().lower() in SECRET_PARAMS and value:
            return f"{sep}{name}={MASK}"
        return match.group(0)

    return _PARAM.sub(repl, query)


def mask_url(url: str) -> str:
    """`url` with its credentials replaced by `***`; anything unparsable is returned
    with credential-looking parts masked as far as they can be found."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
        path = parts.path
        host = (parts.hostname or "").lower()
        if any(host == h or host.endswith("." + h) for h in _SECRET_PATH_HOSTS) and path.count("/") > 2:
            # /services/T000/B000/XXXX: keep the first segment, hide the rest
            path = "/".join(path.split("/")[:2]) + "/" + MASK
        query = _mask_query(parts.query)
        fragment = _mask_query(parts.fragment)  # OAuth implicit flow puts tokens here
        return urlunsplit((parts.scheme, netloc, path, query, fragment))
    except ValueError:
        # urlsplit refuses e.g. an invalid IPv6 netloc: mask by pattern instead
        text = re.sub(r"(://)[^/@\s]*@", rf"\1{MASK}@", url)
        head, sep, query = text.partition("?")
        return head + sep + _mask_query(query)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every URL in it masked and every given secret value replaced."""
    out = _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
    # longest first, so a secret that contains another is replaced whole
    for value in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        out = out.replace(value, MASK)
    return out


def secret_values(obj: object) -> set[str]:
    """The text of every `SecretStr` inside `obj` (a config model, a list, a dict),
    for `redact(text, secrets=...)` where a message may echo one outside a URL."""
    from pydantic import BaseModel

    if isinstance(obj, SecretStr):
        text = reveal(obj)
        return {text} if text else set()
    if isinstance(obj, BaseModel):
        return set().union(set(), *(secret_values(getattr(obj, name)) for name in type(obj).model_fields))
    if isinstance(obj, list | tuple | set | frozenset):
        return set().union(set(), *(secret_values(item) for item in obj))
    if isinstance(obj, dict):
        return set().union(set(), *(secret_values(value) for value in obj.values()))
    return set()
