"""Regression tests written by `hil fuzz` for its findings (docs/fuzz.md)."""
