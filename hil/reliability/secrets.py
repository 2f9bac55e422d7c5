"""Secrets: a `hil run` with every password-bearing feature on, then everything scanned.

The run uses a rig with a power switch password in `[secrets]`, the broker's users, and a
module that logs in with a password over TLS (MQTTSSL=1, the TLS listener with users).
Its tests also push the secrets where reports pick text up: a failed assertion's message, a
traceback's local variables (`-l`), captured stdout and logging, a power command that fails
with the password in its arguments, and the module echoing MCONFIG with the password back.
Then the whole run folder (results, JUnit, transcripts, timings and plots, Allure results
and the HTML report) and the run's log are scanned for every secret's bytes. Each secret
must have been used (the masks are counted) and found nowhere.
"""

from __future__ import annotations

import json
import os
import secrets as tokens
import subprocess
import sys
from pathlib import Path
from typing import Any

from hil.masking import MASK, scan
from hil.report.records import RESULTS, read_results

ROOT = Path(__file__).resolve().parent.parent.parent
#: The project's plugins, named because the generated tests live outside its tree.
PLUGINS = ("fixtures.dut", "fixtures.results", "fixtures.broker", "fixtures.peer",
           "fixtures.timing")

RIG = """name = "secrets"
[dut]
kind = "simulator"
time_scale = 0.05
boot_timeout_s = 3
ready_timeout_s = 3
[power]
backend = "simulator"
[recovery]
probe_timeout_s = 1
[secrets]
power_password = "{power}"
"""

INNER = '''
import json
import logging
import os

from hil.power import power_from_config
from hil.power import PowerConfig

from fixtures.dut import rig_of


def _secrets(request, broker):
    rig = rig_of(request.config)
    values = {**rig.secrets, **{f"broker {k}": v for k, v in broker.users.items()}}
    with open(os.environ["HIL_SECRETS_OUT"], "w") as out:
        json.dump(values, out)
    return rig.secrets["power_password"], broker.users["hil"]


def test_login_over_tls_with_a_password(dut, broker, request):
    _, password = _secrets(request, broker)
    at = dut.at
    assert at.mqttssl(1).ok
    assert at.mconfig("secret-tls", "hil", password).ok
    assert at.mipstart(dut.broker_host, broker.tls_auth_port).ok
    assert at.mconnect(1, 60).ok
    assert at.mpub("secret/tls", 1, 0, "in").ok


def test_password_in_a_failure(dut, broker, request):
    power, password = _secrets(request, broker)
    print("stdout says", password, power)
    logging.getLogger("inner").warning("log says %s %s", password, power)
    dut.at.raw(f"AT+MCONFIG=again,hil,{password}")
    assert password == power, f"the password was {password}, the switch's {power}"


def test_power_switch_password_in_an_error(request, broker):
    power, _ = _secrets(request, broker)
    switch = power_from_config(
        PowerConfig("command", {"on": "sh -c 'exit 3' ${power_password}",
                                "off": "true", "cycle": None, "timeout_s": 5,
                                "off_wait_ms": 0}),
        secrets=rig_of(request.config).secrets)
    switch.on()
'''


def secrets_run(folder: Path, timeout_s: float = 240.0) -> dict[str, Any]:
    """Run it, scan it; figures and failures."""
    folder.mkdir(parents=True, exist_ok=True)
    power = tokens.token_urlsafe(12)
    rig = folder / "rig.toml"
    rig.write_text(RIG.format(power=power), encoding="utf-8")
    tests = folder / "test_secrets_inner.py"
    tests.write_text(INNER, encoding="utf-8")
    reports = folder / "reports"
    known = folder / "secrets.json"  # outside reports/
    command = [sys.executable, "-m", "hil.cli", "run", "--rig", str(rig), "--reports",
               str(reports), str(tests), "-c", str(ROOT / "pytest.ini"), "--rootdir", str(folder),
               *(arg for plugin in PLUGINS for arg in ("-p", plugin)),
               "-l", "-o", "timeout=60"]
    env = dict(os.environ, HIL_SECRETS_OUT=str(known), PYTHONPATH=str(ROOT))
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=timeout_s,
                          check=False)
    runs = sorted(p for p in reports.iterdir() if p.is_dir() and not p.is_symlink())
    failures: list[str] = []
    if not runs or not known.is_file():
        return {"failures": [f"secrets: the run did not happen (exit {done.returncode}): "
                             f"{done.stderr.decode(errors='replace')[-300:]}"]}
    run = runs[-1]
    values = json.loads(known.read_text(encoding="utf-8"))
    log = folder / "hil-run-output.log"  # what the run printed, as an operator sees it
    log.write_bytes(done.stdout + done.stderr)
    found = scan(run, list(values.values())) + scan(folder, list(values.values()))
    hits = sorted({(str(p), i) for p, i in found if p not in (known, rig, tests)})
    results = read_results(run / RESULTS)
    outcomes = {t.nodeid.rsplit("::", 1)[-1]: t.outcome for t in results.tests}
    masks = sum(p.read_bytes().count(MASK.encode()) for p in run.rglob("*")
                if p.is_file() and not p.is_symlink())
    masked_spans = sum(len(v) for p in run.rglob("masked.json")
                       for v in json.loads(p.read_text()).values())
    html = (run / "html" / "index.html").is_file()
    files = sum(1 for p in run.rglob("*") if p.is_file())
    if hits:
        failures.append(f"secrets: {len(hits)} hit(s), e.g. secret #{hits[0][1] + 1} in "
                        f"{hits[0][0]}")
    expected = {"test_login_over_tls_with_a_password": "passed",
                "test_password_in_a_failure": "failed",
                "test_power_switch_password_in_an_error": "failed"}
    if outcomes != expected:
        failures.append(f"secrets: the planted tests did not run as planned: {outcomes}")
    if not masks or not masked_spans:
        failures.append("secrets: nothing was masked: the secrets never reached the run")
    if done.returncode == 7:
        failures.append("secrets: hil run itself found a secret in its run folder")
    return {
        "secrets": len(values),
        "kinds": sorted(k.split(" ")[0] if k.startswith("broker") else k for k in values),
        "files_scanned": files + 1,
        "html_report": html,
        "hil_run_exit": done.returncode,
        "tests": outcomes,
        "masks_in_run": masks,
        "masked_spans_on_the_line": masked_spans,
        "hits": len(hits),
        "failures": failures,
    }
