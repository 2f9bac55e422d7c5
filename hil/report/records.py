"""The files of a run folder as records: one frozen dataclass per file, read and written here.

A run folder (reports/<UTC time>/) holds results.json, characterization.json, timings.json,
traceability.json and throughput.json. Each is a record below with `to_json()` and a
`read_*` function; `write_record` writes any of them atomically. Reading validates every
field once and raises one `RecordError(path, what is wrong)`, so a reader (the run page,
`hil compare`, the farm's merge) gets typed values or one line to show.

Every file carries `schema`: a file without one is the first layout (schema 1, what runs
wrote before the field existed); a file of a newer schema than `SCHEMA` is refused, naming
both, rather than read wrongly. The table of files, writers and readers is in docs/report.md.
This module is data: it imports nothing of the bench (no port, no rig).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from hil.report.files import write_atomic

#: The schema every file of a run folder is written in, and the newest one read.
SCHEMA = 1

RESULTS = "results.json"
CHARACTERIZATION = "characterization.json"
TIMINGS = "timings.json"
TRACEABILITY = "traceability.json"
THROUGHPUT = "throughput.json"

#: The figures a timing sample has, in the order of an exchange.
METRICS = ("first_byte_ms", "prompt_ms", "final_ms", "result_ms", "total_ms")


class RecordError(Exception):
    """A file of a run folder is missing, unreadable, or not what its name says."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(f"{path}: {what}")
        self.path = path
        self.what = what


# ---------------------------------------------------------------------------- validation


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


