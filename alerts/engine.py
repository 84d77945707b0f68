"""The alert engine: Elasticsearch counts -> detector -> alerts -> outbox -> notifier.

At every check, for every brand:

1. load the brand's state from Elasticsearch and run every rule of the registry
   (`alerts.rules.RULES`: the negative spike, the high-reach rule, then those of
   `alerts.rules` that are turned on) with its own
   settings, its own opaque state and a `MentionReader` (Elasticsearch's, from
   `store.reader`, unless another is given) -- see alerts/rules.py for what each
   rule does; a restarted daemon continues exactly where the last check stopped,
   and judges nothing twice;
2. write each alert the rules returned to the outbox (deterministic id, create-only)
   and only then the brand's new state; deliver the outbox in order: a brand that
   queued something is delivered right after its own check, so its alert does not
   wait for the rest of the brands (a pass over 50 brands can take minutes on a busy
   host), and at the end of the check everything still waiting (retries) goes out.

A brand whose check fails is logged and the others go on. But when Elasticsearch
stops answering (refused, unreachable, or hung: each query waits its whole
``request_timeout``), every brand would fail the same way, one timeout after the
other (50 brands x 30 s). After `UNANSWERED_BRANDS` brands in a row whose queries
went unanswered (or an unanswered last brand) the check stops and raises
`CheckStopped`: an outage, not a crash.
It leaves everything as the next check needs it: the brands not checked keep their
state (the next check judges their intervals, none twice), what was queued stays in
the outbox, and what was sent before it stopped is recorded as sent.

Routing (see docs/routing.md): without `alerts.routes` every alert goes to one
channel, the default (the first configured). With routes, `alerts.routing.Router`
names the channels of each alert and the outbox holds one entry per (alert, channel):
each channel is claimed, sent and recorded on its own, so a channel that is down, or a
crash between one channel's send and its record, never holds up or repeats another
channel, and threads are kept per channel (a reply goes under that channel's own
first message of the wave). A route's escalation is one more entry per escalation
channel that waits for `escalate_after` and is cancelled if the alert was
acknowledged by then (`AlertStateStore.acknowledge`).

Delivery guarantees, per channel (see docs/slack.md):

* An alert is written to the outbox before anything is sent, and stays there until the
  notifier confirms delivery: a Slack outage, a rate limit or a revoked token delays
  it, never loses it. It goes out at a later check, once.
* Two daemons cannot both send it: enqueueing is create-only under the alert's
  deterministic id, and an entry is claimed (`sending`) with a conditional write
  before the message goes out.
* A send with an unknown outcome (a crash after posting, a 5xx, a broken connection)
  is checked before it is repeated: the notifier reads the channel back and looks for
  the alert id in the message metadata. Only where the channel cannot be read (a
  webhook, a token without history scope) is it posted again: at-least-once there,
  because a lost alert costs a PR team more than a repeated one, and the footer's
  alert id makes a repeat obvious.

With a `leadership` (the alerter role, `daemon.roles.Alerter`: one alerter at a time
holds a Redis leader lock numbered by a fencing token), the engine also:

* checks no further brand once the lock is lost, and confirms the lock in Redis
  (`Leadership.renew`) after claiming an entry and right before posting it; lost,
  it puts the entry back to `pending` unsent and ends the round;
* records its fence in each claim, and takes a `sending` entry claimed under an
  *older* fence over at once instead of waiting out `SEND_LEASE`: that alerter lost
  the lock (died, even by SIGKILL, or stalled past `redis.leader_ttl`), so it has
  stopped sending. The takeover counts as an unknown outcome (`maybe_posted`), so the
  channel is read back before posting, as above.

That leaves one gap, stated here because no lock can close it: Slack's
`chat.postMessage` takes no idempotency key and knows nothing of fences, so an
ex-leader stalled for longer than `leader_ttl` *between* its lock check and its post
reaching Slack, while the new leader reads the channel before that post lands,
makes two messages of one alert (both carrying its id). Exactly once in the outbox
always; in a channel that can be read back, once, but for that stall; elsewhere at
least once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from elasticsearch import ConnectionError as EsConnectionError
from elasticsearch import ConnectionTimeout as EsConnectionTimeout
from elasticsearch import Elasticsearch

from alerts.kept import DetectorCache
from alerts.model import Alert, Delivery
from alerts.notifiers.base import CannotTell, Notifier, NotifierError, kibana_discover_url
from alerts.reader import MentionReader
from alerts.routing import Router
from alerts.rules import (
    RULES,
    AlertRule,
    Check,
    NegativeSpikeRule,
    Planned,
    evaluate_rules,
    rules_for,
)
from alerts.state import AlertStateStore, BrandState, OutboxEntry, StateConflict
from alerts.visibility import Visibility
from brandpulse.config import Config
from brandpulse.timeutil import require_utc
from store.errors import describe_es_error
from store.reader import ElasticsearchMentionReader
from store.setup import alias_name

log = logging.getLogger(__name__)

# How long a claimed (`sending`) entry is left alone before it counts as abandoned by a
# crashed daemon: well above the notifier's worst case (timeout plus bounded 429 waits).
SEND_LEASE = timedelta(minutes=5)
# Delivered alerts are kept at least this long (and at least `alerts.history`).
PRUNE_MIN_AGE = timedelta(days=2)
# Brands in a row whose queries Elasticsearch left unanswered before a check stops:
# two, so one brand's slow query does not end a pass, and a node that hangs costs
# two request timeouts per check, not one per brand.
UNANSWERED_BRANDS = 2


def unanswered(exc: BaseException) -> bool:
    """Whether `exc` (or what it was raised from) is Elasticsearch not answering at all:
    a connection refused or broken, or a request timeout. Not an HTTP error: a node
    that answers 4xx/5xx answers, and the next brand's query may well work."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, (EsConnectionError, EsConnectionTimeout)):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class CheckStopped(RuntimeError):
    """An alert check stopped because Elasticsearch stopped answering: after
    `UNANSWERED_BRANDS` brands in a row, or on the last brand (the end-of-check
    delivery would wait on it too). An outage, not a failure of the check: nothing
    is lost (module doc) and the next check runs every brand.

    ``str()`` is the one line to log: how many brands were not checked, and why, with
    the host (credentials masked, as `store.errors.describe_es_error` gives it).
    `sent`: what this check delivered before it stopped."""

    def __init__(
        self, reason: str, *, checked: int, not_checked: int, unanswered: int, sent: list[Alert]
    ) -> None:
        self.reason = reason
        self.checked = checked
        self.not_checked = not_checked
        self.sent = sent
        total = checked + not_checked
        super().__init__(
            f"alert check stopped: {not_checked} of {total} brand(s) not checked, "
            f"{unanswered} in a row went unanswered ({reason}); the next check runs them"
        )


