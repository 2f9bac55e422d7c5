"""Baselines: what an accepted firmware did, kept as one plain JSON file per firmware.

`baselines/<model>/<firmware revision>/baseline.json` (sorted keys, one value per line, so a
diff between two accepted firmwares reads well in any version control) holds:

- `accepted`: who accepted it, when, from which run folder, and why (a note);
- `firmware`: the module's identity (model, revision, ATI, CGMR; the IMEI masked);
- `run`: the source run's metadata (rig, DUT kind, simulator profile, harness, arguments);
- `tests`: every test's outcome and clauses, by node id;
- `characterization`: what the firmware did on each open point, by clause, in record order;
- `latency`: per command, per test, the response times in ms (sent → done) for the statistics;
- `throughput`: the MPUBEX-4 figures per series (QoS).

A run folder (reports/<UTC time>/) can be read the same way: both become a `Snapshot`, so a
candidate run can be compared with a baseline or with another run. The format is documented
in docs/acceptance.md.

A farm: a run's records may name the module they were made on (a `module` field in each test
row, timing sample and characterization record; `run.modules` in results.json maps each label
to its identity). A record without one belongs to the run's module, labelled by `run.module`
or else the rig's name: the place on the bench, the same from one run to the next. A Snapshot
of several modules holds them pooled, and each module's own Snapshot in `modules`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from hil.masking import mask_imei
from hil.report.files import write_atomic
from hil.report.records import (
    CHARACTERIZATION,
    RESULTS,
    THROUGHPUT,
    TIMINGS,
    OpenPointRecord,
    RecordError,
    RunInfo,
    Sample,
    read_characterization,
    read_optional,
    read_results,
    read_throughput,
    read_timings,
)

SCHEMA = 1
KIND = "l506-hil firmware baseline"
BASELINE_FILE = "baseline.json"
#: Where `hil baseline accept` keeps baselines unless told: baselines/ of the project.
DEFAULT_BASELINES = Path(__file__).resolve().parents[2] / "baselines"


class SnapshotError(Exception):
    """A run folder or baseline is missing, unreadable or not what it claims to be."""


@dataclass(frozen=True)
class Behaviour:
    """One characterization record: what the firmware did on an open point."""

    clause: str
    test: str
    sent: str
    got: str
    #: Whether it did what clauses.md decided for the simulator.
    follows: bool
    decision: str = ""
    note: str = ""


@dataclass(frozen=True)
class Snapshot:
    """What one run (or an accepted baseline) says about its firmware."""

    label: str
    source: str
    firmware: dict[str, str]
    run: dict[str, Any]
    #: node id → (outcome, clauses)
    tests: dict[str, tuple[str, tuple[str, ...]]]
    #: clause → records in the order they were made
    characterization: dict[str, tuple[Behaviour, ...]]
    #: command → test → response times (ms)
    latency: dict[str, dict[str, list[float]]]
    #: series (qos0…) → figure → value
    throughput: dict[str, dict[str, float]]
    accepted: dict[str, str] | None = None
    notes: tuple[str, ...] = field(default=())
    #: command → test → the budget (ms) its responses were held to in this run
    budgets: dict[str, dict[str, float]] = field(default_factory=dict)
    #: the module's label (its place on the bench); "" for a pool of several
    module: str = ""
    #: a pool's modules by label, each its own Snapshot; empty for one module
    modules: dict[str, Snapshot] = field(default_factory=dict)

    @property
    def by_module(self) -> dict[str, Snapshot]:
        """Label → Snapshot of each module this one holds (itself, for one module)."""
        return self.modules or {self.module: self}

    @property
    def model(self) -> str:
        return self.firmware.get("model") or "unknown"

    @property
    def revision(self) -> str:
        return self.firmware.get("revision") or self.firmware.get("CGMR") or "unknown"


# ---------------------------------------------------------------------------- reading a run


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise SnapshotError(f"{path}: not valid JSON ({exc}): corrupt or cut short") from exc


def _need(condition: bool, path: Path | str, what: str) -> None:
    if not condition:
        raise SnapshotError(f"{path}: {what}")


def _firmware(identity: Mapping[str, Any]) -> dict[str, str]:
    """The identity fields a report shows, IMEI serial digits masked whatever they were."""
    keep = ("manufacturer", "model", "revision", "ATI", "CGMR", "imei")
    return {k: mask_imei(str(identity[k])) for k in keep if identity.get(k)}


_RUN_KEYS = ("started", "finished", "rig", "rig_file", "dut", "port", "profile", "harness",
             "python", "args", "labels")


def _tests(document: Any, path: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """node id → (outcome, clauses) of a baseline's tests table."""
    rows = document.get("tests") if isinstance(document, dict) else None
    if not isinstance(rows, list):
        raise SnapshotError(f"{path}: has no list of tests")
    out = {}
    for row in rows:
        _need(isinstance(row, dict) and isinstance(row.get("nodeid"), str)
              and isinstance(row.get("outcome"), str)
              and isinstance(row.get("clauses") or [], list), path,
              f"malformed test entry {row!r}")
        out[row["nodeid"]] = (row["outcome"], tuple(str(c) for c in row.get("clauses") or ()))
    return out


