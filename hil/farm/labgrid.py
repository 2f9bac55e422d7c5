"""labgrid as the harness reaches it: its programs, run as processes, and what they report.

labgrid lives in a venv of its own (`.venv-labgrid`, made by `scripts/setup --farm`): its
releases require `pyserial-labgrid`, a fork that installs the same `serial` package as
pyserial and would silently replace the harness's (docs/farm.md). So the harness never
imports labgrid; it runs `labgrid-client`, `labgrid-coordinator`, `labgrid-exporter` and
lgstate.py (a JSON dump of the places) with labgrid's own interpreter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from getpass import getuser
from pathlib import Path
from socket import gethostname
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_COORDINATOR = "127.0.0.1:20408"
#: Seconds one labgrid-client call may take (it connects, syncs, acts, disconnects).
CLIENT_TIMEOUT_S = 30.0
_STATE = Path(__file__).with_name("lgstate.py")


class LabgridError(RuntimeError):
    """labgrid is missing, the coordinator is unreachable, or it refused what was asked."""


def labgrid_program(name: str) -> Path:
    """A labgrid program: $LABGRID_BIN/, else the project's .venv-labgrid, else PATH."""
    places = [os.environ.get("LABGRID_BIN"), str(ROOT / ".venv-labgrid" / "bin")]
    for folder in filter(None, places):
        found = Path(folder, name)
        if os.access(found, os.X_OK):
            return found
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    raise LabgridError(f"{name} not found: run `scripts/setup --farm` (it makes .venv-labgrid) "
                       "or set LABGRID_BIN to the folder holding labgrid's programs")


def coordinator_address(configured: str | None = None) -> str:
    """The rig's [labgrid] coordinator, else LG_COORDINATOR, else labgrid's default."""
    return configured or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


def holder_name(pid: int | None = None) -> str:
    """This process's identity at the coordinator (labgrid's user part of host/user).

    One per process, not per person: two runs of one engineer are then told apart, so a
    run releases only what it acquired itself.
    """
    return f"{getuser()}-hil{os.getpid() if pid is None else pid}"


def firmware_tag(revision: str) -> str:
    """A firmware revision as a labgrid tag value ([a-z0-9_]): L506_V3.2 → l506_v3_2."""
    return re.sub(r"[^a-z0-9_]+", "_", revision.lower()).strip("_")[:60] or "unknown"


@dataclass(frozen=True)
class Resource:
    exporter: str
    group: str
    cls: str
    name: str
    avail: bool
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlaceState:
    """One place as the coordinator sees it."""

    name: str
    acquired: str | None  # "host/user"
    tags: dict[str, str]
    comment: str
    changed: float
    resources: tuple[Resource, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlaceState:
        return cls(name=data["name"], acquired=data.get("acquired") or None,
                   tags=dict(data.get("tags") or {}), comment=data.get("comment") or "",
                   changed=float(data.get("changed") or 0.0),
                   resources=tuple(Resource(**r) for r in data.get("resources") or ()))

    @property
    def holder(self) -> str | None:
        """Who holds it, as people read it: "user on host"."""
        if not self.acquired:
            return None
        host, _, user = self.acquired.partition("/")
        return f"{user} on {host}"

    def serial(self) -> Resource | None:
        return next((r for r in self.resources if r.cls == "NetworkSerialPort"), None)

    def serial_url(self, *, ignore_control: bool = False) -> str:
        """The pyserial URL of the place's shared serial port (ser2net)."""
        port = self.serial()
        if port is None:
            raise LabgridError(f"place {self.name} has no NetworkSerialPort: add a match for "
                               "one (labgrid-client -p NAME add-match EXPORTER/GROUP/"
                               "NetworkSerialPort)")
        if not port.avail:
            raise LabgridError(f"place {self.name}: its serial port on exporter "
                               f"{port.exporter} is not available (is the exporter running?)")
        host, number = port.params.get("host"), port.params.get("port")
        if port.params.get("protocol", "rfc2217") == "raw":
            return f"socket://{host}:{number}"
        return f"rfc2217://{host}:{number}" + ("?ign_set_control" if ignore_control else "")

    def has_power(self) -> bool:
        return any(r.cls.endswith("PowerPort") for r in self.resources)


class Labgrid:
    """labgrid-client against one coordinator, as one holder."""

    def __init__(self, coordinator: str | None = None, holder: str | None = None) -> None:
        self.coordinator = coordinator_address(coordinator)
        self.holder = holder or holder_name()

    @property
    def identity(self) -> str:
        """The host/user string the coordinator records for this holder."""
        return f"{os.environ.get('LG_HOSTNAME', gethostname())}/{self.holder}"

    def env(self) -> dict[str, str]:
        return dict(os.environ, LG_COORDINATOR=self.coordinator, LG_USERNAME=self.holder)

    def _command(self, args: tuple[str, ...], place: str | None) -> list[str]:
        command = [str(labgrid_program("labgrid-client")), "-x", self.coordinator]
        if place is not None:
            command += ["-p", place]
        return command + list(args)

    def start(self, *args: str, place: str | None = None) -> subprocess.Popen[bytes]:
        """A labgrid-client call that goes on while the caller works; the caller reaps it."""
        return subprocess.Popen(self._command(args, place), env=self.env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def client(self, *args: str, place: str | None = None,
               timeout: float = CLIENT_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        """One labgrid-client call; its status and output are the caller's to judge."""
        try:
            return subprocess.run(self._command(args, place), env=self.env(), capture_output=True,
                                  text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise LabgridError(f"labgrid-client {' '.join(args)} did not finish within "
                               f"{timeout:g} s (is the coordinator at {self.coordinator} "
                               "up?)") from exc

    def must(self, *args: str, place: str | None = None) -> str:
        done = self.client(*args, place=place)
        if done.returncode != 0:
            raise LabgridError(_said(done) or f"labgrid-client {' '.join(args)} failed")
        return done.stdout

    def places(self) -> list[PlaceState]:
        """Every place with its holder, tags and matching resources."""
        python = labgrid_program("python")
        try:
            # -P: this folder not on sys.path, so `labgrid` is labgrid, not this module
            done = subprocess.run([str(python), "-P", str(_STATE), self.coordinator],
                                  env=self.env(), capture_output=True, text=True,
                                  timeout=CLIENT_TIMEOUT_S,
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as exc:
            raise LabgridError(f"no answer from the coordinator at {self.coordinator} within "
                               f"{CLIENT_TIMEOUT_S:g} s") from exc
        if done.returncode != 0:
            raise LabgridError(f"cannot read the places of the coordinator at "
                               f"{self.coordinator}: {_said(done)}")
        return [PlaceState.from_json(p) for p in json.loads(done.stdout)["places"]]

    def place(self, name: str) -> PlaceState:
        for state in self.places():
            if state.name == name:
                return state
        raise LabgridError(f"the coordinator at {self.coordinator} has no place {name!r} "
                           "(`hil places` lists them)")


def _said(done: subprocess.CompletedProcess[str]) -> str:
    """The last meaningful line labgrid printed: its error, without the traceback."""
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else ""
