"""The module under test as the suites see it: its AT API and the capabilities it declares.

Suites never learn whether they talk to hardware or to the simulator. What only one of them
can do (inject a fault, shorten device timeouts) is a capability; a test that needs one asks
for it through a fixture and is skipped, with the reason, where it is missing.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from hil.at.channel import AtError, Channel, PortLost, UrcTimeout
from hil.l506.api import L506
from hil.masking import mask_imei
from hil.power.protocol import PowerError, PowerProtocol

_READY_URC = re.compile(rb"Call Ready|RDY|\+CREG|\+CEREG|\+CGREG")
#: What a module prints as it boots: proof that a restart happened.
BOOT_URC = re.compile(rb"\A(?:RDY|Call Ready|\+CPIN: ?READY|SMS Ready|PB DONE)")
#: Seconds an AT probe may take while the module boots: short, the boot time paces retries.
_PROBE_S = 0.5


class NotReady(AtError):
    """The module did not boot, or did not register, within its time (DEV-1)."""


class FaultInjection(Protocol):
    """Provoke a failure on purpose (a device whose firmware can be told to fail)."""

    def inject(self, name: str, active: bool = True) -> None: ...


@dataclass
class Device:
    at: L506
    channel: Channel
    kind: Literal["simulator", "hardware"]
    #: Device timeouts (MIPSTART-7's minute, boot) are multiplied by this: 1.0 on hardware.
    time_scale: float = 1.0
    #: The host name or address the module dials to reach the test broker.
    broker_host: str = "127.0.0.1"
    faults: FaultInjection | None = None
    power: PowerProtocol | None = None
    identity: dict[str, str] = field(default_factory=dict)
    #: Seconds from power-on (or reset) until the module answers AT.
    boot_timeout: float = 20.0
    #: Seconds, once it answers, for SIM ready, registration and attach.
    ready_timeout: float = 90.0
    #: Where the AT port is now, given a timeout: set when it may re-enumerate under
    #: another name (hil.dut.portfind); None when its URL stays valid.
    locate: Callable[[float], str] | None = None
    #: The decisions of clauses.md on open points bind this module (a deviation fails the
    #: test): the simulator's reference profile. Elsewhere they are only recorded.
    decisions_binding: bool = False
    #: Access point name set by AT+CGDCONT once the module answers, before it attaches;
    #: None: the module's own.
    apn: str | None = None
    #: Waits for what the network shows late (a drop noticed, a keep-alive ping) × this:
    #: above 1 for a cellular link (`link_wait`).
    link_wait_scale: float = 1.0
    #: True while the module boots and gets ready: probes then are not held to budgets.
    booting: bool = False

    def wait_ready(self, boot_timeout: float | None = None,
                   ready_timeout: float | None = None) -> None:
        """DEV-1: RDY or an answer to AT within the boot time; then SIM, registration, attach.

        A port that vanished while the module boots (USB re-enumeration) is reopened. With
        an APN, AT+CGDCONT sets it as soon as the module answers, before it attaches.
        """
        self.booting = True
        try:
            self._wait_answer(self.boot_timeout if boot_timeout is None else boot_timeout)
            if self.apn is not None:
                self._set_apn(self.apn)
            self._wait_registered(self.ready_timeout if ready_timeout is None
                                  else ready_timeout)
        finally:
            self.booting = False

    def _set_apn(self, apn: str) -> None:
        done = self.at.cgdcont(apn)
        if not done.ok:
            raise NotReady(f'AT+CGDCONT=1,"IP","{apn}" was refused: {done.response.summary()}'
                           " (check [dut] apn)")

    def _wait_answer(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NotReady(f"module did not answer AT within {timeout:g} s (DEV-1)")
            try:
                if self.at.at(timeout=min(_PROBE_S, left)).ok:
                    return
            except PortLost:
                self._reopen_within(deadline)
                continue
            except AtError:
                pass  # silent while booting
            with contextlib.suppress(UrcTimeout, PortLost):
                self.channel.wait_urc(BOOT_URC, timeout=min(_PROBE_S, max(left, 0.01)))

    def _wait_registered(self, timeout: float) -> None:
        at = self.at
        deadline = time.monotonic() + timeout
        seen = "nothing yet"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NotReady(f"module not ready within {timeout:g} s (DEV-1): {seen}")
            try:
                sim = at.cpin(timeout=min(2.0, left)).value
                reg = at.creg(timeout=min(2.0, left)).value
                if reg not in (1, 5):
                    reg = at.cereg(timeout=min(2.0, left)).value  # LTE-only registration
                attached = at.cgatt(timeout=min(5.0, left)).value
                seen = f"SIM {sim}, registration {reg}, attached {attached}"
                if sim == "READY" and reg in (1, 5) and attached:
                    return
            except PortLost:
                self._reopen_within(deadline)
                continue
            except AtError as exc:
                seen = f"no answer: {exc}"
                continue
            # answering but not registered yet: until its next URC, briefly
            with contextlib.suppress(UrcTimeout, PortLost):
                at.channel.wait_urc(_READY_URC, timeout=min(0.5, max(left, 0.01)))

    def _reopen_within(self, deadline: float) -> None:
        with contextlib.suppress(PortLost, LookupError):
            self.reconnect(max(0.01, deadline - time.monotonic()))

    def reconnect(self, timeout: float | None = None) -> None:
        """Reopen the AT port where it is now (it vanished and came back, maybe renamed)."""
        wait = self.boot_timeout if timeout is None else timeout
        url = self.locate(wait) if self.locate is not None else None
        self.channel.reopen(url, timeout=wait)

    def read_identity(self) -> dict[str, str]:
        """DEV-2: ATI and AT+CGMR, for the report; the IMEI's serial part masked."""
        ati = [mask_imei(line) for line in self.at.ati().info]
        identity = {"ATI": " / ".join(ati), "CGMR": " / ".join(self.at.cgmr().info)}
        for line in ati:
            key, sep, value = line.partition(":")
            if sep and key.strip() in ("Manufacturer", "Model", "Revision", "IMEI"):
                identity[key.strip().lower()] = value.strip()
        identity.setdefault("revision", identity["CGMR"].removeprefix("+CGMR:").strip())
        self.identity = identity
        return identity

    def power_cycle(self, boot_timeout: float | None = None) -> None:
        """Cut power, restore it, reopen the port (it vanished) and wait until ready."""
        if self.power is None:
            raise PowerError("this rig has no power control")
        self.power.cycle()
        self.reconnect(boot_timeout)
        self.wait_ready(boot_timeout)

    def soft_reset(self, boot_timeout: float | None = None) -> None:
        """DEV-1 by AT+CFUN=1,1, then proof of the restart, then readiness.

        Proof is a boot URC or the port going away (a USB module re-enumerates, maybe
        before its OK); without either, the module still answering AT could be the old run.
        A module that prints neither has had its boot time to restart in.
        """
        wait = self.boot_timeout if boot_timeout is None else boot_timeout
        self.channel.drain_urcs()
        try:
            answer = self.at.cfun(1, 1)
            if not answer.response.ok:
                raise AtError(f"AT+CFUN=1,1 not accepted: {answer.response.summary()}")
            self.channel.wait_urc(BOOT_URC, timeout=wait)
        except UrcTimeout:
            pass  # no boot URC on this module: it has had its boot time
        except PortLost:
            self.reconnect(boot_timeout)
        self.wait_ready(boot_timeout)
        self.channel.drain_urcs()

    def link_wait(self, seconds: float) -> float:
        """How long to wait for a network event (a drop noticed, a ping seen) that takes
        `seconds` over loopback, on this DUT's link."""
        return seconds * self.link_wait_scale

    def device_seconds(self, seconds: float) -> float:
        """A documented device time, as it passes on this DUT."""
        return seconds * self.time_scale
