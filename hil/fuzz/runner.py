"""Driving hypothesis over the grammar for a time or a number of cases; findings shrunk.

Hypothesis draws cases (hil/fuzz/grammar.py) and runs each on a fresh module (engine.py).
Rounds alternate: valid sequences with boundary values, then malformed ones. The first case
an oracle rejects is shrunk by hypothesis to a minimal one, which it runs last: that one is
the finding. The search then goes on in a new round (another seed),
a finding already made (same oracle, same command) no longer counting as new.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings

from hil.dut.recovery import DutLost
from hil.fuzz.engine import CaseRun, Violation
from hil.fuzz.grammar import Case, Command, cases, coverage_cells
from hil.sim.profiles import Profile

if TYPE_CHECKING:
    from hil.fuzz.port import PortModule

ROUND = 300  # cases hypothesis draws per round before a new seed


@dataclass(frozen=True)
class Finding:
    violation: Violation
    case: Case
    seconds: float  # from the start of the run until it was shrunk
    cases: int  # cases run until then

    @property
    def signature(self) -> str:
        return signature(self.case, self.violation)


def signature(case: Case, violation: Violation) -> str:
    steps = case.lines()
    step = steps[violation.step] if violation.step < len(steps) else None
    name = step.name if isinstance(step, Command) else type(step).__name__
    return f"{violation.oracle} at {name}"


@dataclass
class Report:
    cases: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    covered: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: "DUT lost: …" when no rung of the restart brought the module back: the run ended
    lost: str | None = None

    @property
    def rate(self) -> float:
        return self.cases / self.seconds if self.seconds else 0.0

    def coverage(self) -> tuple[int, int]:
        cells = coverage_cells()
        return len(cells & set(self.covered)), len(cells)


class _Found(Exception):
    pass


def run_case(case: Case, profile: Profile, bugs: frozenset[str],
             module: PortModule | None = None) -> Violation | None:
    """One case on a fresh virtual module, or on `module` (restarted first)."""
    return CaseRun(profile, bugs, module).run(case)


def _round(
    profile: Profile, bugs: frozenset[str], round_seed: int, max_steps: int, report: Report,
    known: set[str], over: Callable[[], bool], module: PortModule | None,
) -> tuple[Case, Violation] | None:
    """One hypothesis run of ROUND cases (odd seeds: valid values only, even: malformed
    ones too): the shrunk first new finding, or None."""
    failing: list[tuple[Case, Violation]] = []

    @settings(max_examples=ROUND, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=(Phase.generate, Phase.shrink),
              report_multiple_bugs=False, verbosity=Verbosity.quiet)
    @seed(round_seed)
    @given(cases(max_steps, malformed=round_seed % 2 == 0))
    def probe(case: Case) -> None:
        if (over() and not failing) or report.lost is not None:
            return
        try:
            run = CaseRun(profile, bugs, module)
        except DutLost as exc:
            report.lost = str(exc)  # every later case would meet the same: none is run
            return
        report.cases += 1
        violation = run.run(case)
        report.covered.update(run.covered)
        if violation is not None and signature(case, violation) not in known:
            failing.append((case, violation))
            raise _Found(violation.detail)

    try:
        probe()
    except _Found:
        return failing[-1]  # hypothesis runs the shrunk case last
    except Exception:
        if report.lost is None:
            raise
        # lost while shrinking: hypothesis calls the case flaky; the smallest failing so far
    return failing[-1] if failing and report.lost is not None else None


def fuzz(
    profile: Profile,
    bugs: frozenset[str] = frozenset(),
    *,
    seconds: float | None = None,
    max_cases: int | None = None,
    first_seed: int = 0,
    max_steps: int = 8,
    stop_at_first: bool = False,
    progress: Callable[[Report], None] = lambda r: None,
    on_finding: Callable[[Finding], None] = lambda f: None,
    module: PortModule | None = None,
) -> Report:
    """Fuzz until `seconds` pass or `max_cases` ran (one of them must be given), on the
    virtual bench or, given `module`, through a port."""
    if seconds is None and max_cases is None:
        raise ValueError("give a time (seconds) or a number of cases")
    report = Report()
    started = time.monotonic()
    known: set[str] = set()

    def over() -> bool:
        return report.lost is not None or \
            (seconds is not None and time.monotonic() - started >= seconds) or \
            (max_cases is not None and report.cases >= max_cases)

    round_no = 0
    while not over():
        round_no += 1
        found = _round(profile, bugs, first_seed + round_no, max_steps, report, known, over,
                       module)
        if found is not None:
            case, violation = found
            finding = Finding(violation, case, time.monotonic() - started, report.cases)
            known.add(finding.signature)
            report.findings.append(finding)
            on_finding(finding)
            if stop_at_first:
                break
        report.seconds = time.monotonic() - started
        progress(report)
    report.seconds = time.monotonic() - started
    return report
