"""Fault campaigns: each fault provoked at a random point, many times, and what followed.

A trial: bring the module to a known state, arm one fault at a random byte of an exchange
(the relay counts the bytes), run the exchange as a test would, and classify what the
harness raised with hil.report.categories, as a run's report would. Then the recovery a run does
before its next test (restart a dead broker, `Recovery.prepare` after a failure), timed,
and that next test: connect, publish at QoS 1, the peer gets it. Every step runs under a
watchdog: a step that outlives its bound is a hang.

What each fault must be reported as is in `EXPECTED`. A trial whose step passed although
its fault hit the line is a misreport too (the fault went unnoticed), except for line
noise that touched no byte that mattered: the step then checked the data end to end
(`no effect`).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from hil.at.channel import AtError
from hil.dut.recovery import DutLost
from hil.l506.api import L506, CommandResult
from hil.reliability.relay import TO_DCE, TO_DTE
from hil.reliability.stand import Stand
from hil.report.categories import DUT_LOST, FIRMWARE_DEFECT, INFRASTRUCTURE, classify
from hil.report.timing import percentile

#: Seconds a step may take beyond its own timeouts before it counts as a hang.
HANG_MARGIN_S = 10.0
STEP_BOUND_S = 15.0

EXPECTED: dict[str, frozenset[str | None]] = {
    "silent_mid_command": frozenset({FIRMWARE_DEFECT.name}),
    "silent_mid_mpubex_data": frozenset({FIRMWARE_DEFECT.name}),
    "power_cut_mid_command": frozenset({INFRASTRUCTURE.name}),
    "power_cut_mid_publish": frozenset({INFRASTRUCTURE.name}),
    "broker_killed": frozenset({INFRASTRUCTURE.name}),
    "port_vanished": frozenset({INFRASTRUCTURE.name}),
    # the harness cannot tell noise from a module answering wrongly: it says what it saw
    "line_noise": frozenset({FIRMWARE_DEFECT.name, None}),
    "silent_for_good": frozenset({DUT_LOST.name}),
}
KINDS = tuple(EXPECTED)

#: A trial's fault: `arm` sets the fault on the line and says where it will strike; `step`
#: is what a test does meanwhile.
Fault = tuple[Callable[[], str], Callable[[], object]]


class HarnessHang(RuntimeError):
    """A step of the harness did not return within its bound."""


@dataclass
class Trial:
    kind: str
    index: int
    point: str  # where the fault was armed
    reported: str | None = None  # category, None: the step passed
    message: str = ""
    hang: bool = False
    provoked: bool = True  # the fault's byte was reached
    recovered: bool = False
    recovery_s: float | None = None
    next_test: str = ""

    @property
    def misreported(self) -> bool:
        return self.reported not in EXPECTED[self.kind] or self.hang


def bounded(step: Callable[[], object], seconds: float) -> BaseException | None:
    """Run `step` on a thread; its exception, or None; HarnessHang if it outlives `seconds`."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            step()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, name="trial-step", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise HarnessHang(f"step did not return within {seconds:g} s")
    return outcome[0]


def category_of(exc: BaseException, broker_running: bool) -> str:
    """As a run's report says it (fixtures/results.py): a failure while the broker is dead
    is the bench's, whatever the test saw."""
    message = f"{type(exc).__name__}: {exc}"
    if not broker_running:
        message = f"BenchFault: the broker died during the test; the test saw: {message}"
    return classify(message)


def _ok(result: CommandResult, name: str) -> None:
    if not result.ok:
        raise AssertionError(f"{name} failed: {result.response.summary()}")


def _rx_bytes(stand: Stand, step: Callable[[], object]) -> int:
    """Bytes the module sends in answer to `step`, measured on the line (a dry run)."""
    before = stand.relay.counts().passed[TO_DTE]
    step()
    return max(1, stand.relay.counts().passed[TO_DTE] - before)


