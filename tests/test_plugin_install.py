"""The harness as a project of one's own sees it: a fresh venv, `pip install <checkout>`.

A real fresh venv (no --system-site-packages, nothing of this .venv), and a real install of
the checkout with its dependencies, at the versions constraints.txt pins. Fast enough
because pip finds every dependency on this machine (its configured index and wheels) and
is told not to compile bytecode (--no-compile): 42-52 s on a 2-core machine under load
(`pytest tests/test_plugin_install.py -rP` prints the figure); the test fails over 180 s,
which only a lost wheel source or a resolver gone astray would take. The checkout's
tracked files are copied to the temporary folder first, because pip builds a source folder
in place (build/, *.egg-info) and must not write into the checkout.

In that venv, a 10-line test file using `dut`, `broker` and `peer` runs from a folder of its
own against the simulated L506: first as the plugin's default (it starts the simulator and
the broker, as for the suites), then with pytest-embedded installed beside it, both by
default and against a `hil sim --tcp` process reached with --l506-port (pytest-embedded
owns --port). docs/plugin.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import venv
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The install, the runs and the second install, each bounded on its own below.
pytestmark = [pytest.mark.timeout(900), pytest.mark.end_to_end]

OUTSIDE_TEST = '''\
import pytest


@pytest.mark.spec("MPUB-1")
def test_the_module_publishes_and_the_peer_receives(dut, broker, peer):
    peer.subscribe("outside/news")
    assert dut.at.mconfig("outside-1").result.success
    assert dut.at.mipstart(dut.broker_host, broker.plain_port).result.success
    assert dut.at.mconnect(1, 30).result.success
    assert dut.at.mpub("outside/news", 0, 0, "hello").result.success
    assert peer.expect("outside/news", timeout=5).payload == b"hello"
'''
#: A folder of the same project whose tests want pytest-embedded's `dut`: its conftest.py
#: is nearer than any plugin.
EMBEDDED_CONFTEST = "from pytest_embedded.plugin import dut  # noqa: F401\n"
EMBEDDED_TEST = "def test_flashes_an_esp32(dut):\n    pass\n"


@dataclass
class Outside:
    python: Path
    project: Path
    install_s: float

    def pytest(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTEST_ADDOPTS", "L506_RIG", "VIRTUAL_ENV")}
        return subprocess.run([str(self.python), "-m", "pytest", "-o", "timeout=120", *args],
                              cwd=self.project, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def pip_install(self, *what: str) -> None:
        done = subprocess.run(
            [str(self.python), "-m", "pip", "install", "--quiet", "--no-compile",
             "--disable-pip-version-check", "-c", str(ROOT / "constraints.txt"), *what],
            capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


def _copy_checkout(target: Path) -> None:
    """The files a clone of this checkout holds, as they are now in the work tree."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            timeout=30, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Outside:
    base = tmp_path_factory.mktemp("outside")
    checkout = base / "checkout"
    _copy_checkout(checkout)
    start = time.monotonic()
    venv.EnvBuilder(with_pip=True).create(base / "venv")
    made = Outside(base / "venv" / "bin" / "python", base / "project", 0.0)
    made.pip_install(str(checkout))
    made.install_s = time.monotonic() - start
    made.project.mkdir()
    (made.project / "test_outside.py").write_text(OUTSIDE_TEST, encoding="utf-8")
    return made


def _suite_properties(junit: Path) -> dict[str, str]:
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    return {p.get("name", ""): p.get("value", "") for p in suite.iter("property")}


@pytest.fixture(scope="module")
def plain(outside: Outside) -> dict[str, object]:
    """The runs before pytest-embedded is installed."""
    junit = outside.project / "plain.xml"
    run = outside.pytest("--strict-markers", f"--junitxml={junit}", "test_outside.py")
    trace = outside.pytest("--trace-config", "--co", "-q", "test_outside.py", timeout=60)
    return {"run": run, "junit": junit, "trace": trace}