def _behaviours(records: Any, path: Path) -> dict[str, tuple[Behaviour, ...]]:
    """clause → a baseline's characterization records, in order."""
    _need(isinstance(records, list), path, "records must be a list")
    by_clause: dict[str, list[Behaviour]] = {}
    for r in records:
        _need(isinstance(r, dict) and isinstance(r.get("clause"), str), path,
              f"malformed characterization record {r!r}")
        b = Behaviour(clause=r["clause"], test=str(r.get("test", "")), sent=str(r.get("sent", "")),
                      got=str(r.get("got", "")), follows=bool(r.get("decision_ok")),
                      decision=str(r.get("decision", "")), note=str(r.get("note", "")))
        by_clause.setdefault(b.clause, []).append(b)
    return {c: tuple(rs) for c, rs in by_clause.items()}


def answer_key(sample: Sample) -> str:
    """What a sample's time is compared under: its command, and for a refusal the word
    of it (`MCONNECT FAILURE`, `MSUB ERROR`): a refusal takes another path through the
    firmware than a success, so the two are kept apart, like with like."""
    if "FAILURE" in (sample.result or ""):
        return f"{sample.command} FAILURE"
    return f"{sample.command} ERROR" if "ERROR" in (sample.final or "") else sample.command


def _latency(samples: Iterable[Sample]) -> tuple[dict[str, dict[str, list[float]]],
                                                 dict[str, dict[str, float]]]:
    """answer → test → response times, and answer → test → the budget they were held to
    (answers: `answer_key`)."""
    latency: dict[str, dict[str, list[float]]] = {}
    budgets: dict[str, dict[str, float]] = {}
    for s in samples:
        answer = answer_key(s)
        if s.total_ms is not None:
            latency.setdefault(answer, {}).setdefault(s.test, []).append(
                round(float(s.total_ms), 3))
        if s.budget_ms is not None:
            held = budgets.setdefault(answer, {})
            held[s.test] = max(held.get(s.test, 0.0), float(s.budget_ms))
    return latency, budgets


def _behaviours_of(records: Iterable[OpenPointRecord]) -> dict[str, tuple[Behaviour, ...]]:
    """clause → a run's open-point records, in order, as a baseline compares them."""
    by_clause: dict[str, list[Behaviour]] = {}
    for r in records:
        by_clause.setdefault(r.clause, []).append(Behaviour(
            clause=r.clause, test=r.test, sent=r.sent, got=r.got, follows=r.decision_ok,
            decision=r.decision, note=r.note))
    return {c: tuple(rs) for c, rs in by_clause.items()}


def _run_table(run: RunInfo) -> dict[str, Any]:
    """What a Snapshot (and a baseline) keeps of a run's metadata."""
    written = run.to_json()
    return {k: written[k] for k in _RUN_KEYS if written.get(k) is not None}


