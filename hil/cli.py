"""`hil`: the harness's command line."""

from __future__ import annotations

import argparse
import sys

from hil import bench as bench_cli
from hil import console as console_cli
from hil import mutants as mutants_cli
from hil import record as record_cli
from hil import run as run_cli
from hil.acceptance import cli as acceptance_cli
from hil.broker import cli as broker_cli
from hil.farm import cli as farm_cli
from hil.fuzz import cli as fuzz_cli
from hil.reliability import cli as reliability_cli
from hil.sim import cli as sim_cli
from hil.version import harness_version


class _Version(argparse.Action):
    """`--version`, asking git for the commit only when it is given."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)  # type: ignore[arg-type]

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"{parser.prog} {harness_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hil",
        description="Hardware-in-the-loop test harness for the L506 MQTT AT command set.",
    )
    parser.add_argument("--version", action=_Version, help="print the harness's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sim = sub.add_parser("sim", help="run a simulated L506 on a pty or TCP port")
    sim_cli.add_arguments(sim)
    sim.set_defaults(func=sim_cli.run)
    broker = sub.add_parser(
        "broker", help="run the test broker (plain, password and TLS listeners)"
    )
    broker_cli.add_arguments(broker)
    broker.set_defaults(func=broker_cli.run_broker)
    run = sub.add_parser(
        "run",
        allow_abbrev=False,
        usage="hil run [--rig FILE] [--reports DIR] [--max-minutes N] [--baseline PATH] "
        "[--keep N] [-n N [--each | --share]] [pytest args]",
        help="the nightly run: suites, then reports/<UTC time>/ with the Allure HTML report",
    )
    run_cli.add_arguments(run)
    run.set_defaults(func=run_cli.main)
    mutants = sub.add_parser(
        "mutants", help="run the suites once per simulated firmware bug; list the survivors"
    )
    mutants_cli.add_arguments(mutants)
    mutants.set_defaults(func=mutants_cli.main)
    bench = sub.add_parser(
        "bench", help="measure the harness against raw pyserial and pytest-embedded on the sim"
    )
    bench_cli.add_arguments(bench)
    bench.set_defaults(func=bench_cli.run)
    baseline = sub.add_parser(
        "baseline", help="keep a run as the accepted firmware's baseline; list baselines"
    )
    acceptance_cli.add_baseline_arguments(baseline)
    baseline.set_defaults(func=acceptance_cli.baseline_main)
    compare = sub.add_parser(
        "compare", help="what changed from a baseline to a candidate run (exit 0/1/2/3)"
    )
    acceptance_cli.add_compare_arguments(compare)
    compare.set_defaults(func=acceptance_cli.compare_main)
    reliability = sub.add_parser(
        "reliability",
        help="fault campaigns, soak, bad input and secrets: figures in reliability.json",
    )
    reliability_cli.add_arguments(reliability)
    reliability.set_defaults(func=reliability_cli.main)
    farm = sub.add_parser(
        "farm", help="a labgrid farm of simulated modules on this PC: up N, down"
    )
    farm_cli.add_farm_arguments(farm)
    farm.set_defaults(func=farm_cli.farm_main)
    places = sub.add_parser(
        "places", help="the labgrid places: who holds each, the firmware each reported last"
    )
    farm_cli.add_places_arguments(places)
    places.set_defaults(func=farm_cli.places_main)
    record = sub.add_parser(
        "record", help="pass a serial client's bytes to the port and back, recording both ways"
    )
    record_cli.add_record_arguments(record)
    record.set_defaults(func=record_cli.record_main)
    replay = sub.add_parser(
        "replay", help="serve a recorded session as a port, or check it against a profile"
    )
    record_cli.add_replay_arguments(replay)
    replay.set_defaults(func=record_cli.replay_main)
    fuzz = sub.add_parser(
        "fuzz", help="grammar-based AT fuzzing of the MQTT commands; findings as regression tests"
    )
    fuzz_cli.add_arguments(fuzz)
    fuzz.set_defaults(func=fuzz_cli.main)
    console = sub.add_parser(
        "console", help="an interactive AT terminal: history, completion, decoded results"
    )
    console_cli.add_arguments(console)
    console.set_defaults(func=console_cli.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # only `hil run` takes arguments of its own (they go to pytest)
        if not hasattr(args, "pytest_args"):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.pytest_args = extra
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
