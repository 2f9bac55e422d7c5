"""The comparison step of `hil run --baseline`, and the Allure page of a comparison.

Exit status (as `hil compare`'s): 0 the candidate is acceptable, 1 it has regressions or
changed open points, 2 the two could not be compared, 3 inconclusive; `hil run --baseline`
says inconclusive with RUN_INCONCLUSIVE, as pytest's 3 means an internal error.
"""

from __future__ import annotations

import html
import sys
import time
from pathlib import Path

from allure_commons.logger import AllureFileLogger

from hil.acceptance.baseline import Snapshot, SnapshotError, load, pool, snapshot_of_run
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
from hil.rig.thresholds import Thresholds

#: `hil run --baseline`'s status for an inconclusive comparison (8 is "could not compare").
RUN_INCONCLUSIVE = 9


def load_runs(paths: list[Path]) -> Snapshot:
    """One run or baseline, or several runs pooled with their modules kept apart."""
    if len(paths) == 1:
        return load(paths[0])
    return pool([snapshot_of_run(p) for p in paths], source=", ".join(map(str, paths)))


def page_of(comparison: Comparison) -> AllurePage:
    """The Allure page for a comparison: the one-sentence verdict first, the findings as
    steps, the tables attached. A failure's message starts with AssertionError so
    hil.report.categories files it under firmware defects, like a failed test; an inconclusive
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
