"""The run page: what a hardware engineer opens first, built from what the run's folder holds.

One HTML page per run, made after the tests from the files the plugins wrote: results.json
(rig, module identity, every test's outcome and failure message), traceability.json (the
verdict per clause, shown as written: this page does not re-derive it), timings.json (the
response-time table per command), plots/*.png (embedded, so the page is one file) and,
after `hil run --baseline`, compare.md. Nothing is fetched when the page is shown.

It goes twice into a run: as `index.html` in the run's folder (with links to the failing
tests in the Allure report and to their transcripts), and as the Allure result "Run summary"
(its description holds the tables, its attachments the page and the plots), so it shows in
the report's overview. See docs/report.md.
"""

from __future__ import annotations

import base64
import html
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hil.report.records import (
    RESULTS,
    TIMINGS,
    TRACEABILITY,
    RecordError,
    ResultRow,
    RunInfo,
    RunResults,
    Timings,
    TraceabilityMatrix,
    read_optional,
    read_results,
    read_timings,
    read_traceability,
)

#: The plots a run may have, in the order shown, with what each says.
PLOTS = (
    ("latency.png", "Response time per command, split by payload size; refused commands apart"),
    ("refused.png", "Response time of refused commands (ERROR or FAILURE answers)"),
    ("throughput.png", "MPUBEX throughput in the throughput suite"),
    ("trend.png", "p95 response time per command over the runs kept under reports/"),
)
FAILED = ("failed", "error")
SUMMARY_HISTORY_ID = "hil.report#run_summary"
R = TypeVar("R")


@dataclass
class RunRecord:
    """What a run's folder says, as read from its files (missing files: None)."""

    name: str
    results: RunResults | None = None
    traceability: TraceabilityMatrix | None = None
    timings: Timings | None = None
    plots: dict[str, bytes] = field(default_factory=dict)
    comparison: str | None = None
    #: One line per file that is there but could not be read (its part stays empty).
    unread: tuple[str, ...] = ()

    @property
    def run(self) -> RunInfo:
        return self.results.run if self.results is not None else RunInfo()

    @property
    def identity(self) -> dict[str, str]:
        return self.run.identity

    @property
    def firmware(self) -> str:
        timed = self.timings.firmware if self.timings is not None else None
        return self.identity.get("revision") or timed or "unknown firmware"

    @property
    def rig(self) -> str:
        timed = self.timings.rig if self.timings is not None else None
        return self.run.rig or timed or "unknown rig"

    @property
    def tests(self) -> tuple[ResultRow, ...]:
        return self.results.tests if self.results is not None else ()

    @property
    def failures(self) -> list[ResultRow]:
        return [t for t in self.tests if t.outcome in FAILED]

    @property
    def verdict(self) -> str:
        """passed, failed (a test failed) or "no tests"."""
        if not self.tests:
            return "no tests"
        return "failed" if self.failures else "passed"


def load_run(folder: Path) -> RunRecord:
    """Read a run's folder; what is missing or unreadable stays empty on the page, and what
    is unreadable is named there."""
    plots = {}
    for name, _ in PLOTS:
        path = folder / "plots" / name
        if path.is_file():
            plots[name] = path.read_bytes()
    compare = folder / "compare.md"
    unread: list[str] = []

    def read(reader: Callable[[Path], R], name: str) -> R | None:
        try:
            return read_optional(reader, folder / name)
        except RecordError as exc:
            unread.append(str(exc))
            return None

    return RunRecord(
        name=folder.name,
        results=read(read_results, RESULTS),
        traceability=read(read_traceability, TRACEABILITY),
        timings=read(read_timings, TIMINGS),
        plots=plots,
        comparison=compare.read_text(encoding="utf-8") if compare.is_file() else None,
        unread=tuple(unread),
    )


# ---------------------------------------------------------------------------- rendering

_e = html.escape


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str) -> str:
    """A table of already-escaped cells."""
    out = [f'<table class="{cls}"><thead><tr>']
    out += [f"<th>{_e(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def identity_rows(record: RunRecord) -> list[tuple[str, str]]:
    run, ident = record.run, record.identity
    rows = [
        ("Firmware", record.firmware),
        ("Module", " ".join(x for x in (ident.get("manufacturer"), ident.get("model")) if x)),
        ("IMEI", ident.get("imei", "")),
        ("Rig", record.rig + (f" ({run.rig_file})" if run.rig_file else "")),
        ("DUT", run.dut or (record.timings.dut if record.timings is not None else "") or ""),
        ("Simulator profile", run.profile or ""),
        ("Port", run.port or ""),
        ("Run", f"{run.started or '?'} to {run.finished or '?'}"),
        ("Harness", run.harness or ""),
    ]
    return [(k, v) for k, v in rows if v]


def _totals(record: RunRecord) -> str:
    totals = record.results.totals if record.results is not None else {}
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(totals.items())) or "no tests"


