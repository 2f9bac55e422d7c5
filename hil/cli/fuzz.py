"""`hil fuzz`: grammar-based fuzzing of the MQTT command set, findings as regression tests.

Runs for `--minutes` or `--cases`, on the simulator's firmware model (a profile, with or
without named bugs) on the virtual bench, or on a module through a port: `--port` with
`--broker`, or a rig's (`--rig`: its port, its power switch to restart a module that hangs,
a broker started as its [broker] says). Each finding is written to `--out` twice: as a
replayable script (`<name>.json`, `hil fuzz --replay` runs it again) and as a pytest file
(`test_<name>.py`) that replays it on the rig's simulator. docs/fuzz.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hil.fuzz.grammar import Command, Data, PeerPublish, Step, coverage_cells
from hil.fuzz.replay import ScriptError, load_script
from hil.fuzz.runner import Finding, Report, fuzz, run_case
from hil.report.files import write_atomic
from hil.sim.bugs import BUGS, FUZZ_BUGS
from hil.sim.profiles import PROFILES, Profile, profile_named

if TYPE_CHECKING:
    from hil.fuzz.port import PortModule

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
    parser.add_argument("--rig", type=Path, default=None, metavar="FILE",
                        help="fuzz the rig's module (docs/fuzz.md): its port, its [power] to "
                        "power-cycle a module that stops answering, a broker as its [broker] "
                        "says (a simulator rig runs its simulator, with --bug)")
    parser.add_argument("--against", metavar="PROFILE", default=None,
                        help="differential run: the same cases (--cases, default 300) on "
                        "--profile and on PROFILE, or with --rig / --port on the module and on "
                        "PROFILE's model, every answer compared")
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

from hil.sim.profiles import profile_named

SCRIPT = Path(__file__).with_name("{name}.json")


def test_{name}(rig) -> None:
    if rig.dut.kind != "simulator":
        pytest.skip("replayed on the simulator's firmware model (virtual bench) only")
    from hil.fuzz.replay import replay_script  # hypothesis, imported only when this runs

    violation = replay_script(SCRIPT, profile_named(rig.dut.profile), frozenset(rig.dut.bugs))
    assert violation is None, f"{{violation.oracle}}: {{violation.detail}}"
'''
    write_atomic(folder / f"test_{name}.py", test)
    return folder / f"{name}.json"


def summary(report: Report, module: PortModule | None = None) -> str:
    covered, total = report.coverage()
    lines = [f"{report.cases} cases in {report.seconds:.0f} s ({report.rate:.1f} cases/s); "
             f"{len(report.findings)} finding(s); coverage {covered}/{total} "
             f"(command x parameter class)"]
    if module is not None and module.restarts:
        lines.append("module restarted: " + ", ".join(
            f"{n} x {how}" for how, n in module.restarts.most_common()))
    if report.lost is not None:
        lines.append(f"the run ended early: {report.lost}")
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
    """Exit 0: no finding; 1: findings (written to --out); 2: bad arguments; 3: the module
    was lost (no way of restarting it brought it back)."""
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
    """--against: the same drawn cases on two firmwares, every answer compared: two
    profiles of the model, or (with --rig or --port) a real module and a profile's model."""
    from hil.dut.recovery import DutLost
    from hil.fuzz import differential

    try:
        other = profile_named(args.against)
    except ValueError as exc:
        print(f"hil fuzz: {exc}", file=sys.stderr)
        return 2
    drawn = differential.draw_cases(args.cases or 300, args.seed, args.max_steps)
    if args.rig is None and args.port is None:
        differences = differential.compare(profile, other, drawn, bugs_b=bugs)
        names = (profile.name, other.name)
    else:
        names = (other.name, f"the module ({args.rig or args.port})")
        with ExitStack() as stack:
            try:
                module = stack.enter_context(_module(args, bugs))
                assert module is not None
                differences = differential.compare_module(module, other, drawn)
            except _Refused as exc:
                print(f"hil fuzz: {exc}", file=sys.stderr)
                return 2
            except DutLost as exc:
                print(f"hil fuzz: {exc}", file=sys.stderr)
                return 3
    print(differential.render(*names, differences))
    if args.json is not None:
        write_atomic(args.json, json.dumps(differential.figures(*names, differences),
                                           indent=1) + "\n")
    return 1 if differences.unexplained else 0


