"""`scheduler.py report` against the real node: the figures it prints are the index's."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from elasticsearch import Elasticsearch

from brandpulse.config import ElasticsearchConfig
from brandpulse.mention import BrandSentiment, Mention, Sentiment
from daemon.cli import main
from store.setup import install_templates
from store.writer import BulkWriter

START = datetime(2026, 11, 9, tzinfo=UTC)


def _mention(sid: str, when: datetime, brand: str, label: str, text: str) -> Mention:
    probs = {"negative": 0.05, "neutral": 0.05, "positive": 0.05}
    probs[label] = 0.9
    verdict = {"label": label, "confidence": 0.9, **probs}
    return Mention(source="reddit", source_id=sid, source_name="reddit", text=text,
                   language="en", created_at=when, collected_at=when, brands=[brand],
                   author=f"u{sid}", author_reach=int(sid[1:]) * 10,
                   sentiment=Sentiment(model="m", **verdict),
                   brand_sentiments=[BrandSentiment(brand=brand, source="post", **verdict)])


COMPLAINTS = [
    "Acme battery drains overnight, the battery life is half what it was",
    "my Acme battery died after the update, battery drains in two hours",
    "Acme battery swelling again, replacement battery still not shipped",
    "Acme support never answered my ticket, support chat closed after an hour",
    "waited on hold with Acme support for three hours, support hung up",
    "Acme support agent closed my ticket without reading it, useless support",
]


@pytest.fixture(scope="module")
def config_file(es_node, es_client: Elasticsearch, es_cfg_module: ElasticsearchConfig,
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    install_templates(es_client, es_cfg_module)
    mentions = [
        _mention(f"a{i}", START + timedelta(hours=i), "Acme", "negative", COMPLAINTS[i % 6])
        for i in range(30)
    ] + [_mention(f"g{i}", START + timedelta(hours=i), "Globex", "positive", "Globex is fine")
         for i in range(10)] + [
        _mention(f"p{i}", START - timedelta(days=1, hours=i), "Acme", "positive", "Acme rocks")
        for i in range(1, 11)
    ]  # fmt: skip
    with BulkWriter(es_client, es_cfg_module, refresh=True) as writer:
        assert writer.write(mentions).ok
    path = tmp_path_factory.mktemp("cfg") / "config.yaml"
    path.write_text(yaml.safe_dump({
        "brands": [{"name": "Acme"}, {"name": "Globex", "own": False}],
        "elasticsearch": {"hosts": [es_node.url], "index_prefix": es_cfg_module.index_prefix,
                          "spool_dir": str(path.parent / "spool")},
    }), encoding="utf-8")  # fmt: skip
    return path


def test_report_json(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["report", "--config", str(config_file), "--period", "week",
                 "--to", "2026-11-16", "--format", "json"])
    assert code == 0
    (report,) = json.loads(capsys.readouterr().out)["reports"]
    assert report["brand"] == "Acme"
    sov = report["share_of_voice"]
    assert sov["period"] == {"start": "2026-11-09T00:00:00Z", "end": "2026-11-16T00:00:00Z",
                             "previous_start": "2026-11-02T00:00:00Z"}
    acme, globex = sov["brands"]
    assert (acme["brand"], globex["brand"]) == ("Acme", "Globex")
    assert acme["counts"]["mentions"] == 30 and acme["counts"]["negative"] == 30
    assert acme["share_of_voice"] == pytest.approx(0.75)
    assert acme["previous"]["positive"] == 10 and acme["previous_share_of_voice"] == 1.0
    assert acme["counts"]["net_sentiment"] == -1.0
    assert acme["mentions_change"] == pytest.approx(2.0)
    assert len(acme["trend"]) == 7 and acme["trend"][0]["counts"]["mentions"] == 24
    themes = report["themes"]
    assert themes["total"] == 30 and themes["previous_total"] == 0
    labels = [t["label"] for t in themes["themes"]]
    assert any("battery" in label for label in labels), labels
    assert any("support" in label for label in labels), labels
    assert all(t["previous_size"] == 0 and t["change"] is None for t in themes["themes"])
    assert all(t["examples"] and "Acme" in t["examples"][0]["text"]
               for t in themes["themes"])


def test_report_text(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["report", "--config", str(config_file), "--from", "2026-11-09",
                 "--to", "2026-11-10", "--brand", "Acme"])
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("Acme: 2026-11-09 00:00 → 2026-11-10 00:00 UTC")
    assert "Trend (hourly, Acme)" in out and "Complaint themes (24 negative mentions" in out
    print(out)


def test_report_unknown_brand(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # --out is tested in test_report_files.py
    assert main(["report", "--config", str(config_file), "--brand", "Nope"]) == 2
