"""One run, many modules: the workers' records merged into the run's folder.

Each xdist worker writes its own records under `<run>/modules/<worker>/` (results.json,
transcripts, timings and plots, traceability). At the end the controller renames each
folder after its module (`modules/l506-2/`), writes the run's results.json with every
test labelled with its module and a `modules` table (place, firmware, IMEI masked,
totals), and puts one line per module into the Allure report's environment.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path

from hil.report.records import (
    RESULTS,
    ModuleSummary,
    RecordError,
    ResultRow,
    RunInfo,
    RunResults,
    read_results,
    write_record,
)

#: Environment keys that describe one module: replaced by one line per module.
_PER_MODULE = ("DUT", "Model", "Firmware", "CGMR", "IMEI", "Port")


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
    if alluredir is not None:
        env = alluredir / "environment.properties"
        with contextlib.suppress(OSError):
            current = env.read_text(encoding="ascii") if env.exists() else ""
            env.write_text(environment_lines(current, result.modules), encoding="ascii")
    return Merged(result, refused)
