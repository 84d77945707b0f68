"""Generate `kibana/brandpulse.ndjson`, the BrandPulse saved objects for Kibana 8.9+ / 9.x.

Run `python -m kibana.build` after editing this file and commit both; the test suite
fails when the committed NDJSON differs from what this script produces
(`python -m kibana.build --check` does the same comparison).

The output has the shape of a real Kibana saved-objects export: one object per line
with `type`, `id`, `attributes`, `references`, `coreMigrationVersion` and
`typeMigrationVersion`, JSON-in-a-string attributes where Kibana stores them that way
(`panelsJSON`, `optionsJSON`, `kibanaSavedObjectMeta.searchSourceJSON`, the data
view's `fields`/`fieldFormatMap`/...), and the export summary as the last line.

Ids are readable constants instead of Kibana's random UUIDs: `overwrite=true` on
import then replaces the previous version of each object instead of piling up copies,
and a diff of the NDJSON says which object changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kibana import NDJSON_PATH

# The alias the store writes behind; the data view follows it across monthly indices.
INDEX_ALIAS = "brandpulse-mentions"
DATA_VIEW_ID = "brandpulse-mentions"
TIME_FIELD = "created_at"

# Migration versions. Kibana refuses to import an object whose typeMigrationVersion is
# newer than the newest migration it knows for that type, and migrates older ones up.
# So these are the lowest versions whose document shape we emit:
# - coreMigrationVersion 8.8.0: the first core version using typeMigrationVersion.
# - lens 8.9.0: the last classic Lens migration (the `formBased` datasource key
#   dates from 8.6.0).
# - dashboard 8.9.0: dashboards embed Lens migrations, so the same floor.
# - index-pattern 7.11.0 / search 7.9.3 / visualization 8.0.0: what Kibana's own sample
#   data ships today.
# Net effect: the file imports into Kibana 8.9 and newer, including 9.x.
CORE_MIGRATION_VERSION = "8.8.0"
TYPE_MIGRATION_VERSION = {
    "index-pattern": "7.11.0",
    "search": "7.9.3",
    "lens": "8.9.0",
    "dashboard": "8.9.0",
    # the Vega chart: what Kibana's own sample Vega map ships (logs sample data)
    "visualization": "8.0.0",
}
# The embeddable version recorded on each dashboard panel.
PANEL_VERSION = "8.9.0"

SEARCH_INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"
KUERY_ALL = {"query": "", "language": "kuery"}
# Confident results only: under nlp.uncertain_below a result is counted as "uncertain".
NEGATIVE_KQL = 'sentiment_bucket : "negative"'
# Negative about at least one of the post's brands (each brand's own sentiment).
BRAND_NEGATIVE_KQL = "brand_sentiment_keys : *|negative"


def _json(value: Any) -> str:
    # Compact and key-sorted: Kibana does not care, but the file stays byte-stable.
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _saved_object(
    obj_type: str, obj_id: str, attributes: dict[str, Any], references: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "attributes": attributes,
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "id": obj_id,
        "references": references,
        "type": obj_type,
        "typeMigrationVersion": TYPE_MIGRATION_VERSION[obj_type],
    }


# --- data view ---------------------------------------------------------------------


def data_view() -> dict[str, Any]:
    field_formats = {
        # Probabilities are stored as 0..1 floats; analysts read them as percentages.
        "sentiment.negative": {"id": "percent", "params": {}},
        "sentiment.neutral": {"id": "percent", "params": {}},
        "sentiment.positive": {"id": "percent", "params": {}},
        "sentiment.confidence": {"id": "percent", "params": {}},
        # Makes the permalink clickable in Discover and in the saved-search panel.
        "url": {"id": "url", "params": {"type": "a", "urlTemplate": None, "labelTemplate": None}},
    }
    attributes = {
        "fieldAttrs": _json({}),
        "fieldFormatMap": _json(field_formats),
        # Empty: Kibana 8+ reads the field list from _field_caps at runtime.
        "fields": "[]",
        "name": "BrandPulse mentions",
        "runtimeFieldMap": _json({}),
        "sourceFilters": "[]",
        "timeFieldName": TIME_FIELD,
        "title": INDEX_ALIAS,
        "typeMeta": _json({}),
    }
    return _saved_object("index-pattern", DATA_VIEW_ID, attributes, [])


# --- saved searches ----------------------------------------------------------------


def _saved_search(
    obj_id: str,
    title: str,
    description: str,
    *,
    query: str,
    columns: list[str],
    sort: list[list[str]],
) -> dict[str, Any]:
    search_source = {
        "filter": [],
        "highlightAll": True,
        "indexRefName": SEARCH_INDEX_REF,
        "query": {"language": "kuery", "query": query},
        "version": True,
    }
    attributes = {
        "columns": columns,
        "description": description,
        "grid": {},
        "hideChart": False,
        "isTextBasedQuery": False,
        "kibanaSavedObjectMeta": {"searchSourceJSON": _json(search_source)},
        "sort": sort,
        "title": title,
    }
    references = [{"id": DATA_VIEW_ID, "name": SEARCH_INDEX_REF, "type": "index-pattern"}]
    return _saved_object("search", obj_id, attributes, references)


SEARCH_NEGATIVE = "brandpulse-search-negative-mentions"
SEARCH_BY_BRAND = "brandpulse-search-mentions-by-brand"
SEARCH_BY_SOURCE = "brandpulse-search-mentions-by-source"
SEARCH_BRAND_NEGATIVE = "brandpulse-search-negative-about-a-brand"


def saved_searches() -> list[dict[str, Any]]:
    newest_first = [TIME_FIELD, "desc"]
    return [
        _saved_search(
            SEARCH_NEGATIVE,
            "BrandPulse — negative mentions",
            "Mentions the sentiment model labelled negative with a confidence at or above "
            "nlp.uncertain_below, newest first.",
            query=NEGATIVE_KQL,
            columns=["brands", "source_name", "author", "title", "sentiment.negative",
                     "sentiment.confidence", "url"],
            sort=[newest_first],
        ),
        _saved_search(
            SEARCH_BRAND_NEGATIVE,
            "BrandPulse — negative about a brand",
            "Mentions negative towards at least one of their brands, judged on the clauses "
            "that name it (brand_sentiment_keys is brand|sentiment), newest first. Replace "
            "`*` by a brand name for one brand: brand_sentiment_keys : \"Acme|negative\".",
            query=BRAND_NEGATIVE_KQL,
            columns=["brand_sentiment_keys", "source_name", "author", "title", "url"],
            sort=[newest_first],
        ),
        _saved_search(
            SEARCH_BY_BRAND,
            "BrandPulse — mentions by brand",
            "All mentions sorted by brand, then newest first. Filter on `brands` to focus on one.",
            query="",
            columns=["brands", "brand_sentiment_keys", "source_name", "author", "title", "url"],
            sort=[["brands", "asc"], newest_first],
        ),
        _saved_search(
            SEARCH_BY_SOURCE,
            "BrandPulse — mentions by source",
            "All mentions sorted by source type and configured source, then newest first.",
            query="",
            columns=["source", "source_name", "brands", "sentiment_bucket", "title", "url"],
            sort=[["source", "asc"], ["source_name", "asc"], newest_first],
        ),
    ]


# --- Lens visualisations -----------------------------------------------------------


def _count_column(label: str) -> dict[str, Any]:
    return {
        "customLabel": True,
        "dataType": "number",
        "isBucketed": False,
        "label": label,
        "operationType": "count",
        "params": {"emptyAsNull": True},
        "scale": "ratio",
        "sourceField": "___records___",
    }


def _terms_column(
    field: str, label: str, *, size: int, order_by: dict[str, Any], other_bucket: bool
) -> dict[str, Any]:
    return {
        "customLabel": True,
        "dataType": "string",
        "isBucketed": True,
        "label": label,
        "operationType": "terms",
        "params": {
            "exclude": [],
            "excludeIsRegex": False,
            "include": [],
            "includeIsRegex": False,
            "missingBucket": False,
            "orderBy": order_by,
            "orderDirection": "asc" if order_by["type"] == "alphabetical" else "desc",
            "otherBucket": other_bucket,
            "parentFormat": {"id": "terms"},
            "size": size,
        },
        "scale": "ordinal",
        "sourceField": field,
    }


def _date_histogram_column(field: str) -> dict[str, Any]:
    return {
        "dataType": "date",
        "isBucketed": True,
        "label": field,
        "operationType": "date_histogram",
        "params": {"dropPartials": False, "includeEmptyRows": True, "interval": "auto"},
        "scale": "interval",
        "sourceField": field,
    }


def _max_column(field: str, label: str) -> dict[str, Any]:
    return {
        "customLabel": True,
        "dataType": "number",
        "isBucketed": False,
        "label": label,
        "operationType": "max",
        "params": {"emptyAsNull": True},
        "scale": "ratio",
        "sourceField": field,
    }


# The three labels and "uncertain" (confidence under nlp.uncertain_below), ordered
# alphabetically, so their colours stay in the same order in every chart that splits by
# sentiment.
SENTIMENT_SPLIT = _terms_column(
    "sentiment_bucket",
    "Sentiment",
    size=4,
    order_by={"type": "alphabetical", "fallback": False},
    other_bucket=False,
)


def _lens(
    obj_id: str,
    title: str,
    description: str,
    *,
    visualization_type: str,
    layer_id: str,
    columns: dict[str, dict[str, Any]],
    visualization: dict[str, Any],
) -> dict[str, Any]:
    state = {
        "adHocDataViews": {},
        "datasourceStates": {
            "formBased": {
                "layers": {
                    layer_id: {
                        "columnOrder": list(columns),
                        "columns": columns,
                        "incompleteColumns": {},
                        "sampling": 1,
                    }
                }
            }
        },
        "filters": [],
        "internalReferences": [],
        "query": KUERY_ALL,
        "visualization": visualization,
    }
    attributes = {
        "description": description,
        "state": state,
        "title": title,
        "visualizationType": visualization_type,
    }
    references = [
        {
            "id": DATA_VIEW_ID,
            "name": f"indexpattern-datasource-layer-{layer_id}",
            "type": "index-pattern",
        }
    ]
    return _saved_object("lens", obj_id, attributes, references)


def _xy_visualization(
    *, layer_id: str, series_type: str, x: str, y: str, split: str | None
) -> dict[str, Any]:
    visible = {"x": True, "yLeft": True, "yRight": True}
    return {
        "axisTitlesVisibilitySettings": visible,
        "fittingFunction": "None",
        "gridlinesVisibilitySettings": visible,
        "labelsOrientation": {"x": 0, "yLeft": 0, "yRight": 0},
        "layers": [
            {
                "accessors": [y],
                "layerId": layer_id,
                "layerType": "data",
                "palette": {"name": "default", "type": "palette"},
                "seriesType": series_type,
                **({"splitAccessor": split} if split else {}),
                "xAccessor": x,
            }
        ],
        "legend": {"isVisible": True, "position": "right"},
        "preferredSeriesType": series_type,
        "tickLabelsVisibilitySettings": visible,
        "valueLabels": "hide",
        "yLeftExtent": {"mode": "full"},
    }


LENS_OVER_TIME = "brandpulse-lens-mentions-over-time"
LENS_BRAND_SENTIMENT = "brandpulse-lens-sentiment-per-brand"
LENS_TOP_SOURCES = "brandpulse-lens-top-sources"
LENS_TOP_AUTHORS = "brandpulse-lens-top-authors-by-reach"
LENS_SHARE_OF_VOICE = "brandpulse-lens-share-of-voice"
VEGA_NET_SENTIMENT = "brandpulse-vega-net-sentiment-per-brand"


def mentions_over_time() -> dict[str, Any]:
    layer = "layer-over-time"
    columns = {
        "col-time": _date_histogram_column(TIME_FIELD),
        "col-count": _count_column("Mentions"),
        "col-sentiment": SENTIMENT_SPLIT,
    }
    return _lens(
        LENS_OVER_TIME,
        "Mentions over time by sentiment",
        "Mention volume per interval, stacked by sentiment label; low-confidence results "
        "are stacked apart as 'uncertain'.",
        visualization_type="lnsXY",
        layer_id=layer,
        columns=columns,
        visualization=_xy_visualization(
            layer_id=layer,
            series_type="bar_stacked",
            x="col-time",
            y="col-count",
            split="col-sentiment",
        ),
    )


def sentiment_per_brand() -> dict[str, Any]:
    # One bar per brand and sentiment ("Acme|negative", "Acme|neutral", ...), from each
    # brand's own sentiment: a post praising Acme and attacking Globex counts once in
    # "Acme|positive" and once in "Globex|negative". The flat keyword is used because
    # Lens cannot aggregate the nested `brand_sentiments`; sorted by key, a brand's bars
    # sit together. "|uncertain" holds the results under nlp.uncertain_below.
    layer = "layer-brand-sentiment"
    columns = {
        "col-brand-sentiment": _terms_column(
            "brand_sentiment_keys",
            "Brand | sentiment",
            size=100,
            order_by={"type": "alphabetical", "fallback": False},
            other_bucket=True,
        ),
        "col-count": _count_column("Mentions"),
    }
    return _lens(
        LENS_BRAND_SENTIMENT,
        "Sentiment per brand",
        "Mentions per brand and the brand's own sentiment (judged on the clauses that name "
        "it); 'uncertain' holds low-confidence results, counted apart from the labels.",
        visualization_type="lnsXY",
        layer_id=layer,
        columns=columns,
        visualization=_xy_visualization(
            layer_id=layer,
            series_type="bar_horizontal",
            x="col-brand-sentiment",
            y="col-count",
            split=None,
        ),
    )


def share_of_voice() -> dict[str, Any]:
    # Each brand's mentions as a share of all brands' mentions per interval (a 100 %
    # stacked area), as the report counts share of voice (docs/reports.md): a post
    # naming two brands counts once for each, since `brands` holds both.
    layer = "layer-share-of-voice"
    columns = {
        "col-time": _date_histogram_column(TIME_FIELD),
        "col-brand": _terms_column(
            "brands",
            "Brand",
            size=10,
            order_by={"type": "column", "columnId": "col-count"},
            other_bucket=True,
        ),
        "col-count": _count_column("Mentions"),
    }
    return _lens(
        LENS_SHARE_OF_VOICE,
        "Share of voice",
        "Each brand's mentions as a share of all the brands' mentions per interval; a post "
        "naming two brands counts once for each. Top 10 brands plus 'Other'.",
        visualization_type="lnsXY",
        layer_id=layer,
        columns=columns,
        visualization=_xy_visualization(
            layer_id=layer,
            series_type="area_percentage_stacked",
            x="col-time",
            y="col-count",
            split="col-brand",
        ),
    )


def top_sources() -> dict[str, Any]:
    layer = "layer-sources"
    columns = {
        "col-source": _terms_column(
            "source_name",
            "Source",
            size=10,
            order_by={"type": "column", "columnId": "col-count"},
            other_bucket=True,
        ),
        "col-count": _count_column("Mentions"),
    }
    visualization = {
        "layers": [
            {
                "categoryDisplay": "default",
                "layerId": layer,
                "layerType": "data",
                "legendDisplay": "default",
                "metrics": ["col-count"],
                "nestedLegend": False,
                "numberDisplay": "percent",
                "primaryGroups": ["col-source"],
            }
        ],
        "shape": "donut",
    }
    return _lens(
        LENS_TOP_SOURCES,
        "Top sources",
        "The configured sources that produced the most mentions.",
        visualization_type="lnsPie",
        layer_id=layer,
        columns=columns,
        visualization=visualization,
    )


def top_authors_by_reach() -> dict[str, Any]:
    layer = "layer-authors"
    # The source sits next to the author: the same handle on two networks is two people.
    columns = {
        "col-author": _terms_column(
            "author",
            "Author",
            size=20,
            order_by={"type": "column", "columnId": "col-reach"},
            other_bucket=False,
        ),
        "col-source": _terms_column(
            "source",
            "Source",
            size=1,
            order_by={"type": "column", "columnId": "col-count"},
            other_bucket=False,
        ),
        "col-reach": _max_column("author_reach", "Reach"),
        "col-count": _count_column("Mentions"),
    }
    visualization = {
        "columns": [{"columnId": column_id} for column_id in columns],
        "layerId": layer,
        "layerType": "data",
        "sorting": {"columnId": "col-reach", "direction": "desc"},
    }
    return _lens(
        LENS_TOP_AUTHORS,
        "Top authors by reach",
        "Authors with the largest audience (followers, karma, ...) who mentioned a brand.",
        visualization_type="lnsDatatable",
        layer_id=layer,
        columns=columns,
        visualization=visualization,
    )


# --- Vega: net sentiment per brand ------------------------------------------------


def _confident(label: str) -> dict[str, Any]:
    # A brand's own result of `label`, not under nlp.uncertain_below: what the reports
    # and the alerts count as that label (store.queries.brand_sentiment_filter).
    return {
        "filter": {
            "bool": {
                "filter": [{"term": {"brand_sentiments.label": label}}],
                "must_not": [{"term": {"brand_sentiments.uncertain": True}}],
            }
        }
    }


# Per interval and brand: the brand's own confident positive, negative and labelled
# results, from which the chart computes (positive - negative) / (positive + neutral +
# negative). Lens cannot: a Lens formula is evaluated per bucket of one field, and the
# positive results *for the brand of the bucket* need the brand and the label of one
# nested object; a `nested` aggregation on `brand_sentiments` pairs them. The ratio is
# computed in the chart, not by a `bucket_script`, so that no script language is needed
# (docs/elasticsearch.md: nothing needs painless).
NET_SENTIMENT_AGGS: dict[str, Any] = {
    "time": {
        "date_histogram": {
            "field": TIME_FIELD,
            "interval": {"%autointerval%": True},
            "extended_bounds": {"min": {"%timefilter%": "min"}, "max": {"%timefilter%": "max"}},
            "min_doc_count": 0,
        },
        "aggs": {
            "per_brand": {
                "nested": {"path": "brand_sentiments"},
                "aggs": {
                    "brands": {
                        "terms": {"field": "brand_sentiments.brand", "size": 20},
                        "aggs": {
                            "positive": _confident("positive"),
                            "negative": _confident("negative"),
                            "scored": {
                                "filter": {
                                    "bool": {
                                        "filter": [
                                            {
                                                "terms": {
                                                    "brand_sentiments.label": [
                                                        "negative",
                                                        "neutral",
                                                        "positive",
                                                    ]
                                                }
                                            }
                                        ],
                                        "must_not": [
                                            {"term": {"brand_sentiments.uncertain": True}}
                                        ],
                                    }
                                }
                            },
                        },
                    }
                },
            }
        },
    }
}


def net_sentiment_spec() -> dict[str, Any]:
    """The Vega-Lite spec: the aggregation above, one line per brand, from -100 % to +100 %."""
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Net sentiment per brand",
        "data": {
            "url": {
                # the dashboard's time range, query and filters apply
                "%context%": True,
                "%timefield%": TIME_FIELD,
                "index": INDEX_ALIAS,
                "body": {"size": 0, "aggs": NET_SENTIMENT_AGGS},
            },
            "format": {"property": "aggregations.time.buckets"},
        },
        "transform": [
            # one row per interval and brand; intervals with no brand drop out
            {"flatten": ["per_brand.brands.buckets"], "as": ["brand"]},
            # a brand whose results in the interval are all uncertain has no value
            {"filter": "datum.brand.scored.doc_count > 0"},
            {"calculate": "datum.brand.key", "as": "Brand"},
            {
                "calculate": "(datum.brand.positive.doc_count - datum.brand.negative.doc_count)"
                " / datum.brand.scored.doc_count",
                "as": "Net sentiment",
            },
            {"calculate": "datum.brand.scored.doc_count", "as": "Confident results"},
        ],
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {
            "x": {"field": "key", "type": "temporal", "title": None},
            "y": {
                "field": "Net sentiment",
                "type": "quantitative",
                "scale": {"domain": [-1, 1]},
                "axis": {"format": "+.0%", "title": "(positive - negative) / confident"},
            },
            "color": {"field": "Brand", "type": "nominal"},
        },
    }


def net_sentiment_per_brand() -> dict[str, Any]:
    title = "Net sentiment per brand"
    # JSON is valid HJSON, which Kibana's Vega editor reads; indented to be editable there.
    spec = json.dumps(net_sentiment_spec(), indent=2, ensure_ascii=False)
    vis_state = {"aggs": [], "params": {"spec": spec}, "title": title, "type": "vega"}
    attributes = {
        "description": "(positive - negative) / (positive + neutral + negative) per brand and "
        "interval, from each brand's own confident sentiment (a post praising Acme and "
        "attacking Globex is positive for Acme and negative for Globex).",
        "kibanaSavedObjectMeta": {"searchSourceJSON": _json({"filter": [], "query": KUERY_ALL})},
        "title": title,
        "uiStateJSON": "{}",
        "version": 1,
        "visState": _json(vis_state),
    }
    return _saved_object("visualization", VEGA_NET_SENTIMENT, attributes, [])


def visualisations() -> list[dict[str, Any]]:
    return [
        mentions_over_time(),
        sentiment_per_brand(),
        top_sources(),
        top_authors_by_reach(),
        share_of_voice(),
        net_sentiment_per_brand(),
    ]


# --- dashboard ---------------------------------------------------------------------

DASHBOARD_ID = "brandpulse-dashboard"
DASHBOARD_TITLE = "BrandPulse — brand sentiment"

# (panel type, saved object id, x, y, w, h) on Kibana's 48-column grid.
PANEL_LAYOUT: list[tuple[str, str, int, int, int, int]] = [
    ("lens", LENS_OVER_TIME, 0, 0, 48, 14),
    ("lens", LENS_SHARE_OF_VOICE, 0, 14, 24, 16),
    ("visualization", VEGA_NET_SENTIMENT, 24, 14, 24, 16),
    ("lens", LENS_BRAND_SENTIMENT, 0, 30, 24, 16),
    ("lens", LENS_TOP_SOURCES, 24, 30, 24, 16),
    ("lens", LENS_TOP_AUTHORS, 0, 46, 24, 16),
    ("search", SEARCH_BRAND_NEGATIVE, 24, 46, 24, 16),
]


def dashboard() -> dict[str, Any]:
    panels = []
    references = []
    for index, (panel_type, object_id, x, y, w, h) in enumerate(PANEL_LAYOUT, start=1):
        panel_index = str(index)
        ref_name = f"panel_{panel_index}"
        panels.append(
            {
                "embeddableConfig": {"enhancements": {}},
                "gridData": {"h": h, "i": panel_index, "w": w, "x": x, "y": y},
                "panelIndex": panel_index,
                "panelRefName": ref_name,
                "type": panel_type,
                "version": PANEL_VERSION,
            }
        )
        # Kibana 8.x+ exports name panel references "<panelIndex>:panel_<panelIndex>"
        # and matches them against the panel's panelRefName after stripping the prefix.
        references.append(
            {"id": object_id, "name": f"{panel_index}:{ref_name}", "type": panel_type}
        )
    attributes = {
        "description": "Mention volume, sentiment and reach for the monitored brands.",
        "kibanaSavedObjectMeta": {"searchSourceJSON": _json({"filter": [], "query": KUERY_ALL})},
        "optionsJSON": _json(
            {
                "hidePanelTitles": False,
                "syncColors": True,
                "syncCursor": True,
                "syncTooltips": False,
                "useMargins": True,
            }
        ),
        "panelsJSON": _json(panels),
        # Spike alerts look at hours to days; a week gives the baseline next to the spike.
        "refreshInterval": {"pause": False, "value": 300000},
        "timeFrom": "now-7d",
        "timeRestore": True,
        "timeTo": "now",
        "title": DASHBOARD_TITLE,
        "version": 1,
    }
    return _saved_object("dashboard", DASHBOARD_ID, attributes, references)


# --- output ------------------------------------------------------------------------


def saved_objects() -> list[dict[str, Any]]:
    """All objects, each after the objects it references (the order an import wants)."""
    return [data_view(), *saved_searches(), *visualisations(), dashboard()]


def render() -> str:
    objects = saved_objects()
    summary = {
        "excludedObjects": [],
        "excludedObjectsCount": 0,
        "exportedCount": len(objects),
        "missingRefCount": 0,
        "missingReferences": [],
    }
    return "".join(_json(line) + "\n" for line in [*objects, summary])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=NDJSON_PATH)
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if the file on disk differs from what this script generates",
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run python -m kibana.build", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {len(text.splitlines()) - 1} saved objects to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
