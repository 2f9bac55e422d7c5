"""`hil fuzz`: grammar-based fuzzing of the MQTT command set, findings as regression tests.

Runs for `--minutes` or `--cases`, on the simulator's firmware model (a profile, with or
without named bugs) on the virtual bench. Each finding is written to `--out` twice: as a
replayable script (`<name>.json`, `hil fuzz --replay` runs it again) and as a pytest file
(`test_<name>.py`) that replays it on the rig's simulator. docs/fuzz.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from hil.fuzz.grammar import Command, Data, PeerPublish, Step, coverage_cells
from hil.fuzz.replay import ScriptError, load_script
from hil.fuzz.runner import Finding, Report, fuzz, run_case
from hil.report.files import write_atomic
from hil.sim.bugs import BUGS, FUZZ_BUGS
from hil.sim.profiles import PROFILES, Profile, profile_named

HELP = "grammar-based AT fuzzing of the MQTT commands; findings as regression tests"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="v3.2", choices=sorted(PROFILES),
                        help="the firmware profile to fuzz (default v3.2)")
    parser.add_argument("--bug", action="append", default=[], metavar="NAME",
                        help="build the firmware with a named bug (`hil fuzz --list-bugs`)")
    parser.add_argument("--minutes", type=float, default=None, help="run this long")
    parser.add_argument("--cases", type=int, default=None, help="run this many cases")
    parser.add_argument("--seed", type=int, default=0, help="first hypothesis seed (0)")
    parser.add_argument("--max-steps", type=int, default=8,
                        help="steps per case after its set-up (default 8)")
    parser.add_argument("--first", action="store_true", help="stop at the first finding")
    parser.add_argument("--out", type=Path, default=Path("suites/found"),
                        help="where findings are written (default suites/found)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write the run's figures here")
    parser.add_argument("--replay", type=Path, default=None, metavar="SCRIPT",
                        help="run one script written for a finding, and say what the oracles see")
    parser.add_argument("--port", default=None, metavar="URL",
                        help="fuzz the module behind this serial port (a rig's, or `hil sim`'s "
                        "pty) instead of the firmware model; needs --broker")
    parser.add_argument("--broker", default=None, metavar="HOST:PORT",
                        help="the broker the module dials (a tap in front of it records its "
                        "side); the module is restarted with AT+CFUN=1,1 before each case")
    parser.add_argument("--baud", type=int, default=115200, help="the port's rate (115200)")
    parser.add_argument("--against", metavar="PROFILE", default=None,
                        help="differential run: the same cases (--cases, default 300) on "
                        "--profile and on PROFILE, every answer compared")
    parser.add_argument("--list-bugs", action="store_true",
                        help="list the fuzz-only simulator bugs and exit")


def show_step(step: Step) -> str:
    match step:
        case Command(line=line, wait=wait):
            return repr(line)[1:-1] + ("" if wait else "   (next step while its result is due)")
        case Data(data=data, shape=shape):
            return f"<data {len(data)} bytes, {shape}> {data.encode('latin-1')[:40]!r}"
        case PeerPublish(topic=topic, payload=payload, qos=qos):
            return f"<broker: message on {topic!r}, {len(payload)} bytes, qos {qos}>"
    raise TypeError(step)


def finding_name(finding: Finding) -> str:
    words = re.sub(r"[^a-z0-9]+", "_", finding.signature.lower()).strip("_")
    digest = hashlib.sha1(finding.case.to_json().encode()).hexdigest()[:6]
    return f"{words}_{digest}"


def write_finding(folder: Path, finding: Finding, profile: str, bugs: frozenset[str]) -> Path:
    """`<name>.json` (the script) and `test_<name>.py` (the regression test) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    name = finding_name(finding)
    v = finding.violation
    script = {
        "found": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": profile,
        "bugs": sorted(bugs),
        "oracle": v.oracle,
        "detail": v.detail,
        "step": v.step,
        "commands": finding.case.command_count,
        "case": json.loads(finding.case.to_json()),
    }
    write_atomic(folder / f"{name}.json", json.dumps(script, indent=1) + "\n")
    listing = "\n".join(f"    {show_step(s)}" for s in finding.case.lines())
    test = f'''"""Found by `hil fuzz` ({script["found"]}, profile {profile}{
        ", bugs " + ", ".join(sorted(bugs)) if bugs else ""}).

{v.oracle} (step {v.step + 1}): {textwrap.shorten(v.detail, 70)}

The minimal sequence:

{listing}
"""

from pathlib import Path

import pytest

from hil.fuzz.replay import replay_script
from hil.sim.profiles import profile_named

SCRIPT = Path(__file__).with_name("{name}.json")


def test_{name}(rig) -> None:
    if rig.dut.kind != "simulator":
        pytest.skip("replayed on the simulator's firmware model (virtual bench) only")
    violation = replay_script(SCRIPT, profile_named(rig.dut.profile), frozenset(rig.dut.bugs))
    assert violation is None, f"{{violation.oracle}}: {{violation.detail}}"
'''
    write_atomic(folder / f"test_{name}.py", test)
    return folder / f"{name}.json"


