"""Index templates, index naming and the Chinese analyzer probe.

Layout (prefix ``brandpulse`` by default, from ``elasticsearch.index_prefix``):

- component templates ``brandpulse-mentions-settings`` and
  ``brandpulse-mentions-mappings``, composed by the index template
  ``brandpulse-mentions`` for the pattern ``brandpulse-mentions-*``;
- one index per month of ``created_at``: ``brandpulse-mentions-YYYY.MM``, or per
  day with ``elasticsearch.index_period: day``: ``brandpulse-mentions-YYYY.MM.DD``;
- every such index joins the alias ``brandpulse-mentions`` (the template adds it),
  which is what readers, Kibana and alerts query;
- the index template ``brandpulse-counts-hourly`` of the one index of that name: per
  (brand, hour) the counts the alert checks read (`store.rollup`).

The index is a pure function of ``created_at`` and the period (:func:`index_for`),
so under one period a mention always lands in the same index and its deterministic
``_id`` makes a re-crawl or re-score overwrite it instead of duplicating it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from brandpulse.config import ElasticsearchConfig, IndexPeriod

log = logging.getLogger(__name__)

# Bumped whenever the mapping or settings change; stored in the template `_meta`
# so `GET _index_template/...` tells which layout a cluster has.
TEMPLATE_VERSION = 2

# Best first: smartcn segments words, icu_analyzer segments by dictionary, cjk
# indexes bigrams. All three ship only with a full cluster (plugins or the
# analysis-common module); `standard` always exists and splits Han text into
# single characters, which still serves match_phrase on brand names.
ZH_ANALYZER_CANDIDATES: tuple[str, ...] = ("smartcn", "icu_analyzer", "cjk")
ZH_PROBE_TEXT = "小米手机的电池很耐用"


def alias_name(prefix: str = "brandpulse") -> str:
    return f"{prefix}-mentions"


def index_pattern(prefix: str = "brandpulse") -> str:
    return f"{alias_name(prefix)}-*"


def index_for(
    created_at: datetime, prefix: str = "brandpulse", period: IndexPeriod = "month"
) -> str:
    """The index a mention created at ``created_at`` belongs to: its UTC month
    (``<prefix>-mentions-YYYY.MM``) or, with ``period="day"``, its UTC day
    (``<prefix>-mentions-YYYY.MM.DD``). Pure, so a mention always has one index
    under one period; ``store.retention.index_period_of`` reads both namings back."""
    if created_at.tzinfo is None:
        raise ValueError(f"created_at must be timezone-aware (UTC), got naive {created_at!r}")
    utc = created_at.astimezone(UTC)
    if period == "day":
        return f"{alias_name(prefix)}-{utc:%Y.%m.%d}"
    if period != "month":
        raise ValueError(f"index period must be 'month' or 'day', got {period!r}")
    return f"{alias_name(prefix)}-{utc:%Y.%m}"


def probe_zh_analyzer(client: Elasticsearch) -> str:
    """The best Chinese analyzer this cluster has, by asking ``POST _analyze``."""
    for name in ZH_ANALYZER_CANDIDATES:
        try:
            tokens = client.indices.analyze(analyzer=name, text=ZH_PROBE_TEXT)["tokens"]
        except ApiError as exc:
            # 400 "failed to find global analyzer [cjk]" is the expected answer
            # on a cluster without the plugin/module
            log.debug("analyzer %s not available: %s", name, exc)
            continue
        if tokens:
            return name
    return "standard"


def _text_field(zh_analyzer: str, keyword: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {"zh": {"type": "text", "analyzer": zh_analyzer}}
    if keyword:
        # exact-match filters and sorting on short titles; long ones are not indexed
        fields["keyword"] = {"type": "keyword", "ignore_above": 512}
    return {"type": "text", "analyzer": "standard", "fields": fields}


def mappings(zh_analyzer: str = "standard") -> dict[str, Any]:
    """The mapping of a mention document, i.e. of ``Mention.to_document()``."""
    long_ = {"type": "long"}
    keyword = {"type": "keyword"}
    float_ = {"type": "float"}
    verdict = {
        "label": keyword,
        "negative": float_,
        "neutral": float_,
        "positive": float_,
        "confidence": float_,
        "uncertain": {"type": "boolean"},
    }
    return {
        # strict: a document with a field the mapping does not know is rejected
        # (mapping drift between Mention and this file shows up as an error, not
        # as a silently dynamic-mapped field)
        "dynamic": "strict",
        "properties": {
            "id": keyword,
            "source": keyword,
            "source_id": keyword,
            "source_name": keyword,
            "url": {"type": "keyword", "ignore_above": 2048},
            "author": keyword,
            "author_reach": long_,
            "title": _text_field(zh_analyzer, keyword=True),
            "text": _text_field(zh_analyzer, keyword=False),
            "language": keyword,
            "created_at": {"type": "date"},
            "collected_at": {"type": "date"},
            "brands": keyword,
            "engagement": {
                "properties": {"likes": long_, "replies": long_, "shares": long_, "score": long_}
            },
            "sentiment": {"properties": {**verdict, "model": keyword}},
            # "negative"/"neutral"/"positive", or "uncertain" under nlp.uncertain_below:
            # what post-level counts and Kibana's sentiment splits aggregate on
            "sentiment_bucket": keyword,
            # Per-brand sentiment twice: nested, so that one brand's label, confidence
            # and source are queried together (`nested` query: brand X AND negative
            # AND certain), and flat as "brand|bucket" keywords, which terms
            # aggregations and Kibana (Lens cannot aggregate nested fields) count
            # without nested aggregations; the writer derives them from one list.
            "brand_sentiments": {
                "type": "nested",
                "properties": {**verdict, "brand": keyword, "source": keyword},
            },
            "brand_sentiment_keys": keyword,
            "duplicate_of": keyword,
        },
    }


def _missing(wanted: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The part of `wanted` (mapping properties) that `current` lacks, at any depth.

    A new sub-field of an existing object (`sentiment.confidence`) needs the object in
    the put-mapping body with only the new sub-field: repeating existing text fields
    would fail on an index made under another analyzer.
    """
    out: dict[str, Any] = {}
    for name, spec in wanted.items():
        have = current.get(name)
        if have is None:
            out[name] = spec
        elif "properties" in spec:
            inner = _missing(spec["properties"], have.get("properties", {}))
            if inner:
                # `type` (e.g. nested) must be repeated; an object's is implied
                out[name] = {k: v for k, v in spec.items() if k != "properties"}
                out[name]["properties"] = inner
    return out