def _hunt(args: argparse.Namespace, profile: Profile, bugs: frozenset[str]) -> int:
    """A hunt for a time or a number of cases, on the model or on a real port."""
    if args.minutes is None and args.cases is None:
        print("hil fuzz: say how long: --minutes N or --cases N", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        try:
            module = stack.enter_context(_module(args, bugs))
        except _Refused as exc:
            print(f"hil fuzz: {exc}", file=sys.stderr)
            return 2
        return _fuzz(args, profile, bugs, module, _recorded_as(args, profile, bugs))


def _recorded_as(args: argparse.Namespace, profile: Profile, bugs: frozenset[str]
                 ) -> tuple[str, frozenset[str]]:
    """The firmware a finding is written under: the profile and bugs fuzzed, a simulator
    rig's own profile and bugs (with --bug), or the module a rig or port names."""
    if args.rig is not None:
        from hil.rig import load_rig  # the rig loaded before the hunt: it loads again

        dut = load_rig(args.rig).dut
        if dut.kind == "simulator":
            return dut.profile, frozenset(dut.bugs) | bugs
        return f"the module of rig {args.rig}", frozenset()
    if args.port is not None:
        return f"the module on {args.port}", frozenset()
    return profile.name, bugs


class _Refused(Exception):
    """Arguments or a rig that cannot make a module to fuzz: one line, exit 2."""


@contextmanager
def _module(args: argparse.Namespace, bugs: frozenset[str]) -> Iterator[PortModule | None]:
    """The module to fuzz: None (the virtual bench), the one behind --port, or the rig's."""
    if args.rig is not None:
        with _rig_module(args.rig, bugs) as module:
            yield module
        return
    if args.port is None:
        yield None
        return
    host, _, port = (args.broker or "").rpartition(":")
    if not host or not port.isdigit():
        raise _Refused("--port needs --broker HOST:PORT (the broker the module dials)")
    from hil.fuzz.port import PortModule

    module = PortModule(args.port, (host, int(port)), baud=args.baud)
    try:
        yield module
    finally:
        module.close()


@contextmanager
def _rig_module(path: Path, bugs: frozenset[str]) -> Iterator[PortModule]:
    """The rig's module with its power switch, dialling a broker started as the rig says;
    a simulator rig's simulator is started here, built with the rig's bugs and `bugs`."""
    from hil.broker import PLAIN, Broker, BrokerError
    from hil.fuzz.port import PortModule
    from hil.power import PowerError, power_from_config
    from hil.rig import RigError, load_rig
    from hil.sim.firmware import Firmware
    from hil.sim.host import SimConfig, Simulator

    try:
        rig = load_rig(path)
    except RigError as exc:
        raise _Refused(str(exc)) from None
    dut, where = rig.dut, rig.broker
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hil-fuzz-")))
        sim = None
        if dut.kind == "simulator":
            firmware = Firmware(profile_named(dut.profile), time_scale=dut.time_scale,
                                bugs=frozenset(dut.bugs) | bugs)
            sim = Simulator(firmware, SimConfig(link=folder / "ttyL506", baud=dut.baud))
            stack.callback(sim.close)
            port = sim.power_on()
        elif dut.port is None:
            raise _Refused(f"{path}: [dut] port is not set: the rig names no module to fuzz")
        else:
            port = dut.port
        try:
            power = power_from_config(rig.power, at_port=port, simulator=sim,
                                      secrets=rig.secrets)
        except (PowerError, ValueError) as exc:
            raise _Refused(f"{path}: [power]: {exc}") from None
        if power is not None:
            stack.callback(power.close)
        else:
            print(f"hil fuzz: {path} has no power switch ([power] backend \"none\"): a module "
                  "that stops answering ends the run", file=sys.stderr)
        try:
            broker = stack.enter_context(Broker(folder / "broker", bind=where.bind,
                                                plain_port=where.port))
            module = PortModule(
                port, (broker.listener(PLAIN).local_address, broker.plain_port),
                baud=dut.baud, boot_timeout=dut.boot_timeout_s,
                power_cycle=None if power is None else power.cycle,
                time_scale=dut.time_scale if dut.kind == "simulator" else 1.0,
                listen=where.tap or where.bind, dial=where.module_dials)
        except (BrokerError, OSError) as exc:  # a port that will not open, a port in use
            raise _Refused(f"{path}: {type(exc).__name__}: {exc}") from None
        stack.callback(module.close)
        yield module


def _fuzz(args: argparse.Namespace, profile: Profile, bugs: frozenset[str],
          module: PortModule | None, recorded: tuple[str, frozenset[str]]) -> int:
    def found(finding: Finding) -> None:
        path = write_finding(args.out, finding, *recorded)
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
    print(summary(report, module))
    if args.json is not None:
        _write_figures(args.json, report, *recorded)
    if report.lost is not None:
        return 3
    return 1 if report.findings else 0


def _write_figures(path: Path, report: Report, profile: str, bugs: frozenset[str]) -> None:
    """--json: the hunt's figures and findings, for CI."""
    covered, total = report.coverage()
    write_atomic(path, json.dumps({
        "profile": profile, "bugs": sorted(bugs), "cases": report.cases,
        "seconds": round(report.seconds, 1), "cases_per_s": round(report.rate, 1),
        "coverage": [covered, total],
        "covered": sorted(f"{c}[{k}]={n}" for (c, k), n in report.covered.items()),
        "findings": [{"oracle": f.violation.oracle, "detail": f.violation.detail,
                      "commands": f.case.command_count, "seconds": round(f.seconds, 1),
                      "name": finding_name(f)} for f in report.findings],
    }, indent=1) + "\n")
