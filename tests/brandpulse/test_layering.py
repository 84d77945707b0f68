"""The core (`brandpulse/`) sits below every other package and imports none of them.

`alerts/`, `daemon/`, `store/`, `crawlers/` and `nlp/` all build on the configuration
and the `Mention`; an import the other way round would make the core depend on what
depends on it (a cycle waiting to happen, and a config that cannot load without the
alert engine). The check parses every module's imports, including lazy ones inside
functions and `TYPE_CHECKING` blocks.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "brandpulse"
UPPER = ("alerts", "daemon", "store", "crawlers", "nlp")


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_the_core_imports_no_upper_package():
    modules = sorted(CORE.rglob("*.py"))
    assert modules, f"no modules found under {CORE}"
    offending = [
        f"{path.relative_to(CORE.parent)}:{line}: import {name}"
        for path in modules
        for line, name in _imported(ast.parse(path.read_text(encoding="utf-8")))
        if name.split(".")[0] in UPPER
    ]
    assert offending == [], "the core imports upward:\n" + "\n".join(offending)


def test_the_check_sees_an_upward_import():
    # The parser must catch a lazy import inside a function, or the test above proves nothing.
    tree = ast.parse(
        "def f():\n    from alerts.engine import AlertEngine\n    import store.queries\n"
    )
    assert [name for _, name in _imported(tree)] == ["alerts.engine", "store.queries"]
