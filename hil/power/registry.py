"""Which power backends exist: each module of hil/power/ registers its own settings class.

A backend is one module: a `PowerSettings` dataclass decorated with `@register("name")`
whose `build(bench)` makes the backend. The rig loader and `power_from_config` ask this
table, so nothing else names a backend's keys. Every module of this package is imported
the first time the table is read; a backend kept elsewhere registers when it is imported.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hil.power.protocol import PowerProtocol
from hil.power.settings import Bench, PowerSettings, SettingsError

#: name in a rig file -> settings class; filled by `register`.
BACKENDS: dict[str, type[PowerSettings]] = {}

T = TypeVar("T", bound=type[PowerSettings])


def register(name: str) -> Callable[[T], T]:
    """Class decorator: the settings class of the backend a rig names `backend = name`."""

    def add(cls: T) -> T:
        if name in BACKENDS and BACKENDS[name] is not cls:
            raise ValueError(f"power backend {name!r} is registered twice: "
                             f"{BACKENDS[name].__module__} and {cls.__module__}")
        cls.keys()  # a field whose type has no rig-file form fails here, not in a rig
        BACKENDS[name] = cls
        return cls

    return add


_discovered = False


def backends() -> Mapping[str, type[PowerSettings]]:
    """Every registered backend, after importing each module of hil/power/ once."""
    global _discovered
    if not _discovered:
        for module in pkgutil.iter_modules([str(Path(__file__).parent)], f"{__package__}."):
            importlib.import_module(module.name)
        _discovered = True
    return BACKENDS


def settings_class(backend: object) -> type[PowerSettings]:
    """The settings class of the backend a rig names; SettingsError lists the known ones."""
    known = backends()
    if not isinstance(backend, str) or backend not in known:
        raise SettingsError(f"backend = {backend!r} must be one of "
                            f"{', '.join(repr(b) for b in known)}")
    return known[backend]


def settings_from_table(backend: object, table: Mapping[str, Any]) -> PowerSettings:
    """A rig's [power] table (without `backend`) as the backend's settings.

    Every SettingsError names the backend; an unknown backend lists the known ones.
    """
    cls = settings_class(backend)
    try:
        return cls.from_table(table)
    except SettingsError as exc:
        raise SettingsError(f"backend {backend!r}: {exc}") from None


@register("none")
@dataclass(frozen=True, kw_only=True)
class NoPower(PowerSettings):
    """No switch: recovery resets the module with AT+CFUN=1,1 instead."""

    def build(self, bench: Bench) -> PowerProtocol | None:
        return None