class _Table:
    """One JSON object of a file being read: each getter checks a field's type, and a wrong
    one is a RecordError naming the file and the field (`tests[2].clauses`)."""

    def __init__(self, data: Any, path: Path, where: str = "") -> None:
        if not isinstance(data, dict):
            place = where or "the file"
            raise RecordError(path, f"{place} must be a table (a JSON object), not {_shown(data)}")
        self.data: dict[str, Any] = data
        self.path = path
        self.where = where

    def name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, expected: str) -> RecordError:
        return RecordError(self.path, f"{self.name(key)} must be {expected}, "
                                      f"not {_shown(self.data[key])}")

    def _get(self, key: str, required: bool) -> Any:
        if key not in self.data:
            if required:
                raise RecordError(self.path, f"{self.name(key)} is missing")
            return None
        return self.data[key]

    def text(self, key: str, default: str | None = None) -> str:
        """A string; `default` when the field is absent (required when there is none)."""
        if key not in self.data and default is not None:
            return default
        value = self._get(key, True)
        if not isinstance(value, str):
            raise self.fail(key, "a string")
        return value

    def text_or_none(self, key: str) -> str | None:
        value = self._get(key, False)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, "a string or null")
        return value

    def number_or_none(self, key: str) -> float | None:
        value = self._get(key, False)
        if value is not None and not _is_number(value):
            raise self.fail(key, "a number or null")
        return None if value is None else float(value)

    def number(self, key: str, default: float | None = None) -> float:
        """A number; `default` when the field is absent (required when there is none)."""
        if key not in self.data and default is not None:
            return default
        value = self._get(key, True)
        if not _is_number(value):
            raise self.fail(key, "a number")
        return float(value)

    def integer_or_none(self, key: str) -> int | None:
        value = self._get(key, False)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool)):
            raise self.fail(key, "a whole number or null")
        return value

    def flag(self, key: str, default: bool | None = None) -> bool:
        """true or false; `default` when the field is absent (required when there is none)."""
        if key not in self.data and default is not None:
            return default
        value = self._get(key, True)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self._get(key, False)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "a list of strings")
        return tuple(value)

    def text_table(self, key: str) -> dict[str, str]:
        value = self._get(key, False)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.fail(key, "a table of strings")
        return dict(value)

    def number_table(self, key: str) -> dict[str, Any]:
        value = self._get(key, False)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(_is_number(v) for v in value.values()):
            raise self.fail(key, "a table of numbers")
        return dict(value)

    def table(self, key: str) -> _Table | None:
        value = self._get(key, False)
        return None if value is None else _Table(value, self.path, self.name(key))

    def tables(self, key: str) -> list[_Table]:
        value = self._get(key, False)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, "a list")
        return [_Table(row, self.path, f"{self.name(key)}[{i}]") for i, row in enumerate(value)]

    def rest(self, known: tuple[str, ...]) -> dict[str, Any]:
        """The fields this reader does not know, kept as they are."""
        return {k: v for k, v in self.data.items() if k not in known and k != "schema"}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _document(path: Path) -> _Table:
    """The file's top table, its schema checked: absent is 1, newer than SCHEMA refused."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RecordError(path, "no such file") from exc
    except IsADirectoryError as exc:
        raise RecordError(path, "is a folder, not a file") from exc
    except OSError as exc:
        raise RecordError(path, f"cannot read it: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise RecordError(path, f"not valid JSON ({exc}): corrupt or cut short") from exc
    top = _Table(data, path)
    schema = data.get("schema", 1)
    if not (isinstance(schema, int) and not isinstance(schema, bool)) or schema < 1:
        raise RecordError(path, f"schema must be a whole number from 1, not {_shown(schema)}")
    if schema > SCHEMA:
        raise RecordError(path, f"written in schema {schema}, newer than the schema {SCHEMA} "
                                "this harness reads: update the harness to read it")
    return top


def _optional(value: Any, key: str) -> dict[str, Any]:
    """`{key: value}`, or nothing when value is None: optional fields stay out of a file."""
    return {} if value is None else {key: value}


# ---------------------------------------------------------------------------- results.json


@dataclass(frozen=True)
class ResultRow:
    """One test of results.json: its outcome, time, clauses and, for a failure, why."""

    nodeid: str
    outcome: str
    duration_s: float = 0.0
    clauses: tuple[str, ...] = ()
    category: str | None = None
    message: str | None = None
    #: The module it ran on, in a run of several (a farm); None for the run's own module.
    module: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"nodeid": self.nodeid, "outcome": self.outcome, "duration_s": self.duration_s,
                "clauses": list(self.clauses), "category": self.category,
                "message": self.message, **_optional(self.module, "module")}

    @classmethod
    def of(cls, t: _Table) -> ResultRow:
        return cls(nodeid=t.text("nodeid"), outcome=t.text("outcome"),
                   duration_s=t.number("duration_s", 0.0), clauses=t.texts("clauses"),
                   category=t.text_or_none("category"), message=t.text_or_none("message"),
                   module=t.text_or_none("module"))


@dataclass(frozen=True)
class RunInfo:
    """The `run` table of results.json: where, on what and with what the run ran."""

    started: str | None = None
    finished: str | None = None
    rig: str | None = None
    rig_file: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    dut: str | None = None
    port: str | None = None
    latency_timer: str | None = None
    profile: str | None = None
    #: The module's identity (model, revision, ATI, CGMR, IMEI masked; module, place).
    identity: dict[str, str] = field(default_factory=dict)
    harness: str | None = None
    python: str | None = None
    args: tuple[str, ...] = ()
    #: The run's module label, when it is not the rig's name.
    module: str | None = None
    #: A farm's merged run: how many modules ran (`"modules": 2`) ...
    module_count: int | None = None
    #: ... or each module's identity by label (`"modules": {label: {"identity": {...}}}`).
    module_identities: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        modules: dict[str, Any] = {}
        if self.module_count is not None:
            modules = {"modules": self.module_count}
        elif self.module_identities:
            modules = {"modules": {label: {"identity": dict(identity)}
                                   for label, identity in self.module_identities.items()}}
        return {"started": self.started, "finished": self.finished, "rig": self.rig,
                "rig_file": self.rig_file, "labels": dict(self.labels), "dut": self.dut,
                "port": self.port, "latency_timer": self.latency_timer,
                "profile": self.profile, "identity": dict(self.identity),
                "harness": self.harness, "python": self.python, "args": list(self.args),
                **_optional(self.module, "module"), **modules}

    @classmethod
    def of(cls, t: _Table) -> RunInfo:
        count, identities = None, {}
        modules = t.data.get("modules")
        if isinstance(modules, int) and not isinstance(modules, bool):
            count = modules
        elif modules is not None:
            described = _Table(modules, t.path, t.name("modules"))
            for label, one in described.data.items():
                identities[label] = _Table(one, t.path, described.name(label)).text_table(
                    "identity")
        return cls(started=t.text_or_none("started"), finished=t.text_or_none("finished"),
                   rig=t.text_or_none("rig"), rig_file=t.text_or_none("rig_file"),
                   labels=t.text_table("labels"), dut=t.text_or_none("dut"),
                   port=t.text_or_none("port"), latency_timer=t.text_or_none("latency_timer"),
                   profile=t.text_or_none("profile"), identity=t.text_table("identity"),
                   harness=t.text_or_none("harness"), python=t.text_or_none("python"),
                   args=t.texts("args"), module=t.text_or_none("module"),
                   module_count=count, module_identities=identities)


@dataclass(frozen=True)
class ModuleSummary:
    """One module of a farm's merged results.json: where it was, what it ran, its totals."""

    module: str
    folder: str
    place: str | None = None
    firmware: str | None = None
    imei: str | None = None
    totals: dict[str, int] = field(default_factory=dict)
    finished: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"module": self.module, "place": self.place, "firmware": self.firmware,
                "imei": self.imei, "folder": self.folder, "totals": dict(self.totals),
                "finished": self.finished}

    @classmethod
    def of(cls, t: _Table) -> ModuleSummary:
        return cls(module=t.text("module"), folder=t.text("folder"),
                   place=t.text_or_none("place"), firmware=t.text_or_none("firmware"),
                   imei=t.text_or_none("imei"), totals=_totals(t),
                   finished=t.text_or_none("finished"))


