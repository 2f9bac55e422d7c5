"""Prints the coordinator's places and their serial and power resources as one JSON line.

Run by labgrid's own interpreter (the `.venv-labgrid` that scripts/setup makes), never
imported by the harness: labgrid brings its pyserial fork, which must not replace pyserial
in the harness's venv (docs/farm.md). `labgrid-client` prints for people; this prints for
`hil places` and the place leases.

usage: python lgstate.py COORDINATOR
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Protocol

from labgrid.remote.client import start_session


class _Resource(Protocol):
    """What this script reads of a resource in labgrid's client session (untyped)."""

    cls: str
    avail: bool
    params: Mapping[str, object]


class _Place(Protocol):
    def getmatch(self, path: tuple[str, str, str, str]) -> object | None: ...


class _Session(Protocol):
    resources: Mapping[str, Mapping[str, Mapping[str, _Resource]]]


def _resources(session: _Session, place: _Place) -> list[dict[str, object]]:
    found = []
    for exporter, groups in sorted(session.resources.items()):
        for group_name, group in sorted(groups.items()):
            for name, resource in sorted(group.items()):
                path = (exporter, group_name, resource.cls, name)
                if place.getmatch(path) is None:
                    continue
                found.append({"exporter": exporter, "group": group_name, "cls": resource.cls,
                              "name": name, "avail": bool(resource.avail),
                              "params": dict(resource.params)})
    return found


def main(address: str) -> int:
    session = start_session(address)
    try:
        places = [{"name": name, "acquired": place.acquired, "tags": dict(place.tags),
                   "comment": place.comment, "changed": place.changed,
                   "resources": _resources(session, place)}
                  for name, place in sorted(session.places.items())]
    finally:
        session.loop.run_until_complete(session.stop())
        session.loop.run_until_complete(session.close())
    print(json.dumps({"places": places}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
