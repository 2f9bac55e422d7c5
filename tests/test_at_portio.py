"""PortIO on real pseudo-terminals: one read per burst, cancellable waits, hang-ups, writes
that time out, and pyserial for ports that are not lendable."""

from __future__ import annotations

import os
import select
import time
import tty

import pytest
import serial

from hil.at.portio import PortIO


@pytest.mark.timed
def test_port_io_on_a_pty_takes_the_whole_burst_and_can_be_cancelled() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    port = serial.serial_for_url(os.ttyname(slave), timeout=0.2)
    try:
        io = PortIO(port)
        assert io.lendable
        assert io.wait(0.05) is False  # nothing arrived
        io.cancel()
        started = time.monotonic()
        assert io.wait(5) is False  # cancelled: returns at once
        assert time.monotonic() - started < 1
        os.write(master, b"\r\nOK\r\n+MSUB: 1\r\n")
        assert io.wait(2)
        time.sleep(0.05)
        assert io.take() == b"\r\nOK\r\n+MSUB: 1\r\n"  # one read, all of it
        assert io.take() == b""  # nothing left: no wait
        os.close(master)
        master = -1
        with pytest.raises((serial.SerialException, OSError)):
            io.read(1)  # the device end went away
    finally:
        port.close()
        if master >= 0:
            os.close(master)
        os.close(slave)


def test_port_io_bytes_landing_just_after_an_empty_read_are_not_a_lost_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The reader thread woke for bytes a command's caller then took: its read comes back
    # empty, and the device's next bytes may land before it looks again. Only a hang-up
    # (POLLHUP) is a lost port.
    master, slave = os.openpty()
    tty.setraw(slave)
    port = serial.serial_for_url(os.ttyname(slave), timeout=0.2)
    real_read = os.read

    def read_then_bytes_land(fd: int, n: int) -> bytes:
        if fd != port.fd:
            return real_read(fd, n)
        os.write(master, b"+MSUB: 1\r\n")
        select.select([fd], [], [], 2)  # they have landed: the port polls readable
        return b""  # what the read got: another thread had taken what woke it

    try:
        io = PortIO(port)
        monkeypatch.setattr(os, "read", read_then_bytes_land)
        assert io.take() == b""
        monkeypatch.undo()
        assert io.take() == b"+MSUB: 1\r\n"
    finally:
        monkeypatch.undo()
        port.close()
        os.close(master)
        os.close(slave)


@pytest.mark.timed
def test_port_io_writes_everything_or_times_out_when_nobody_reads() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    port = serial.serial_for_url(os.ttyname(slave), timeout=0.2)
    try:
        io = PortIO(port)
        data = bytes(range(256)) * 4
        io.write(data, timeout=2)
        got = bytearray()
        while len(got) < len(data) and select.select([master], [], [], 2)[0]:
            got += os.read(master, 4096)
        assert bytes(got) == data
        started = time.monotonic()
        with pytest.raises(serial.SerialTimeoutException):
            io.write(b"x" * 1_000_000, timeout=0.3)  # more than the pty holds, none read
        assert 0.25 < time.monotonic() - started < 2
    finally:
        port.close()
        os.close(master)
        os.close(slave)


def test_port_io_elsewhere_goes_through_pyserial() -> None:
    port = serial.serial_for_url("loop://", timeout=0.1)
    try:
        io = PortIO(port)
        assert not io.lendable
        port.write(b"AT\r")
        assert io.read(0.1) == b"AT\r"
        assert io.read(0.1) == b""
    finally:
        port.close()