def snapshot_of_run(folder: Path) -> Snapshot:
    """A run folder as a Snapshot: results.json is required, the other records optional.
    Records of several modules give a pool of them (`Snapshot.modules`)."""
    _need((folder / RESULTS).is_file(), folder, "not a run folder: it has no results.json")
    try:
        results = read_results(folder / RESULTS)
        characterization = read_optional(read_characterization, folder / CHARACTERIZATION)
        timings = read_optional(read_timings, folder / TIMINGS)
        throughput = read_optional(read_throughput, folder / THROUGHPUT)
    except RecordError as exc:
        raise SnapshotError(str(exc)) from exc
    run = results.run
    notes = []
    if not run.finished:
        notes.append(f"{folder.name}: the run did not finish (results.json has no end time)")
    identity = run.identity or (characterization.device if characterization else {})
    if timings is None:
        notes.append(f"{folder.name}: no timings.json: no latency samples")
    default = run.module or run.rig or "module"
    records = characterization.records if characterization else ()
    samples = timings.samples if timings else ()
    labels = {r.module or default for part in (results.tests, records, samples)
              for r in part} or {default}
    figures = throughput.figures() if throughput else {}
    parts = []
    for label in sorted(labels):
        firmware = _firmware(run.module_identities.get(label) or identity)
        latency, budgets = _latency(s for s in samples if (s.module or default) == label)
        revision = firmware.get("revision") or firmware.get("CGMR") or "unknown firmware"
        parts.append(Snapshot(
            label=f"{revision} (run {folder.name})",
            source=str(folder),
            firmware=firmware,
            run=_run_table(run),
            tests={t.nodeid: (t.outcome, t.clauses) for t in results.tests
                   if (t.module or default) == label},
            characterization=_behaviours_of(r for r in records
                                            if (r.module or default) == label),
            latency=latency,
            throughput=figures if len(labels) == 1 else {},
            notes=tuple(notes),
            budgets=budgets,
            module=label,
        ))
    if len(parts) == 1:
        return parts[0]
    return replace(pool(parts, source=str(folder)), throughput=figures)


_WORST_FIRST = ("error", "failed", "xpassed", "xfailed", "skipped", "passed")


def _worst(a: str, b: str) -> str:
    rank = {o: i for i, o in enumerate(_WORST_FIRST)}
    return min(a, b, key=lambda o: rank.get(o, len(rank)))


def _by_label(parts: list[Snapshot]) -> dict[str, Snapshot]:
    """Every module of `parts` by a label of its own."""
    modules: dict[str, Snapshot] = {}
    for part in parts:
        for label, one in part.by_module.items():
            if label in modules:  # two runs on one place: tell them apart by their folder
                label = f"{label} ({Path(one.source).name})"
            modules[label] = replace(one, module=label)
    return modules


def pool(parts: list[Snapshot], *, source: str) -> Snapshot:
    """Several modules' snapshots as one: a test's outcome is its worst on any module, its
    records and response times those of every module in turn; throughput figures the mean
    over the modules that have them. Each module stays in `modules` by its label."""
    modules = _by_label(parts)
    tests: dict[str, tuple[str, tuple[str, ...]]] = {}
    characterization: dict[str, list[Behaviour]] = {}
    latency: dict[str, dict[str, list[float]]] = {}
    budgets: dict[str, dict[str, float]] = {}
    series: dict[str, dict[str, list[float]]] = {}
    for one in modules.values():
        for test, (outcome, clauses) in one.tests.items():
            before = tests.get(test)
            tests[test] = (outcome, clauses) if before is None else (
                _worst(before[0], outcome), tuple(dict.fromkeys((*before[1], *clauses))))
        for clause, records in one.characterization.items():
            characterization.setdefault(clause, []).extend(records)
        for command, by_test in one.latency.items():
            for test, ms in by_test.items():
                latency.setdefault(command, {}).setdefault(test, []).extend(ms)
        for command, budget_by_test in one.budgets.items():
            for test, budget in budget_by_test.items():
                held = budgets.setdefault(command, {})
                held[test] = max(held.get(test, 0.0), budget)
        for name, figures in one.throughput.items():
            for figure, value in figures.items():
                series.setdefault(name, {}).setdefault(figure, []).append(value)
    first = next(iter(modules.values()))
    revisions = sorted({m.revision for m in modules.values()})
    label = (f"{revisions[0]} on {len(modules)} modules" if len(revisions) == 1
             else f"{len(modules)} modules of {len(revisions)} firmwares")
    return Snapshot(
        label=f"{label} ({', '.join(modules)})",
        source=source,
        firmware=first.firmware if len(revisions) == 1 else {"model": first.model},
        run=first.run,
        tests=tests,
        characterization={c: tuple(rs) for c, rs in characterization.items()},
        latency=latency,
        throughput={name: {f: sum(v) / len(v) for f, v in figures.items()}
                    for name, figures in series.items()},
        accepted=first.accepted,
        notes=tuple(dict.fromkeys(n for m in modules.values() for n in m.notes)),
        budgets=budgets,
        modules=modules,
    )


