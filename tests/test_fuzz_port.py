"""The fuzzer's oracles through a real port: the simulator on its pty, a real mosquitto
behind the recording tap; each case after a power cycle. They agree with the virtual
bench: a bug's case is rejected by the same oracle, the firmware without it passes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.broker import Broker
from hil.fuzz.engine import CaseRun
from hil.fuzz.port import PortModule
from hil.sim.firmware import Firmware
from hil.sim.host import SimConfig, Simulator
from hil.sim.profiles import V32
from tests.fuzzcases import SHOWN_BY

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with Broker(tmp_path_factory.mktemp("broker")) as started:
        yield started


def _port_module(tmp_path: Path, broker: Broker, bugs: frozenset[str]):  # type: ignore[no-untyped-def]
    simulator = Simulator(Firmware(V32, time_scale=0.2, bugs=bugs),
                          SimConfig(link=tmp_path / "tty"))
    simulator.power_on()

    def cycle() -> None:
        simulator.power_off()
        simulator.power_on()

    module = PortModule(str(tmp_path / "tty"), (broker.host, broker.plain_port),
                        power_cycle=cycle, boot_timeout=10)
    return simulator, module


@pytest.mark.parametrize("bug", ["tab_restarts", "empty_qos1_mpub_dropped",
                                 "statu_from_ceer", "urc_lost_in_prompt"])
def test_a_bugs_case_is_rejected_on_a_port_as_on_the_virtual_bench(
    bug: str, broker: Broker, tmp_path: Path
) -> None:
    case, oracle = SHOWN_BY[bug]
    for bugs, expected in ((frozenset({bug}), oracle), (frozenset(), None)):
        simulator, module = _port_module(tmp_path / (bug + str(len(bugs))), broker, bugs)
        try:
            violation = CaseRun(V32, bugs, module).run(case)
        finally:
            module.close()
            simulator.close()
        assert (violation.oracle if violation else None) == expected, violation
