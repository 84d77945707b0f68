"""docs/configuration.md is generated from the schema and must be current."""

from __future__ import annotations

from pathlib import Path

from brandpulse.reference import render

REPO = Path(__file__).resolve().parents[2]


def test_configuration_reference_is_current():
    committed = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == render(), (
        "docs/configuration.md is stale: run `python -m brandpulse.reference > docs/configuration.md`"
    )


def test_reference_lists_every_section_and_source_type():
    text = render()
    for section in ("BrandConfig", "RedditSource", "HtmlSelectors", "NlpConfig", "SlackConfig",
                    "AlertsConfig", "SpikeSettings", "DaemonConfig"):  # fmt: skip
        assert f"## {section}" in text
    assert "| `brands` |" in text and "**required**" in text
