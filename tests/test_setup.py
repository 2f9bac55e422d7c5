"""Set-up is locked: the venv running these tests holds exactly what constraints.txt pins."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Installed with every venv, or the project itself: not pinned.
UNPINNED = {"pip", "setuptools", "wheel", "l506-hil"}


def _name(text: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", text).lower()


def pins(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            if not (sep and version):
                raise ValueError(f"constraints.txt: {line!r} is not NAME==VERSION")
            out[_name(name)] = version
    return out


def test_the_venv_holds_exactly_the_pinned_versions() -> None:
    pinned = pins((ROOT / "constraints.txt").read_text(encoding="utf-8"))
    installed = {_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    unpinned = sorted(set(installed) - set(pinned) - UNPINNED)
    assert not unpinned, (f"installed but not in constraints.txt: {unpinned}; "
                          "update the lock as docs/setup.md says")
    other = {n: (installed[n], pinned[n]) for n in pinned
             if n in installed and installed[n] != pinned[n]}
    assert not other, f"installed ≠ pinned (installed, pinned): {other}; run scripts/setup"


def test_every_dependency_of_the_project_is_pinned() -> None:
    pinned = pins((ROOT / "constraints.txt").read_text(encoding="utf-8"))
    requires = metadata.requires("l506-hil") or []
    wanted = {_name(re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0]) for r in requires
              if "extra ==" not in r or "dev" in r or "embedded" in r}
    missing = sorted(wanted - set(pinned))
    assert not missing, f"dependencies of l506-hil not in constraints.txt: {missing}"


def test_a_line_that_pins_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="NAME==VERSION"):
        pins("pytest>=8\n")
