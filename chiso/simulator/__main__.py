"""Serve the portal simulator: python -m chiso.simulator --host 127.0.0.1 --port 8765

    --scenario national --volume 0.1             a tenth of the country's daily volume
    --faults "2024-11-15=http_503:attempts=2"    faults on given days (docs/simulator-faults.md)
"""

from __future__ import annotations

import argparse

from chiso.core import settings
from chiso.simulator.faults import FaultSchedule
from chiso.simulator.scenarios import SCENARIOS, get_scenario
from chiso.simulator.server import PortalSimulator, serve


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=int(settings.require("CHISO_SIMULATOR_SEED")))
    parser.add_argument("--scenario", choices=sorted(SCENARIOS),
                        default=settings.require("CHISO_SIMULATOR_SCENARIO"))
    parser.add_argument("--volume", type=float, default=float(settings.require("CHISO_SIMULATOR_VOLUME")),
                        help="multiplier of every unit's daily dossiers")
    parser.add_argument("--token", default=settings.require("CHISO_SIMULATOR_TOKEN"))
    parser.add_argument("--faults", default=settings.get("CHISO_SIMULATOR_FAULTS"),
                        help='faults per day/entity, e.g. "2024-11-15=http_503:attempts=2;2024-11-16/dossiers=duplicate_rows"')
    args = parser.parse_args(argv)
    world = get_scenario(args.scenario, args.volume)
    portal = PortalSimulator(args.seed, world, FaultSchedule.parse(args.faults))

    def ready(url: str) -> None:
        print(f"portal simulator on {url} "
              f"(scenario {args.scenario}, volume {args.volume}, seed {args.seed}, {len(world.units)} units)", flush=True)

    serve(portal, args.token, args.host, args.port, ready)


if __name__ == "__main__":
    main()
