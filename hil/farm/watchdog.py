"""Releases a dead run's places: `python -m hil.farm.watchdog COORDINATOR HOLDER IDENTITY PLACE…`.

Started by a place lease before it locks; reads its standard input until it closes (the
lease's process ended, however) and then releases every named place still held by IDENTITY.
A lease that ends normally releases its place itself and kills this process first.
"""

from __future__ import annotations

import contextlib
import sys

from hil.farm.labgrid import Labgrid, LabgridError


def main(argv: list[str]) -> int:
    coordinator, holder, identity, *places = argv
    with contextlib.suppress(OSError):
        while sys.stdin.buffer.read(4096):
            pass
    lab = Labgrid(coordinator, holder)
    for place in places:
        with contextlib.suppress(LabgridError):
            lab.client("release-from", identity, place=place)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