def held_back(config: Config, state: AlertStateStore, brand: str, rule: str, at: datetime) -> str | None:
    """Why alerts of `brand` and `rule` are not sent at `at` -- a maintenance window of
    `alerts.maintenance`, or a snooze (`AlertStateStore.snooze`, from a Slack button or
    `alerts snooze`) -- or None when they go out. The engine asks it for every alert;
    `alerts explain` asks it too."""
    for window in config.alerts.maintenance:
        if window.covers(brand, rule, at):
            return f"maintenance window until {window.end_utc.isoformat()}"
    snooze = state.snoozed(brand, rule, at)
    if snooze is not None:
        by = f" by {snooze.by}" if snooze.by else ""
        return f"{brand}/{snooze.rule or 'all rules'} snoozed{by} until {snooze.until.isoformat()}"
    return None


class Leadership(Protocol):
    """The right to run the deployment's alert checks and sends: one holder at a time
    (`daemon.coord.LeaderLock`, held by the alerter role). `fence` numbers the current
    leadership (it only grows from one leadership to the next; None: not the leader);
    `renew` confirms (and extends) it in the shared store, False once it is lost."""

    fence: int | None

    def renew(self) -> bool: ...


class AlertEngine:
    """Runs the alert rules for every configured brand.

    `check(now)` evaluates, records and delivers, returning what was delivered (new
    alerts and earlier ones that were waiting in the outbox). `dry_run(now)` returns
    what `check` would enqueue, without writing or sending anything.

    Mentions are read through `reader` (Elasticsearch's over `mentions_index` by
    default; with `alerts.counts_source: rollup`, the default, its counts come from the
    hourly counts index, `store.reader.RollupMentionReader`); state and outbox are always in Elasticsearch. `rules` is the registry
    the engine runs, `alerts.rules.RULES` unless given. `failing_sources` tells which
    sources the health notices report as failing (the daemon passes
    `HealthTracker.sources_down`), so no rule reports their silence a second time.
    `leadership`: the alerter role's lock (see the module doc); None (a whole daemon,
    `check-alerts`) checks and sends without one, as before. `keep_detectors`
    (default: `alerts.keep_detectors`, on): the spike rules' detectors are kept with
    their history from one check to the next and fed only the new intervals
    (`alerts.kept`: rebuilt from counts when the history's start moves at UTC midnight,
    the counts fed or the stored state changed, the settings differ, or on the first
    check); off, they are rebuilt at every check from the same counts, to the same
    alerts (`alerts.kept.anchor`).

    Channels: `notifier` is the default channel; `channels` every channel by name
    (`alerts.notifiers.notifiers_from_config`), the first being the default when
    `notifier` is None. Every channel `alerts.routes` names must be among them.
    """

    def __init__(
        self,
        config: Config,
        es: Elasticsearch,
        notifier: Notifier | None,
        *,
        channels: Mapping[str, Notifier] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        owner: str | None = None,
        mentions_index: str | None = None,
        reader: MentionReader | None = None,
        rules: Mapping[str, type[AlertRule]] = RULES,
        failing_sources: Callable[[], Collection[str]] = frozenset,
        leadership: Leadership | None = None,
        keep_detectors: bool | None = None,
    ) -> None:
        self.config = config
        # The spike detectors of the last check, fed on at the next (`alerts.kept`).
        if keep_detectors is None:
            keep_detectors = config.alerts.keep_detectors
        self.detectors = DetectorCache() if keep_detectors else None
        self.leadership = leadership
        self.es = es
        self.channels: dict[str, Notifier] = dict(channels or {})
        if notifier is not None:
            self.channels = {notifier.name: notifier} | {
                k: v for k, v in self.channels.items() if k != notifier.name
            }
        self.notifier = notifier if notifier is not None else next(iter(self.channels.values()), None)
        self.router = Router(
            tuple(config.alerts.routes), self.notifier.name if self.notifier else "log"
        )
        missing = sorted(self.router.channels() - set(self.channels))
        if missing and self.channels:
            raise ValueError(
                f"alerts.routes name channel(s) {missing} but the engine has only "
                f"{list(self.channels)}"
            )
        self.clock = clock
        prefix = config.elasticsearch.index_prefix
        self.mentions_index = mentions_index or alias_name(prefix)
        if reader is None and config.alerts.counts_source == "rollup":
            from store.reader import RollupMentionReader
            from store.rollup import counts_index_name

            reader = RollupMentionReader(es, self.mentions_index, counts_index_name(prefix))
        self.reader = reader or ElasticsearchMentionReader(es, self.mentions_index)
        self.rules = dict(rules)
        self.failing_sources = failing_sources
        self.state = AlertStateStore(es, prefix)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.kibana_url = config.slack.kibana_url or config.kibana.url
        from nlp.enrich import brand_queries  # what a wave's themes locate brands by

        self.queries = brand_queries(config.brands)
        self._installed = False
        self._pruned_at: datetime | None = None

    # -- public API -------------------------------------------------------------

    def install(self) -> None:
        """Create the state index if missing (also done by the first check)."""
        self.state.install()
        self._installed = True

    def check(self, now: datetime | None = None) -> list[Alert]:
        now = require_utc(now, "now") if now is not None else require_utc(self.clock(), "clock()")
        if not self.config.alerts.enabled:
            return []
        if not self._installed:
            self.install()
        failures: list[tuple[str, Exception]] = []
        sent: list[Alert] = []
        down: set[str | None] = set()  # channels that failed during this check
        silent: list[str] = []  # the last brands in a row whose queries went unanswered
        brands = self.config.brands
        for n, brand in enumerate(brands):
            if not self._leading():
                log.warning("alert check stopped before brand %s: this alerter lost its lock",
                            brand.name)  # fmt: skip
                return sent
            try:
                queued = self._check_brand(brand.name, now)
            except Exception as exc:
                failures.append((brand.name, exc))
                if not unanswered(exc):
                    # One brand's bad query or conflict must not silence the others.
                    silent.clear()
                    log.exception("alert check for brand %s failed", brand.name)
                    continue
                silent.append(brand.name)
                if len(silent) >= UNANSWERED_BRANDS or n == len(brands) - 1:
                    # Elasticsearch is down or hangs: the other brands would each wait
                    # out the same timeout. The outbox's end-of-check delivery is left
                    # to the next check too (it reads the outbox from Elasticsearch),
                    # also when the pass ends on an unanswered brand.
                    raise CheckStopped(
                        describe_es_error(exc, self._hosts()),
                        checked=n + 1 - len(silent),
                        not_checked=len(brands) - (n + 1 - len(silent)),
                        unanswered=len(silent),
                        sent=sent,
                    ) from exc
                log.warning("alert check for brand %s failed: %s", brand.name,
                            describe_es_error(exc, self._hosts()))  # fmt: skip
                continue
            silent.clear()
            if queued:
                # Sent now, not after every other brand's evaluation: with many brands a
                # pass takes long (50 brands on a busy core: minutes, bench/capacity.py),
                # and the alert would wait for all of it.
                sent += self.retry_outbox(now, brand=brand.name, down=down)
        # Every brand's retries (and what a failing channel held back above).
        # An alert routed to two channels may have gone out on one above and on the
        # other here: it is listed once, as one round lists it.
        seen = {a.alert_id for a in sent}
        sent += [a for a in self.retry_outbox(now, down=down) if a.alert_id not in seen]
        if failures and len(failures) == len(self.config.brands):
            # Nothing was checked (Elasticsearch down?): let the caller see it.
            name, exc = failures[-1]
            raise RuntimeError(f"alert check failed for every brand; last ({name}): {exc}") from exc
        return sent

    def _hosts(self) -> list[str]:
        es = self.config.elasticsearch
        return [es.cloud_id] if es.cloud_id else list(es.hosts)

    def _check_brand(self, brand: str, now: datetime) -> int:
        """Evaluate `brand` and queue its alerts; how many outbox entries it queued."""
        queued = 0
        state = self.state.load_brand(brand)
        planned, new_state = self._evaluate(brand, now, state)
        # Outbox first: a crash before the state write re-derives the same alerts
        # (same ids) at the next check, and create-only enqueueing drops the repeats.
        for seq, plan in enumerate(planned):
            why = held_back(self.config, self.state, plan.alert.brand, plan.alert.rule, now)
            if why is not None:
                # Judged and remembered in the rule's state (the wave is not paged later
                # either), but not sent: someone said it may wait.
                log.info("alert %s not sent: %s", plan.alert.alert_id, why)
                continue
            for entry in self._entries_for(plan, seq, now):
                if self.state.enqueue(entry):
                    queued += 1
                else:
                    log.info("alert %s is already in the outbox", entry.doc_id)
        new_state = self._with_thread(new_state)
        try:
            self.state.save_brand(replace(new_state, updated_at=now, owner=self.owner))
        except StateConflict:
            # Another daemon checked this brand meanwhile; it derived the same alerts
            # under the same ids, so there is nothing to undo.
            log.info("brand %s was checked concurrently by another daemon", brand)
        return queued

    def _entries_for(self, plan: Planned, seq: int, now: datetime) -> list[OutboxEntry]:
        """The outbox entries of one alert: one for the default channel without routes;
        with routes one per routed channel, plus one per escalation channel."""
        channels = self.router.channels_for(plan.alert)
        if channels is None:
            return [OutboxEntry(plan.alert, "pending", now, seq, self._thread_root(plan, None))]
        entries = [
            OutboxEntry(
                plan.alert, "pending", now, seq, self._thread_root(plan, channel), channel=channel
            )
            for channel in channels
        ]
        for escalation in self.router.escalations_for(plan.alert):
            entries.append(
                OutboxEntry(
                    plan.alert.escalated(escalation.after),
                    "pending",
                    now,
                    seq,
                    channel=escalation.channel,
                    escalates=plan.alert.alert_id,
                    not_before=now + escalation.after,
                )
            )
        return entries

    def _thread_root(self, plan: Planned, channel: str | None) -> str | None:
        """The alert whose message a reply hangs under in `channel`: the wave's first
        alert (`Planned.root_alert_id`), or -- when that one was never queued for the
        channel, because a snooze or a maintenance window held it back -- the wave's
        first alert that was; None when there is none yet, so this update starts the
        wave's thread and the later ones reply under it instead of each posting
        unthreaded."""
        root = plan.root_alert_id
        if root is None or root == plan.alert.alert_id:
            return root
        if self.state.get_entry(root, channel) is not None:
            return root
        if channel is not None and channel == self.router.default and self.state.get_entry(root):
            return root  # a wave that began before routes: the old layout's entry
        queued = [
            e for e in self.state.entries(plan.alert.brand, wave_id=plan.alert.wave_id)
            if e.channel == channel and e.escalates is None and e.status != "cancelled"
        ]  # fmt: skip
        return queued[0].alert_id if queued else None

    def dry_run(self, now: datetime | None = None) -> list[Alert]:
        now = require_utc(now, "now") if now is not None else require_utc(self.clock(), "clock()")
        alerts: list[Alert] = []
        for brand in self.config.brands:
            state = self.state.load_brand(brand.name)
            planned, _ = self._evaluate(brand.name, now, state, keep=False)
            alerts.extend(p.alert for p in planned)
        return alerts

    def visibility(
        self, now: datetime | None = None, factor: float = 3.0
    ) -> dict[str, Visibility | None]:
        """Per brand, the smallest wave its negative spike rule can see at its current volume.

        Built from the same Elasticsearch counts as a check (`alerts.history` up to
        the query delay); None for a brand without enough history for a baseline.
        Reads only: no state is loaded or written.
        """
        now = require_utc(now, "now") if now is not None else require_utc(self.clock(), "clock()")
        out: dict[str, Visibility | None] = {}
        for brand in self.config.brands:
            rule = NegativeSpikeRule.for_brand(self.config, brand.name)
            assert isinstance(rule, NegativeSpikeRule)
            out[brand.name] = rule.visibility(self._check_of(brand.name, now), factor)
        return out

    def retry_outbox(
        self,
        now: datetime | None = None,
        *,
        brand: str | None = None,
        down: set[str | None] | None = None,
    ) -> list[Alert]:
        """Deliver what waits in the outbox (only `brand`'s, when given), oldest first;
        return what went out (each alert once, however many channels it went to).

        `down` (filled in place) carries the channels that failed from one call to the
        next, so a check that delivers brand by brand leaves a failing channel alone
        for the rest of the check, as one round does.

        Per brand and channel the order is kept: a reply waits for its wave's first
        message in that channel (it needs its `ts`), and after a failure the rest of
        that brand waits. A failing channel is left alone for the rest of the round
        (the next check tries again); the other channels go on. An escalation waits
        for its time without holding anything up, and is cancelled, not sent, once
        its alert is acknowledged.
        """
        now = require_utc(now, "now") if now is not None else require_utc(self.clock(), "clock()")
        if self.notifier is None or not self._leading():
            return []
        if not self._installed:
            self.install()
        sent: list[Alert] = []
        blocked: set[tuple[str, str | None]] = set()  # (brand, channel)
        down = set() if down is None else down  # channels that failed in this round
        for entry in self.state.undelivered(brand):
            key = (entry.alert.brand, entry.channel)
            if entry.channel in down or key in blocked:
                continue
            notifier = self._notifier_of(entry)
            if notifier is None:
                blocked.add(key)
                continue
            if entry.not_before and entry.not_before > now:
                continue  # an escalation that is not due yet
            if entry.escalates and self._acknowledged(entry, now):
                continue
            if (entry.status == "sending" and entry.lease_until and entry.lease_until > now
                    and not self._fenced_out(entry)):  # fmt: skip
                blocked.add(key)  # another daemon is sending it right now
                continue
            if entry.next_attempt_at and entry.next_attempt_at > now:
                blocked.add(key)  # the channel asked us to wait (Retry-After)
                continue
            if entry.status == "sending":
                log.warning(
                    "alert %s was claimed by %s and never confirmed", entry.doc_id, entry.owner
                )
            reply_to = None
            if entry.root_alert_id and entry.root_alert_id != entry.alert_id:
                root = self.state.get_entry(entry.root_alert_id, entry.channel)
                if root is None and entry.channel == self.router.default:
                    # a wave that began before routes were configured: its first
                    # message is the default channel's entry of the old layout
                    root = self.state.get_entry(entry.root_alert_id)
                if root is not None and root.status != "delivered":
                    blocked.add(key)
                    continue
                reply_to = root.delivery if root is not None else None
            fence = self.leadership.fence if self.leadership is not None else None
            try:
                claimed = self.state.claim(entry, self.owner, now, now + SEND_LEASE, fence)
            except StateConflict:
                blocked.add(key)
                continue
            if not self._still_leading():
                # Lost the lock after claiming: unsent, back to pending for the next leader.
                with contextlib.suppress(StateConflict):
                    self.state.mark_failed(claimed, "the alerter lost its lock before sending", None)
                log.warning("alert %s not sent: this alerter lost its lock", entry.doc_id)
                break
            try:
                delivery = None
                if claimed.maybe_posted:
                    delivery = self._find_posted(notifier, claimed, reply_to)
                fresh = delivery is None
                if delivery is None:
                    delivery = notifier.send(entry.alert, reply_to=reply_to)
            except Exception as exc:
                # Whatever went wrong, the entry goes back to pending with the cause.
                retry_at = None
                maybe = True  # an unknown failure could have happened after posting
                if isinstance(exc, NotifierError):
                    maybe = exc.maybe_delivered
                    if exc.retry_after:
                        retry_at = now + timedelta(seconds=exc.retry_after)
                cause = (
                    str(exc) if isinstance(exc, NotifierError) else f"{type(exc).__name__}: {exc}"
                )
                log.warning("alert %s not delivered, kept in the outbox: %s", entry.doc_id, cause)
                self.state.mark_failed(claimed, cause, retry_at, maybe_posted=maybe)
                down.add(entry.channel)
                continue
            self.state.mark_delivered(claimed, delivery, now)
            if fresh and all(a.alert_id != entry.alert_id for a in sent):
                sent.append(entry.alert)
        self._maybe_prune(now)
        return sent

    def _leading(self) -> bool:
        """Without a leadership always; with one, while it is held (as last renewed)."""
        return self.leadership is None or self.leadership.fence is not None

    def _still_leading(self) -> bool:
        """`_leading`, confirmed in the shared store now (Redis unreachable: not leading)."""
        if self.leadership is None:
            return True
        try:
            return self.leadership.renew()
        except Exception as exc:
            log.warning("the alerter lock cannot be confirmed (%s): not sending", exc)
            return False

    def _fenced_out(self, entry: OutboxEntry) -> bool:
        """A `sending` entry claimed under an older alerter leadership than ours: its
        alerter lost the lock, so it has stopped sending (see the module doc)."""
        mine = self.leadership.fence if self.leadership is not None else None
        if mine is None or entry.fence is None or entry.fence >= mine:
            return False
        log.warning("alert %s was claimed by %s under alerter fence %d, older than ours (%d): "
                    "taking it over", entry.doc_id, entry.owner, entry.fence, mine)  # fmt: skip
        return True

    def _notifier_of(self, entry: OutboxEntry) -> Notifier | None:
        """The channel an entry goes to: the default one for an entry without a channel."""
        if entry.channel is None:
            return self.notifier
        notifier = self.channels.get(entry.channel)
        if notifier is None:
            log.warning(
                "alert %s waits for channel %r, which is not configured any more",
                entry.alert_id, entry.channel,
            )  # fmt: skip
        return notifier

    def _acknowledged(self, entry: OutboxEntry, now: datetime) -> bool:
        """Whether the alert an escalation entry escalates was acknowledged; if so the
        entry is cancelled (settled without sending)."""
        assert entry.escalates is not None
        ack = self.state.acknowledgement(entry.escalates)
        if ack is None:
            return False
        by = f" by {ack.by}" if ack.by else ""
        with contextlib.suppress(StateConflict):  # another daemon settled it meanwhile
            self.state.mark_cancelled(entry, f"acknowledged at {ack.at.isoformat()}{by}", now)
        log.info("alert %s was acknowledged%s: not escalating to %s", entry.escalates, by, entry.channel)
        return True

    def prune(self, now: datetime | None = None) -> int:
        """Forget delivered alerts older than `alerts.history` (at least two days).

        Spike alerts are only ever re-derived for the last few hours and high-reach ones
        for the last day, so older entries no longer guard against repeats.
        """
        now = require_utc(now, "now") if now is not None else require_utc(self.clock(), "clock()")
        keep = max(self.config.alerts.history, PRUNE_MIN_AGE)
        removed = self.state.prune(now - keep)
        if removed:
            log.info("pruned %d delivered alert(s) older than %s", removed, keep)
        return removed

    def _maybe_prune(self, now: datetime) -> None:
        # Housekeeping calls retry_outbox every few minutes; pruning hourly is plenty.
        if self._pruned_at is not None and now - self._pruned_at < timedelta(hours=1):
            return
        self._pruned_at = now
        try:
            self.prune(now)
        except Exception:
            log.exception("pruning the alert outbox failed; will try again later")

    def _find_posted(
        self, notifier: Notifier, entry: OutboxEntry, reply_to: Delivery | None
    ) -> Delivery | None:
        """Whether an earlier attempt's message is in the channel after all.

        None (so: post it) when it is not there, and also when the channel cannot be
        read (a webhook, a token without history scope): then a duplicate is possible,
        and the footer's alert id shows it for what it is.
        """
        hint = (
            reply_to.channel
            if reply_to and reply_to.channel
            else self.state.last_channel(entry.channel)
        )
        try:
            found = notifier.find(entry.alert, reply_to=reply_to, channel=hint)
        except CannotTell as exc:
            log.warning(
                "alert %s may already be in the channel but it cannot be checked (%s); "
                "posting it again",
                entry.alert_id,
                exc,
            )
            return None
        if found is not None:
            log.info(
                "alert %s was already posted (ts %s); not posting again", entry.alert_id, found.ts
            )
        return found

    # -- evaluation ---------------------------------------------------------------

    def _check_of(self, brand: str, now: datetime, detectors: DetectorCache | None = None) -> Check:
        return Check(
            brand=brand,
            now=now,
            reader=self.reader,
            alerts=self.config.alerts,
            discover=self._discover,
            queries=self.queries,
            failing_sources=frozenset(self.failing_sources()),
            detectors=detectors,
        )

    def _evaluate(
        self, brand: str, now: datetime, state: BrandState, *, keep: bool = True
    ) -> tuple[list[Planned], BrandState]:
        """Every registered rule, in registry order, each with its own state; the spike
        detectors kept from the last check (`keep`, the engine's `detectors`), or
        rebuilt (a dry run: what it judges is never stored, so it keeps nothing)."""
        rules = rules_for(self.config, brand, self.rules)
        check = self._check_of(brand, now, self.detectors if keep else None)
        planned, state, _ = evaluate_rules(rules, check, state)
        return planned, state

    def _discover(
        self, brand: str, start: datetime, end: datetime, sentiment: str | None = "negative"
    ) -> str | None:
        if not self.kibana_url:
            return None
        return kibana_discover_url(self.kibana_url, brand, start, end, sentiment=sentiment)

    def _with_thread(self, state: BrandState) -> BrandState:
        """Copy the open wave's Slack thread from its first alert once it was delivered."""
        wave = state.open_wave
        if wave is None or wave.thread_ts is not None:
            return state
        root = self.state.get_entry(wave.root_alert_id)
        if root is None:  # routed: the default channel's delivery, else the first one
            delivered = sorted(
                (e for e in self.state.entries(alert_id=wave.root_alert_id) if e.delivery),
                key=lambda e: e.channel != self.router.default,
            )
            if not delivered:  # its first alert was held back: the thread of the first sent
                delivered = sorted(
                    (e for e in self.state.entries(state.brand, wave_id=wave.wave_id)
                     if e.delivery and e.escalates is None),
                    key=lambda e: e.channel != self.router.default,
                )  # fmt: skip
            root = delivered[0] if delivered else None
        if root is None or root.delivery is None:
            return state
        thread = replace(wave, channel=root.delivery.channel, thread_ts=root.delivery.thread_root)
        return replace(state, open_wave=thread)
