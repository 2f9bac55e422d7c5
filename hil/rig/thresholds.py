"""A rig file's [acceptance] table: how large a latency or throughput change must be to count.

The rig file owns these settings; `hil.acceptance.stats` applies them. Kept apart from the
statistics so that reading a rig file imports neither scipy nor the comparison code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

#: What each key of a rig file's [acceptance] table means (docs/acceptance.md).
THRESHOLD_HELP: dict[str, str] = {
    "alpha": "significance level of the Mann–Whitney U test, 0 < alpha < 1",
    "min_shift_ms": "a latency regression moves the p50 by at least this many ms (>= 0)",
    "min_shift_ratio": "... and multiplies the p50 by at least this factor (>= 1)",
    "min_samples": "fewer samples than this on either side: thin data, shown apart (>= 3)",
    "confidence": "confidence of the bootstrap intervals, 0 < confidence < 1",
    "resamples": "bootstrap resamples (>= 100)",
    "throughput_drop": "a throughput figure worse by more than this fraction is a regression "
    "(0 <= drop < 1)",
}


@dataclass(frozen=True)
class Thresholds:
    """How large a change must be to count; a rig file's [acceptance] table sets them."""

    alpha: float = 0.01
    min_shift_ms: float = 1.0
    min_shift_ratio: float = 1.2
    min_samples: int = 10
    confidence: float = 0.95
    resamples: int = 2000
    throughput_drop: float = 0.10

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> Thresholds:
        """Thresholds from a TOML table; ValueError names the key and what is allowed."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key not in known:
                raise ValueError(f"unknown key {key!r}; known keys: {', '.join(known)}")
            wants_int = known[key].type == "int"
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or (wants_int and not isinstance(value, int)):
                kind = "an integer" if wants_int else "a number"
                raise ValueError(f"{key} = {value!r} must be {kind} ({THRESHOLD_HELP[key]})")
            values[key] = value
        made = cls(**values)
        problem = made._problem()
        if problem:
            raise ValueError(problem)
        return made

    def _problem(self) -> str | None:
        checks = {
            "alpha": 0 < self.alpha < 1,
            "min_shift_ms": self.min_shift_ms >= 0,
            "min_shift_ratio": self.min_shift_ratio >= 1,
            "min_samples": self.min_samples >= 3,
            "confidence": 0 < self.confidence < 1,
            "resamples": self.resamples >= 100,
            "throughput_drop": 0 <= self.throughput_drop < 1,
        }
        for key, ok in checks.items():
            if not ok:
                return f"{key} = {getattr(self, key)!r}: {THRESHOLD_HELP[key]}"
        return None

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)