def _totals(t: _Table) -> dict[str, int]:
    totals = t.number_table("totals")
    if not all(isinstance(n, int) for n in totals.values()):
        raise t.fail("totals", "a table of whole numbers")
    return totals


@dataclass(frozen=True)
class RunResults:
    """results.json: the run's metadata and every test's outcome (a farm: and its modules)."""

    run: RunInfo
    tests: tuple[ResultRow, ...] = ()
    totals: dict[str, int] = field(default_factory=dict)
    modules: tuple[ModuleSummary, ...] = ()
    schema: int = SCHEMA

    def to_json(self) -> dict[str, Any]:
        modules = {"modules": [m.to_json() for m in self.modules]} if self.modules else {}
        return {"schema": SCHEMA, "run": self.run.to_json(), **modules,
                "totals": dict(self.totals), "tests": [t.to_json() for t in self.tests]}


def read_results(path: Path) -> RunResults:
    top = _document(path)
    run = top.table("run")
    if run is None:
        raise RecordError(path, "has no run metadata (\"run\"): not a results.json")
    if "tests" not in top.data:
        raise RecordError(path, "has no list of tests: not a results.json")
    return RunResults(run=RunInfo.of(run), tests=tuple(ResultRow.of(t) for t in
                                                         top.tables("tests")),
                      totals=_totals(top),
                      modules=tuple(ModuleSummary.of(m) for m in top.tables("modules")),
                      schema=top.data.get("schema", 1))


# ---------------------------------------------------------------------------- characterization.json


@dataclass(frozen=True)
class OpenPointRecord:
    """What the firmware did on an open point (a Q clause), as a test recorded it."""

    clause: str
    #: Whether the firmware did what clauses.md decided for the simulator.
    decision_ok: bool
    test: str = ""
    sent: str = ""
    got: str = ""
    decision: str = ""
    note: str = ""
    #: When it was recorded (UTC, ISO 8601).
    t: str = ""
    #: The module it was made on, in a run of several; None for the run's own module.
    module: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"clause": self.clause, "test": self.test, "sent": self.sent, "got": self.got,
                "decision_ok": self.decision_ok, "decision": self.decision, "note": self.note,
                "t": self.t, **_optional(self.module, "module")}

    @classmethod
    def of(cls, t: _Table) -> OpenPointRecord:
        return cls(clause=t.text("clause"), decision_ok=t.flag("decision_ok"),
                   test=t.text("test", ""), sent=t.text("sent", ""), got=t.text("got", ""),
                   decision=t.text("decision", ""), note=t.text("note", ""), t=t.text("t", ""),
                   module=t.text_or_none("module"))


@dataclass(frozen=True)
class Characterization:
    """characterization.json: the module's identity and every open-point record, in order."""

    device: dict[str, str]
    records: tuple[OpenPointRecord, ...] = ()
    schema: int = SCHEMA

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "device": dict(self.device),
                "records": [r.to_json() for r in self.records]}


def read_characterization(path: Path) -> Characterization:
    top = _document(path)
    if "records" not in top.data:
        raise RecordError(path, "has no list of records: not a characterization.json")
    return Characterization(device=top.text_table("device"),
                            records=tuple(OpenPointRecord.of(r) for r in top.tables("records")),
                            schema=top.data.get("schema", 1))


