"""Count statistics for the spike detector: exact tails and what a sensitivity means.

Pure functions, no state. `SpikeDetector` judges a window by how improbable its
count is under the brand's expected level, and pages when a line at that count
would produce no more than `false_alerts_per_month` false alerts on noise alone:

* `tail(x, mu, alpha)`: P(X >= x) for a negative binomial count with mean `mu`
  and over-dispersion `alpha` (variance mu + alpha*mu^2; alpha = 0 is Poisson),
  computed with the regularised incomplete beta / gamma functions, so it is
  exact at 0.2 mentions a window as at 20,000.
* `false_alerts_per_month(x, mu, alpha, window, interval)`: how many times a
  month a window of noise alone would reach `x`, checked every `interval` with a
  sliding `window`: windows per month x scan multiplicity x tail (Naus'
  approximation for scan statistics; see `scan_multiplicity`).
* `surprise(p)`: the tail probability as a one-sided normal z ("score" in the
  events, so `end_threshold` keeps its meaning).
* `share_tails(k, n, share, concentration)`: both tails of a brand's count among
  `n` mentions under a beta-binomial share (the share-of-voice rule).

Why a per-month rate: a PR lead can say "one false alert a month per brand is
fine"; a z-score or a p-value means nothing to them, and the same p-value gives
very different false-alert rates at a 5-minute and a 1-hour check cadence.
"""

from __future__ import annotations

import math
from datetime import timedelta

from scipy.special import betainc, gammainc, ndtri

MONTH = timedelta(days=30)
_TINY = 1e-300


def tail(x: float, mu: float, alpha: float = 0.0) -> float:
    """P(X >= x) for X negative binomial with mean `mu` and variance mu + alpha*mu^2.

    alpha <= 0 gives Poisson. `x` <= 0 gives 1. The NB is a Poisson whose rate is
    Gamma-distributed with squared coefficient of variation alpha: the brand's
    level is not known exactly (it wanders hour to hour, and it was estimated
    from finite history), which widens the tail.
    """
    k = math.ceil(x)
    if k <= 0:
        return 1.0
    if mu <= 0.0:
        return 0.0
    if alpha <= 1e-9:
        # P(Poisson(mu) >= k) = P(k, mu), the regularised lower incomplete gamma.
        return float(gammainc(k, mu))
    r = 1.0 / alpha
    q = r / (r + mu)  # "success" probability of the NB
    # P(NB >= k) = I_{1-q}(k, r), the regularised incomplete beta.
    return float(betainc(k, r, 1.0 - q))


def surprise(p: float) -> float:
    """One-sided normal z with the same tail probability: 1.35e-3 -> 3.0."""
    return float(-ndtri(max(min(p, 1.0), _TINY)))


def scan_multiplicity(x: float, mu: float, steps: int) -> float:
    """How many distinct crossings per window length a sliding scan makes at count `x`.

    A window slid one interval at a time is not one test per window length: the
    sum can cross `x` several times as intervals enter and leave. Naus'
    approximation for Poisson scan statistics gives about (x - mu)^2 / x
    crossings per window length per unit tail probability (3 at 0.4 -> 4
    mentions, 5 at 2.8 -> 10, 11 at 100 -> 140). It cannot exceed the number of
    checks in a window (`steps`), nor fall under 1.
    """
    if x <= mu or x <= 0:
        return 1.0
    return min(float(steps), max(1.0, (x - mu) ** 2 / x))


def false_alerts_per_month(
    x: float, mu: float, alpha: float, window: timedelta, interval: timedelta
) -> float:
    """Expected false alerts per month of a line at count `x` (noise alone, model right)."""
    steps = max(1, round(window / interval))
    windows = MONTH / window
    return windows * scan_multiplicity(x, mu, steps) * tail(x, mu, alpha)


def smallest_alerting_count(
    mu: float, alpha: float, window: timedelta, interval: timedelta, per_month: float
) -> int:
    """The smallest window count whose false-alert rate is within `per_month`."""
    lo = max(1, math.floor(mu))
    if false_alerts_per_month(lo, mu, alpha, window, interval) <= per_month:
        return lo
    hi = lo + 1
    while false_alerts_per_month(hi, mu, alpha, window, interval) > per_month:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if false_alerts_per_month(mid, mu, alpha, window, interval) > per_month:
            lo = mid
        else:
            hi = mid
    return hi


def share_tails(k: int, n: int, share: float, concentration: float) -> tuple[float, float]:
    """(P(K <= k), P(K >= k)) for K, the count of one brand among `n` mentions whose
    share is uncertain: Beta-distributed with mean `share` and `concentration` a + b.

    The beta-binomial is to a share what the negative binomial is to a rate: a
    binomial whose probability varies from day to day and is known only from finite
    history; `concentration` -> infinity is the plain binomial. Exact (`scipy.stats`
    `betabinom`), so as right at 50 mentions as at 50,000.
    """
    from scipy.stats import betabinom  # scipy.stats is slow to import; only this needs it

    share = min(max(share, 1e-9), 1.0 - 1e-9)
    c = max(concentration, 1e-6)
    dist = betabinom(n, share * c, (1.0 - share) * c)
    return float(dist.cdf(k)), float(dist.sf(k - 1))


__all__ = [
    "MONTH",
    "false_alerts_per_month",
    "scan_multiplicity",
    "share_tails",
    "smallest_alerting_count",
    "surprise",
    "tail",
]
