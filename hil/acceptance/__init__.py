"""Firmware acceptance: keep an accepted firmware's run as a baseline, compare a new one with it.

baseline.py reads runs and baselines, stats.py judges latency shifts, compare.py finds and
renders what changed, cli.py is `hil baseline` and `hil compare`. See docs/acceptance.md.
"""
