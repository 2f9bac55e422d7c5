"""`hil replay`: serve a recorded session as a port, or check it against a profile.

docs/record.md has the details.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from hil.trace.record import ReplayServer, until_signal
from hil.trace.replay import CommandReplay, StrictReplay
from hil.trace.session import Session, SessionError, load_session

HELP = "serve a recorded session as a port, or check it against a profile"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", type=Path, help="a session file written by `hil record`")
    parser.add_argument("--by-command", action="store_true",
                        help="answer each command line by the recording, in any order "
                        "(default: strict, the recorded order)")
    parser.add_argument("--no-pace", action="store_true",
                        help="send the module's bytes as soon as they are due (strict mode)")
    parser.add_argument("--link", type=Path, default=None, help="a stable symlink to the pty")
    parser.add_argument("--check", metavar="PROFILE", default=None,
                        help="do not serve: play the session's commands to the simulator with "
                        "this profile and list where the recorded module differs")


def main(args: argparse.Namespace) -> int:
    try:
        session = load_session(args.session)
    except SessionError as exc:
        print(f"hil replay: {exc}", file=sys.stderr)
        return 2
    if args.check:
        return _check(session, args.check)
    replay: StrictReplay | CommandReplay = (
        CommandReplay(session) if args.by_command else StrictReplay(session, pace=not args.no_pace)
    )
    server = ReplayServer(replay, link=args.link)
    print(f"PTY {server.port}", flush=True)
    stop = threading.Event()
    try:
        until_signal(stop, None)
    finally:
        server.close()
    if isinstance(replay, StrictReplay):
        if replay.mismatch:
            print(f"hil replay: {replay.mismatch}", file=sys.stderr)
            return 1
        if not replay.done:
            print("hil replay: stopped before the end of the recording", file=sys.stderr)
            return 1
    elif replay.unknown:
        shown = ", ".join(repr(k.decode("latin-1")) for k in replay.unknown[:5])
        print(f"hil replay: lines not in the recording (answered ERROR): {shown}",
              file=sys.stderr)
        return 1
    return 0


def _check(session: Session, profile_name: str) -> int:
    """Print the differences; exit 0 when the module behaved as the profile, 1 if not."""
    from hil.sim.profiles import profile_named  # the firmware model: only for a check
    from hil.trace.check import check_session

    try:
        profile = profile_named(profile_name)
    except ValueError as exc:
        print(f"hil replay --check: {exc}", file=sys.stderr)
        return 2
    played, differences = check_session(session, profile)
    if not differences:
        print(f"the module answered all {played} exchanges as profile {profile.name} does")
        return 0
    print(f"the module differs from profile {profile.name} in {len(differences)} of "
          f"{played} exchanges:")
    for difference in differences:
        print(difference.render(profile.name))
    return 1
