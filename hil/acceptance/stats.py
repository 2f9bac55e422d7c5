"""Latency shifts between two runs, judged so that bench noise does not reject a firmware
and thin data does not accept one.

A single sample says little: a USB-serial adapter, a busy PC or a scheduler hiccup moves one
response by milliseconds. So each command's samples from the baseline and from the candidate
are compared as two distributions:

- Mann–Whitney U (two-sided): is one distribution shifted against the other? Rank-based,
  so it needs no normal distribution and a few outliers cannot carry it. Up to
  `EXACT_UP_TO` samples a side the p-value comes from the exact distribution of U (9
  against 9 fully separated gives p ≈ 4·10⁻⁵), beyond from the normal approximation.
- the shift of the p50 (candidate − baseline) and its ratio: the size of the change.

The size thresholds come first: a p50 that moved by less than `min_shift_ms` or less than
the factor `min_shift_ratio` is "unchanged" whatever the test says (hundreds of samples make
a 0.1 ms drift significant). A large shift is a regression (or an improvement) when the test
confirms it (p < alpha). A large upward shift the test cannot confirm is "inconclusive":
never a pass; the row says how many samples a side would settle it. Fewer than
`min_samples` on either side is thin data: judged the same way, but without bootstrap
intervals, and counted apart in the verdict. The p95 is shown, with its interval, but does
not gate: on a bench the tail is mostly the host's scheduling, not the firmware.

numpy and scipy are imported when a comparison runs, not when the rig file is read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from hil.rig.thresholds import Thresholds

Verdict = Literal["regression", "inconclusive", "improvement", "unchanged", "not judged"]

_SEED = 506  # the bootstrap is seeded: the same two runs always give the same report

#: Up to this many samples on each side, the exact distribution of U gives the p-value
#: (about 20 ms at 100 against 100); beyond, the normal approximation is close and fast.
EXACT_UP_TO = 100

#: "More samples would settle it" is not said beyond this many samples a side.
SETTLE_MAX = 10_000

@dataclass(frozen=True)
class LatencyShift:
    """One command's latency, baseline against candidate, and what that shift means."""

    command: str
    n_before: int
    n_after: int
    p50_before: float | None
    p50_after: float | None
    p95_before: float | None
    p95_after: float | None
    #: candidate − baseline, ms; the intervals are bootstrap ones (None on thin data).
    p50_shift: float | None
    p50_interval: tuple[float, float] | None
    p95_shift: float | None
    p95_interval: tuple[float, float] | None
    p_value: float | None
    verdict: Verdict
    reason: str
    #: Fewer than min_samples on a side.
    thin: bool = False
    #: Inconclusive: about how many samples a side would settle it (None: more would not).
    settle_with: int | None = None

    @property
    def ratio(self) -> float | None:
        """p50 after / p50 before."""
        if self.p50_before is None or self.p50_after is None or self.p50_before <= 0:
            return None
        return self.p50_after / self.p50_before


def _percentile(values: Sequence[float], q: float) -> float | None:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else None


