"""`hil run`: the nightly job. Suites → reports/<UTC time>/ → Allure HTML → reports/latest.

pytest runs as a child process with its output streamed through (progress is visible, and
kept in pytest.log); the run's folder gets allure-results, junit.xml, results.json,
transcripts and what the other plugins write. Then the Allure command line builds the HTML
report, carrying the history of the previous report so that trends span the nights;
reports/latest points at the new run; and every file of the run is checked for secrets.

Exit status: pytest's (0 only if every test passed), unless the report could not be made
(REPORT_FAILED) or a secret leaked into reports/ (SECRET_LEAKED). With --baseline, the run is
also compared with that baseline before the report is made (docs/acceptance.md): when pytest
passed, the status is the comparison's (1 not acceptable, NO_COMPARISON when it could not be
made: a status of its own, as pytest's 2 means interrupted; 9 inconclusive, from
hil.cli.compare.gate, as pytest's 3 is an internal error). A module's port that cannot
be opened or a broker port that is taken stops the run before it starts, in one line, with
status 4 (pytest's for a usage error); so does pytest stopping before any test (a bad option):
no report is made then.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from hil.acceptance import compare as comparison
from hil.acceptance import gate
from hil.dut.preflight import broker_port_problem, port_problem
from hil.masking import scan
from hil.report import page
from hil.report.files import write_atomic
from hil.report.records import RESULTS, RecordError, read_results
from hil.rig import RIG_ENV, Rig, RigError, load_rig, rig_warnings, with_port

ROOT = Path(__file__).resolve().parents[2]
ALLURE = Path("tools", "allure", "node_modules", ".bin", "allure")
DEFAULT_RIG = ROOT / "rigs" / "simulator.toml"
REPORT_FAILED = 6
SECRET_LEAKED = 7
NO_COMPARISON = 8
#: pytest's status when it stopped before any test (a bad option, a port that cannot be
#: opened, a busy broker port): there is nothing to report.
USAGE_ERROR = 4  # pytest.ExitCode.USAGE_ERROR
GENERATE_TIMEOUT_S = 600
#: The single-file build of the Allure report, beside the served one (html/).
SINGLE_FILE = "html-file"


class RunError(RuntimeError):
    """The run could not be set up or its report could not be made."""


HELP = "the nightly run: suites, then reports/<UTC time>/ with the Allure HTML report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rig", type=Path, default=None,
                        help=f"rig file (default: ${RIG_ENV}, else rigs/simulator.toml)")
    parser.add_argument("--reports", type=Path, default=None, metavar="DIR",
                        help="where run folders go (default: reports/ of the project)")
    parser.add_argument("--max-minutes", type=float, default=240.0,
                        help="stop the test run after this long (default %(default)g)")
    parser.add_argument("--baseline", type=Path, default=None, metavar="PATH",
                        help="compare the run with this accepted baseline (or run folder): "
                        "table, compare.md and a report page; see docs/acceptance.md")
    parser.add_argument("--keep", type=_at_least_one, default=None, metavar="N",
                        help="afterwards, delete all but the N newest run folders (the "
                        "report's history and trends live on in the newest; default: keep all)")
    parser.add_argument("-n", "--workers", type=int, default=0, metavar="N",
                        help="run on N modules at once (pytest-xdist): the rig's places, or "
                        "N simulators; see docs/farm.md")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--each", dest="split", action="store_const", const="each",
                       help="with -n: every module runs every test (one result per module)")
    split.add_argument("--share", dest="split", action="store_const", const="share",
                       help="with -n: the tests are shared out between the modules (default)")
    parser.set_defaults(pytest_args=[])  # every other argument goes to pytest


def _at_least_one(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of runs, 1 or more: {text!r}")
    return n


def allure_binary(root: Path = ROOT) -> Path:
    found = root / ALLURE
    if not os.access(found, os.X_OK):
        raise RunError(f"the Allure command line is missing ({found}): run scripts/setup")
    return found


def run_stamp(now: datetime | None = None) -> str:
    """A folder name that sorts by time and has no colons: 2025-01-31T02-00-00Z."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H-%M-%SZ")


