"""Serve the portal simulator: python -m chiso.simulator --host 127.0.0.1 --port 8765"""

from __future__ import annotations

import argparse

from chiso import settings
from chiso.simulator.scenarios import SCENARIOS, get_scenario
from chiso.simulator.server import PortalSimulator, make_server


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=int(settings.require("CHISO_SIMULATOR_SEED")))
    parser.add_argument("--scenario", choices=sorted(SCENARIOS),
                        default=settings.require("CHISO_SIMULATOR_SCENARIO"))
    parser.add_argument("--token", default=settings.require("CHISO_SIMULATOR_TOKEN"))
    args = parser.parse_args(argv)
    server = make_server(PortalSimulator(args.seed, get_scenario(args.scenario)), args.token,
                         args.host, args.port)
    print(f"portal simulator on http://{args.host}:{server.server_address[1]} "
          f"(scenario {args.scenario}, seed {args.seed})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