# ---------------------------------------------------------------------------- timings.json


@dataclass(frozen=True, slots=True)
class Sample:
    """One command's figures; ms from the moment it was sent, None for what did not come.

    `t_s` is when it was sent, in seconds from the start of the recording; `data_bytes`
    the raw data written after the prompt (MPUBEX); `budget_ms` the budget it was held to.
    """

    command: str
    test: str = ""
    phase: str = ""
    t_s: float = 0.0
    first_byte_ms: float | None = None
    prompt_ms: float | None = None
    final_ms: float | None = None
    result_ms: float | None = None
    total_ms: float | None = None
    final: str | None = None
    result: str | None = None
    data_bytes: int = 0
    qos: int | None = None
    budget_ms: float | None = None
    over_budget: bool = False
    text: str = ""
    #: The module it was measured on, in a run of several; None for the run's own module.
    module: str | None = None

    def figures(self) -> dict[str, float]:
        """The metrics this sample has, by name."""
        return {m: v for m in METRICS if (v := getattr(self, m)) is not None}

    def to_json(self) -> dict[str, Any]:
        return {"command": self.command, "test": self.test, "phase": self.phase,
                "t_s": _round(self.t_s, 6),
                **{m: _round(getattr(self, m), 3) for m in METRICS},
                "final": self.final, "result": self.result, "data_bytes": self.data_bytes,
                "qos": self.qos, "budget_ms": self.budget_ms, "over_budget": self.over_budget,
                "text": self.text, **_optional(self.module, "module")}

    @classmethod
    def of(cls, t: _Table) -> Sample:
        qos = t.integer_or_none("qos")
        data_bytes = t.integer_or_none("data_bytes")
        return cls(command=t.text("command"), test=t.text("test", ""), phase=t.text("phase", ""),
                   t_s=t.number("t_s", 0.0),
                   **{m: t.number_or_none(m) for m in METRICS},
                   final=t.text_or_none("final"), result=t.text_or_none("result"),
                   data_bytes=data_bytes or 0, qos=qos, budget_ms=t.number_or_none("budget_ms"),
                   over_budget=t.flag("over_budget", False), text=t.text("text", ""),
                   module=t.text_or_none("module"))


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class CommandFigures:
    """One command's aggregate in timings.json: statistics per metric and the run's budget."""

    #: metric (total, final, first_byte...) → n, min, p50, p95, p99, max, mean
    metrics: dict[str, dict[str, float]]
    budget_ms: float | None = None

    @property
    def total(self) -> dict[str, float] | None:
        return self.metrics.get("total")

    def to_json(self) -> dict[str, Any]:
        return {**{m: dict(s) for m, s in self.metrics.items()}, "budget_ms": self.budget_ms}

    @classmethod
    def of(cls, t: _Table) -> CommandFigures:
        metrics = {m: t.number_table(m) for m in t.data if m != "budget_ms"}
        return cls(metrics=metrics, budget_ms=t.number_or_none("budget_ms"))


@dataclass(frozen=True)
class OverBudget:
    """A response that took longer than the budget it was held to."""

    command: str
    test: str = ""
    text: str = ""
    total_ms: float | None = None
    budget_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"test": self.test, "command": self.command, "text": self.text,
                "total_ms": self.total_ms, "budget_ms": self.budget_ms}

    @classmethod
    def of(cls, t: _Table) -> OverBudget:
        return cls(command=t.text("command"), test=t.text("test", ""), text=t.text("text", ""),
                   total_ms=t.number_or_none("total_ms"), budget_ms=t.number_or_none("budget_ms"))


_TIMINGS_META = ("generated", "dut", "rig", "firmware", "latency_model", "baud", "tests")


