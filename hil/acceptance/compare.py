"""What changed from a baseline to a candidate firmware, and whether that is acceptable.

`compare(baseline, candidate, thresholds)` is pure: two Snapshots in, a Comparison out.

- Tests that changed outcome. A test that now fails or errors is a regression; one that now
  passes, an improvement; any other change (passed → skipped, not run) is shown, not gating.
- Open points (Q clauses) whose behaviour changed. Records are matched by clause, test and
  their order within the test (commands carry per-run topics and ports, so the text sent is
  not a key). The behaviour is the same when both follow the decision of clauses.md, or when
  both deviate with the same answer (per-run names, ports and durations aside). Any change
  is flagged: a changed open point needs someone to decide whether clients can live with it.
- Latency per command (hil.acceptance.stats), from the tests both runs have, so a run of
  more or fewer suites does not look like a shift.
- Throughput figures (MPUBEX-4): one figure per run, so a plain relative threshold.

Renderers: a terminal table, Markdown, HTML, and the report's page "Firmware acceptance vs
<baseline>": an Allure test result whose steps are the findings, the tables attached.
"""

from __future__ import annotations

import html
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from allure_commons.model2 import (
    Attachment,
    Label,
    Parameter,
    StatusDetails,
    TestResult,
    TestStepResult,
)
from allure_commons.utils import md5

from hil.acceptance.baseline import Behaviour, Snapshot, normalize
from hil.acceptance.stats import LatencyShift, Thresholds, judge

ACCEPTABLE = 0
REGRESSIONS = 1
CANNOT_COMPARE = 2

Status = Literal["passed", "failed", "broken", "skipped"]

_FAILING = frozenset({"failed", "error"})
_PASSING = frozenset({"passed", "xpassed"})


class CannotCompare(Exception):
    """The two runs cannot be compared (another model, nothing in common)."""


@dataclass(frozen=True)
class OutcomeChange:
    test: str
    before: str | None  # None: not in that run
    after: str | None
    kind: Literal["regression", "improvement", "changed"]
    clauses: tuple[str, ...]


@dataclass(frozen=True)
class BehaviourChange:
    clause: str
    test: str
    sent: str
    before: Behaviour | None  # None: not recorded in that run
    after: Behaviour | None

    @property
    def gating(self) -> bool:
        """Recorded by both and different; a record on one side only is shown, not gating."""
        return self.before is not None and self.after is not None


@dataclass(frozen=True)
class ThroughputChange:
    series: str
    figure: str
    before: float
    after: float
    verdict: Literal["regression", "improvement", "unchanged"]

    @property
    def change(self) -> float | None:
        return None if self.before == 0 else self.after / self.before - 1


@dataclass(frozen=True)
class Comparison:
    baseline: Snapshot
    candidate: Snapshot
    thresholds: Thresholds
    outcomes: tuple[OutcomeChange, ...]
    behaviours: tuple[BehaviourChange, ...]
    latency: tuple[LatencyShift, ...]
    throughput: tuple[ThroughputChange, ...]
    common_tests: int
    notes: tuple[str, ...]

    @property
    def problems(self) -> list[str]:
        """One line per finding that makes the candidate not acceptable."""
        out = [f"{c.test}: {c.before or 'not run'} -> {c.after}"
               for c in self.outcomes if c.kind == "regression"]
        out += [f"{b.clause} ({_short(b.test)}): {_behaviour(b.before)} -> {_behaviour(b.after)}"
                for b in self.behaviours if b.gating]
        out += [f"{s.command} latency: {s.reason}" for s in self.latency
                if s.verdict == "regression"]
        out += [f"throughput {t.series} {t.figure}: {t.before:g} -> {t.after:g}"
                for t in self.throughput if t.verdict == "regression"]
        return out

    @property
    def exit_code(self) -> int:
        return REGRESSIONS if self.problems else ACCEPTABLE

    @property
    def summary(self) -> str:
        """The verdict in one line."""
        counts = [
            (sum(c.kind == "regression" for c in self.outcomes), "test(s) now failing"),
            (sum(b.gating for b in self.behaviours), "open-point behaviour(s) changed"),
            (sum(s.verdict == "regression" for s in self.latency), "latency regression(s)"),
            (sum(t.verdict == "regression" for t in self.throughput),
             "throughput regression(s)"),
        ]
        found = [f"{n} {what}" for n, what in counts if n]
        if found:
            return "NOT ACCEPTABLE: " + ", ".join(found)
        better = (sum(c.kind == "improvement" for c in self.outcomes)
                  + sum(s.verdict == "improvement" for s in self.latency)
                  + sum(t.verdict == "improvement" for t in self.throughput))
        other = (sum(c.kind == "changed" for c in self.outcomes)
                 + sum(not b.gating for b in self.behaviours))
        shown = [f"{n} {what}" for n, what in ((better, "improvement(s)"),
                                               (other, "other change(s) shown")) if n]
        return "ACCEPTABLE: " + (", ".join(shown) or "no change")


