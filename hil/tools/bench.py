"""`hil bench`: what the harness costs, measured side by side against the same simulated L506.

The simulated module runs as `hil sim` in its own process on a pseudo-terminal, paced at the
baud rate (10 bits a byte), exactly as the harness would reach a module through a USB-serial
port. Everything is measured in one run:

(a) the AT → OK round trip through the harness (`L506.at()`: channel, reader thread, framer,
    transcript) against a minimal pyserial loop (write `AT\\r`, read until `OK\\r\\n`), in
    interleaved blocks on the same port, zero firmware latency;
(b) the same through pytest-embedded's serial DUT (`write()` + `expect_exact()`), when the
    optional `embedded` extra is installed, in a worker process of its own (its redirect
    thread and listener process would otherwise share this one);
(c) MPUBEX 1360 at QoS 0, back to back against a local mosquitto, zero firmware latency: the
    share of the serial line's limit reached (the bytes that crossed one after another, both
    directions, the echo left out as it overlaps the command, × 10 bits / baud, over the
    time taken);
(d) timestamp accuracy: a second simulator told to wait a known time before answering some
    commands; the harness's sent → final figure against that latency plus the known time
    the bytes take on the line; p50 and p99 of the error. The simulator logs when each of
    its writes returned (`hil sim --write-log`), which splits the error into the harness's
    stamp error (stamp − write of the byte that completed the final line) and the
    simulator's lateness (that write − when it was due);
(e) the CPU the harness's reader thread uses while the line is idle.

It prints a table and writes reports/bench.json. Targets are printed beside the figures; they
are not asserted (`--strict` makes a missed target exit 1). Figures depend on the machine:
on a shared or virtual machine, wake-up latencies of tens to hundreds of microseconds show in
every figure.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import importlib.util
import itertools
import json
import os
import platform
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import serial

from hil.at.transcript import RX
from hil.l506.api import L506
from hil.report.timing import (
    BITS_PER_BYTE,
    echo_bytes,
    line_bytes,
    line_rate_fraction,
    line_seconds,
    stats,
)
from hil.sim.host import read_write_log

SCHEMA = 1
TARGETS = {
    "at_roundtrip_ratio_vs_raw": ("<=", 1.10),
    "at_roundtrip_ratio_vs_pytest_embedded": ("<", 1.0),
    "mpubex_line_rate_fraction": (">=", 0.95),
    "timestamp_error_p99_ms": ("<=", 1.0),
    "idle_reader_cpu_percent": ("<=", 0.5),
}
TARGET_TEXT = {
    "at_roundtrip_ratio_vs_raw": "≤ 1.10× raw pyserial",
    "at_roundtrip_ratio_vs_pytest_embedded": "< 1 (faster than pytest-embedded)",
    "mpubex_line_rate_fraction": "≥ 0.95 of line rate",
    "timestamp_error_p99_ms": "p99 ≤ 1 ms",
    "idle_reader_cpu_percent": "≈ 0 % (≤ 0.5 %)",
}
#: Firmware latency the simulator of (d) is told to inject, ms per command.
DEFAULT_INJECT = "AT=5,MQTTSTATU=2,MQTTCEER=12"
_INJECT_CALLS: Mapping[str, Callable[[L506], Any]] = {
    "AT": lambda at: at.at(),
    "MQTTSTATU": lambda at: at.mqttstatu(),
    "MQTTCEER": lambda at: at.mqttceer(),
}
SIM_TIME_SCALE = 0.05  # boot in 0.25 s
OPEN_TIMEOUT_S = 10.0


class BenchError(RuntimeError):
    """The bench could not measure something it was asked to."""


@dataclass
class BenchOptions:
    baud: int = 115200
    roundtrips: int = 600  # AT → OK per side for (a), split over `blocks`
    blocks: int = 20  # short blocks: a burst of machine noise lands on both sides alike
    embedded_roundtrips: int = 300
    embedded: bool | None = None  # None: when pytest-embedded-serial is installed
    mpubex: int = 40
    timestamp_samples: int = 150  # per command of `inject`
    inject: str = DEFAULT_INJECT
    idle_s: float = 3.0
    out: Path | None = Path("reports", "bench.json")
    noise_s: float = 1.0  # per probe of the machine's noise, before and after; 0: none
    warmup: int = 10


# ---------------------------------------------------------------------------- the simulator


@dataclass
class SimProcess:
    """A `hil sim` process on a pty (symlink `link`), started with a latency model."""

    link: Path
    baud: int
    latency: str
    write_log: Path | None = None  # `hil sim --write-log`: complete once stopped
    proc: subprocess.Popen[str] | None = None
    url: str = ""

    def start(self, timeout: float = OPEN_TIMEOUT_S) -> SimProcess:
        cmd = [sys.executable, "-m", "hil.cli", "sim", "--link", str(self.link),
               "--baud", str(self.baud), "--time-scale", str(SIM_TIME_SCALE),
               "--latency", self.latency]
        if self.write_log is not None:
            cmd += ["--write-log", str(self.write_log)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.proc.stdout
        assert stdout is not None  # a pipe, as asked
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            first = lines.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise BenchError(f"hil sim did not announce its port within {timeout} s") from None
        if not first.startswith("PTY "):
            err = self.stop()
            raise BenchError(f"hil sim failed to start: {first.strip()} {err}".strip())
        self.url = str(self.link)
        _wait_answers(self.url, self.baud, timeout)
        return self

    def stop(self) -> str:
        """Stop the process (SIGTERM, then SIGKILL); returns what it said on stderr."""
        proc, self.proc = self.proc, None
        if proc is None:
            return ""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        err = proc.stderr.read() if proc.stderr else ""
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        return err.strip()

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_answers(url: str, baud: int, timeout: float) -> None:
    """Until the booted module answers AT with OK (it ignores input while booting)."""
    deadline = time.monotonic() + timeout
    with serial.serial_for_url(url, baudrate=baud, timeout=0.2) as port:
        while time.monotonic() < deadline:
            port.reset_input_buffer()
            port.write(b"AT\r")
            got = bytearray()
            until = time.monotonic() + 0.3
            while time.monotonic() < until and b"OK\r\n" not in got:
                got += port.read(max(1, port.in_waiting))
            if b"OK\r\n" in got:
                return
    raise BenchError(f"the simulated module on {url} did not answer AT within {timeout} s")


# ---------------------------------------------------------------------------- (a) round trips


def _ms_list(ns: list[int]) -> list[float]:
    return [x / 1e6 for x in ns]


def harness_roundtrips(url: str, baud: int, count: int, warmup: int) -> tuple[list[int],
                                                                              list[int]]:
    """`count` AT → OK through L506.at(): (as the caller sees it, as the reader stamped it)."""
    at = L506.open(url, baud, open_timeout=OPEN_TIMEOUT_S)
    outer, stamped = [], []
    try:
        for _ in range(warmup):
            at.at()
        for _ in range(count):
            t0 = time.monotonic_ns()
            result = at.at()
            t1 = time.monotonic_ns()
            if not result.ok:
                raise BenchError(f"AT not answered OK: {result.response.summary()}")
            outer.append(t1 - t0)
            final = result.response.timing.final_ns
            assert final is not None
            stamped.append(final - result.response.timing.sent_ns)
    finally:
        at.channel.close()
    return outer, stamped


def raw_roundtrips(url: str, baud: int, count: int, warmup: int) -> list[int]:
    """`count` AT → OK with plain pyserial: write, read until `OK\\r\\n`."""
    out = []
    with serial.serial_for_url(url, baudrate=baud, timeout=1.0) as port:
        for i in range(warmup + count):
            t0 = time.monotonic_ns()
            port.write(b"AT\r")
            got = bytearray()
            while not got.endswith(b"OK\r\n"):
                chunk = port.read(max(1, port.in_waiting))
                if not chunk:
                    raise BenchError(f"raw pyserial: no OK within 1 s; got {bytes(got)!r}")
                got += chunk
            if i >= warmup:
                out.append(time.monotonic_ns() - t0)
    return out


# ---------------------------------------------------------------------------- (b) pytest-embedded


def embedded_available() -> bool:
    return (importlib.util.find_spec("pytest_embedded_serial") is not None
            and importlib.util.find_spec("pytest_embedded") is not None)


def embedded_roundtrips(url: str, baud: int, count: int, warmup: int, idle_s: float,
                        timeout: float = 300.0) -> dict[str, Any]:
    """Run the pytest-embedded measurement in a worker process; its result document."""
    with tempfile.TemporaryDirectory(prefix="hil-bench-embedded-") as tmp:
        out = Path(tmp, "result.json")
        cmd = [sys.executable, "-m", "hil.tools.bench", "--embedded-worker", url, str(baud),
               str(count), str(warmup), str(idle_s), str(out)]
        log = Path(tmp, "worker.log")
        with log.open("w") as sink:
            try:
                done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=sink,
                                      stderr=subprocess.STDOUT, timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                raise BenchError(f"pytest-embedded worker did not finish in {timeout} s") \
                    from None
        if done.returncode != 0 or not out.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise BenchError(f"pytest-embedded worker failed ({done.returncode}):\n{tail}")
        figures = json.loads(out.read_text())
        if not isinstance(figures, dict):
            raise BenchError(f"pytest-embedded worker wrote no figures table to {out}")
        return figures


def _thread_cpu_s(thread: threading.Thread) -> float:
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def _embedded_worker(url: str, baud: int, count: int, warmup: int, idle_s: float,
                     out: Path) -> None:
    """In its own process: pytest-embedded's serial DUT as its plugin wires it (serial
    redirect thread → message queue → listener process → log file → pexpect)."""
    from pytest_embedded.app import App
    from pytest_embedded.dut_factory import _listener_gn, _pexpect_fr_gn
    from pytest_embedded.log import MessageQueueManager, PexpectProcess
    from pytest_embedded_serial.dut import SerialDut
    from pytest_embedded_serial.serial import Serial

    manager = MessageQueueManager()
    manager.start()
    logdir = tempfile.mkdtemp(prefix="pytest-embedded-")
    logfile = os.path.join(logdir, "dut.log")
    msg_queue = manager.MessageQueue()
    listener = _listener_gn(msg_queue, logfile, True, 0, 1)
    reader = _pexpect_fr_gn(logfile, listener)
    port = None
    try:
        pexpect_proc = PexpectProcess(reader)
        port = Serial(msg_queue, port=url, baud=baud)
        dut = SerialDut(serial=port, pexpect_proc=pexpect_proc, msg_queue=msg_queue, app=App(),
                        pexpect_logfile=logfile, test_case_name="hil-bench")
        times = []
        for i in range(warmup + count):
            t0 = time.monotonic_ns()
            dut.write(b"AT\r")
            dut.expect_exact(b"OK\r\n", timeout=5)
            if i >= warmup:
                times.append(time.monotonic_ns() - t0)
        redirect = port._redirect_thread
        cpu0, wall0, proc0 = _thread_cpu_s(redirect), time.monotonic(), time.process_time()
        time.sleep(idle_s)
        cpu1, wall1, proc1 = _thread_cpu_s(redirect), time.monotonic(), time.process_time()
        version = _version("pytest-embedded-serial")
        out.write_text(json.dumps({
            "roundtrip_ns": times,
            "version": version,
            "idle_redirect_thread_cpu_percent": 100 * (cpu1 - cpu0) / (wall1 - wall0),
            "idle_process_cpu_percent": 100 * (proc1 - proc0) / (wall1 - wall0),
        }))
    finally:
        if port is not None:
            port.close()
        listener.terminate()
        listener.join(5)
        reader.close()
        manager.shutdown()


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------- (c) MPUBEX


def mpubex_throughput(url: str, baud: int, count: int, folder: Path) -> dict[str, Any]:
    """`count` × MPUBEX 1360 at QoS 0 back to back against a local mosquitto."""
    from hil.broker import Broker

    size = 1360
    with Broker(folder / "broker") as broker:
        at = L506.open(url, baud, open_timeout=OPEN_TIMEOUT_S)
        try:
            steps = (at.mqttssl(0), at.mconfig("hil-bench"),
                     at.mipstart("127.0.0.1", broker.plain_port), at.mconnect(1, 60))
            for step in steps:
                if not step.ok:
                    raise BenchError(f"MQTT bring-up failed: {step.response.summary()}")
            topic = "hil/bench/mpubex"
            data = bytes(0x41 + i % 26 for i in range(size))
            for _ in range(2):  # warm-up
                at.mpubex(topic, 0, 0, data)
            outcomes = [at.mpubex(topic, 0, 0, data) for _ in range(count)]
            bad = [o for o in outcomes if not o.ok]
            if bad:
                raise BenchError(f"MPUBEX failed: {bad[0].response.summary()}")
            first = outcomes[0].response.timing.sent_ns
            last = outcomes[-1].response.timing.done_ns
            assert last is not None
            tx, rx = line_bytes(at.channel.transcript, first, last)
            echoed = echo_bytes(o.response for o in outcomes)
            at.mdisconnect()
            at.mipclose()
        finally:
            at.channel.close()
    elapsed = (last - first) / 1e9
    publish = stats(o.response.timing.total_ms or 0.0 for o in outcomes)
    return {
        "messages": count,
        "qos": 0,
        "message_bytes": size,
        "seconds": elapsed,
        "messages_per_s": count / elapsed,
        "payload_bytes_per_s": count * size / elapsed,
        "bytes_to_module": tx,
        "bytes_from_module": rx,
        "echo_bytes": echoed,
        "bytes_per_message": (tx + rx - echoed) / count,
        "line_rate_fraction": line_rate_fraction(tx + rx - echoed, baud, elapsed),
        "publish_ms": publish.as_dict() if publish else None,
    }


# ---------------------------------------------------------------------------- (d) timestamps


def parse_inject(spec: str) -> dict[str, float]:
    """`AT=5,MQTTSTATU=2` → {"AT": 5.0, "MQTTSTATU": 2.0} (ms); only commands the bench
    knows how to send."""
    out = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, ms = item.partition("=")
        name = name.strip().upper()
        if not sep or name not in _INJECT_CALLS:
            raise BenchError(f"--inject {item!r}: use NAME=MS with NAME in "
                             f"{', '.join(_INJECT_CALLS)}")
        try:
            out[name] = float(ms)
        except ValueError:
            raise BenchError(f"--inject {item!r}: {ms!r} is not a number") from None
    if not out:
        raise BenchError("--inject names no command")
    return out


@dataclass(frozen=True, slots=True)
class StampSample:
    """One command of (d): when it was sent, when its final code was stamped, and where in
    the session's received byte stream the byte that completed the final line sits."""

    command: str
    sent_ns: int
    final_ns: int
    expected_ms: float  # injected latency + line time of the bytes that crossed
    final_offset: int

    @property
    def error_ms(self) -> float:
        """Measured sent → final minus expected: the headline error of (d), signed."""
        return (self.final_ns - self.sent_ns) / 1e6 - self.expected_ms


