"""The run's timings as OpenMetrics text: parsed back by prometheus_client's own parser."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from hil.report.openmetrics import run_labels
from hil.report.timing import Sample, aggregate, write_openmetrics


def _samples() -> list[Sample]:
    """MQTTSTATU answered in 1 to 10 ms, held to a 7 ms budget."""
    return [Sample("MQTTSTATU", "t", "call", i / 10, 0.5, None, ms, None, ms,
                   budget_ms=7.0, over_budget=ms > 7.0)
            for i, ms in enumerate(float(n) for n in range(1, 11))]


def _families(path: Path) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(path.read_text())}


def test_every_quantile_of_every_figure_is_a_labelled_series(tmp_path: Path) -> None:
    samples = _samples()
    meta = {"firmware": "L506_V3.2_MQTT_B20171031", "rig": "bench-a", "dut": "hardware"}
    path = write_openmetrics(tmp_path / "metrics.txt", samples, meta)
    assert path.read_text().rstrip().endswith("# EOF")
    families = _families(path)
    times = families["l506_response_ms"]
    expected = aggregate(samples)["MQTTSTATU"]["total_ms"]
    by_quantile = {s.labels["quantile"]: s.value for s in times.samples
                   if s.labels["figure"] == "total"}
    assert by_quantile == pytest.approx({"0": expected.min, "0.5": expected.p50,
                                         "0.95": expected.p95, "0.99": expected.p99,
                                         "1": expected.max})
    for sample in times.samples:
        assert {k: sample.labels[k] for k in meta} == meta
        assert sample.labels["command"] == "MQTTSTATU"
    counts = {s.name: s.value for s in families["l506_responses"].samples}
    assert counts["l506_responses_total"] == 10
    over = {s.name: s.value for s in families["l506_responses_over_budget"].samples}
    assert over["l506_responses_over_budget_total"] == 3  # 8, 9 and 10 ms over 7 ms


def test_missing_run_labels_say_unknown_and_a_module_is_kept() -> None:
    assert run_labels({"rig": "r"}) == {"firmware": "unknown", "rig": "r", "dut": "unknown"}
    assert run_labels({"module": "l506-a"})["module"] == "l506-a"