# ---------------------------------------------------------------------------- comparing


def _outcome_kind(before: str | None,
                  after: str | None) -> Literal["regression", "improvement", "changed"]:
    if after in _FAILING:
        return "regression"
    if before in _FAILING and after in _PASSING:
        return "improvement"
    return "changed"


def outcome_changes(baseline: Snapshot, candidate: Snapshot) -> list[OutcomeChange]:
    out = []
    for test in sorted({*baseline.tests, *candidate.tests}):
        before, b_clauses = baseline.tests.get(test, (None, ()))
        after, a_clauses = candidate.tests.get(test, (None, ()))
        if before != after:
            out.append(OutcomeChange(test, before, after, _outcome_kind(before, after),
                                     a_clauses or b_clauses))
    return out


def same_behaviour(before: Behaviour, after: Behaviour) -> bool:
    if before.follows and after.follows:
        return True
    return before.follows == after.follows and normalize(before.got) == normalize(after.got)


def _by_test(records: Iterable[Behaviour]) -> dict[tuple[str, int], Behaviour]:
    seen: dict[str, int] = {}
    out = {}
    for r in records:
        n = seen.get(r.test, 0)
        seen[r.test] = n + 1
        out[(r.test, n)] = r
    return out


def behaviour_changes(baseline: Snapshot, candidate: Snapshot,
                      tests: set[str]) -> list[BehaviourChange]:
    """Changed records, and records one run made in a test both ran but the other did not."""
    out = []
    for clause in sorted({*baseline.characterization, *candidate.characterization}):
        before = _by_test(baseline.characterization.get(clause, ()))
        after = _by_test(candidate.characterization.get(clause, ()))
        for key in sorted({*before, *after}):
            b, a = before.get(key), after.get(key)
            if key[0] not in tests or (b and a and same_behaviour(b, a)):
                continue
            shown = a or b
            assert shown is not None
            out.append(BehaviourChange(clause, key[0], normalize(shown.sent), b, a))
    return out


def latency_shifts(baseline: Snapshot, candidate: Snapshot,
                   thresholds: Thresholds) -> list[LatencyShift]:
    """Per command, the samples of the tests that both runs timed it in, judged."""
    order = {"regression": 0, "improvement": 1, "unchanged": 2, "insufficient data": 3}
    out = []
    for command in sorted(set(baseline.latency) & set(candidate.latency)):
        b_tests, a_tests = baseline.latency[command], candidate.latency[command]
        common = sorted(set(b_tests) & set(a_tests))
        if not common:
            continue
        before = [x for t in common for x in b_tests[t]]
        after = [x for t in common for x in a_tests[t]]
        out.append(judge(command, before, after, thresholds))
    return sorted(out, key=lambda s: (order[s.verdict], s.command))


#: Whether a throughput figure is better when higher (True) or lower (False).
HIGHER_IS_BETTER = {
    "messages_per_s": True,
    "payload_bytes_per_s": True,
    "line_fraction": True,
    "publish_latency_p50_ms": False,
    "end_to_end_latency_p50_ms": False,
}


def throughput_changes(baseline: Snapshot, candidate: Snapshot,
                       thresholds: Thresholds) -> list[ThroughputChange]:
    out = []
    for series in sorted(set(baseline.throughput) & set(candidate.throughput)):
        b, a = baseline.throughput[series], candidate.throughput[series]
        for figure in [f for f in HIGHER_IS_BETTER if f in b and f in a]:
            before, after = b[figure], a[figure]
            better = HIGHER_IS_BETTER[figure]
            worse_by = (before - after if better else after - before) / before if before else 0
            verdict: Literal["regression", "improvement", "unchanged"] = "unchanged"
            if worse_by > thresholds.throughput_drop:
                verdict = "regression"
            elif -worse_by > thresholds.throughput_drop:
                verdict = "improvement"
            out.append(ThroughputChange(series, figure, before, after, verdict))
    return out


