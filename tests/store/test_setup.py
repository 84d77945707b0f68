from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from elasticsearch import BadRequestError, Elasticsearch

from brandpulse.config import ElasticsearchConfig
from store.setup import (
    ZH_ANALYZER_CANDIDATES,
    alias_name,
    index_for,
    install_templates,
    probe_zh_analyzer,
    setup_elasticsearch,
)
from store.synthetic import mentions

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)


def test_index_for_is_the_utc_month_of_created_at():
    # 23:30 on Oct 31 at UTC-2 is already November in UTC
    late = datetime(2026, 10, 31, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    assert index_for(late, "bp") == "bp-mentions-2026.11"
    assert index_for(datetime(2026, 1, 1, tzinfo=UTC)) == "brandpulse-mentions-2026.01"
    with pytest.raises(ValueError, match="timezone-aware"):
        index_for(datetime(2026, 1, 1))


def test_index_for_with_daily_period_is_the_utc_day_of_created_at():
    late = datetime(2026, 10, 31, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    assert index_for(late, "bp", "day") == "bp-mentions-2026.11.01"
    assert index_for(datetime(2026, 1, 9, tzinfo=UTC), period="day") == "brandpulse-mentions-2026.01.09"
    # the default stays monthly: nothing changes for existing users
    assert ElasticsearchConfig().index_period == "month"
    with pytest.raises(ValueError, match="'month' or 'day'"):
        index_for(datetime(2026, 1, 1, tzinfo=UTC), period="week")  # type: ignore[arg-type]


def test_templates_are_installed_and_recorded(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    result = install_templates(es_client, es_cfg)
    alias = alias_name(es_cfg.index_prefix)
    assert result.alias == alias
    tmpl = es_client.indices.get_index_template(name=alias)["index_templates"][0]["index_template"]
    assert tmpl["index_patterns"] == [f"{alias}-*"]
    assert tmpl["composed_of"] == list(result.component_templates)
    assert tmpl["_meta"]["zh_analyzer"] == result.zh_analyzer
    # installing again is a no-op, not an error
    assert install_templates(es_client, es_cfg).zh_analyzer == result.zh_analyzer


def test_zh_analyzer_probe_falls_back_to_standard_on_the_local_node(es_client: Elasticsearch):
    # the local node has none of the plugins/modules that provide the better ones
    available = []
    for name in ZH_ANALYZER_CANDIDATES:
        try:
            es_client.indices.analyze(analyzer=name, text="小米")
            available.append(name)
        except BadRequestError:
            pass
    expected = available[0] if available else "standard"
    assert probe_zh_analyzer(es_client) == expected


def test_setup_creates_the_current_month_index_behind_the_alias(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    result = setup_elasticsearch(es_client, es_cfg, now=NOW)
    assert result.bootstrap_index == f"{es_cfg.index_prefix}-mentions-2026.11"
    aliases = es_client.indices.get_alias(name=result.alias)
    assert list(aliases) == [result.bootstrap_index]
    mapping = es_client.indices.get_mapping(index=result.bootstrap_index)[result.bootstrap_index]
    props = mapping["mappings"]["properties"]
    assert mapping["mappings"]["dynamic"] == "strict"
    assert props["brands"]["type"] == "keyword"
    assert props["sentiment"]["properties"]["negative"]["type"] == "float"
    assert props["author_reach"]["type"] == "long"
    assert props["title"]["fields"]["keyword"]["type"] == "keyword"
    assert props["text"]["fields"]["zh"]["analyzer"] == result.zh_analyzer


def test_every_field_of_a_mention_document_is_mapped(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    result = setup_elasticsearch(es_client, es_cfg, now=NOW)
    (m,) = mentions(1, NOW, NOW + timedelta(hours=1))
    doc = m.to_document()
    es_client.index(index=result.bootstrap_index, id=m.id, document=doc, refresh=True)
    got = es_client.get(index=result.alias, id=m.id)["_source"]
    assert got == doc


def test_a_document_that_breaks_the_mapping_is_rejected_with_a_clear_message(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    result = setup_elasticsearch(es_client, es_cfg, now=NOW)
    (m,) = mentions(1, NOW, NOW + timedelta(hours=1))
    unknown_field = {**m.to_document(), "sentimnet": "typo"}
    with pytest.raises(BadRequestError) as info:
        es_client.index(index=result.bootstrap_index, id=m.id, document=unknown_field)
    assert info.value.error == "strict_dynamic_mapping_exception"
    assert "sentimnet" in str(info.value)
    wrong_type = {**m.to_document(), "author_reach": "lots"}
    with pytest.raises(BadRequestError) as info:
        es_client.index(index=result.bootstrap_index, id=m.id, document=wrong_type)
    assert info.value.error == "document_parsing_exception"
    assert "author_reach" in str(info.value)


def test_setup_with_daily_period_creates_todays_index(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    daily = es_cfg.model_copy(update={"index_period": "day"})
    result = setup_elasticsearch(es_client, daily, now=NOW)
    assert result.bootstrap_index == f"{es_cfg.index_prefix}-mentions-2026.11.15"
    assert list(es_client.indices.get_alias(name=result.alias)) == [result.bootstrap_index]
