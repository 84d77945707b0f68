"""Retention: delete or close mention indices whose whole period is past the cutoff.

``elasticsearch.retention`` (off unless given) says how long mentions are kept
(``keep``: calendar months or a duration) and what happens to older indices
(``action``: ``delete``, or ``close``: kept on disk, no heap, reopenable).
``apply_retention`` is run by ``python scheduler.py retention [--dry-run]`` and once
a day by the daemon.

Contract:

- the indices are listed by name through the real API (``_cat/indices`` with the
  pattern ``<prefix>-mentions-*``, closed ones included); each name is parsed back
  into its period by :func:`index_period_of`, which reads both namings
  (``YYYY.MM`` and ``YYYY.MM.DD``, see ``store.setup.index_for``), so a cluster
  that switched ``index_period`` ages out both;
- an index is acted on only when its period *ended* at or before the cutoff
  (``now - keep``): a month that still holds one kept day is kept whole;
- a name that matches the pattern but not our naming (``brandpulse-mentions-old``,
  another prefix that happens to start the same, a restored ``...-2026.01-restored``)
  is never touched, only reported;
- ``close`` first takes the index out of the alias, then closes it: a search of
  an alias that includes a closed index fails, and readers, alerts and Kibana
  all read the alias;
- the hourly counts index (``<prefix>-counts-hourly``, ``store.rollup``) loses, in
  the same run, every (brand, hour) document whose hour *ended* at or before the same
  cutoff (a range query on ``hour``, deleted by search and bulk delete), whatever
  ``action`` is: the counts of an hour whose mentions are gone, or in a closed index
  out of the alias, could no longer be rebuilt or checked against the raw mentions,
  and an alert or a rollup-built figure must not count what the raw mentions no
  longer hold. Finer
  than the mention indices (an hour, not a month): with monthly indices the raw
  mentions of a month that still holds one kept day stay readable while their
  hours before the cutoff are gone from the rollup, which is why ``alerts.history``
  must stay within ``keep``. No counts index (``counts_source: raw`` and never
  rebuilt): nothing to do, nothing created;
- the time is injected (``now``), so a test can say exactly which indices go.

Elasticsearch's own ILM would do the same on clusters that have it; the local
test node does not (``GET _ilm/status`` is unknown to it), so this job is the
path that is tested. docs/elasticsearch.md gives the ILM policy for such clusters.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from elasticsearch import ApiError, Elasticsearch

from brandpulse.config import ElasticsearchConfig, RetentionConfig
from store.rollup import HOUR, counts_index_name
from store.setup import alias_name, index_pattern

log = logging.getLogger(__name__)

# indices per delete/close request: names go into the URL, which has a length limit
_CHUNK = 50


def index_period_of(name: str, prefix: str = "brandpulse") -> tuple[datetime, datetime] | None:
    """(start, end) in UTC of the month or day a mention index named by
    ``store.setup.index_for`` covers, end exclusive; None for any other name,
    including impossible dates (``...-2026.13``)."""
    match = re.fullmatch(
        re.escape(alias_name(prefix)) + r"-(\d{4})\.(\d{2})(?:\.(\d{2}))?", name
    )
    if match is None:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    try:
        if match.group(3) is None:
            start = datetime(year, month, 1, tzinfo=UTC)
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        else:
            start = datetime(year, month, int(match.group(3)), tzinfo=UTC)
            end = datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=UTC)
    except ValueError:  # month 13, day 32, ...
        return None
    return start, end


@dataclass
class RetentionResult:
    """What one run did (or, with ``dry_run``, would do)."""

    cutoff: datetime
    action: Literal["delete", "close"]
    dry_run: bool
    acted: list[str] = field(default_factory=list)  # deleted or closed, oldest first
    kept: list[str] = field(default_factory=list)  # ours, period not over by the cutoff
    already_closed: list[str] = field(default_factory=list)  # action close: nothing to do
    ignored: list[str] = field(default_factory=list)  # match the pattern, not our naming
    # the counts index (None: it does not exist) and its (brand, hour) documents whose
    # hour ended by the cutoff: deleted (or, with dry_run, that would be), any action
    rollup_index: str | None = None
    rollup_hours: int = 0

    def lines(self) -> list[str]:
        verb = {"delete": "deleted", "close": "closed"}[self.action]
        if self.dry_run:
            verb = f"would be {verb}"
        out = [f"cutoff {self.cutoff:%Y-%m-%d %H:%M} UTC: indices whose period ended by then are {verb}"]
        out += [f"  {verb}: {name}" for name in self.acted]
        out += [f"  already closed: {name}" for name in self.already_closed]
        out.append(f"  kept: {len(self.kept)} index(es)" + (f", newest {self.kept[-1]}" if self.kept else ""))
        out += [f"  not ours, untouched: {name}" for name in self.ignored]
        if self.rollup_index is not None:
            gone = "would be deleted" if self.dry_run else "deleted"
            out.append(f"  {self.rollup_index}: {self.rollup_hours} (brand, hour) document(s) of "
                       f"hours ended by the cutoff {gone}")  # fmt: skip
        return out


def plan_retention(
    names: Iterable[str], prefix: str, cutoff: datetime
) -> tuple[list[str], list[str], list[str]]:
    """(past the cutoff, kept, not our naming), each sorted by period then name."""
    old: list[tuple[datetime, str]] = []
    kept: list[tuple[datetime, str]] = []
    ignored: list[str] = []
    for name in names:
        period = index_period_of(name, prefix)
        if period is None:
            ignored.append(name)
        elif period[1] <= cutoff:
            old.append((period[0], name))
        else:
            kept.append((period[0], name))
    return [n for _, n in sorted(old)], [n for _, n in sorted(kept)], sorted(ignored)


def list_mention_indices(client: Elasticsearch, prefix: str) -> dict[str, str]:
    """Every index matching ``<prefix>-mentions-*``, open or closed: name -> status."""
    rows = client.cat.indices(
        index=index_pattern(prefix), format="json", h="index,status", expand_wildcards="all"
    )
    return {str(r["index"]): str(r.get("status") or "open") for r in rows}


def apply_retention(
    client: Elasticsearch,
    cfg: ElasticsearchConfig,
    now: datetime,
    *,
    dry_run: bool = False,
    retention: RetentionConfig | None = None,
) -> RetentionResult:
    """Delete or close (``cfg.retention.action``) the mention indices whose period
    ended at or before ``now - keep``, and delete the counts index's documents of the
    hours that ended by then (`expire_rollup_hours`, whatever the action); with
    ``dry_run``, only say which and how many.

    Raises ValueError when no retention is configured (nothing would say how long).
    """
    policy = retention or cfg.retention
    if policy is None:
        raise ValueError("elasticsearch.retention is not set: no retention to apply")
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got naive {now!r}")
    cutoff = policy.cutoff(now.astimezone(UTC))
    status = list_mention_indices(client, cfg.index_prefix)
    old, kept, ignored = plan_retention(status, cfg.index_prefix, cutoff)
    result = RetentionResult(cutoff, policy.action, dry_run, kept=kept, ignored=ignored)
    if policy.action == "close":
        result.already_closed = [n for n in old if status[n] == "close"]
        old = [n for n in old if status[n] != "close"]
    result.acted = old
    result.rollup_index, result.rollup_hours = expire_rollup_hours(
        client, cfg.index_prefix, cutoff, dry_run=dry_run
    )
    if dry_run or not old:
        return result
    alias = alias_name(cfg.index_prefix)
    for i in range(0, len(old), _CHUNK):
        chunk = old[i : i + _CHUNK]
        # ignore_unavailable: another process (a second daemon, a manual run) may
        # have removed one meanwhile; the outcome is the same
        if policy.action == "delete":
            client.indices.delete(index=",".join(chunk), ignore_unavailable=True)
        else:
            # out of the alias first: a search of an alias with a closed member fails
            # (index_closed_exception), and every reader searches the alias
            client.options(ignore_status=404).indices.update_aliases(
                actions=[{"remove": {"index": n, "alias": alias, "must_exist": False}} for n in chunk]
            )
            client.indices.close(index=",".join(chunk), ignore_unavailable=True)
        log.info("retention: %s %s", policy.action, ", ".join(chunk))
    return result


def expire_rollup_hours(
    client: Elasticsearch, prefix: str, cutoff: datetime, *, dry_run: bool = False, batch: int = 1000
) -> tuple[str | None, int]:
    """Delete from ``<prefix>-counts-hourly`` the documents whose hour ended at or
    before `cutoff` (``hour + 1h <= cutoff``); (the index, how many were deleted), or
    with `dry_run` how many would be (counted, nothing deleted); (None, 0) when there is
    no counts index, which is left absent (the rollup is built only once used).

    Search and bulk delete, `batch` ids at a time, rather than ``_delete_by_query``,
    which needs the reindex module that not every cluster (nor the test node) has
    (as `alerts.state.AlertStateStore.prune`). An hour a concurrent recompute rewrites
    meanwhile (a late mention of an old hour) is deleted all the same, or, written
    after the delete, by the next run. Refreshed, so a reader right after sees the
    hours gone. Raises RuntimeError naming the index and the document when a delete
    is refused."""
    index = counts_index_name(prefix)
    if not client.indices.exists(index=index):
        return None, 0
    query = {"range": {"hour": {"lte": (cutoff - HOUR).astimezone(UTC).isoformat(),
                                "format": "strict_date_optional_time"}}}  # fmt: skip
    client.indices.refresh(index=index)
    if dry_run:
        return index, int(client.count(index=index, query=query)["count"])
    deleted = 0
    while True:
        hits = client.search(index=index, query=query, size=batch, source=False)["hits"]["hits"]
        if not hits:
            break
        resp = client.bulk(operations=[{"delete": {"_index": index, "_id": h["_id"]}} for h in hits],
                           refresh=True)  # fmt: skip
        for item in resp["items"]:
            result = item["delete"]
            status = int(result.get("status", 0))
            if status == 404:  # another run deleted it meanwhile
                continue
            if status >= 300:
                raise RuntimeError(f"retention of {index}: delete of {result.get('_id')} failed: "
                                   f"HTTP {status}: {result.get('error')}")  # fmt: skip
            deleted += 1
    if deleted:
        log.info("retention: deleted %d document(s) of hours ended by %s from %s",
                 deleted, cutoff.isoformat(), index)  # fmt: skip
    return index, deleted


def ilm_available(client: Elasticsearch) -> bool:
    """Whether the cluster answers ``GET _ilm/status`` (ILM, x-pack): there an ILM
    policy can do this job instead (docs/elasticsearch.md, Retention)."""
    try:
        client.perform_request("GET", "/_ilm/status", headers={"accept": "application/json"})
    except ApiError:
        return False
    return True
