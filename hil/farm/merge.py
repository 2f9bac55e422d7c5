"""One run, many modules: the workers' records merged into the run's folder.

Each xdist worker writes its own records under `<run>/modules/<worker>/` (results.json,
transcripts, timings). At the end the controller renames each folder after its module
(`modules/l506-2/`), writes the run's results.json with every test labelled with its
module and a `modules` table (place, firmware, IMEI masked, totals), the run's timings
(timings.csv/json, metrics.txt: every sample and figure labelled with its module) and its
timing plots, drawn once with each command's box split per module, and puts one line per
module into the Allure report's environment. (The traceability matrix the controller
builds itself from the workers' reports: fixtures/spec.py.)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hil.report.records import (
    RESULTS,
    TIMINGS,
    ModuleSummary,
    RecordError,
    ResultRow,
    RunInfo,
    RunResults,
    Sample,
    Timings,
    read_results,
    read_timings,
    write_record,
)
from hil.report.timing import TimingRecorder

#: Environment keys that describe one module: replaced by one line per module.
_PER_MODULE = ("DUT", "Model", "Firmware", "CGMR", "IMEI", "Port")
#: The meta of a module's timings.json carried into the run's (the rest is made again).
_TIMING_META = ("dut", "rig", "latency_model", "baud")


@dataclass(frozen=True)
class Merged:
    """The run's merged results.json, and the records that could not be read (left out)."""

    results: RunResults
    refused: list[RecordError] = field(default_factory=list)


def module_records(run: Path, refused: list[RecordError] | None = None
                   ) -> list[tuple[Path, RunResults]]:
    """Each worker's folder with its results.json, in name order; a results.json that
    cannot be read is left out and its error added to `refused`."""
    folder = run / "modules"
    if not folder.is_dir():
        return []
    found = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if not (sub / RESULTS).exists():
            continue
        try:
            found.append((sub, read_results(sub / RESULTS)))
        except RecordError as exc:
            if refused is not None:
                refused.append(exc)
    return found


def _rename(records: list[tuple[Path, RunResults]]) -> list[tuple[Path, RunResults]]:
    """gw0 → the module's name, where that name is known and not taken."""
    out = []
    for folder, data in records:
        module = data.run.identity.get("module")
        target = folder.with_name(module) if module else folder
        if module and target != folder and not target.exists():
            folder.rename(target)
            folder = target
        out.append((folder, data))
    return out


def merged(base: RunResults | None, records: list[tuple[Path, RunResults]],
           run: Path) -> RunResults:
    """The run's results.json: every module's tests, labelled, and a table of modules."""
    tests: list[ResultRow] = []
    modules = []
    for folder, data in records:
        identity = data.run.identity
        name = identity.get("module", folder.name)
        tests += [replace(test, module=name) for test in data.tests]
        modules.append(ModuleSummary(
            module=name,
            place=identity.get("place"),
            firmware=identity.get("revision"),
            imei=identity.get("imei"),
            folder=str(folder.relative_to(run)),
            totals=dict(data.totals),
            finished=data.run.finished,
        ))
    totals: dict[str, int] = {}
    for test in tests:
        totals[test.outcome] = totals.get(test.outcome, 0) + 1
    head = replace(base.run if base is not None else RunInfo(), module_count=len(modules),
                   module_identities={})
    return RunResults(run=head, modules=tuple(modules), totals=totals, tests=tuple(tests))


def environment_lines(text: str, modules: tuple[ModuleSummary, ...]) -> str:
    """environment.properties with one `Module <name>` line per module."""
    kept = [line for line in text.splitlines()
            if line and line.split("=", 1)[0] not in _PER_MODULE]
    for m in modules:
        key = "Module\\ " + m.module.replace(" ", "\\ ").replace("=", "\\=").replace(":", "\\:")
        kept.append(f"{key}={m.firmware or '?'} \\u00b7 IMEI {m.imei or '?'}")
    return "\n".join(kept) + "\n"


def module_timings(records: list[tuple[Path, RunResults]],
                   refused: list[RecordError] | None = None) -> list[tuple[str, Timings]]:
    """Each module's timings.json, by module name; a module that timed nothing has none,
    and one that cannot be read is left out and its error added to `refused`."""
    found = []
    for folder, data in records:
        if not (folder / TIMINGS).exists():
            continue
        try:
            timings = read_timings(folder / TIMINGS)
        except RecordError as exc:
            if refused is not None:
                refused.append(exc)
            continue
        found.append((data.run.identity.get("module", folder.name), timings))
    return found


def merged_timings(timings: list[tuple[str, Timings]]) -> tuple[list[Sample], dict[str, Any]]:
    """Every module's samples, each labelled with its module, and the run's timing meta
    (firmware: each module's, tests: their sum); no samples when no worker timed any."""
    samples: list[Sample] = []
    firmware_by_module = {}
    for module, one in timings:
        samples += [replace(s, module=module) for s in one.samples]
        firmware_by_module[module] = one.firmware or "?"
    if not timings:
        return samples, {}
    first = timings[0][1]
    meta: dict[str, Any] = {**{k: v for k, v in first.extra.items() if k != "units"},
                            **{k: v for k in _TIMING_META
                               if (v := getattr(first, k)) is not None}}
    meta["firmware"] = " / ".join(dict.fromkeys(firmware_by_module.values()))
    meta["firmware_by_module"] = firmware_by_module
    meta["tests"] = sum(one.tests or 0 for _, one in timings)
    meta["generated"] = datetime.now(UTC).isoformat(timespec="seconds")
    return samples, meta


def write_timings(run: Path, timings: list[tuple[str, Timings]]) -> dict[str, Path]:
    """The run's timings.csv/json, metrics.txt and plots/ from every module's samples."""
    samples, meta = merged_timings(timings)
    if not samples:
        return {}
    recorder = TimingRecorder(0)
    recorder.samples = samples
    return recorder.write(run, meta, baud=int(meta.get("baud") or 115200))  # rig default


def merge_modules(run: Path, alluredir: Path | None) -> Merged | None:
    """Merge what the workers wrote; None when there was nothing to merge."""
    refused: list[RecordError] = []
    records = _rename(module_records(run, refused))
    if not records:
        return None
    base = None
    if (run / RESULTS).exists():
        try:
            base = read_results(run / RESULTS)
        except RecordError as exc:
            refused.append(exc)
    result = merged(base, records, run)
    write_record(run / RESULTS, result)
    write_timings(run, module_timings(records, refused))
    if alluredir is not None:
        env = alluredir / "environment.properties"
        with contextlib.suppress(OSError):
            current = env.read_text(encoding="ascii") if env.exists() else ""
            env.write_text(environment_lines(current, result.modules), encoding="ascii")
    return Merged(result, refused)
