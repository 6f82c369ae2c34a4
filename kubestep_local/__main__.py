"""``python -m kubestep_local``: run the home's local runtime in the foreground.

``kubestep local up --detach`` spawns this; it prints one JSON line when ready, writes
``$KUBESTEP_HOME/local.json`` and removes it again on SIGTERM/SIGINT, after saving the emulator's
state (``--ephemeral``: neither restore nor save it). Errors are one line on stderr, exit 1.
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
    parser.add_argument("--fresh", action="store_true", help="discard the saved emulator state first")
    parser.add_argument("--ephemeral", action="store_true", help="neither restore nor save the emulator state")
    parser.add_argument("--snapshot-interval", type=float, default=30.0, help="seconds between state snapshots")
    parser.add_argument("--latency", default="instant", help="latency profile: instant, realistic, slow")
    parser.add_argument("--existing-vpc", action="store_true", help="deploy over a stand-in existing VPC")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)

    from kubestep_local.home import RuntimeBusy
    from kubestep_local.moto_compat import MotoVersionError
    from kubestep_local.runtime import RuntimeConfig, serve_forever
    from kubestep_local.server import PortInUse

    def ready(line: str) -> None:
        print(line, flush=True)

    try:
        config = RuntimeConfig(
            port=args.port,
            api_port=args.api_port,
            time_scale=args.time_scale,
            boot_delay_seconds=args.boot_delay,
            home=args.home,
            manifest_path=args.manifest,
            persistent=not args.ephemeral,
            snapshot_interval=args.snapshot_interval,
            latency=args.latency,
            existing_vpc=args.existing_vpc,
        )
        serve_forever(
            config,
            ready=ready,
            template_path=args.template,
            provision_network=not args.no_network,
            fresh=args.fresh,
        )
    except (PortInUse, RuntimeBusy, MotoVersionError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
