"""The report's core renders and computes; only `reports.slack_message` knows a channel.

`full`, `render`, `charts`, `summary`, ... import neither slack-sdk nor the notifiers
(lazy imports and TYPE_CHECKING blocks included), so a report can be built and written
where Slack is not configured, and a new channel is a module beside `slack_message`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.brandpulse.test_layering import _imported

REPORTS = Path(__file__).resolve().parents[2] / "reports"
CHANNELS = ("slack_sdk", "alerts.notifiers", "sandbox", "reports.slack_message")


def test_the_report_core_imports_no_channel():
    modules = sorted(p for p in REPORTS.glob("*.py") if p.name != "slack_message.py")
    assert len(modules) >= 8, modules
    offending = [
        f"{path.name}:{line}: import {name}"
        for path in modules
        for line, name in _imported(ast.parse(path.read_text(encoding="utf-8")))
        if any(name == c or name.startswith(c + ".") for c in CHANNELS)
    ]
    assert offending == [], "the report core imports a channel:\n" + "\n".join(offending)
