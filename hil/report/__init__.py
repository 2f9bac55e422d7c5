"""A run's records and what a reader sees of them: timing.py (samples per AT command),
budgets.py (how long an answer may take), categories.py (what kind of failure), files.py
(files replaced whole), openmetrics.py (timings for Prometheus), page.py (the run page).
Import the modules themselves: this package re-exports nothing."""

__all__ = ["budgets", "categories", "files", "openmetrics", "page", "timing"]
