"""`hil mutants`: how sensitive the suites are, measured with named firmware bugs.

The simulator can be built with a realistic firmware defect (hil/sim/bugs.py, each tied to
the clause it breaks). This runs the suites once per bug, stopping at the first failure, and
reports which bugs no test noticed: a surviving bug is a hole in the suites. A clean run
without any bug comes first, since a failure there would make every bug look caught.

`--profile` builds the bugs into another firmware profile (default: the reference, whose
open points follow clauses.md). On a profile that reads the open points otherwise, such as
guide-alt, a bug is caught only by tests of what the guide states, so the same run tells
which stated-clause bugs the suites catch on any guide-following firmware.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from hil.sim.bugs import BUGS
from hil.sim.profiles import REFERENCE, profile_named

ROOT = Path(__file__).resolve().parents[2]
CAUGHT, SURVIVED, ERROR, TIMEOUT = "caught", "SURVIVED", "error", "timeout"
_FAILURE_LINE = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)
_INTERRUPT_GRACE_S = 20.0


@dataclass(frozen=True)
class Outcome:
    """One suites run: with `bug` ("" for the clean baseline run)."""

    bug: str
    clause: str
    verdict: str
    first_failure: str
    seconds: float
    returncode: int | None
    tail: str = ""


def pytest_command(
    bug: str | None, report_dir: Path, *, targeted: bool = False, profile: str | None = None
) -> list[str]:
    """The suites with `bug` on firmware `profile` (None: the rig's, i.e. the reference);
    `targeted`: only the tests marked with the bug's clause."""
    command = [
        sys.executable, "-m", "pytest", "suites", "-x", "-q", "-p", "no:cacheprovider",
        "--l506-report-dir", str(report_dir),
    ]
    if profile:
        command += ["--l506-sim-profile", profile]
    if bug:
        command += ["--l506-sim-bug", bug]
        if targeted:
            command += ["--l506-clause", BUGS[bug][0]]
    return command


def first_failure(output: str) -> str:
    """The first failing (or erroring) test named in pytest's short summary."""
    m = _FAILURE_LINE.search(output)
    return m.group(1) if m else ""


def verdict_of(bug: str | None, returncode: int | None) -> str:
    """pytest's exit code as a verdict: 1 (tests failed) catches a bug; 0 lets it survive;
    anything else (interrupted, internal or usage error, nothing collected) says nothing."""
    if returncode is None:
        return TIMEOUT
    if returncode == 0:
        return SURVIVED if bug else "passed"
    if returncode == 1:
        return CAUGHT if bug else "failed"
    return ERROR


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_once(
    bug: str | None,
    *,
    timeout: float,
    targeted: bool = False,
    profile: str | None = None,
) -> Outcome:
    """Run the suites with `bug` (None: none) in a fresh report folder, bounded by
    `timeout`; on timeout the run is interrupted (fixtures stop their broker) and then
    killed."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"hil-mutant-{bug or 'baseline'}-") as folder:
        command = pytest_command(bug, Path(folder), targeted=targeted, profile=profile)
        proc = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        try:
            output, _ = proc.communicate(timeout=timeout)
            returncode: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            output = _stop(proc)
            returncode = None
    verdict = verdict_of(bug, returncode)
    clause = BUGS[bug][0] if bug else ""
    return Outcome(
        bug=bug or "",
        clause=clause,
        verdict=verdict,
        first_failure=first_failure(output),
        seconds=round(time.monotonic() - started, 1),
        returncode=returncode,
        tail="" if verdict in (CAUGHT, SURVIVED, "passed") else _tail(output),
    )


def _stop(proc: subprocess.Popen[str]) -> str:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        output, _ = proc.communicate(timeout=_INTERRUPT_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
    return output or ""


def run_all(
    bugs: Iterable[str],
    *,
    jobs: int,
    timeout: float,
    progress: Callable[[Outcome], None] = lambda o: None,
    runner: Callable[..., Outcome] = run_once,
    targeted: bool = False,
    profile: str | None = None,
) -> list[Outcome]:
    """One run per bug, `jobs` at a time; outcomes in the order of `bugs`."""
    names = list(bugs)
    done: dict[str, Outcome] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {
            pool.submit(runner, name, timeout=timeout, targeted=targeted, profile=profile): name
            for name in names
        }
        for future in as_completed(futures):
            outcome = future.result()  # as_completed yields here, in this thread
            done[futures[future]] = outcome
            progress(outcome)
    return [done[name] for name in names]


def render_table(outcomes: Sequence[Outcome]) -> str:
    rows = [("bug", "clause", "result", "first failing test")]
    rows += [(o.bug, o.clause, o.verdict, o.first_failure or "-") for o in outcomes]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 18)
    return "\n".join(lines)


def summary(outcomes: Sequence[Outcome], seconds: float) -> str:
    counts = {v: sum(o.verdict == v for o in outcomes) for v in (CAUGHT, SURVIVED, ERROR, TIMEOUT)}
    text = (
        f"{len(outcomes)} bugs: {counts[CAUGHT]} caught, {counts[SURVIVED]} survived"
        + (f", {counts[ERROR]} runs in error" if counts[ERROR] else "")
        + (f", {counts[TIMEOUT]} timed out" if counts[TIMEOUT] else "")
        + f"; {seconds / 60:.1f} min"
    )
    survivors = [o.bug for o in outcomes if o.verdict == SURVIVED]
    if survivors:
        text += "\nsurvived (no test noticed): " + ", ".join(survivors)
    return text


# ---------------------------------------------------------------- command line


HELP = "run the suites once per simulated firmware bug; list the survivors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list", action="store_true", help="list the simulator's bugs and exit")
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", default=None, help="run only these bugs"
    )
    parser.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1),
        help="suites runs at a time (default: 2, or 1 on a single core)",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, metavar="S",
        help="seconds one suites run may take before it is stopped (default 600)",
    )
    parser.add_argument(
        "--targeted", action="store_true",
        help="run each bug only against the tests marked with its clause: does the clause's "
        "own test notice it (not just any test)?",
    )
    parser.add_argument(
        "--profile", default=None, metavar="NAME",
        help=f"firmware profile to build the bugs into (default: {REFERENCE.name}, the "
        "reference); e.g. guide-alt, to see which bugs of stated clauses are caught there",
    )
    parser.add_argument(
        "--no-baseline", action="store_true",
        help="skip the clean run without a bug that normally comes first",
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="FILE", help="also write the outcomes here"
    )


def _list() -> int:
    width = max(len(name) for name in BUGS)
    for name, (clause, what) in BUGS.items():
        print(f"{name.ljust(width)}  {clause:<14} {what}")
    return 0


def main(args: argparse.Namespace) -> int:
    """Exit 0: every bug caught; 1: some survived; 2: baseline failed or runs inconclusive."""
    if args.list:
        return _list()
    names = list(BUGS) if not args.only else list(dict.fromkeys(args.only))
    unknown = [n for n in names if n not in BUGS]
    if unknown:
        print(f"unknown bug(s): {', '.join(unknown)}; see `hil mutants --list`", file=sys.stderr)
        return 2
    profile = getattr(args, "profile", None)
    if profile is not None:
        try:
            profile = profile_named(profile).name
        except ValueError as e:
            print(e, file=sys.stderr)
            return 2
    started = time.monotonic()
    if not args.no_baseline:
        print(f"baseline: the suites without any bug, profile {profile or REFERENCE.name} ...",
              flush=True)
        base = run_once(None, timeout=args.timeout, profile=profile)
        print(f"baseline: {base.verdict} in {base.seconds:.0f} s", flush=True)
        if base.verdict != "passed":
            print(f"the suites fail without any bug ({base.first_failure or base.verdict}); "
                  f"every bug would look caught. Fix that first.\n{base.tail}", file=sys.stderr)
            return 2
    total = len(names)
    count = [0]

    def progress(outcome: Outcome) -> None:
        count[0] += 1
        where = f" at {outcome.first_failure}" if outcome.first_failure else ""
        print(f"[{count[0]}/{total}] {outcome.bug}: {outcome.verdict}{where} "
              f"({outcome.seconds:.0f} s)", flush=True)
        if outcome.tail:
            print("    " + outcome.tail.replace("\n", "\n    "), flush=True)

    outcomes = run_all(
        names, jobs=args.jobs, timeout=args.timeout, progress=progress, targeted=args.targeted,
        profile=profile,
    )
    elapsed = time.monotonic() - started
    print()
    print(render_table(outcomes))
    print()
    print(summary(outcomes, elapsed))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(
            {"profile": profile or REFERENCE.name, "seconds": round(elapsed, 1),
             "outcomes": [asdict(o) for o in outcomes]},
            indent=2,
        ) + "\n")
    if any(o.verdict == SURVIVED for o in outcomes):
        return 1
    if any(o.verdict in (ERROR, TIMEOUT) for o in outcomes):
        return 2
    return 0
