"""Firmware acceptance: keep an accepted firmware's run as a baseline, compare a new one with it.

baseline.py reads runs and baselines, stats.py judges latency shifts, compare.py finds and
renders what changed, gate.py is `hil run --baseline`'s verdict and page. See
docs/acceptance.md. Import the modules themselves: this package re-exports nothing.
"""

__all__ = ["baseline", "compare", "gate", "stats"]
