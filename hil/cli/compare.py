"""`hil compare`: what changed from a baseline to a candidate run.

Exit status: 0 the candidate is acceptable, 1 it has regressions or changed open points, 2
the two could not be compared (a missing or corrupt run or baseline, another model, a bad
rig file), 3 inconclusive: no regression found, but a large latency shift too few samples
can settle (docs/acceptance.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hil.acceptance.baseline import SnapshotError, load
from hil.acceptance.compare import (
    CANNOT_COMPARE,
    CannotCompare,
    compare,
    render_markdown,
    render_text,
)
from hil.acceptance.gate import load_runs, page_of, write_allure
from hil.rig import RigError, load_rig
from hil.rig.thresholds import Thresholds

HELP = "what changed from a baseline to a candidate run (exit 0/1/2/3)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", type=Path,
                        help="a baseline.json, its folder, a model's folder of baselines (the "
                        "latest accepted), or a run folder")
    parser.add_argument("candidate", type=Path, nargs="+",
                        help="the run folder of the new firmware; several: a farm's runs, "
                        "each module labelled by its place")
    parser.add_argument("--pair", choices=("auto", "place", "pooled"), default="auto",
                        help="match modules by their place on the bench, or pool each "
                        "side's modules (same firmware); auto: by place when both sides "
                        "hold the same places (default)")
    parser.add_argument("--rig", type=Path, default=None, metavar="FILE",
                        help="take the thresholds from this rig file's [acceptance] table "
                        "(default: the documented defaults)")
    parser.add_argument("--markdown", type=Path, default=None, metavar="FILE",
                        help="also write the comparison as Markdown")
    parser.add_argument("--allure-results", type=Path, default=None, metavar="DIR",
                        help="also add the page \"Firmware acceptance vs <baseline>\" to "
                        "these Allure results")


def thresholds_of(rig: Path | None) -> Thresholds:
    return Thresholds() if rig is None else load_rig(rig).acceptance


def main(args: argparse.Namespace) -> int:
    try:
        thresholds = thresholds_of(args.rig)
        comparison = compare(load(args.baseline), load_runs(args.candidate), thresholds,
                             args.pair)
    except (SnapshotError, CannotCompare, RigError) as exc:
        print(f"hil compare: cannot compare: {exc}", file=sys.stderr)
        return CANNOT_COMPARE
    print(render_text(comparison), end="")
    try:
        if args.markdown is not None:
            args.markdown.write_text(render_markdown(comparison), encoding="utf-8")
            print(f"hil compare: Markdown in {args.markdown}")
        if args.allure_results is not None:
            write_allure(args.allure_results, page_of(comparison))
    except OSError as exc:
        print(f"hil compare: cannot write the comparison: {exc}", file=sys.stderr)
        return CANNOT_COMPARE
    return comparison.exit_code
