"""Alert state in Elasticsearch: one index `<prefix>-alert-state` holding two kinds of doc.

* `brand:<name>` - per brand: the alert part of the detector's state (open episode,
  cooldown; its history is rebuilt from mention counts at every check), the high-reach
  rule's memory of alerted mentions, the last interval fed, and the open wave.
* `alert:<alert_id>` - the outbox: every alert the engine decided to send, with its
  delivery status (`pending` -> `sending` -> `delivered`) and, once delivered, where
  it landed (the Slack `ts` that later replies thread under). That is the entry of the
  default channel (no `alerts.routes`); with routes, each channel an alert goes to has
  its own entry `alert:<alert_id>@<channel>`, with its own status, claim and delivery,
  so a channel that fails or crashes mid-send never makes another one send twice.
  An escalation (a route's `escalate_to`) is an entry of the alert's escalation copy
  that waits until `not_before` and is `cancelled` if the alert was acknowledged.
* `ack:<alert_id>` - that someone acknowledged the alert, when and who
  (`AlertStateStore.acknowledge`, the one way to do it: the CLI's `alerts ack` and,
  later, Slack buttons).

Why Elasticsearch and not a local file: the daemon is stateless, a restart or a second
daemon on another host finds the same state, and state survives a container rebuild.

Concurrency: every write of an existing doc is conditional on the `_seq_no` /
`_primary_term` read with it, and outbox docs are created with `op_type=create` under a
deterministic id. Two daemons can therefore never both enqueue or both claim the same
alert; the loser gets `StateConflict` and leaves the work to the winner.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError

from alerts.model import Alert, Delivery, base_alert_id

log = logging.getLogger(__name__)

STATE_VERSION = 1
OutboxStatus = Literal["pending", "sending", "delivered", "cancelled"]

_KEYWORD = {"type": "keyword"}
_DATE = {"type": "date"}
_OPAQUE = {"type": "object", "enabled": False}  # stored, never searched

MAPPING: dict[str, Any] = {
    # strict: a typo in a field name is an error here, not a silently new field
    "dynamic": "strict",
    "_meta": {"managed_by": "brandpulse", "state_version": STATE_VERSION},
    "properties": {
        "type": _KEYWORD,  # "brand" | "alert" | "ack" | "snooze"
        "brand": _KEYWORD,
        "updated_at": _DATE,
        "owner": _KEYWORD,
        "fence": {"type": "long"},  # the alerter leadership a claim was made under
        # brand docs
        "detector": _OPAQUE,
        "high_reach": _OPAQUE,
        "rules": _OPAQUE,  # state of rules without a field of their own, by rule name
        "last_fed": _DATE,
        "cooldown_until": _DATE,
        "open_wave": {
            "properties": {
                "wave_id": _KEYWORD,
                "started_at": _DATE,
                "root_alert_id": _KEYWORD,
                "channel": _KEYWORD,
                "thread_ts": _KEYWORD,
                "last_update": _DATE,
            }
        },
        # outbox docs
        "alert_id": _KEYWORD,
        "wave_id": _KEYWORD,
        "kind": _KEYWORD,
        "root_alert_id": _KEYWORD,
        "status": _KEYWORD,
        "created_at": _DATE,
        "seq": {"type": "long"},
        "attempts": {"type": "integer"},
        "maybe_posted": {"type": "boolean"},
        "last_error": {"type": "text"},
        "next_attempt_at": _DATE,
        "lease_until": _DATE,
        "delivered_at": _DATE,
        "delivery": _OPAQUE,
        "alert": _OPAQUE,
        "channel": _KEYWORD,  # absent: the default channel (no routes)
        "escalates": _KEYWORD,  # an escalation: the id of the alert it escalates
        "not_before": _DATE,
        # ack docs (a person's response to an alert) and snooze docs (per brand and rule)
        "acknowledged_at": _DATE,
        "acknowledged_by": _KEYWORD,
        "response": _KEYWORD,  # "acknowledged" | "snoozed" | "false_alarm"
        "rule": _KEYWORD,
        "snoozed_until": _DATE,
    },
}


def state_index(prefix: str = "brandpulse") -> str:
    return f"{prefix}-alert-state"


def install(es: Elasticsearch, prefix: str = "brandpulse") -> bool:
    """Create the state index with its explicit mapping; True if it was created.

    On an existing index the mapping is re-put, which adds new fields and fails,
    naming the field, on an incompatible change.
    """
    index = state_index(prefix)
    if es.indices.exists(index=index):
        es.indices.put_mapping(index=index, **MAPPING)
        return False
    try:
        es.indices.create(
            index=index,
            settings={"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}},
            mappings=MAPPING,
        )
    except ApiError as exc:
        if exc.error == "resource_already_exists_exception":  # another daemon was first
            return False
        raise
    es.cluster.health(index=index, wait_for_status="yellow", timeout="30s")
    return True


# Oldest first, and the channels of one alert in a fixed order.
_OUTBOX_ORDER: list[dict[str, Any]] = [
    {"created_at": "asc"},
    {"seq": "asc"},
    {"channel": {"order": "asc", "missing": "_first", "unmapped_type": "keyword"}},
]


class StateConflict(Exception):
    """Someone else (another daemon) changed the doc since it was read."""


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass
class OpenWave:
    wave_id: str
    started_at: datetime
    root_alert_id: str
    last_update: datetime
    channel: str | None = None
    thread_ts: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "wave_id": self.wave_id,
            "started_at": _iso(self.started_at),
            "root_alert_id": self.root_alert_id,
            "last_update": _iso(self.last_update),
            "channel": self.channel,
            "thread_ts": self.thread_ts,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OpenWave:
        started, last = _dt(d["started_at"]), _dt(d["last_update"])
        assert started is not None and last is not None
        return cls(
            wave_id=d["wave_id"],
            started_at=started,
            root_alert_id=d["root_alert_id"],
            last_update=last,
            channel=d.get("channel"),
            thread_ts=d.get("thread_ts"),
        )


@dataclass
class BrandState:
    """What the engine remembers about one brand between checks.

    Each rule's state is opaque to the engine (`rule_state` / `with_rule_state`). The
    two rules that predate the rule registry keep the document layout they always had,
    so existing state reads on and stays readable by an older daemon: `negative_spike`
    is spread over `detector`, `last_fed`, `open_wave` (and `cooldown_until`, mirrored
    from the detector for people reading the index), `high_reach` is `high_reach`.
    Any other rule's state is kept under `rules.<name>`.
    """

    brand: str
    detector: dict[str, Any] | None = None
    high_reach: dict[str, Any] | None = None
    last_fed: datetime | None = None  # start of the last interval the detector judged
    cooldown_until: datetime | None = None  # mirrored from the detector, for people
    open_wave: OpenWave | None = None
    updated_at: datetime | None = None
    owner: str | None = None
    seq_no: int | None = None
    primary_term: int | None = None
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)

    def rule_state(self, name: str) -> dict[str, Any] | None:
        """The stored state of rule `name`, as the rule last returned it (None: none yet)."""
        if name == "negative_spike":
            if self.detector is None and self.last_fed is None and self.open_wave is None:
                return None
            return {
                "detector": self.detector,
                "last_fed": _iso(self.last_fed),
                "open_wave": self.open_wave.to_dict() if self.open_wave else None,
            }
        if name == "high_reach":
            return self.high_reach
        return self.rules.get(name)

    def with_rule_state(self, name: str, state: dict[str, Any] | None) -> BrandState:
        """A copy holding `state` as rule `name`'s state."""
        if name == "negative_spike":
            state = state or {}
            detector = state.get("detector")
            cooldown = (detector or {}).get("cooldown_until")
            wave = state.get("open_wave")
            return replace(
                self,
                detector=detector,
                last_fed=_dt(state.get("last_fed")),
                cooldown_until=_dt(cooldown),
                open_wave=OpenWave.from_dict(wave) if wave else None,
            )
        if name == "high_reach":
            return replace(self, high_reach=state)
        rules = {k: v for k, v in self.rules.items() if k != name}
        if state is not None:
            rules[name] = state
        return replace(self, rules=rules)

    def to_doc(self) -> dict[str, Any]:
        doc = {
            "type": "brand",
            "brand": self.brand,
            "detector": self.detector,
            "high_reach": self.high_reach,
            "last_fed": _iso(self.last_fed),
            "cooldown_until": _iso(self.cooldown_until),
            "open_wave": self.open_wave.to_dict() if self.open_wave else None,
            "updated_at": _iso(self.updated_at),
            "owner": self.owner,
        }
        if self.rules:  # absent, not empty, for the rules with fields of their own
            doc["rules"] = self.rules
        return doc

    @classmethod
    def from_hit(cls, hit: dict[str, Any]) -> BrandState:
        d = hit["_source"]
        return cls(
            brand=d["brand"],
            detector=d.get("detector"),
            high_reach=d.get("high_reach"),
            last_fed=_dt(d.get("last_fed")),
            cooldown_until=_dt(d.get("cooldown_until")),
            open_wave=OpenWave.from_dict(d["open_wave"]) if d.get("open_wave") else None,
            updated_at=_dt(d.get("updated_at")),
            owner=d.get("owner"),
            seq_no=hit.get("_seq_no"),
            primary_term=hit.get("_primary_term"),
            rules=dict(d.get("rules") or {}),
        )


