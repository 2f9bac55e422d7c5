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
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from hil.device import mask_imei
from hil.files import write_atomic

SCHEMA = 1
KIND = "l506-hil firmware baseline"
BASELINE_FILE = "baseline.json"


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


def _optional(path: Path) -> Any:
    return _read_json(path) if path.is_file() else None


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
    rows = document.get("tests") if isinstance(document, dict) else None
    _need(isinstance(rows, list), path, "has no list of tests: not a results.json")
    out = {}
    for row in rows:
        _need(isinstance(row, dict) and isinstance(row.get("nodeid"), str)
              and isinstance(row.get("outcome"), str)
              and isinstance(row.get("clauses") or [], list), path,
              f"malformed test entry {row!r}")
        out[row["nodeid"]] = (row["outcome"], tuple(str(c) for c in row.get("clauses") or ()))
    return out


def _behaviours(records: Any, path: Path) -> dict[str, tuple[Behaviour, ...]]:
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


def _latency(document: Any, path: Path) -> dict[str, dict[str, list[float]]]:
    samples = document.get("samples") if isinstance(document, dict) else None
    _need(isinstance(samples, list), path, "has no list of samples: not a timings.json")
    out: dict[str, dict[str, list[float]]] = {}
    for s in samples:
        _need(isinstance(s, dict) and isinstance(s.get("command"), str), path,
              f"malformed sample {s!r}")
        total = s.get("total_ms")
        if isinstance(total, int | float) and not isinstance(total, bool):
            out.setdefault(s["command"], {}).setdefault(str(s.get("test", "")), []).append(
                round(float(total), 3))
    return out


#: Where a throughput.json keeps each figure, under the name a baseline keeps it by.
_THROUGHPUT_FIGURES = {
    "messages_per_s": ("messages_per_s",),
    "payload_bytes_per_s": ("payload_bytes_per_s",),
    "line_fraction": ("line", "fraction"),
    "publish_latency_p50_ms": ("publish_latency_ms", "p50"),
    "end_to_end_latency_p50_ms": ("end_to_end_latency_ms", "p50"),
}


def _dig(data: Any, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    ok = isinstance(data, int | float) and not isinstance(data, bool)
    return float(data) if ok else None


def throughput_figures(document: Any) -> dict[str, dict[str, float]]:
    """series → figure → value from a throughput.json (suites/test_throughput.py): each
    table with a messages_per_s is a series (qos0, qos1…)."""
    if not isinstance(document, dict):
        return {}
    out = {}
    for name, value in document.items():
        if isinstance(value, dict) and "messages_per_s" in value:
            out[name] = {f: v for f, keys in _THROUGHPUT_FIGURES.items()
                         if (v := _dig(value, keys)) is not None}
    return out


def snapshot_of_run(folder: Path) -> Snapshot:
    """A run folder as a Snapshot: results.json is required, the other records optional."""
    results_path = folder / "results.json"
    _need(results_path.is_file(), folder, "not a run folder: it has no results.json")
    results = _read_json(results_path)
    _need(isinstance(results, dict) and isinstance(results.get("run"), dict), results_path,
          "has no run metadata: not a results.json")
    run = results["run"]
    notes = []
    if not run.get("finished"):
        notes.append(f"{folder.name}: the run did not finish (results.json has no end time)")
    characterization = _optional(folder / "characterization.json")
    timings = _optional(folder / "timings.json")
    throughput = _optional(folder / "throughput.json")
    identity = run.get("identity") or {}
    if not identity and isinstance(characterization, dict):
        identity = characterization.get("device") or {}
    _need(isinstance(identity, dict) and all(isinstance(v, str) for v in identity.values()),
          results_path, "the module's identity is not a table of strings")
    firmware = _firmware(identity)
    if timings is None:
        notes.append(f"{folder.name}: no timings.json: no latency samples")
    revision = firmware.get("revision") or firmware.get("CGMR") or "unknown firmware"
    return Snapshot(
        label=f"{revision} (run {folder.name})",
        source=str(folder),
        firmware=firmware,
        run={k: run[k] for k in _RUN_KEYS if k in run},
        tests=_tests(results, results_path),
        characterization=(
            {} if characterization is None else _behaviours(
                characterization.get("records") if isinstance(characterization, dict)
                else None, folder / "characterization.json")
        ),
        latency={} if timings is None else _latency(timings, folder / "timings.json"),
        throughput=throughput_figures(throughput),
        notes=tuple(notes),
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



def document_of(snapshot: Snapshot, accepted: Mapping[str, str]) -> dict[str, Any]:
    """The baseline.json document for `snapshot`, accepted as `accepted` says."""
    return {
        "schema": SCHEMA,
        "kind": KIND,
        "accepted": dict(accepted),
        "firmware": snapshot.firmware,
        "run": snapshot.run,
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


def snapshot_of_document(document: Any, path: Path) -> Snapshot:
    """A baseline.json document as a Snapshot; SnapshotError when it is not one."""
    _need(isinstance(document, dict) and document.get("kind") == KIND, path,
          f"not a baseline (no \"kind\": \"{KIND}\")")
    _need(document.get("schema") == SCHEMA, path,
          f"baseline schema {document.get('schema')!r}; this harness reads schema {SCHEMA}")
    for key, kind in (("accepted", dict), ("firmware", dict), ("run", dict), ("tests", dict),
                      ("characterization", dict), ("latency", dict), ("throughput", dict)):
        _need(isinstance(document.get(key), kind), path, f"baseline lacks its {key!r} table")
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
    accepted = {k: str(v) for k, v in document["accepted"].items()}
    firmware = {k: str(v) for k, v in document["firmware"].items()}
    revision = firmware.get("revision") or firmware.get("CGMR") or "unknown firmware"
    when = accepted.get("at", "")[:10]
    return Snapshot(
        label=f"{revision} (baseline accepted {when})" if when else f"{revision} (baseline)",
        source=str(path),
        firmware=firmware,
        run=dict(document["run"]),
        tests=tests,
        characterization=_behaviours(records, path),
        latency=latency,
        throughput=throughput,
        accepted=accepted,
    )


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
    if "unknown" in (snapshot.model, snapshot.revision):
        raise SnapshotError(f"{snapshot.source}: the run does not say which firmware it "
                            "tested (no ATI/CGMR identity): nothing to accept")
    target = baseline_path(into, snapshot)
    if target.exists() and not force:
        raise SnapshotError(f"{target} exists: firmware {snapshot.revision} already has a "
                            "baseline (--force replaces it)")
    accepted = {"by": by, "at": now.isoformat(timespec="microseconds"),
                "source": str(Path(snapshot.source).resolve())}
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
