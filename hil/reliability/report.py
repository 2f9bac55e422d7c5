"""reliability.json → tables, the bounds every figure must meet, and docs/reliability.md.

Each part's table sits between `<!-- reliability:PART -->` and `<!-- /reliability:PART -->`
in the doc, so a run of some parts leaves the others' figures as they were.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hil.report.files import write_atomic


def failures(figures: dict[str, Any]) -> list[str]:
    """Every figure that breaks its bound, one line each (empty: all met)."""
    out: list[str] = []
    for kind in figures.get("faults", {}).get("kinds", []):
        name = kind["kind"]
        if kind["hangs"]:
            out.append(f"faults {name}: {kind['hangs']} hang(s)")
        if kind["misreported"]:
            out.append(f"faults {name}: {kind['misreported']} misreported")
        if kind["not_provoked"]:
            out.append(f"faults {name}: {kind['not_provoked']} trial(s) never reached their "
                       "fault's byte")
        if kind["recovered"] != kind["trials"]:
            out.append(f"faults {name}: {kind['trials'] - kind['recovered']} not recovered")
    soak = figures.get("soak")
    if soak:
        out += soak.get("failures", [])
    for part in ("fuzz", "inputs", "secrets"):
        if figures.get(part):
            out += figures[part].get("failures", [])
    return out


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.0f} ms"


def render_faults(part: dict[str, Any]) -> str:
    rows = [
        "| fault | expected report | trials | recovered | hangs | misreported | reported as "
        "| recovery p50 | recovery p99 |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for k in part["kinds"]:
        expected = " or ".join("passed, data intact" if e == "None" else e
                               for e in k["expected"])
        seen = ", ".join(f"{name} {n}" for name, n in sorted(k["reported"].items()))
        rows.append(
            f"| {k['kind'].replace('_', ' ')} | {expected} | {k['trials']} | {k['recovered']} "
            f"| {k['hangs']} | {k['misreported']} | {seen} | {_ms(k['recovery_s_p50'])} "
            f"| {_ms(k['recovery_s_p99'])} |")
    return "\n".join(rows)


def render_soak(part: dict[str, Any]) -> str:
    rows = [
        f"{part['wall_s']:g} s of wall time at time scale {part['time_scale']:g} = "
        f"{part['device_hours']:g} h of device time (device timers: boot, idle drop, data and "
        f"CONNACK timeouts; the MQTT keep-alive runs in real seconds, as the broker counts "
        f"them); latency model: {part['latency_model']}; {part['rounds']} rounds, "
        f"{part['reconnects']} reconnects, {part['manual_phases']} manual-mode phases.",
        "",
        "| direction / QoS | sent | received | lost | duplicated | never sent | refused |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, m in part["messages"].items():
        way, qos = key.split("/")
        shown = f"{'module → peer' if way == 'up' else 'peer → module'}, QoS {qos}"
        rows.append(f"| {shown} | {m['sent']} | {m['received']} | {m['lost']} "
                    f"| {m['duplicated']} | {m.get('unexpected', 0)} | {m['refused']} |")
    mem, fds = part["memory_kib"], part["fds"]
    tb, lb = part["transcript_bytes"], part["line_bytes"]
    rows += [
        "",
        "| resource | after round 1 | end | max | bound on growth |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| RSS (KiB) | {mem['start']} | {mem['end']} | {mem['max']} | {mem['bound']} |",
        f"| open descriptors | {fds['start']} | {fds['end']} | – | {fds['bound']} |",
        "",
        "| bytes | transcripts | on the line |",
        "| --- | ---: | ---: |",
        f"| module → harness | {tb['rx']} | {lb['rx']} |",
        f"| harness → module | {tb['tx']} | {lb['tx']} |",
    ]
    if part["round_error_count"]:
        rows += ["", f"{part['round_error_count']} round(s) failed, first: "
                 f"{part['round_errors'][0]}"]
    return "\n".join(rows)


def render_fuzz(part: dict[str, Any]) -> str:
    rows = [
        "| target | inputs | bytes | crashes | framed wrongly | with payload traps "
        "| MalformedPacket (documented) | time |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in part["targets"]:
        traps = t["payload_traps"] if "framer" in t["target"] else "–"
        malformed = t["malformed"] if "codec" in t["target"] else "–"
        rows.append(f"| {t['target']} | {t['inputs']} | {t['bytes']} | {t['crashes']} "
                    f"| {t['mismatches']} | {traps} | {malformed} | {t['seconds']:g} s |")
    return "\n".join(rows)


def render_inputs(part: dict[str, Any]) -> str:
    rows = [
        "| broken input | cases | refused in one line | of which naming the file "
        "| still valid (read) | traceback or unclear |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for k in part["kinds"]:
        rows.append(f"| {k['kind']} | {k['cases']} | {k['clear']} | {k['naming_the_file']} "
                    f"| {k['accepted']} | {k['unclear']} |")
    return "\n".join(rows)


def render_secrets(part: dict[str, Any]) -> str:
    if "secrets" not in part:
        return f"the run did not happen: {'; '.join(part['failures'])}"
    tests = ", ".join(f"{name} {outcome}" for name, outcome in part["tests"].items())
    return "\n".join([
        "| secrets | files scanned | HTML report | masks in the run | masked spans on the line "
        "| hits |",
        "| ---: | ---: | --- | ---: | ---: | ---: |",
        f"| {part['secrets']} ({', '.join(part['kinds'])}) | {part['files_scanned']} "
        f"| {'built, scanned' if part['html_report'] else 'not built'} | {part['masks_in_run']} "
        f"| {part['masked_spans_on_the_line']} | {part['hits']} |",
        "",
        f"Planted tests: {tests}.",
    ])


def render(figures: dict[str, Any]) -> dict[str, str]:
    """part → its markdown table, with the command and time it took."""
    out = {}
    head = (f"`{figures['command']}` ({figures['form']} form, seed {figures['seed']}, "
            f"commit {figures.get('commit') or '?'}, started {figures['started']}, "
            f"{figures['machine']['cpus']} CPUs)")
    renderers = {"faults": render_faults, "soak": render_soak, "fuzz": render_fuzz,
                 "inputs": render_inputs, "secrets": render_secrets}
    for part, render_part in renderers.items():
        if part in figures:
            body = render_part(figures[part])
            out[part] = f"{head}: {figures[part]['seconds']:g} s\n\n{body}"
    return out


def as_document(tables: dict[str, str]) -> str:
    return "".join(f"## {part}\n\n{table}\n\n" for part, table in tables.items())


def _section(part: str) -> tuple[str, str]:
    return f"<!-- reliability:{part} -->", f"<!-- /reliability:{part} -->"


def check_doc(path: Path, parts: list[str]) -> str | None:
    """What is wrong with `path` as the doc for `parts` (before a long run), or None."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"{path}: cannot read it: {exc}"
    missing = [part for part in parts if any(m not in text for m in _section(part))]
    if missing:
        return (f"{path}: no {' / '.join(_section(missing[0]))} section for the "
                f"{missing[0]} figures: add the two markers")
    return None


def _verbatim(text: str) -> Callable[[re.Match[str]], str]:
    """A re.sub replacement that puts `text` in as it is (no backslash escapes)."""
    return lambda _: text


def update_doc(path: Path, tables: dict[str, str]) -> None:
    """Replace each part's marked section of `path`; a missing marker pair is an error."""
    text = path.read_text(encoding="utf-8")
    for part, table in tables.items():
        begin, end = _section(part)
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise ValueError(f"{path}: no {begin} … {end} section to write the {part} "
                             "figures into: add the two markers")
        section = f"{begin}\n{table}\n{end}"
        text = pattern.sub(_verbatim(section), text)
    write_atomic(path, text)
