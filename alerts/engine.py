"""The alert engine: Elasticsearch counts -> detector -> alerts -> outbox -> notifier.

At every check, for every brand:

1. count negative and all (scored) mentions per interval over `alerts.history`, ending
   at `now - alerts.query_delay` rounded down to a whole interval, so only complete
   intervals that crawling and indexing have caught up with are judged;
2. rebuild the detector from those counts (`warm`) plus the alert part of its state
   kept in Elasticsearch (open wave, cooldown), and feed it the intervals it has not
   judged yet; a restarted daemon therefore continues exactly where the last check
   stopped, and judges nothing twice;
3. turn its events into `Alert`s with the top negative posts of the window and a
   Kibana Discover link; run the high-reach rule over recent negative mentions;
4. write each alert to the outbox (deterministic id, create-only) and only then the
   brand's new state; deliver the outbox in order.

Delivery guarantees (see docs/slack.md):

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
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from elasticsearch import Elasticsearch, NotFoundError

from alerts.detector import (
    Point,
    SpikeContinuing,
    SpikeDetector,
    SpikeEnded,
    SpikeEvent,
    SpikeStarted,
)
from alerts.model import Alert, AlertKind, Delivery, alert_id_for, wave_id_for
from alerts.notifiers.base import CannotTell, Notifier, NotifierError, kibana_discover_url
from alerts.rules import HighReachRule
from alerts.state import AlertStateStore, BrandState, OpenWave, OutboxEntry, StateConflict
from alerts.visibility import Visibility
from brandpulse.alert_settings import HighReachSettings, SpikeSettings
from brandpulse.config import Config
from brandpulse.mention import Mention
from store.queries import counts_per_interval, search_mentions
from store.setup import alias_name

log = logging.getLogger(__name__)

# A high-reach post that reaches us more than a day after it was written is old news.
HIGH_REACH_LOOKBACK = timedelta(hours=24)
# How long a claimed (`sending`) entry is left alone before it counts as abandoned by a
# crashed daemon: well above the notifier's worst case (timeout plus bounded 429 waits).
SEND_LEASE = timedelta(minutes=5)
# Delivered alerts are kept at least this long (and at least `alerts.history`).
PRUNE_MIN_AGE = timedelta(days=2)
# The longest stretch of missed intervals judged after a daemon was down.
CATCH_UP = timedelta(hours=6)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _floor(at: datetime, step: timedelta) -> datetime:
    return at - ((at - _EPOCH) % step)


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at.isoformat()}: the engine works in aware UTC")
    return at.astimezone(UTC)


@dataclass(frozen=True)
class _Counts:
    at: datetime
    negative: int
    total: int  # scored mentions only: unscored ones would dilute the negative share


@dataclass(frozen=True)
class _BrandView:
    """A mention as one of its brands sees it: `sentiment_label` (which the high-reach
    rule reads first) is the brand's own bucket -- its label, or "uncertain" -- or the
    post's label for a mention scored before per-brand sentiment existed. The rest is
    the mention's."""

    mention: Mention
    sentiment_label: str | None

    @classmethod
    def of(cls, mention: Mention, brand: str) -> _BrandView:
        own = [b.bucket for b in mention.brand_sentiments if b.brand == brand]
        if own:
            return cls(mention, own[0])
        return cls(mention, mention.sentiment.label if mention.sentiment else None)

    def __getattr__(self, name: str) -> object:
        return getattr(self.mention, name)


@dataclass(frozen=True)
class _Planned:
    alert: Alert
    root_alert_id: str | None


