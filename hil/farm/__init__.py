"""A bench farm through labgrid (docs/farm.md): farm.py is `hil farm up` / `down`, labgrid.py
runs labgrid's programs and reads what they report, lease.py holds a place for one pytest
process, merge.py merges the workers' records into one run, watchdog.py releases a dead run's
places. lgstate.py is run by labgrid's own interpreter, never imported here."""

__all__ = ["farm", "labgrid", "lease", "merge", "watchdog"]
