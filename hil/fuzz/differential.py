"""Differential runs: the same generated sequences on two firmwares, every answer compared.

Each case (hil/fuzz/grammar.py) is played on both, step by step, on the virtual bench; the
lines each step brought are compared. A difference is *explained* when it vanishes once the
lines are normalised for a documented difference between the two profiles (a field of
`Profile` in which they differ: the open points of clauses.md); what no documented
difference explains is listed as it is: a fidelity problem of the model, or an anomaly of
the firmware. The result is the fidelity report of one firmware against the other.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from hil.at.framer import Framer, Line, Prompt
from hil.fuzz.engine import CaseRun
from hil.fuzz.grammar import BROKER, Case, Command, Data, PeerPublish, Step, cases
from hil.l506.types import MSUB_COUNTED, MSUB_MESSAGE_MAX
from hil.sim.profiles import PROFILES, Profile
from hil.sim.virtual import VirtualModule

if TYPE_CHECKING:
    from hil.fuzz.port import PortModule

STEP_S = 2.0  # device seconds each step is given before its lines are taken
TAIL_S = 25.0  # and after the last step (a data timeout, an idle drop)

_RESULT_COLON = re.compile(r"^(\+ ?[A-Z]+):(?! )")
_MSUB_LEN = re.compile(r"^(\+MSUB: ?.*?,)(\d+)( bytes,)(.*)$", re.DOTALL)
_INVALID_FINAL = re.compile(r"^(?:OK|ERROR)$")


def _colon(lines: list[str]) -> list[str]:
    return [_RESULT_COLON.sub(r"\1: ", x) for x in lines]


def _msub_len(lines: list[str]) -> list[str]:
    """`<len>` of a report as the cut length (MSUB-3 open point)."""
    def cut(m: re.Match[str]) -> str:
        shown = min(int(m.group(2)), MSUB_MESSAGE_MAX)
        return f"{m.group(1)}{shown}{m.group(3)}{m.group(4)}"
    return [_MSUB_LEN.sub(cut, x) for x in lines]


def _invalid_final(lines: list[str]) -> list[str]:
    out, after_invalid = [], False
    for x in lines:
        out.append("<final>" if after_invalid and _INVALID_FINAL.match(x) else x)
        after_invalid = x.replace(" ", "").endswith("MQTTMSGGET:INVALID")
    return out


_PLUS_SPACE = re.compile(r"^\+ (?=[A-Z]+:)")
_FAILURE_CODE = re.compile(r"^(\+ ?[A-Z]+: ?FAILURE),\d+$")
_RESULT_URC = re.compile(r"^\+ ?[A-Z]+: ?(?:SUCCESS|FAILURE)")
_CME = re.compile(r"^\+CME ERROR: ?\d+$")
#: What a module may print after RDY and Call Ready (the L506's SIM and SMS readiness).
_BOOT_EXTRAS = frozenset({"+CPIN: READY", "SMS Ready"})


def _plus_space(lines: list[str]) -> list[str]:
    """`+ MIPCLOSE:` as `+MIPCLOSE:` (the guide prints the space once)."""
    return [_PLUS_SPACE.sub("+", x) for x in lines]


def _untyped_failure(lines: list[str]) -> list[str]:
    """`+X: FAILURE,<n>` as `+X: FAILURE` (whether a failure carries its code)."""
    return [_FAILURE_CODE.sub(r"\1", x) for x in lines]


def _ok_first(lines: list[str]) -> list[str]:
    """A result URC just before `OK` put after it (which comes first)."""
    out = list(lines)
    i = 0
    while i < len(out) - 1:
        if _RESULT_URC.match(out[i]) and out[i + 1] == "OK":
            out[i], out[i + 1] = out[i + 1], out[i]
            i += 1  # that OK answered this command: the next one is another's
        i += 1
    return out


def _cme_as_error(lines: list[str]) -> list[str]:
    """`+CME ERROR: <n>` as `ERROR` (how a refusal is worded)."""
    return ["ERROR" if _CME.match(x) else x for x in lines]


def _without_boot_extras(lines: list[str]) -> list[str]:
    return [x for x in lines if x not in _BOOT_EXTRAS]


Normaliser = Callable[[list[str]], list[str]]
#: A documented difference (a `Profile` field) → how to make lines blind to it.
NORMALISERS: dict[str, Normaliser] = {
    "urc_space": _colon,
    "mipclose_urc_plus_space": _plus_space,
    "result_before_ok": _ok_first,
    "untyped_failure_code": _untyped_failure,
    "switch_refusal": _cme_as_error,
    "boot_urcs": _without_boot_extras,
    "ready_urcs": _without_boot_extras,
    "msub_len": _msub_len,
    "msgget_invalid_final": _invalid_final,
}
_URC = re.compile(r"^\+ ?(?:MSUB: ?\S.*,\d+ bytes,|[A-Z]+: ?(?:SUCCESS|FAILURE))")


def _urc_order(lines: list[str]) -> list[str]:
    """Each run of URCs that came together, in one order: a publish's result and a message
    the broker delivers meanwhile race on a real link (which the model's clock does not)."""
    out: list[str] = []
    run: list[str] = []
    for x in [*lines, ""]:
        if x and _URC.match(x):
            run.append(x)
            continue
        out += sorted(run)
        run = []
        if x:
            out.append(x)
    return out


#: What a real link adds to the model's answers: not a firmware's choice, but timing.
LINK_NORMALISERS: dict[str, Normaliser] = {"urc_order": _urc_order}
#: Fields that cannot show on the virtual bench (its clock has no latency, its boot waits).
INVISIBLE = frozenset({"name", "revision", "latency", "latency_note", "boot_s", "call_ready_s",
                       "link_rtt_s", "link_jitter_s"})


@dataclass
class Differences:
    cases: int = 0
    steps: int = 0
    explained: Counter[str] = field(default_factory=Counter)  # field → steps it explains
    unexplained: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    #: differing fields with no normaliser (a step they cause is found by replaying)
    unmodelled: list[str] = field(default_factory=list)


def documented(a: Profile, b: Profile) -> list[str]:
    """The fields of `Profile` in which `a` and `b` differ (what may show)."""
    return [f.name for f in dataclasses.fields(Profile)
            if f.name not in INVISIBLE and getattr(a, f.name) != getattr(b, f.name)]


def transcript(case: Case, profile: Profile, bugs: frozenset[str] = frozenset()
               ) -> list[tuple[str, list[str]]]:
    """(what was sent, the lines that followed) per step, on a fresh virtual module."""
    module = VirtualModule(profile, bugs)
    module.power_on()
    module.read()
    framer = Framer((MSUB_COUNTED,))
    out: list[tuple[str, list[str]]] = []
    steps = case.lines()
    for i, step in enumerate(steps):
        match step:
            case Command():
                framer.expect_prompt = step.name == "MPUBEX"
                module.send(step.raw)
            case Data():
                module.send(step.raw)
            case PeerPublish(topic=topic, payload=payload, qos=qos):
                module.peer_publish(topic, payload.encode(), qos)
        module.advance(TAIL_S if i == len(steps) - 1 else STEP_S)
        lines = [e.text if isinstance(e, Line) else ">" for e in framer.feed(module.read(), 0)]
        out.append((_shown(step), lines))
    return out


Steps = list[tuple[str, list[str]]]
#: A documented difference without a normaliser, as the field and the value to try.
Choice = tuple[str, Any]


def compare(a: Profile, b: Profile, cases: list[Case], *, bugs_b: frozenset[str] = frozenset()
            ) -> Differences:
    """Play `cases` on `a` and on `b` (with `bugs_b`); explain what differs."""
    fields = documented(a, b)
    result = Differences(unmodelled=[f for f in fields if f not in NORMALISERS])
    normalisers = [(f, NORMALISERS[f]) for f in fields if f in NORMALISERS]
    choices = [(f, getattr(b, f)) for f in result.unmodelled]
    for case in cases:
        _judge(result, normalisers, transcript(case, a), transcript(case, b, bugs_b),
               replay=functools.partial(transcript, case),
               model=a, choices=choices, named=lambda choice: choice[0])
    return result


def _judge(result: Differences, normalisers: list[tuple[str, Normaliser]], ours: Steps,
           theirs: Steps, *, replay: Callable[[Profile], Steps], model: Profile,
           choices: list[Choice], named: Callable[[Choice], str]) -> None:
    """One case's steps, side by side: each difference explained by a normaliser, or by a
    documented choice without one (the case replayed on our side with that choice makes
    the step as theirs), or listed."""
    result.cases += 1
    replays = _Replays(replay, model)
    trials = [(c,) for c in choices] + ([tuple(choices)] if len(choices) > 1 else [])
    for i, ((sent, lines_a), (_, lines_b)) in enumerate(zip(ours, theirs, strict=False)):
        result.steps += 1
        if lines_a == lines_b:
            continue
        na, nb = lines_a, lines_b
        used = []
        for name, normalise in normalisers:
            ma, mb = normalise(na), normalise(nb)
            if _distance(ma, mb) < _distance(na, nb):
                used.append(name)
            na, nb = ma, mb
        if na == nb:
            result.explained.update(used)
            continue
        chosen = next((t for t in trials if replays.step(t, i, normalisers) == nb), None)
        if chosen is None:
            result.unexplained.append((sent, lines_a, lines_b))
        else:
            result.explained[" + ".join(named(c) for c in chosen)] += 1


class _Replays:
    """One case replayed on the model with documented choices, each replay made once."""

    def __init__(self, replay: Callable[[Profile], Steps], model: Profile) -> None:
        self.replay, self.model = replay, model
        self.made: dict[tuple[Choice, ...], Steps] = {}

    def step(self, chosen: tuple[Choice, ...], index: int,
             normalisers: list[tuple[str, Normaliser]]) -> list[str] | None:
        """Step `index`'s lines, normalised, on the model with `chosen`; None past the end."""
        if chosen not in self.made:
            try:
                self.made[chosen] = self.replay(dataclasses.replace(self.model, **dict(chosen)))
            except ValueError:  # a combination the profile refuses
                self.made[chosen] = []
        steps = self.made[chosen]
        return _normal(steps[index][1], normalisers) if index < len(steps) else None


def _normal(lines: list[str], normalisers: list[tuple[str, Normaliser]]) -> list[str]:
    for _, normalise in normalisers:
        lines = normalise(lines)
    return lines


def known_choices(model: Profile) -> list[Choice]:
    """Every documented choice without a normaliser that a known profile makes and `model`
    does not: what a module's firmware may have chosen instead."""
    out: list[Choice] = []
    for f in dataclasses.fields(Profile):
        if f.name in INVISIBLE or f.name in NORMALISERS:
            continue
        for other in PROFILES.values():
            value = getattr(other, f.name)
            if value != getattr(model, f.name) and (f.name, value) not in out:
                out.append((f.name, value))
    return out


def _as_profiles(choice: Choice) -> str:
    name, value = choice
    having = [p.name for p in PROFILES.values() if getattr(p, name) == value]
    return f"{name} = {value!r} (as {', '.join(having)})"


class _Recording(CaseRun):
    """A case driven as the fuzzer drives it (each command given its answer or its bound,
    `AT` and `AT+MQTTSTATU` asked after each step), every line kept under the step it came
    in. A real module answers in real time, so the steps are cut where the answers end,
    not after a fixed time, on both sides alike."""

    def __init__(self, profile: Profile, module: VirtualModule | PortModule) -> None:
        self.steps: list[list[str]] = []
        dialled: bytes | None = getattr(module, "dialled", None)
        self._dialled = None if dialled is None else dialled.decode()
        super().__init__(profile, frozenset(), module)

    def _step(self, step: Step) -> None:
        """Every command awaited: on a real module a result still pending when the next step
        goes would fall into one step or the next by chance."""
        super()._step(dataclasses.replace(step, wait=True) if isinstance(step, Command)
                      else step)

    def _event(self, event: Line | Prompt) -> None:
        text = ">" if isinstance(event, Prompt) else event.text
        if self._dialled is not None:  # the module was given the tap's address
            text = text.replace(self._dialled, BROKER)
        while len(self.steps) <= self.index:
            self.steps.append([])
        self.steps[self.index].append(text)
        super()._event(event)


def bench_model(profile: Profile, bugs: frozenset[str] = frozenset()) -> VirtualModule:
    """The model in a bench's world: the grammar's broker (the rig's, behind its tap) is
    the one server that listens, and no host name resolves (a bench dials loopback only,
    as the simulator does; a module in the field has no `broker.local` either)."""
    host, port = BROKER.split(",")
    return VirtualModule(profile, bugs,
                         reachable=lambda h, p: (h, p) == (host, int(port)),
                         resolves=_is_address)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def played(case: Case, profile: Profile, module: VirtualModule | PortModule
           ) -> list[tuple[str, list[str]]]:
    """(what was sent, the lines that followed) per step, up to and including the step at
    which an oracle objected (named as its last line: `<final answer>`)."""
    run = _Recording(profile, module)
    violation = run.run(case)
    steps = case.lines()
    last = len(steps) if violation is None else violation.step + 1
    lines = [run.steps[i] if i < len(run.steps) else [] for i in range(last)]
    if violation is not None:
        lines[-1] = [*lines[-1], f"<{violation.oracle}>"]
    return [(_shown(step), lines[i]) for i, step in enumerate(steps[:last])]


def compare_module(module: PortModule, model: Profile, cases: list[Case], *,
                   bugs: frozenset[str] = frozenset()) -> Differences:
    """Play `cases` on the model of `model` (with `bugs`) and on a real `module`; explain
    what differs. The module's firmware may have chosen anything the guide leaves open: every
    open point with a normaliser is allowed for, and a step that still differs is replayed on
    the model with each choice a known profile makes on another open point (then all of them
    at once); the one that makes it as the module's is named (`mpub_commas = 'cut' (as
    guide-alt)`). What no choice explains is listed. A case stops being compared at the
    first step where either side's oracles objected."""
    result = Differences()
    normalisers = [*NORMALISERS.items(), *LINK_NORMALISERS.items()]
    choices = known_choices(model)
    for case in cases:
        ours = played(case, model, bench_model(model, bugs))
        theirs = played(case, model, module)
        _judge(result, normalisers, ours, theirs,
               replay=functools.partial(_played_on_model, case, bugs),
               model=model, choices=choices, named=_as_profiles)
    return result


def _played_on_model(case: Case, bugs: frozenset[str], profile: Profile) -> Steps:
    return played(case, profile, bench_model(profile, bugs))


def _shown(step: Step) -> str:
    match step:
        case Command(line=line):
            return line
        case Data():
            return f"<data {len(step.raw)} bytes>"
        case PeerPublish(topic=topic):
            return f"<broker message on {topic}>"
    raise AssertionError(step)


def _distance(a: list[str], b: list[str]) -> int:
    """How many lines one side has and the other not."""
    ca, cb = Counter(a), Counter(b)
    return sum(((ca - cb) + (cb - ca)).values())


def draw_cases(count: int, seed_value: int = 0, max_steps: int = 8) -> list[Case]:
    """`count` cases drawn from the grammar, half of them with malformed values."""
    drawn: list[Case] = []

    @settings(max_examples=count, deadline=None, database=None, phases=(Phase.generate,),
              suppress_health_check=list(HealthCheck))
    @seed(seed_value)
    @given(st.one_of(cases(max_steps, malformed=False), cases(max_steps)))
    def collect(case: Case) -> None:
        drawn.append(case)

    collect()
    return drawn


def render(a: str, b: str, d: Differences) -> str:
    rows = [f"{a} against {b}: {d.cases} cases, {d.steps} steps"]
    for name, count in sorted(d.explained.items()):
        rows.append(f"  documented difference {name}: explains {count} steps")
    quiet = [name for name in d.unmodelled if name not in d.explained]
    if quiet:
        rows.append(f"  documented differences that did not show: {', '.join(quiet)}")
    rows.append(f"  unexplained: {len(d.unexplained)} steps")
    for sent, la, lb in d.unexplained[:20]:
        rows.append(f"    {sent!r}\n      {a}: {la}\n      {b}: {lb}")
    return "\n".join(rows)


def figures(a: str, b: str, d: Differences) -> dict[str, object]:
    """--json: the fidelity report as data (every unexplained step, not the first 20)."""
    return {"a": a, "b": b, "cases": d.cases, "steps": d.steps,
            "explained": dict(sorted(d.explained.items())), "unmodelled": d.unmodelled,
            "unexplained": [{"sent": sent, "a": la, "b": lb} for sent, la, lb in d.unexplained]}
