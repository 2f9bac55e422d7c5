"""The `l506` pytest plugin as another project meets it: loaded once, options that live beside
pytest-embedded's, the rig from the command line, the environment or the ini file, markers
registered in code, JUnit suite properties. (The install into a fresh venv:
test_plugin_install.py.)"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hil import cli
from hil.fixtures.dut import DEFAULT_RIG, rig_file
from hil.fixtures.results import suite_properties

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED = importlib.util.find_spec("pytest_embedded") is not None


def _pytest(cwd: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 90) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("L506_RIG", "PYTEST_ADDOPTS")}
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd,
                          env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _rig(path: Path, name: str) -> Path:
    """The simulator rig under another name, to see which file a run loaded."""
    text = DEFAULT_RIG.read_text(encoding="utf-8").replace('name = "simulator"',
                                                           f'name = "{name}"')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- the rig


def test_the_rig_file_comes_from_the_command_line_then_env_then_ini_then_default() -> None:
    here, ini_dir = Path("/work/here"), Path("/work/project")
    assert rig_file("a.toml", "b.toml", "c.toml", here, ini_dir) == here / "a.toml"
    assert rig_file(None, "b.toml", "c.toml", here, ini_dir) == here / "b.toml"
    assert rig_file(None, None, "c.toml", here, ini_dir) == ini_dir / "c.toml"
    assert rig_file(None, None, "", here, ini_dir) == DEFAULT_RIG
    assert rig_file(None, "/benches/x.toml", "", here, ini_dir) == Path("/benches/x.toml")


def test_a_project_names_its_rig_in_ini_env_or_option(tmp_path: Path) -> None:
    project = tmp_path / "project"
    _rig(project / "benches" / "ini.toml", "from-ini")
    _rig(tmp_path / "env.toml", "from-env")
    _rig(tmp_path / "option.toml", "from-option")
    (project / "pytest.ini").write_text("[pytest]\nl506_rig = benches/ini.toml\n")
    (project / "sub").mkdir()
    (project / "sub" / "test_x.py").write_text("def test_x():\n    pass\n")
    started_in = project / "sub"  # the ini's path is relative to the ini, not to here

    def rig_line(*args: str, env: dict[str, str] | None = None) -> str:
        done = _pytest(started_in, "--co", "-p", "no:pytest_embedded", *args, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        return next(line for line in done.stdout.splitlines() if line.startswith("rig: "))

    assert rig_line().startswith("rig: from-ini ")
    env = {"L506_RIG": str(tmp_path / "env.toml")}
    assert rig_line(env=env).startswith("rig: from-env ")
    assert rig_line(f"--l506-rig={tmp_path / 'option.toml'}", env=env).startswith(
        "rig: from-option ")
    (project / "pytest.ini").write_text("[pytest]\n")
    assert rig_line().startswith("rig: simulator ")


# ---------------------------------------------------------------------------- options, markers


def test_markers_are_registered_by_the_plugin_not_by_an_ini(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_marked.py").write_text(
        "import pytest\n\n\n@pytest.mark.spec('MPUB-1')\n@pytest.mark.needs('power')\n"
        "@pytest.mark.budget(MPUB=500)\ndef test_x():\n    pass\n")
    done = _pytest(tmp_path, "--co", "--strict-markers", "-p", "no:pytest_embedded")
    assert done.returncode == 0, done.stdout + done.stderr
    listed = _pytest(tmp_path, "--markers", "-p", "no:pytest_embedded").stdout
    for marker in ("@pytest.mark.spec(", "@pytest.mark.needs(", "@pytest.mark.budget("):
        assert marker in listed


def test_every_option_has_an_l506_name_and_no_clash_with_pytest_embedded(
    tmp_path: Path,
) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    shown = _pytest(tmp_path, "--help", "-p", "no:pytest_embedded").stdout
    groups = [shown.split(f"{title}:")[1].split("\n\n")[0]
              for title in ("L506 device under test", "response timing and budgets")]
    options = [line.split()[0].split("=")[0].rstrip(",") for group in groups
               for line in group.splitlines() if line.startswith("  --")]
    assert len(options) >= 17 and all(o.startswith("--l506-") for o in options), options
    both = "\n".join(groups).replace("--l506-", "")
    assert "--port" not in both and "--baud" not in both


def test_the_old_port_option_says_its_new_name(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    done = _pytest(tmp_path, "--co", "-p", "no:pytest_embedded", "--port=/dev/ttyUSB2")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--port is now --l506-port" in done.stderr


# ---------------------------------------------------------------------------- loading


def _registered(output: str) -> list[str]:
    return [line for line in output.splitlines()
            if line.startswith("PLUGIN registered: <module 'hil.fixtures.")]


@pytest.mark.parametrize("autoload", ["entry point", "PYTEST_DISABLE_PLUGIN_AUTOLOAD"])
def test_the_checkout_registers_each_fixture_module_once(autoload: str) -> None:
    env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"} if autoload != "entry point" else {}
    done = _pytest(ROOT, "--trace-config", "--co", "-q", "tests/test_traceability.py", env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    modules = [line.split("'")[1] for line in _registered(done.stdout)]
    assert len(modules) == len(set(modules)) and "hil.fixtures.dut" in modules, modules
    assert "hil.fixtures.plugin" in modules and "hil.fixtures.last" in modules


@pytest.mark.skipif(not EMBEDDED, reason="pytest-embedded is not installed (scripts/setup --dev)")
def test_dut_is_the_harness_s_even_when_pytest_embedded_registers_after_it(
    tmp_path: Path,
) -> None:
    """Installed plugins load in no set order: here pytest-embedded comes last, on purpose."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_x.py").write_text("def test_x(dut):\n    pass\n")
    done = _pytest(tmp_path, "--fixtures-per-test", "-p", "l506", "-p", "pytest_embedded",
                   env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    dut = next(line for line in done.stdout.splitlines() if line.startswith("dut -- "))
    assert "fixtures/dut.py" in dut, dut


def test_the_installed_packages_hold_every_package_of_hil() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "hil").rglob("__init__.py")}
    mapped = set(setuptools["package-dir"])
    assert found | mapped == set(setuptools["packages"])
    assert {ROOT / folder for folder in setuptools["package-dir"].values()} == {
        ROOT / "fixtures", ROOT / "rigs", ROOT / "docs"}


# ---------------------------------------------------------------------------- JUnit XML


def test_suite_properties_mask_the_imei_and_wait_for_the_module() -> None:
    identity = {"CGMR": "+CGMR: L506_V3.2_MQTT_B20171031", "model": "L506",
                "imei": "866123045678901"}
    assert suite_properties("bench-3", identity, "0.1.0 (abc)") == [
        ("firmware", "L506_V3.2_MQTT_B20171031"), ("rig", "bench-3"),
        ("harness", "0.1.0 (abc)"), ("module", "L506 IMEI 86612304*******")]
    assert suite_properties("bench-3", {}, "0.1.0") == [("rig", "bench-3"),
                                                         ("harness", "0.1.0")]


def test_hil_run_also_takes_the_rig_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    named = tmp_path / "bench-from-env.toml"  # missing: the run stops at loading it
    monkeypatch.setenv("L506_RIG", str(named))
    assert cli.main(["run", "--reports", str(tmp_path / "reports")]) == 4
    assert f"{named}: cannot read the rig file" in capsys.readouterr().err