def _failure_rows(record: RunRecord, links: Mapping[str, str],
                  transcripts: bool) -> list[list[str]]:
    rows = []
    for test in record.failures:
        nodeid = test.nodeid
        name = _e(nodeid.split("::", 1)[-1])
        where = [f'<a href="{_e(links[nodeid])}">in the report</a>'] if nodeid in links else []
        if transcripts:
            where.append(f'<a href="transcripts/{_e(safe_name(nodeid))}/transcript.log">'
                         "transcript</a>")
        rows.append([
            name + ("<br>" + " · ".join(where) if where else ""),
            _e(", ".join(test.clauses)),
            _e(test.category or ""),
            f"<pre>{_e(test.message or '')}</pre>",
        ])
    return rows


def safe_name(nodeid: str) -> str:
    """The transcript folder of a test (as fixtures/dut.py names it)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150]


def clause_rows(record: RunRecord) -> list[list[str]]:
    """One row per clause with the verdict traceability.json holds, as it holds it."""
    rows = []
    for c in record.traceability.clauses if record.traceability is not None else ():
        tests = "<br>".join(
            f"{_e(t.test.split('::', 1)[-1])}: {_e(t.outcome)}" for t in c.tests
        )
        kind = (c.kind or "-") + ("+Q" if c.open_point and c.kind != "Q" else "")
        rows.append([_e(c.id), _e(kind),
                     f'<span class="v-{_e(re.sub(r"[^a-z]+", "-", c.verdict.lower()))}">'
                     f"{_e(c.verdict)}</span>",
                     tests or "-", _e(c.text)])
    return rows


def command_rows(record: RunRecord) -> list[list[str]]:
    """n, p50, p95, p99, max of sent → done, the run's budget and its verdict, per command."""
    timings = record.timings
    if timings is None:
        return []
    over: dict[str, int] = {}
    for o in timings.over_budget:
        over[o.command] = over.get(o.command, 0) + 1
    rows = []
    for command, figures in timings.commands.items():
        total = figures.total
        if not total:
            continue
        budget = figures.budget_ms
        late = over.get(command, 0)
        if late:
            verdict = f"OVER BUDGET ({late} of {total['n']})"
        elif budget is None:
            verdict = "no budget"
        else:
            verdict = "within budget"
        rows.append([_e(command), str(total["n"]), *(_ms(total[k]) for k in
                     ("p50", "p95", "p99", "max")),
                     "-" if budget is None else f"{budget:g}", _e(verdict)])
    return rows


def markdown_html(text: str) -> str:
    """compare.md as HTML: headings, pipe tables, list items and paragraphs (what
    hil.acceptance writes); anything else stays text."""
    out: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            head, *body = table
            body = [r for r in body if not all(re.fullmatch(r":?-+:?", c) for c in r)]
            out.append(_table(head, [[_inline(c) for c in r] for r in body], "compare"))
            table.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            table.append([c.strip() for c in stripped.strip("|").split("|")])
            continue
        flush()
        if m := re.match(r"(#{1,4})\s+(.*)", stripped):
            level = min(len(m.group(1)) + 2, 6)
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif stripped.startswith(("- ", "* ")):
            out.append(f"<p>• {_inline(stripped[2:])}</p>")
        elif stripped:
            out.append(f"<p>{_inline(stripped)}</p>")
    flush()
    return "".join(out)


def _inline(text: str) -> str:
    escaped = _e(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def title(record: RunRecord) -> str:
    return f"L506 HIL run {record.name}: {record.firmware} on {record.rig}"


def body(record: RunRecord, links: Mapping[str, str] | None = None, *,
         images: bool = True, transcripts: bool = True) -> str:
    """The page's content. `links`: test nodeid → its page in the Allure report; `images`:
    embed the plots (data: URLs); `transcripts`: link each failure's transcript (valid only
    beside the run's folder)."""
    links = links or {}
    parts = [f"<h1>{_e(title(record))}</h1>",
             f'<p class="verdict verdict-{_e(record.verdict.replace(" ", "-"))}">'
             f"Run verdict: <b>{_e(record.verdict)}</b> ({_e(_totals(record))})</p>"]
    parts += [f'<p class="unread">Not read: {_e(line)}</p>' for line in record.unread]
    parts.append('<h2 id="identity">Firmware, rig and module</h2>')
    parts.append(_table(("", ""), [[_e(k), _e(v)] for k, v in identity_rows(record)],
                        "identity"))
    failures = _failure_rows(record, links, transcripts)
    parts.append(f'<h2 id="failures">Failing tests ({len(failures)})</h2>')
    parts.append(_table(("test", "clauses", "category", "message"), failures, "failures")
                 if failures else "<p>None.</p>")
    parts.append('<h2 id="clauses">Verdict per clause</h2>')
    matrix = record.traceability
    if matrix is not None:
        parts.append("<p>" + _e(", ".join(f"{v}: {n}" for v, n in matrix.summary.items()))
                     + f" (clauses from {_e(matrix.clauses_file or '?')})</p>")
        parts.append(_table(("clause", "kind", "verdict", "tests", "what it says"),
                            clause_rows(record), "clauses"))
    else:
        parts.append("<p>No traceability.json: no test of this run named a clause.</p>")
    parts.append('<h2 id="timing">Response time per command (ms, sent → final code or '
                 "result)</h2>")
    rows = command_rows(record)
    if rows:
        parts.append(_table(("command", "n", "p50", "p95", "p99", "max", "budget", "verdict"),
                            rows, "commands"))
        if record.timings is not None and (note := record.timings.latency_model):
            parts.append(f"<p>Latency: {_e(note)}.</p>")
    else:
        parts.append("<p>No timings.json: no command was timed.</p>")
    if images and record.plots:
        parts.append('<h2 id="plots">Plots</h2>')
        for name, caption in PLOTS:
            if name in record.plots:
                data = base64.b64encode(record.plots[name]).decode("ascii")
                parts.append(f'<figure><img alt="{_e(caption)}" '
                             f'src="data:image/png;base64,{data}">'
                             f"<figcaption>{_e(caption)}</figcaption></figure>")
    parts.append('<h2 id="baseline">Against the accepted baseline</h2>')
    parts.append(markdown_html(record.comparison) if record.comparison is not None
                 else "<p>No comparison: the run was not given a baseline "
                      "(<code>hil run --baseline</code>).</p>")
    return "\n".join(parts)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f2f2f2}
