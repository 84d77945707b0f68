"""Spike detectors kept with their history between checks (issue #15 item 4).

What a check at T judges with (`anchor`): the detector streamed over the counts from
`anchor(T) = floor(T - alerts.history, HISTORY_ANCHOR)` (UTC midnight) up to T, with
the stored alert part (open wave, cooldown, the levels past waves froze:
`SpikeDetector.to_state(include_history=False)`). The history's start moves once a
day, not at every check, so the detector that definition names can be built two ways
with the same result:

* rebuilt (`alerts.keep_detectors: false`, the first check of a process, a dry run,
  `alerts backtest`): the alert part from the stored rule state, the history by
  `warm()` over the counts from `anchor(T)`;
* kept (`alerts.keep_detectors`, the default): an alerter process keeps, per (rule,
  brand, watched series), the detector it used at the last check and feeds it only the
  intervals it has not seen -- about a fifth of the detector CPU of rebuilding
  (docs/benchmarks.md), one rebuild per series a day when the anchor moves.

The two are equal because a detector is a function of the counts it was fed from its
start and of its alert state: warming and judging record the same history (the
prediction of an hour inside a wave uses the level the wave froze, which the alert
part keeps for a week after the wave ended), and judging changes nothing else. A kept
detector is therefore used only while its start is this check's anchor, it has been
fed exactly the counts the window holds now and its alert part is the stored one;
otherwise the check rebuilds it (`DetectorCache.take` returns None and says why,
`DetectorCache.rebuilds` counts the reasons):

* ``first check`` -- none kept (the process just started, or the last check of that
  series failed half-way: `take` removes the entry, `keep` puts it back only after the
  rule returned);
* ``settings`` -- the series' `SpikeSettings` differ from the kept detector's;
* ``state`` -- the stored rule state is not the one this process returned with the
  detector (`last_fed` or the detector's alert part differ): another alerter judged the
  series meanwhile, a dry run or a failed state write left it behind, or someone reset
  it;
* ``anchor`` -- the window starts elsewhere than the kept detector: the day turned
  (once a day), or `alerts.history` changed;
* ``counts`` -- the count of an interval it already fed changed (late mentions, a
  re-score, `rebuild-counts`), or the window ends before what it fed (a clock set back).

The last one compares the window's counts, as this check read them, with the counts
the detector was fed, interval by interval: the reader hands the whole grid anyway
(`alerts.reader.count_grid`; the rollup reader keeps it between checks). It is exact
whatever the reader (raw or rollup) and whatever changed the counts, which "hours
re-rolled since" is not (a raw reader re-rolls nothing; the newest hour is read raw).
Cost: two integer arrays per series compared in C, well under a millisecond for 22
days of 5-minute intervals.

Memory, per kept series: the detector's deques are bounded by its settings (hourly
counts and totals `history_days` x 24, predictions and profiles at most a week,
recent intervals `kept_steps`), and the counts fed two arrays of up to
`(alerts.history + 1 day) / interval` 8-byte integers (about 100 kB for 22 days of
5-minute intervals). Entries are replaced in place: one per configured (rule, brand,
watched series), which are fixed for an engine's life (its configuration is).
"""

from __future__ import annotations

import logging
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.detector import SpikeDetector
from brandpulse.alert_settings import HISTORY_ANCHOR, SpikeSettings

log = logging.getLogger(__name__)

# (rule name, brand checked, brand watched): the brand watched is the same brand, or a
# competitor for the competitor rule.
Key = tuple[str, str, str]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def anchor(end: datetime, history: timedelta, interval: timedelta) -> datetime:
    """Where the history of a check judging up to `end` starts: `end - history` rounded
    down to UTC midnight (`HISTORY_ANCHOR`), then to a whole `interval` since the epoch.

    The one definition of the window a spike detector learns from (the daemon's checks,
    kept or rebuilt, and `alerts explain` / `alerts backtest` through the same rules):
    it moves once a day, so a detector kept from the morning's first check is the one a
    rebuild at any later check of the day would make (see the module doc). The window
    is `history` to `history + HISTORY_ANCHOR` long; `Config` checks that retention
    keeps that much.
    """
    at = end - history
    at -= (at - _EPOCH) % HISTORY_ANCHOR
    return at - (at - _EPOCH) % interval


