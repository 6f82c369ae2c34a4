"""``python -m kubestep_local``: run the embedded local runtime in the foreground.

``kubestep local up --detach`` spawns this; it prints one JSON line when ready, writes
``$KUBESTEP_HOME/local.json`` and removes it again on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubestep_local", description=__doc__)
    parser.add_argument("--port", type=int, default=4566, help="emulator port (0: any free port)")
    parser.add_argument("--api-port", type=int, default=8080, help="management API port (0: any free port)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="factor for ASL waits/retries and boots")
    parser.add_argument("--boot-delay", type=float, default=20.0, help="simulated instance boot, in seconds")
    parser.add_argument("--home", type=Path, default=None, help="state directory (default $KUBESTEP_HOME)")
    parser.add_argument("--manifest", type=Path, default=None, help="AWSManagementService manifest")
    parser.add_argument("--template", type=Path, default=None, help="deploy this synthesized template")
    parser.add_argument("--no-network", action="store_true", help="do not run ProvisionNetwork")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)

    from kubestep_local.runtime import serve_forever

    def ready(line: str) -> None:
        print(line, flush=True)

    serve_forever(
        port=args.port,
        api_port=args.api_port,
        time_scale=args.time_scale,
        boot_delay_seconds=args.boot_delay,
        home=args.home,
        manifest_path=args.manifest,
        provision_network=not args.no_network,
        ready=ready,
        template_path=args.template,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
