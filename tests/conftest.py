"""How scripts/test runs the harness's own tests fast without making them flaky.

Two markers (docs/setup.md, "The self-test's time"):

- `timed`: the test holds wall-clock time to a bound (a run stopped "at once", a latency
  shift found between two firmwares). scripts/test runs these alone, after the parallel
  run of the rest: beside the workers' load they missed their bounds.
- `end_to_end`: the test runs the harness in processes of its own for tens of seconds (a
  nightly run, a farm, a soak). They are collected first, so that pytest-xdist
  (`--dist loadfile --no-loadscope-reorder`) starts them at once instead of leaving one of
  them to run alone at the end.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "timed: holds wall-clock time to a bound; scripts/test runs it apart from "
        "the parallel workers' load")
    config.addinivalue_line(
        "markers", "end_to_end: runs the harness in processes of its own for tens of seconds; "
        "collected first so that parallel workers start it at once")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end tests first, each file's tests in their own order (a stable sort)."""
    items.sort(key=lambda item: item.get_closest_marker("end_to_end") is None)
