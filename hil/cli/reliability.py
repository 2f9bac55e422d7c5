"""`hil reliability`: fault campaigns, soak, bad input and secrets, in figures.

Writes reports/<UTC time>/reliability.json (and reliability.md, the same figures as tables);
with `--doc FILE`, the tables also replace their marked sections in FILE
(docs/reliability.md). Exit 0 when every figure meets its bound, 1 when one does not,
2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hil.cli.run import new_run_dir
from hil.reliability import report
from hil.report.files import write_atomic

ROOT = Path(__file__).resolve().parent.parent.parent
PARTS = ("faults", "soak", "fuzz", "inputs", "secrets")


#: (short, long) sizes of every part.
SIZES: dict[str, tuple[float, float]] = {
    "trials": (2, 100),
    "soak_minutes": (0.25, 15.0),
    "fuzz_inputs": (10_000, 1_000_000),
    "broken_files": (40, 1000),
}


HELP = "fault campaigns, soak, bad input and secrets: figures in reliability.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--short", action="store_true",
                        help="the short form (a few trials of each; what the tests run)")
    parser.add_argument("--only", default=",".join(PARTS), metavar="PARTS",
                        help=f"comma-separated parts to run, of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--trials", type=int, default=None,
                        help="trials per fault kind (default 100; 2 with --short)")
    parser.add_argument("--soak-minutes", type=float, default=None,
                        help="wall-clock minutes of soak (default 15; 0.25 with --short)")
    parser.add_argument("--fuzz-inputs", type=int, default=None,
                        help="generated inputs for each of the framer and the codec "
                        "(default 10^6; 10000 with --short)")
    parser.add_argument("--broken-files", type=int, default=None,
                        help="broken rig files, run folders and baselines of each kind "
                        "(default 1000; 40 with --short)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    parser.add_argument("--reports", type=Path, default=None, metavar="DIR",
                        help="where the run folder goes (default: reports/ of the project)")
    parser.add_argument("--doc", type=Path, default=None, metavar="FILE",
                        help="also write the tables into FILE's marked sections "
                        "(docs/reliability.md)")


def _size(args: argparse.Namespace, name: str) -> float:
    given = getattr(args, name)
    return given if given is not None else SIZES[name][0 if args.short else 1]


def main(args: argparse.Namespace) -> int:
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        print(f"hil reliability: unknown part {', '.join(unknown)}: choose from "
              f"{', '.join(PARTS)}", file=sys.stderr)
        return 2
    if args.doc is not None and (problem := report.check_doc(args.doc, parts)):
        print(f"hil reliability: --doc {problem}", file=sys.stderr)
        return 2
    folder = new_run_dir(args.reports or ROOT / "reports")
    figures: dict[str, Any] = {
        "schema": 1,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "hil reliability " + " ".join(sys.argv[2:]) if sys.argv[1:2] == [
            "reliability"] else "hil reliability",
        "form": "short" if args.short else "long",
        "seed": args.seed,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "commit": _commit(),
    }
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hil-reliability-") as scratch:
        for part in parts:
            began = time.monotonic()
            print(f"hil reliability: {part}…", flush=True)
            figures[part] = _run_part(part, args, Path(scratch) / part, folder)
            figures[part]["seconds"] = round(time.monotonic() - began, 1)
            write_atomic(folder / "reliability.json", json.dumps(figures, indent=2) + "\n")
    figures["seconds"] = round(time.monotonic() - start, 1)
    failures = report.failures(figures)
    figures["failures"] = failures
    write_atomic(folder / "reliability.json", json.dumps(figures, indent=2) + "\n")
    tables = report.render(figures)
    write_atomic(folder / "reliability.md", report.as_document(tables))
    if args.doc is not None:
        report.update_doc(args.doc, tables)
    print(report.as_document(tables))
    print(f"hil reliability: {folder / 'reliability.json'} ({figures['seconds']:g} s)")
    for failure in failures:
        print(f"hil reliability: bound not met: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _commit() -> str | None:
    """The harness's git commit, so figures can be traced to the code that made them."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, timeout=5,
                              capture_output=True, text=True, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def _run_part(part: str, args: argparse.Namespace, scratch: Path,
              folder: Path) -> dict[str, Any]:
    if part == "faults":
        from hil.reliability.faults import KINDS, campaign
        from hil.reliability.stand import stand

        trials = int(_size(args, "trials"))
        with stand(scratch, seed=args.seed) as bench:
            kinds = campaign(bench, KINDS, trials, args.seed,
                             progress=lambda line: print(f"  {line}", flush=True))
        return {"trials_per_kind": trials, "kinds": [vars(k) for k in kinds]}
    if part == "soak":
        from hil.reliability.soak import soak
        from hil.reliability.stand import stand

        with stand(scratch, seed=args.seed) as bench:
            return soak(bench, _size(args, "soak_minutes"), args.seed,
                        progress=lambda line: print(f"  {line}", flush=True))
    if part == "fuzz":
        from hil.reliability.fuzz import fuzz

        return fuzz(int(_size(args, "fuzz_inputs")), args.seed)
    if part == "inputs":
        from hil.cli import main
        from hil.reliability.inputs import corpus

        return corpus(scratch, int(_size(args, "broken_files")), args.seed, main)
    if part == "secrets":
        from hil.reliability.secrets import secrets_run

        return secrets_run(scratch)
    raise AssertionError(f"part {part} has no runner")
