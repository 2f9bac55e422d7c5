"""Each package under hil/ lists its public names in `__all__` (docs/architecture.md).

A package that re-exports (hil.mqtt, hil.power, hil.broker, hil.rig, hil.cli) lists what it
defines; the others list the modules that are their public face without importing them, so
importing the package stays cheap and cannot close an import cycle.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import hil

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(["hil"] + [m.name for m in pkgutil.walk_packages(hil.__path__, "hil.")
                             if m.ispkg])


@pytest.mark.parametrize("name", PACKAGES)
def test_every_package_lists_its_public_names(name: str) -> None:
    package = importlib.import_module(name)
    public = package.__dict__.get("__all__")
    assert public, f"{name}/__init__.py has no __all__"
    assert package.__doc__, f"{name}/__init__.py has no docstring saying what it holds"
    folder = Path(package.__path__[0])
    for entry in public:
        if not hasattr(package, entry):  # a module of the package, imported on demand
            is_module = (folder / f"{entry}.py").is_file() \
                or (folder / entry / "__init__.py").is_file()
            assert is_module, f"{name}.__all__ names {entry!r}, neither defined nor a module"
            importlib.import_module(f"{name}.{entry}")


def test_a_package_that_lists_modules_does_not_import_them() -> None:
    code = ("import sys, hil, hil.at, hil.l506, hil.sim, hil.report, hil.dut, hil.acceptance\n"
            "print(sorted(m for m in sys.modules if m == 'serial' or m.count('.') >= 2 "
            "and m.startswith('hil.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", f"loaded eagerly: {out.stdout.strip()}"
