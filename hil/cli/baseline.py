"""`hil baseline accept | show`: keep a run as the accepted firmware's baseline; list baselines."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from hil.acceptance.baseline import (
    BASELINE_FILE,
    DEFAULT_BASELINES,
    Snapshot,
    SnapshotError,
    accept,
    accepted_at,
    baselines_under,
    load,
    snapshot_of_run,
)
from hil.acceptance.compare import CANNOT_COMPARE
from hil.acceptance.gate import load_runs

HELP = "keep a run as the accepted firmware's baseline; list baselines"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="baseline_command", required=True, metavar="ACTION")
    keep = sub.add_parser("accept", help="keep a run as the accepted baseline of its model")
    keep.add_argument("run", type=Path, nargs="+",
                      help="the run folder (reports/<UTC time>/); several: a farm's runs of "
                      "one firmware, kept module by module")
    keep.add_argument("--into", type=Path, default=DEFAULT_BASELINES, metavar="DIR",
                      help="where baselines are kept (default: baselines/ of the project); "
                      "the file goes to DIR/<model>/<firmware revision>/baseline.json")
    keep.add_argument("--note", default="", help="why this firmware was accepted")
    keep.add_argument("--by", default=None, help="who accepts it (default: the user name)")
    keep.add_argument("--force", action="store_true",
                      help="replace an existing baseline of the same firmware revision")
    show = sub.add_parser("show", help="list baselines, or show one")
    show.add_argument("path", type=Path, nargs="?", default=DEFAULT_BASELINES,
                      help="a baseline (file or folder) or a folder of baselines "
                      "(default: baselines/ of the project)")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def _accept(args: argparse.Namespace) -> int:
    try:
        run = load_runs(args.run) if len(args.run) > 1 else snapshot_of_run(args.run[0])
        target = accept(run, args.into, by=args.by or _user(), note=args.note,
                        force=args.force, now=datetime.now(UTC))
    except SnapshotError as exc:
        print(f"hil baseline: not accepted: {exc}", file=sys.stderr)
        return CANNOT_COMPARE
    outcomes = Counter(o for o, _ in run.tests.values())
    failing = outcomes["failed"] + outcomes["error"]
    print(f"hil baseline: {run.model} firmware {run.revision} accepted from "
          f"{', '.join(map(str, args.run))}")
    print(f"hil baseline: kept in {target}")
    for note in run.notes:
        print(f"hil baseline: note: {note}")
    if failing:
        print(f"hil baseline: note: {failing} test(s) failed in that run; they count as "
              "the accepted state")
    print("hil baseline: keep it under version control with the rest of the bench's files")
    return 0


def describe(s: Snapshot) -> str:
    """A baseline in a few lines: firmware, acceptance, what it holds."""
    outcomes = Counter(o for o, _ in s.tests.values())
    samples = sum(len(v) for by_test in s.latency.values() for v in by_test.values())
    accepted = s.accepted or {}
    lines = [
        f"{s.model} {s.revision}",
        f"  file          {s.source}",
        f"  accepted      {accepted.get('at', '?')} by {accepted.get('by', '?')}"
        + (f": {accepted['note']}" if accepted.get("note") else ""),
        f"  from run      {accepted.get('source', '?')}",
        f"  firmware      {s.firmware.get('CGMR') or s.firmware.get('ATI') or '?'}",
        f"  bench         {s.run.get('rig', '?')} ({s.run.get('dut', '?')}"
        + (f", profile {s.run['profile']}" if s.run.get("profile") else "") + ")",
        "  tests         " + ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items())),
        f"  open points   {len(s.characterization)} clauses: "
        + ", ".join(f"{c} ({sum(b.follows for b in rs)}/{len(rs)} as decided)"
                    for c, rs in sorted(s.characterization.items())),
        f"  latency       {samples} samples of {len(s.latency)} commands",
        "  throughput    " + (", ".join(sorted(s.throughput)) or "none"),
    ]
    if s.modules:
        lines.append(f"  modules       {len(s.modules)}: {', '.join(s.modules)}")
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    path: Path = args.path
    try:
        if path.is_file() or (path / BASELINE_FILE).is_file():
            print(describe(load(path)))
            return 0
        found = [load(p) for p in baselines_under(path)]
    except SnapshotError as exc:
        print(f"hil baseline: {exc}", file=sys.stderr)
        return CANNOT_COMPARE
    if not found:
        print(f"hil baseline: no baselines in {path} (hil baseline accept <run> makes one)")
        return 0
    current: dict[str, Snapshot] = {}
    for s in found:
        best = current.get(s.model)
        if best is None or accepted_at(s) >= accepted_at(best):
            current[s.model] = s
    for s in sorted(found, key=lambda s: (s.model, accepted_at(s))):
        mark = "  (current)" if current[s.model] is s else ""
        accepted = s.accepted or {}
        print(f"{s.model:<8} {s.revision:<32} accepted {accepted.get('at', '?')} by "
              f"{accepted.get('by', '?')}  {Path(s.source).parent}{mark}")
    return 0


def main(args: argparse.Namespace) -> int:
    return _accept(args) if args.baseline_command == "accept" else _show(args)
