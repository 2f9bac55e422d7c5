"""Assertions the suites share: what a result URC must say, in the guide's words."""

from __future__ import annotations

from hil.l506.dut import CommandResult
from hil.l506.types import ResultType


def expect_result(
    outcome: CommandResult,
    name: str,
    code: ResultType | None = None,
    *,
    success: bool = True,
) -> CommandResult:
    """The command finished with OK and `+NAME: SUCCESS[,code]` (or FAILURE with the code)."""
    response = outcome.response
    seen = response.summary()
    assert outcome.result is not None, f"no +{name} result URC: {seen}"
    assert outcome.result.name == name, f"result of another command: {seen}"
    word = "SUCCESS" if success else "FAILURE"
    assert outcome.result.success is success, f"expected {word}: {seen}"
    if code is not None:
        assert outcome.result.type == code, f"expected type {int(code)} ({code.name}): {seen}"
    if success:
        assert response.ok, f"expected final OK: {seen}"
    return outcome