@dataclass(frozen=True, slots=True)
class StampRun:
    """The samples of (d) and what is needed to line them up with the simulator's writes:
    every byte the simulator wrote from `start_ns` on is in the session's `rx_bytes`."""

    samples: list[StampSample]
    start_ns: int
    rx_bytes: int


def timestamp_run(url: str, baud: int, inject: Mapping[str, float], samples: int) -> StampRun:
    """`samples` of each injected command, timed by the harness.

    Echo is off, so a command's exchange is: its bytes to the module, the latency, its
    answer's bytes back; the final code is stamped when the chunk holding it arrives.
    """
    at = L506.open(url, baud, open_timeout=OPEN_TIMEOUT_S)
    taken: list[tuple[str, int, int, float, bytes]] = []
    start_ns = time.monotonic_ns()  # the module is silent until the first command below
    try:
        if not at.ate(False).ok:
            raise BenchError("ATE0 refused")
        for _ in range(5):
            at.at()
        for name, latency_ms in inject.items():
            call = _INJECT_CALLS[name]
            for _ in range(samples):
                response = call(at).response
                t = response.timing
                if t.final_ns is None or response.final is None:
                    raise BenchError(f"{name}: no final code: {response.summary()}")
                tx, rx = line_bytes(at.channel.transcript, t.sent_ns, t.final_ns)
                expected = line_seconds(tx + rx, baud) * 1000 + latency_ms
                taken.append((name, t.sent_ns, t.final_ns, expected, response.final.raw))
        at.ate(True)
    finally:
        at.channel.close()
    chunks = at.channel.transcript.chunks(RX)
    return StampRun(
        samples=[StampSample(name, sent, final, expected, completing_offset(chunks, final, raw))
                 for name, sent, final, expected, raw in taken],
        start_ns=start_ns,
        rx_bytes=sum(len(data) for _, data in chunks),
    )


