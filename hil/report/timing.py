"""Response timing: one sample per AT command, aggregated per command over a run.

A sample is what the channel measured for one command (`hil.at.exchange.Timing`): from
the moment the command was written (`sent`) to the first byte after it, to the `>` prompt,
to the final result code and to the result URC, all `time.monotonic_ns()` stamped by the
reading thread as the bytes arrived. `total` is sent → the last awaited part (final code, and
the result URC for commands that have one), the figure budgets are checked against.

Samples are aggregated per command name (`command_key`: `MPUBEX`, `CGATT?`, `ATE`...) into
n, min, p50, p95, p99, max and mean, written as timings.csv and timings.json, and drawn as
PNG plots (matplotlib, Agg backend: no display needed). See docs/timing.md.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.report import openmetrics
from hil.report.records import (
    METRICS,
    TIMINGS,
    CommandFigures,
    OverBudget,
    RecordError,
    Sample,
    Timings,
    read_timings,
    write_record,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hil.at.exchange import Response
    from hil.at.transcript import Transcript

#: start bit + 8 data bits + stop bit: what one byte costs on the serial line.
BITS_PER_BYTE = 10

_EXTENDED = re.compile(r"\+\s*([A-Z0-9]+)\s*(=\?|\?|=)?")
_BASIC = re.compile(r"&?[A-Z]")


def command_key(text: str) -> str:
    """The name a command is timed and budgeted under.

    `AT+MPUBEX=t,0,0,5` → `MPUBEX`; `AT+ MIPCLOSE` → `MIPCLOSE`; `AT+CGATT?` → `CGATT?`
    (a read differs from a set); `AT+CGATT=?` → `CGATT=?`; `ATE1` → `ATE`; `ATI` → `ATI`;
    `AT` → `AT`; text that is no AT command → `(raw)`.
    """
    stripped = text.strip()
    if stripped[:2].upper() != "AT":
        return "(raw)"
    rest = stripped[2:].lstrip().upper()
    if not rest:
        return "AT"
    if rest.startswith("+"):
        m = _EXTENDED.match(rest)
        if m is None:
            return "(raw)"
        suffix = m.group(2) if m.group(2) in ("?", "=?") else ""
        return m.group(1) + suffix
    m = _BASIC.match(rest)
    return "AT" + m.group(0) if m else "(raw)"


def _mpubex_args(text: str) -> tuple[int | None, int | None]:
    """(qos, length) from `AT+MPUBEX=<topic>,<qos>,<retain>,<len>`, when they parse."""
    fields = text.rsplit(",", 3)
    if len(fields) != 4:
        return None, None
    try:
        return int(fields[1]), int(fields[3])
    except ValueError:
        return None, None


def sample_from(
    response: Response,
    *,
    test: str = "",
    phase: str = "",
    start_ns: int = 0,
    budget_ms: float | None = None,
    shown: str | None = None,
) -> Sample:
    """A Sample from a completed Response. `shown` is the command as it may be shown
    (secrets masked, cut); default: the command as sent, cut to 80 characters."""
    t = response.timing
    key = command_key(response.command)
    qos = None
    data_bytes = 0
    if key == "MPUBEX":
        qos, length = _mpubex_args(response.command)
        if response.data_sent and length is not None:
            data_bytes = length
    total = t.total_ms
    return Sample(
        command=key,
        test=test,
        phase=phase,
        t_s=(t.sent_ns - start_ns) / 1e9,
        first_byte_ms=t.first_byte_ms,
        prompt_ms=t.prompt_ms,
        final_ms=t.final_ms,
        result_ms=t.result_ms,
        total_ms=total,
        final=None if response.final is None else response.final.text,
        result=None if response.result is None else response.result.text,
        data_bytes=data_bytes,
        qos=qos,
        budget_ms=budget_ms,
        over_budget=budget_ms is not None and total is not None and total > budget_ms,
        text=(shown if shown is not None else response.command)[:80],
    )


# ---------------------------------------------------------------------------- statistics


def percentile(ordered: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) of sorted values, interpolated linearly between ranks
    (numpy's default, Excel's PERCENTILE.INC)."""
    if not ordered:
        raise ValueError("percentile of no values")
    rank = (len(ordered) - 1) * p / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


@dataclass(frozen=True, slots=True)
class Stats:
    n: int
    min: float
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    def as_dict(self, digits: int = 3) -> dict[str, float | int]:
        return {k: (v if k == "n" else round(v, digits)) for k, v in asdict(self).items()}