@dataclass(frozen=True)
class Timings:
    """timings.json: per-command aggregates, the responses over budget, every sample, and
    what the run was (rig, DUT, firmware, the latency model, the line's baud rate)."""

    samples: tuple[Sample, ...] = ()
    commands: dict[str, CommandFigures] = field(default_factory=dict)
    over_budget: tuple[OverBudget, ...] = ()
    generated: str | None = None
    dut: str | None = None
    rig: str | None = None
    firmware: str | None = None
    latency_model: str | None = None
    baud: int | None = None
    tests: int | None = None
    #: Whatever else the run put beside them (the budgets, the units), kept as written.
    extra: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA

    def to_json(self) -> dict[str, Any]:
        meta = {k: getattr(self, k) for k in _TIMINGS_META if getattr(self, k) is not None}
        return {"schema": SCHEMA, **meta, **self.extra,
                "commands": {c: f.to_json() for c, f in self.commands.items()},
                "over_budget": [o.to_json() for o in self.over_budget],
                "samples": [s.to_json() for s in self.samples]}


def read_timings(path: Path) -> Timings:
    top = _document(path)
    if "samples" not in top.data and "commands" not in top.data:
        raise RecordError(path, "has no list of samples: not a timings.json")
    commands = top.table("commands")
    return Timings(
        samples=tuple(Sample.of(s) for s in top.tables("samples")),
        commands={c: CommandFigures.of(_Table(v, path, f"commands.{c}"))
                  for c, v in (commands.data if commands else {}).items()},
        over_budget=tuple(OverBudget.of(o) for o in top.tables("over_budget")),
        generated=top.text_or_none("generated"), dut=top.text_or_none("dut"),
        rig=top.text_or_none("rig"), firmware=top.text_or_none("firmware"),
        latency_model=top.text_or_none("latency_model"), baud=top.integer_or_none("baud"),
        tests=top.integer_or_none("tests"),
        extra=top.rest((*_TIMINGS_META, "commands", "over_budget", "samples")),
        schema=top.data.get("schema", 1))


# ---------------------------------------------------------------------------- traceability.json


@dataclass(frozen=True)
class ClauseTest:
    """One test of a clause in traceability.json, with what it did for that clause."""

    test: str
    outcome: str = ""
    reason: str = ""
    #: Whether it asserts the clause's S text (not only records its open points).
    asserts: bool = False
    skipped_parts: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"test": self.test, "outcome": self.outcome, "reason": self.reason,
                "asserts": self.asserts, "skipped_parts": list(self.skipped_parts)}

    @classmethod
    def of(cls, t: _Table) -> ClauseTest:
        return cls(test=t.text("test"), outcome=t.text("outcome", ""),
                   reason=t.text("reason", ""), asserts=t.flag("asserts", False),
                   skipped_parts=t.texts("skipped_parts"))


@dataclass(frozen=True)
class ClauseVerdict:
    """One clause of clauses.md with its verdict in this run, and the tests behind it."""

    id: str
    verdict: str
    kind: str = ""
    section: str = ""
    text: str = ""
    scope: str = ""
    open_point: bool = False
    unchecked: tuple[str, ...] = ()
    tests: tuple[ClauseTest, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "section": self.section, "text": self.text,
                "scope": self.scope, "open_point": self.open_point, "verdict": self.verdict,
                "unchecked": list(self.unchecked), "tests": [t.to_json() for t in self.tests]}

    @classmethod
    def of(cls, t: _Table) -> ClauseVerdict:
        return cls(id=t.text("id"), verdict=t.text("verdict"), kind=t.text("kind", ""),
                   section=t.text("section", ""), text=t.text("text", ""),
                   scope=t.text("scope", ""), open_point=t.flag("open_point", False),
                   unchecked=t.texts("unchecked"),
                   tests=tuple(ClauseTest.of(x) for x in t.tables("tests")))


@dataclass(frozen=True)
class TraceabilityMatrix:
    """traceability.json: each clause's verdict, as fixtures/spec.py derived it."""

    clauses_file: str
    summary: dict[str, int] = field(default_factory=dict)
    clauses: tuple[ClauseVerdict, ...] = ()
    schema: int = SCHEMA

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "clauses_file": self.clauses_file,
                "summary": dict(self.summary), "clauses": [c.to_json() for c in self.clauses]}


def read_traceability(path: Path) -> TraceabilityMatrix:
    top = _document(path)
    summary = top.number_table("summary")
    if not all(isinstance(n, int) for n in summary.values()):
        raise top.fail("summary", "a table of whole numbers")
    return TraceabilityMatrix(clauses_file=top.text("clauses_file", ""), summary=summary,
                        clauses=tuple(ClauseVerdict.of(c) for c in top.tables("clauses")),
                        schema=top.data.get("schema", 1))


# ---------------------------------------------------------------------------- throughput.json


