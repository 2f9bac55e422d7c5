"""`hil farm up N` / `hil farm down`: a labgrid farm of simulated modules on this PC.

N `hil sim` processes (each on a pseudo-terminal that stays through a power cut, as a
bench's USB-serial adapter does, with its power switch served over HTTP on loopback), a
`labgrid-coordinator`, and per module a `labgrid-exporter` (as if each module sat on a
bench host of its own, so that one can vanish while the others go on) that shares its port
as a RawSerialPort (the exporter starts a ser2net for it when the place is locked and
publishes it as a NetworkSerialPort) and its power switch as a NetworkPowerPort of
labgrid's `simplerest` model. A place per module matches both. Everything listens on
127.0.0.1: the exporter finds `ser2net` through a wrapper (ser2net-loopback) that binds
labgrid's ser2net accepters to loopback. The farm's folder keeps the processes' logs,
farm.json (their process groups, for `down`) and rig.toml (the places, for `hil run --rig`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hil.farm.labgrid import ROOT, Labgrid, LabgridError, PlaceState, labgrid_program

DEFAULT_DIR = ROOT / ".farm"
#: The simulated modules' device time scale: MIPSTART-7's minute passes in 3 s.
TIME_SCALE = 0.05
START_TIMEOUT_S = 60.0
_WRAPPER = Path(__file__).with_name("ser2net-loopback")


class FarmError(RuntimeError):
    """The farm could not be started or stopped; the message says what to do."""


@dataclass
class Farm:
    """A running farm, as farm.json records it."""

    folder: str
    coordinator: str
    places: list[str]
    ports: dict[str, str]  # place → the simulator's pty
    groups: dict[str, int]  # what → process group id
    profile: str = "v3.2"
    power: dict[str, str] = field(default_factory=dict)  # place → its switch's URL template

    @classmethod
    def load(cls, folder: Path) -> Farm:
        try:
            return cls(**json.loads((folder / "farm.json").read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise FarmError(f"no farm running from {folder} (no readable farm.json): "
                            f"start one with `hil farm up N`") from exc

    def save(self) -> None:
        Path(self.folder, "farm.json").write_text(json.dumps(asdict(self), indent=2))

    def labgrid(self) -> Labgrid:
        return Labgrid(self.coordinator)

    def exporter_group(self, place: str) -> int:
        return self.groups[f"exporter {place}"]


def exporter_name(place: str) -> str:
    """The exporter (bench host) that shares `place`'s module."""
    return f"host-{place}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]  # (host, port) of an AF_INET socket
        return port


def _serial_available(place: PlaceState | None) -> bool:
    """Whether the place is known and its serial port published and available."""
    port = None if place is None else place.serial()
    return port is not None and port.avail


def _spawn(command: list[str], log: Path, env: dict[str, str] | None = None,
           cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """A process of its own group (so `down` stops it with its children), output to `log`."""
    with log.open("wb") as sink:
        return subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                start_new_session=True)


def _alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def stop_groups(groups: list[int], timeout: float = 5.0) -> None:
    """SIGTERM the process groups, SIGKILL what is left of them after `timeout`."""
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(g) for g in groups) and time.monotonic() < deadline:
        time.sleep(0.05)
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):  # started by this process: reap it
            os.waitpid(group, os.WNOHANG)


def _start_sim(folder: Path, name: str, profile: str) -> subprocess.Popen[bytes]:
    """`hil sim` whose pty stays through a power cut (as a bench's USB-serial adapter does:
    the exporter shares that one device), its power switch on an HTTP port of its own."""
    return _spawn([sys.executable, "-m", "hil.cli", "sim", "--profile", profile,
                   "--time-scale", f"{TIME_SCALE:g}", "--port-stays", "--power-http", "0"],
                  folder / f"sim-{name}.log", cwd=ROOT)


def _said_by_sim(folder: Path, name: str, proc: subprocess.Popen[bytes]) -> dict[str, str]:
    """The PTY and POWER lines a started `hil sim` prints, by their first word."""
    log = folder / f"sim-{name}.log"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        said = dict(line.split(" ", 1) for line in log.read_text(errors="replace").splitlines()
                    if line.startswith(("PTY ", "POWER ")))
        if len(said) == 2:
            return said
        if proc.poll() is not None:
            raise FarmError(f"hil sim for {name} exited with {proc.returncode}: see {log}")
        time.sleep(0.05)
    raise FarmError(f"hil sim for {name} printed no PTY and POWER lines within "
                    f"{START_TIMEOUT_S:g} s: see {log}")


