"""A rig of kind "hardware": its keys, --port, the checks before a run, the adapter's
latency timer, the APN and which responses are held to budgets."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakedevice import FakeDevice, crlf

from hil.at.channel import Channel
from hil.at.exchange import Response, Timing
from hil.at.framer import Line
from hil.cli import run
from hil.dut import preflight
from hil.dut.device import Device, NotReady
from hil.dut.usbserial import LatencyTimerError, read_timer, set_timer, timer_file
from hil.fixtures.dut import ADAPTER, IDENTITY, adapter_timer, environment
from hil.l506.api import L506
from hil.report.budgets import failure_path
from hil.rig import (
    HARDWARE_LINK_WAIT_SCALE,
    RigError,
    load_rig,
    rig_from_dict,
    rig_warnings,
    with_port,
)

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]


def _hardware(**dut: object) -> dict:
    return {"name": "bench", "dut": {"kind": "hardware", "port": "/dev/ttyUSB2", **dut}}


# ---------------------------------------------------------------------------- rig keys


def test_apn_latency_timer_and_link_scale_are_read() -> None:
    rig = rig_from_dict(_hardware(apn="internet.example", latency_timer_ms=1))
    assert (rig.dut.apn, rig.dut.latency_timer_ms) == ("internet.example", 1)
    assert rig.dut.link_wait_scale == HARDWARE_LINK_WAIT_SCALE > 1
    assert rig_from_dict(_hardware(link_wait_scale=5)).dut.link_wait_scale == 5
    assert load_rig(ROOT / "rigs" / "simulator.toml").dut.link_wait_scale == 1


@pytest.mark.parametrize(("dut", "message"), [
    ({"apn": 'in"ternet'}, "without quotes"),
    ({"apn": ""}, "1–99 characters"),
    ({"latency_timer_ms": 0}, "1–255 ms"),
    ({"link_wait_scale": 0}, "greater than 0"),
])
def test_bad_hardware_values_are_named(dut: dict, message: str) -> None:
    with pytest.raises(RigError, match=message):
        rig_from_dict(_hardware(**dut))


@pytest.mark.parametrize("key", ["apn", "latency_timer_ms"])
def test_apn_and_latency_timer_are_for_hardware(key: str) -> None:
    with pytest.raises(RigError, match=f'{key} is for kind = "hardware"'):
        rig_from_dict({"name": "sim", "dut": {"kind": "simulator", key: 1 if "ms" in key
                                              else "internet"}})


def test_port_renames_a_simulator_rig_and_keeps_a_bench() -> None:
    sim = load_rig(ROOT / "rigs" / "simulator.toml")
    moved = with_port(sim, "/dev/ttyUSB3")
    assert moved.name == "module on /dev/ttyUSB3" and "simulator" not in moved.name
    assert (moved.dut.kind, moved.power.backend, moved.source, moved.labels, moved.budgets) == (
        "hardware", "none", None, {}, {})
    assert moved.dut.link_wait_scale == HARDWARE_LINK_WAIT_SCALE
    bench = load_rig(ROOT / "rigs" / "usb-dtr.example.toml")
    other = with_port(bench, "/dev/ttyUSB3")
    assert (other.name, other.power, other.dut.port, other.dut.find) == (
        bench.name, bench.power, "/dev/ttyUSB3", None)


def test_hil_run_names_the_rig_by_port_as_pytest_does() -> None:
    assert run.port_option(["-x", "--l506-port", "socket://h:1", "-k", "a"]) == "socket://h:1"
    assert run.port_option(["--l506-port=/dev/ttyUSB0"]) == "/dev/ttyUSB0"
    assert run.port_option(["-x"]) is None


def test_loopback_broker_for_a_module_that_dials_elsewhere_is_warned() -> None:
    rig = rig_from_dict({**_hardware(), "broker": {"bind": "127.0.0.1",
                                                   "dut_host": "192.0.2.10"}})
    [warning] = rig_warnings(rig)
    assert "192.0.2.10" in warning and 'bind = "0.0.0.0"' in warning
    assert "--broker-bind" in warning
    for broker in ({"bind": "0.0.0.0", "dut_host": "192.0.2.10"},
                   {"bind": "127.0.0.1", "dut_host": "localhost"},
                   {"bind": "127.0.0.1", "dut_host": "127.0.0.1"}):
        assert rig_warnings(rig_from_dict({**_hardware(), "broker": broker})) == []


# ---------------------------------------------------------------------------- checks


def test_a_missing_device_is_one_line_with_the_hints(tmp_path: Path) -> None:
    problem = preflight.port_problem(str(tmp_path / "ttyUSB9"))
    assert problem is not None and "\n" not in problem
    assert "no such device" in problem
    assert "python -m serial.tools.list_ports" in problem and "serial ports here:" in problem


def test_a_file_that_is_no_device(tmp_path: Path) -> None:
    plain = tmp_path / "notatty"
    plain.write_text("")
    assert "not a serial device" in (preflight.port_problem(str(plain)) or "")


def test_a_device_without_permission_names_dialout(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        assert preflight.port_problem(path) is None
        monkeypatch.setattr(preflight.os, "access", lambda *a: False)
        problem = preflight.port_problem(path)
        assert problem is not None and "dialout" in problem and "permission" in problem
    finally:
        os.close(master)
        os.close(slave)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timed
def test_a_socket_port_nobody_serves_is_refused_at_once() -> None:
    start = time.monotonic()
    problem = preflight.port_problem(f"socket://127.0.0.1:{_closed_port()}")
    assert time.monotonic() - start < 2
    assert problem is not None and "refused" in problem and "hil sim --tcp" in problem
    assert "dialout" in problem and "list_ports" in problem
    assert "HOST:PORT" in (preflight.port_problem("socket://nohost") or "")
    assert preflight.port_problem("loop://") is None


def test_a_socket_port_that_listens_is_fine() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert preflight.port_problem(f"socket://127.0.0.1:{server.getsockname()[1]}") is None


def test_a_busy_broker_port_names_the_fix() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        problem = preflight.broker_port_problem("127.0.0.1", port, "tls_port")
    assert problem is not None and "\n" not in problem
    assert "in use" in problem and "systemctl stop mosquitto" in problem
    assert "[broker] tls_port = 0" in problem
    assert preflight.broker_port_problem("127.0.0.1", 0) is None
    assert preflight.broker_port_problem("127.0.0.1", _closed_port()) is None


# ---------------------------------------------------------------------------- latency timer


@pytest.fixture
def sysfs(tmp_path: Path) -> tuple[Path, str]:
    """A fake /sys with an FTDI adapter's ttyUSB0 at its default 16 ms; the port is a
    by-id style link to a node named ttyUSB0."""
    root = tmp_path / "sys"
    timer = timer_file("ttyUSB0", root)
    timer.parent.mkdir(parents=True)
    timer.write_text("16\n")
    node = tmp_path / "dev" / "ttyUSB0"
    node.parent.mkdir()
    node.write_text("")
    link = tmp_path / "usb-FTDI_FT232R_USB_UART_A10K8XYZ-if00-port0"
    link.symlink_to(node)
    return root, str(link)


def test_latency_timer_is_read_through_the_by_id_link(sysfs: tuple[Path, str]) -> None:
    root, port = sysfs
    timer = read_timer(port, root)
    assert timer is not None and (timer.tty, timer.found_ms) == ("ttyUSB0", 16)
    assert adapter_timer(port, None, root) == "16 ms (ttyUSB0)"
    assert read_timer("socket://127.0.0.1:1", root) is None
    assert read_timer("/dev/ttyACM0", root) is None  # no latency_timer for that driver


def test_latency_timer_is_set_when_the_rig_asks(sysfs: tuple[Path, str]) -> None:
    root, port = sysfs
    assert adapter_timer(port, 1, root) == "1 ms (ttyUSB0, set from 16 ms)"
    assert timer_file("ttyUSB0", root).read_text().strip() == "1"
    again = set_timer(port, 1, root)
    assert again is not None and again.describe() == "1 ms (ttyUSB0)"


def test_a_timer_that_cannot_be_set_says_how(sysfs: tuple[Path, str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    root, port = sysfs

    def refuse(self: Path, *args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "write_text", refuse)
    with pytest.raises(LatencyTimerError, match="udev rule"):
        set_timer(port, 1, root)
    shown = adapter_timer(port, 1, root)
    assert shown is not None and shown.startswith("not set:") and "stays 16 ms" in shown


# ---------------------------------------------------------------------------- APN


@pytest.fixture
def scripted() -> Iterator[tuple[FakeDevice, Device]]:
    device = FakeDevice()
    channel = Channel(device.path)
    try:
        yield device, Device(L506(channel), channel, "hardware", boot_timeout=5,
                             ready_timeout=5, apn="internet.example")
    finally:
        channel.close()
        device.close()


def test_apn_is_set_before_attach(scripted: tuple[FakeDevice, Device]) -> None:
    device, dev = scripted
    device.on(b"AT\r", crlf(b"OK"))
    device.on(b'AT+CGDCONT=1,"IP","internet.example"\r', crlf(b"OK"))
    device.on(b"AT+CPIN?\r", crlf(b"+CPIN: READY", b"OK"))
    device.on(b"AT+CREG?\r", crlf(b"+CREG: 0,1", b"OK"))
    device.on(b"AT+CGATT?\r", crlf(b"+CGATT: 1", b"OK"))
    dev.wait_ready()
    sent = [e.text for e in dev.channel.transcript.events() if e.kind == "command"]
    assert sent.index('AT+CGDCONT=1,"IP","internet.example"') < sent.index("AT+CGATT?")
    assert not dev.booting


def test_a_refused_apn_is_not_ready(scripted: tuple[FakeDevice, Device]) -> None:
    device, dev = scripted
    device.on(b"AT\r", crlf(b"OK"))
    device.on(b'AT+CGDCONT=1,"IP","internet.example"\r', crlf(b"+CME ERROR: 4"))
    with pytest.raises(NotReady, match=r"check \[dut\] apn"):
        dev.wait_ready()
    assert not dev.booting


# ---------------------------------------------------------------------------- budgets


def _line(raw: bytes) -> Line:
    return Line(raw, raw.decode(), 0, 0)


def _response(final: bytes, result: bytes | None = None) -> Response:
    return Response(command="AT+MIPSTART", echo=None, lines=[], final=_line(final),
                    result=None if result is None else _line(result), timing=Timing(sent_ns=0))


def test_failure_paths_are_not_held_to_budgets() -> None:
    assert failure_path(_response(b"ERROR"))
    assert failure_path(_response(b"+CME ERROR: 4"))
    assert failure_path(_response(b"OK", b"+MIPSTART: FAILURE,5"))
    assert failure_path(_response(b"OK", b"+MPUB: FAILURE"))
    assert not failure_path(_response(b"OK", b"+MIPSTART: SUCCESS"))
    assert not failure_path(_response(b"OK"))


def test_link_waits_scale_on_hardware() -> None:
    dev = Device(at=None, channel=None, kind="hardware",  # type: ignore[arg-type]
                 link_wait_scale=HARDWARE_LINK_WAIT_SCALE)
    assert dev.link_wait(10) == 10 * HARDWARE_LINK_WAIT_SCALE
    assert Device(at=None, channel=None, kind="simulator").link_wait(10) == 10  # type: ignore[arg-type]


def test_environment_shows_the_adapter_link_and_apn() -> None:
    class Config:
        stash = pytest.Stash()
        rootpath = ROOT

    config = Config()
    config.stash[ADAPTER] = "1 ms (ttyUSB0, set from 16 ms)"
    config.stash[IDENTITY] = {}  # the module's identity, as the device fixture stores it
    rig = rig_from_dict({**_hardware(apn="internet"), "broker": {"bind": "0.0.0.0",
                                                                 "dut_host": "192.0.2.10"}})
    dev = Device(at=None, channel=None, kind="hardware")  # type: ignore[arg-type]
    env = environment(config, rig, dev)  # type: ignore[arg-type]
    assert env["USB latency timer"] == "1 ms (ttyUSB0, set from 16 ms)"
    assert (env["APN"], env["Link wait scale"], env["Rig"]) == ("internet", "3", "bench")
    assert env["Broker"] == "listens on 0.0.0.0, dialled as 192.0.2.10"
    assert "Simulator profile" not in env


_BUDGET_CONFTEST = '''
import pytest
from hil.at.exchange import Response, Timing
from hil.at.framer import Line
from hil.at.transcript import Transcript
from hil.dut.device import Device


class FakeChannel:
    baudrate = 115200
    observer = None
    transcript = Transcript()

    def answer(self, command, total_ms, final=b"OK", result=None):
        ns = int(total_ms * 1e6)
        line = None if result is None else Line.of(result, ns)
        r = Response(command, None, [], Line.of(final, ns), line, Timing(0, ns // 2, ns, ns))
        self.observer(r)


@pytest.fixture(scope="session")
def device():
    return Device(at=None, channel=FakeChannel(), kind="hardware")
'''

_BUDGET_TESTS = '''
def test_slow_success(device):
    device.channel.answer("AT+MIPSTART=127.0.0.1,1883", 9000, result=b"+MIPSTART: SUCCESS")


def test_slow_failures(device):
    device.channel.answer("AT+MIPSTART=nowhere.example,1883", 9000,
                          result=b"+MIPSTART: FAILURE,5")
    device.channel.answer("AT+MQTTSSL=1", 900, final=b"+CME ERROR: 4")


def test_slow_boot_probes(device):
    device.booting = True
    try:
        device.channel.answer("AT+CPIN?", 3000)
    finally:
        device.booting = False
'''


def test_only_the_success_path_is_held_to_budgets(pytester: pytest.Pytester,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]))
    pytester.makeconftest(_BUDGET_CONFTEST)
    pytester.makepyfile(test_paths=_BUDGET_TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "no:pytest_embedded", "-p", "no:cacheprovider", "-p", "no:l506",
        "-p", "hil.fixtures.dut",
        "-p", "hil.fixtures.timing", f"--rig={ROOT / 'rigs' / 'simulator.toml'}",
        f"--report-dir={pytester.path / 'run'}", "--budget-mode", "fail")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*FAILED*test_slow_success*"])
    samples = json.loads((pytester.path / "run" / "timings.json").read_text())["samples"]
    budget = {s["test"].split("::")[1] + " " + s["command"]: s["budget_ms"] for s in samples}
    assert budget == {"test_slow_success MIPSTART": 5000, "test_slow_failures MIPSTART": None,
                      "test_slow_failures MQTTSSL": None, "test_slow_boot_probes CPIN?": None}
