"""hil.farm.schedule: the order `--share` deals the tests in, held against xdist's own
worksteal scheduler (the real class, with workers simulated in time)."""

from __future__ import annotations

import heapq
from types import SimpleNamespace

import pytest
from xdist.scheduler.worksteal import WorkStealingScheduling

from hil.farm.schedule import deal, slice_sizes

#: Test durations (s) as a shared run on the simulator gave them: the long ones come late
#: in the suites' order, as they do there (keep-alive, throughput series, idle drop).
SUITE = [(f"suites/test_a.py::t{i}", 0.3) for i in range(60)] + [
    ("suites/test_mipstart.py::test_unused_connection_is_dropped", 3.1),
    ("suites/test_sessions.py::test_keepalive_holds_an_idle_link", 8.2),
] + [(f"suites/test_b.py::t{i}", 0.3) for i in range(30)] + [
    (f"suites/test_throughput.py::test_mpubex_1360_back_to_back[{q}]", 4.0) for q in range(3)
] + [(f"suites/test_status.py::t{i}", 0.35) for i in range(4)]


class _Worker:
    """An xdist worker as the scheduler sees it: a queue it runs head first, and the steal
    rule of xdist.remote (all the asked tests, or none when one is already running)."""

    def __init__(self, name: str) -> None:
        self.name, self.queue, self.shutting_down = name, [], False
        self.gateway = SimpleNamespace(id=name)
        self.sched: WorkStealingScheduling | None = None
        self.asked: list[int] | None = None

    def send_runtest_some(self, indices: list[int]) -> None:
        self.queue.extend(indices)

    def send_steal(self, indices: list[int]) -> None:
        self.asked = list(indices)  # answered after the scheduler's call, as over the wire

    def answer_steal(self) -> None:
        assert self.sched is not None
        asked, self.asked = self.asked, None
        if asked is None:
            return
        taken = [] if self.queue and self.queue[0] in asked else asked
        self.queue = [i for i in self.queue if i not in taken]
        self.sched.remove_pending_tests_from_node(self, taken)  # type: ignore[arg-type]

    def shutdown(self) -> None:
        self.shutting_down = True


def makespan(order: list[str], seconds: dict[str, float], workers: int) -> float:
    """When the last of `workers` finishes `order` under xdist's worksteal scheduler."""
    sched = WorkStealingScheduling(SimpleNamespace(getvalue=lambda _: [f"{workers}*popen"]))
    nodes = [_Worker(f"gw{i}") for i in range(workers)]
    for node in nodes:
        node.sched = sched
        sched.add_node(node)  # type: ignore[arg-type]
    for node in nodes:
        sched.add_node_collection(node, order)  # type: ignore[arg-type]
    sched.schedule()
    clock: list[tuple[float, int, int]] = []  # (finish time, worker, test index)

    def start(w: int, now: float) -> None:
        node = nodes[w]
        if node.queue and not any(e[1] == w for e in clock):
            heapq.heappush(clock, (now + seconds[order[node.queue[0]]], w, node.queue[0]))

    for w in range(workers):
        start(w, 0.0)
    end = 0.0
    while clock:
        end, w, index = heapq.heappop(clock)
        nodes[w].queue.remove(index)
        sched.mark_test_complete(nodes[w], index)  # type: ignore[arg-type]
        while any(n.asked is not None for n in nodes):
            for node in nodes:
                node.answer_steal()
        for other in range(workers):
            start(other, end)
    assert not sched.has_pending
    return end


def test_slices_are_worksteals_own() -> None:
    """The first distribution of the real scheduler is the slices `deal` fills."""
    for count, workers in [(99, 3), (100, 3), (101, 3), (7, 2), (2, 3)]:
        order = [f"t{i}" for i in range(count)]
        sched = WorkStealingScheduling(SimpleNamespace(getvalue=lambda _, w=workers:
                                                       [f"{w}*popen"]))
        nodes = [_Worker(f"gw{i}") for i in range(workers)]
        for node in nodes:
            sched.add_node(node)  # type: ignore[arg-type]
        for node in nodes:
            sched.add_node_collection(node, order)  # type: ignore[arg-type]
        sched.schedule()
        assert [len(n.queue) for n in nodes] == slice_sizes(count, workers)
        assert [i for n in nodes for i in n.queue] == list(range(count))


def test_dealt_order_ends_sooner_under_worksteal() -> None:
    names = [n for n, _ in SUITE]
    seconds = dict(SUITE)
    as_collected = makespan(names, seconds, 3)
    dealt = makespan(deal(names, seconds, 3), seconds, 3)
    ideal = max(sum(seconds.values()) / 3, max(seconds.values()))
    assert dealt < as_collected - 2.0, (dealt, as_collected)
    assert dealt <= ideal * 1.05, (dealt, ideal)


def test_each_slice_starts_with_its_longest_and_holds_its_share() -> None:
    names = [n for n, _ in SUITE]
    seconds = dict(SUITE)
    order = deal(names, seconds, 3)
    assert sorted(order) == sorted(names)
    slices, at = [], 0
    for size in slice_sizes(len(order), 3):
        slices.append(order[at:at + size])
        at += size
    totals = [sum(seconds[n] for n in s) for s in slices]
    assert max(totals) <= sum(totals) / 3 * 1.05, totals  # worksteal evens out the rest
    for part in slices:
        lengths = [seconds[n] for n in part]
        assert lengths == sorted(lengths, reverse=True)


def test_unknown_tests_count_as_the_mean_and_ties_keep_the_collection_order() -> None:
    order = deal(["new", "a", "b", "c"], {"a": 1.0, "b": 1.0, "c": 4.0}, 2)
    # new is taken as 2 s: beside a (3 s) in one slice, c and b (5 s) in the other
    assert order == ["c", "b", "new", "a"]


@pytest.mark.parametrize("workers", [0, 1])
def test_one_worker_keeps_the_order(workers: int) -> None:
    assert deal(["b", "a"], {"a": 9.0}, workers) == ["b", "a"]
