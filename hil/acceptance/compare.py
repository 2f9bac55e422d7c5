"""What changed from a baseline to a candidate firmware, and whether that is acceptable.

`compare(baseline, candidate, thresholds)` is pure: two Snapshots in, a Comparison out.

- Tests that changed outcome. A test that now fails or errors is a regression; one that now
  passes, an improvement; any other change (passed → skipped, not run) is shown, not gating.
- Open points (Q clauses) whose behaviour changed. Records are matched by clause, test and
  their order within the test (commands carry per-run topics and ports, so the text sent is
  not a key). The behaviour is the same when both follow the decision of clauses.md, or when
  both deviate with the same answer (per-run names, ports and durations aside). Any change
  is flagged: a changed open point needs someone to decide whether clients can live with it.
- Latency per command (hil.acceptance.stats), from the tests both runs have, so a run of
  more or fewer suites does not look like a shift.
- Throughput figures (MPUBEX-4): one figure per run, so a plain relative threshold.
- Budgets: the commands whose responses went over the candidate's budget in the candidate
  but not in the baseline (same tests, same budget).

A farm is compared like with like: module by module when both sides hold the same places
("place"), or each side's modules pooled when they do not ("pooled"); the report says which.

Renderers: a terminal table, Markdown, HTML, and the report's page "Firmware acceptance vs
<baseline>": an Allure test result whose steps are the findings, the tables attached.
"""

from __future__ import annotations

import html
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from allure_commons.model2 import (
    Attachment,
    Label,
    Parameter,
    StatusDetails,
    TestResult,
    TestStepResult,
)
from allure_commons.utils import md5

from hil.acceptance.baseline import Behaviour, Snapshot, normalize, pool
from hil.acceptance.stats import LatencyShift, judge, not_judged
from hil.rig.thresholds import Thresholds

ACCEPTABLE = 0
REGRESSIONS = 1
CANNOT_COMPARE = 2
#: No regression found, but a large latency shift the samples cannot settle.
INCONCLUSIVE = 3

Status = Literal["passed", "failed", "broken", "skipped", "unknown"]
Pairing = Literal["auto", "place", "pooled"]

_FAILING = frozenset({"failed", "error"})
_PASSING = frozenset({"passed", "xpassed"})


class CannotCompare(Exception):
    """The two runs cannot be compared (another model, nothing in common)."""


@dataclass(frozen=True)
class OutcomeChange:
    test: str
    before: str | None  # None: not in that run
    after: str | None
    kind: Literal["regression", "improvement", "changed"]
    clauses: tuple[str, ...]


@dataclass(frozen=True)
class BehaviourChange:
    clause: str
    test: str
    sent: str
    before: Behaviour | None  # None: not recorded in that run
    after: Behaviour | None

    @property
    def gating(self) -> bool:
        """Recorded by both and different; a record on one side only is shown, not gating."""
        return self.before is not None and self.after is not None


@dataclass(frozen=True)
class ThroughputChange:
    series: str
    figure: str
    before: float
    after: float
    verdict: Literal["regression", "improvement", "unchanged"]

    @property
    def change(self) -> float | None:
        return None if self.before == 0 else self.after / self.before - 1


@dataclass(frozen=True)
class BudgetBreak:
    """A command's responses over the candidate's budget, in the tests both runs have."""

    command: str
    budget_ms: tuple[float, float]  # lowest and highest budget of its tests
    over_before: int
    n_before: int
    over_after: int
    n_after: int

    @property
    def gating(self) -> bool:
        """Broken by the candidate where the baseline kept to the same budget."""
        return self.over_after > 0 and self.over_before == 0


