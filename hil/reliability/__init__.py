"""`hil reliability`: the harness under faults (faults.py), for hours (soak.py), fed bad
bytes (fuzz.py) and broken files (inputs.py), and checked for leaked secrets (secrets.py),
on a stand (stand.py) whose serial line is a fault relay (relay.py); report.py turns the
figures into docs/reliability.md."""

__all__ = ["faults", "fuzz", "inputs", "relay", "report", "secrets", "soak", "stand"]
