"""One run, many modules: the workers' records merged into the run's folder.

Each xdist worker writes its own records under `<run>/modules/<worker>/` (results.json,
transcripts, timings and plots, traceability). At the end the controller renames each
folder after its module (`modules/l506-2/`), writes the run's results.json with every
test labelled with its module and a `modules` table (place, firmware, IMEI masked,
totals), and puts one line per module into the Allure report's environment.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from hil.report.files import write_atomic

#: Environment keys that describe one module: replaced by one line per module.
_PER_MODULE = ("DUT", "Model", "Firmware", "CGMR", "IMEI", "Port")


def _load(path: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        document = json.loads(path.read_text())
        if isinstance(document, dict):
            return document
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


def merge_modules(run: Path, alluredir: Path | None) -> dict[str, Any] | None:
    """Merge what the workers wrote; None when there was nothing to merge."""
    records = _rename(module_records(run))
    if not records:
        return None
    result = merged(_load(run / "results.json"), records, run)
    write_atomic(run / "results.json", json.dumps(result, indent=2))
    if alluredir is not None:
        env = alluredir / "environment.properties"
        with contextlib.suppress(OSError):
            current = env.read_text(encoding="ascii") if env.exists() else ""
            env.write_text(environment_lines(current, result["modules"]), encoding="ascii")
    return result
