"""The order in which `--share` deals the tests out: longest first, in even piles.

xdist's `worksteal` scheduler hands each of N workers a contiguous slice of the collection
(as many tests each as the counts allow) and later lets an idle worker take the tail of the
longest queue. In the suites' own order the long tests (a keep-alive held, a throughput
series) sit together near the end, so one worker ends seconds after the others. Ordered
here, each slice holds its share of the long tests and starts with them, and what is
stolen at the end is short. The durations come from an earlier run's results.json; a test
it does not know is taken to last as long as the mean of those it does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def slice_sizes(count: int, workers: int) -> list[int]:
    """How many tests worksteal's first distribution gives each worker (its own rule:
    the pending tests over the workers still to serve, rounded down)."""
    sizes, left = [], count
    for remaining in range(workers, 0, -1):
        sizes.append(left // remaining)
        left -= sizes[-1]
    return sizes


def deal(nodeids: Sequence[str], seconds: Mapping[str, float], workers: int) -> list[str]:
    """`nodeids` reordered for `workers` slices: each test, longest first, to the slice
    with the least time so far that still has room; each slice longest first. The order of
    equal durations is the collection's, so every worker computes the same order."""
    if workers < 2 or not nodeids:
        return list(nodeids)
    known = [seconds[n] for n in nodeids if n in seconds]
    guess = sum(known) / len(known) if known else 0.0
    length = {n: seconds.get(n, guess) for n in nodeids}
    by_length = sorted(range(len(nodeids)), key=lambda i: (-length[nodeids[i]], i))
    sizes = slice_sizes(len(nodeids), workers)
    piles: list[list[int]] = [[] for _ in sizes]
    totals = [0.0] * len(sizes)
    for index in by_length:
        pile = min((p for p in range(len(sizes)) if len(piles[p]) < sizes[p]),
                   key=lambda p: (totals[p], p))
        piles[pile].append(index)
        totals[pile] += length[nodeids[index]]
    return [nodeids[i] for pile in piles for i in pile]
