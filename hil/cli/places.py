"""`hil places`: the labgrid places, who holds each, the firmware each reported last."""

from __future__ import annotations

import argparse
import sys
import time

from hil.farm.labgrid import Labgrid, LabgridError, PlaceState

HELP = "the labgrid places: who holds each, the firmware each reported last"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                        help="labgrid coordinator (default: LG_COORDINATOR, else "
                        "127.0.0.1:20408)")


def places_table(places: list[PlaceState], now: float | None = None) -> str:
    """One line per place: name, holder (and since when), last firmware, serial port."""
    now = time.time() if now is None else now
    rows = [("PLACE", "HELD BY", "LAST FIRMWARE", "SERIAL")]
    for p in places:
        held = f"{p.holder} ({_ago(now - p.changed)})" if p.holder else "free"
        serial = p.serial()
        if serial is None:
            port = "-"
        elif not serial.avail:
            port = "unavailable (exporter gone?)"
        elif serial.params.get("port") is None:
            port = "shared while locked"
        else:
            port = f"{serial.params.get('host')}:{serial.params.get('port')}"
        rows.append((p.name, held, p.tags.get("firmware", "-"), port))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{max(seconds, 0):.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def main(args: argparse.Namespace) -> int:
    try:
        places = Labgrid(args.coordinator).places()
    except LabgridError as exc:
        print(f"hil places: {exc}", file=sys.stderr)
        return 1
    print(places_table(places) if places else "hil places: the coordinator has no places")
    return 0