def stats(values: Iterable[float]) -> Stats | None:
    """n, min, p50, p95, p99, max and mean; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return Stats(
        n=len(ordered),
        min=ordered[0],
        p50=percentile(ordered, 50),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        max=ordered[-1],
        mean=math.fsum(ordered) / len(ordered),
    )


def aggregate(samples: Iterable[Sample]) -> dict[str, dict[str, Stats]]:
    """command → metric → Stats, commands and metrics in a stable order."""
    by_command: dict[str, dict[str, list[float]]] = {}
    for sample in samples:
        figures = by_command.setdefault(sample.command, {m: [] for m in METRICS})
        for metric, value in sample.figures().items():
            figures[metric].append(value)
    out: dict[str, dict[str, Stats]] = {}
    for command in sorted(by_command):
        per_metric = {}
        for metric in METRICS:
            s = stats(by_command[command][metric])
            if s is not None:
                per_metric[metric] = s
        out[command] = per_metric
    return out


# ---------------------------------------------------------------------------- the serial line


def line_bytes(transcript: Transcript, start_ns: int, end_ns: int) -> tuple[int, int]:
    """(to the module, from the module): bytes of the chunks stamped within [start, end]."""
    from hil.at.transcript import RX, TX

    def within(direction: str) -> int:
        return sum(len(d) for t, d in transcript.chunks(direction) if start_ns <= t <= end_ns)

    return within(TX), within(RX)


def line_seconds(nbytes: int, baud: int) -> float:
    """How long `nbytes` take on the line at `baud` (10 bits a byte)."""
    return nbytes * BITS_PER_BYTE / baud


def echo_bytes(responses: Iterable[Response]) -> int:
    """Bytes of the commands' echoes (with their CR).

    The line is full duplex and the module echoes each byte as it arrives: the echo crosses
    while the command is still being sent, so it adds no time to an exchange and is left out
    of what the line had to carry in sequence.
    """
    return sum(len(r.echo.raw) + 1 for r in responses if r.echo is not None)


def line_rate_fraction(nbytes: int, baud: int, elapsed_s: float) -> float | None:
    """The share of the line's limit reached: the line time of the `nbytes` that had to
    cross one after the other (both directions, echoes left out) over the time they took.
    1.0: the line never idled."""
    if elapsed_s <= 0:
        return None
    return line_seconds(nbytes, baud) / elapsed_s


# ---------------------------------------------------------------------------- writers


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


BudgetOf = Callable[[str], float | None]


def _budget_table(samples: Sequence[Sample], budget_of: BudgetOf | None) -> dict[str, float | None]:
    """The budget shown per command: the run's (`budget_of`), else the one most of its
    samples were held to (a test may have had its own)."""
    out: dict[str, float | None] = {}
    for command in {s.command for s in samples}:
        if budget_of is not None:
            out[command] = budget_of(command)
            continue
        seen = [s.budget_ms for s in samples if s.command == command and s.budget_ms]
        out[command] = max(set(seen), key=seen.count) if seen else None
    return out


def write_csv(path: Path, samples: Sequence[Sample], budget_of: BudgetOf | None = None) -> Path:
    """One row per command and metric: n, min, p50, p95, p99, max, mean (ms); on the total
    row the run's budget of the command and how many of its responses went over the
    budget they were held to."""
    budgets = _budget_table(samples, budget_of)
    over: dict[str, int] = {}
    for s in samples:
        over[s.command] = over.get(s.command, 0) + int(s.over_budget)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["command", "metric", "n", "min_ms", "p50_ms", "p95_ms", "p99_ms",
                    "max_ms", "mean_ms", "budget_ms", "over_budget"])
        for command, metrics in aggregate(samples).items():
            for metric, st in metrics.items():
                total_row = metric == "total_ms"
                budget = budgets.get(command) if total_row else None
                w.writerow([
                    command, metric.removesuffix("_ms"), st.n,
                    *(f"{v:.3f}" for v in (st.min, st.p50, st.p95, st.p99, st.max, st.mean)),
                    "" if budget is None else f"{budget:g}",
                    over.get(command, 0) if total_row else "",
                ])
    return path


def timings_record(samples: Sequence[Sample], meta: Mapping[str, Any],
                   budget_of: BudgetOf | None = None) -> Timings:
    """What timings.json holds: meta, per-command aggregates (with the run's budget),
    responses over budget and every sample (with the budget it was held to)."""
    budgets = _budget_table(samples, budget_of)
    known = {k: meta[k] for k in ("generated", "dut", "rig", "firmware", "latency_model",
                                  "baud", "tests") if k in meta}
    return Timings(
        samples=tuple(samples),
        commands={command: CommandFigures(
                      {metric.removesuffix("_ms"): st.as_dict() for metric, st in metrics.items()},
                      budgets.get(command))
                  for command, metrics in aggregate(samples).items()},
        over_budget=tuple(OverBudget(command=s.command, test=s.test, text=s.text,
                                     total_ms=_round(s.total_ms), budget_ms=s.budget_ms)
                          for s in samples if s.over_budget),
        extra={**{k: v for k, v in meta.items() if k not in known},
               "units": "ms from the moment the command was written; t_s: s from the first "
                        "sample"},
        **known,
    )


def timings_document(samples: Sequence[Sample], meta: Mapping[str, Any],
                     budget_of: BudgetOf | None = None) -> dict[str, Any]:
    """timings.json's document (`timings_record` as JSON)."""
    return timings_record(samples, meta, budget_of).to_json()


def write_json(path: Path, samples: Sequence[Sample], meta: Mapping[str, Any],
               budget_of: BudgetOf | None = None) -> Path:
    return write_record(path, timings_record(samples, meta, budget_of), indent=1)


def write_openmetrics(path: Path, samples: Sequence[Sample], meta: Mapping[str, Any]) -> Path:
    """The run's figures per command in the OpenMetrics text format (hil.report.openmetrics)."""
    commands = {
        command: openmetrics.CommandFigures(
            stats=metrics,
            responses=sum(1 for s in samples if s.command == command),
            over_budget=sum(1 for s in samples if s.command == command and s.over_budget),
        )
        for command, metrics in aggregate(samples).items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(openmetrics.render(commands, meta))
    return path


# ---------------------------------------------------------------------------- plots


def _figure(width: float, height: float) -> Figure:
    """A matplotlib Figure on the Agg canvas: PNG without a display, no pyplot state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


#: Payload sizes MPUBEX latency is split by (upper bounds, bytes): the data crosses the
#: serial line before the module answers, so a 1360-byte publish is slower by nature.
PAYLOAD_BINS = (64, 256, 1024)
#: The suite whose MPUBEX samples are throughput (back-to-back full-size publishes).
THROUGHPUT_SUITE = "test_throughput.py"
#: Runs shown in a trend plot, at most (the newest).
TREND_RUNS = 30


def refused(sample: Sample) -> bool:
    """A command the module refused (ERROR, +CME ERROR, or a FAILURE result): mostly the
    suites' deliberately invalid commands, whose times say nothing of a working command."""
    final = sample.final or ""
    return "ERROR" in final or "FAILURE" in (sample.result or "")


def payload_bin(nbytes: int) -> str:
    lower = 1
    for upper in PAYLOAD_BINS:
        if nbytes <= upper:
            return f"{lower}-{upper} B"
        lower = upper + 1
    return f">{PAYLOAD_BINS[-1]} B"


def latency_group(sample: Sample) -> str:
    """What a sample is drawn under: its command, MPUBEX by payload size."""
    if sample.command == "MPUBEX" and sample.data_bytes:
        return f"MPUBEX {payload_bin(sample.data_bytes)}"
    return sample.command


def plot_title(meta: Mapping[str, Any]) -> str:
    """`L506_V3.2_MQTT_B20171031 · rig simulator · 2025-01-31T02:00:00+00:00`."""
    return " · ".join(str(x) for x in (meta.get("firmware", "firmware ?"),
                                       f"rig {meta.get('rig', '?')}",
                                       meta.get("generated", "")) if x)


def latency_groups(samples: Iterable[Sample]) -> dict[str, list[Sample]]:
    """Samples by latency group, in the order of commands, then of payload size."""
    out: dict[str, list[Sample]] = {}
    for s in samples:
        if s.total_ms is not None:
            out.setdefault(latency_group(s), []).append(s)
    return {k: out[k] for k in sorted(out, key=lambda g: (out[g][0].command,
                                                          min(s.data_bytes for s in out[g])))}


def _boxes(samples: Sequence[Sample], path: Path, what: str, meta: Mapping[str, Any],
           budget_of: BudgetOf | None, *, budgets_shown: bool = True) -> Path | None:
    """Box plot per group of sent → done (total) on a log scale, each response a dot, n per
    group, the budget as a red tick. None when there is nothing to draw."""
    groups = latency_groups(samples)
    if not groups:
        return None
    names = list(groups)
    values = {g: [s.total_ms for s in groups[g] if s.total_ms is not None] for g in names}
    budgets = _budget_table(samples, budget_of) if budgets_shown else {}
    fig = _figure(10, max(2.8, 0.45 * len(names) + 1.8))
    ax = fig.add_subplot()
    positions = list(range(1, len(names) + 1))
    ax.boxplot([values[g] for g in names], positions=positions, orientation="horizontal",
               widths=0.6, showfliers=False, whis=(1, 99))
    for y, g in zip(positions, names, strict=True):
        xs = values[g]
        jitter = [y + 0.18 * (((i * 7919) % 97) / 97 - 0.5) for i in range(len(xs))]
        ax.scatter(xs, jitter, s=6, alpha=0.35, color="tab:blue", linewidths=0)
        budget = budgets.get(groups[g][0].command)
        if budget:
            ax.plot([budget] * 2, [y - 0.35, y + 0.35], color="tab:red", linewidth=2)
    ax.set_yticks(positions, [f"{g} (n={len(values[g])})" for g in names])
    ax.invert_yaxis()  # first command at the top
    ax.set_xscale("log")
    ax.set_xlabel("ms from command sent to final code / result URC (log scale)")
    ax.set_title(f"{what} (box: p50 and quartiles, whiskers p1-p99"
                 + ("; red: budget)" if budgets_shown else ")"), fontsize=10)
    fig.suptitle(plot_title(meta), fontsize=9)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_latency(samples: Sequence[Sample], path: Path, budget_of: BudgetOf | None = None,
                 meta: Mapping[str, Any] | None = None) -> Path | None:
    """Response time per command of the commands the module took (refused ones apart),
    MPUBEX split by payload size. None when there is nothing to draw."""
    taken = [s for s in samples if not refused(s)]
    return _boxes(taken, path, "Response time per command", meta or {}, budget_of)


def plot_refused(samples: Sequence[Sample], path: Path,
                 meta: Mapping[str, Any] | None = None) -> Path | None:
    """Response time of the refused commands (ERROR / FAILURE), per command; no budgets:
    they bound working commands."""
    return _boxes([s for s in samples if refused(s)], path,
                  "Refused commands (ERROR or FAILURE)", meta or {}, None, budgets_shown=False)


def _bytes_per_s(sample: Sample) -> float:
    """An MPUBEX's payload over its whole time (the plot keeps only timed ones)."""
    assert sample.total_ms
    return sample.data_bytes / (sample.total_ms / 1000)


def plot_mpubex_throughput(samples: Sequence[Sample], path: Path, baud: int,
                           meta: Mapping[str, Any] | None = None) -> Path | None:
    """Each MPUBEX's payload bytes/s (its data over its sent → done time) in the throughput
    suite, by QoS, against the serial line's own byte rate. None when the run did not run
    that suite (a functional publish of 10 bytes is no throughput figure)."""
    points = [s for s in samples if s.command == "MPUBEX" and s.data_bytes and s.total_ms
              and f"{THROUGHPUT_SUITE}::" in s.test and not refused(s)]
    if not points:
        return None
    fig = _figure(10, 4.5)
    ax = fig.add_subplot()
    for qos in sorted({s.qos for s in points}, key=lambda q: -1 if q is None else q):
        mine = [s for s in points if s.qos == qos]
        ax.scatter([s.t_s for s in mine], [_bytes_per_s(s) for s in mine],
                   s=12, label=f"QoS {qos}" if qos is not None else "QoS ?")
    line_rate = baud / BITS_PER_BYTE
    ax.axhline(line_rate, color="tab:red", linestyle="--",
               label=f"serial line: {line_rate:.0f} B/s ({baud} baud, 10 bits/byte)")
    ax.set_ylim(bottom=0, top=line_rate * 1.15)
    ax.set_xlabel("s into the run")
    ax.set_ylabel("payload bytes/s per MPUBEX")
    sizes = sorted({s.data_bytes for s in points})
    ax.set_title(f"MPUBEX throughput, {THROUGHPUT_SUITE} ({'/'.join(map(str, sizes))}-byte "
                 "messages; data length / time from command to +MPUBEX result)", fontsize=10)
    fig.suptitle(plot_title(meta or {}), fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


# ---------------------------------------------------------------------------- trends


@dataclass(frozen=True)
class RunPoint:
    """One run in a trend: its name, and p95 of total and the budget per command."""

    run: str
    p95: dict[str, float]
    budgets: dict[str, float | None]


def run_point(run: str, timings: Timings) -> RunPoint:
    """A RunPoint from a run's timings.json."""
    return RunPoint(
        run,
        {c: f.total["p95"] for c, f in timings.commands.items() if f.total and "p95" in f.total},
        {c: f.budget_ms for c, f in timings.commands.items()},
    )


def run_history(reports: Path, current: Path, rig: str | None,
                limit: int = TREND_RUNS) -> list[RunPoint]:
    """The earlier runs under `reports` (folders beside `current` with a timings.json of the
    same rig), oldest first, at most `limit - 1`: the current run comes after them. A run
    whose timings.json cannot be read is left out of the trend."""
    if not reports.is_dir():
        return []
    points = []
    for folder in sorted(p for p in reports.iterdir()
                         if p.is_dir() and not p.is_symlink() and p.name != current.name):
        try:
            timings = read_timings(folder / TIMINGS)
        except RecordError:
            continue
        if rig is not None and timings.rig != rig:
            continue
        points.append(run_point(folder.name, timings))
    return points[-(limit - 1):] if limit > 1 else []


def plot_trend(points: Sequence[RunPoint], path: Path,
               meta: Mapping[str, Any] | None = None) -> Path | None:
    """p95 per command over the runs, one small panel per command with its budget as a red
    line, so a slow creep shows before a budget breaks. None with fewer than two runs."""
    if len(points) < 2:
        return None
    commands = sorted({c for p in points for c in p.p95
                       if sum(c in q.p95 for q in points) >= 2})
    if not commands:
        return None
    cols = 4
    rows = math.ceil(len(commands) / cols)
    fig = _figure(12, 2.2 * rows + 1)
    xs = list(range(len(points)))
    for i, command in enumerate(commands):
        ax = fig.add_subplot(rows, cols, i + 1)
        ys = [p.p95.get(command, math.nan) for p in points]
        ax.plot(xs, ys, marker="o", markersize=3)
        top = max(y for y in ys if not math.isnan(y)) * 1.3 or 1.0
        budget = points[-1].budgets.get(command)
        name = command
        if budget and budget <= top:
            ax.axhline(budget, color="tab:red", linewidth=1)
        elif budget and not math.isnan(ys[-1]):
            name += f" (p95 at {100 * ys[-1] / budget:.0f}% of {budget:g} ms)"
        ax.set_ylim(bottom=0, top=top)
        ax.set_title(name, fontsize=8)
        ax.set_xticks([xs[0], xs[-1]], [_short(points[0].run), _short(points[-1].run)],
                      fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"p95 response time per command (ms) over {len(points)} runs; red: the "
                 "budget when in range, else p95 as a share of it"
                 f"\n{plot_title(meta or {})}", fontsize=10)
    return _save(fig, path)


# ---------------------------------------------------------------------------- a run's record


class TimingRecorder:
    """The samples of one run, and the files made from them."""

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.samples: list[Sample] = []

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    def write(self, folder: Path, meta: Mapping[str, Any], *, baud: int,
              budget_of: BudgetOf | None = None) -> dict[str, Path]:
        """timings.csv, timings.json, metrics.txt (OpenMetrics) and plots/*.png in `folder`;
        returns them by name."""
        out = {
            "timings.csv": write_csv(folder / "timings.csv", self.samples, budget_of),
            TIMINGS: write_json(folder / TIMINGS, self.samples,
                                       {**meta, "baud": baud}, budget_of),
            "metrics.txt": write_openmetrics(folder / "metrics.txt", self.samples, meta),
        }
        meta = {**meta, "baud": baud}
        points = [*run_history(folder.parent, folder, meta.get("rig")),
                  RunPoint(folder.name, *_current(self.samples, budget_of))]
        plots = folder / "plots"
        for name, made in (
            ("latency.png", plot_latency(self.samples, plots / "latency.png", budget_of, meta)),
            ("refused.png", plot_refused(self.samples, plots / "refused.png", meta)),
            ("throughput.png", plot_mpubex_throughput(self.samples, plots / "throughput.png",
                                                      baud, meta)),
            ("trend.png", plot_trend(points, plots / "trend.png", meta)),
        ):
            if made is not None:
                out[name] = made
        return out


def _short(run: str) -> str:
    """`2025-01-31T02-00-00Z` → `01-31 02:00`; other names as they are, cut."""
    m = re.fullmatch(r"\d{4}-(\d\d-\d\d)T(\d\d)-(\d\d)-\d\dZ.*", run)
    return f"{m.group(1)} {m.group(2)}:{m.group(3)}" if m else run[:12]


def _current(samples: Sequence[Sample],
             budget_of: BudgetOf | None) -> tuple[dict[str, float], dict[str, float | None]]:
    """p95 of total and the budget per command of this run, for its trend point."""
    p95 = {c: m["total_ms"].p95 for c, m in aggregate(samples).items() if "total_ms" in m}
    return p95, _budget_table(samples, budget_of)
