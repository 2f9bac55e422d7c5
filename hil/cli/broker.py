"""`hil broker`: a test broker on the bench, for trying an L506 by hand."""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from pathlib import Path

from hil.broker.broker import Broker, BrokerError, ipv6_loopback_available

HELP = "run the test broker (plain, password and TLS listeners)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the `broker` subcommand."""
    parser.add_argument("--folder", type=Path, default=None,
                        help="where config, certificates and log go (default: a new temp dir)")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                        help="a user for the password listeners (repeatable; default: hil "
                             "with a random password)")
    parser.add_argument("--binary", default=None, help="mosquitto binary (default: found)")
    parser.add_argument("--ipv6", action="store_true", help="also listen on ::1")
    parser.add_argument("--bind", default="127.0.0.1", metavar="ADDRESS",
                        help="address the listeners bind (default %(default)s; a module on "
                        "the bench's network needs the PC's address there)")
    parser.add_argument("--port", type=int, default=0, metavar="N",
                        help="the plain listener's port (default: a free one)")
    parser.add_argument("--tls-port", type=int, default=0, metavar="N",
                        help="the TLS listener's port (default: a free one)")


def _users(specs: list[str]) -> dict[str, str]:
    if not specs:
        return {"hil": secrets.token_urlsafe(12)}
    users: dict[str, str] = {}
    for spec in specs:
        name, sep, password = spec.partition(":")
        if not (name and sep):
            raise SystemExit(f"--user {spec!r}: expected NAME:PASSWORD")
        users[name] = password
    return users


def main(args: argparse.Namespace) -> int:
    """Start a broker, print one line per listener, run until Ctrl-C; the exit status.

    Without --folder, config, keys and log go to a temporary folder that is removed on exit:
    a private key is never left behind in /tmp."""
    if args.folder is not None:
        return _serve(args, args.folder)
    with tempfile.TemporaryDirectory(prefix="hil-broker-") as private:
        return _serve(args, Path(private))


def _serve(args: argparse.Namespace, folder: Path) -> int:
    ipv6 = args.ipv6 and ipv6_loopback_available()
    if args.ipv6 and not ipv6:
        print("broker: ::1 cannot be bound here; --ipv6 ignored", file=sys.stderr)
    try:
        broker = Broker(folder, binary=args.binary, users=_users(args.user), ipv6=ipv6,
                        bind=args.bind, plain_port=args.port, tls_port=args.tls_port)
        broker.start()
    except BrokerError as exc:
        print(f"broker: {exc}", file=sys.stderr)
        return 1
    try:
        for listener in broker.listeners:
            rules = ["tls" if listener.tls else "tcp",
                     "password" if listener.auth else "anonymous"]
            if listener.require_certificate:
                rules.append("client-certificate")
            print(f"{listener.name:<13} {listener.url:<28} {' '.join(rules)}")
        for user, password in broker.users.items():
            print(f"user          {user}:{password}")
        print(f"ca            {broker.ca_pem}")
        print(f"log           {broker.log_path}")
        print("broker: running; Ctrl-C stops it", flush=True)
        status = broker.wait()
        print(f"broker: mosquitto exited with status {status}; log tail:\n"
              + "\n".join(broker.log_text().splitlines()[-20:]), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("broker: stopping", file=sys.stderr)
        return 0
    finally:
        broker.stop()
