"""The Kibana saved objects in kibana/brandpulse.ndjson, checked without a Kibana.

No Kibana runs here, so the file is checked for what Kibana would trip over:
- structure: every line and every JSON-in-a-string attribute parses, the export
  summary counts the objects, every reference resolves inside the file, and each
  object's internal pointers (panelRefName, indexRefName, Lens layers and accessors)
  match its references and columns;
- the index: every field a data view, saved search, Lens chart or Vega chart uses
  exists in the REAL index (a local Elasticsearch node with the store's templates
  installed and a few mentions indexed) with the right type, aggregatable where it is
  aggregated, and the charts' aggregations and the searches' queries run on it and
  return what the indexed mentions say they should (share of voice and net sentiment
  per brand against hand counts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from brandpulse.config import ElasticsearchConfig
from kibana import NDJSON_PATH
from kibana import build as kibana_build
from store.setup import alias_name, mappings, setup_elasticsearch
from store.writer import BulkWriter

NUMERIC = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"}
# JSON-in-a-string attributes as Kibana stores them, by saved object type.
STRING_ATTRIBUTES = {
    "index-pattern": [
        "fieldAttrs",
        "fieldFormatMap",
        "fields",
        "runtimeFieldMap",
        "sourceFilters",
        "typeMeta",
    ],
    "search": ["kibanaSavedObjectMeta.searchSourceJSON"],
    "dashboard": ["panelsJSON", "optionsJSON", "kibanaSavedObjectMeta.searchSourceJSON"],
    "lens": [],
    "visualization": ["visState", "uiStateJSON", "kibanaSavedObjectMeta.searchSourceJSON"],
}


def _get(attributes: dict[str, Any], dotted: str) -> Any:
    value: Any = attributes
    for key in dotted.split("."):
        value = value[key]
    return value


def _lines() -> list[str]:
    return NDJSON_PATH.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in _lines()[:-1]]


def _by_type(objects: list[dict[str, Any]], obj_type: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["type"] == obj_type]


def _kql_fields(query: str) -> set[str]:
    # The saved queries are simple `field : value` KQL; this finds the field names.
    return set(re.findall(r"([A-Za-z_][\w.]*)\s*:", query))


# --- structure ---------------------------------------------------------------------


def test_file_is_what_build_py_generates():
    assert NDJSON_PATH.read_text(encoding="utf-8") == kibana_build.render(), (
        "kibana/brandpulse.ndjson is stale: run python -m kibana.build"
    )


def test_every_line_parses_and_the_summary_counts_the_objects():
    lines = _lines()
    parsed = [json.loads(line) for line in lines]  # raises on any bad line
    assert all(isinstance(p, dict) for p in parsed)
    *objects, summary = parsed
    assert summary["exportedCount"] == len(objects) == 12
    assert summary["missingReferences"] == []
    assert "type" not in summary


def test_objects_have_the_export_shape(objects):
    seen = set()
    for obj in objects:
        assert set(obj) >= {
            "type",
            "id",
            "attributes",
            "references",
            "coreMigrationVersion",
            "typeMigrationVersion",
        }
        assert obj["type"] in STRING_ATTRIBUTES
        assert re.fullmatch(r"\d+\.\d+\.\d+", obj["coreMigrationVersion"])
        assert re.fullmatch(r"\d+\.\d+\.\d+", obj["typeMigrationVersion"])
        assert (obj["type"], obj["id"]) not in seen, f"duplicate {obj['type']} {obj['id']}"
        seen.add((obj["type"], obj["id"]))
        assert obj["attributes"]["title"]
        for ref in obj["references"]:
            assert set(ref) == {"id", "name", "type"}
    counts = {t: len(_by_type(objects, t)) for t in STRING_ATTRIBUTES}
    assert counts == {
        "index-pattern": 1, "search": 4, "lens": 5, "dashboard": 1, "visualization": 1,
    }  # fmt: skip


def test_embedded_json_strings_parse(objects):
    for obj in objects:
        for dotted in STRING_ATTRIBUTES[obj["type"]]:
            value = _get(obj["attributes"], dotted)
            assert isinstance(value, str), f"{obj['id']}.{dotted} must be a JSON string"
            json.loads(value)


def test_every_reference_resolves_inside_the_file(objects):
    present = {(o["type"], o["id"]) for o in objects}
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in present, f"{obj['id']}: unresolved {ref}"


def test_data_view(objects):
    (view,) = _by_type(objects, "index-pattern")
    assert view["id"] == "brandpulse-mentions"
    assert view["attributes"]["title"] == "brandpulse-mentions"
    assert view["attributes"]["timeFieldName"] == "created_at"


def test_saved_searches_point_at_the_data_view(objects):
    for search in _by_type(objects, "search"):
        source = json.loads(search["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        (ref,) = [r for r in search["references"] if r["name"] == source["indexRefName"]]
        assert ref == {
            "id": "brandpulse-mentions",
            "name": source["indexRefName"],
            "type": "index-pattern",
        }
        assert source["query"]["language"] == "kuery"
        assert search["attributes"]["columns"]


def test_lens_layers_references_and_accessors_agree(objects):
    for lens in _by_type(objects, "lens"):
        state = lens["attributes"]["state"]
        layers = state["datasourceStates"]["formBased"]["layers"]
        layer_refs = {r["name"] for r in lens["references"]}
        assert layer_refs == {f"indexpattern-datasource-layer-{layer}" for layer in layers}
        for layer in layers.values():
            assert sorted(layer["columnOrder"]) == sorted(layer["columns"])
            for column in layer["columns"].values():
                order_by = column.get("params", {}).get("orderBy", {})
                if order_by.get("type") == "column":
                    assert order_by["columnId"] in layer["columns"]
        vis = state["visualization"]
        accessors: list[str] = []
        if lens["attributes"]["visualizationType"] == "lnsXY":
            for vis_layer in vis["layers"]:
                assert vis_layer["layerId"] in layers
                accessors += [
                    *vis_layer["accessors"],
                    vis_layer["xAccessor"],
                    # a chart with one series per bar has no split
                    *([vis_layer["splitAccessor"]] if "splitAccessor" in vis_layer else []),
                ]
                columns = layers[vis_layer["layerId"]]["columns"]
                assert all(a in columns for a in accessors)
        elif lens["attributes"]["visualizationType"] == "lnsPie":
            for vis_layer in vis["layers"]:
                columns = layers[vis_layer["layerId"]]["columns"]
                assert all(
                    a in columns for a in [*vis_layer["primaryGroups"], *vis_layer["metrics"]]
                )
        elif lens["attributes"]["visualizationType"] == "lnsDatatable":
            # Table columns appear in the layer's columnOrder (the dict itself is key-sorted).
            assert [c["columnId"] for c in vis["columns"]] == layers[vis["layerId"]]["columnOrder"]
        else:
            pytest.fail(f"unexpected visualizationType in {lens['id']}")


def test_dashboard_panels_match_references(objects):
    (dashboard,) = _by_type(objects, "dashboard")
    assert dashboard["attributes"]["title"] == "BrandPulse — brand sentiment"
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    refs = {r["name"]: r for r in dashboard["references"]}
    assert len(panels) == len(refs) == 7
    present = {(o["type"], o["id"]) for o in objects}
    for panel in panels:
        assert panel["panelRefName"] == f"panel_{panel['panelIndex']}"
        assert panel["gridData"]["i"] == panel["panelIndex"]
        # Kibana resolves "<panelIndex>:<panelRefName>" first, then the bare name.
        ref = refs[f"{panel['panelIndex']}:{panel['panelRefName']}"]
        assert ref["type"] == panel["type"]
        assert (ref["type"], ref["id"]) in present
        grid = panel["gridData"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 48
    shown = {refs[name]["id"] for name in refs}
    assert shown == {
        o["id"] for o in [*_by_type(objects, "lens"), *_by_type(objects, "visualization")]
    } | {"brandpulse-search-negative-about-a-brand"}


def vega_spec(vis: dict[str, Any]) -> dict[str, Any]:
    """The Vega(-Lite) spec of a `visualization` of type vega. Written as JSON (valid
    HJSON, which Kibana reads); a spec that is not JSON fails here."""
    state = json.loads(vis["attributes"]["visState"])
    assert state["type"] == "vega" and state["title"] == vis["attributes"]["title"]
    return json.loads(state["params"]["spec"])


def test_the_vega_chart_is_a_context_aware_query_on_the_alias(objects):
    (vis,) = _by_type(objects, "visualization")
    spec = vega_spec(vis)
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/v5")
    url = spec["data"]["url"]
    # the dashboard's time range, query and filters apply; the index is the data view's
    assert url["%context%"] is True and url["%timefield%"] == "created_at"
    assert url["index"] == kibana_build.INDEX_ALIAS
    assert "query" not in url["body"]  # Kibana refuses body.query together with %context%
    assert vis["references"] == []


# --- the fields, against the real index ----------------------------------------------


def field_uses(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """field -> {"aggregatable": bool, "types": set of acceptable ES types, "by": [ids]}."""
    uses: dict[str, dict[str, Any]] = {}

    def use(
        field: str, by: str, *, aggregatable: bool = False, types: set[str] | None = None
    ) -> None:
        entry = uses.setdefault(field, {"aggregatable": False, "types": None, "by": []})
        entry["aggregatable"] |= aggregatable
        if types is not None:
            entry["types"] = types if entry["types"] is None else entry["types"] & types
        entry["by"].append(by)

    for obj in objects:
        attrs = obj["attributes"]
        if obj["type"] == "index-pattern":
            use(attrs["timeFieldName"], obj["id"], aggregatable=True, types={"date", "date_nanos"})
            for field in json.loads(attrs["fieldFormatMap"]):
                use(field, obj["id"])
        elif obj["type"] == "search":
            source = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
            for field in _kql_fields(source["query"]["query"]):
                use(field, obj["id"])
            for column in attrs["columns"]:
                use(column, obj["id"])
            for field, _direction in attrs["sort"]:
                use(field, obj["id"], aggregatable=True)  # sorting needs doc values
        elif obj["type"] == "lens":
            state = attrs["state"]
            for field in _kql_fields(state["query"]["query"]):
                use(field, obj["id"])
            for layer in state["datasourceStates"]["formBased"]["layers"].values():
                for column in layer["columns"].values():
                    field = column["sourceField"]
                    if field == "___records___":
                        continue
                    op = column["operationType"]
                    types = {"date_histogram": {"date", "date_nanos"}, "terms": {"keyword"}}.get(
                        op, NUMERIC if op in {"max", "min", "average", "sum", "median"} else None
                    )
                    use(field, obj["id"], aggregatable=True, types=types)
        elif obj["type"] == "visualization":
            url = vega_spec(obj)["data"]["url"]
            use(url["%timefield%"], obj["id"], aggregatable=True, types={"date", "date_nanos"})
            for field, kwargs in _es_body_fields(url["body"]):
                use(field, obj["id"], **kwargs)
        elif obj["type"] == "dashboard":
            source = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
            for field in _kql_fields(source["query"]["query"]):
                use(field, obj["id"])
    return uses


def _es_body_fields(node: Any, parent: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(field, how it is used) for every field an Elasticsearch request body names:
    aggregation fields (aggregatable, of the type the aggregation needs), nested paths
    (nested), term filters (searchable)."""
    agg_types = {"date_histogram": {"date", "date_nanos"}, "terms": {"keyword"}}
    if isinstance(node, dict):
        for key, value in node.items():
            if key in agg_types and parent != "filter" and isinstance(value, dict) \
                    and "field" in value:
                yield value["field"], {"aggregatable": True, "types": agg_types[key]}
            elif key == "nested" and isinstance(value, dict) and "path" in value:
                yield value["path"], {"types": {"nested"}}
            elif key in ("term", "terms") and isinstance(value, dict) and "field" not in value:
                for field in value:
                    yield field, {}
            yield from _es_body_fields(value, key)
    elif isinstance(node, list):
        for value in node:
            yield from _es_body_fields(value, parent)