def _few(names: Sequence[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _factor(s: LatencyShift) -> str:
    return "" if s.ratio is None else f" x{s.ratio:.3g}"


@dataclass(frozen=True)
class Comparison:
    baseline: Snapshot
    candidate: Snapshot
    thresholds: Thresholds
    outcomes: tuple[OutcomeChange, ...]
    behaviours: tuple[BehaviourChange, ...]
    latency: tuple[LatencyShift, ...]
    throughput: tuple[ThroughputChange, ...]
    common_tests: int
    notes: tuple[str, ...]
    budgets: tuple[BudgetBreak, ...] = ()
    #: how the modules were matched, in words
    pairing: str = "one module against one"

    def _of(self, verdict: str) -> list[LatencyShift]:
        return [s for s in self.latency if s.verdict == verdict]

    @property
    def problems(self) -> list[str]:
        """One line per finding that makes the candidate not acceptable."""
        out = [f"{c.test}: {c.before or 'not run'} -> {c.after}"
               for c in self.outcomes if c.kind == "regression"]
        out += [f"{b.clause} ({_short(b.test)}): {_behaviour(b.before)} -> {_behaviour(b.after)}"
                for b in self.behaviours if b.gating]
        out += [f"{s.command} latency: {s.reason}" for s in self._of("regression")]
        out += [f"{b.command} over budget: {b.over_after}/{b.n_after} responses over "
                f"{_budget(b)} ms (baseline 0/{b.n_before})" for b in self.budgets if b.gating]
        out += [f"throughput {t.series} {t.figure}: {t.before:g} -> {t.after:g}"
                for t in self.throughput if t.verdict == "regression"]
        return out

    @property
    def unsettled(self) -> list[str]:
        """One line per large latency shift that the samples cannot settle."""
        return [f"{s.command} latency: {s.reason}" for s in self._of("inconclusive")]

    @property
    def exit_code(self) -> int:
        if self.problems:
            return REGRESSIONS
        return INCONCLUSIVE if self.unsettled else ACCEPTABLE

    @property
    def verdict(self) -> str:
        return {REGRESSIONS: "NOT ACCEPTABLE", INCONCLUSIVE: "INCONCLUSIVE"}.get(
            self.exit_code, "ACCEPTABLE")

    @property
    def judged(self) -> str:
        """What was judged and what was not, counted."""
        judged = [s for s in self.latency if s.verdict not in ("inconclusive", "not judged")]
        thin = sum(s.thin for s in judged)
        parts = [f"{self.common_tests} tests compared",
                 f"{len(judged)} of {len(self.latency)} commands' latency judged"
                 + (f" ({thin} on thin data)" if thin else "")]
        parts += [f"{n} {what}" for n, what in (
            (len(self._of("inconclusive")), "inconclusive"),
            (len(self._of("not judged")), "not judged (timed in one run only)")) if n]
        return ", ".join(parts)

    @property
    def summary(self) -> str:
        """The verdict line: the verdict, what counts, what was judged and what not."""
        counts = [
            (sum(c.kind == "regression" for c in self.outcomes), "test(s) now failing"),
            (sum(b.gating for b in self.behaviours), "open-point behaviour(s) changed"),
            (len(self._of("regression")), "latency regression(s)"),
            (sum(b.gating for b in self.budgets), "command(s) newly over budget"),
            (sum(t.verdict == "regression" for t in self.throughput),
             "throughput regression(s)"),
            (len(self._of("inconclusive")), "latency shift(s) not settled"),
        ]
        found = [f"{n} {what}" for n, what in counts if n]
        if not found:
            better = (sum(c.kind == "improvement" for c in self.outcomes)
                      + len(self._of("improvement"))
                      + sum(t.verdict == "improvement" for t in self.throughput))
            other = (sum(c.kind == "changed" for c in self.outcomes)
                     + sum(not b.gating for b in self.behaviours)
                     + sum(not b.gating for b in self.budgets))
            found = [f"{n} {what}" for n, what in ((better, "improvement(s)"),
                                                   (other, "other change(s) shown")) if n]
        return f"{self.verdict}: {', '.join(found) or 'no change'}; {self.judged}"

    @property
    def headline(self) -> str:
        """One sentence for a release manager: the decision and its top reasons."""
        reasons = []
        failing = [_short(c.test) for c in self.outcomes if c.kind == "regression"]
        if failing:
            reasons.append(f"{len(failing)} test(s) now fail ({_few(failing)})")
        clauses = list(dict.fromkeys(b.clause for b in self.behaviours if b.gating))
        if clauses:
            reasons.append(f"open points changed in {_few(clauses)}")
        slower = sorted(self._of("regression"), key=lambda s: -(s.ratio or 0))
        if slower:
            reasons.append("slower: " + _few([
                f"{s.command}{_factor(s)} (p50 {_ms(s.p50_before)} -> {_ms(s.p50_after)} ms)"
                for s in slower]))
        broken = [b.command for b in self.budgets if b.gating]
        if broken:
            reasons.append(f"over budget where the baseline was not: {_few(broken)}")
        dropped = [f"{t.series} {t.figure}" for t in self.throughput if t.verdict == "regression"]
        if dropped:
            reasons.append(f"throughput down: {_few(dropped)}")
        unsettled = self._of("inconclusive")
        if unsettled:
            reasons.append("not settled: " + _few([
                f"{s.command}{_factor(s)} on {s.n_before}/{s.n_after} samples"
                + (f", ~{s.settle_with} a side would settle it" if s.settle_with else "")
                for s in unsettled]))
        skipped = [s.command for s in self._of("not judged")]
        if skipped:
            reasons.append(f"not judged: {_few(skipped)}")
        if self.exit_code == ACCEPTABLE:
            judged = len(self.latency) - len(skipped)
            reasons.insert(0, f"no test newly failing, no open point changed, no command "
                           f"slower or over budget ({self.common_tests} tests, {judged} "
                           "commands judged)")
        word = {REGRESSIONS: "Not accepted", INCONCLUSIVE: "Inconclusive"}.get(
            self.exit_code, "Accepted")
        return f"{word}: {'; '.join(reasons)}."


# ---------------------------------------------------------------------------- comparing


def _outcome_kind(before: str | None,
                  after: str | None) -> Literal["regression", "improvement", "changed"]:
    if after in _FAILING:
        return "regression"
    if before in _FAILING and after in _PASSING:
        return "improvement"
    return "changed"


def outcome_changes(baseline: Snapshot, candidate: Snapshot) -> list[OutcomeChange]:
    out = []
    for test in sorted({*baseline.tests, *candidate.tests}):
        before, b_clauses = baseline.tests.get(test, (None, ()))
        after, a_clauses = candidate.tests.get(test, (None, ()))
        if before != after:
            out.append(OutcomeChange(test, before, after, _outcome_kind(before, after),
                                     a_clauses or b_clauses))
    return out


def same_behaviour(before: Behaviour, after: Behaviour) -> bool:
    if before.follows and after.follows:
        return True
    return before.follows == after.follows and normalize(before.got) == normalize(after.got)


def _by_test(records: Iterable[Behaviour]) -> dict[tuple[str, int], Behaviour]:
    seen: dict[str, int] = {}
    out = {}
    for r in records:
        n = seen.get(r.test, 0)
        seen[r.test] = n + 1
        out[(r.test, n)] = r
    return out


def behaviour_changes(baseline: Snapshot, candidate: Snapshot,
                      tests: set[str]) -> list[BehaviourChange]:
    """Changed records, and records one run made in a test both ran but the other did not."""
    out = []
    for clause in sorted({*baseline.characterization, *candidate.characterization}):
        before = _by_test(baseline.characterization.get(clause, ()))
        after = _by_test(candidate.characterization.get(clause, ()))
        for key in sorted({*before, *after}):
            b, a = before.get(key), after.get(key)
            if key[0] not in tests or (b and a and same_behaviour(b, a)):
                continue
            shown = a or b
            assert shown is not None
            out.append(BehaviourChange(clause, key[0], normalize(shown.sent), b, a))
    return out


def latency_shifts(baseline: Snapshot, candidate: Snapshot,
                   thresholds: Thresholds) -> list[LatencyShift]:
    """Per command, the samples of the tests that both runs have, judged; a command timed
    in those tests by one run only is "not judged"."""
    order = {"regression": 0, "inconclusive": 1, "improvement": 2, "unchanged": 3,
             "not judged": 4}
    tests = set(baseline.tests) & set(candidate.tests)
    out = []
    for command in sorted({*baseline.latency, *candidate.latency}):
        b_tests = baseline.latency.get(command, {})
        a_tests = candidate.latency.get(command, {})
        common = sorted(set(b_tests) & set(a_tests))
        if common:
            before = [x for t in common for x in b_tests[t]]
            after = [x for t in common for x in a_tests[t]]
            out.append(judge(command, before, after, thresholds))
            continue
        n_b = sum(len(v) for t, v in b_tests.items() if t in tests)
        n_a = sum(len(v) for t, v in a_tests.items() if t in tests)
        if n_b or n_a:
            side = "baseline" if n_b else "candidate"
            out.append(not_judged(command, n_b, n_a,
                                  f"timed by the {side} only in the tests both ran"))
    return sorted(out, key=lambda s: (order[s.verdict], s.command))


def budget_breaks(baseline: Snapshot, candidate: Snapshot) -> list[BudgetBreak]:
    """Per command with a budget in the candidate: its responses over that budget in each
    run, from the tests both timed it in (the baseline held to the candidate's budget)."""
    out = []
    for command, held in sorted(candidate.budgets.items()):
        b_tests = baseline.latency.get(command, {})
        a_tests = candidate.latency.get(command, {})
        common = sorted(set(held) & set(b_tests) & set(a_tests))
        if not common:
            continue
        over_b = sum(x > held[t] for t in common for x in b_tests[t])
        over_a = sum(x > held[t] for t in common for x in a_tests[t])
        if over_a or over_b:
            budgets = [held[t] for t in common]
            out.append(BudgetBreak(command, (min(budgets), max(budgets)), over_b,
                                   sum(len(b_tests[t]) for t in common), over_a,
                                   sum(len(a_tests[t]) for t in common)))
    return out


#: Whether a throughput figure is better when higher (True) or lower (False).
HIGHER_IS_BETTER = {
    "messages_per_s": True,
    "payload_bytes_per_s": True,
    "line_fraction": True,
    "publish_latency_p50_ms": False,
    "end_to_end_latency_p50_ms": False,
}


def throughput_changes(baseline: Snapshot, candidate: Snapshot,
                       thresholds: Thresholds) -> list[ThroughputChange]:
    out = []
    for series in sorted(set(baseline.throughput) & set(candidate.throughput)):
        b, a = baseline.throughput[series], candidate.throughput[series]
        for figure in [f for f in HIGHER_IS_BETTER if f in b and f in a]:
            before, after = b[figure], a[figure]
            better = HIGHER_IS_BETTER[figure]
            worse_by = (before - after if better else after - before) / before if before else 0
            verdict: Literal["regression", "improvement", "unchanged"] = "unchanged"
            if worse_by > thresholds.throughput_drop:
                verdict = "regression"
            elif -worse_by > thresholds.throughput_drop:
                verdict = "improvement"
            out.append(ThroughputChange(series, figure, before, after, verdict))
    return out


def _placed(one: Snapshot, label: str) -> Snapshot:
    """`one` with its tests, commands and series named after its place, so that pooling
    several places keeps them apart."""
    at = f" @{label}"
    return replace(
        one,
        tests={t + at: v for t, v in one.tests.items()},
        characterization={c: tuple(replace(b, test=b.test + at) for b in rs)
                          for c, rs in one.characterization.items()},
        latency={c + at: {t + at: ms for t, ms in by_test.items()}
                 for c, by_test in one.latency.items()},
        budgets={c + at: {t + at: ms for t, ms in by_test.items()}
                 for c, by_test in one.budgets.items()},
        throughput={s + at: figures for s, figures in one.throughput.items()},
        modules={}, module=label)


def pair(baseline: Snapshot, candidate: Snapshot,
         pairing: Pairing = "auto") -> tuple[Snapshot, Snapshot, str]:
    """The two sides as they are compared, and how the modules were matched: "place", each
    module with the one in its place in the other run (auto: when both hold the same places,
    several of them); "pooled", each side's modules together (auto: otherwise), only when
    each side is one firmware."""
    b_mods, a_mods = baseline.by_module, candidate.by_module
    places = sorted(set(b_mods) & set(a_mods))
    if pairing == "auto":
        several = len(b_mods) > 1 or len(a_mods) > 1
        pairing = "place" if several and set(b_mods) == set(a_mods) else "pooled"
    if pairing == "place":
        if not places:
            raise CannotCompare(f"no module in the same place in both runs (baseline: "
                                f"{', '.join(b_mods)}; candidate: {', '.join(a_mods)}): "
                                "compare them pooled (--pair pooled)")
        if len(places) == 1:
            return b_mods[places[0]], a_mods[places[0]], f"by place: {places[0]}"
        left = pool([_placed(b_mods[p], p) for p in places], source=baseline.source)
        right = pool([_placed(a_mods[p], p) for p in places], source=candidate.source)
        shown = f"by place, module by module: {', '.join(places)}"
        missing = sorted(set(b_mods) ^ set(a_mods))
        if missing:
            shown += f" (not compared: {', '.join(missing)}, in one run only)"
        return (replace(left, label=baseline.label, accepted=baseline.accepted),
                replace(right, label=candidate.label), shown)
    for side, snap in (("baseline", baseline), ("candidate", candidate)):
        revisions = sorted({m.revision for m in snap.by_module.values()})
        if len(revisions) > 1:
            raise CannotCompare(f"the {side}'s modules run {', '.join(revisions)}: pool only "
                                "one firmware (--pair place compares module by module)")
    if len(b_mods) == len(a_mods) == 1:
        return baseline, candidate, "one module against one"
    return baseline, candidate, (f"pooled: {len(b_mods)} module(s) ({', '.join(b_mods)}) "
                                 f"against {len(a_mods)} ({', '.join(a_mods)})")


def compare(baseline: Snapshot, candidate: Snapshot, thresholds: Thresholds,
            pairing: Pairing = "auto") -> Comparison:
    """Everything that changed from `baseline` to `candidate`; CannotCompare when the two
    are not of the same model, cannot be paired, or have no test in common."""
    if "unknown" not in (baseline.model, candidate.model) and baseline.model != candidate.model:
        raise CannotCompare(f"the baseline is a {baseline.model}, the candidate a "
                            f"{candidate.model}: compare firmwares of one model")
    baseline, candidate, paired = pair(baseline, candidate, pairing)
    common = set(baseline.tests) & set(candidate.tests)
    if not common:
        raise CannotCompare("the two runs have no test in common (did the candidate run "
                            "any test?)")
    notes = list(dict.fromkeys([*baseline.notes, *candidate.notes]))
    b_dut, a_dut = baseline.run.get("dut"), candidate.run.get("dut")
    if b_dut != a_dut:
        notes.append(f"the baseline ran on a {b_dut}, the candidate on a {a_dut}: "
                     "latencies are not comparable across benches")
    if len(common) < len(baseline.tests):
        notes.append(f"the candidate ran {len(common)} of the baseline's "
                     f"{len(baseline.tests)} tests; only those are compared")
    return Comparison(
        baseline=baseline,
        candidate=candidate,
        thresholds=thresholds,
        outcomes=tuple(outcome_changes(baseline, candidate)),
        behaviours=tuple(behaviour_changes(baseline, candidate, common)),
        latency=tuple(latency_shifts(baseline, candidate, thresholds)),
        throughput=tuple(throughput_changes(baseline, candidate, thresholds)),
        common_tests=len(common),
        notes=tuple(notes),
        budgets=tuple(budget_breaks(baseline, candidate)),
        pairing=paired,
    )


# ---------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Table:
    """One section of the report; `statuses` (one per row: failed, passed or skipped) and
    `name_columns` (the cells that name a row) make each row an Allure step."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    statuses: tuple[Status, ...]
    name_columns: tuple[int, ...]
    empty: str = "none"


def _short(test: str) -> str:
    return test.split("::", 1)[-1] if "::" in test else test


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _behaviour(b: Behaviour | None) -> str:
    if b is None:
        return "(not recorded)"
    return f"{normalize(b.got)} ({'as decided' if b.follows else 'deviates'})"


def _shift(s: LatencyShift) -> str:
    if s.p50_shift is None:
        return "-"
    interval = "" if s.p50_interval is None else (
        f" [{s.p50_interval[0]:+.2f}, {s.p50_interval[1]:+.2f}]")
    return f"{s.p50_shift:+.2f}{interval}"


def _p95(s: LatencyShift) -> str:
    text = f"{_ms(s.p95_before)} -> {_ms(s.p95_after)}"
    if s.p95_interval is not None:
        text += f" [{s.p95_interval[0]:+.1f}, {s.p95_interval[1]:+.1f}]"
    return text


def _firmware_line(s: Snapshot) -> str:
    parts = [s.firmware.get("revision") or s.firmware.get("CGMR") or "unknown firmware"]
    if s.run.get("dut") == "simulator" and s.run.get("profile"):
        parts.append(f"simulator profile {s.run['profile']}")
    elif s.run.get("dut"):
        parts.append(str(s.run["dut"]))
    parts.append(f"{len(s.tests)} tests")
    if s.accepted:
        parts.append(f"accepted {s.accepted.get('at', '?')} by {s.accepted.get('by', '?')}")
    return ", ".join(parts)


def _budget(b: BudgetBreak) -> str:
    lo, hi = b.budget_ms
    return f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"


def heading(c: Comparison) -> tuple[str, list[tuple[str, str]]]:
    """The title and the key facts (name, value) above the tables."""
    t = c.thresholds
    facts = [
        ("baseline", f"{_firmware_line(c.baseline)} — {c.baseline.source}"),
        ("candidate", f"{_firmware_line(c.candidate)} — {c.candidate.source}"),
        ("modules", c.pairing),
        ("thresholds", f"latency regression: p50 shift >= {t.min_shift_ms:g} ms and "
                       f"x{t.min_shift_ratio:g}, confirmed by Mann–Whitney p < {t.alpha:g} "
                       f"(exact for small samples; not confirmed: inconclusive; thin data "
                       f"under {t.min_samples} samples); throughput worse by > "
                       f"{t.throughput_drop:.0%}"),
        ("compared", f"{c.common_tests} tests in both runs"),
        ("verdict", f"{c.summary} (exit {c.exit_code})"),
    ]
    facts += [("note", n) for n in c.notes]
    return f"Firmware acceptance: {c.candidate.label} vs {c.baseline.label}", facts


_OUTCOME_STATUS: dict[str, Status] = {"regression": "failed", "improvement": "passed",
                                       "changed": "skipped"}
_LATENCY_STATUS: dict[str, Status] = {"regression": "failed", "inconclusive": "unknown",
                                       "improvement": "passed", "unchanged": "passed",
                                       "not judged": "skipped"}


def _samples(s: LatencyShift) -> str:
    text = f"{s.n_before}/{s.n_after}"
    if s.verdict == "inconclusive":
        return text + (f" (~{s.settle_with}/side)" if s.settle_with else " (overlapping)")
    return text + (" thin" if s.thin else "")


def tables(c: Comparison) -> list[Table]:
    outcome_rows = tuple(
        (_short(o.test), o.before or "not run", o.after or "not run", o.kind,
         ", ".join(o.clauses)) for o in c.outcomes)
    behaviour_rows = tuple(
        (b.clause, _short(b.test), b.sent, _behaviour(b.before), _behaviour(b.after),
         "yes" if b.gating else "no") for b in c.behaviours)
    confidence = f"{c.thresholds.confidence:.0%}"
    latency_rows = tuple(
        (s.command, _samples(s), _ms(s.p50_before), _ms(s.p50_after), _shift(s),
         "-" if s.ratio is None else f"x{s.ratio:.2f}", _p95(s),
         "-" if s.p_value is None else f"{s.p_value:.2g}", s.verdict) for s in c.latency)
    budget_rows = tuple(
        (b.command, _budget(b), f"{b.over_before}/{b.n_before}", f"{b.over_after}/{b.n_after}",
         "broken" if b.gating else "also in baseline" if b.over_before and b.over_after
         else "kept now") for b in c.budgets)
    throughput_rows = tuple(
        (t.series, t.figure, f"{t.before:g}", f"{t.after:g}",
         "-" if t.change is None else f"{t.change:+.1%}", t.verdict) for t in c.throughput)
    return [
        Table("Tests that changed outcome",
              ("test", "baseline", "candidate", "change", "clauses"), outcome_rows,
              tuple(_OUTCOME_STATUS[o.kind] for o in c.outcomes), (0, 3)),
        Table("Open points (Q clauses) that changed",
              ("clause", "test", "sent", "baseline", "candidate", "gating"), behaviour_rows,
              tuple("failed" if b.gating else "skipped" for b in c.behaviours), (0, 1, 4)),
        Table(f"Latency per command (ms, sent -> done; shift of p50 with {confidence} "
              "bootstrap interval; Mann–Whitney U)",
              ("command", "n base/cand", "p50 base", "p50 cand", "p50 shift [CI]", "ratio",
               f"p95 base -> cand [{confidence} CI of shift]", "p", "verdict"),
              latency_rows, tuple(_LATENCY_STATUS[s.verdict] for s in c.latency), (0, 4, 8),
              empty="no command timed in both runs"),
        Table("Budgets (responses over the candidate's budget, same tests)",
              ("command", "budget ms", "over base", "over cand", "verdict"), budget_rows,
              tuple("failed" if b.gating else "skipped" for b in c.budgets), (0, 3, 4),
              empty="no response over budget in either run"),
        Table("Throughput (MPUBEX-4)",
              ("series", "figure", "baseline", "candidate", "change", "verdict"),
              throughput_rows,
              tuple("failed" if t.verdict == "regression" else "passed" for t in c.throughput),
              (0, 1, 4, 5), empty="no throughput figures in both runs"),
    ]


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_text(c: Comparison, width: int = 48) -> str:
    """The comparison as aligned plain-text tables for a terminal; long cells clipped."""
    title, facts = heading(c)
    lines = [c.headline, "", title, "=" * min(len(title), 100)]
    lines += [f"{name:<11}{value}" for name, value in facts]
    for table in tables(c):
        lines += ["", table.title, "-" * min(len(table.title), 100)]
        if not table.rows:
            lines.append(f"  {table.empty}")
            continue
        rows = [tuple(_clip(cell, width) for cell in row) for row in table.rows]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(table.headers)]
        for row in (table.headers, *rows):
            lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths,
                                                                            strict=True)).rstrip())
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_markdown(c: Comparison) -> str:
    title, facts = heading(c)
    lines = [f"# {_md(title)}", "", f"**{_md(c.headline)}**", ""]
    lines += [f"- **{name}**: {_md(value)}" for name, value in facts]
    for table in tables(c):
        lines += ["", f"## {_md(table.title)}", ""]
        if not table.rows:
            lines.append(f"_{table.empty}_")
            continue
        lines.append("| " + " | ".join(table.headers) + " |")
        lines.append("|" + "---|" * len(table.headers))
        lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


_CELL_COLOUR = {"regression": "#c0392b", "improvement": "#1e8449", "yes": "#c0392b",
                "broken": "#c0392b", "inconclusive": "#8e44ad"}
_VERDICT_COLOUR = {REGRESSIONS: "#c0392b", INCONCLUSIVE: "#8e44ad", ACCEPTABLE: "#1e8449"}


def render_html(c: Comparison) -> str:
    """The comparison as a self-contained HTML fragment with styled tables."""
    e = html.escape
    title, facts = heading(c)
    colour = _VERDICT_COLOUR[c.exit_code]
    out = [f"<p><b style=\"color:{colour}\">{e(c.headline)}</b></p>",
           f"<h2>{e(title)}</h2>", "<ul>"]
    out += [f"<li><b>{e(name)}</b>: {e(value)}</li>" for name, value in facts]
    out.append("</ul>")
    style = "border-collapse:collapse;font-size:12px"
    cell = "border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top"
    for table in tables(c):
        out.append(f"<h3><b>{e(table.title)}</b></h3>")
        if not table.rows:
            out.append(f"<p><i>{e(table.empty)}</i></p>")
            continue
        # border and cellpadding too: the report's sanitizer may drop style attributes
        out.append(f"<table border=\"1\" cellpadding=\"3\" cellspacing=\"0\" "
                   f"style=\"{style}\"><tr>"
                   + "".join(f"<th style=\"{cell}\">{e(h)}</th>" for h in table.headers)
                   + "</tr>")
        for row in table.rows:
            tds = []
            for value in row:
                mark = _CELL_COLOUR.get(value)
                shown = f"<b style=\"color:{mark}\">{e(value)}</b>" if mark else e(value)
                tds.append(f"<td style=\"{cell}\">{shown}</td>")
            out.append("<tr>" + "".join(tds) + "</tr>")
        out.append("</table>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- the Allure page


def summary_html(c: Comparison) -> str:
    """The page's description: the verdict and the facts, one per line (the report shows
    descriptions unstyled, so the tables go into steps and the compare.html attachment)."""
    e = html.escape
    title, facts = heading(c)
    return "\n".join([f"<p><b>{e(c.headline)}</b></p>", f"<p><b>{e(title)}</b></p>",
                      *(f"<p><b>{e(name)}</b>: {e(value)}</p>" for name, value in facts)])


def allure_steps(c: Comparison, now_ms: int) -> list[TestStepResult]:
    """One step per table, one sub-step per row: failed for what counts against the
    candidate, passed for what is fine, skipped for what is only shown."""
    steps = []
    for table in tables(c):
        rows = [
            TestStepResult(
                name=" · ".join(_clip(row[i], 80) for i in table.name_columns),
                status=status, stage="finished", start=now_ms, stop=now_ms,
                parameters=[Parameter(name=h, value=v) for h, v in zip(table.headers, row,
                                                                       strict=True)])
            for row, status in zip(table.rows, table.statuses, strict=True)
        ]
        status: Status = next((s for s in ("failed", "unknown") if s in table.statuses),
                              "passed")
        name = table.title if rows else f"{table.title}: {table.empty}"
        steps.append(TestStepResult(name=name, status=status, stage="finished", steps=rows,
                                    start=now_ms, stop=now_ms))
    return steps


@dataclass(frozen=True)
class AllurePage:
    """One Allure test result and the attachments it refers to (file name → bytes)."""

    result: TestResult
    files: dict[str, bytes]


def allure_page(baseline_label: str, status: Status, message: str, description_html: str,
                attachments: Sequence[tuple[str, str, str, str]],
                steps: Sequence[TestStepResult] = (), now_ms: int | None = None) -> AllurePage:
    """The report's "Firmware acceptance vs <baseline>" test case: passed when acceptable,
    failed on regressions, unknown when inconclusive, broken when the runs could not be
    compared. `attachments` are
    (name, text, MIME type, file extension)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    files = {}
    attached = []
    for title, text, mime, ext in attachments:
        file_name = f"{uuid.uuid4()}-attachment.{ext}"
        files[file_name] = text.encode("utf-8")
        attached.append(Attachment(name=title, source=file_name, type=mime))
    result = TestResult(
        uuid=str(uuid.uuid4()),
        historyId=md5("hil.acceptance", "firmware acceptance"),
        testCaseId=md5("hil.acceptance", "firmware acceptance"),
        fullName="hil.acceptance#firmware_acceptance",
        name=f"Firmware acceptance vs {baseline_label}",
        status=status,
        stage="finished",
        statusDetails=StatusDetails(message=message),
        descriptionHtml=description_html,
        steps=list(steps),
        attachments=attached,
        labels=[Label(name="suite", value="Firmware acceptance"),
                Label(name="feature", value="Firmware acceptance"),
                Label(name="framework", value="hil")],
        start=now_ms,
        stop=now_ms,
    )
    return AllurePage(result, files)
