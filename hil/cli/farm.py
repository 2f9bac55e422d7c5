"""`hil farm up N | down`: a labgrid farm of simulated modules on this PC."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hil.farm import farm
from hil.farm.labgrid import LabgridError

HELP = "a labgrid farm of simulated modules on this PC: up N, down"


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def main(args: argparse.Namespace) -> int:
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
