"""What a failure is: firmware defect, DUT lost, infrastructure, or a harness error.

One table serves both the Allure report (categories.json, matched against the failure
message, which starts with the exception's type) and results.json (`classify`), so the two
can never disagree. The patterns exclude each other: each failure is in exactly one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TYPE = r"(?:[\w.]*\.)?"  # an exception type, qualified or not, at the start of the message


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    types: tuple[str, ...]  # exception type names; empty: everything not claimed above

    def pattern(self, claimed: tuple[str, ...]) -> str:
        if self.types:
            return rf"(?s){_TYPE}(?:{'|'.join(self.types)}):.*"
        return rf"(?s)(?!{_TYPE}(?:{'|'.join(claimed)}):).*"


DUT_LOST = Category("DUT lost", "the module stopped answering and did not come back after a "
                    "power cycle; the tests after it did not run", ("DutLost",))
INFRASTRUCTURE = Category(
    "Infrastructure",
    "the bench around the module failed: the serial port vanished, the broker died, the "
    "power switch failed",
    ("PortLost", "PortNotFound", "PowerError", "BrokerError", "BenchFault", "PlaceLost",
     "SerialException",
     "ConnectionRefusedError", "ConnectionResetError", "BrokenPipeError"),
)
FIRMWARE_DEFECT = Category(
    "Firmware defect",
    "the module answered otherwise than the spec says, or not in time",
    ("AssertionError", "Failed", "CommandTimeout", "UrcTimeout", "PeerError",
     "ConnectRefused", "NotReady", "NotKnownState"),
)
HARNESS_ERROR = Category("Harness error", "an error in the harness or in a test itself", ())

CATEGORIES = (DUT_LOST, INFRASTRUCTURE, FIRMWARE_DEFECT, HARNESS_ERROR)
_CLAIMED = tuple(t for c in CATEGORIES for t in c.types)


def classify(message: str) -> str:
    """The category name of a failure, given its message ("Type: text", as Allure sees it)."""
    for category in CATEGORIES:
        if re.fullmatch(category.pattern(_CLAIMED), message):
            return category.name
    raise AssertionError("the last category matches everything")


def allure_categories() -> list[dict[str, object]]:
    """The content of allure-results/categories.json."""
    return [
        {
            "name": c.name,
            "description": c.description,
            "matchedStatuses": ["failed", "broken"],
            "messageRegex": c.pattern(_CLAIMED),
        }
        for c in CATEGORIES
    ]
