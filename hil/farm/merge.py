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
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hil.report.files import write_atomic
from hil.report.timing import Sample, TimingRecorder

#: Environment keys that describe one module: replaced by one line per module.
_PER_MODULE = ("DUT", "Model", "Firmware", "CGMR", "IMEI", "Port")
#: What a timings.json holds besides its meta (made again from the merged samples).
_TIMING_PARTS = ("schema", "units", "commands", "modules", "over_budget", "samples")
_SAMPLE_FIELDS = {f.name for f in dataclasses.fields(Sample)}


def _load(path: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        return json.loads(path.read_text())
    return None


def module_records(run: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Each worker's folder with its results.json, in name order."""
    folder = run / "modules"
    if not folder.is_dir():
        return []
    found = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        data = _load(sub / "results.json")
        if data is not None:
            found.append((sub, data))
    return found


def _rename(records: list[tuple[Path, dict[str, Any]]]) -> list[tuple[Path, dict[str, Any]]]:
    """gw0 → the module's name, where that name is known and not taken."""
    out = []
    for folder, data in records:
        module = data["run"].get("identity", {}).get("module")
        target = folder.with_name(module) if module else folder
        if module and target != folder and not target.exists():
            folder.rename(target)
            folder = target
        out.append((folder, data))
    return out


def merged(base: dict[str, Any] | None, records: list[tuple[Path, dict[str, Any]]],
           run: Path) -> dict[str, Any]:
    """The run's results.json: every module's tests, labelled, and a table of modules."""
    tests: list[dict[str, Any]] = []
    modules = []
    for folder, data in records:
        identity = data["run"].get("identity", {})
        name = identity.get("module", folder.name)
        for test in data.get("tests", []):
            tests.append({**test, "module": name})
        modules.append({
            "module": name,
            "place": identity.get("place"),
            "firmware": identity.get("revision"),
            "imei": identity.get("imei"),
            "folder": str(folder.relative_to(run)),
            "totals": data.get("totals", {}),
            "finished": data["run"].get("finished"),
        })
    totals: dict[str, int] = {}
    for test in tests:
        totals[test["outcome"]] = totals.get(test["outcome"], 0) + 1
    head = dict((base or {}).get("run") or {})
    head["modules"] = len(modules)
    return {"run": head, "modules": modules, "totals": totals, "tests": tests}


def environment_lines(text: str, modules: list[dict[str, Any]]) -> str:
    """environment.properties with one `Module <name>` line per module."""
    kept = [line for line in text.splitlines()
            if line and line.split("=", 1)[0] not in _PER_MODULE]
    for m in modules:
        key = "Module\\ " + m["module"].replace(" ", "\\ ").replace("=", "\\=").replace(":", "\\:")
        kept.append(f"{key}={m.get('firmware') or '?'} \\u00b7 IMEI {m.get('imei') or '?'}")
    return "\n".join(kept) + "\n"


def merged_timings(records: list[tuple[Path, dict[str, Any]]]
                   ) -> tuple[list[Sample], dict[str, Any]]:
    """Every module's samples, each labelled with its module, and the run's timing meta
    (firmware: each module's, tests: their sum); no samples when no worker timed any."""
    samples: list[Sample] = []
    metas = []
    firmware_by_module = {}
    for folder, data in records:
        document = _load(folder / "timings.json")
        if not document or not isinstance(document.get("samples"), list):
            continue
        module = data["run"].get("identity", {}).get("module", folder.name)
        samples += [Sample(**{**{k: v for k, v in row.items() if k in _SAMPLE_FIELDS},
                              "module": module}) for row in document["samples"]]
        metas.append({k: v for k, v in document.items() if k not in _TIMING_PARTS})
        firmware_by_module[module] = str(metas[-1].get("firmware", "?"))
    meta = dict(metas[0]) if metas else {}
    if metas:
        meta["firmware"] = " / ".join(dict.fromkeys(firmware_by_module.values()))
        meta["firmware_by_module"] = firmware_by_module
        meta["tests"] = sum(int(m.get("tests") or 0) for m in metas)
        meta["generated"] = datetime.now(UTC).isoformat(timespec="seconds")
    return samples, meta


def write_timings(run: Path, records: list[tuple[Path, dict[str, Any]]]) -> dict[str, Path]:
    """The run's timings.csv/json, metrics.txt and plots/ from every module's samples."""
    samples, meta = merged_timings(records)
    if not samples:
        return {}
    recorder = TimingRecorder(0)
    recorder.samples = samples
    return recorder.write(run, meta, baud=int(meta.get("baud") or 115200))  # rig default


def merge_modules(run: Path, alluredir: Path | None) -> dict[str, Any] | None:
    """Merge what the workers wrote; None when there was nothing to merge."""
    records = _rename(module_records(run))
    if not records:
        return None
    result = merged(_load(run / "results.json"), records, run)
    write_atomic(run / "results.json", json.dumps(result, indent=2))
    write_timings(run, records)
    if alluredir is not None:
        env = alluredir / "environment.properties"
        with contextlib.suppress(OSError):
            current = env.read_text(encoding="ascii") if env.exists() else ""
            env.write_text(environment_lines(current, result["modules"]), encoding="ascii")
    return result
