"""A place held for one pytest process: locked at the coordinator, released at the end.

`PlaceLease.acquire` locks the first free place of those named, waiting (up to a timeout)
while others hold them, then says who holds them. The lock is the coordinator's, so two
runs never share a module. A watchdog process, started before the lock is taken, releases
it if this process dies without doing so (a crash, SIGKILL): it waits for its standard input
to close, which the kernel does when its parent dies, then releases what this holder still
has (`labgrid-client release-from`, which touches nobody else's lock).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hil.farm.labgrid import (
    CLIENT_TIMEOUT_S,
    Labgrid,
    LabgridError,
    PlaceState,
    _said,
    firmware_tag,
)

#: Seconds between two attempts to lock a held place.
POLL_S = 1.0


class PlaceBusy(LabgridError):
    """Every place asked for stayed held by someone else for the whole timeout."""


class PlaceLost(RuntimeError):
    """The place's exporter vanished: its shared serial port is gone (Infrastructure)."""


def _held(said: str) -> bool:
    return "already acquired" in said


@dataclass
class PlaceLease:
    lab: Labgrid
    name: str
    state: PlaceState
    url: str
    watchdog: subprocess.Popen[bytes] | None = None
    released: bool = False
    firmware: str | None = None
    #: The firmware tag being written, while the tests go on.
    tagging: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def acquire(cls, lab: Labgrid, candidates: Sequence[str], timeout: float, *,
                ignore_control: bool = False,
                waiting: Callable[[str], None] | None = None,
                stop: threading.Event | None = None) -> PlaceLease:
        """Lock the first free place of `candidates`; PlaceBusy after `timeout` seconds, or
        as soon as `stop` is set (the run ended while it waited)."""
        watchdog = start_watchdog(lab, candidates)
        try:
            deadline = time.monotonic() + timeout
            told = False
            while True:
                if stop is not None and stop.is_set():
                    raise PlaceBusy("the run ended before a place was locked")
                for name in candidates:
                    done = lab.client("acquire", place=name)
                    if done.returncode == 0:
                        state = lab.place(name)
                        return cls(lab, name, state, state.serial_url(
                            ignore_control=ignore_control), watchdog)
                    said = _said(done)
                    if not _held(said):
                        raise LabgridError(f"cannot lock place {name}: {said}")
                # Said once a place is found held, even when the first try alone took up
                # the whole timeout (a slow coordinator): the run says why it waits.
                if waiting is not None and not told:
                    waiting(busy_message(lab.places(), candidates, None))
                    told = True
                if time.monotonic() >= deadline:
                    raise PlaceBusy(busy_message(lab.places(), candidates, timeout))
                if stop is not None:
                    stop.wait(POLL_S)
                else:
                    time.sleep(POLL_S)
        except BaseException:
            with contextlib.suppress(LabgridError):
                for name in candidates:
                    lab.client("release-from", lab.identity, place=name)
            stop_watchdog(watchdog)
            raise

    def reachable(self, timeout: float = 1.0) -> bool:
        """Whether the place's ser2net still takes connections (its exporter is up)."""
        port = self.state.serial()
        assert port is not None  # serial_url checked it
        try:
            with socket.create_connection((port.params["host"], port.params["port"]), timeout):
                return True
        except OSError:
            return False

    def lost(self) -> PlaceLost:
        port = self.state.serial()
        where = f"{port.params.get('host')}:{port.params.get('port')}" if port else "?"
        return PlaceLost(f"place {self.name}: its exporter vanished (the serial port it "
                         f"shared at {where} refuses connections)")

    def report_firmware(self, revision: str) -> None:
        """Tag the place with the firmware its module reported (`hil places` shows it).

        In the background: the first test need not wait for the coordinator.
        """
        tag = firmware_tag(revision)
        if tag != self.firmware and self.tagging is None:
            with contextlib.suppress(LabgridError, OSError):
                self.tagging = self.lab.start("set-tags", f"firmware={tag}", place=self.name)
                self.firmware = tag

    def power(self, on: bool) -> None:
        """Switch the place's power resource (labgrid-client power), as its holder."""
        if not self.state.has_power():
            raise LabgridError(f"place {self.name} has no power resource: add a match for one "
                               "(labgrid-client -p NAME add-match EXPORTER/GROUP/"
                               "NetworkPowerPort)")
        self.lab.must("power", "on" if on else "off", place=self.name)

    def release(self) -> None:
        """Unlock (once); the watchdog is no longer needed after."""
        if self.released:
            return
        self.released = True
        try:
            if self.tagging is not None:  # tag while still holding the place
                try:
                    self.tagging.wait(CLIENT_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self.tagging.kill()
                    self.tagging.wait(5)
            self.lab.must("release-from", self.lab.identity, place=self.name)
        finally:
            stop_watchdog(self.watchdog)


def busy_message(states: list[PlaceState], candidates: Sequence[str],
                 waited: float | None) -> str:
    """Who holds the places asked for, in one line."""
    held = {s.name: s for s in states if s.name in candidates}
    parts = [f"{name} by {held[name].holder}" if name in held and held[name].holder
             else f"{name} (unknown or free now)" for name in candidates]
    noun = "place" if len(candidates) == 1 else "places"
    if waited is None:
        return f"waiting for {noun} held: {', '.join(parts)}"
    return (f"{noun} still held after {waited:g} s: {', '.join(parts)}; ask the holder, or "
            "if that run is gone: labgrid-client -p NAME release --kick")


def start_watchdog(lab: Labgrid, places: Sequence[str]) -> subprocess.Popen[bytes]:
    """A process of its own session (Ctrl-C does not reach it) that outlives a crash."""
    return subprocess.Popen(
        [sys.executable, "-m", "hil.farm.watchdog", lab.coordinator, lab.holder,
         lab.identity, *places],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_watchdog(watchdog: subprocess.Popen[bytes] | None) -> None:
    if watchdog is None or watchdog.poll() is not None:
        return
    watchdog.kill()
    watchdog.wait(5)
    if watchdog.stdin is not None:
        watchdog.stdin.close()