class Campaign:
    """Trials of every kind on one stand; `rng` decides every random point."""

    def __init__(self, stand: Stand, seed: int) -> None:
        self.stand = stand
        self.rng = random.Random(seed)
        self.recovery = stand.recovery()
        self._after: list[threading.Thread] = []

    @property
    def at(self) -> L506:
        return self.stand.device.at

    def run(self, kind: str, index: int) -> Trial:
        stand = self.stand
        if not stand.broker.running:
            stand.broker.restart()
        self.recovery.prepare()
        stand.relay.clear()
        fault: Callable[[int], Fault] = getattr(self, f"_{kind}")
        arm, step = fault(index)
        trial = Trial(kind, index, arm())
        exc = bounded(step, STEP_BOUND_S + HANG_MARGIN_S)
        trial.provoked = stand.relay.disarm() == 0
        for thread in self._after:  # faults that play out on their own (kill, replug)
            thread.join(10)
        self._after.clear()
        if exc is not None:
            trial.reported = category_of(exc, stand.broker.running)
            trial.message = f"{type(exc).__name__}: {exc}"[:300]
        start = time.monotonic()
        failure = None if exc is None else trial.message
        lost = bounded(lambda: self._recover(failure), STEP_BOUND_S + HANG_MARGIN_S)
        trial.recovery_s = time.monotonic() - start
        if isinstance(lost, DutLost):
            trial.reported = DUT_LOST.name
            trial.message = str(lost)[:300]
            self._repair()
        elif lost is not None:
            trial.next_test = f"recovery failed: {type(lost).__name__}: {lost}"
            self._repair()
            return trial
        if kind == "silent_for_good":
            trial.recovery_s = None  # the module never came back: no recovery to time
        nxt = bounded(lambda: self._next_test(index), STEP_BOUND_S + HANG_MARGIN_S)
        trial.recovered = nxt is None
        trial.next_test = "passed" if nxt is None else f"{type(nxt).__name__}: {nxt}"[:300]
        return trial

    def _recover(self, failure: str | None) -> None:
        """What a run does before the next test: a dead broker restarted, the ladder."""
        if not self.stand.broker.running:
            self.stand.broker.restart()
        self.recovery.prepare(after_failure=failure)

    def _repair(self) -> None:
        """The bench mended by hand after DUT lost: line cleared, power cycled."""
        self.stand.relay.clear()
        self.stand.device.power_cycle()
        self.recovery = self.stand.recovery()

    def _next_test(self, index: int) -> None:
        peer = self.stand.peer()
        try:
            topic = f"rel/next/{index}"
            peer.subscribe(topic, 1)
            self.stand.connect(f"rel-next-{index}")
            payload = f"after trial {index}".encode()
            _ok(self.at.mpub(topic, 1, 0, payload), "MPUB")
            peer.expect(topic, payload, timeout=5.0)
        finally:
            peer.close()

    # ------------------------------------------------------------ the faults

    def _payload(self, low: int, high: int) -> bytes:
        alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 ,.-"
        return bytes(self.rng.choice(alphabet) for _ in range(self.rng.randint(low, high)))

    def _mpub_command(self, index: int) -> tuple[str, bytes, int]:
        """A publish to send: topic, payload, and its command's length on the line."""
        topic = f"rel/pub/{index}"
        payload = self._payload(1, 200)
        return topic, payload, len(f"AT+MPUB={topic},1,0,".encode()) + len(payload) + 1

    def _some_command(self, index: int) -> tuple[Callable[[], None], int]:
        """A command a test sends, and its length on the line (with its CR)."""
        at = self.at
        topic, payload, mpub_len = self._mpub_command(index)
        qos = self.rng.randint(0, 2)
        sub = f"rel/sub/{index}"
        return self.rng.choice([
            (lambda: _ok(at.mqttstatu(), "MQTTSTATU"), len("AT+MQTTSTATU\r")),
            (lambda: _ok(at.mqttceer(), "MQTTCEER"), len("AT+MQTTCEER\r")),
            (lambda: _ok(at.ati(), "ATI"), len("ATI\r")),
            (lambda: _ok(at.msub(sub, qos), "MSUB"), len(f"AT+MSUB={sub},{qos}\r")),
            (lambda: _ok(at.mpub(topic, 1, 0, payload), "MPUB"), mpub_len),
        ])

    def _silent_mid_command(self, index: int) -> Fault:
        self.stand.connect(f"rel-silent-{index}")
        command, _ = self._some_command(index)
        n = _rx_bytes(self.stand, command)

        def arm() -> str:
            # not at the last byte: the answer ends in CR LF and a lone CR ends a line, so a
            # silence that takes only the final LF takes nothing a command waits for
            k = self.rng.randrange(max(1, n - 1))
            relay = self.stand.relay
            relay.after(TO_DTE, k, lambda: relay.mute(TO_DTE, TO_DCE))
            return f"module silent from byte {k} of a {n}-byte answer"

        return arm, command

    def _silent_mid_mpubex_data(self, index: int) -> Fault:
        self.stand.connect(f"rel-silentx-{index}")
        data = self._payload(16, 1360)
        topic = f"rel/pubex/{index}"
        head = len(f"AT+MPUBEX={topic},1,0,{len(data)}\r")

        def arm() -> str:
            k = self.rng.randrange(len(data))
            relay = self.stand.relay
            relay.after(TO_DCE, head + k, lambda: relay.mute(TO_DTE, TO_DCE))
            return f"module silent at data byte {k} of {len(data)}"

        return arm, lambda: _ok(self.at.mpubex(topic, 1, 0, data), "MPUBEX")

    def _power_cut(self, index: int, publish: bool) -> Fault:
        self.stand.connect(f"rel-cut-{index}")
        if publish:
            data = self._payload(16, 1360)
            topic = f"rel/pubex/{index}"
            n = len(f"AT+MPUBEX={topic},1,0,{len(data)}\r") + len(data)
            step = lambda: _ok(self.at.mpubex(topic, 1, 0, data), "MPUBEX")  # noqa: E731
        else:
            topic, payload, n = self._mpub_command(index)
            step = lambda: _ok(self.at.mpub(topic, 1, 0, payload), "MPUB")  # noqa: E731

        def arm() -> str:
            k = self.rng.randrange(n)
            self.stand.relay.after(TO_DCE, k, self.stand.sim.power_off)
            what = "MPUBEX command and data" if publish else "MPUB command"
            return f"power cut at byte {k} of a {n}-byte {what}"

        return arm, step

    def _power_cut_mid_command(self, index: int) -> Fault:
        return self._power_cut(index, publish=False)

    def _power_cut_mid_publish(self, index: int) -> Fault:
        return self._power_cut(index, publish=True)

    def _broker_killed(self, index: int) -> Fault:
        stand = self.stand
        stand.connect(f"rel-kill-{index}")
        topic, payload, n = self._mpub_command(index)
        peer = stand.peer()
        peer.subscribe(topic, 1)

        def kill() -> None:
            thread = threading.Thread(target=stand.broker.kill, daemon=True)
            self._after.append(thread)
            thread.start()

        def arm() -> str:
            k = self.rng.randrange(n)
            stand.relay.after(TO_DCE, k, kill)
            return f"broker killed at byte {k} of a {n}-byte MPUB command"

        def step() -> None:
            try:
                for i in range(3):  # the test goes on using the broker after the kill
                    body = payload + b"/%d" % i
                    _ok(self.at.mpub(topic, 1, 0, body), "MPUB")
                    peer.expect(topic, body, timeout=2.0)
            finally:
                peer.close()

        return arm, step

    def _port_vanished(self, index: int) -> Fault:
        stand = self.stand
        stand.connect(f"rel-vanish-{index}")
        command, n = self._some_command(index)
        back_after = self.rng.uniform(0.1, 0.5)

        def unplug() -> None:
            stand.sim.unplug()
            timer = threading.Timer(back_after, stand.sim.plug)
            self._after.append(timer)
            timer.start()

        def arm() -> str:
            k = self.rng.randrange(n)
            stand.relay.after(TO_DCE, k, unplug)
            return f"port gone at byte {k} of a command, back after {back_after:.2f} s"

        return arm, command

    def _line_noise(self, index: int) -> Fault:
        stand = self.stand
        stand.connect(f"rel-noise-{index}")
        topic, payload, n_out = self._mpub_command(index)
        peer = stand.peer()
        peer.subscribe("rel/pub/#", 1)
        n_in = _rx_bytes(stand, lambda: _ok(self.at.mpub(topic, 1, 0, payload), "MPUB"))
        peer.take_all(wait=0.3)  # the dry run's message

        def arm() -> str:
            direction = self.rng.choice((TO_DCE, TO_DTE))
            k = self.rng.randrange(n_out if direction == TO_DCE else n_in)
            how = self.rng.choice(("drop", "corrupt"))
            count = self.rng.randint(1, 3)
            stand.relay.after(direction, k, lambda: stand.relay.damage(direction, how, count))
            side = "to the module" if direction == TO_DCE else "from the module"
            return f"{how} {count} byte(s) at byte {k} {side}"

        def step() -> None:
            try:
                _ok(self.at.mpub(topic, 1, 0, payload), "MPUB")
                peer.expect(topic, payload, timeout=1.0)  # the data, checked end to end
            finally:
                peer.close()

        return arm, step

    def _silent_for_good(self, index: int) -> Fault:
        command = lambda: _ok(self.at.mqttstatu(), "MQTTSTATU")  # noqa: E731
        n = _rx_bytes(self.stand, command)

        def arm() -> str:
            k = self.rng.randrange(n)
            relay = self.stand.relay
            relay.after(TO_DTE, k, lambda: relay.mute(TO_DTE, TO_DCE, for_good=True))
            return f"module silent for good from byte {k} of a {n}-byte answer"

        return arm, command