def _wait_listening(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise FarmError(f"{what} exited with {proc.returncode}: see {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise FarmError(f"{what} is not listening on 127.0.0.1:{port} after "
                    f"{START_TIMEOUT_S:g} s: see {log}")


def exporter_config(place: str, pty: str, power: str) -> str:
    """An exporter's YAML: its module's port and power switch in a group named after the
    place."""
    return (f"{place}:\n  RawSerialPort:\n    port: {pty}\n    speed: 115200\n"
            f"  NetworkPowerPort:\n    model: simplerest\n    host: '{power}'\n    index: 0\n")


def rig_text(places: list[str], coordinator: str, profile: str) -> str:
    """A rig for `hil run --rig`: the farm's places, the simulator's settings."""
    names = ", ".join(f'"{p}"' for p in places)
    return (
        "# Written by `hil farm up`: the farm's simulated modules, reached through labgrid.\n"
        'name = "farm"\n'
        f'description = "{len(places)} simulated L506 behind labgrid-exporter and ser2net"\n'
        'budget_mode = "warn"\n\n'
        "[dut]\n"
        'kind = "simulator"\n'
        f"place = [{names}]\n"
        f'profile = "{profile}"\n'
        f"time_scale = {TIME_SCALE:g}\n"
        "boot_timeout_s = 10\n"
        "ready_timeout_s = 15\n\n"
        "[power]\n"
        "# the place's own power resource, switched with labgrid-client -p NAME power\n"
        'backend = "place"\n\n'
        "[labgrid]\n"
        f'coordinator = "{coordinator}"\n'
        "acquire_timeout_s = 60\n\n"
        "[labels]\n"
        'bench = "farm"\n'
    )


def up(count: int, folder: Path = DEFAULT_DIR, prefix: str = "l506-",
       profile: str = "v3.2") -> Farm:
    """Start the farm; on any failure, stop what was started and raise FarmError."""
    if count < 1:
        raise FarmError("hil farm up: N must be 1 or more")
    folder = folder.resolve()
    with contextlib.suppress(FarmError):
        running = Farm.load(folder)
        raise FarmError(f"a farm is already running from {folder} (coordinator "
                        f"{running.coordinator}): `hil farm down` first")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in [folder / "places.yaml", folder / "rig.toml", *folder.glob("exporter-*")]:
        stale.unlink(missing_ok=True)
    places = [f"{prefix}{i}" for i in range(1, count + 1)]
    farm = Farm(folder=str(folder), coordinator=f"127.0.0.1:{_free_port()}", places=places,
                ports={}, groups={}, profile=profile)
    try:
        sims = {place: _start_sim(folder, place, profile) for place in places}
        farm.groups.update({f"sim {place}": proc.pid for place, proc in sims.items()})
        farm.save()
        for place, proc in sims.items():
            said = _said_by_sim(folder, place, proc)
            farm.ports[place], farm.power[place] = said["PTY"], said["POWER"]
        farm.save()
        _start_labgrid(farm, folder)
        (folder / "rig.toml").write_text(rig_text(places, farm.coordinator, profile))
    except (FarmError, LabgridError, OSError) as exc:
        down(folder, quiet=True)
        raise FarmError(str(exc)) from exc
    return farm


def _start_labgrid(farm: Farm, folder: Path) -> None:
    port = int(farm.coordinator.rpartition(":")[2])
    log = folder / "coordinator.log"
    coordinator = _spawn([str(labgrid_program("labgrid-coordinator")), "-l", farm.coordinator],
                         log, cwd=folder)
    farm.groups["coordinator"] = coordinator.pid
    farm.save()
    _wait_listening(port, coordinator, "labgrid-coordinator", log)
    wrappers = folder / "bin"
    wrappers.mkdir(exist_ok=True)
    link = wrappers / "ser2net"
    link.unlink(missing_ok=True)
    link.symlink_to(_WRAPPER)
    env = dict(os.environ, PATH=f"{wrappers}{os.pathsep}{os.environ.get('PATH', '')}")
    exporters = {}
    for place, pty in farm.ports.items():
        config = folder / f"exporter-{place}.yaml"
        config.write_text(exporter_config(place, pty, farm.power[place]))
        exporters[place] = _spawn(
            [str(labgrid_program("labgrid-exporter")), "-c", farm.coordinator,
             "-n", exporter_name(place), "--hostname", "127.0.0.1", str(config)],
            folder / f"exporter-{place}.log", env=env, cwd=folder)
        farm.groups[f"exporter {place}"] = exporters[place].pid
        farm.save()
    lg = farm.labgrid()
    for place in farm.places:
        lg.must("create", place=place)
        lg.must("add-match", f"{exporter_name(place)}/{place}/NetworkSerialPort", place=place)
        lg.must("add-match", f"{exporter_name(place)}/{place}/NetworkPowerPort", place=place)
    wait_available(lg, farm.places, exporters, folder)


def wait_available(lg: Labgrid, places: list[str],
                   exporters: dict[str, subprocess.Popen[bytes]], folder: Path) -> None:
    """Until every place's serial port is published and available."""
    deadline = time.monotonic() + START_TIMEOUT_S
    log = folder / "exporter-*.log"
    while True:
        for place, exporter in exporters.items():
            if exporter.poll() is not None:
                raise FarmError(f"labgrid-exporter for {place} exited with "
                                f"{exporter.returncode}: see {folder}/exporter-{place}.log")
        states = {s.name: s for s in lg.places()}
        missing = [p for p in places if not _serial_available(states.get(p))]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise FarmError(f"places {', '.join(missing)} have no available serial port after "
                            f"{START_TIMEOUT_S:g} s: see {log}")
        time.sleep(0.3)


def down(folder: Path = DEFAULT_DIR, quiet: bool = False) -> list[str]:
    """Stop every process of the farm (exporter first); returns what was stopped."""
    folder = folder.resolve()
    try:
        farm = Farm.load(folder)
    except FarmError:
        if quiet:
            return []
        raise
    order = sorted(farm.groups, key=lambda what: (not what.startswith("exporter"),
                                                  what != "coordinator", what))
    stop_groups([farm.groups[what] for what in order])
    for name in ("farm.json", "places.yaml", "resources.yaml"):
        (folder / name).unlink(missing_ok=True)
    return order