class UnknownAlert(KeyError):
    """No alert with this id is in the outbox (never raised, or pruned long ago)."""


# What a person said about an alert: they took charge of it, it may wait (its brand
# and rule are snoozed until `until`), or it was not a real issue (a false alarm,
# counted by `alerts precision`). Each one also stops the alert's escalation.
Response = Literal["acknowledged", "snoozed", "false_alarm"]
RESPONSES: tuple[Response, ...] = ("acknowledged", "snoozed", "false_alarm")


@dataclass(frozen=True)
class Acknowledgement:
    """A person's response to an alert: what (`response`), when, by whom."""

    alert_id: str
    at: datetime
    by: str | None = None
    response: Response = "acknowledged"
    until: datetime | None = None  # a snooze's end
    brand: str | None = None
    rule: str | None = None


@dataclass(frozen=True)
class Snooze:
    """Alerts of `brand` (and `rule`; None: every rule) are not sent until `until`."""

    brand: str
    rule: str | None
    until: datetime
    at: datetime
    by: str | None = None

    def covers(self, brand: str, rule: str, at: datetime) -> bool:
        return self.brand == brand and self.rule in (None, rule) and self.at <= at < self.until


@dataclass(frozen=True)
class Precision:
    """Of `alerts` raised for a brand and rule, how many people marked not a real issue."""

    brand: str
    rule: str
    alerts: int
    false_alarms: int

    @property
    def precision(self) -> float | None:
        return None if not self.alerts else 1.0 - self.false_alarms / self.alerts