def compare(baseline: Snapshot, candidate: Snapshot, thresholds: Thresholds) -> Comparison:
    """Everything that changed from `baseline` to `candidate`; CannotCompare when the two
    are not of the same model or have no test in common."""
    if "unknown" not in (baseline.model, candidate.model) and baseline.model != candidate.model:
        raise CannotCompare(f"the baseline is a {baseline.model}, the candidate a "
                            f"{candidate.model}: compare firmwares of one model")
    common = set(baseline.tests) & set(candidate.tests)
    if not common:
        raise CannotCompare("the two runs have no test in common (did the candidate run "
                            "any test?)")
    notes = [*baseline.notes, *candidate.notes]
    b_dut, a_dut = baseline.run.get("dut"), candidate.run.get("dut")
    if b_dut != a_dut:
        notes.append(f"the baseline ran on a {b_dut}, the candidate on a {a_dut}: "
                     "latencies are not comparable across benches")
    if len(common) < len(baseline.tests):
        notes.append(f"the candidate ran {len(common)} of the baseline's "
                     f"{len(baseline.tests)} tests; only those are compared")
    return Comparison(
        baseline=baseline,
        candidate=candidate,
        thresholds=thresholds,
        outcomes=tuple(outcome_changes(baseline, candidate)),
        behaviours=tuple(behaviour_changes(baseline, candidate, common)),
        latency=tuple(latency_shifts(baseline, candidate, thresholds)),
        throughput=tuple(throughput_changes(baseline, candidate, thresholds)),
        common_tests=len(common),
        notes=tuple(notes),
    )