class AlertEngine:
    """Runs the alert rules for every configured brand.

    `check(now)` evaluates, records and delivers, returning what was delivered (new
    alerts and earlier ones that were waiting in the outbox). `dry_run(now)` returns
    what `check` would enqueue, without writing or sending anything.
    """

    def __init__(
        self,
        config: Config,
        es: Elasticsearch,
        notifier: Notifier | None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        owner: str | None = None,
        mentions_index: str | None = None,
    ) -> None:
        self.config = config
        self.es = es
        self.notifier = notifier
        self.clock = clock
        prefix = config.elasticsearch.index_prefix
        self.mentions_index = mentions_index or alias_name(prefix)
        self.state = AlertStateStore(es, prefix)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.kibana_url = config.slack.kibana_url or config.kibana.url
        self._installed = False
        self._pruned_at: datetime | None = None

    # -- public API -------------------------------------------------------------

    def install(self) -> None:
        """Create the state index if missing (also done by the first check)."""
        self.state.install()
        self._installed = True

    def check(self, now: datetime | None = None) -> list[Alert]:
        now = _utc(now) if now is not None else _utc(self.clock())
        if not self.config.alerts.enabled:
            return []
        if not self._installed:
            self.install()
        failures: list[tuple[str, Exception]] = []
        for brand in self.config.brands:
            try:
                self._check_brand(brand.name, now)
            except Exception as exc:
                # One brand's bad query or conflict must not silence the others.
                log.exception("alert check for brand %s failed", brand.name)
                failures.append((brand.name, exc))
        sent = self.retry_outbox(now)
        if failures and len(failures) == len(self.config.brands):
            # Nothing was checked (Elasticsearch down?): let the caller see it.
            name, exc = failures[-1]
            raise RuntimeError(f"alert check failed for every brand; last ({name}): {exc}") from exc
        return sent

    def _check_brand(self, brand: str, now: datetime) -> None:
        state = self.state.load_brand(brand)
        planned, new_state = self._evaluate(brand, now, state)
        # Outbox first: a crash before the state write re-derives the same alerts
        # (same ids) at the next check, and create-only enqueueing drops the repeats.
        for seq, plan in enumerate(planned):
            entry = OutboxEntry(
                alert=plan.alert,
                status="pending",
                created_at=now,
                seq=seq,
                root_alert_id=plan.root_alert_id,
            )
            if not self.state.enqueue(entry):
                log.info("alert %s is already in the outbox", plan.alert.alert_id)
        new_state = self._with_thread(new_state)
        try:
            self.state.save_brand(replace(new_state, updated_at=now, owner=self.owner))
        except StateConflict:
            # Another daemon checked this brand meanwhile; it derived the same alerts
            # under the same ids, so there is nothing to undo.
            log.info("brand %s was checked concurrently by another daemon", brand)

    def dry_run(self, now: datetime | None = None) -> list[Alert]:
        now = _utc(now) if now is not None else _utc(self.clock())
        alerts: list[Alert] = []
        for brand in self.config.brands:
            state = self.state.load_brand(brand.name)
            planned, _ = self._evaluate(brand.name, now, state)
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
        now = _utc(now) if now is not None else _utc(self.clock())
        out: dict[str, Visibility | None] = {}
        for brand in self.config.brands:
            settings = self.config.spike_settings(brand.name)
            step = settings.interval
            end = _floor(now - self.config.alerts.query_delay, step)
            start = _floor(end - self.config.alerts.history, step)
            detector = SpikeDetector(brand.name, settings)
            if end > start:
                grid = self._counts(brand.name, start, end, step)
                detector.warm(Point(c.at, c.negative, c.total) for c in grid)
            out[brand.name] = detector.visibility(factor)
        return out

    def retry_outbox(self, now: datetime | None = None) -> list[Alert]:
        """Deliver what waits in the outbox, oldest first; return what went out.

        Per brand the order is kept: a reply waits for its wave's first message (it
        needs its `ts`), and after a failure the rest of that brand waits. A failing
        channel stops the round: the next check tries again.
        """
        now = _utc(now) if now is not None else _utc(self.clock())
        if self.notifier is None:
            return []
        if not self._installed:
            self.install()
        sent: list[Alert] = []
        blocked: set[str] = set()
        for entry in self.state.undelivered():
            brand = entry.alert.brand
            if brand in blocked:
                continue
            if entry.status == "sending" and entry.lease_until and entry.lease_until > now:
                blocked.add(brand)  # another daemon is sending it right now
                continue
            if entry.next_attempt_at and entry.next_attempt_at > now:
                blocked.add(brand)  # the channel asked us to wait (Retry-After)
                continue
            if entry.status == "sending":
                log.warning(
                    "alert %s was claimed by %s and never confirmed", entry.alert_id, entry.owner
                )
            reply_to = None
            if entry.root_alert_id and entry.root_alert_id != entry.alert_id:
                root = self.state.get_entry(entry.root_alert_id)
                if root is not None and root.status != "delivered":
                    blocked.add(brand)
                    continue
                reply_to = root.delivery if root is not None else None
            try:
                claimed = self.state.claim(entry, self.owner, now, now + SEND_LEASE)
            except StateConflict:
                blocked.add(brand)
                continue
            try:
                delivery = None
                if claimed.maybe_posted:
                    delivery = self._find_posted(claimed, reply_to)
                fresh = delivery is None
                if delivery is None:
                    delivery = self.notifier.send(entry.alert, reply_to=reply_to)
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
                log.warning("alert %s not delivered, kept in the outbox: %s", entry.alert_id, cause)
                self.state.mark_failed(claimed, cause, retry_at, maybe_posted=maybe)
                break
            self.state.mark_delivered(claimed, delivery, now)
            if fresh:
                sent.append(entry.alert)
        self._maybe_prune(now)
        return sent

    def prune(self, now: datetime | None = None) -> int:
        """Forget delivered alerts older than `alerts.history` (at least two days).

        Spike alerts are only ever re-derived for the last few hours and high-reach ones
        for the last day, so older entries no longer guard against repeats.
        """
        now = _utc(now) if now is not None else _utc(self.clock())
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

    def _find_posted(self, entry: OutboxEntry, reply_to: Delivery | None) -> Delivery | None:
        """Whether an earlier attempt's message is in the channel after all.

        None (so: post it) when it is not there, and also when the channel cannot be
        read (a webhook, a token without history scope): then a duplicate is possible,
        and the footer's alert id shows it for what it is.
        """
        assert self.notifier is not None
        hint = reply_to.channel if reply_to and reply_to.channel else self.state.last_channel()
        try:
            found = self.notifier.find(entry.alert, reply_to=reply_to, channel=hint)
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

    def _evaluate(
        self, brand: str, now: datetime, state: BrandState
    ) -> tuple[list[_Planned], BrandState]:
        settings = self.config.spike_settings(brand)
        planned, state = self._spike(brand, now, state, settings)
        high, state = self._high_reach(brand, now, state)
        return planned + high, state

    def _counts(self, brand: str, start: datetime, end: datetime, step: timedelta) -> list[_Counts]:
        try:
            rows = counts_per_interval(
                self.es, self.mentions_index, start, end, step, brands=[brand]
            )
        except NotFoundError:
            rows = []  # no mention indexed yet: every interval is empty
        found = {r.start: r for r in rows}
        grid: list[_Counts] = []
        at = start
        while at < end:
            r = found.get(at)
            if r is None:
                grid.append(_Counts(at, 0, 0))
            else:
                grid.append(_Counts(at, r.negative, r.negative + r.neutral + r.positive))
            at += step
        return grid

    def _spike(
        self, brand: str, now: datetime, state: BrandState, settings: SpikeSettings
    ) -> tuple[list[_Planned], BrandState]:
        step = settings.interval
        end = _floor(now - self.config.alerts.query_delay, step)
        start = _floor(end - self.config.alerts.history, step)
        if end <= start:
            return [], state
        grid = self._counts(brand, start, end, step)
        detector = (
            SpikeDetector.from_state(state.detector, settings)
            if state.detector
            else SpikeDetector(brand, settings)
        )
        # Only intervals never judged are judged. After a long absence (or on the very
        # first check) older ones are history only: alerting now on last week's wave
        # would be noise, while a few hours of catch-up keep a wave that ran through a
        # restart coherent (its continuing/ended messages still arrive).
        oldest_new = end - max(settings.window, CATCH_UP)
        if state.last_fed is not None:
            oldest_new = max(oldest_new, state.last_fed + step)
        elif grid:
            oldest_new = grid[-1].at
        history = [c for c in grid if c.at < oldest_new]
        fresh = [c for c in grid if c.at >= oldest_new]
        detector.warm(Point(c.at, c.negative, c.total) for c in history)
        events: list[SpikeEvent] = []
        for c in fresh:
            event = detector.observe(Point(c.at, c.negative, c.total))
            if event is None:
                continue
            if isinstance(event, SpikeContinuing) and event.score < settings.end_threshold:
                # The detector reports an open wave hourly, even while it is dying down
                # towards its end; "still elevated" over a normal window would mislead,
                # and "back to normal" follows shortly.
                log.info("%s: wave winding down, no 'still elevated' message", brand)
                continue
            events.append(event)

        planned = [self._spike_alert(brand, event, grid, settings) for event in events]
        detector_state = detector.to_state(include_history=False)
        cooldown = detector_state.get("cooldown_until")
        new_state = replace(
            state,
            detector=detector_state,
            last_fed=grid[-1].at if grid else state.last_fed,
            cooldown_until=datetime.fromisoformat(cooldown) if cooldown else None,
            open_wave=self._next_wave(state.open_wave, planned, now),
        )
        return planned, new_state

    @staticmethod
    def _next_wave(
        wave: OpenWave | None, planned: list[_Planned], now: datetime
    ) -> OpenWave | None:
        for plan in planned:
            alert = plan.alert
            if alert.kind == "ended":
                wave = None
            elif wave is None or wave.wave_id != alert.wave_id:
                assert alert.wave_started_at is not None
                wave = OpenWave(
                    wave_id=alert.wave_id,
                    started_at=alert.wave_started_at,
                    root_alert_id=plan.root_alert_id or alert.alert_id,
                    last_update=now,
                )
            else:
                wave = replace(wave, last_update=now)
        return wave

    def _spike_alert(
        self, brand: str, event: SpikeEvent, grid: list[_Counts], settings: SpikeSettings
    ) -> _Planned:
        step = settings.interval
        window_end = event.at + step
        window_start = window_end - event.window  # the window that judged the wave
        in_window = [c for c in grid if window_start <= c.at < window_end]
        total = sum(c.total for c in in_window)
        negative = sum(c.negative for c in in_window)

        kind: AlertKind
        if isinstance(event, SpikeStarted):
            kind, started_at = "started", event.at
            score: float | None = event.score
        elif isinstance(event, SpikeContinuing):
            kind, started_at, score = "continuing", event.started_at, event.score
        else:
            assert isinstance(event, SpikeEnded)
            kind, started_at, score = "ended", event.started_at, None

        wave_id = wave_id_for(brand, started_at)
        root = alert_id_for("started", brand, wave_id, started_at + step)
        # The detector dates a wave by the interval it was detected in; a reader takes
        # "started" to mean when the elevated window began.
        began = started_at + step - event.window
        # The usual share is taken from before the wave, or the wave would raise it.
        before = [c for c in grid if c.at < began]
        usual_total = sum(c.total for c in before)
        usual_share = sum(c.negative for c in before) / usual_total if usual_total else None
        if isinstance(event, SpikeStarted) and event.expected_share is not None:
            usual_share = event.expected_share
        posts: tuple[Mention, ...] = ()
        if kind != "ended":
            posts = self._top_posts(brand, window_start, window_end)
        link_from = min(window_start, began)
        alert = Alert(
            kind=kind,
            brand=brand,
            wave_id=wave_id,
            interval_start=window_start,
            interval_end=window_end,
            observed=event.observed,
            expected=float(event.expected),
            total=total,
            negative_share=negative / total if total else None,
            usual_share=usual_share,
            score=score,
            signal=event.signal,
            wave_started_at=began,
            top_posts=posts,
            discover_url=self._discover(brand, link_from, window_end),
        )
        return _Planned(alert, None if kind == "started" else root)

    def _top_posts(self, brand: str, start: datetime, end: datetime) -> tuple[Mention, ...]:
        try:
            page = search_mentions(
                self.es,
                self.mentions_index,
                brand,
                start,
                end,
                sentiment="negative",
                sort="reach",
                page_size=self.config.alerts.top_posts,
            )
        except NotFoundError:
            return ()
        return tuple(page.mentions)

    def _discover(self, brand: str, start: datetime, end: datetime) -> str | None:
        if not self.kibana_url:
            return None
        return kibana_discover_url(self.kibana_url, brand, start, end)

    def _high_reach(
        self, brand: str, now: datetime, state: BrandState
    ) -> tuple[list[_Planned], BrandState]:
        try:
            brand_settings = self.config.brand(brand).high_reach
        except KeyError:
            brand_settings = None
        settings: HighReachSettings = brand_settings or self.config.alerts.high_reach
        rule = (
            HighReachRule.from_state(state.high_reach, settings)
            if state.high_reach
            else HighReachRule(brand, settings)
        )
        candidates: dict[str, Mention] = {}
        start = now - HIGH_REACH_LOOKBACK
        for label in settings.labels:
            if label not in ("negative", "neutral", "positive"):
                continue
            after = None
            while True:
                try:
                    page = search_mentions(
                        self.es,
                        self.mentions_index,
                        brand,
                        start,
                        now,
                        sentiment=label,  # type: ignore[arg-type]
                        sort="reach",
                        page_size=100,
                        search_after=after,
                    )
                except NotFoundError:
                    break
                reached = [m for m in page.mentions if (m.author_reach or 0) >= settings.min_reach]
                candidates.update((m.id, m) for m in reached)
                # Sorted by reach, descending: past the first one below the bar, none qualify.
                if len(reached) < len(page.mentions) or page.next_after is None:
                    break
                after = page.next_after
        planned: list[_Planned] = []
        for mention in sorted(candidates.values(), key=lambda m: (m.created_at, m.id)):
            # The search chose the mention by the brand's own sentiment; the rule judges
            # the same one (a post praising one brand can attack this one).
            if rule.observe(_BrandView.of(mention, brand)) is None:
                continue
            at = mention.created_at
            planned.append(
                _Planned(
                    Alert(
                        kind="high_reach",
                        brand=brand,
                        wave_id=mention.id,
                        interval_start=at,
                        interval_end=at,
                        observed=1,
                        expected=0.0,
                        signal="reach",
                        top_posts=(mention,),
                        discover_url=self._discover(
                            brand, at - timedelta(hours=1), at + timedelta(hours=1)
                        ),
                    ),
                    None,
                )
            )
        return planned, replace(state, high_reach=rule.to_state())

    def _with_thread(self, state: BrandState) -> BrandState:
        """Copy the open wave's Slack thread from its first alert once it was delivered."""
        wave = state.open_wave
        if wave is None or wave.thread_ts is not None:
            return state
        root = self.state.get_entry(wave.root_alert_id)
        if root is None or root.delivery is None:
            return state
        thread = replace(wave, channel=root.delivery.channel, thread_ts=root.delivery.thread_root)
        return replace(state, open_wave=thread)
