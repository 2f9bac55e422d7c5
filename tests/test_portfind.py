"""Port re-enumeration: the AT port is found again by what does not change about it."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from hil.dut.device import Device
from hil.dut.portfind import PortNotFound, find_now, interface_of, locate, match_port
from hil.l506.api import L506
from hil.l506.types import MqttStatus
from hil.power import SimulatorPower
from hil.rig import PortFind
from hil.sim.firmware import Firmware
from hil.sim.host import SimConfig, Simulator
from hil.sim.profiles import V32


@dataclass
class Port:
    device: str
    location: str | None
    serial_number: str | None


# An L506 on USB: one serial number, one tty per interface; and an FTDI cable beside it.
BEFORE = [
    Port("/dev/ttyUSB0", "1-1.2:1.0", "L506SN01"),
    Port("/dev/ttyUSB1", "1-1.2:1.1", "L506SN01"),
    Port("/dev/ttyUSB2", "1-1.2:1.2", "L506SN01"),
    Port("/dev/ttyUSB3", "1-1.3", "A10K8XYZ"),
]
# After a power cycle the cable enumerated first: every module port moved up by one.
AFTER = [
    Port("/dev/ttyUSB0", "1-1.3", "A10K8XYZ"),
    Port("/dev/ttyUSB1", "1-1.2:1.0", "L506SN01"),
    Port("/dev/ttyUSB2", "1-1.2:1.1", "L506SN01"),
    Port("/dev/ttyUSB3", "1-1.2:1.2", "L506SN01"),
]


def test_interface_number_from_location() -> None:
    assert interface_of("1-1.2:1.3") == 3
    assert interface_of("1-1.3") is None
    assert interface_of(None) is None


@pytest.mark.parametrize("find", [
    PortFind(usb_location="1-1.2:1.2"),
    PortFind(serial_number="L506SN01", interface=2),
], ids=["location", "serial+interface"])
def test_the_at_port_is_found_under_its_new_name(find: PortFind) -> None:
    assert match_port(BEFORE, find) == "/dev/ttyUSB2"
    assert match_port(AFTER, find) == "/dev/ttyUSB3"


def test_a_serial_number_alone_that_fits_several_ports_is_refused() -> None:
    with pytest.raises(PortNotFound, match=r"fits several ports.*add interface = N"):
        match_port(BEFORE, PortFind(serial_number="L506SN01"))
    assert match_port(BEFORE, PortFind(serial_number="A10K8XYZ")) == "/dev/ttyUSB3"


def test_absent_port_is_none() -> None:
    assert match_port(BEFORE[3:], PortFind(usb_location="1-1.2:1.2")) is None


def test_by_id_link_follows_the_device(tmp_path: Path) -> None:
    target = tmp_path / "ttyUSB7"
    target.write_text("")
    link = tmp_path / "usb-LYNQ_L506-if02-port0"
    link.symlink_to(target)
    assert find_now(PortFind(by_id=str(link))) == str(target)
    target.unlink()  # the device went away: the link dangles
    assert find_now(PortFind(by_id=str(link))) is None


@pytest.mark.timed
def test_locate_waits_for_the_port_and_gives_up_in_time() -> None:
    seen = [[], [], AFTER]

    def comports() -> list[Port]:
        return seen.pop(0) if len(seen) > 1 else seen[0]

    assert locate(PortFind(usb_location="1-1.2:1.2"), 5, comports=comports,
                  interval=0.01) == "/dev/ttyUSB3"
    start = time.monotonic()
    with pytest.raises(PortNotFound, match=r"did not appear within 0.2 s; present: "
                       r"/dev/ttyUSB0 \(1-1.3, A10K8XYZ\)"):
        locate(PortFind(usb_location="9-9"), 0.2, comports=lambda: AFTER[:1], interval=0.05)
    assert time.monotonic() - start < 2


def test_device_reopens_under_the_new_name_without_the_test_noticing(tmp_path: Path) -> None:
    """The channel uses the pty's own name (/dev/pts/N), which changes at every power-on;
    the by-id-like link is how the device finds it again."""
    link = tmp_path / "by-id" / "usb-sim-L506"
    sim = Simulator(Firmware(V32, time_scale=0.05), SimConfig(link=link, baud=None))
    sim.power_on()
    first = os.path.realpath(link)
    at = L506.open(first)
    find = PortFind(by_id=str(link))
    dev = Device(at=at, channel=at.channel, kind="simulator", time_scale=0.05,
                 power=SimulatorPower(sim), boot_timeout=5, ready_timeout=5,
                 locate=lambda timeout: locate(find, timeout))
    # keep a second pty open so the next power-on cannot get the same /dev/pts number
    hold = os.openpty()
    try:
        dev.wait_ready()
        dev.power_cycle()
        assert dev.channel.url != first
        assert dev.channel.url == os.path.realpath(link)
        assert dev.at.mqttstatu().value == MqttStatus.NO_CONNECTION
    finally:
        for fd in hold:
            os.close(fd)
        at.channel.close()
        sim.close()


def test_port_that_vanishes_and_returns_is_reopened_while_waiting(tmp_path: Path) -> None:
    """USB re-enumeration during boot: wait_ready reopens the port when it is back."""
    link = tmp_path / "tty"
    sim = Simulator(Firmware(V32, time_scale=0.05), SimConfig(link=link, baud=None))
    at = L506.open(sim.power_on())
    dev = Device(at=at, channel=at.channel, kind="simulator", boot_timeout=5, ready_timeout=5)
    try:
        dev.wait_ready()
        sim.unplug()
        replug = threading.Timer(0.3, sim.plug)
        replug.start()
        dev.wait_ready()  # PortLost inside is handled: reopened once the port is back
        replug.join()
        assert dev.at.at().ok
    finally:
        at.channel.close()
        sim.close()
