"""Per-test names: topics and client ids that no other test (or earlier run) shares, so
retained messages, wills and persistent sessions cannot leak from one test into another."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Names:
    token: str

    @property
    def base(self) -> str:
        """`hil/<token>`: every topic of the test lies below it."""
        return f"hil/{self.token}"

    def topic(self, name: str = "t") -> str:
        return f"{self.base}/{name}"

    @property
    def client_id(self) -> str:
        return f"l506-{self.token}"

    def padded_topic(self, length: int) -> str:
        """A topic of exactly `length` characters below `base`."""
        head = f"{self.base}/"
        assert length > len(head), f"a topic of {length} cannot lie below {head!r}"
        return head + "x" * (length - len(head))


@pytest.fixture
def names() -> Names:
    return Names(uuid.uuid4().hex[:8])