def test_field_uses_cover_every_chart_and_search(objects):
    uses = field_uses(objects)
    users = {by for entry in uses.values() for by in entry["by"]}
    assert users == {o["id"] for o in objects if o["type"] != "dashboard"}
    for field in ("sentiment_bucket", "brand_sentiment_keys"):
        assert uses[field]["aggregatable"] and uses[field]["types"] == {"keyword"}
    assert uses["created_at"]["types"] == {"date", "date_nanos"}
    assert uses["author_reach"]["types"] == NUMERIC
    # the Vega chart's nested aggregation and its filters are checked too
    assert uses["brand_sentiments"]["types"] == {"nested"}
    assert uses["brand_sentiments.brand"]["aggregatable"]
    assert uses["brand_sentiments.brand"]["types"] == {"keyword"}
    assert {"brand_sentiments.label", "brand_sentiments.uncertain"} <= set(uses)
    assert uses["brands"]["types"] == {"keyword"}  # share of voice splits on it


NOW = datetime.now(UTC).replace(microsecond=0)


def _mentions() -> list[Any]:
    from brandpulse.mention import BrandSentiment, Engagement, Mention, Sentiment

    def probs(label: str, top: float) -> dict[str, float]:
        out = {"negative": (1 - top) / 2, "neutral": (1 - top) / 2, "positive": (1 - top) / 2}
        out[label] = top
        return out

    def sentiment(label: str, uncertain: bool) -> Sentiment:
        top = 0.45 if uncertain else 0.9
        return Sentiment(label=label, model="test-model", confidence=top, uncertain=uncertain,
                         **probs(label, top))

    def per_brand(brands: list[str], post: Sentiment, labels: dict[str, str]) -> list[Any]:
        return [
            BrandSentiment(brand=b, label=labels[b], source="clause", confidence=0.9,
                           **probs(labels[b], 0.9))
            if b in labels else
            BrandSentiment(brand=b, source="post", **post.model_dump(exclude={"model"}))
            for b in brands
        ]  # fmt: skip

    rows = [
        ("reddit", "r1", "reddit", "alice", 120_000, ["Acme"], "negative", 0),
        # praises Acme, attacks Globex: negative for Globex only
        ("reddit", "r2", "reddit", "bob", 15, ["Acme", "Globex"], "positive", 1),
        ("hackernews", "h1", "hackernews", "carol", 4_000, ["Globex"], "neutral", 2),
        # a coin flip: negative label, confidence under the band, counted as uncertain
        ("mastodon", "m1", "mastodon", "dave", 900, ["Acme"], "negative?", 3),
        ("rss", "n1", "news", None, None, ["Globex"], "positive", 40 * 24),  # a month back
    ]
    clauses = {"r2": {"Acme": "positive", "Globex": "negative"}}
    return [
        Mention(
            source=source,
            source_id=source_id,
            source_name=source_name,
            url=f"https://example.org/{source_id}",
            author=author,
            author_reach=reach,
            title=f"Title {source_id}",
            text=f"Text about {' and '.join(brands)}",
            language="en",
            created_at=NOW - timedelta(hours=hours_ago),
            brands=brands,
            engagement=Engagement(likes=3, replies=1),
            sentiment=(post := sentiment(label.rstrip("?"), label.endswith("?"))),
            brand_sentiments=per_brand(brands, post, clauses.get(source_id, {})),
        )
        for source, source_id, source_name, author, reach, brands, label, hours_ago in rows
    ]