def timestamp_errors(run: StampRun, inject: Mapping[str, float]) -> dict[str, Any]:
    """Measured sent → final against injected latency + line time of the bytes: p50 and
    p99 of the absolute error, per command too."""
    per: dict[str, list[float]] = {}
    for sample in run.samples:
        per.setdefault(sample.command, []).append(sample.error_ms)
    every = [e for errs in per.values() for e in errs]
    absolute = stats(abs(e) for e in every)
    signed = stats(every)
    assert absolute is not None and signed is not None
    return {
        "injected_ms": dict(inject),
        "samples": len(every),
        "abs_error_ms": absolute.as_dict(4),
        "signed_error_ms": signed.as_dict(4),
        "per_command": {name: figures.as_dict(4) for name, errs in per.items()
                        if (figures := stats(abs(e) for e in errs)) is not None},
        "p50_ms": absolute.p50,
        "p99_ms": absolute.p99,
    }


def completing_offset(chunks: Sequence[tuple[int, bytes]], t_ns: int, raw: bytes) -> int:
    """Offset, in the stream the chunks make, of the terminator that completed the line `raw`
    the framer stamped `t_ns`: the first line end after `raw` inside the chunk stamped so.

    The framer completes a line at its first CR or LF, so that byte's arrival is what the
    stamp claims to time.
    """
    index = next((i for i, (stamp, _) in enumerate(chunks) if stamp == t_ns), None)
    if index is None:
        raise BenchError(f"no received chunk stamped {t_ns}")
    start = sum(len(d) for _, d in chunks[:index])
    data = chunks[index][1]
    before = b""  # enough of the earlier chunks to hold a line that began there
    for _, earlier in reversed(chunks[:index]):
        if len(before) >= len(raw):
            break
        before = earlier + before
    lead = start - len(before)
    for m in re.finditer(re.escape(raw) + rb"[\r\n]", before + data):
        end = lead + m.end() - 1
        if end >= start:
            return end
    raise BenchError(f"line {raw!r} does not end in the chunk stamped {t_ns}")


