"""The harness's version as reports and `hil --version` name it: package and git commit."""

from __future__ import annotations

import functools
import subprocess
from importlib import metadata
from pathlib import Path

#: The checkout (or installed tree) the running harness comes from.
ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def harness_version(root: Path = ROOT) -> str:
    """The package version and, in a git checkout, its commit (asked of git once a run)."""
    try:
        version = metadata.version("l506-hil")
    except metadata.PackageNotFoundError:  # a checkout that was never installed
        version = "unknown (not installed: run scripts/setup)"
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, timeout=5,
                              capture_output=True, text=True, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return version
    commit = done.stdout.strip()
    return f"{version} ({commit})" if done.returncode == 0 and commit else version