@dataclass
class _Kept:
    settings: SpikeSettings
    detector: SpikeDetector
    start: datetime  # the interval of counts[0] / totals[0]
    counts: array  # the watched count of every interval fed since `start`, in order
    totals: array  # the total fed with it (-1: none)
    last_fed: str | None  # the rule state returned with this detector
    state: dict[str, Any] | None


def fed_arrays(points: Iterable[tuple[int, int | None]]) -> tuple[array, array]:
    """The (watched count, total or None) of consecutive intervals as two arrays."""
    counts, totals = array("q"), array("q")
    for count, total in points:
        counts.append(count)
        totals.append(-1 if total is None else total)
    return counts, totals


class DetectorCache:
    """Spike detectors kept between checks in one process (see the module doc).

    `take(...)` hands the kept detector of a series when it may continue, else None
    (rebuild); `keep(...)` stores the detector a check ended with, with the counts it
    was fed and the rule state returned. Not thread-safe: one engine checks one
    brand at a time.
    """

    def __init__(self) -> None:
        self._kept: dict[Key, _Kept] = {}
        self.rebuilds: Counter[str] = Counter()  # why detectors were rebuilt, by reason
        self.reused = 0

    def __len__(self) -> int:
        return len(self._kept)

    def take(
        self,
        key: Key,
        settings: SpikeSettings,
        state: dict[str, Any] | None,
        start: datetime,
        counts: array,
        totals: array,
    ) -> SpikeDetector | None:
        """The kept detector of `key` if it may be fed on from the window starting at
        `start` whose counts this check read are `counts`/`totals`, with the stored rule
        state `state`; else None, the reason counted in `rebuilds`. Either way the
        entry is removed until `keep` puts one back."""
        kept = self._kept.pop(key, None)
        why = self._stale(kept, settings, state or {}, start, counts, totals)
        if why is not None:
            self.rebuilds[why] += 1
            log.debug("%s/%s/%s: detector rebuilt (%s)", key[0], key[1], key[2], why)
            return None
        assert kept is not None
        self.reused += 1
        return kept.detector

    def keep(
        self,
        key: Key,
        settings: SpikeSettings,
        detector: SpikeDetector,
        start: datetime,
        counts: array,
        totals: array,
        state: dict[str, Any],
    ) -> None:
        """Keep `detector`, fed every interval from `start` with `counts`/`totals`,
        and the rule state the check returned with it (`last_fed`, `detector`)."""
        self._kept[key] = _Kept(settings, detector, start, counts, totals,
                                state.get("last_fed"), state.get("detector"))  # fmt: skip

    @staticmethod
    def _stale(
        kept: _Kept | None,
        settings: SpikeSettings,
        state: dict[str, Any],
        start: datetime,
        counts: Sequence[int],
        totals: Sequence[int],
    ) -> str | None:
        if kept is None:
            return "first check"
        if kept.settings != settings:
            return "settings"
        if state.get("last_fed") != kept.last_fed or state.get("detector") != kept.state:
            return "state"
        if start != kept.start:
            return "anchor"
        n = len(kept.counts)  # intervals of this window already fed
        if n > len(counts):
            return "counts"  # the window ends before what was fed (a clock set back)
        if kept.counts != counts[:n] or kept.totals != totals[:n]:
            if log.isEnabledFor(logging.DEBUG):
                i = next(i for i in range(n)
                         if (kept.counts[i], kept.totals[i]) != (counts[i], totals[i]))  # fmt: skip
                log.debug("counts of the interval from %s changed: fed %d/%d, now %d/%d",
                          start + i * settings.interval, kept.counts[i], kept.totals[i],
                          counts[i], totals[i])  # fmt: skip
            return "counts"
        return None


__all__ = ["DetectorCache", "Key", "anchor", "fed_arrays"]