def _bootstrap(before: Sequence[float], after: Sequence[float], q: float,
               t: Thresholds) -> tuple[float, float]:
    """Percentile interval of percentile-q(after) − percentile-q(before), both resampled."""
    import numpy as np

    rng = np.random.default_rng(_SEED)
    b = np.asarray(before, dtype=float)
    a = np.asarray(after, dtype=float)
    shifts = np.empty(t.resamples)
    chunk = max(1, 2_000_000 // max(len(a), len(b)))  # bounds memory for big samples
    for start in range(0, t.resamples, chunk):
        k = min(chunk, t.resamples - start)
        qa = np.percentile(rng.choice(a, size=(k, len(a))), q, axis=1)
        qb = np.percentile(rng.choice(b, size=(k, len(b))), q, axis=1)
        shifts[start:start + k] = qa - qb
    tail = (1 - t.confidence) / 2 * 100
    lo, hi = np.percentile(shifts, [tail, 100 - tail])
    return float(lo), float(hi)


def mann_whitney(before: Sequence[float], after: Sequence[float]) -> tuple[float, float]:
    """Two-sided p-value and the share of (after, before) pairs where after is slower
    (U / n·m, ties half): exact distribution of U for small samples (conservative with
    ties), normal approximation with tie correction for large ones."""
    from scipy.stats import mannwhitneyu

    exact = max(len(before), len(after)) <= EXACT_UP_TO
    result = mannwhitneyu(after, before, alternative="two-sided",
                          method="exact" if exact else "asymptotic")
    p = float(result.pvalue)
    slower = float(result.statistic) / (len(before) * len(after))
    return (1.0 if math.isnan(p) else p), slower  # all values tied: no evidence of a shift


def samples_to_settle(slower: float, alpha: float) -> int | None:
    """Samples a side with which the test would reach p < alpha if the two distributions
    are as these samples show them (`slower`: U / n·m); None if no number up to
    SETTLE_MAX would. The exact bound: n against n fully separated gives p = 2 / C(2n, n)."""
    from scipy.stats import norm

    effect = abs(slower - 0.5)
    if effect == 0:
        return None
    z = norm.ppf(1 - alpha / 2)
    for n in range(2, SETTLE_MAX + 1):
        separable = 2 / math.comb(2 * n, n) < alpha
        if separable and effect * n * math.sqrt(12 / (2 * n + 1)) >= z:
            return n
    return None


def not_judged(command: str, n_before: int, n_after: int, reason: str) -> LatencyShift:
    """A command timed in one run only (in the tests both ran): nothing to compare."""
    return LatencyShift(command, n_before, n_after, None, None, None, None, None, None,
                        None, None, None, "not judged", reason)


def judge(command: str, before: Sequence[float], after: Sequence[float],
          t: Thresholds) -> LatencyShift:
    """The latency shift of one command from `before` (baseline) to `after` (candidate)."""
    n_b, n_a = len(before), len(after)
    if not n_b or not n_a:
        return not_judged(command, n_b, n_a, "timed in one run only")
    p50_b, p50_a = _percentile(before, 50), _percentile(after, 50)
    p95_b, p95_a = _percentile(before, 95), _percentile(after, 95)
    assert p50_b is not None and p50_a is not None and p95_b is not None and p95_a is not None
    thin = n_b < t.min_samples or n_a < t.min_samples
    p, slower = mann_whitney(before, after)
    shift = p50_a - p50_b
    grown = p50_a / p50_b if p50_b > 0 else math.inf
    shrunk = p50_b / p50_a if p50_a > 0 else math.inf
    large = abs(shift) >= t.min_shift_ms and max(grown, shrunk) >= t.min_shift_ratio
    settle = None
    verdict: Verdict
    if not large:
        verdict = "unchanged"
        reason = (f"too small to matter: p50 {shift:+.2f} ms (x{grown:.2f}), under "
                  f"{t.min_shift_ms:g} ms or x{t.min_shift_ratio:g}")
    elif p < t.alpha:
        verdict = "regression" if shift > 0 else "improvement"
        reason = f"p50 {shift:+.2f} ms (x{grown:.2f}), p = {p:.2g}"
    elif shift < 0:
        verdict = "unchanged"
        reason = f"p50 {shift:+.2f} ms (x{grown:.2f}) faster, not significant (p = {p:.2g})"
    else:
        verdict = "inconclusive"
        settle = samples_to_settle(slower, t.alpha)
        reason = (f"p50 {shift:+.2f} ms (x{grown:.2f}) on {n_b}/{n_a} samples, not "
                  f"significant (p = {p:.2g} >= {t.alpha:g}): "
                  + (f"about {settle} samples a side would settle it" if settle else
                     "the samples overlap too much for more of them to settle it"))
    if thin and verdict != "inconclusive":
        reason += f" (thin: fewer than {t.min_samples} samples)"
    intervals = (None, None) if thin else (_bootstrap(before, after, 50, t),
                                           _bootstrap(before, after, 95, t))
    return LatencyShift(command, n_b, n_a, p50_b, p50_a, p95_b, p95_a, shift, intervals[0],
                        p95_a - p95_b, intervals[1], p, verdict, reason, thin, settle)
