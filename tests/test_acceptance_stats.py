"""Latency shifts: noise is not a regression, a real shift is, a large shift that too few
samples cannot prove is inconclusive."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from hil.acceptance.stats import judge, samples_to_settle
from hil.rig import RigError, load_rig
from hil.rig.thresholds import Thresholds

T = Thresholds()


def bench(n: int, centre: float, seed: int, jitter: float = 0.4) -> list[float]:
    """Response times as a bench gives them: a floor, jitter, and a slow outlier now and then."""
    rng = random.Random(seed)
    return [centre + abs(rng.gauss(0, jitter)) + (rng.random() < 0.05) * rng.uniform(5, 40)
            for _ in range(n)]


def test_same_distribution_is_unchanged() -> None:
    for seed in range(10):
        shift = judge("MQTTSTATU", bench(60, 5.0, seed), bench(60, 5.0, seed + 100), T)
        assert shift.verdict == "unchanged", shift.reason


def test_a_real_shift_is_a_regression_with_its_size() -> None:
    shift = judge("MCONNECT", bench(40, 12.0, 1), bench(40, 18.0, 2), T)
    assert shift.verdict == "regression", shift.reason
    assert shift.p_value is not None and shift.p_value < T.alpha
    assert shift.p50_shift == pytest.approx(6.0, abs=0.5)
    assert shift.p50_interval is not None
    lo, hi = shift.p50_interval
    assert 0 < lo <= shift.p50_shift <= hi
    assert shift.ratio == pytest.approx(1.5, abs=0.05)


def test_a_faster_firmware_is_an_improvement() -> None:
    shift = judge("MIPSTART", bench(40, 15.0, 3), bench(40, 9.0, 4), T)
    assert shift.verdict == "improvement", shift.reason


def test_a_large_shift_too_few_samples_can_prove_is_inconclusive() -> None:
    """4 against 4 fully separated: the exact two-sided p is 2/70 > alpha; 5 a side can."""
    shift = judge("MUNSUB", bench(4, 10.0, 5), bench(4, 30.0, 6), T)
    assert shift.verdict == "inconclusive" and shift.thin
    assert shift.p_value == pytest.approx(2 / 70)
    assert shift.settle_with == 5 and "about 5 samples a side would settle it" in shift.reason
    assert shift.p50_interval is None  # no bootstrap on thin data


def test_the_exact_distribution_proves_a_shift_on_thin_data() -> None:
    """9 against 9, fully separated: p = 2/C(18, 9) ≈ 4·10⁻⁵ (the normal approximation
    would say 3·10⁻⁴)."""
    shift = judge("MCONNECT", bench(9, 4.8, 11), bench(9, 3000.0, 12), T)
    assert shift.verdict == "regression" and shift.thin
    assert shift.p_value == pytest.approx(2 / math.comb(18, 9))
    assert "thin" in shift.reason


def test_thin_but_unshifted_is_unchanged() -> None:
    shift = judge("MUNSUB", [10.1, 10.4, 10.2], [10.3, 10.0, 10.2], T)
    assert shift.verdict == "unchanged" and shift.thin and "too small" in shift.reason


def test_a_faster_shift_not_proven_is_not_inconclusive() -> None:
    shift = judge("MUNSUB", bench(3, 30.0, 5), bench(3, 10.0, 6), T)
    assert shift.verdict == "unchanged" and "faster" in shift.reason


def test_samples_to_settle() -> None:
    assert samples_to_settle(1.0, 0.01) == 5  # 2 / C(10, 5) = 0.0079
    assert samples_to_settle(0.0, 0.05) == 4  # 2 / C(8, 4) = 0.029
    assert samples_to_settle(0.7, 0.01) > samples_to_settle(0.9, 0.01) > 5
    assert samples_to_settle(0.5, 0.01) is None


def test_a_command_timed_on_one_side_is_not_judged() -> None:
    shift = judge("MSUB", [], bench(5, 10.0, 1), T)
    assert shift.verdict == "not judged" and (shift.n_before, shift.n_after) == (0, 5)


def test_significant_but_small_shift_is_unchanged() -> None:
    """Hundreds of samples make 0.3 ms significant; it is still below min_shift_ms."""
    before = [5.0 + 0.01 * (i % 10) for i in range(400)]
    after = [x + 0.3 for x in before]
    shift = judge("AT", before, after, T)
    assert shift.p_value is not None and shift.p_value < T.alpha
    assert shift.verdict == "unchanged" and "too small" in shift.reason


def test_ratio_threshold_protects_slow_commands() -> None:
    """+5 ms on a 200 ms command is significant and over min_shift_ms, but x1.025."""
    shift = judge("MPUBEX", bench(50, 200.0, 7), bench(50, 205.0, 8), T)
    assert shift.verdict == "unchanged", shift.reason


def test_all_equal_samples_are_unchanged() -> None:
    shift = judge("ATE", [3.0] * 20, [3.0] * 20, T)
    assert shift.verdict == "unchanged" and shift.p_value == 1.0


def test_the_bootstrap_is_repeatable() -> None:
    before, after = bench(30, 8.0, 9), bench(30, 11.0, 10)
    assert judge("X", before, after, T) == judge("X", before, after, T)


def test_thresholds_from_a_table() -> None:
    t = Thresholds.from_table({"alpha": 0.05, "min_shift_ms": 2, "min_samples": 20})
    assert (t.alpha, t.min_shift_ms, t.min_samples, t.min_shift_ratio) == (0.05, 2, 20, 1.2)


@pytest.mark.parametrize(("table", "words"), [
    ({"alpah": 0.05}, "unknown key 'alpah'"),
    ({"alpha": "0.05"}, "must be a number"),
    ({"min_samples": 10.5}, "must be an integer"),
    ({"alpha": 1.5}, "alpha = 1.5"),
    ({"min_shift_ratio": 0.5}, "min_shift_ratio"),
    ({"throughput_drop": True}, "must be a number"),
])
def test_bad_thresholds_are_named(table: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Thresholds.from_table(table)


RIG = """
name = "bench"
[dut]
kind = "simulator"
[acceptance]
{}
"""


def test_the_rig_file_sets_the_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "rig.toml"
    path.write_text(RIG.format("min_shift_ms = 5\nmin_shift_ratio = 1.5"))
    rig = load_rig(path)
    assert rig.acceptance == Thresholds(min_shift_ms=5, min_shift_ratio=1.5)
    path.write_text(RIG.format("alpha = 2"))
    with pytest.raises(RigError, match=r"\[acceptance\].*alpha = 2"):
        load_rig(path)