# ---------------------------------------------------------------------------- the baseline file

_RUN_TOKEN = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{8}(?![0-9A-Za-z])")
_HOST_PORT = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}|localhost),\d{1,5}\b")
_DURATION = re.compile(r"\b\d+(?:\.\d+)?\s?(ms|s)\b")


def normalize(text: str) -> str:
    """`text` without what differs between two runs of the same firmware: per-test topic
    and client-id tokens, the broker's port, measured durations (latency has its own
    section). A baseline keeps records normalized, so that a diff shows only changes."""
    text = _RUN_TOKEN.sub("<id>", text)
    text = _HOST_PORT.sub(r"\1,<port>", text)
    return _DURATION.sub(r"<t> \1", text)



def _body(snapshot: Snapshot) -> dict[str, Any]:
    """What a baseline keeps of one module, or of a pool of them."""
    return {
        "firmware": snapshot.firmware,
        "tests": {t: {"outcome": o, "clauses": list(c)} for t, (o, c) in snapshot.tests.items()},
        "characterization": {
            clause: [{"test": b.test, "sent": normalize(b.sent), "got": normalize(b.got),
                      "decision_ok": b.follows,
                      "decision": b.decision, "note": b.note} for b in records]
            for clause, records in snapshot.characterization.items()
        },
        "latency": {command: {test: sorted(ms) for test, ms in by_test.items()}
                    for command, by_test in snapshot.latency.items()},
        "throughput": snapshot.throughput,
    }


def document_of(snapshot: Snapshot, accepted: Mapping[str, str]) -> dict[str, Any]:
    """The baseline.json document for `snapshot`, accepted as `accepted` says; a pool of
    modules keeps each module's own records under `modules` too."""
    document = {"schema": SCHEMA, "kind": KIND, "accepted": dict(accepted),
                "run": snapshot.run, **_body(snapshot)}
    if snapshot.modules:
        document["modules"] = {label: _body(one) for label, one in snapshot.modules.items()}
    else:
        document["module"] = snapshot.module
    return document


def _snapshot_of_body(document: Mapping[str, Any], path: Path, **fixed: Any) -> Snapshot:
    for key in ("firmware", "tests", "characterization", "latency", "throughput"):
        _need(isinstance(document.get(key), dict), path, f"baseline lacks its {key!r} table")
    tests = _tests({"tests": [{"nodeid": k, **v} if isinstance(v, dict) else v
                              for k, v in document["tests"].items()]}, path)
    records = [{"clause": clause, **r} if isinstance(r, dict) else r
               for clause, rs in document["characterization"].items()
               for r in (rs if isinstance(rs, list) else [rs])]
    latency: dict[str, dict[str, list[float]]] = {}
    for command, by_test in document["latency"].items():
        _need(isinstance(by_test, dict) and all(
            isinstance(v, list) and all(isinstance(x, int | float) for x in v)
            for v in by_test.values()), path, f"latency of {command} is malformed")
        latency[command] = {t: [float(x) for x in v] for t, v in by_test.items()}
    _need(all(isinstance(v, int | float) and not isinstance(v, bool)
              for figures in document["throughput"].values() if isinstance(figures, dict)
              for v in figures.values()), path, "a throughput figure is not a number")
    throughput = {s: {f: float(v) for f, v in figures.items()}
                  for s, figures in document["throughput"].items() if isinstance(figures, dict)}
    _need(all(isinstance(v, str) for v in document["firmware"].values()), path,
          "the firmware table holds something other than strings")
    return Snapshot(firmware={k: str(v) for k, v in document["firmware"].items()}, tests=tests,
                    characterization=_behaviours(records, path), latency=latency,
                    throughput=throughput, **fixed)


