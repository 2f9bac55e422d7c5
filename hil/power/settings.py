"""A power backend's settings: a frozen dataclass whose fields say their type, default and check.

The field's annotation is its type (a `Literal` lists the allowed values, `X | None` lets it
be left out), `setting()` gives the default, a help line and an extra check. Building one
validates every field, so a bad value is one `SettingsError` naming the field and what it
takes, whether it comes from a rig file or from code.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import operator
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from hil.power.protocol import PowerProtocol, SimulatedSupply

Check = Callable[[Any], str | None]  # returns what is wrong with a value, or None


class SettingsError(ValueError):
    """A power backend's setting is missing, unknown or has a value the backend cannot use."""


def setting(default: Any = dataclasses.MISSING, help: str = "",
            check: Check | None = None) -> Any:
    """A settings field: no default means the rig must give it."""
    return dataclasses.field(default=default, metadata={"help": help, "check": check})


def positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_strings(value: Any) -> bool:
    return isinstance(value, list | tuple) and bool(value) and all(
        isinstance(v, str) for v in value)


#: The types a setting may have: how a rig writes it, and who fits.
_TYPES: dict[Any, tuple[str, Callable[[Any], bool]]] = {
    str: ("a string", lambda v: isinstance(v, str)),
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", _is_int),
    float: ("a number", lambda v: _is_int(v) or isinstance(v, float)),
    int | str: ("an integer or a string", lambda v: _is_int(v) or isinstance(v, str)),
    str | Sequence[str]: ("a command: a list of strings or one string",
                          lambda v: (isinstance(v, str) and bool(v.strip())) or _is_strings(v)),
}


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Key:
    """One setting as a rig file sees it: a key of the [power] table."""

    name: str
    words: str  # what a valid value is, in words
    fits: Callable[[Any], bool]
    choices: tuple[Any, ...]
    optional: bool  # None is allowed
    required: bool
    help: str
    check: Check | None

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value` for this key, as the rest of a `name = value` line."""
        if value is None and self.optional:
            return None
        if not self.fits(value):
            return (f"must be {self.words}, not {_type_name(value)}"
                    + (f" ({self.help})" if self.help else ""))
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(repr(c) for c in self.choices)}"
        return self.check(value) if self.check is not None else None


def _key(name: str, hint: Any, spec: dataclasses.Field[Any]) -> Key:
    args = typing.get_args(hint)
    optional = isinstance(hint, types.UnionType) and type(None) in args
    if optional:
        rest = tuple(a for a in args if a is not type(None))
        hint = functools.reduce(operator.or_, rest)
    choices: tuple[Any, ...] = ()
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        hint = type(choices[0])
    if hint not in _TYPES:
        raise TypeError(f"setting {name!r}: type {hint!r} has no rig-file form")
    words, fits = _TYPES[hint]
    return Key(name, words, fits, choices, optional,
               required=spec.default is dataclasses.MISSING,
               help=spec.metadata.get("help", ""), check=spec.metadata.get("check"))


@dataclass(frozen=True)
class Bench:
    """What the bench offers a backend as it is built."""

    at_port: str | None = None  # the module's AT port, for a backend that switches a line of it
    simulator: SimulatedSupply | None = None  # the simulated module, for backend "simulator"
    secrets: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: the labgrid place the run holds, its power switched (True: on), for backend "place"
    place_switch: Callable[[bool], None] | None = None


S = TypeVar("S", bound="PowerSettings")


@dataclass(frozen=True, kw_only=True)
class PowerSettings:
    """Base of every backend's settings: checks each field as it is built."""

    def __post_init__(self) -> None:
        for key in self.keys().values():
            value = getattr(self, key.name)
            problem = key.problem(value)
            if problem:
                raise SettingsError(f"{key.name} = {value!r} {problem}")

    def build(self, bench: Bench) -> PowerProtocol | None:
        """The backend these settings describe (None: the rig cannot switch power)."""
        raise NotImplementedError(f"{type(self).__name__} does not say how to build its backend")

    @classmethod
    def keys(cls) -> dict[str, Key]:
        """The settings as [power] keys, in the order a rig file's reader sees them listed."""
        hints = typing.get_type_hints(cls)
        return {f.name: _key(f.name, hints[f.name], f) for f in dataclasses.fields(cls)}

    @classmethod
    def from_table(cls: type[S], table: Mapping[str, Any]) -> S:
        """Settings from a rig's [power] table (without `backend`): unknown, missing and
        malformed keys are each one SettingsError."""
        keys = cls.keys()
        for name in table:
            if name not in keys:
                near = difflib.get_close_matches(name, list(keys), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                known = ", ".join(keys) or "none"
                raise SettingsError(f"unknown key {name!r}{hint}; known keys: {known}")
        for key in keys.values():
            if key.required and key.name not in table:
                raise SettingsError(f"{key.name} is required: {key.help or key.words}")
        return cls(**table)