@pytest.fixture(scope="module")
def embedded(outside: Outside, plain: dict[str, object]) -> dict[str, object]:
    """The runs with pytest-embedded installed beside the harness (after `plain`)."""
    outside.pip_install("pytest-embedded-serial")
    run = outside.pytest("--strict-markers", "test_outside.py")
    sim = subprocess.Popen([str(outside.python.parent / "hil"), "sim", "--tcp", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert sim.stdout is not None
        url = sim.stdout.readline().split()[-1]  # "<label> socket://127.0.0.1:<port>"
        assert url.startswith("socket://127.0.0.1:"), url
        against_sim = outside.pytest("--strict-markers", "--l506-port", url, "test_outside.py")
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    (outside.project / "esp").mkdir()
    (outside.project / "esp" / "conftest.py").write_text(EMBEDDED_CONFTEST, encoding="utf-8")
    (outside.project / "esp" / "test_esp.py").write_text(EMBEDDED_TEST, encoding="utf-8")
    which = outside.pytest("--fixtures-per-test", "-q", "test_outside.py", "esp", timeout=60)
    return {"run": run, "against_sim": against_sim, "which": which}


def _passed(run: object) -> None:
    assert isinstance(run, subprocess.CompletedProcess)
    assert run.returncode == 0 and " 1 passed" in run.stdout, run.stdout[-4000:] + run.stderr


def test_a_fresh_venv_installs_the_checkout_in_bounded_time(outside: Outside) -> None:
    print(f"fresh venv and pip install of the checkout: {outside.install_s:.1f} s")  # -rP
    assert outside.install_s < 180, f"venv and pip install took {outside.install_s:.0f} s"
    python = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    hil = outside.python.parent.parent / "lib" / python / "site-packages" / "hil"
    assert (hil / "fixtures" / "plugin.py").is_file()
    assert (hil / "rigs" / "simulator.toml").is_file()
    assert (hil / "docs" / "clauses.md").is_file()


def test_dut_broker_and_peer_work_in_a_project_of_its_own(
    outside: Outside, plain: dict[str, object]
) -> None:
    _passed(plain["run"])
    transcripts = outside.project / "reports" / "adhoc" / "transcripts"
    assert any(transcripts.iterdir()), "the run's transcript is written in the project"


def test_the_plugin_is_the_installed_one_and_registered_once(plain: dict[str, object]) -> None:
    trace = plain["trace"]
    assert isinstance(trace, subprocess.CompletedProcess) and trace.returncode == 0, trace
    registered = [line for line in trace.stdout.splitlines()
                  if line.startswith("PLUGIN registered: <module 'hil.fixtures.dut'")]
    assert len(registered) == 1, trace.stdout[-3000:]
    assert "site-packages" in registered[0] and str(ROOT) not in registered[0]


def test_the_junit_xml_names_firmware_rig_harness_and_module(plain: dict[str, object]) -> None:
    junit = plain["junit"]
    assert isinstance(junit, Path)
    properties = _suite_properties(junit)
    assert properties["firmware"].startswith("L506"), properties
    assert properties["rig"] == "simulator"
    assert properties["harness"].startswith("0.")
    assert properties["module"].startswith("L506 IMEI ")
    imei = properties["module"].removeprefix("L506 IMEI ")
    assert imei[:8].isdigit() and set(imei[8:]) == {"*"}, "the IMEI's serial part is masked"


def test_pytest_embedded_beside_it_breaks_nothing(embedded: dict[str, object]) -> None:
    _passed(embedded["run"])
    _passed(embedded["against_sim"])


def test_dut_is_the_harness_s_unless_a_conftest_picks_pytest_embedded_s(
    embedded: dict[str, object]
) -> None:
    which = embedded["which"]
    assert isinstance(which, subprocess.CompletedProcess) and which.returncode == 0, which
    sections = which.stdout.split("fixtures used by ")
    ours = next(s for s in sections if s.startswith("test_the_module_publishes"))
    theirs = next(s for s in sections if s.startswith("test_flashes_an_esp32"))
    assert "hil/fixtures/" in _defined_at(ours, "dut"), ours
    assert "pytest_embedded" in _defined_at(theirs, "dut"), theirs


def _defined_at(section: str, fixture: str) -> str:
    """The `-- file:line` pytest --fixtures-per-test prints after `fixture`."""
    lines = section.splitlines()
    for line in lines:
        if line.split(" ")[0] == fixture:
            return line
    raise AssertionError(f"no fixture {fixture} in:\n{section}")