def index_settings() -> dict[str, Any]:
    return {
        "index": {
            "number_of_shards": 1,
            # 0 replicas on a single node (green), 1 as soon as a second node exists
            "auto_expand_replicas": "0-1",
            "refresh_interval": "1s",
        }
    }


@dataclass(frozen=True)
class SetupResult:
    alias: str
    index_template: str
    component_templates: tuple[str, ...]
    zh_analyzer: str
    bootstrap_index: str | None = None


def install_templates(client: Elasticsearch, cfg: ElasticsearchConfig | None = None) -> SetupResult:
    """Install (or update) the component and index templates. Idempotent.

    Existing mention indices (monthly or daily) get the mapping too (``PUT _mapping``): additive
    changes apply at once; a conflicting change fails here, naming the field,
    instead of at the next write.
    """
    prefix = (cfg or ElasticsearchConfig()).index_prefix
    alias = alias_name(prefix)
    zh = probe_zh_analyzer(client)
    settings_name = f"{alias}-settings"
    mappings_name = f"{alias}-mappings"
    meta = {"managed_by": "brandpulse", "template_version": TEMPLATE_VERSION, "zh_analyzer": zh}
    client.cluster.put_component_template(
        name=settings_name, template={"settings": index_settings()}, meta=meta
    )
    client.cluster.put_component_template(
        name=mappings_name, template={"mappings": mappings(zh)}, meta=meta
    )
    client.indices.put_index_template(
        name=alias,
        index_patterns=[index_pattern(prefix)],
        composed_of=[settings_name, mappings_name],
        template={"aliases": {alias: {}}},
        # above the built-in templates (priority 100-ish) that might match too
        priority=500,
        meta=meta,
    )
    from store.rollup import install_counts_template  # the hourly counts (store.rollup)

    install_counts_template(client, prefix, meta)
    existing = client.indices.get(index=index_pattern(prefix), allow_no_indices=True)
    if existing:
        mp = mappings(zh)
        # an index created under another analyzer keeps it: analyzers cannot change
        # on a live field, so only add what is missing
        for name, body in existing.items():
            current = body.get("mappings", {}).get("properties", {})
            missing = _missing(mp["properties"], current)
            if missing:
                client.indices.put_mapping(index=name, properties=missing)
    log.info("installed templates for %s (zh analyzer: %s)", alias, zh)
    return SetupResult(
        alias=alias,
        index_template=alias,
        component_templates=(settings_name, mappings_name),
        zh_analyzer=zh,
    )


def ensure_index(client: Elasticsearch, index: str) -> bool:
    """Create a mention index (monthly or daily) from the template if missing; True
    if it was created.

    Explicit creation (instead of relying on auto-create on first write) works on
    clusters that restrict ``action.auto_create_index``.
    """
    try:
        client.indices.create(index=index)
        return True
    except ApiError as exc:
        if exc.error == "resource_already_exists_exception":
            return False
        raise


def setup_elasticsearch(
    client: Elasticsearch, cfg: ElasticsearchConfig | None = None, now: datetime | None = None
) -> SetupResult:
    """Templates plus the current period's index (month, or day with
    ``index_period: day``), so the alias resolves from day one.

    Kibana's data view, field_caps and the readers need the alias to exist before
    the first mention is written.
    """
    result = install_templates(client, cfg)
    cfg = cfg or ElasticsearchConfig()
    index = index_for(now or datetime.now(UTC), cfg.index_prefix, cfg.index_period)
    ensure_index(client, index)
    client.cluster.health(index=index, wait_for_status="yellow", timeout="30s")
    return SetupResult(
        alias=result.alias,
        index_template=result.index_template,
        component_templates=result.component_templates,
        zh_analyzer=result.zh_analyzer,
        bootstrap_index=index,
    )
