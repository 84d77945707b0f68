"""Print the configuration reference (Markdown) from the schema itself.

    python -m brandpulse.reference > docs/configuration.md

Generated, so the reference cannot drift from what `load_config` accepts; a test
checks that the committed file is current.
"""

from __future__ import annotations

import types
import typing
from datetime import timedelta
from typing import Any, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from brandpulse.config import Config, SourceBase

HEADER = """# Configuration reference

Generated from the schema in `brandpulse/config.py` by
`python -m brandpulse.reference > docs/configuration.md`; do not edit by hand.
The commented example is `config.yaml`. Durations are written `30s`, `5m`, `1h`,
`7d`. `${NAME}` in any value is replaced by the environment variable `NAME`
(`${NAME:-fallback}` gives a fallback); secrets belong there, not in the file.
Validate a file with `python scheduler.py validate --config FILE`.
"""


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if annotation is timedelta:
        return "duration"
    if annotation is SecretStr:
        return "secret"
    if origin is typing.Annotated:
        return _type_name(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in get_args(annotation) if a is not type(None)]
        optional = type(None) in get_args(annotation)
        return " or ".join(names) + (" (optional)" if optional else "")
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in get_args(annotation))
    if origin in (list, tuple):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        k, v = get_args(annotation)
        return f"mapping {_type_name(k)} → {_type_name(v)}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return getattr(annotation, "__name__", str(annotation))


def _default(info: FieldInfo) -> str:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "**required**"
    value = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        return "(section defaults)"
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds and seconds % size == 0:
                return f"`{seconds // size}{unit}`"
        return f"`{seconds}s`"
    return f"`{value!r}`" if value not in (None, [], {}) else (f"`{value!r}`" if value is not None else "—")


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []

    def visit(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.append(model)
        for info in model.model_fields.values():
            for candidate in _nested(info.annotation):
                visit(candidate)

    visit(root)
    return seen


def _nested(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        out += _nested(arg)
    return out


def render() -> str:
    lines = [HEADER]
    for model in _models(Config):
        lines.append(f"## {model.__name__}\n")
        doc = (model.__doc__ or "").strip().splitlines()
        if doc and model is not Config and not doc[0].startswith("Base for"):
            lines.append(doc[0] + "\n")
        if issubclass(model, SourceBase) and model is not SourceBase:
            lines.append("Also every field common to sources (name, enabled, schedule, brands, "
                         "base_url, max_pages, concurrency, requests_per_minute, timeout, lookback).\n")  # fmt: skip
        lines.append("| field | type | default | meaning |\n|---|---|---|---|")
        for name, info in model.model_fields.items():
            if issubclass(model, SourceBase) and model is not SourceBase and name in SourceBase.model_fields:
                continue
            desc = (info.description or "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{info.alias or name}` | {_type_name(info.annotation)} | {_default(info)} | {desc} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
