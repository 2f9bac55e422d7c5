"""`hil baseline accept | show` and `hil compare`, and the comparison step of `hil run --baseline`.

Exit status of `hil compare` (and of the comparison in `hil run --baseline`): 0 the candidate
is acceptable, 1 it has regressions or changed open points, 2 the two could not be compared
(a missing or corrupt run or baseline, another model, a bad rig file), 3 inconclusive: no
regression found, but a large latency shift too few samples can settle (`hil run
--baseline` says that with RUN_INCONCLUSIVE, as pytest's 3 means an internal error).
"""

from __future__ import annotations

import argparse
import getpass
import html
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from allure_commons.logger import AllureFileLogger

from hil.acceptance.baseline import (
    BASELINE_FILE,
    Snapshot,
    SnapshotError,
    accept,
    accepted_at,
    baselines_under,
    load,
    pool,
    snapshot_of_run,
)
from hil.acceptance.compare import (
    CANNOT_COMPARE,
    INCONCLUSIVE,
    REGRESSIONS,
    AllurePage,
    CannotCompare,
    Comparison,
    Status,
    allure_page,
    allure_steps,
    compare,
    render_html,
    render_markdown,
    render_text,
    summary_html,
)
from hil.acceptance.stats import Thresholds
from hil.rig import RigError, load_rig

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BASELINES = ROOT / "baselines"
#: `hil run --baseline`'s status for an inconclusive comparison (8 is "could not compare").
RUN_INCONCLUSIVE = 9


# ---------------------------------------------------------------------------- arguments


def add_baseline_arguments(parser: argparse.ArgumentParser) -> None:
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


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
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


# ---------------------------------------------------------------------------- hil compare


def thresholds_of(rig: Path | None) -> Thresholds:
    return Thresholds() if rig is None else load_rig(rig).acceptance


def load_runs(paths: list[Path]) -> Snapshot:
    """One run or baseline, or several runs pooled with their modules kept apart."""
    if len(paths) == 1:
        return load(paths[0])
    return pool([snapshot_of_run(p) for p in paths], source=", ".join(map(str, paths)))


def compare_main(args: argparse.Namespace) -> int:
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


def page_of(comparison: Comparison) -> AllurePage:
    """The Allure page for a comparison: the one-sentence verdict first, the findings as
    steps, the tables attached. A failure's message starts with AssertionError so
    hil.categories files it under firmware defects, like a failed test; an inconclusive
    one is "unknown", neither passed nor failed."""
    code = comparison.exit_code
    detail = "".join(f"\n{p}" for p in (*comparison.problems, *comparison.unsettled))
    now_ms = int(time.time() * 1000)
    statuses: dict[int, Status] = {REGRESSIONS: "failed", INCONCLUSIVE: "unknown"}
    return allure_page(
        comparison.baseline.label, statuses.get(code, "passed"),
        ("AssertionError: " if code == REGRESSIONS else "") + comparison.headline
        + f"\n{comparison.summary}" + detail,
        summary_html(comparison),
        [("compare.html", render_html(comparison), "text/html", "html"),
         ("compare.md", render_markdown(comparison), "text/markdown", "md"),
         ("compare.txt", render_text(comparison, width=200), "text/plain", "txt")],
        allure_steps(comparison, now_ms), now_ms,
    )


def write_allure(results: Path, page: AllurePage) -> None:
    logger = AllureFileLogger(str(results))
    for name, body in page.files.items():
        logger.report_attached_data(body=body, file_name=name)
    logger.report_result(page.result)


def gate(baseline: Path, run: Path, thresholds: Thresholds) -> int:
    """`hil run --baseline`: compare the run with `baseline`; print the table; write
    compare.md into the run's folder and the acceptance page into its allure-results.
    Returns the exit status of `hil compare`, but RUN_INCONCLUSIVE for inconclusive."""
    try:
        comparison = compare(load(baseline), snapshot_of_run(run), thresholds)
    except (SnapshotError, CannotCompare) as exc:
        message = f"cannot compare with {baseline}: {exc}"
        print(f"hil run: {message}", file=sys.stderr)
        (run / "compare.md").write_text(f"# Firmware acceptance\n\n{message}\n",
                                        encoding="utf-8")
        write_allure(run / "allure-results", allure_page(
            baseline.name, "broken", message, f"<p>{html.escape(message)}</p>", []))
        return CANNOT_COMPARE
    print()
    print(render_text(comparison), end="", flush=True)
    (run / "compare.md").write_text(render_markdown(comparison), encoding="utf-8")
    write_allure(run / "allure-results", page_of(comparison))
    print(f"hil run: comparison in {run / 'compare.md'} and in the report")
    code = comparison.exit_code
    return RUN_INCONCLUSIVE if code == INCONCLUSIVE else code


def check_baseline(path: Path) -> str | None:
    """What is wrong with `path` as a baseline, before a long run is spent on it."""
    try:
        load(path)
    except SnapshotError as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------- hil baseline


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


def baseline_main(args: argparse.Namespace) -> int:
    return _accept(args) if args.baseline_command == "accept" else _show(args)
