"""`hil farm up N | down` and `hil places`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hil.farm import farm
from hil.farm.labgrid import Labgrid, LabgridError, PlaceState


def add_farm_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="farm_command", required=True, metavar="up|down")
    start = sub.add_parser("up", help="start N simulated modules behind a labgrid coordinator "
                           "and exporter (ser2net), all on 127.0.0.1")
    start.add_argument("count", type=int, metavar="N", help="how many modules")
    start.add_argument("--prefix", default="l506-", help="place names: PREFIX1…PREFIXN")
    start.add_argument("--profile", default="v3.2", help="simulated firmware profile")
    stop = sub.add_parser("down", help="stop the farm's processes")
    for each in (start, stop):
        each.add_argument("--dir", type=Path, default=farm.DEFAULT_DIR,
                          help="the farm's folder: logs, farm.json, rig.toml "
                          "(default %(default)s)")


def farm_main(args: argparse.Namespace) -> int:
    try:
        if args.farm_command == "down":
            stopped = farm.down(args.dir)
            print(f"hil farm: stopped {', '.join(stopped)}")
            return 0
        started = farm.up(args.count, args.dir, args.prefix, args.profile)
    except (farm.FarmError, LabgridError) as exc:
        print(f"hil farm: {exc}", file=sys.stderr)
        return 1
    print(f"hil farm: coordinator {started.coordinator} (export LG_COORDINATOR="
          f"{started.coordinator})")
    for place in started.places:
        print(f"hil farm: place {place}  module on {started.ports[place]}")
    rig = Path(started.folder, "rig.toml")
    print(f"hil farm: rig {rig}")
    print(f"hil farm: run  hil run --rig {rig} -n {len(started.places)} --each")
    print("hil farm: stop hil farm down")
    return 0


def add_places_arguments(parser: argparse.ArgumentParser) -> None:
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


def places_main(args: argparse.Namespace) -> int:
    try:
        places = Labgrid(args.coordinator).places()
    except LabgridError as exc:
        print(f"hil places: {exc}", file=sys.stderr)
        return 1
    print(places_table(places) if places else "hil places: the coordinator has no places")
    return 0
