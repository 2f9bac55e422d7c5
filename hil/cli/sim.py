"""`hil sim`: a simulated L506 on a pseudo-terminal (or TCP) until interrupted.

Its power can be switched from outside, as a bench's relay switches a module: SIGUSR1 cuts
it (the port vanishes, sockets die, RAM is lost), SIGUSR2 restores it (a fresh boot behind
the same link or TCP port). A rig's `command` power backend can thus drive it
(`kill -USR1 <pid>`; `--pid-file` says the pid).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from hil.sim.firmware import Firmware
from hil.sim.host import DEFAULT_HOSTS, SimConfig, SimHost, new_event_loop
from hil.sim.profiles import PROFILES, profile_named

HELP = "run a simulated L506 on a pty or TCP port"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        default="v3.2",
        choices=sorted(PROFILES),
        help="firmware profile to simulate (default v3.2, the reference; guide-alt takes the "
        "other reading of every open point, see docs/simulator.md)",
    )
    parser.add_argument(
        "--link",
        type=Path,
        default=None,
        help="stable symlink to the pty, re-pointed at every power-on",
    )
    parser.add_argument(
        "--tcp",
        type=int,
        metavar="PORT",
        default=None,
        help="serve the UART on socket://127.0.0.1:PORT instead of a pty (0: any)",
    )
    parser.add_argument(
        "--baud",
        type=int,
        default=115200,
        help="pace output and input at this UART rate; 0 for no pacing",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="device timeouts (boot, 60 s idle drop) multiplied by this",
    )
    parser.add_argument(
        "--no-latency",
        action="store_true",
        help="zero firmware latency and no link delay (the profile's latency model is on "
        "by default)",
    )
    parser.add_argument(
        "--latency",
        default=None,
        metavar="SPEC",
        help="firmware latency model: 'off', or comma-separated xF (scale the synthetic "
        "model), NAME=MS, *=MS; e.g. '*=0,AT=5' (see docs/timing.md)",
    )
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="NAME=ADDR",
        help="a name MIPSTART may dial (loopback addresses only)",
    )
    parser.add_argument(
        "--write-log",
        type=Path,
        default=None,
        metavar="FILE",
        help="record every write to the port as 't_ns nbytes' lines (time.monotonic_ns() "
        "just before the write), written out at power-off; lets `hil bench` tell the "
        "simulator's lateness from the harness's stamping",
    )
    parser.add_argument(
        "--pid-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the process id here, for power commands: `kill -USR1 $(cat FILE)` "
        "switches the simulated module off, `kill -USR2 $(cat FILE)` on again",
    )
    parser.add_argument(
        "--bug",
        action="append",
        default=[],
        metavar="NAME",
        help="build the firmware with a named bug (see `hil mutants --list`)",
    )


def config_from(args: argparse.Namespace) -> tuple[Firmware, SimConfig]:
    profile = profile_named(args.profile)
    if args.no_latency:
        profile = profile.without_latency()
    if args.latency:
        profile = profile.with_latency_spec(args.latency)
    hosts = dict(DEFAULT_HOSTS)
    for item in args.host:
        name, sep, addr = item.partition("=")
        if not sep:
            raise SystemExit(f"hil sim: --host wants NAME=ADDR, got {item!r}")
        hosts[name.lower()] = addr
    firmware = Firmware(profile, time_scale=args.time_scale, bugs=frozenset(args.bug))
    config = SimConfig(
        transport="pty" if args.tcp is None else "tcp",
        link=args.link,
        tcp_port=args.tcp or 0,
        baud=args.baud or None,
        hosts=hosts,
        write_log=args.write_log,
    )
    return firmware, config


#: Signals that switch the simulated module's power, as a relay would.
POWER_SIGNALS = {signal.SIGUSR1: "off", signal.SIGUSR2: "on"}


async def _switch_power(host: SimHost, requests: asyncio.Queue[str]) -> None:
    """Carry out power requests one at a time, in the order the signals came."""
    while True:
        state = await requests.get()
        if state == "off":
            await host.power_off()
            print("hil sim: power off", file=sys.stderr, flush=True)
        elif not host.powered:
            url = await host.power_on()
            print(f"hil sim: power on, {url}", file=sys.stderr, flush=True)


async def _serve(host: SimHost, pid_file: Path | None = None) -> None:
    stop = asyncio.Event()
    requests: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    for sig, state in POWER_SIGNALS.items():
        loop.add_signal_handler(sig, requests.put_nowait, state)
    url = await host.power_on()
    if pid_file is not None:
        pid_file.write_text(f"{os.getpid()}\n", encoding="ascii")
    switch = loop.create_task(_switch_power(host, requests))
    label = "PTY" if host.config.transport == "pty" else "URL"
    print(f"{label} {url}", flush=True)
    try:
        await stop.wait()
    finally:
        switch.cancel()
        await host.power_off()
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)


def main(args: argparse.Namespace) -> int:
    try:
        firmware, config = config_from(args)
    except ValueError as exc:
        print(f"hil sim: {exc}", file=sys.stderr)
        return 2
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_serve(SimHost(firmware, config), args.pid_file))
    return 0
