"""Spike detectors kept with their history between checks (issue #15 item 4).

Without it every check of every spike rule rebuilds its detector: the alert part from
the stored rule state (`SpikeDetector.from_state`, no history), the history by
`warm()` over `alerts.history` of counts -- about 70 % of a judging check
(bench/alert_check.py). With `alerts.keep_detectors` an alerter process keeps instead,
per (rule, brand, watched series), the detector it used at the last check, and the
next check feeds it only the intervals it has not seen: the detector is streamed over
the counts interval by interval, as `bench/spike_nab.py` measures it.

A streamed detector is not the rebuilt one: the predictions it made for the hours
near the window's start had more history behind them, so its figures depend on when
it was last built (docs/alerting.md, "Detectors kept between checks"; why the option
is off by default). A kept detector is used only while it has been fed exactly the
counts the window holds now and its alert part is the stored one; otherwise the check
rebuilds it as before (`DetectorCache.take` returns None and says why,
`DetectorCache.rebuilds` counts the reasons):

* ``first check`` -- none kept (the process just started, or the last check of that
  series failed half-way: `take` removes the entry, `keep` puts it back only after the
  rule returned);
* ``settings`` -- the series' `SpikeSettings` differ from the kept detector's;
* ``state`` -- the stored rule state is not the one this process returned with the
  detector (`last_fed` or the detector's alert part differ): another alerter judged the
  series meanwhile, a dry run or a failed state write left it behind, or someone reset
  it;
* ``gap`` -- the kept detector is behind the window's start, or the window begins
  before the intervals it was fed (a longer `alerts.history`);
* ``counts`` -- the count of an interval it already fed changed (late mentions, a
  re-score, `rebuild-counts`).

The last one compares the window's counts, as this check read them, with the counts
the detector was fed, interval by interval: the reader hands the whole grid anyway
(`alerts.reader.count_grid`; the rollup reader keeps it between checks), and a
detector is a function of the counts it was fed and of its alert state, so equal
counts and equal state leave nothing to tell apart. It is exact whatever the reader
(raw or rollup) and whatever changed the counts, which "hours re-rolled since" is not
(a raw reader re-rolls nothing; the newest hour is read raw). Cost: two integer arrays
per series compared in C, well under a millisecond for 21 days of 5-minute intervals.

Memory, per kept series: the detector's deques are bounded by its settings (hourly
counts and totals `history_days` x 24, predictions and profiles at most a week,
recent intervals `kept_steps`), and the counts fed two arrays of
`alerts.history / interval` 8-byte integers (about 100 kB for 21 days of 5-minute
intervals). Entries are replaced in place: one per configured (rule, brand, watched
series), which are fixed for an engine's life (its configuration is).
"""

from __future__ import annotations

import logging
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts.detector import SpikeDetector
from brandpulse.alert_settings import SpikeSettings

log = logging.getLogger(__name__)

# (rule name, brand checked, brand watched): the brand watched is the same brand, or a
# competitor for the competitor rule.
Key = tuple[str, str, str]


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
        step: timedelta = settings.interval
        skip, rest = divmod(start - kept.start, step)
        if start < kept.start or rest or skip > len(kept.counts):
            return "gap"
        n = len(kept.counts) - skip  # intervals of this window already fed
        if n > len(counts):
            return "counts"  # the window ends before what was fed (a clock set back)
        if kept.counts[skip:] != counts[:n] or kept.totals[skip:] != totals[:n]:
            if log.isEnabledFor(logging.DEBUG):
                i = next(i for i in range(n) if (kept.counts[skip + i], kept.totals[skip + i])
                         != (counts[i], totals[i]))  # fmt: skip
                log.debug("counts of the interval from %s changed: fed %d/%d, now %d/%d",
                          start + i * step, kept.counts[skip + i], kept.totals[skip + i],
                          counts[i], totals[i])  # fmt: skip
            return "counts"
        return None


__all__ = ["DetectorCache", "Key", "fed_arrays"]