@dataclass(frozen=True)
class ThroughputSeries:
    """One QoS's run of back-to-back MPUBEX in throughput.json."""

    messages_per_s: float
    messages: int | None = None
    seconds: float | None = None
    payload_bytes_per_s: float | None = None
    #: n, min, p50, p95, p99, max, mean (ms); None when nothing was measured
    publish_latency_ms: dict[str, float] | None = None
    end_to_end_latency_ms: dict[str, float] | None = None
    #: baud, bytes each way, echo bytes, line seconds, fraction of the line rate
    line: dict[str, float] = field(default_factory=dict)
    duplicates: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"messages": self.messages, "seconds": self.seconds,
                "messages_per_s": self.messages_per_s,
                "payload_bytes_per_s": self.payload_bytes_per_s,
                "publish_latency_ms": self.publish_latency_ms,
                "end_to_end_latency_ms": self.end_to_end_latency_ms,
                "line": dict(self.line), "duplicates": self.duplicates}

    def figures(self) -> dict[str, float]:
        """The figures a baseline keeps of the series, under its names for them."""
        out = {"messages_per_s": float(self.messages_per_s)}
        for name, value in (
                ("payload_bytes_per_s", self.payload_bytes_per_s),
                ("line_fraction", self.line.get("fraction")),
                ("publish_latency_p50_ms", (self.publish_latency_ms or {}).get("p50")),
                ("end_to_end_latency_p50_ms", (self.end_to_end_latency_ms or {}).get("p50"))):
            if value is not None:
                out[name] = float(value)
        return out

    @classmethod
    def of(cls, t: _Table) -> ThroughputSeries:
        def stats(key: str) -> dict[str, float] | None:
            return None if t.data.get(key) is None else t.number_table(key)

        return cls(messages_per_s=t.number("messages_per_s"),
                   messages=t.integer_or_none("messages"), seconds=t.number_or_none("seconds"),
                   payload_bytes_per_s=t.number_or_none("payload_bytes_per_s"),
                   publish_latency_ms=stats("publish_latency_ms"),
                   end_to_end_latency_ms=stats("end_to_end_latency_ms"),
                   line=t.number_table("line"), duplicates=t.integer_or_none("duplicates"))


_THROUGHPUT_HEAD = ("clause", "messages_per_qos", "message_bytes")


@dataclass(frozen=True)
class Throughput:
    """throughput.json: the MPUBEX-4 figures, one series per QoS (qos0, qos1, qos2)."""

    series: dict[str, ThroughputSeries]
    clause: str = "MPUBEX-4"
    messages_per_qos: int | None = None
    message_bytes: int | None = None
    schema: int = SCHEMA

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "clause": self.clause, "messages_per_qos": self.messages_per_qos,
                "message_bytes": self.message_bytes,
                **{name: s.to_json() for name, s in self.series.items()}}

    def figures(self) -> dict[str, dict[str, float]]:
        """series → figure → value, as a baseline keeps them."""
        return {name: s.figures() for name, s in self.series.items()}


def read_throughput(path: Path) -> Throughput:
    top = _document(path)
    series = {}
    for name, one in top.rest(_THROUGHPUT_HEAD).items():
        series[name] = ThroughputSeries.of(_Table(one, path, name))
    return Throughput(series=series, clause=top.text("clause", "MPUBEX-4"),
                      messages_per_qos=top.integer_or_none("messages_per_qos"),
                      message_bytes=top.integer_or_none("message_bytes"),
                      schema=top.data.get("schema", 1))


# ---------------------------------------------------------------------------- writing, finding


class Record(Protocol):
    """Any file of a run folder, as its JSON document."""

    def to_json(self) -> dict[str, Any]: ...


def write_record(path: Path, record: Record, *, indent: int = 2,
                 mask: Callable[[str], str] | None = None) -> Path:
    """Write `record` to `path` atomically (a reader never sees half a file); `mask` is
    applied to the text (secrets out) before it is written."""
    text = json.dumps(record.to_json(), indent=indent, ensure_ascii=False) + "\n"
    write_atomic(path, mask(text) if mask is not None else text)
    return path


R = TypeVar("R")


def read_optional(reader: Callable[[Path], R], path: Path) -> R | None:
    """`reader(path)`, or None when the run did not write that file (a folder in its place
    is still an error)."""
    return reader(path) if path.exists() else None