# Its own prefix, so other tests writing to the shared node do not change the counts;
# the mapping is the same function of the prefix (checked below).
TEST_PREFIX = "kibanacheck"


def test_data_view_title_is_the_stores_alias(objects):
    (view,) = _by_type(objects, "index-pattern")
    assert view["attributes"]["title"] == alias_name(ElasticsearchConfig().index_prefix)
    assert mappings()["properties"]["created_at"]["type"] == "date"


@pytest.fixture(scope="module")
def mentions_index(es_client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real index: the store's templates and alias, with a few mentions in it."""
    cfg = ElasticsearchConfig(index_prefix=TEST_PREFIX)
    result = setup_elasticsearch(es_client, cfg)
    spool = tmp_path_factory.mktemp("spool")
    with BulkWriter(es_client, cfg, spool_dir=spool, refresh=True) as writer:
        report = writer.write(_mentions())
    assert report.ok and report.indexed == len(_mentions()), report.summary()
    # Two monthly indices behind the alias: field_caps must agree across them.
    assert len(es_client.indices.get_alias(name=result.alias)) == 2
    yield result.alias


def test_every_used_field_exists_in_the_real_index_with_the_right_type(
    objects, es_client, mentions_index
):
    uses = field_uses(objects)
    caps = es_client.field_caps(index=mentions_index, fields=sorted(uses))["fields"]
    problems = []
    for field, use in sorted(uses.items()):
        if field not in caps:
            problems.append(f"{field}: not in the index (used by {use['by']})")
            continue
        types = {t for t in caps[field] if t != "unmapped"}
        if len(types) != 1:
            problems.append(f"{field}: mapped as {sorted(types)} across indices")
            continue
        (es_type,) = types
        cap = caps[field][es_type]
        if use["types"] is not None and es_type not in use["types"]:
            problems.append(
                f"{field}: {es_type}; its aggregations need one of {sorted(use['types'])} "
                f"(used by {use['by']})"
            )
        if use["aggregatable"] and not cap["aggregatable"]:
            problems.append(f"{field}: not aggregatable, but {use['by']} aggregate or sort on it")
        if es_type == "nested":
            continue  # a nested path is searched through its fields, checked on their own
        if not cap["searchable"]:
            problems.append(f"{field}: not searchable")
    assert not problems, "\n".join(problems)


def _aggs_for_layer(layer: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The Elasticsearch aggregation a Lens formBased layer asks for (enough of it to run).

    Like Kibana's esaggs: buckets nest in columnOrder, metrics sit under the innermost
    bucket, and a terms level ordered by a metric also carries that metric itself.
    """
    columns = layer["columns"]
    buckets = [cid for cid in layer["columnOrder"] if columns[cid]["isBucketed"]]
    metrics = {
        cid: {"max": {"field": col["sourceField"]}}
        for cid, col in columns.items()
        if not col["isBucketed"] and col["operationType"] == "max"
    }
    aggs: dict[str, Any] = dict(metrics)
    for cid in reversed(buckets):
        col = columns[cid]
        sub = dict(aggs)
        if col["operationType"] == "date_histogram":
            body: dict[str, Any] = {
                "date_histogram": {"field": col["sourceField"], "fixed_interval": "1h"}
            }
        else:
            order_by = col["params"]["orderBy"]
            if order_by["type"] == "alphabetical":
                order = {"_key": "asc"}
            elif columns[order_by["columnId"]]["operationType"] == "count":
                order = {"_count": "desc"}
            else:
                order = {order_by["columnId"]: "desc"}
                sub[order_by["columnId"]] = metrics[order_by["columnId"]]
            body = {
                "terms": {
                    "field": col["sourceField"],
                    "size": col["params"]["size"],
                    "order": order,
                }
            }
        if sub:
            body["aggs"] = sub
        aggs = {cid: body}
    return aggs, buckets


def test_lens_aggregations_run_on_the_real_index(objects, es_client, mentions_index):
    seen_keys: dict[str, set[str]] = {}
    for lens in _by_type(objects, "lens"):
        for layer in lens["attributes"]["state"]["datasourceStates"]["formBased"][
            "layers"
        ].values():
            aggs, buckets = _aggs_for_layer(layer)
            result = es_client.search(index=mentions_index, size=0, aggs=aggs)
            top = result["aggregations"][buckets[0]]["buckets"]
            assert top, f"{lens['id']}: no buckets from the indexed mentions"
            field = layer["columns"][buckets[0]]["sourceField"]
            seen_keys.setdefault(field, set()).update(
                str(b.get("key_as_string", b["key"])) for b in top
            )
    assert seen_keys["brand_sentiment_keys"] == {
        "Acme|negative", "Acme|positive", "Acme|uncertain",
        "Globex|negative", "Globex|neutral", "Globex|positive",
    }  # fmt: skip
    assert seen_keys["source_name"] == {"reddit", "hackernews", "mastodon", "news"}
    assert seen_keys["author"] >= {"alice", "carol"}


def test_top_authors_orders_by_reach(objects, es_client, mentions_index):
    (lens,) = [o for o in objects if o["id"] == kibana_build.LENS_TOP_AUTHORS]
    (layer,) = lens["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values()
    aggs, _ = _aggs_for_layer(layer)
    result = es_client.search(index=mentions_index, size=0, aggs=aggs)
    authors = [b["key"] for b in result["aggregations"]["col-author"]["buckets"]]
    assert authors[:2] == ["alice", "carol"]


def test_saved_search_queries_select_what_they_say(objects, es_client, mentions_index):
    # KQL `field : "value"` is a match_phrase, `field : *value` a wildcard on a keyword;
    # run them as such on the real index.
    by_id = {m.source_id: m.id for m in _mentions()}
    # m1 is negative but uncertain; r2 is positive but negative about Globex
    expected = {by_id["r1"]}
    brand_negative = {by_id["r1"], by_id["r2"]}
    for search in _by_type(objects, "search"):
        source = json.loads(search["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        query = source["query"]["query"]
        match = re.fullmatch(r'([\w.]+)\s*:\s*"([^"]*)"', query)
        wildcard = re.fullmatch(r'([\w.]+)\s*:\s*(\*[^\s"]+)', query)
        if match:
            es_query: dict[str, Any] = {"match_phrase": {match.group(1): match.group(2)}}
        elif wildcard:
            es_query = {"wildcard": {wildcard.group(1): wildcard.group(2)}}
        else:
            es_query = {"match_all": {}}
        assert match or wildcard or query == "", (
            f"{search['id']}: query {query!r} not understood by this test"
        )
        sort = [{field: {"order": direction}} for field, direction in search["attributes"]["sort"]]
        hits = es_client.search(index=mentions_index, query=es_query, sort=sort, size=50)["hits"][
            "hits"
        ]
        ids = {h["_id"] for h in hits}
        if search["id"] == kibana_build.SEARCH_NEGATIVE:
            assert ids == expected
        elif search["id"] == kibana_build.SEARCH_BRAND_NEGATIVE:
            assert ids == brand_negative
        else:
            assert len(ids) == len(_mentions())


def test_share_of_voice_counts_a_post_once_for_each_brand_it_names(
    objects, es_client, mentions_index
):
    (lens,) = [o for o in objects if o["id"] == kibana_build.LENS_SHARE_OF_VOICE]
    assert lens["attributes"]["state"]["visualization"]["preferredSeriesType"] == (
        "area_percentage_stacked"  # each interval's brands add up to 100 %
    )
    (layer,) = lens["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values()
    aggs, buckets = _aggs_for_layer(layer)
    assert [layer["columns"][b]["sourceField"] for b in buckets] == ["created_at", "brands"]
    result = es_client.search(index=mentions_index, size=0, aggs=aggs)
    per_hour = {
        t["key_as_string"]: {b["key"]: b["doc_count"] for b in t["col-brand"]["buckets"]}
        for t in result["aggregations"]["col-time"]["buckets"]
        if t["doc_count"]
    }
    shares = {
        hour: {brand: n / sum(counts.values()) for brand, n in counts.items()}
        for hour, counts in per_hour.items()
    }
    by_id = {m.source_id: m for m in _mentions()}
    two_brands = _hour(by_id["r2"].created_at)
    assert shares[two_brands] == {"Acme": 0.5, "Globex": 0.5}  # r2 names both
    assert shares[_hour(by_id["r1"].created_at)] == {"Acme": 1.0}
    totals: dict[str, int] = {}
    for counts in per_hour.values():
        for brand, n in counts.items():
            totals[brand] = totals.get(brand, 0) + n
    assert totals == {"Acme": 3, "Globex": 3}  # r1, r2, m1 / r2, h1, n1


def _hour(at: datetime) -> str:
    return at.replace(minute=0, second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def kibana_vega_request(url: dict[str, Any], start: datetime, end: datetime) -> dict[str, Any]:
    """The search body Kibana's Vega makes of `data.url` (its es_query_parser): the time
    range on %timefield% inside the dashboard context (empty filters here) as the
    query, `interval: {%autointerval%}` as a fixed interval (1h here), and
    `{%timefilter%: min|max}` as the range's bounds in epoch milliseconds."""
    body = json.loads(json.dumps(url["body"]))
    bounds = {"min": int(start.timestamp() * 1000), "max": int(end.timestamp() * 1000)}

    def inject(node: Any, key: str = "") -> Any:
        if isinstance(node, dict):
            if "%timefilter%" in node:
                return bounds[node["%timefilter%"]]
            out = {}
            for k, v in node.items():
                if k == "interval" and key == "date_histogram":
                    assert v == {"%autointerval%": True}, v
                    out["fixed_interval"] = "1h"
                else:
                    out[k] = inject(v, k)
            return out
        if isinstance(node, list):
            return [inject(v, key) for v in node]
        return node

    body = inject(body)
    assert url["%context%"] is True
    time_range = {url["%timefield%"]: {"gte": start.isoformat(), "lte": end.isoformat(),
                                        "format": "strict_date_optional_time"}}
    body["query"] = {"bool": {"must": [{"range": time_range}], "filter": [], "should": [],
                              "must_not": []}}
    return body


_DATUM_PATH = re.compile(r"datum((?:\.\w+)+)")


def _datum(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for key in path.strip(".").split("."):
        value = value[key]  # a KeyError: the spec reads what the response does not have
    return value


def _arithmetic(expr: str, row: dict[str, Any]) -> Any:
    # Only datum paths, + - * / and parentheses (checked by the caller): the paths are
    # replaced by their values and the rest is evaluated as Python arithmetic.
    values: list[Any] = []

    def value(match: re.Match[str]) -> str:
        values.append(_datum(row, match.group(1)))
        return f"_v[{len(values) - 1}]"

    code = _DATUM_PATH.sub(value, expr)
    return eval(code, {"__builtins__": {}}, {"_v": values})


def vega_lite_rows(spec: dict[str, Any], response: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows the spec's data and transforms make of a search response: its
    `format.property`, then `flatten`, `filter: "datum.x > 0"` and `calculate` of
    arithmetic over `datum.x` paths (the transforms the chart uses; any other fails
    the test)."""
    rows = _datum(response, spec["data"]["format"]["property"])
    for step in spec["transform"]:
        if "flatten" in step:
            (field,), (name,) = step["flatten"], step["as"]
            rows = [{**row, name: item} for row in rows for item in _datum(row, field)]
        elif "filter" in step:
            match = re.fullmatch(r"datum((?:\.\w+)+) > 0", step["filter"])
            assert match, f"filter {step['filter']!r} not understood by this test"
            rows = [row for row in rows if _datum(row, match.group(1)) > 0]
        elif "calculate" in step:
            expr = step["calculate"]
            assert re.fullmatch(r"(?:datum(?:\.\w+)+|[\s()+\-*/])+", expr), (
                f"calculate {expr!r} not understood by this test"
            )
            rows = [{**row, step["as"]: _arithmetic(expr, row)} for row in rows]
        else:
            pytest.fail(f"transform {step} not understood by this test")
    return rows


def test_net_sentiment_per_brand_runs_on_the_real_index_by_each_brands_own_sentiment(
    objects, es_client, mentions_index
):
    (vis,) = _by_type(objects, "visualization")
    spec = vega_spec(vis)
    body = kibana_vega_request(
        spec["data"]["url"], NOW - timedelta(days=41), NOW + timedelta(hours=1)
    )
    response = es_client.search(index=mentions_index, **body).body
    rows = vega_lite_rows(spec, response)
    encoding = spec["encoding"]
    assert all(
        encoding[channel]["field"] in row for row in rows for channel in ("x", "y", "color")
    )
    got = {
        (datetime.fromtimestamp(row["key"] / 1000, UTC), row["Brand"]): row["Net sentiment"]
        for row in rows
    }
    by_id = {m.source_id: m for m in _mentions()}

    def hour(source_id: str) -> datetime:
        return by_id[source_id].created_at.replace(minute=0, second=0)

    assert got == {
        (hour("r1"), "Acme"): -1.0,  # alice: negative
        # bob praises Acme and attacks Globex: +1 for Acme, -1 for Globex, not the
        # post's positive label for both
        (hour("r2"), "Acme"): 1.0,
        (hour("r2"), "Globex"): -1.0,
        (hour("h1"), "Globex"): 0.0,  # neutral counts in the denominator
        (hour("n1"), "Globex"): 1.0,  # in the other monthly index
        # m1 (Acme, uncertain) has no value: no confident result in its hour
    }
    hours = response["aggregations"]["time"]["buckets"]
    assert len(hours) >= 41 * 24  # every hour of the range, quiet ones too (extended_bounds)
