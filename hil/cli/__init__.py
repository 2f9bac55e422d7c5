"""`hil`: the harness's command line."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from types import ModuleType

from hil.cli import (
    baseline,
    broker,
    compare,
    farm,
    fuzz,
    places,
    record,
    reliability,
    replay,
    run,
    sim,
)
from hil.tools import bench, console, mutants
from hil.version import harness_version

__all__ = ["build_parser", "main"]


class _Version(argparse.Action):
    """`--version`, asking git for the commit only when it is given."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"{parser.prog} {harness_version()}")
        parser.exit()


#: Each subcommand, in `--help` order: its module gives HELP (the help line), add_arguments
#: (its options) and main (runs it on the parsed arguments, returns the exit status).
COMMANDS: dict[str, ModuleType] = {
    "sim": sim, "broker": broker, "run": run, "mutants": mutants, "bench": bench,
    "baseline": baseline, "compare": compare, "reliability": reliability, "farm": farm,
    "places": places, "record": record, "replay": replay, "fuzz": fuzz, "console": console,
}
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
    for name, module in COMMANDS.items():
        if name == "run":
            command = sub.add_parser(name, help=module.HELP, allow_abbrev=False, usage=_RUN_USAGE)
        else:
            command = sub.add_parser(name, help=module.HELP)
        module.add_arguments(command)
        command.set_defaults(func=module.main)
    return parser


#: The signal that stopped the command, once one did.
_stopped_by: list[int] = []


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM ends a command as an exception would: its `with` blocks and `finally`
    clauses run, so the brokers, simulators and taps it started are stopped, not orphaned."""
    _stopped_by.append(signum)
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is not threading.main_thread():
        return _main(argv)  # signal handlers belong to the main thread
    before = signal.signal(signal.SIGTERM, _terminated)
    try:
        return _main(argv)
    except BaseException:
        if not _stopped_by:
            raise
        # one line, whatever wrapped the exit on its way (hypothesis does)
        signum = _stopped_by[0]
        print(f"hil: stopped by {signal.Signals(signum).name}; what it had started is stopped",
              file=sys.stderr)
        return 128 + signum
    finally:
        signal.signal(signal.SIGTERM, before)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # only `hil run` takes arguments of its own (they go to pytest)
        if not hasattr(args, "pytest_args"):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.pytest_args = extra
    run: Callable[[argparse.Namespace], int] = args.func  # the subcommand's main
    return run(args)

