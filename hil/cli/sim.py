"""`hil sim`: a simulated L506 on a pseudo-terminal (or TCP) until interrupted.

Its power can be switched from outside, as a bench's relay switches a module: SIGUSR1 cuts
it (the port vanishes, sockets die, RAM is lost), SIGUSR2 restores it (a fresh boot behind
the same link or TCP port). A rig's `command` power backend can thus drive it
(`kill -USR1 <pid>`; `--pid-file` says the pid). `--power-http` serves the same switch as a
network power switch of labgrid's `simplerest` model, so that a labgrid exporter can share
it as the place's `NetworkPowerPort` (`hil farm up`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
        "--port-stays",
        action="store_true",
        help="the port stays when the power is cut, as a USB-serial adapter powered by the "
        "PC does (the module goes silent); by default it vanishes, as the module's own USB "
        "port does",
    )
    parser.add_argument(
        "--power-http",
        type=int,
        metavar="PORT",
        default=None,
        help="switch the power over HTTP on 127.0.0.1:PORT (0: any), as labgrid's "
        "`simplerest` power model does: GET /relay/0/0 off, /relay/0/1 on, /relay/0 the "
        "state ('1' or '0'); printed as a POWER line",
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
        port_stays=args.port_stays,
    )
    return firmware, config


#: Signals that switch the simulated module's power, as a relay would.
POWER_SIGNALS = {signal.SIGUSR1: "off", signal.SIGUSR2: "on"}


async def _switch_power(host: SimHost, requests: asyncio.Queue[str]) -> None:
    """Carry out power requests one at a time, in the order they came."""
    while True:
        state = await requests.get()
        try:
            if state == "off":
                await host.power_off()
                print("hil sim: power off", file=sys.stderr, flush=True)
            elif not host.powered:
                url = await host.power_on()
                print(f"hil sim: power on, {url}", file=sys.stderr, flush=True)
        finally:
            requests.task_done()


def _power_http(host: SimHost, requests: asyncio.Queue[str], port: int,
                loop: asyncio.AbstractEventLoop) -> ThreadingHTTPServer:
    """labgrid's `simplerest` power model, served on loopback (the standard library's HTTP
    server, in a thread): `GET /relay/<index>/<value>` switches and answers once the switch
    is done, `GET /relay/<index>` says "1" or "0". One relay: the index is not looked at."""

    async def switch(state: str) -> None:
        requests.put_nowait(state)
        await requests.join()

    class Relay(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = self.path.strip("/").split("/")
            if parts[:1] != ["relay"] or len(parts) not in (2, 3) \
                    or (len(parts) == 3 and parts[2] not in ("0", "1")):
                self.send_error(404, "GET /relay/<index> or /relay/<index>/<0|1>")
                return
            if len(parts) == 3:
                state = "on" if parts[2] == "1" else "off"
                asyncio.run_coroutine_threadsafe(switch(state), loop).result(timeout=60)
            body = b"1" if host.powered else b"0"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            print(f"hil sim: power http: {format % args}", file=sys.stderr, flush=True)

    server = ThreadingHTTPServer(("127.0.0.1", port), Relay)
    threading.Thread(target=server.serve_forever, name="power-http", daemon=True).start()
    return server


async def _serve(host: SimHost, pid_file: Path | None = None,
                 power_http: int | None = None) -> None:
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
    server = None
    if power_http is not None:
        server = _power_http(host, requests, power_http, loop)
        print(f"POWER http://127.0.0.1:{server.server_port}/relay/{{index}}/{{value}}",
              flush=True)
    try:
        await stop.wait()
    finally:
        if server is not None:
            server.shutdown()
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
        runner.run(_serve(SimHost(firmware, config), args.pid_file, args.power_http))
    return 0