def summary(report: Report) -> str:
    covered, total = report.coverage()
    lines = [f"{report.cases} cases in {report.seconds:.0f} s ({report.rate:.1f} cases/s); "
             f"{len(report.findings)} finding(s); coverage {covered}/{total} "
             f"(command x parameter class)"]
    missing = sorted(coverage_cells() - set(report.covered))
    if missing:
        lines.append("not exercised: " + ", ".join(f"{c}[{k}]" for c, k in missing[:20]))
    return "\n".join(lines)


def _every_minute() -> Callable[[Report], None]:
    """A progress line about once a minute."""
    shown = [0]

    def progress(report: Report) -> None:
        if report.seconds >= shown[0] + 60:
            shown[0] = int(report.seconds)
            print(f"  {report.cases} cases, {report.seconds:.0f} s, "
                  f"{len(report.findings)} finding(s)", flush=True)

    return progress


def main(args: argparse.Namespace) -> int:
    """Exit 0: no finding; 1: findings (written to --out); 2: bad arguments."""
    if args.list_bugs:
        width = max(map(len, FUZZ_BUGS))
        for name, (oracle, what) in FUZZ_BUGS.items():
            print(f"{name.ljust(width)}  {oracle:<13} {what}")
        return 0
    unknown = sorted(set(args.bug) - BUGS.keys() - FUZZ_BUGS.keys())
    if unknown:
        print(f"hil fuzz: unknown bug(s) {', '.join(unknown)}; see `hil fuzz --list-bugs` "
              f"and `hil mutants --list`", file=sys.stderr)
        return 2
    profile = profile_named(args.profile)
    bugs = frozenset(args.bug)
    if args.replay is not None:
        return _replay(args.replay, profile, bugs)
    if args.against is not None:
        return _differential(args, profile, bugs)
    return _hunt(args, profile, bugs)


def _replay(script: Path, profile: Profile, bugs: frozenset[str]) -> int:
    """--replay: a finding's script, run once more and judged."""
    try:
        case = load_script(script)
    except ScriptError as exc:
        print(f"hil fuzz: {exc}", file=sys.stderr)
        return 2
    violation = run_case(case, profile, bugs)
    for step in case.lines():
        print(f"  {show_step(step)}")
    if violation is None:
        print(f"no oracle objects (profile {profile.name}"
              + (f", bugs {', '.join(sorted(bugs))})" if bugs else ")"))
        return 0
    print(f"{violation.oracle}: {violation.detail} (step {violation.step + 1})")
    return 1


def _differential(args: argparse.Namespace, profile: Profile, bugs: frozenset[str]) -> int:
    """--against: the same drawn cases on two firmwares, every answer compared."""
    from hil.fuzz import differential

    try:
        other = profile_named(args.against)
    except ValueError as exc:
        print(f"hil fuzz: {exc}", file=sys.stderr)
        return 2
    drawn = differential.draw_cases(args.cases or 300, args.seed, args.max_steps)
    differences = differential.compare(profile, other, drawn, bugs_b=bugs)
    print(differential.render(profile, other, differences))
    return 1 if differences.unexplained or differences.unmodelled else 0


def _hunt(args: argparse.Namespace, profile: Profile, bugs: frozenset[str]) -> int:
    """A hunt for a time or a number of cases, on the model or on a real port."""
    if args.minutes is None and args.cases is None:
        print("hil fuzz: say how long: --minutes N or --cases N", file=sys.stderr)
        return 2
    module = None
    if args.port is not None:
        host, _, port = (args.broker or "").rpartition(":")
        if not host or not port.isdigit():
            print("hil fuzz: --port needs --broker HOST:PORT (the broker the module dials)",
                  file=sys.stderr)
            return 2
        from hil.fuzz.port import PortModule

        module = PortModule(args.port, (host, int(port)), baud=args.baud)

    def found(finding: Finding) -> None:
        path = write_finding(args.out, finding, profile.name, bugs)
        print(f"FINDING after {finding.seconds:.1f} s ({finding.cases} cases): "
              f"{finding.violation.oracle}: {finding.violation.detail}; "
              f"{finding.case.command_count} commands → {path}", flush=True)
        for step in finding.case.lines():
            print(f"    {show_step(step)}", flush=True)

    report = fuzz(
        profile, bugs,
        seconds=None if args.minutes is None else args.minutes * 60,
        max_cases=args.cases, first_seed=args.seed, max_steps=args.max_steps,
        stop_at_first=args.first, on_finding=found,
        progress=_every_minute(), module=module,
    )
    if module is not None:
        module.close()
    print(summary(report))
    if args.json is not None:
        _write_figures(args.json, report, profile, bugs)
    return 1 if report.findings else 0


def _write_figures(path: Path, report: Report, profile: Profile, bugs: frozenset[str]) -> None:
    """--json: the hunt's figures and findings, for CI."""
    covered, total = report.coverage()
    write_atomic(path, json.dumps({
        "profile": profile.name, "bugs": sorted(bugs), "cases": report.cases,
        "seconds": round(report.seconds, 1), "cases_per_s": round(report.rate, 1),
        "coverage": [covered, total],
        "covered": sorted(f"{c}[{k}]={n}" for (c, k), n in report.covered.items()),
        "findings": [{"oracle": f.violation.oracle, "detail": f.violation.detail,
                      "commands": f.case.command_count, "seconds": round(f.seconds, 1),
                      "name": finding_name(f)} for f in report.findings],
    }, indent=1) + "\n")
