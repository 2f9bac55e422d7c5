"""Broken files the harness reads: rig files, run folders, baselines. One clear line each.

A corpus is generated from valid ones (a rig, a run folder, the baseline accepted from it):
cut short, not JSON/TOML, the wrong type at the top, keys deleted and values of the wrong
type anywhere in the tree, empty, binary, a folder where a file belongs, missing. Each goes
through `hil compare` (which reads all three) in this process. What must come out: an exit
status other than 0, and on stderr exactly one line that starts with the command's name;
no traceback. How many of those lines name the broken file is counted too: the others
refuse the comparison itself (another model, no test in common), the file being valid.
A mutation that leaves the input valid is counted as still valid, not as a failure.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REVISION = "L506_V3.2_MQTT_B20171031"
IDENTITY = {"model": "L506", "revision": REVISION, "CGMR": f"+CGMR: {REVISION}",
            "ATI": f"Model: L506 / Revision: {REVISION}"}
RIG = """name = "corpus"
[dut]
kind = "simulator"
baud = 115200
time_scale = 0.05
[power]
backend = "simulator"
[broker]
bind = "127.0.0.1"
[recovery]
probe_timeout_s = 2
[budgets]
AT = 300
[labels]
bench = "virtual"
"""
_WRONG: tuple[Any, ...] = (None, 7, -1.5, "text", [], {}, [1, "a"], {"x": None}, True)


def write_run(folder: Path) -> Path:
    """A small valid run folder, as the plugins leave one."""
    folder.mkdir(parents=True, exist_ok=True)
    test = "suites/test_status.py::test_status_through_the_flow"
    files = {
        "results.json": {"run": {"started": "2026-01-01T02:00:00+00:00", "rig": "simulator",
                                 "dut": "simulator", "identity": IDENTITY, "args": []},
                         "totals": {"passed": 1},
                         "tests": [{"nodeid": test, "outcome": "passed",
                                    "clauses": ["STATU-1"]}]},
        "characterization.json": {"device": IDENTITY, "records": [
            {"clause": "GEN-2", "test": test, "sent": "AT+MCONFIG=x",
             "got": "+MCONFIG: SUCCESS,0", "decision_ok": True, "decision": "one space",
             "note": "", "t": "2026-01-01T02:01:00Z"}]},
        "timings.json": {"schema": 1, "samples": [
            {"command": "MQTTSTATU", "test": test, "phase": "call", "total_ms": 5.0 + i / 10}
            for i in range(12)]},
        "throughput.json": {"clause": "MPUBEX-4", "qos0": {"messages_per_s": 7.3,
                                                           "line": {"fraction": 0.88}}},
    }
    for name, document in files.items():
        (folder / name).write_text(json.dumps(document), encoding="utf-8")
    return folder


def _paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*at, i))


def _mutate_tree(rng: random.Random, document: Any) -> Any:
    """Delete a key or put a value of the wrong type somewhere in the tree."""
    doc = json.loads(json.dumps(document))
    path = rng.choice([p for p in _paths(doc) if p])
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and rng.random() < 0.4:
        del parent[path[-1]]
    else:
        parent[path[-1]] = rng.choice(_WRONG)
    return doc


def broken_texts(rng: random.Random, text: str, n: int, *, tree: Any = None,
                 dump: Callable[[Any], str] = json.dumps) -> Iterator[tuple[str, bytes]]:
    """(what, bytes) of `n` broken versions of `text` (its parsed `tree`, if given)."""
    fixed = [("empty", b""), ("binary", bytes(range(256))), ("one brace", b"{"),
             ("a list", b"[]"), ("a string", b'"run"'), ("null", b"null")]
    yield from fixed
    for i in range(max(0, n - len(fixed))):
        shape = i % 3
        if shape == 0 or tree is None:
            cut = rng.randrange(1, max(2, len(text)))
            yield f"cut at byte {cut}", text[:cut].encode()
        elif shape == 1:
            yield "wrong type or key deleted", dump(_mutate_tree(rng, tree)).encode()
        else:
            at = rng.randrange(len(text))
            junk = rng.choice(["\x00", "}", "]", "=", "[[", '"', "\ufffd", "\n[dut]\n"])
            yield f"{junk!r} at byte {at}", (text[:at] + junk + text[at:]).encode()


def _rig_tree_dump(tree: dict[str, Any]) -> str:
    """TOML for a rig tree mutated like JSON (scalars and flat tables only)."""
    lines = []
    for key, value in tree.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {json.dumps(value)}")
    for key, value in tree.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in value.items()
                      if not isinstance(v, dict | type(None))]
    return "\n".join(line.replace("null", '""') for line in lines) + "\n"


@dataclass
class InputFigures:
    kind: str
    cases: int = 0
    clear: int = 0  # refused with one line (and no traceback)
    naming_the_file: int = 0  # of those, the line names the broken file or folder
    accepted: int = 0  # the mutation left it valid: read without complaint
    unclear: int = 0  # a traceback, several lines, no line, or a line not naming the file
    examples: list[str] = field(default_factory=list)


#: `hil`'s entry point (hil.cli.main), handed in by the command that runs the checks: the
#: checked command line is the face above this package, not something it imports.
Main = Callable[[list[str]], int]


def hil(main: Main, args: list[str]) -> tuple[int | str, str, str]:
    """Run `hil ARGS` here: (exit status or the escaped exception, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status: int | str = main(args)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except Exception:
            status = "crash"
            traceback.print_exc(file=err)
    return status, out.getvalue(), err.getvalue()


def judge(main: Main, fig: InputFigures, what: str, broken: Path, args: list[str]) -> None:
    status, _, err = hil(main, args)
    fig.cases += 1
    lines = [line for line in err.splitlines() if line.strip()]
    if status in (0, 1) and not lines:  # hil compare: 0 same, 1 changed, 2 cannot compare
        fig.accepted += 1
        return
    if (isinstance(status, int) and status != 0 and len(lines) == 1
            and lines[0].startswith("hil compare: ") and "Traceback" not in err):
        fig.clear += 1
        # else a refusal of the comparison itself: "no test in common", another model
        fig.naming_the_file += str(broken) in lines[0]
        return
    fig.unclear += 1
    if len(fig.examples) < 5:
        fig.examples.append(f"{what}: exit {status}, stderr {err[-400:]!r}")


def corpus(folder: Path, n: int, seed: int, main: Main) -> dict[str, Any]:
    """`n` broken inputs of each kind, judged; figures and failures."""
    rng = random.Random(seed)
    good_run = write_run(folder / "good-run")
    baselines = folder / "baselines"
    status, _, err = hil(main, ["baseline", "accept", str(good_run), "--into", str(baselines),
                          "--by", "corpus"])
    if status != 0:
        raise RuntimeError(f"the valid run was not accepted: {err.strip()}")
    good_baseline = next(baselines.rglob("baseline.json"))
    good_rig = folder / "good-rig.toml"
    good_rig.write_text(RIG, encoding="utf-8")
    figures = []

    runs = InputFigures("run folders (results.json, characterization.json, timings.json, "
                        "throughput.json)")
    names = sorted(p.name for p in good_run.iterdir())
    for i in range(n):
        name = names[i % len(names)]
        text = (good_run / name).read_text(encoding="utf-8")
        what, data = _nth(broken_texts(rng, text, n, tree=json.loads(text)), i // len(names))
        run = folder / "runs" / f"{i}"
        shutil.copytree(good_run, run)
        (run / name).write_bytes(data)
        judge(main, runs, f"{name} {what}", run / name if name != "results.json" else run,
              ["compare", str(good_baseline), str(run)])
    _missing_and_folder(main, runs, folder, good_run, good_baseline)
    figures.append(runs)

    base = InputFigures("baselines (baseline.json)")
    text = good_baseline.read_text(encoding="utf-8")
    for i, (what, data) in enumerate(broken_texts(rng, text, n, tree=json.loads(text))):
        broken = folder / "bad-baselines" / f"{i}" / "baseline.json"
        broken.parent.mkdir(parents=True)
        broken.write_bytes(data)
        judge(main, base, what, broken, ["compare", str(broken), str(good_run)])
    figures.append(base)

    rigs = InputFigures("rig files (rigs/*.toml)")
    tree = {"name": "corpus", "dut": {"kind": "simulator", "baud": 115200, "time_scale": 0.05},
            "power": {"backend": "simulator"}, "broker": {"bind": "127.0.0.1"},
            "recovery": {"probe_timeout_s": 2}, "budgets": {"AT": 300}}
    for i, (what, data) in enumerate(broken_texts(rng, RIG, n, tree=tree,
                                                  dump=_rig_tree_dump)):
        broken = folder / "bad-rigs" / f"{i}.toml"
        broken.parent.mkdir(parents=True, exist_ok=True)
        broken.write_bytes(data)
        judge(main, rigs, what, broken, ["compare", "--rig", str(broken), str(good_baseline),
                                   str(good_run)])
    figures.append(rigs)

    failures = [f"inputs {f.kind}: {f.unclear} without one clear line, e.g. {f.examples[0]}"
                for f in figures if f.unclear]
    return {"kinds": [vars(f) for f in figures], "failures": failures}


def _nth(items: Iterator[tuple[str, bytes]], k: int) -> tuple[str, bytes]:
    for i, item in enumerate(items):
        if i == k:
            return item
    raise IndexError(k)


def _missing_and_folder(main: Main, fig: InputFigures, folder: Path, good_run: Path,
                        good_baseline: Path) -> None:
    """A run folder without results.json, and one whose results.json is a folder."""
    empty = folder / "runs" / "empty"
    empty.mkdir(parents=True)
    judge(main, fig, "no results.json", empty, ["compare", str(good_baseline), str(empty)])
    odd = folder / "runs" / "folder-for-file"
    shutil.copytree(good_run, odd)
    (odd / "timings.json").unlink()
    (odd / "timings.json").mkdir()
    judge(main, fig, "timings.json is a folder", odd / "timings.json",
          ["compare", str(good_baseline), str(odd)])
