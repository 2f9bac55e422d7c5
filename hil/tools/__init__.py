"""Tools beside the suites, each a `hil` subcommand: bench.py measures the harness's own cost,
mutants.py how sensitive the suites are, console.py is the interactive AT terminal."""

__all__ = ["bench", "console", "mutants"]