def new_run_dir(reports: Path) -> Path:
    stamp = run_stamp()
    folder = reports / stamp
    n = 1
    while folder.exists():  # two runs in one second
        n += 1
        folder = reports / f"{stamp}-{n}"
    folder.mkdir(parents=True)
    return folder


def port_option(extra: list[str]) -> str | None:
    """The `--l506-port URL` (or `--l506-port=URL`) among the arguments for pytest, the last
    one."""
    port = None
    for i, arg in enumerate(extra):
        if arg == "--l506-port" and i + 1 < len(extra):
            port = extra[i + 1]
        elif arg.startswith("--l506-port="):
            port = arg.removeprefix("--l506-port=")
    return port


def preflight_problem(rig: Rig) -> str | None:
    """What stops the run before it starts (the module's port, the broker's fixed ports),
    in one line; pytest checks the same for a run without `hil run` (fixtures)."""
    if rig.dut.kind == "hardware" and rig.dut.port:
        problem = port_problem(rig.dut.port)
        if problem:
            return problem
    for key, number in (("port", rig.broker.port), ("tls_port", rig.broker.tls_port)):
        problem = broker_port_problem(rig.broker.bind, number, key)
        if problem:
            return problem
    return None


#: What new_run_dir names a run folder: only such folders are ever pruned.
_RUN_NAME = re.compile(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ(?:-\d+)?")


def _run_order(folder: Path) -> tuple[str, int]:
    stamp, _, n = folder.name.partition("Z")
    return stamp, int(n.lstrip("-") or 1)


def prune_runs(reports: Path, keep: int) -> list[Path]:
    """Delete all but the `keep` newest run folders under `reports` (by their UTC names),
    never the one reports/latest points at, nor anything not named like a run. Each new
    report carries the history of the one before, so the trends survive. Returns the
    deleted folders, oldest first."""
    runs = sorted((p for p in reports.iterdir()
                   if p.is_dir() and not p.is_symlink() and _RUN_NAME.fullmatch(p.name)),
                  key=_run_order)
    latest = reports / "latest"
    current = latest.resolve() if latest.is_symlink() else None
    doomed = [p for p in runs[:max(0, len(runs) - keep)] if p.resolve() != current]
    for folder in doomed:
        shutil.rmtree(folder)
    return doomed


def _is_test_path(arg: str) -> bool:
    return not arg.startswith("-") and Path(arg.split("::")[0]).exists()


def _absolute(arg: str) -> str:
    """Test paths named relative to where `hil run` was started, for a child in ROOT."""
    if not _is_test_path(arg):
        return arg
    path, sep, node = arg.partition("::")
    return str(Path(path).resolve()) + sep + node


def parallel_args(workers: int, split: str | None, durations: Path | None = None
                  ) -> list[str]:
    """pytest-xdist's options for N modules (fixtures/farm.py schedules --each itself).

    --share: worksteal, so that a worker left idle at the end takes over another's queue,
    and, given an earlier run's results.json, the longest tests dealt out first
    (hil.farm.schedule): the suites' long tests would otherwise leave one worker running
    alone.
    """
    if workers <= 0:
        return []
    args = ["-n", str(workers), "--dist", "load" if split == "each" else "worksteal",
            "--l506-modules", split or "share"]
    if durations is not None and split != "each":
        args.append(f"--l506-durations={durations}")  # one word: not taken for a test path
    return args


def earlier_durations(reports: Path, rig_name: str) -> Path | None:
    """reports/latest's results.json when it is a run of the same rig (another bench's
    durations say little of this one's), else None."""
    path = reports / "latest" / RESULTS
    try:
        return path if read_results(path).run.rig == rig_name else None
    except RecordError:
        return None


def pytest_command(run: Path, rig: Path, secrets_file: Path, extra: list[str]) -> list[str]:
    command = [
        sys.executable, "-m", "pytest",
        "--alluredir", str(run / "allure-results"),
        "--junitxml", str(run / "junit.xml"),
        "--l506-report-dir", str(run),
        "--l506-secrets-file", str(secrets_file),
        "--l506-rig", str(rig),
    ]
    if not any(_is_test_path(a) for a in extra):
        command.append(str(ROOT / "suites"))
    return command + [_absolute(a) for a in extra]


def stream(command: list[str], log: Path, timeout_s: float) -> int:
    """Run `command`, its output going both to our stdout and to `log`; bounded.

    The child stays in our session: Ctrl-C reaches pytest too (it stops and still reports),
    and the `manual` power backend can ask the operator on this terminal.
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        reader = proc.stdout  # buffered (Popen's default bufsize): read1 takes what is there
        assert isinstance(reader, io.BufferedReader)
        out = sys.stdout.buffer
        killer = _Deadline(proc, timeout_s)
        try:
            while chunk := reader.read1(65536):
                out.write(chunk)
                out.flush()
                sink.write(chunk)
        except KeyboardInterrupt:
            with contextlib.suppress(KeyboardInterrupt):  # pytest got it too: keep its summary
                for chunk in iter(lambda: reader.read1(65536), b""):
                    sink.write(chunk)
        except SystemExit:  # SIGTERM to hil run: pytest is stopped too, not left running
            proc.terminate()
            raise
        finally:
            status = killer.wait()
        if killer.fired:
            note = f"\nhil run: pytest did not finish within {timeout_s / 60:g} min: stopped\n"
            out.write(note.encode())
            sink.write(note.encode())
        return status


class _Deadline:
    """Stops the child when the run's time is up: SIGTERM, then SIGKILL."""

    def __init__(self, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
        self.proc = proc
        self.fired = False
        self._timer = threading.Timer(timeout_s, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def wait(self) -> int:
        try:
            status = self.proc.wait()
        finally:
            self._timer.cancel()
        return status


def previous_report(reports: Path, current: Path) -> Path | None:
    """The newest earlier run with an HTML report: reports/latest, else by name."""
    latest = reports / "latest"
    if (latest.is_dir() and latest.resolve() != current.resolve()
            and (latest / "html" / "history").is_dir()):
        return latest
    runs = sorted((p for p in reports.iterdir()
                   if p.is_dir() and not p.is_symlink() and p != current
                   and (p / "html" / "history").is_dir()), reverse=True)
    return runs[0] if runs else None


def write_executor(results: Path, run: Path, rig_name: str, build_order: int) -> None:
    """executor.json: names each run in the report's trend graphs."""
    (results / "executor.json").write_text(json.dumps({
        "name": "hil run",
        "type": "hil",
        "buildName": f"{run.name} ({rig_name})",
        "buildOrder": build_order,
        "reportName": f"L506 HIL — {rig_name} — {run.name}",
    }, indent=2))


def _build_order(previous: Path | None) -> int:
    if previous is None:
        return 1
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        data = json.loads((previous / "allure-results" / "executor.json").read_text())
        return int(data["buildOrder"]) + 1
    return 1


#: JVM options for `allure generate` when the environment gives none (ALLURE_OPTS): a
#: report is a few seconds of work in a fresh JVM, where the optimizing compiler and the
#: parallel collector cost more than they save; with these it takes a third of the time
#: (docs/report.md).
QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def _generate_command(allure: Path, results: Path, html: Path, single_file: bool) -> list[str]:
    return [str(allure), "generate", "--clean", *(["--single-file"] if single_file else []),
            "-o", str(html), str(results)]


def generate_reports(allure: Path, results: Path, builds: dict[Path, bool]) -> None:
    """`allure generate` into each folder of `builds` (folder → single file or not), all at
    once: they read the same results and each leaves a core idle while its JVM starts.
    A single-file report opens from the file system. Allure's web analytics are off (no
    script from the internet)."""
    env = dict(os.environ, ALLURE_NO_ANALYTICS="true")
    env.setdefault("ALLURE_OPTS", QUICK_JVM)
    procs = {html: subprocess.Popen(_generate_command(allure, results, html, single),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env)
             for html, single in builds.items()}
    deadline = time.monotonic() + GENERATE_TIMEOUT_S
    problems = []
    try:
        for html, proc in procs.items():
            try:
                out, err = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise RunError(f"allure generate did not finish within {GENERATE_TIMEOUT_S} s"
                               ) from None
            if proc.returncode != 0 or not (html / "index.html").is_file():
                tail = (err or out).strip().splitlines()[-10:]
                problems.append(f"allure generate failed (status {proc.returncode}): "
                                + " | ".join(tail))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if problems:
        raise RunError("; ".join(problems))


def single_file_tests(index: Path) -> dict[str, str]:
    """Test nodeid → its uid in a single-file Allure report (from the `nodeid` label that
    fixtures/report.py puts on each test; the data is embedded base64 in index.html)."""
    found: dict[str, str] = {}
    text = index.read_text(encoding="utf-8")
    for m in re.finditer(r"d\('data/test-cases/([0-9a-f]+)\.json','([A-Za-z0-9+/=]*)'\)", text):
        with contextlib.suppress(ValueError):
            case = json.loads(base64.b64decode(m.group(2)))
            for label in case.get("labels", []):
                if label.get("name") == "nodeid":
                    found[label["value"]] = m.group(1)
    return found


def point_latest(reports: Path, run: Path) -> None:
    """reports/latest → the new run, replaced atomically (relative, so reports/ can move)."""
    link = reports / "latest"
    tmp = reports / ".latest.new"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run.name)
    tmp.replace(link)


def report(run: Path, reports: Path, rig_name: str, allure: Path) -> Path:
    """The run page and the Allure HTML for `run`, with the previous report's history:
    `html/` to be served, `html-file/index.html` to open from the file system, and the run
    page `index.html` linking both; returns the run page."""
    results = run / "allure-results"
    results.mkdir(exist_ok=True)
    previous = previous_report(reports, run)
    if previous is not None:
        shutil.copytree(previous / "html" / "history", results / "history", dirs_exist_ok=True)
    write_executor(results, run, rig_name, _build_order(previous))
    record = page.load_run(run)
    page.write_allure_result(record, results, int(time.time() * 1000))
    write_atomic(run / "index.html", page.render_page(record))  # even if Allure fails
    generate_reports(allure, results, {run / "html": False, run / SINGLE_FILE: True})
    index = run / SINGLE_FILE / "index.html"
    links = {nodeid: f"{SINGLE_FILE}/index.html#testresult/{uid}"
             for nodeid, uid in single_file_tests(index).items()}
    write_atomic(run / "index.html", page.render_page(record, links, {
        "Allure report (file)": f"{SINGLE_FILE}/index.html",
        "Allure report (served)": "html/index.html",
    }))
    return run / "index.html"


def check_secrets(run: Path, secrets_file: Path, rig_secrets: list[str]) -> list[str]:
    """Problems found: each file under `run` holding a secret (the secret is not shown)."""
    secrets = list(rig_secrets)
    # a parallel run's workers each write their own (fixtures/farm.py): FILE.gw0, FILE.gw1…
    for path in [secrets_file, *sorted(secrets_file.parent.glob(secrets_file.name + ".*"))]:
        with contextlib.suppress(OSError, ValueError):
            secrets += json.loads(path.read_text())
    return [f"{path.relative_to(run)} holds secret #{i + 1} ({len(secrets[i])} characters)"
            for path, i in scan(run, secrets)]


def summary(run: Path) -> str:
    """The run's totals for its last line; why there are none, when results.json is
    missing or cannot be read."""
    if not (run / RESULTS).exists():
        return "no results.json"
    try:
        totals = read_results(run / RESULTS).totals
    except RecordError as exc:
        return f"no totals: {exc}"
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(totals.items()))


class _Refused(Exception):
    """`hil run` stops before pytest starts: the reason (one line) and the exit status."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


def _checked_rig(args: argparse.Namespace, extra: list[str]) -> tuple[Path, Rig]:
    """The rig file and the rig, the port on the command line applied; _Refused when the
    rig, the baseline, the port or the worker options will not do."""
    named = args.rig or os.environ.get(RIG_ENV)
    rig_path = Path(named).resolve() if named else DEFAULT_RIG
    try:
        rig = load_rig(rig_path)
    except RigError as exc:
        raise _Refused(str(exc), 4) from None
    problem = args.baseline and gate.check_baseline(args.baseline)
    if problem:
        raise _Refused(f"--baseline: {problem}", NO_COMPARISON)
    port = port_option(extra)
    if port and port != rig.dut.port:
        rig = with_port(rig, port)
    problem = preflight_problem(rig)
    if problem:
        raise _Refused(problem, USAGE_ERROR)
    for warning in rig_warnings(rig):
        print(f"hil run: warning: {warning}", file=sys.stderr)
    workers = getattr(args, "workers", 0)
    if workers < 0 or (getattr(args, "split", None) and not workers):
        raise _Refused("--each and --share go with -n N (N modules at once)", 4)
    return rig_path, rig


def main(args: argparse.Namespace) -> int:
    extra = [a for a in args.pytest_args if a != "--"]
    reports = (args.reports or ROOT / "reports").resolve()
    try:
        allure = allure_binary()
        rig_path, rig = _checked_rig(args, extra)
    except RunError as exc:
        print(f"hil run: {exc}", file=sys.stderr)
        return REPORT_FAILED
    except _Refused as exc:
        print(f"hil run: {exc}", file=sys.stderr)
        return exc.status
    workers = getattr(args, "workers", 0)
    run = new_run_dir(reports)
    print(f"hil run: rig {rig.name!r}, results in {run}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hil-run-") as private:
        secrets_file = Path(private, "secrets.json")
        parallel = parallel_args(workers, getattr(args, "split", None),
                                 earlier_durations(reports, rig.name))
        command = pytest_command(run, rig_path, secrets_file, parallel + extra)
        status = stream(command, run / "pytest.log", args.max_minutes * 60)
        if status == USAGE_ERROR:  # stopped before any test: the line above says why
            print(f"hil run: no test ran; no report made (pytest's output in "
                  f"{run / 'pytest.log'})", file=sys.stderr)
            return status
        outcome = status
        if args.baseline is not None:
            verdict = gate.gate(args.baseline, run, rig.acceptance)
            outcome = status or (NO_COMPARISON if verdict == comparison.CANNOT_COMPARE
                                 else verdict)
        try:
            index = report(run, reports, rig.name, allure)
        except (RunError, OSError) as exc:
            print(f"hil run: no HTML report: {exc}", file=sys.stderr)
            index = None
            outcome = REPORT_FAILED
        point_latest(reports, run)
        leaks = check_secrets(run, secrets_file, rig.secret_values)
    if leaks:
        for leak in leaks:
            print(f"hil run: SECRET LEAKED: {leak}", file=sys.stderr)
        print(f"hil run: secrets leaked into {run}: do not publish it", file=sys.stderr)
        outcome = SECRET_LEAKED
    _say_where(run, reports, status, index, allure)
    if args.keep is not None:
        _prune(reports, args.keep)
    return outcome


def _say_where(run: Path, reports: Path, status: int, index: Path | None, allure: Path) -> None:
    """The closing lines: pytest's status, and where the results and reports are."""
    print(f"hil run: pytest exit status {status}: {summary(run)}")
    print(f"hil run: results  {run}")
    if index is not None:
        print(f"hil run: run page {index}")
        print(f"hil run: report   {run / 'html' / 'index.html'}")
        print(f"hil run: as file  {run / SINGLE_FILE / 'index.html'}")
        print(f"hil run: view it  {allure} open {run / 'html'}")
    print(f"hil run: latest   {reports / 'latest'} -> {run.name}")


def _prune(reports: Path, keep: int) -> None:
    """--keep N: only the newest N run folders stay."""
    removed = prune_runs(reports, keep)
    if removed:
        print(f"hil run: --keep {keep}: deleted {len(removed)} older run folder(s), "
              f"{removed[0].name} to {removed[-1].name}")
