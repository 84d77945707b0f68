"""`scheduler.py validate` and `check-alerts --dry-run`: the low-volume report per brand.

Against a real Elasticsearch node (the session's), with a config file on disk, the
way a team runs them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from elasticsearch import Elasticsearch

from brandpulse.config import load_config
from brandpulse.mention import Mention, Sentiment
from daemon.cli import ASSUMED_PER_DAY, main
from store.setup import setup_elasticsearch
from store.writer import BulkWriter

NOW = datetime(2026, 11, 20, 12, 3, tzinfo=UTC)


def _mention(brand: str, at: datetime, key: str) -> Mention:
    return Mention(
        source="reddit",
        source_id=f"{brand}-{key}",
        source_name="reddit",
        url=f"https://www.reddit.com/r/{brand.lower()}/comments/{key}",
        author=f"user-{key}",
        title=f"{brand} post {key}",
        text=f"What I think about {brand}.",
        created_at=at,
        brands=[brand],
        sentiment=Sentiment(label="negative", negative=0.9, neutral=0.07, positive=0.03, model="t"),  # type: ignore[arg-type]
    )


@pytest.fixture
def config_path(es_node, es_client: Elasticsearch, tmp_path: Path) -> Iterator[Path]:
    """Busy (about 120 negatives an hour) and Quiet (one every 5 hours), four days of each."""
    prefix = f"cli{uuid.uuid4().hex[:8]}"
    data = {
        "brands": [{"name": "Busy"}, {"name": "Quiet"}],
        "elasticsearch": {"hosts": [es_node.url], "index_prefix": prefix},
        "alerts": {"history": "4d", "query_delay": "2m"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_config(path, env={})
    start = NOW - timedelta(days=4)
    mentions = [
        _mention("Busy", start + k * timedelta(seconds=30), f"b{k}") for k in range(4 * 24 * 120)
    ]
    mentions += [_mention("Quiet", start + timedelta(hours=5 * k), f"q{k}") for k in range(19)]
    setup_elasticsearch(es_client, config.elasticsearch, now=NOW)
    with BulkWriter(
        es_client, config.elasticsearch, spool_dir=tmp_path / "spool", refresh=True
    ) as writer:
        assert writer.write(mentions).ok
    yield path
    for existing in es_client.indices.get(index=f"{prefix}-*", allow_no_indices=True):
        es_client.indices.delete(index=existing)


def test_validate_states_the_smallest_visible_wave_at_assumed_volumes(tmp_path, capsys) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"brands": [{"name": "Acme"}]}), encoding="utf-8")
    assert main(["validate", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "smallest visible negative wave, at assumed volumes" in out
    lines = [line.strip() for line in out.splitlines() if line.strip().startswith("at ")]
    assert len(lines) == len(ASSUMED_PER_DAY)
    # The quietest assumed brand cannot show a 3x rise; the busiest one pages on it.
    assert "statistically invisible; smallest visible:" in lines[0]
    assert "a wave of 3x over 2 h pages within ~" in lines[-1]


def test_validate_names_the_shared_state_only_when_redis_is_configured(tmp_path, capsys) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"brands": [{"name": "Acme"}]}), encoding="utf-8")
    assert main(["validate", "-c", str(path)]) == 0
    assert "shared:" not in capsys.readouterr().out
    path.write_text(yaml.safe_dump({"brands": [{"name": "Acme"}], "redis": {
        "url": "redis://127.0.0.1:6379/1", "password": "pw-not-shown"}}), encoding="utf-8")
    assert main(["validate", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  shared:  Redis redis://127.0.0.1:6379/1, keys brandpulse:*" in out
    assert "pw-not-shown" not in out


def test_dry_run_reports_each_brand_at_its_own_volume(config_path, capsys) -> None:
    assert main(["check-alerts", "--dry-run", "-c", str(config_path), "--at", NOW.isoformat()]) == 0
    out = capsys.readouterr().out
    busy = next(line for line in out.splitlines() if line.strip().startswith("Busy:"))
    quiet = next(line for line in out.splitlines() if line.strip().startswith("Quiet:"))
    assert "negative mentions/h" in busy and "a wave of 3x over 2 h pages within ~" in busy
    assert "a 3x rise is statistically invisible; smallest visible:" in quiet
    assert "0 alert(s) would be sent" in out


def test_validate_names_the_alert_channel_and_checks_it(tmp_path, capsys) -> None:
    from sandbox.bots import BotSandbox

    with BotSandbox() as bots:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump({"brands": [{"name": "Acme"}], "wecom": {"url": bots.wecom_url}}),
                        encoding="utf-8")  # fmt: skip
        assert main(["validate", "-c", str(path), "--check-channel"]) == 0
        out = capsys.readouterr().out
        assert "  alerts:  wecom" in out and "key accepted" in out
        assert bots.messages() == []  # checked without posting
        bad = bots.wecom_url.replace("0sandbox-wecom-key-0000", "bad-key-555")
        path.write_text(yaml.safe_dump({"brands": [{"name": "Acme"}], "wecom": {"url": bad}}), encoding="utf-8")
        assert main(["validate", "-c", str(path), "--check-channel"]) == 1
        captured = capsys.readouterr()
        assert "93000" in captured.err and "bad-key-555" not in captured.err + captured.out


def test_validate_checks_every_routed_channel_and_only_the_default_without_routes(tmp_path, capsys) -> None:
    from sandbox.bots import BotSandbox

    with BotSandbox() as bots:
        bad_wecom = bots.wecom_url.replace("0sandbox-wecom-key-0000", "bad-key-555")
        data = {"brands": [{"name": "Acme"}],
                "dingtalk": {"url": bots.dingtalk_url, "secret": bots.dingtalk_secret},
                "wecom": {"url": bad_wecom}}  # fmt: skip
        path = tmp_path / "config.yaml"
        # without routes alerts go to the default channel (DingTalk) only: WeCom is unused
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        assert main(["validate", "-c", str(path), "--check-channel"]) == 0
        captured = capsys.readouterr()
        assert "  alerts:  dingtalk (also configured, unused: wecom)" in captured.out
        assert captured.out.count("channel check:") == 1 and "93000" not in captured.err

        # routed to both: both are checked, and WeCom's wrong key fails the check
        data["alerts"] = {"routes": [{"channels": ["dingtalk", "wecom"]}]}
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        assert main(["validate", "-c", str(path), "--check-channel"]) == 1
        captured = capsys.readouterr()
        assert "dingtalk by default (also configured, used where routes name them: wecom)" in captured.out
        assert "  routes:  1 route(s) to dingtalk, wecom" in captured.out
        assert captured.out.count("channel check:") == 1  # DingTalk passed
        assert "channel check failed" in captured.err and "93000" in captured.err
        assert "bad-key-555" not in captured.err + captured.out
        assert bots.messages() == []  # checked without posting


def test_rebuild_counts_builds_the_hourly_counts_from_the_mentions(config_path, es_client, capsys):
    from store.reader import ElasticsearchMentionReader, RollupMentionReader

    config = load_config(config_path, env={})
    prefix = config.elasticsearch.index_prefix
    assert main(["rebuild-counts", "-c", str(config_path)]) == 0
    # Busy: every hour of the four days (97 hours touched), Quiet: 19 mentions, 19 hours
    assert f"counts: {97 + 19} (brand, hour) document(s) recomputed in {prefix}-counts-hourly" in (
        capsys.readouterr().out
    )
    raw = ElasticsearchMentionReader(es_client, f"{prefix}-mentions")
    rolled = RollupMentionReader(es_client, raw.index, prefix=prefix)
    start, step = NOW - timedelta(days=4), timedelta(minutes=5)
    for brand in ("Busy", "Quiet"):
        assert rolled.counts(brand, start, NOW, step) == raw.counts(brand, start, NOW, step)
