"""`hil bench`, run small: every item measured, the document complete, the table printed.

No figure is judged here: speed depends on the machine. The bench itself prints targets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil import bench
from hil.broker import BrokerError, find_program
from hil.cli import build_parser

KEYS = (
    "at_roundtrip_ratio_vs_raw",
    "at_roundtrip_ratio_vs_pytest_embedded",
    "mpubex_line_rate_fraction",
    "timestamp_error_p99_ms",
    "idle_reader_cpu_percent",
)


def _have_mosquitto() -> bool:
    try:
        find_program("mosquitto")
    except BrokerError:
        return False
    return True


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    opts = bench.BenchOptions(roundtrips=20, blocks=2, embedded=False, mpubex=3,
                              timestamp_samples=4, idle_s=0.3, warmup=2, out=out)
    said: list[str] = []
    return bench.run_bench(opts, say=said.append), out


def test_small_run_measures_every_item(small_run: tuple[dict, Path]) -> None:
    doc, out = small_run
    assert doc["errors"] == {} or (set(doc["errors"]) == {"mpubex"} and not _have_mosquitto())
    assert json.loads(out.read_text()) == doc
    for key in KEYS:
        assert key in doc
    assert doc["at_roundtrip_ratio_vs_pytest_embedded"] is None  # (b) was switched off
    assert doc["at_roundtrip_ratio_vs_raw"] > 0
    assert doc["timestamp_error_p99_ms"] >= 0
    assert doc["idle_reader_cpu_percent"] >= 0
    rt = doc["roundtrip_ms"]
    assert rt["raw_pyserial"]["n"] == rt["harness"]["n"] == 20
    assert doc["timestamps"]["samples"] == 4 * len(bench.parse_inject(bench.DEFAULT_INJECT))
    if _have_mosquitto():
        m = doc["mpubex"]
        assert m["messages"] == 3 and m["bytes_to_module"] > 3 * 1360
        assert doc["mpubex_line_rate_fraction"] > 0
    assert set(doc["met"]) == set(KEYS)


def test_table_shows_each_item(small_run: tuple[dict, Path]) -> None:
    text = bench.table(small_run[0])
    for label in ("(a) ratio harness / raw", "(b) ratio harness / pytest-embedded",
                  "(c) share of line rate", "(d) timestamp error p99",
                  "(e) idle reader thread CPU"):
        assert label in text
    assert "n/a" in text  # (b) not measured


def test_inject_spec() -> None:
    assert bench.parse_inject("AT=5, mqttstatu=2") == {"AT": 5.0, "MQTTSTATU": 2.0}
    for bad in ("", "MPUB=3", "AT", "AT=x"):
        with pytest.raises(bench.BenchError):
            bench.parse_inject(bad)


def test_hil_bench_is_a_subcommand() -> None:
    args = build_parser().parse_args(["bench", "--roundtrips", "10", "--no-embedded",
                                      "--out", "x.json"])
    assert args.func is bench.run
    assert (args.roundtrips, args.no_embedded, args.out) == (10, True, Path("x.json"))


@pytest.mark.skipif(not bench.embedded_available(),
                    reason="pytest-embedded-serial is not installed (the `embedded` extra)")
def test_pytest_embedded_worker_measures(tmp_path: Path) -> None:
    with bench.SimProcess(tmp_path / "tty", 115200, "off") as sim:
        got = bench.embedded_roundtrips(sim.url, 115200, count=3, warmup=1, idle_s=0.2,
                                        timeout=120)
    assert len(got["roundtrip_ns"]) == 3
    assert got["idle_redirect_thread_cpu_percent"] >= 0