pre{margin:0;white-space:pre-wrap;font-size:90%}
.verdict-failed,.v-fail,.v-failed{color:#b00;font-weight:bold}
.verdict-passed,.v-pass,.v-passed{color:#080}
.v-partial,.v-characterized,.unread{color:#a60}
img{max-width:100%;border:1px solid #ddd}
figure{margin:0 0 1.5em}
nav a{margin-right:1em}
"""


def render_page(record: RunRecord, links: Mapping[str, str] | None = None,
                reports: Mapping[str, str] | None = None, *, transcripts: bool = True) -> str:
    """The whole standalone page: no script, no request outside itself. `reports`: link
    text → where the Allure report is."""
    nav = "".join(f'<a href="{_e(href)}">{_e(text)}</a>' for text, href in (reports or {}).items())
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_e(title(record))}</title><style>{_STYLE}</style></head><body>"
        + (f"<nav>{nav}</nav>" if nav else "")
        + body(record, links, transcripts=transcripts)
        + "</body></html>\n"
    )


# ---------------------------------------------------------------------------- in Allure


def allure_result(record: RunRecord, now_ms: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The report's "Run summary" result and its attachment files (name → bytes).

    Allure shows a description's tables but strips its images and links, so the tables go
    into the description, and the whole page and each plot are attached. Its status is
    passed when every test passed, else unknown: a failed status would file the summary
    under a failure category beside the failures it lists.
    """
    files: dict[str, bytes] = {}
    attachments = []

    def attach(name: str, data: bytes, mime: str, ext: str) -> None:
        source = f"{uuid.uuid4()}-attachment.{ext}"
        files[source] = data
        attachments.append({"name": name, "source": source, "type": mime})

    attach("run page", render_page(record, transcripts=False).encode("utf-8"), "text/html",
           "html")
    for name, caption in PLOTS:
        if name in record.plots:
            attach(f"plot: {caption}", record.plots[name], "image/png", "png")
    failures = record.failures
    if failures:
        message = f"{len(failures)} test(s) failed:\n" + "\n".join(
            f"{t.nodeid}: {_first_line(t.message)}" for t in failures)
    else:
        message = f"all passed ({_totals(record)})"
    result = {
        "uuid": str(uuid.uuid4()),
        "historyId": SUMMARY_HISTORY_ID,
        "testCaseId": SUMMARY_HISTORY_ID,
        "fullName": SUMMARY_HISTORY_ID,
        "name": f"Run summary: {_totals(record)}; {record.firmware} on {record.rig}",
        "status": "unknown" if failures else "passed",
        "statusDetails": {"message": message},
        "stage": "finished",
        "descriptionHtml": body(record, images=False, transcripts=False),
        "attachments": attachments,
        "labels": [
            {"name": "parentSuite", "value": "Run summary"},
            {"name": "suite", "value": "Run summary"},
            {"name": "feature", "value": "Run summary"},
            {"name": "severity", "value": "blocker"},
            {"name": "framework", "value": "hil"},
        ],
        "start": now_ms,
        "stop": now_ms,
    }
    return result, files


def _first_line(text: str | None) -> str:
    return (text or "").partition("\n")[0]


def write_allure_result(record: RunRecord, results: Path, now_ms: int) -> None:
    """Add the "Run summary" result to an allure-results folder."""
    result, files = allure_result(record, now_ms)
    results.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (results / name).write_bytes(data)
    (results / f"{result['uuid']}-result.json").write_text(json.dumps(result),
                                                             encoding="utf-8")