def entry_doc_id(alert_id: str, channel: str | None = None) -> str:
    """The outbox doc of an alert for one channel; None: the default channel."""
    return f"alert:{alert_id}" + (f"@{channel}" if channel else "")


@dataclass
class OutboxEntry:
    """One alert on its way out to one channel (`channel` None: the default one)."""

    alert: Alert
    status: OutboxStatus
    created_at: datetime
    seq: int = 0  # order among alerts created by the same check
    root_alert_id: str | None = None  # the wave's first alert, which replies thread under
    attempts: int = 0
    # An earlier attempt may have reached the channel (a crash mid-send, a 5xx, a
    # timeout): the next one looks in the channel before posting.
    maybe_posted: bool = False
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    owner: str | None = None
    delivered_at: datetime | None = None
    delivery: Delivery | None = None
    channel: str | None = None
    escalates: str | None = None  # the alert this escalation copy escalates
    not_before: datetime | None = None  # an escalation waits until then
    # The fencing token of the alerter leadership (`daemon.roles.Alerter`) that claimed
    # it; None when a daemon without an alerter lock did.
    fence: int | None = None
    seq_no: int | None = field(default=None, compare=False)
    primary_term: int | None = field(default=None, compare=False)

    @property
    def alert_id(self) -> str:
        return self.alert.alert_id

    @property
    def doc_id(self) -> str:
        return entry_doc_id(self.alert_id, self.channel)

    def to_doc(self) -> dict[str, Any]:
        a = self.alert
        doc: dict[str, Any] = {
            "type": "alert",
            "brand": a.brand,
            "alert_id": a.alert_id,
            "wave_id": a.wave_id,
            "kind": a.kind,
            "root_alert_id": self.root_alert_id,
            "status": self.status,
            "created_at": _iso(self.created_at),
            "seq": self.seq,
            "attempts": self.attempts,
            "maybe_posted": self.maybe_posted,
            "last_error": self.last_error,
            "next_attempt_at": _iso(self.next_attempt_at),
            "lease_until": _iso(self.lease_until),
            "owner": self.owner,
            "delivered_at": _iso(self.delivered_at),
            "delivery": self.delivery.to_dict() if self.delivery else None,
            "alert": a.to_dict(),
            "updated_at": _iso(datetime.now(UTC)),
        }
        # absent rather than null, so a default-channel entry reads as it always did
        doc |= {k: v for k, v in (("channel", self.channel), ("escalates", self.escalates),
                                  ("not_before", _iso(self.not_before)), ("fence", self.fence))
                if v is not None}  # fmt: skip
        return doc

    @classmethod
    def from_hit(cls, hit: dict[str, Any]) -> OutboxEntry:
        d = hit["_source"]
        created = _dt(d["created_at"])
        assert created is not None
        return cls(
            alert=Alert.from_dict(d["alert"]),
            status=d["status"],
            created_at=created,
            seq=int(d.get("seq") or 0),
            root_alert_id=d.get("root_alert_id"),
            attempts=int(d.get("attempts") or 0),
            maybe_posted=bool(d.get("maybe_posted")),
            last_error=d.get("last_error"),
            next_attempt_at=_dt(d.get("next_attempt_at")),
            lease_until=_dt(d.get("lease_until")),
            owner=d.get("owner"),
            delivered_at=_dt(d.get("delivered_at")),
            delivery=Delivery.from_dict(d["delivery"]) if d.get("delivery") else None,
            channel=d.get("channel"),
            escalates=d.get("escalates"),
            not_before=_dt(d.get("not_before")),
            fence=d.get("fence"),
            seq_no=hit.get("_seq_no"),
            primary_term=hit.get("_primary_term"),
        )