def snapshot_of_document(document: Any, path: Path) -> Snapshot:
    """A baseline.json document as a Snapshot; SnapshotError when it is not one."""
    _need(isinstance(document, dict) and document.get("kind") == KIND, path,
          f"not a baseline (no \"kind\": \"{KIND}\")")
    _need(document.get("schema") == SCHEMA, path,
          f"baseline schema {document.get('schema')!r}; this harness reads schema {SCHEMA}")
    for key in ("accepted", "run"):
        _need(isinstance(document.get(key), dict), path, f"baseline lacks its {key!r} table")
    accepted = {k: str(v) for k, v in document["accepted"].items()}
    firmware = document.get("firmware") if isinstance(document.get("firmware"), dict) else {}
    revision = firmware.get("revision") or firmware.get("CGMR") or "unknown firmware"
    when = accepted.get("at", "")[:10]
    fixed = {"label": f"{revision} (baseline accepted {when})" if when
             else f"{revision} (baseline)",
             "source": str(path), "run": dict(document["run"]), "accepted": accepted}
    modules = document.get("modules")
    _need(modules is None or (isinstance(modules, dict) and all(
        isinstance(m, dict) for m in modules.values())), path, "its modules are malformed")
    return _snapshot_of_body(document, path, **fixed, module=str(document.get("module", "")),
                             modules={label: _snapshot_of_body(m, path, **fixed,
                                                               module=label)
                                      for label, m in (modules or {}).items()})


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "unknown"


def baseline_path(into: Path, snapshot: Snapshot) -> Path:
    """baselines/<model>/<firmware revision>/baseline.json."""
    return into / _safe(snapshot.model) / _safe(snapshot.revision) / BASELINE_FILE


def write_baseline(path: Path, document: Mapping[str, Any]) -> None:
    write_atomic(path, json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def accept(snapshot: Snapshot, into: Path, *, by: str, now: datetime, note: str = "",
           force: bool = False) -> Path:
    """Keep a run's snapshot as the accepted baseline of its model; returns the file."""
    revisions = sorted({m.revision for m in snapshot.by_module.values()})
    if len(revisions) > 1:
        raise SnapshotError(f"{snapshot.source}: its modules run {', '.join(revisions)}: a "
                            "baseline is one firmware's")
    if "unknown" in (snapshot.model, snapshot.revision):
        raise SnapshotError(f"{snapshot.source}: the run does not say which firmware it "
                            "tested (no ATI/CGMR identity): nothing to accept")
    target = baseline_path(into, snapshot)
    if target.exists() and not force:
        raise SnapshotError(f"{target} exists: firmware {snapshot.revision} already has a "
                            "baseline (--force replaces it)")
    sources = snapshot.source.split(", ")  # a farm's runs: each of them
    accepted = {"by": by, "at": now.isoformat(timespec="microseconds"),
                "source": ", ".join(str(Path(one).resolve()) for one in sources)}
    if note:
        accepted["note"] = note
    write_baseline(target, document_of(snapshot, accepted))
    return target


# ---------------------------------------------------------------------------- finding one


def baselines_under(root: Path) -> list[Path]:
    """Every baseline.json below `root`, sorted by path."""
    return sorted(root.rglob(BASELINE_FILE)) if root.is_dir() else []


def load(path: Path) -> Snapshot:
    """A baseline or run, named by any of: a baseline.json, a run folder (or its
    results.json), a baseline's folder, or a folder of baselines of one model (the most
    recently accepted one)."""
    if path.is_file():
        document = _read_json(path)
        if isinstance(document, dict) and document.get("kind") == KIND:
            return snapshot_of_document(document, path)
        if path.name == "results.json":
            return snapshot_of_run(path.parent)
        raise SnapshotError(f"{path}: neither a baseline.json nor a run's results.json")
    if not path.is_dir():
        raise SnapshotError(f"{path}: no such file or folder")
    if (path / BASELINE_FILE).is_file():
        return load(path / BASELINE_FILE)
    if (path / "results.json").is_file():
        return snapshot_of_run(path)
    found = [load(p) for p in baselines_under(path)]
    if not found:
        raise SnapshotError(f"{path}: not a run folder (no results.json), not a baseline (no "
                            f"{BASELINE_FILE}), and no baseline below it")
    models = sorted({s.model for s in found})
    if len(models) > 1:
        raise SnapshotError(f"{path} holds baselines of several models ({', '.join(models)}): "
                            "name one model's folder")
    return max(found, key=accepted_at)


def accepted_at(snapshot: Snapshot) -> str:
    """When a baseline was accepted (ISO 8601, sorts by time); "" for a run."""
    return (snapshot.accepted or {}).get("at", "")
