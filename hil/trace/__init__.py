"""Serial sessions as evidence: recorded (record.py, in the session format of session.py),
played back (replay.py), checked against a simulator profile (check.py), and the broker's side
of a test on the transcript's clock (timeline.py). docs/record.md has the file format."""

__all__ = ["check", "record", "replay", "session", "timeline"]
