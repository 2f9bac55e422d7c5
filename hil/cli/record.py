"""`hil record`: pass a serial client's bytes to the port and back, recording both ways.

docs/record.md has the details.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

import serial

from hil.trace.record import Recorder, until_signal

HELP = "pass a serial client's bytes to the port and back, recording both ways"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("port", help="the module's port: a device node or any pyserial URL")
    parser.add_argument("session", type=Path, help="the session file to write (JSON lines)")
    parser.add_argument("--baud", type=int, default=115200, help="the port's rate (115200)")
    parser.add_argument("--link", type=Path, default=None,
                        help="a stable symlink to the client's pty")
    parser.add_argument("--seconds", type=float, default=None,
                        help="stop after this long (default: until interrupted)")


def main(args: argparse.Namespace) -> int:
    try:
        recorder = Recorder(args.port, args.baud, args.session, link=args.link)
    except (serial.SerialException, OSError, ValueError) as exc:
        print(f"hil record: cannot open {args.port}: {exc}", file=sys.stderr)
        return 2
    print(f"PTY {recorder.client_port}", flush=True)
    stop = threading.Event()

    def stop_when_the_port_ends() -> None:
        if recorder.wait():
            stop.set()

    watcher = threading.Thread(target=stop_when_the_port_ends, daemon=True)
    watcher.start()
    try:
        until_signal(stop, args.seconds)
    finally:
        recorder.close()
    if recorder.lost:
        print(f"hil record: {recorder.lost}; the session up to then is in {args.session}",
              file=sys.stderr)
        return 1
    return 0
