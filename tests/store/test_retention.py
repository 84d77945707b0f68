from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from brandpulse.config import ConfigError, ElasticsearchConfig, RetentionConfig, parse_config
from store.retention import apply_retention, ilm_available, index_period_of, list_mention_indices
from store.rollup import CountsRollup, counts_index_name
from store.setup import alias_name, ensure_index, install_templates
from store.synthetic import mentions
from store.writer import BulkWriter

# 13 calendar months before NOW: 2025-11-15 12:00 UTC
NOW = datetime(2026, 12, 15, 12, tzinfo=UTC)
KEEP = RetentionConfig(keep="13 months")
# ours, and whether the period ended by the cutoff
SUFFIXES = {
    "2025.01": True,
    "2025.10": True,  # ends 2025-11-01
    "2025.11": False,  # ends 2025-12-01: still holds kept days
    "2026.12": False,
    "2025.11.14": True,  # ends 2025-11-15 00:00, before the cutoff
    "2025.11.15": False,  # the cutoff's own day
    "2025.11.30": False,
}


def test_index_period_of_reads_both_namings_and_nothing_else():
    assert index_period_of("bp-mentions-2025.12", "bp") == (
        datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert index_period_of("bp-mentions-2024.02.29", "bp") == (
        datetime(2024, 2, 29, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)
    )
    for other in ("bp-mentions-old", "bp-mentions-2025.13", "bp-mentions-2025.02.30",
                  "bp-mentions-2025.01-restored", "bpx-mentions-2025.01", "bp-mentions-2025.1"):
        assert index_period_of(other, "bp") is None, other


def test_keep_in_months_is_calendar_months():
    assert KEEP.cutoff(NOW) == datetime(2025, 11, 15, 12, tzinfo=UTC)
    # March 31st minus one month: the last day of February
    assert RetentionConfig(keep="1mo").cutoff(datetime(2026, 3, 31, tzinfo=UTC)) == datetime(
        2026, 2, 28, tzinfo=UTC
    )
    assert RetentionConfig(keep="30d").cutoff(NOW) == datetime(2026, 11, 15, 12, tzinfo=UTC)


def test_a_malformed_retention_config_names_the_field():
    data = {"brands": [{"name": "Acme"}],
            "elasticsearch": {"retention": {"keep": "forever", "action": "shred"}}}
    with pytest.raises(ConfigError) as err:
        parse_config(data, env={})
    problems = err.value.problems
    assert any(p.startswith("elasticsearch.retention.keep: expected calendar months") for p in problems)
    assert any(p.startswith("elasticsearch.retention.action:") and "'close'" in p for p in problems)
    with pytest.raises(ConfigError) as err:
        parse_config({**data, "elasticsearch": {"retention": {"keep": "2h"}}}, env={})
    assert any(p.startswith("elasticsearch.retention.keep: must be at least 1 day") for p in err.value.problems)
    with pytest.raises(ConfigError) as err:
        parse_config({**data, "elasticsearch": {"retention": {"action": "close"}}}, env={})
    assert any(p.startswith("elasticsearch.retention.keep:") for p in err.value.problems)
    # off by default
    assert parse_config({"brands": [{"name": "Acme"}]}, env={}).elasticsearch.retention is None


def _make_indices(es: Elasticsearch, cfg: ElasticsearchConfig) -> tuple[set[str], set[str], str]:
    """Our indices (old ones, kept ones) and one that matches the pattern but is not ours."""
    install_templates(es, cfg)
    alias = alias_name(cfg.index_prefix)
    old = {f"{alias}-{s}" for s, gone in SUFFIXES.items() if gone}
    kept = {f"{alias}-{s}" for s, gone in SUFFIXES.items() if not gone}
    stranger = f"{alias}-old"
    for name in sorted(old | kept | {stranger}):
        ensure_index(es, name)
    es.cluster.health(index=alias, wait_for_status="yellow", timeout="60s")
    return old, kept, stranger


@pytest.fixture
def unrelated(es_client: Elasticsearch, es_cfg: ElasticsearchConfig):
    """An index outside our pattern entirely, with an old-looking name."""
    name = f"{es_cfg.index_prefix}-archive-2020.01"
    es_client.indices.create(index=name)
    yield name
    es_client.indices.delete(index=name)


def test_dry_run_lists_and_changes_nothing_then_delete_removes_exactly_the_old(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig, unrelated: str
):
    cfg = es_cfg.model_copy(update={"retention": KEEP})
    old, kept, stranger = _make_indices(es_client, cfg)
    before = list_mention_indices(es_client, cfg.index_prefix)

    dry = apply_retention(es_client, cfg, NOW, dry_run=True)
    assert set(dry.acted) == old
    assert set(dry.kept) == kept
    assert dry.ignored == [stranger]
    assert list_mention_indices(es_client, cfg.index_prefix) == before
    text = "\n".join(dry.lines())
    assert all(f"would be deleted: {n}" in text for n in old)
    assert f"not ours, untouched: {stranger}" in text

    done = apply_retention(es_client, cfg, NOW)
    assert set(done.acted) == old
    assert set(list_mention_indices(es_client, cfg.index_prefix)) == kept | {stranger}
    assert es_client.indices.exists(index=unrelated)
    # a second run finds nothing more to do
    assert apply_retention(es_client, cfg, NOW).acted == []


def test_close_takes_old_indices_out_of_the_alias_and_reads_keep_working(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig, unrelated: str
):
    cfg = es_cfg.model_copy(update={"retention": RetentionConfig(keep="13 months", action="close")})
    old, kept, stranger = _make_indices(es_client, cfg)
    alias = alias_name(cfg.index_prefix)
    # ten mentions in a month that is closed, five in one that is kept
    gone = list(mentions(10, datetime(2025, 10, 2, tzinfo=UTC), datetime(2025, 10, 3, tzinfo=UTC)))
    stay = list(mentions(5, datetime(2025, 11, 20, tzinfo=UTC), datetime(2025, 11, 21, tzinfo=UTC)))
    with BulkWriter(es_client, cfg) as writer:
        assert writer.write([*gone, *stay]).ok
    es_client.indices.refresh(index=alias)
    assert es_client.count(index=alias)["count"] == 15

    done = apply_retention(es_client, cfg, NOW)
    assert set(done.acted) == old
    status = list_mention_indices(es_client, cfg.index_prefix)
    assert {n for n, s in status.items() if s == "close"} == old
    assert {n for n, s in status.items() if s == "open"} == kept | {stranger}
    assert set(es_client.indices.get_alias(name=alias)) == kept | {stranger}
    assert es_client.count(index=alias)["count"] == 5
    assert es_client.indices.exists(index=unrelated)
    # the daemon's start-up (templates on every mention index) is not upset by closed ones
    install_templates(es_client, cfg)
    again = apply_retention(es_client, cfg, NOW)
    assert again.acted == [] and set(again.already_closed) == old


def _rolled_hours(es: Elasticsearch, prefix: str) -> set[datetime]:
    es.indices.refresh(index=counts_index_name(prefix))
    hits = es.search(index=counts_index_name(prefix), size=1000, query={"match_all": {}})["hits"]["hits"]
    return {datetime.fromisoformat(h["_source"]["hour"].replace("Z", "+00:00")) for h in hits}


# the cutoff of KEEP at NOW is 2025-11-15 12:00: hours that ended by then go
ROLLED_GONE = [datetime(2025, 10, 2, 9, tzinfo=UTC), datetime(2025, 11, 15, 10, tzinfo=UTC),
               datetime(2025, 11, 15, 11, tzinfo=UTC)]  # 11:00 ends at the cutoff itself
ROLLED_KEPT = [datetime(2025, 11, 15, 12, tzinfo=UTC), datetime(2026, 11, 20, 9, tzinfo=UTC)]


@pytest.mark.parametrize("action", ["delete", "close"])
def test_rollup_hours_ended_by_the_cutoff_are_deleted_whatever_the_action(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig, action: str
):
    cfg = es_cfg.model_copy(update={"retention": RetentionConfig(keep="13 months", action=action)})
    install_templates(es_client, cfg)
    # mentions in each hour (two brands in each), the counts index built from them
    batch = [m for i, hour in enumerate(ROLLED_GONE + ROLLED_KEPT)
             for m in mentions(6, hour, hour + timedelta(minutes=50), seed=i, id_prefix=f"h{i}-",
                               brands=("Acme", "Globex"))]  # fmt: skip
    with BulkWriter(es_client, cfg) as writer:
        assert writer.write(batch).ok
    assert CountsRollup(es_client, cfg.index_prefix).rebuild() > 0
    docs = len({(b, m.created_at.replace(minute=0, second=0, microsecond=0)) for m in batch for b in m.brands})
    gone = len({(b, m.created_at.replace(minute=0, second=0, microsecond=0)) for m in batch
                for b in m.brands if m.created_at < datetime(2025, 11, 15, 12, tzinfo=UTC)})  # fmt: skip
    assert 0 < gone < docs
    assert _rolled_hours(es_client, cfg.index_prefix) == set(ROLLED_GONE + ROLLED_KEPT)

    dry = apply_retention(es_client, cfg, NOW, dry_run=True)
    assert (dry.rollup_index, dry.rollup_hours) == (counts_index_name(cfg.index_prefix), gone)
    assert f"{gone} (brand, hour) document(s) of hours ended by the cutoff would be deleted" in "\n".join(dry.lines())
    assert _rolled_hours(es_client, cfg.index_prefix) == set(ROLLED_GONE + ROLLED_KEPT)

    done = apply_retention(es_client, cfg, NOW)
    assert done.rollup_hours == gone
    assert f"{gone} (brand, hour) document(s) of hours ended by the cutoff deleted" in "\n".join(done.lines())
    assert _rolled_hours(es_client, cfg.index_prefix) == set(ROLLED_KEPT)
    assert es_client.count(index=counts_index_name(cfg.index_prefix))["count"] == docs - gone
    # a second run finds nothing more to do
    assert apply_retention(es_client, cfg, NOW).rollup_hours == 0


def test_a_prefix_with_no_indices_is_nothing_to_do(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    cfg = es_cfg.model_copy(update={"retention": KEEP})
    result = apply_retention(es_client, cfg, NOW)
    assert (result.acted, result.kept, result.ignored) == ([], [], [])
    # no counts index (the rollup never built): nothing said, nothing created
    assert (result.rollup_index, result.rollup_hours) == (None, 0)
    assert "counts-hourly" not in "\n".join(result.lines())
    assert not es_client.indices.exists(index=counts_index_name(cfg.index_prefix))


def test_without_retention_configured_nothing_is_applied(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    with pytest.raises(ValueError, match=r"elasticsearch\.retention is not set"):
        apply_retention(es_client, es_cfg, NOW)


@pytest.mark.skipif(bool(os.environ.get("BRANDPULSE_TEST_ES_URL")), reason="another node")
def test_the_local_node_has_no_ilm(es_client: Elasticsearch):
    # why the job is the tested path (docs/elasticsearch.md, Retention)
    assert ilm_available(es_client) is False


def test_alert_history_longer_than_retention_is_a_config_error():
    """The detector's history must fit inside what retention keeps (rollup hours and raw
    indices alike are deleted past `keep`); the error names both values."""
    data = {"brands": [{"name": "Acme"}]}
    with pytest.raises(ConfigError) as err:
        parse_config({**data, "elasticsearch": {"retention": {"keep": "14d"}}}, env={})
    [problem] = [p for p in err.value.problems if p.startswith("alerts.history")]
    assert "elasticsearch.retention.keep (14d)" in problem
    with pytest.raises(ConfigError) as err:
        parse_config({**data, "alerts": {"history": "60d"},
                      "elasticsearch": {"retention": {"keep": "2 months"}}}, env={})
    assert any(p.startswith("alerts.history: 60d plus the day") for p in err.value.problems)
    # The start is rounded down to UTC midnight (alerts.kept.anchor): a day more is read.
    with pytest.raises(ConfigError) as err:
        parse_config({**data, "alerts": {"history": "8w"},
                      "elasticsearch": {"retention": {"keep": "2 months"}}}, env={})
    assert any(p.startswith("alerts.history: 8w plus the day") for p in err.value.problems)
    # fits: the default 21 days (+1) in one month; 55 days (+1) in two months (56 days)
    assert parse_config({**data, "elasticsearch": {"retention": {"keep": "1 month"}}}, env={})
    assert parse_config({**data, "alerts": {"history": "55d"},
                         "elasticsearch": {"retention": {"keep": "2 months"}}}, env={})
