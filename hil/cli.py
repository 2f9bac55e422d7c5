"""`hil`: the harness's command line."""

from __future__ import annotations

import argparse
import sys

from hil.broker import cli as broker_cli
from hil.sim import cli as sim_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hil",
        description="Hardware-in-the-loop test harness for the L506 MQTT AT command set.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sim = sub.add_parser("sim", help="run a simulated L506 on a pty or TCP port")
    sim_cli.add_arguments(sim)
    sim.set_defaults(func=sim_cli.run)
    broker = sub.add_parser("broker", help="run the test broker (plain, password and TLS listeners)")
    broker_cli.add_arguments(broker)
    broker.set_defaults(func=broker_cli.run_broker)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