# ---------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Table:
    """One section of the report; `statuses` (one per row: failed, passed or skipped) and
    `name_columns` (the cells that name a row) make each row an Allure step."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    statuses: tuple[Status, ...]
    name_columns: tuple[int, ...]
    empty: str = "none"


def _short(test: str) -> str:
    return test.split("::", 1)[-1] if "::" in test else test


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _behaviour(b: Behaviour | None) -> str:
    if b is None:
        return "(not recorded)"
    return f"{normalize(b.got)} ({'as decided' if b.follows else 'deviates'})"


def _shift(s: LatencyShift) -> str:
    if s.p50_shift is None:
        return "-"
    interval = "" if s.p50_interval is None else (
        f" [{s.p50_interval[0]:+.2f}, {s.p50_interval[1]:+.2f}]")
    return f"{s.p50_shift:+.2f}{interval}"


def _p95(s: LatencyShift) -> str:
    text = f"{_ms(s.p95_before)} -> {_ms(s.p95_after)}"
    if s.p95_interval is not None:
        text += f" [{s.p95_interval[0]:+.1f}, {s.p95_interval[1]:+.1f}]"
    return text


def _firmware_line(s: Snapshot) -> str:
    parts = [s.firmware.get("revision") or s.firmware.get("CGMR") or "unknown firmware"]
    if s.run.get("dut") == "simulator" and s.run.get("profile"):
        parts.append(f"simulator profile {s.run['profile']}")
    elif s.run.get("dut"):
        parts.append(str(s.run["dut"]))
    parts.append(f"{len(s.tests)} tests")
    if s.accepted:
        parts.append(f"accepted {s.accepted.get('at', '?')} by {s.accepted.get('by', '?')}")
    return ", ".join(parts)


def heading(c: Comparison) -> tuple[str, list[tuple[str, str]]]:
    """The title and the key facts (name, value) above the tables."""
    t = c.thresholds
    facts = [
        ("baseline", f"{_firmware_line(c.baseline)} — {c.baseline.source}"),
        ("candidate", f"{_firmware_line(c.candidate)} — {c.candidate.source}"),
        ("thresholds", f"latency regression: Mann–Whitney p < {t.alpha:g} and p50 shift >= "
                       f"{t.min_shift_ms:g} ms and x{t.min_shift_ratio:g} (n >= "
                       f"{t.min_samples}); throughput worse by > {t.throughput_drop:.0%}"),
        ("compared", f"{c.common_tests} tests in both runs"),
        ("verdict", f"{c.summary} (exit {c.exit_code})"),
    ]
    facts += [("note", n) for n in c.notes]
    return f"Firmware acceptance: {c.candidate.label} vs {c.baseline.label}", facts


_OUTCOME_STATUS: dict[str, Status] = {"regression": "failed", "improvement": "passed",
                                       "changed": "skipped"}
_LATENCY_STATUS: dict[str, Status] = {"regression": "failed", "improvement": "passed",
                                       "unchanged": "passed", "insufficient data": "skipped"}


def tables(c: Comparison) -> list[Table]:
    outcome_rows = tuple(
        (_short(o.test), o.before or "not run", o.after or "not run", o.kind,
         ", ".join(o.clauses)) for o in c.outcomes)
    behaviour_rows = tuple(
        (b.clause, _short(b.test), b.sent, _behaviour(b.before), _behaviour(b.after),
         "yes" if b.gating else "no") for b in c.behaviours)
    confidence = f"{c.thresholds.confidence:.0%}"
    latency_rows = tuple(
        (s.command, f"{s.n_before}/{s.n_after}", _ms(s.p50_before), _ms(s.p50_after), _shift(s),
         "-" if s.ratio is None else f"x{s.ratio:.2f}", _p95(s),
         "-" if s.p_value is None else f"{s.p_value:.2g}", s.verdict) for s in c.latency)
    throughput_rows = tuple(
        (t.series, t.figure, f"{t.before:g}", f"{t.after:g}",
         "-" if t.change is None else f"{t.change:+.1%}", t.verdict) for t in c.throughput)
    return [
        Table("Tests that changed outcome",
              ("test", "baseline", "candidate", "change", "clauses"), outcome_rows,
              tuple(_OUTCOME_STATUS[o.kind] for o in c.outcomes), (0, 3)),
        Table("Open points (Q clauses) that changed",
              ("clause", "test", "sent", "baseline", "candidate", "gating"), behaviour_rows,
              tuple("failed" if b.gating else "skipped" for b in c.behaviours), (0, 1, 4)),
        Table(f"Latency per command (ms, sent -> done; shift of p50 with {confidence} "
              "bootstrap interval; Mann–Whitney U)",
              ("command", "n base/cand", "p50 base", "p50 cand", "p50 shift [CI]", "ratio",
               f"p95 base -> cand [{confidence} CI of shift]", "p", "verdict"),
              latency_rows, tuple(_LATENCY_STATUS[s.verdict] for s in c.latency), (0, 4, 8),
              empty="no command timed in both runs"),
        Table("Throughput (MPUBEX-4)",
              ("series", "figure", "baseline", "candidate", "change", "verdict"),
              throughput_rows,
              tuple("failed" if t.verdict == "regression" else "passed" for t in c.throughput),
              (0, 1, 4, 5), empty="no throughput figures in both runs"),
    ]


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_text(c: Comparison, width: int = 48) -> str:
    """The comparison as aligned plain-text tables for a terminal; long cells clipped."""
    title, facts = heading(c)
    lines = [title, "=" * min(len(title), 100)]
    lines += [f"{name:<11}{value}" for name, value in facts]
    for table in tables(c):
        lines += ["", table.title, "-" * min(len(table.title), 100)]
        if not table.rows:
            lines.append(f"  {table.empty}")
            continue
        rows = [tuple(_clip(cell, width) for cell in row) for row in table.rows]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(table.headers)]
        for row in (table.headers, *rows):
            lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths,
                                                                            strict=True)).rstrip())
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_markdown(c: Comparison) -> str:
    title, facts = heading(c)
    lines = [f"# {_md(title)}", ""]
    lines += [f"- **{name}**: {_md(value)}" for name, value in facts]
    for table in tables(c):
        lines += ["", f"## {_md(table.title)}", ""]
        if not table.rows:
            lines.append(f"_{table.empty}_")
            continue
        lines.append("| " + " | ".join(table.headers) + " |")
        lines.append("|" + "---|" * len(table.headers))
        lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


_CELL_COLOUR = {"regression": "#c0392b", "improvement": "#1e8449", "yes": "#c0392b"}


def render_html(c: Comparison) -> str:
    """The comparison as a self-contained HTML fragment with styled tables."""
    e = html.escape
    title, facts = heading(c)
    colour = "#c0392b" if c.exit_code else "#1e8449"
    out = [f"<h2>{e(title)}</h2>",
           f"<p><b style=\"color:{colour}\">{e(c.summary)}</b></p>", "<ul>"]
    out += [f"<li><b>{e(name)}</b>: {e(value)}</li>" for name, value in facts]
    out.append("</ul>")
    style = "border-collapse:collapse;font-size:12px"
    cell = "border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top"
    for table in tables(c):
        out.append(f"<h3><b>{e(table.title)}</b></h3>")
        if not table.rows:
            out.append(f"<p><i>{e(table.empty)}</i></p>")
            continue
        # border and cellpadding too: the report's sanitizer may drop style attributes
        out.append(f"<table border=\"1\" cellpadding=\"3\" cellspacing=\"0\" "
                   f"style=\"{style}\"><tr>"
                   + "".join(f"<th style=\"{cell}\">{e(h)}</th>" for h in table.headers)
                   + "</tr>")
        for row in table.rows:
            tds = []
            for value in row:
                mark = _CELL_COLOUR.get(value)
                shown = f"<b style=\"color:{mark}\">{e(value)}</b>" if mark else e(value)
                tds.append(f"<td style=\"{cell}\">{shown}</td>")
            out.append("<tr>" + "".join(tds) + "</tr>")
        out.append("</table>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- the Allure page


def summary_html(c: Comparison) -> str:
    """The page's description: the verdict and the facts, one per line (the report shows
    descriptions unstyled, so the tables go into steps and the compare.html attachment)."""
    e = html.escape
    title, facts = heading(c)
    return "\n".join([f"<p><b>{e(title)}</b></p>",
                      *(f"<p><b>{e(name)}</b>: {e(value)}</p>" for name, value in facts)])


def allure_steps(c: Comparison, now_ms: int) -> list[TestStepResult]:
    """One step per table, one sub-step per row: failed for what counts against the
    candidate, passed for what is fine, skipped for what is only shown."""
    steps = []
    for table in tables(c):
        rows = [
            TestStepResult(
                name=" · ".join(_clip(row[i], 80) for i in table.name_columns),
                status=status, stage="finished", start=now_ms, stop=now_ms,
                parameters=[Parameter(name=h, value=v) for h, v in zip(table.headers, row,
                                                                       strict=True)])
            for row, status in zip(table.rows, table.statuses, strict=True)
        ]
        status: Status = "failed" if "failed" in table.statuses else "passed"
        name = table.title if rows else f"{table.title}: {table.empty}"
        steps.append(TestStepResult(name=name, status=status, stage="finished", steps=rows,
                                    start=now_ms, stop=now_ms))
    return steps


@dataclass(frozen=True)
class AllurePage:
    """One Allure test result and the attachments it refers to (file name → bytes)."""

    result: TestResult
    files: dict[str, bytes]


def allure_page(baseline_label: str, status: Status, message: str, description_html: str,
                attachments: Sequence[tuple[str, str, str, str]],
                steps: Sequence[TestStepResult] = (), now_ms: int | None = None) -> AllurePage:
    """The report's "Firmware acceptance vs <baseline>" test case: passed when acceptable,
    failed on regressions, broken when the runs could not be compared. `attachments` are
    (name, text, MIME type, file extension)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    files = {}
    attached = []
    for title, text, mime, ext in attachments:
        file_name = f"{uuid.uuid4()}-attachment.{ext}"
        files[file_name] = text.encode("utf-8")
        attached.append(Attachment(name=title, source=file_name, type=mime))
    result = TestResult(
        uuid=str(uuid.uuid4()),
        historyId=md5("hil.acceptance", "firmware acceptance"),
        testCaseId=md5("hil.acceptance", "firmware acceptance"),
        fullName="hil.acceptance#firmware_acceptance",
        name=f"Firmware acceptance vs {baseline_label}",
        status=status,
        stage="finished",
        statusDetails=StatusDetails(message=message),
        descriptionHtml=description_html,
        steps=list(steps),
        attachments=attached,
        labels=[Label(name="suite", value="Firmware acceptance"),
                Label(name="feature", value="Firmware acceptance"),
                Label(name="framework", value="hil")],
        start=now_ms,
        stop=now_ms,
    )
    return AllurePage(result, files)