def writes_carrying(offsets: Iterable[int], sizes: Sequence[int]) -> list[int]:
    """For each byte offset of a stream written as writes of `sizes` bytes, in order, the
    index of the write that carried that byte."""
    ends = list(itertools.accumulate(sizes))
    total = ends[-1] if ends else 0
    out = []
    for offset in offsets:
        if not 0 <= offset < total:
            raise ValueError(f"byte {offset} is outside the {total} bytes written")
        out.append(bisect.bisect_right(ends, offset))
    return out


def stamp_decomposition(run: StampRun, writes: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """Split each sample's error at the moment the simulator wrote the completing byte.

    `writes` is the simulator's write log, (time.monotonic_ns() just before the write,
    bytes). Its writes from `run.start_ns` on carried the session's received stream, byte
    for byte in order, so the byte that completed a final line maps to one write. Then
    signed error = stamp error (harness stamp − that write: the harness's own accuracy)
    + write lateness (that write − sent − expected: how late the simulator answered).
    The simulator stamps a write just before making it, so whatever delays the write itself
    counts against the harness, never for it: the stamp error is an upper bound, and one
    below zero (the harness read a byte before it was written) means the streams were lined
    up wrongly.
    """
    session = [(t, n) for t, n in writes if t >= run.start_ns]
    written = sum(n for _, n in session)
    if written != run.rx_bytes:
        raise BenchError(f"the simulator wrote {written} bytes in the session, the harness "
                         f"received {run.rx_bytes}: the streams cannot be lined up")
    carriers = writes_carrying((s.final_offset for s in run.samples), [n for _, n in session])
    stamp_ms, late_ms = [], []
    for sample, index in zip(run.samples, carriers, strict=True):
        written_ns = session[index][0]
        if sample.final_ns < written_ns:
            raise BenchError(f"the harness stamped a final line {written_ns - sample.final_ns} "
                             "ns before the simulator wrote it: the streams are misaligned")
        stamp_ms.append((sample.final_ns - written_ns) / 1e6)
        late_ms.append((written_ns - sample.sent_ns) / 1e6 - sample.expected_ms)
    stamp, late = stats(stamp_ms), stats(late_ms)
    assert stamp is not None and late is not None
    return {
        "timestamp_stamp_error_ms": stamp.as_dict(4),
        "simulator_write_lateness_ms": late.as_dict(4),
    }


def pty_transfer(samples: int = 300) -> dict[str, Any]:
    """One-way latency of a bare pty on this machine (write one byte, select, read): the
    floor under every serial figure here."""
    import select
    import tty

    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        tty.setraw(master)
        out = []
        for _ in range(samples):
            t0 = time.monotonic_ns()
            os.write(master, b"x")
            select.select([slave], [], [], 1.0)
            os.read(slave, 16)
            out.append((time.monotonic_ns() - t0) / 1e6)
    finally:
        os.close(master)
        os.close(slave)
    s = stats(out)
    assert s is not None
    return s.as_dict(4)


# ---------------------------------------------------------------------------- (e) idle CPU


def idle_reader_cpu(url: str, baud: int, idle_s: float) -> dict[str, Any]:
    """CPU of the channel's reader thread (and of the whole process) over `idle_s` seconds
    of silence on the line."""
    at = L506.open(url, baud, open_timeout=OPEN_TIMEOUT_S)
    try:
        if not at.at().ok:
            raise BenchError("AT not answered before the idle measurement")
        name = f"at-reader {url}"
        reader = next((t for t in threading.enumerate() if t.name == name), None)
        if reader is None:
            raise BenchError(f"no reader thread named {name!r}")
        time.sleep(0.3)  # settle
        cpu0, wall0, proc0 = _thread_cpu_s(reader), time.monotonic(), time.process_time()
        time.sleep(idle_s)
        cpu1, wall1, proc1 = _thread_cpu_s(reader), time.monotonic(), time.process_time()
    finally:
        at.channel.close()
    wall = wall1 - wall0
    return {
        "seconds": wall,
        "reader_cpu_ms": (cpu1 - cpu0) * 1000,
        "reader_cpu_percent": 100 * (cpu1 - cpu0) / wall,
        "process_cpu_percent": 100 * (proc1 - proc0) / wall,
    }


# ---------------------------------------------------------------------------- the floor

#: A busy loop whose clock jumps by more than this was not running in between.
NOISE_GAP_NS = 50_000


def _noise_worker(cpu: int, seconds: float) -> dict[str, Any]:
    """Spin on one CPU for `seconds`, keeping the gaps: time the CPU was taken away (by the
    hypervisor, interrupts, other tasks), which every figure here pays when it falls inside."""
    with contextlib.suppress(OSError):  # a CPU we may not pin to: measure where we run
        os.sched_setaffinity(0, {cpu})
    clock = time.monotonic_ns
    last = clock()
    end = last + int(seconds * 1e9)
    gaps = []
    while last < end:
        now = clock()
        if now - last > NOISE_GAP_NS:
            gaps.append(now - last)
        last = now
    return {"cpu": cpu, "lost_percent": 100 * sum(gaps) / (seconds * 1e9),
            "gaps_over_1ms_per_s": sum(g > 1_000_000 for g in gaps) / seconds,
            "longest_gap_ms": max(gaps, default=0) / 1e6}


def machine_noise(seconds: float = 1.0, wakeups: int = 200) -> dict[str, Any]:
    """The machine's own timing floor, measured beside the figures it bounds: per CPU, the
    share of time a busy loop lost and how often it lost over 1 ms; and how late a thread
    asleep for 1 ms wakes up (what the simulator's clock and the reader pay)."""
    cpus = sorted(os.sched_getaffinity(0))
    procs = [subprocess.Popen([sys.executable, "-m", "hil.tools.bench", "--noise-worker", str(cpu),
                               str(seconds)], stdout=subprocess.PIPE, text=True)
             for cpu in cpus]
    per_cpu = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise BenchError("the noise probe did not finish") from None
        if proc.returncode != 0:
            raise BenchError(f"the noise probe failed (exit {proc.returncode})")
        per_cpu.append(json.loads(out))
    late = []
    for _ in range(wakeups):
        due = time.monotonic_ns() + 1_000_000
        time.sleep(0.001)
        late.append((time.monotonic_ns() - due) / 1e6)
    wake = stats(late)
    assert wake is not None
    return {"per_cpu": per_cpu, "sleep_1ms_lateness_ms": wake.as_dict(4)}


# ---------------------------------------------------------------------------- the run


@dataclass
class _Notes:
    errors: dict[str, str] = field(default_factory=dict)

    @contextlib.contextmanager
    def item(self, name: str) -> Iterator[None]:
        try:
            yield
        except (BenchError, OSError, serial.SerialException, RuntimeError) as exc:
            self.errors[name] = f"{type(exc).__name__}: {exc}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _p50(values: list[float]) -> float | None:
    s = stats(values)
    return None if s is None else s.p50


def run_bench(opts: BenchOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure (a)-(e); return the bench.json document (also written to `opts.out`)."""
    notes = _Notes()
    load_before = _loadavg()
    noise: dict[str, Any] = {}
    if opts.noise_s > 0:
        with notes.item("noise_before"):
            say("  machine noise, before")
            noise["before"] = machine_noise(opts.noise_s)
    use_embedded = embedded_available() if opts.embedded is None else opts.embedded
    if use_embedded and not embedded_available():
        raise BenchError("pytest-embedded-serial is not installed: pip install -e '.[embedded]'")
    per_block = max(1, opts.roundtrips // max(1, opts.blocks))
    raw: list[int] = []
    outer: list[int] = []
    stamped: list[int] = []
    embedded: dict[str, Any] | None = None
    mpubex: dict[str, Any] | None = None
    idle: dict[str, Any] | None = None
    stamps: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        folder = Path(tmp)
        say(f"hil bench: simulated L506 (hil sim, own process) on a pty at {opts.baud} baud")
        with SimProcess(folder / "tty-zero", opts.baud, "off") as sim:
            with notes.item("roundtrip"):
                say(f"  (a) AT round trips: {opts.blocks} blocks × {per_block} each side")
                for block in range(opts.blocks):
                    sides = ["harness", "raw"] if block % 2 == 0 else ["raw", "harness"]
                    for side in sides:
                        if side == "raw":
                            raw += raw_roundtrips(sim.url, opts.baud, per_block, opts.warmup)
                        else:
                            o, s = harness_roundtrips(sim.url, opts.baud, per_block, opts.warmup)
                            outer += o
                            stamped += s
            if use_embedded:
                with notes.item("pytest_embedded"):
                    say(f"  (b) pytest-embedded expect(): {opts.embedded_roundtrips} round trips")
                    embedded = embedded_roundtrips(sim.url, opts.baud, opts.embedded_roundtrips,
                                                   opts.warmup, min(opts.idle_s, 2.0))
            with notes.item("idle"):
                say(f"  (e) idle reader CPU over {opts.idle_s:g} s")
                idle = idle_reader_cpu(sim.url, opts.baud, opts.idle_s)
            with notes.item("mpubex"):
                say(f"  (c) MPUBEX 1360 × {opts.mpubex} at QoS 0")
                mpubex = mpubex_throughput(sim.url, opts.baud, opts.mpubex, folder)
        inject = parse_inject(opts.inject)
        spec = "*=0," + ",".join(f"{k}={v:g}" for k, v in inject.items())
        write_log = folder / "sim-writes.log"
        stamp_run: StampRun | None = None
        with notes.item("timestamps"):
            say(f"  (d) timestamps against injected latency {spec}")
            with SimProcess(folder / "tty-inject", opts.baud, spec, write_log) as sim:
                stamp_run = timestamp_run(sim.url, opts.baud, inject, opts.timestamp_samples)
            stamps = timestamp_errors(stamp_run, inject)
        if stamps is not None and stamp_run is not None:
            with notes.item("timestamp_decomposition"):
                stamps.update(stamp_decomposition(stamp_run, read_write_log(write_log)))
    pty = pty_transfer()
    if opts.noise_s > 0:
        with notes.item("noise_after"):
            say("  machine noise, after")
            noise["after"] = machine_noise(opts.noise_s)

    raw_ms, outer_ms, stamped_ms = _ms_list(raw), _ms_list(outer), _ms_list(stamped)
    embedded_ms = _ms_list(embedded["roundtrip_ns"]) if embedded else []

    def summary(values: list[float]) -> dict[str, Any] | None:
        s = stats(values)
        return None if s is None else s.as_dict(4)

    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "platform": platform.platform(),
                 "cpus": os.cpu_count(), "pyserial": _version("pyserial"),
                 "loadavg": {"before": load_before, "after": _loadavg()}},
        "setup": {
            "baud": opts.baud,
            "bits_per_byte": BITS_PER_BYTE,
            "simulator": "hil sim in its own process, on a pty, output and input paced at "
                         "the baud rate; zero firmware latency for (a), (b), (c), (e)",
            "roundtrips_per_side": len(raw),
            "blocks": opts.blocks,
        },
        "at_roundtrip_ratio_vs_raw": _ratio(_p50(outer_ms), _p50(raw_ms)),
        "at_roundtrip_ratio_vs_pytest_embedded": _ratio(_p50(outer_ms), _p50(embedded_ms)),
        "mpubex_line_rate_fraction": None if mpubex is None else mpubex["line_rate_fraction"],
        "timestamp_error_p99_ms": None if stamps is None else stamps["p99_ms"],
        "timestamp_stamp_error_p99_ms": _stamp_p99(stamps),
        "idle_reader_cpu_percent": None if idle is None else idle["reader_cpu_percent"],
        "roundtrip_ms": {
            "definition": "AT\\r written → OK\\r\\n read, as the caller sees it; ratios are "
                          "of medians (p50)",
            "raw_pyserial": summary(raw_ms),
            "harness": summary(outer_ms),
            "harness_stamped": summary(stamped_ms),
            "pytest_embedded": summary(embedded_ms),
            "pytest_embedded_version": None if embedded is None else embedded["version"],
        },
        "mpubex": mpubex,
        "timestamps": stamps,
        "idle": {
            **(idle or {}),
            "pytest_embedded_redirect_thread_cpu_percent":
                None if embedded is None else embedded["idle_redirect_thread_cpu_percent"],
        },
        "pty_one_way_ms": pty,
        "machine_noise": noise,
        "errors": notes.errors,
    }
    doc["targets"] = {k: f"{op} {v:g}" for k, (op, v) in TARGETS.items()}
    doc["met"] = {k: _met(doc[k], op, v) for k, (op, v) in TARGETS.items()}
    if opts.out is not None:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc


def _stamp_p99(stamps: Mapping[str, Any] | None) -> float | None:
    """p99 of the harness's own stamp error in (d), where the decomposition was made."""
    split = None if stamps is None else stamps.get("timestamp_stamp_error_ms")
    return None if split is None else split["p99"]


def _loadavg() -> list[float] | None:
    """1, 5 and 15 minute load averages: how busy the machine was (None where unknown)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _met(value: float | None, op: str, target: float) -> bool | None:
    if value is None:
        return None
    return {"<=": value <= target, "<": value < target, ">=": value >= target}[op]


# ---------------------------------------------------------------------------- the table


def _f(value: float | None, fmt: str = ".3f", unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{fmt}}{unit}"


def table(doc: Mapping[str, Any]) -> str:
    """The bench's figures as a plain-text table."""
    rt = doc["roundtrip_ms"]
    rows: list[tuple[str, str, str, str]] = []

    def verdict(key: str) -> str:
        met = doc["met"].get(key)
        return "-" if met is None else ("met" if met else "MISSED")

    def rt_row(label: str, s: Mapping[str, float] | None) -> None:
        figure = "n/a" if s is None else (
            f"p50 {s['p50']:.3f} ms  p95 {s['p95']:.3f}  p99 {s['p99']:.3f}  (n={s['n']})")
        rows.append((label, figure, "", ""))

    rt_row("(a) AT→OK raw pyserial", rt["raw_pyserial"])
    rt_row("(a) AT→OK harness L506.at()", rt["harness"])
    rt_row("    harness stamped sent→OK", rt["harness_stamped"])
    rows.append(("(a) ratio harness / raw (p50)", _f(doc["at_roundtrip_ratio_vs_raw"], ".3f", "×"),
                 TARGET_TEXT["at_roundtrip_ratio_vs_raw"], verdict("at_roundtrip_ratio_vs_raw")))
    rt_row("(b) AT→OK pytest-embedded expect()", rt["pytest_embedded"])
    rows.append(("(b) ratio harness / pytest-embedded",
                 _f(doc["at_roundtrip_ratio_vs_pytest_embedded"], ".3f", "×"),
                 TARGET_TEXT["at_roundtrip_ratio_vs_pytest_embedded"],
                 verdict("at_roundtrip_ratio_vs_pytest_embedded")))
    m = doc["mpubex"]
    if m:
        rows.append(("(c) MPUBEX 1360 QoS 0",
                     f"{m['messages_per_s']:.2f} msg/s  {m['payload_bytes_per_s']:.0f} B/s  "
                     f"{m['bytes_per_message']:.0f} B/msg on the line", "", ""))
    rows.append(("(c) share of line rate", _f(doc["mpubex_line_rate_fraction"], ".3f"),
                 TARGET_TEXT["mpubex_line_rate_fraction"], verdict("mpubex_line_rate_fraction")))
    ts = doc["timestamps"]
    if ts:
        s = ts["signed_error_ms"]
        rows.append(("(d) stamp error vs injected+line",
                     f"|err| p50 {ts['p50_ms']:.3f} ms  p99 {ts['p99_ms']:.3f} ms  "
                     f"(signed mean {s['mean']:+.3f}, n={ts['samples']})", "", ""))
    rows.append(("(d) timestamp error p99", _f(doc["timestamp_error_p99_ms"], ".3f", " ms"),
                 TARGET_TEXT["timestamp_error_p99_ms"], verdict("timestamp_error_p99_ms")))
    for label, key in (("    harness stamp − sim's write", "timestamp_stamp_error_ms"),
                       ("    sim's write − due (lateness)", "simulator_write_lateness_ms")):
        split = (ts or {}).get(key)
        rows.append((label, "n/a" if split is None else (
            f"p50 {split['p50']:.3f} ms  p95 {split['p95']:.3f}  p99 {split['p99']:.3f}  "
            f"(min {split['min']:+.3f})"), "", ""))
    pty = doc["pty_one_way_ms"]
    rows.append(("    bare pty one-way (floor)",
                 f"p50 {pty['p50']:.3f} ms  p99 {pty['p99']:.3f} ms", "", ""))
    for when, probe in doc.get("machine_noise", {}).items():
        lost = "  ".join(f"cpu{c['cpu']} {c['lost_percent']:.1f} %" for c in probe["per_cpu"])
        gaps = max(c["gaps_over_1ms_per_s"] for c in probe["per_cpu"])
        wake = probe["sleep_1ms_lateness_ms"]
        rows.append((f"    machine noise ({when})",
                     f"CPU lost {lost}; gaps > 1 ms up to {gaps:.1f}/s; 1 ms sleep wakes "
                     f"late p50 {wake['p50']:.3f} p99 {wake['p99']:.3f} ms", "", ""))
    rows.append(("(e) idle reader thread CPU", _f(doc["idle_reader_cpu_percent"], ".3f", " %"),
                 TARGET_TEXT["idle_reader_cpu_percent"], verdict("idle_reader_cpu_percent")))
    pe = doc["idle"].get("pytest_embedded_redirect_thread_cpu_percent")
    if pe is not None:
        rows.append(("    pytest-embedded redirect thread", _f(pe, ".1f", " %"), "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    head = ("item", "figure", "target", "")
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    for name, error in doc["errors"].items():
        lines.append(f"not measured: {name}: {error}")
    note = _stamp_note(doc)
    if note:
        lines.append(note)
    return "\n".join(lines)


def _stamp_note(doc: Mapping[str, Any]) -> str | None:
    """When (d) is missed, say which side of the split holds the miss and what this
    machine's own wake-ups cost, so the miss is read against the floor that bounds it."""
    ts = doc.get("timestamps") or {}
    stamp, late = ts.get("timestamp_stamp_error_ms"), ts.get("simulator_write_lateness_ms")
    probes = doc.get("machine_noise", {}).values()
    if doc["met"].get("timestamp_error_p99_ms") is not False or not stamp or not late:
        return None
    text = (f"note: (d) missed: the harness's own stamp error p99 is {stamp['p99']:.3f} ms, "
            f"the simulator answered late by up to {late['p99']:.3f} ms (p99)")
    wakes = [p["sleep_1ms_lateness_ms"]["p99"] for p in probes]
    if wakes:
        text += (f"; on this machine a thread asleep for 1 ms wakes up to {max(wakes):.3f} ms "
                 "late (p99), which the simulator's clock pays too")
    return text


# ---------------------------------------------------------------------------- command line


HELP = "measure the harness against raw pyserial and pytest-embedded on the sim"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = BenchOptions()
    parser.add_argument("--baud", type=int, default=d.baud, help="UART rate (default 115200)")
    parser.add_argument("--roundtrips", type=int, default=d.roundtrips,
                        help=f"AT round trips per side for (a) (default {d.roundtrips})")
    parser.add_argument("--blocks", type=int, default=d.blocks,
                        help=f"interleaved blocks for (a) (default {d.blocks})")
    parser.add_argument("--embedded-roundtrips", type=int, default=d.embedded_roundtrips,
                        help=f"round trips for (b) (default {d.embedded_roundtrips})")
    parser.add_argument("--no-embedded", action="store_true",
                        help="skip (b) even when pytest-embedded-serial is installed")
    parser.add_argument("--mpubex", type=int, default=d.mpubex,
                        help=f"MPUBEX messages for (c) (default {d.mpubex})")
    parser.add_argument("--timestamp-samples", type=int, default=d.timestamp_samples,
                        help=f"samples per command for (d) (default {d.timestamp_samples})")
    parser.add_argument("--inject", default=d.inject, metavar="NAME=MS,...",
                        help=f"latency the simulator of (d) injects (default {d.inject})")
    parser.add_argument("--idle", type=float, default=d.idle_s, metavar="S",
                        help=f"seconds of idle line for (e) (default {d.idle_s:g})")
    parser.add_argument("--noise", type=float, default=d.noise_s, metavar="S",
                        help=f"seconds of each probe of the machine's own noise, before and "
                             f"after (default {d.noise_s:g}; 0 skips them)")
    parser.add_argument("--out", type=Path, default=d.out,
                        help=f"where the JSON goes (default {d.out})")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a target is missed")


def main(args: argparse.Namespace) -> int:
    opts = BenchOptions(
        baud=args.baud,
        roundtrips=args.roundtrips,
        blocks=args.blocks,
        embedded_roundtrips=args.embedded_roundtrips,
        embedded=False if args.no_embedded else None,
        mpubex=args.mpubex,
        timestamp_samples=args.timestamp_samples,
        inject=args.inject,
        idle_s=args.idle,
        noise_s=args.noise,
        out=args.out,
    )
    try:
        doc = run_bench(opts, say=lambda text: print(text, file=sys.stderr, flush=True))
    except BenchError as exc:
        print(f"hil bench: {exc}", file=sys.stderr)
        return 2
    print(table(doc))
    print(f"\nwritten: {opts.out}")
    if args.strict and any(v is False for v in doc["met"].values()):
        return 1
    return 0


def worker_main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "--noise-worker":
        print(json.dumps(_noise_worker(int(argv[1]), float(argv[2]))))
        return 0
    if len(argv) == 7 and argv[0] == "--embedded-worker":
        url, baud, count, warmup, idle_s, out = argv[1:]
        _embedded_worker(url, int(baud), int(count), int(warmup), float(idle_s), Path(out))
        return 0
    print("usage: hil bench (this module's own entry is for its worker)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
