"""A finding's script, run again: by `hil fuzz --replay` and by the tests in suites/found."""

from __future__ import annotations

import json
from pathlib import Path

from hil.fuzz.engine import Violation
from hil.fuzz.grammar import Case
from hil.fuzz.runner import run_case
from hil.sim.profiles import Profile


class ScriptError(ValueError):
    """A script that cannot be read; the message says which and what to do."""


def load_script(path: Path) -> Case:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return Case.from_dict(record["case"])
    except OSError as exc:
        raise ScriptError(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ScriptError(f"{path} is not a script written by `hil fuzz` ({exc})") from None


def replay_script(path: Path, profile: Profile, bugs: frozenset[str] = frozenset()
                  ) -> Violation | None:
    """Run the script's case on `profile` with `bugs`: what the oracles see, or None."""
    return run_case(load_script(path), profile, bugs)
