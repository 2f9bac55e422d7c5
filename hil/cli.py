"""`hil`: the harness's command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

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


#: Each subcommand: name, help line, the function that adds its options, the function that
#: runs it (given the parsed arguments, returning the exit status).
_Adder = Callable[[argparse.ArgumentParser], None]
_Runner = Callable[[argparse.Namespace], int]
COMMANDS: tuple[tuple[str, str, _Adder, _Runner], ...] = (
    ("sim", "run a simulated L506 on a pty or TCP port", sim_cli.add_arguments, sim_cli.run),
    ("broker", "run the test broker (plain, password and TLS listeners)",
     broker_cli.add_arguments, broker_cli.run_broker),
    ("run", "the nightly run: suites, then reports/<UTC time>/ with the Allure HTML report",
     run_cli.add_arguments, run_cli.main),
    ("mutants", "run the suites once per simulated firmware bug; list the survivors",
     mutants_cli.add_arguments, mutants_cli.main),
    ("bench", "measure the harness against raw pyserial and pytest-embedded on the sim",
     bench_cli.add_arguments, bench_cli.run),
    ("baseline", "keep a run as the accepted firmware's baseline; list baselines",
     acceptance_cli.add_baseline_arguments, acceptance_cli.baseline_main),
    ("compare", "what changed from a baseline to a candidate run (exit 0/1/2/3)",
     acceptance_cli.add_compare_arguments, acceptance_cli.compare_main),
    ("reliability", "fault campaigns, soak, bad input and secrets: figures in reliability.json",
     reliability_cli.add_arguments, reliability_cli.main),
    ("farm", "a labgrid farm of simulated modules on this PC: up N, down",
     farm_cli.add_farm_arguments, farm_cli.farm_main),
    ("places", "the labgrid places: who holds each, the firmware each reported last",
     farm_cli.add_places_arguments, farm_cli.places_main),
    ("record", "pass a serial client's bytes to the port and back, recording both ways",
     record_cli.add_record_arguments, record_cli.record_main),
    ("replay", "serve a recorded session as a port, or check it against a profile",
     record_cli.add_replay_arguments, record_cli.replay_main),
    ("fuzz", "grammar-based AT fuzzing of the MQTT commands; findings as regression tests",
     fuzz_cli.add_arguments, fuzz_cli.main),
    ("console", "an interactive AT terminal: history, completion, decoded results",
     console_cli.add_arguments, console_cli.run),
)
#: `hil run` passes every argument it does not know to pytest: spell out its own.
_RUN_USAGE = ("hil run [--rig FILE] [--reports DIR] [--max-minutes N] [--baseline PATH] "
              "[--keep N] [-n N [--each | --share]] [pytest args]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hil",
        description="Hardware-in-the-loop test harness for the L506 MQTT AT command set.",
    )
    parser.add_argument("--version", action=_Version, help="print the harness's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_line, add_arguments, run in COMMANDS:
        extra = {"allow_abbrev": False, "usage": _RUN_USAGE} if name == "run" else {}
        command = sub.add_parser(name, help=help_line, **extra)  # type: ignore[arg-type]
        add_arguments(command)
        command.set_defaults(func=run)
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
