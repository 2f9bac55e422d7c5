"""A run's response times in the OpenMetrics text format, for a lab's Prometheus/Grafana.

One series per command, figure and quantile, labelled with the firmware, the rig and the
DUT kind, so a dashboard can chart p95 of MPUB per firmware across nightlies without reading
timings.json. The text is made by prometheus_client's own OpenMetrics exposition (not
formatted by hand): what a scraper or `promtool check metrics` reads is what it expects.

The file (`metrics.txt` in the run's folder) is a snapshot of one run, in the shape of
pytest-embedded's `--metric-path` output: a lab pushes it (node_exporter's textfile
collector, or a Pushgateway) rather than scraping the harness.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest

if TYPE_CHECKING:
    from hil.report.timing import Stats

#: The quantiles written for every command and figure (Stats field → quantile label).
QUANTILES = (("min", "0"), ("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99"), ("max", "1"))
#: Labels every series carries, from the run's meta (missing ones are written as "unknown").
RUN_LABELS = ("firmware", "rig", "dut")


@dataclass(frozen=True)
class CommandFigures:
    """What one command contributes: its figures' Stats and how many responses were timed."""

    stats: Mapping[str, Stats]
    responses: int
    over_budget: int


class _RunTimings:
    """A prometheus_client collector over one run's aggregates (read at exposition)."""

    def __init__(self, commands: Mapping[str, CommandFigures], labels: Mapping[str, str]) -> None:
        self._commands = commands
        self._labels = labels

    def collect(self) -> Iterator[Metric]:
        run_names = list(self._labels)
        run_values = list(self._labels.values())
        times = GaugeMetricFamily(
            "l506_response_ms",
            "AT response time in ms from the command written to the figure's event",
            labels=[*run_names, "command", "figure", "quantile"],
        )
        counts = CounterMetricFamily(
            "l506_responses", "AT responses timed in the run",
            labels=[*run_names, "command"],
        )
        over = CounterMetricFamily(
            "l506_responses_over_budget", "AT responses slower than the rig's budget",
            labels=[*run_names, "command"],
        )
        for command, figures in self._commands.items():
            for metric, st in figures.stats.items():
                figure = metric.removesuffix("_ms")
                for field, quantile in QUANTILES:
                    times.add_metric([*run_values, command, figure, quantile],
                                     getattr(st, field))
            counts.add_metric([*run_values, command], figures.responses)
            over.add_metric([*run_values, command], figures.over_budget)
        yield times
        yield counts
        yield over


def run_labels(meta: Mapping[str, object]) -> dict[str, str]:
    """The run-wide labels from timings meta (firmware, rig, dut, and module when set)."""
    labels = {name: str(meta.get(name) or "unknown") for name in RUN_LABELS}
    if meta.get("module"):
        labels["module"] = str(meta["module"])
    return labels


def render(commands: Mapping[str, CommandFigures], meta: Mapping[str, object]) -> bytes:
    """The OpenMetrics text of a run's per-command figures, ending with `# EOF`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_RunTimings(commands, run_labels(meta)))
    text: bytes = generate_latest(registry)  # prometheus_client's OpenMetrics writer is untyped
    return text