class AlertStateStore:
    """Reads and conditionally writes the state index. Writes refresh at once: the
    index is tiny and the outbox is listed by search right after it is written."""

    def __init__(self, es: Elasticsearch, prefix: str = "brandpulse") -> None:
        self.es = es
        self.index = state_index(prefix)
        self.prefix = prefix

    def install(self) -> bool:
        return install(self.es, self.prefix)

    # -- brands ---------------------------------------------------------------

    @staticmethod
    def _brand_id(brand: str) -> str:
        return f"brand:{brand}"

    def load_brand(self, brand: str) -> BrandState:
        """The brand's state, or a fresh one (not yet stored) when there is none."""
        try:
            hit = self.es.get(index=self.index, id=self._brand_id(brand))
        except NotFoundError:
            return BrandState(brand=brand)
        return BrandState.from_hit(dict(hit))

    def save_brand(self, state: BrandState) -> BrandState:
        """Write `state` if nobody changed it since it was loaded; else StateConflict."""
        kwargs: dict[str, Any] = {}
        if state.seq_no is None:
            kwargs["op_type"] = "create"
        else:
            kwargs["if_seq_no"] = state.seq_no
            kwargs["if_primary_term"] = state.primary_term
        try:
            res = self.es.index(
                index=self.index,
                id=self._brand_id(state.brand),
                document=state.to_doc(),
                refresh=True,
                **kwargs,
            )
        except ConflictError as exc:
            raise StateConflict(f"brand state of {state.brand!r} changed concurrently") from exc
        return replace(state, seq_no=res["_seq_no"], primary_term=res["_primary_term"])

    # -- outbox ---------------------------------------------------------------

    def enqueue(self, entry: OutboxEntry) -> bool:
        """Add to the outbox; False (and no change) if this alert is already there for
        this channel."""
        try:
            self.es.index(
                index=self.index,
                id=entry.doc_id,
                document=entry.to_doc(),
                op_type="create",
                refresh=True,
            )
        except ConflictError:
            return False
        return True

    def get_entry(self, alert_id: str, channel: str | None = None) -> OutboxEntry | None:
        """The alert's entry for `channel` (None: the default channel's)."""
        try:
            hit = self.es.get(index=self.index, id=entry_doc_id(alert_id, channel))
        except NotFoundError:
            return None
        return OutboxEntry.from_hit(dict(hit))

    def undelivered(self, brand: str | None = None, limit: int = 1000) -> list[OutboxEntry]:
        """Pending and in-flight entries, oldest first (the order they must go out in)."""
        filters: list[dict[str, Any]] = [
            {"term": {"type": "alert"}},
            {"terms": {"status": ["pending", "sending"]}},
        ]
        if brand is not None:
            filters.append({"term": {"brand": brand}})
        res = self.es.search(
            index=self.index,
            query={"bool": {"filter": filters}},
            sort=_OUTBOX_ORDER,
            size=limit,
            seq_no_primary_term=True,
        )
        return [OutboxEntry.from_hit(hit) for hit in res["hits"]["hits"]]

    def entries(
        self, brand: str | None = None, limit: int = 1000, *, alert_id: str | None = None,
        wave_id: str | None = None,
    ) -> list[OutboxEntry]:
        """Every outbox entry (any status, every channel), oldest first; only those of
        `alert_id`, of `wave_id`, when given."""
        filters: list[dict[str, Any]] = [{"term": {"type": "alert"}}]
        if brand is not None:
            filters.append({"term": {"brand": brand}})
        if alert_id is not None:
            filters.append({"term": {"alert_id": alert_id}})
        if wave_id is not None:
            filters.append({"term": {"wave_id": wave_id}})
        res = self.es.search(
            index=self.index,
            query={"bool": {"filter": filters}},
            sort=_OUTBOX_ORDER,
            size=limit,
            seq_no_primary_term=True,
        )
        return [OutboxEntry.from_hit(hit) for hit in res["hits"]["hits"]]

    def created_between(
        self, start: datetime, end: datetime, brand: str | None = None, limit: int = 1000
    ) -> list[OutboxEntry]:
        """Entries (any status) the engine created in `[start, end)`, oldest first: the
        alerts of a report's period. Delivered entries older than the engine's prune age
        (`alerts.history`, at least two days) are gone; the caller says so."""
        filters: list[dict[str, Any]] = [
            {"term": {"type": "alert"}},
            {"range": {"created_at": {"gte": _iso(start), "lt": _iso(end)}}},
        ]
        if brand is not None:
            filters.append({"term": {"brand": brand}})
        res = self.es.search(
            index=self.index,
            query={"bool": {"filter": filters}},
            sort=[{"created_at": "asc"}, {"seq": "asc"}],
            size=limit,
        )
        return [OutboxEntry.from_hit(hit) for hit in res["hits"]["hits"]]

    def _update(self, entry: OutboxEntry, new: OutboxEntry) -> OutboxEntry:
        try:
            res = self.es.index(
                index=self.index,
                id=entry.doc_id,
                document=new.to_doc(),
                if_seq_no=entry.seq_no,
                if_primary_term=entry.primary_term,
                refresh=True,
            )
        except ConflictError as exc:
            raise StateConflict(f"outbox entry {entry.doc_id} changed concurrently") from exc
        return replace(new, seq_no=res["_seq_no"], primary_term=res["_primary_term"])

    def claim(
        self, entry: OutboxEntry, owner: str, now: datetime, lease_until: datetime,
        fence: int | None = None,
    ) -> OutboxEntry:
        """Mark `sending` before the message goes out; StateConflict if someone else did.

        Claiming an entry still marked `sending` (its sender's lease ran out, or its
        sender's alerter leadership `fence` is older than the claimant's) records that
        the message may already be in the channel.
        """
        return self._update(
            entry,
            replace(
                entry,
                status="sending",
                owner=owner,
                lease_until=lease_until,
                attempts=entry.attempts + 1,
                maybe_posted=entry.maybe_posted or entry.status == "sending",
                fence=fence,
            ),
        )

    def mark_delivered(self, entry: OutboxEntry, delivery: Delivery, now: datetime) -> OutboxEntry:
        return self._update(
            entry,
            replace(
                entry,
                status="delivered",
                delivery=delivery,
                delivered_at=now,
                lease_until=None,
                maybe_posted=False,
            ),
        )

    def mark_failed(
        self,
        entry: OutboxEntry,
        error: str,
        next_attempt_at: datetime | None,
        *,
        maybe_posted: bool = False,
    ) -> OutboxEntry:
        return self._update(
            entry,
            replace(
                entry,
                status="pending",
                last_error=error[:2000],
                next_attempt_at=next_attempt_at,
                lease_until=None,
                maybe_posted=entry.maybe_posted or maybe_posted,
            ),
        )

    def mark_cancelled(self, entry: OutboxEntry, why: str, now: datetime) -> OutboxEntry:
        """Settle an entry without sending it (an escalation of an acknowledged alert)."""
        return self._update(
            entry,
            replace(entry, status="cancelled", last_error=why[:2000], delivered_at=now, lease_until=None),
        )

    def prune(self, delivered_before: datetime, batch: int = 500) -> int:
        """Delete settled (delivered or cancelled) outbox entries older than
        `delivered_before`, and acknowledgements as old; return how many.

        Search and bulk delete rather than delete_by_query, which needs the reindex
        module that not every cluster (nor the test node) has.
        """
        before = _iso(delivered_before)
        settled = {"bool": {"filter": [
            {"term": {"type": "alert"}},
            {"terms": {"status": ["delivered", "cancelled"]}},
            {"range": {"delivered_at": {"lt": before}}},
        ]}}  # fmt: skip
        acks = {"bool": {"filter": [
            {"term": {"type": "ack"}},
            {"range": {"acknowledged_at": {"lt": before}}},
        ]}}  # fmt: skip
        removed = 0
        while True:
            res = self.es.search(
                index=self.index,
                query={"bool": {"should": [settled, acks], "minimum_should_match": 1}},
                size=batch,
                source=False,
            )
            hits = res["hits"]["hits"]
            if not hits:
                return removed
            operations = [{"delete": {"_index": self.index, "_id": h["_id"]}} for h in hits]
            self.es.bulk(operations=operations, refresh=True)
            removed += len(hits)

    def last_channel(self, channel: str | None = None) -> str | None:
        """The channel id (a Slack channel's) of the latest delivery through `channel`
        (None: the default channel): a hint for reading the channel back."""
        filters: list[dict[str, Any]] = [{"term": {"type": "alert"}}, {"term": {"status": "delivered"}}]
        if channel is None:
            filters.append({"bool": {"must_not": {"exists": {"field": "channel"}}}})
        else:
            filters.append({"term": {"channel": channel}})
        res = self.es.search(
            index=self.index,
            query={"bool": {"filter": filters}},
            sort=[{"delivered_at": "desc"}],
            size=20,
        )
        for hit in res["hits"]["hits"]:
            channel = (hit["_source"].get("delivery") or {}).get("channel")
            if channel:
                return str(channel)
        return None

    # -- acknowledgements ---------------------------------------------------------

    @staticmethod
    def _ack_id(alert_id: str) -> str:
        return f"ack:{alert_id}"

    def acknowledge(
        self,
        alert_id: str,
        *,
        at: datetime,
        by: str | None = None,
        response: Response = "acknowledged",
        until: datetime | None = None,
    ) -> Acknowledgement:
        """Record a person's response to alert `alert_id`; any response stops its pending
        escalations (they are cancelled instead of sent). The one place that records
        responses: the CLI's `alerts ack` and the Slack buttons both call it.

        `response="snoozed"` also snoozes the alert's brand and rule until `until`
        (`snooze`); `"false_alarm"` marks it not a real issue (`precision`). An
        escalation copy's id (`<id>-escalated`) answers for its original. The same
        response again returns the stored one unchanged (a double click records
        nothing new); a different one replaces it. UnknownAlert if no such alert is in
        the outbox.
        """
        if response not in RESPONSES:
            raise ValueError(f"response must be one of {RESPONSES}, got {response!r}")
        if (response == "snoozed") != (until is not None):
            raise ValueError("a snooze needs `until`, and only a snooze has one")
        alert_id = base_alert_id(alert_id.strip())
        found = self.entries(alert_id=alert_id, limit=1)
        if not found:
            raise UnknownAlert(alert_id)
        alert = found[0].alert
        existing = self.acknowledgement(alert_id)
        if existing is not None and existing.response == response and existing.until == until:
            return existing
        ack = Acknowledgement(alert_id, at, by, response, until, alert.brand, alert.rule)
        self.es.index(
            index=self.index,
            id=self._ack_id(alert_id),
            document={"type": "ack", "alert_id": alert_id, "acknowledged_at": _iso(at),
                      "acknowledged_by": by, "response": response, "snoozed_until": _iso(until),
                      "brand": alert.brand, "rule": alert.rule,
                      "updated_at": _iso(datetime.now(UTC))},
            refresh=True,
        )  # fmt: skip
        if until is not None:
            self.snooze(alert.brand, alert.rule, until=until, at=at, by=by)
        return ack

    @staticmethod
    def _snooze_id(brand: str, rule: str | None) -> str:
        return f"snooze:{brand}:{rule or '*'}"

    def snooze(
        self, brand: str, rule: str | None, *, until: datetime, at: datetime, by: str | None = None
    ) -> Snooze:
        """Hold back `brand`'s alerts of `rule` (None: every rule) until `until`; the
        engine does not send them (`snoozed`). A later snooze of the same brand and rule
        replaces this one (an `until` at or before now ends it)."""
        snooze = Snooze(brand, rule, until, at, by)
        self.es.index(
            index=self.index,
            id=self._snooze_id(brand, rule),
            document={"type": "snooze", "brand": brand, "rule": rule, "snoozed_until": _iso(until),
                      "acknowledged_at": _iso(at), "acknowledged_by": by,
                      "updated_at": _iso(datetime.now(UTC))},
            refresh=True,
        )  # fmt: skip
        return snooze

    def snoozed(self, brand: str, rule: str, at: datetime) -> Snooze | None:
        """The snooze holding back `brand`'s `rule` alerts at `at` (the later-ending one
        when the rule and all rules are both snoozed), or None."""
        res = self.es.mget(
            index=self.index, ids=[self._snooze_id(brand, rule), self._snooze_id(brand, None)]
        )
        found: list[Snooze] = []
        for doc in res["docs"]:
            if not doc.get("found"):
                continue
            d = doc["_source"]
            until, since = _dt(d["snoozed_until"]), _dt(d["acknowledged_at"])
            assert until is not None and since is not None
            snooze = Snooze(d["brand"], d.get("rule"), until, since, d.get("acknowledged_by"))
            if snooze.covers(brand, rule, at):
                found.append(snooze)
        return max(found, key=lambda z: z.until) if found else None

    def precision(self, since: datetime | None = None) -> list[Precision]:
        """Per brand and rule, the alerts that paged (a wave's first message, a
        high-reach post; escalation copies are the same alert) since `since`, and how
        many of them people marked not a real issue. Only what the outbox still holds
        counts: delivered alerts are pruned after `alerts.history`."""
        window = [{"range": {"created_at": {"gte": _iso(since)}}}] if since else []
        res = self.es.search(
            index=self.index,
            query={"bool": {"filter": [{"term": {"type": "alert"}},
                                       {"terms": {"kind": ["started", "high_reach"]}}, *window]}},
            size=10_000,
            source=["alert_id", "brand", "kind", "escalates"],
        )  # fmt: skip
        raised: dict[str, tuple[str, str]] = {}
        for hit in res["hits"]["hits"]:
            d = hit["_source"]
            if d.get("escalates"):
                continue
            rule = "high_reach" if d["kind"] == "high_reach" else "negative_spike"
            raised[d["alert_id"]] = (d["brand"], rule)
        res = self.es.search(
            index=self.index,
            query={"bool": {"filter": [{"term": {"type": "ack"}},
                                       {"term": {"response": "false_alarm"}}]}},
            size=10_000,
            source=["alert_id"],
        )  # fmt: skip
        false = {hit["_source"]["alert_id"] for hit in res["hits"]["hits"]}
        rows: dict[tuple[str, str], list[int]] = {}
        for alert_id, key in raised.items():
            row = rows.setdefault(key, [0, 0])
            row[0] += 1
            row[1] += alert_id in false
        return [Precision(b, r, n, f) for (b, r), (n, f) in sorted(rows.items())]

    def acknowledgement(self, alert_id: str) -> Acknowledgement | None:
        """Whether (when, by whom) alert `alert_id` was acknowledged."""
        try:
            hit = self.es.get(index=self.index, id=self._ack_id(base_alert_id(alert_id)))
        except NotFoundError:
            return None
        d = hit["_source"]
        at = _dt(d["acknowledged_at"])
        assert at is not None
        return Acknowledgement(
            alert_id=d["alert_id"], at=at, by=d.get("acknowledged_by"),
            response=d.get("response") or "acknowledged", until=_dt(d.get("snoozed_until")),
            brand=d.get("brand"), rule=d.get("rule"),
        )  # fmt: skip