@dataclass
class KindFigures:
    kind: str
    expected: list[str]
    trials: int = 0
    recovered: int = 0
    hangs: int = 0
    misreported: int = 0
    not_provoked: int = 0
    no_effect: int = 0
    reported: dict[str, int] = field(default_factory=dict)
    recovery_s_p50: float | None = None
    recovery_s_p99: float | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)  # misreports, unrecovered


def figures(kind: str, trials: list[Trial]) -> KindFigures:
    out = KindFigures(kind, sorted(str(c) for c in EXPECTED[kind]))
    times = sorted(t.recovery_s for t in trials if t.recovery_s is not None)
    for t in trials:
        out.trials += 1
        out.recovered += t.recovered
        out.hangs += t.hang
        out.misreported += t.misreported
        out.not_provoked += not t.provoked
        out.no_effect += t.reported is None and not t.misreported
        key = t.reported or "passed"
        out.reported[key] = out.reported.get(key, 0) + 1
        if (t.misreported or not t.recovered or not t.provoked) and len(out.examples) < 5:
            out.examples.append(asdict(t))
    if times:
        out.recovery_s_p50 = round(percentile(times, 50), 3)
        out.recovery_s_p99 = round(percentile(times, 99), 3)
    return out


def campaign(stand: Stand, kinds: tuple[str, ...], trials: int, seed: int,
             progress: Callable[[str], None] = lambda _: None) -> list[KindFigures]:
    """`trials` of each kind, in an interleaved order (a fault after any other fault)."""
    run = Campaign(stand, seed)
    order = [(kind, i) for i in range(trials) for kind in kinds]
    done: dict[str, list[Trial]] = {k: [] for k in kinds}
    for kind, i in order:
        try:
            trial = run.run(kind, i)
        except HarnessHang as exc:
            trial = Trial(kind, i, "?", message=str(exc), hang=True)
            done[kind].append(trial)
            break  # a stuck harness thread holds the port: the campaign cannot go on
        except (AtError, AssertionError, DutLost) as exc:  # set-up before the fault failed
            trial = Trial(kind, i, "set-up", message=f"{type(exc).__name__}: {exc}"[:300])
            run._repair()
        done[kind].append(trial)
        if trial.misreported or not trial.recovered or not trial.provoked:
            progress(f"{kind} #{i}: {trial.point}: reported {trial.reported}, "
                     f"next test {trial.next_test} ({trial.message[:120]})")
    return [figures(kind, done[kind]) for kind in kinds]
