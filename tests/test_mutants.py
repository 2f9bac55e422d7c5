"""`hil mutants` without running the suites: verdicts, parsing, table, scheduling."""

from __future__ import annotations

import argparse

import pytest

from hil.sim.bugs import BUGS
from hil.tools import mutants
from hil.tools.mutants import CAUGHT, ERROR, SURVIVED, TIMEOUT, Outcome

OUTPUT = """\
..F
=========================== short test summary info ============================
FAILED suites/test_general.py::test_commands_end_in_ok_or_error - AssertionError: AT+X
!!!!!!!!!!!!!!!!!!!!!!!!!! stopping after 1 failures !!!!!!!!!!!!!!!!!!!!!!!!!!!
1 failed, 2 passed in 3.01s
"""


def test_first_failure_is_read_from_the_short_summary() -> None:
    assert mutants.first_failure(OUTPUT) == (
        "suites/test_general.py::test_commands_end_in_ok_or_error"
    )
    assert mutants.first_failure("ERROR suites/test_a.py::test_b - DutLost\n") == (
        "suites/test_a.py::test_b"
    )
    assert mutants.first_failure("3 passed in 1.00s") == ""


@pytest.mark.parametrize(
    ("bug", "code", "verdict"),
    [
        ("will_lost", 1, CAUGHT),
        ("will_lost", 0, SURVIVED),
        ("will_lost", 2, ERROR),
        ("will_lost", 5, ERROR),
        ("will_lost", None, TIMEOUT),
        (None, 0, "passed"),
        (None, 1, "failed"),
    ],
)
def test_exit_codes_become_verdicts(bug: str | None, code: int | None, verdict: str) -> None:
    assert mutants.verdict_of(bug, code) == verdict


def test_the_command_runs_the_suites_fail_fast_with_the_bug(tmp_path) -> None:
    command = mutants.pytest_command("will_lost", tmp_path)
    assert command[1:4] == ["-m", "pytest", "suites"]
    assert "-x" in command
    assert command[command.index("--l506-sim-bug") + 1] == "will_lost"
    assert command[command.index("--l506-report-dir") + 1] == str(tmp_path)
    assert "--l506-sim-bug" not in mutants.pytest_command(None, tmp_path)
    assert "--l506-clause" not in command
    targeted = mutants.pytest_command("will_lost", tmp_path, targeted=True)
    assert targeted[targeted.index("--l506-clause") + 1] == "MCONFIG-3"
    assert "--l506-sim-profile" not in command
    alt = mutants.pytest_command("will_lost", tmp_path, profile="guide-alt")
    assert alt[alt.index("--l506-sim-profile") + 1] == "guide-alt"


def test_the_profile_reaches_every_run_and_a_wrong_one_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[str | None] = []

    def runner(bug: str, *, timeout: float, targeted: bool = False,
               profile: str | None = None) -> Outcome:
        seen.append(profile)
        return _fake(bug, timeout=timeout)

    mutants.run_all(["cgmr_empty", "will_lost"], jobs=2, timeout=1, runner=runner,
                    profile="guide-alt")
    assert seen == ["guide-alt", "guide-alt"]
    parser = argparse.ArgumentParser()
    mutants.add_arguments(parser)
    assert mutants.main(parser.parse_args(["--profile", "v9", "--only", "cgmr_empty"])) == 2
    assert "unknown firmware profile 'v9'" in capsys.readouterr().err


def _fake(bug: str, *, timeout: float, targeted: bool = False,
          profile: str | None = None) -> Outcome:
    verdict = SURVIVED if bug == "will_lost" else CAUGHT
    return Outcome(bug, BUGS[bug][0], verdict, "" if verdict == SURVIVED else "t::x", 1.0, 0)


def test_all_bugs_run_and_come_back_in_order() -> None:
    names = ["will_lost", "cgmr_empty", "unknown_command_ok"]
    seen: list[str] = []
    outcomes = mutants.run_all(names, jobs=2, timeout=1, runner=_fake,
                               progress=lambda o: seen.append(o.bug))
    assert [o.bug for o in outcomes] == names
    assert sorted(seen) == sorted(names)
    table = mutants.render_table(outcomes)
    assert "will_lost" in table and "SURVIVED" in table and "MCONFIG-3" in table
    assert "survived (no test noticed): will_lost" in mutants.summary(outcomes, 60)


def test_list_and_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    mutants.add_arguments(parser)
    assert mutants.main(parser.parse_args(["--list"])) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == len(BUGS)
    assert mutants.main(parser.parse_args(["--only", "no_such_bug"])) == 2
    assert "unknown bug" in capsys.readouterr().err


def test_every_stated_clause_has_a_bug() -> None:
    """Each S clause about the module (and the bench clauses) can be broken by at least one
    named bug; GEN-7 is a rule for the harness's own tests, no firmware can break it."""
    from pathlib import Path

    from hil.fixtures.spec import load_clauses

    clauses = load_clauses(Path(__file__).resolve().parents[1])
    stated = {c.id for c in clauses if c.binds_firmware}
    broken = {clause for clause, _ in BUGS.values()}
    assert stated - broken == set()
