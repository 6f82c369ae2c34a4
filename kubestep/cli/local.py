"""`kubestep local up|down|status`: the embedded AWS emulator with the management service
deployed into it (DESIGN §7)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from kubestep.cli.target import home, local_state_file, read_local_state

DEFAULT_TIME_SCALE = 0.05  # a 20 s boot takes 1 s; Retry intervals shrink alike


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _print_endpoints(state: dict) -> None:
    click.echo(f"AWS endpoint:  {state['endpoint_url']}   (AWS_ENDPOINT_URL for boto3 / the AWS CLI)")
    click.echo(f"API endpoint:  {state['api_url']}")
    click.echo(f"Region:        {state['region']}")
    click.echo(f"State file:    {local_state_file()}")


@click.group()
def local() -> None:
    """The embedded local runtime (no AWS account needed)."""


@local.command("up")
@click.option("--port", default=4566, show_default=True, help="Emulator port.")
@click.option("--api-port", default=8080, show_default=True, help="Management API port.")
@click.option(
    "--time-scale",
    default=DEFAULT_TIME_SCALE,
    show_default=True,
    help="Factor for Wait states, Retry intervals and simulated boot delays.",
)
@click.option(
    "--manifest",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="AWSManagementService manifest (default: cdk.json's).",
)
@click.option("--detach", is_flag=True, help="Run in the background; `kubestep local down` stops it.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for start-up with --detach.")
def local_up(port: int, api_port: int, time_scale: float, manifest: str | None, detach: bool, timeout: float) -> None:
    """Start the emulator, deploy the management service, provision its network."""
    state = read_local_state()
    if state and _alive(int(state.get("pid", 0))):
        click.echo("the local runtime is already running")
        _print_endpoints(state)
        return
    args = ["--port", str(port), "--api-port", str(api_port), "--time-scale", str(time_scale)]
    if manifest:
        args += ["--manifest", manifest]
    if not detach:
        from kubestep_local.runtime import serve_forever

        def ready(line: str) -> None:
            _print_endpoints(json.loads(line))
            click.echo("ready; Ctrl-C stops it")

        serve_forever(
            port=port,
            api_port=api_port,
            time_scale=time_scale,
            boot_delay_seconds=20.0,
            manifest_path=manifest,
            ready=ready,
        )
        return
    log_dir = home() / "local"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "runtime.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "kubestep_local", *args],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=Path.cwd(),
        )
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    line = b""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith(b"{"):
            break
        if process.poll() is not None:
            raise click.ClickException(f"the local runtime exited with {process.returncode}; see {log_path}")
    if not line.startswith(b"{"):
        process.terminate()
        raise click.ClickException(f"the local runtime did not start within {timeout:.0f}s; see {log_path}")
    _print_endpoints(json.loads(line))
    click.echo(f"running in the background (pid {process.pid}, log {log_path}); `kubestep local down` stops it")


@local.command("down")
@click.option("--timeout", default=30.0, show_default=True)
def local_down(timeout: float) -> None:
    """Stop the local runtime (its state is in memory and goes with it)."""
    state = read_local_state()
    if not state:
        click.echo("the local runtime is not running")
        return
    pid = int(state.get("pid", 0))
    if pid and _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    local_state_file().unlink(missing_ok=True)
    click.echo("stopped")


@local.command("status")
def local_status() -> None:
    """Is the local runtime running, and where."""
    state = read_local_state()
    if not state or not _alive(int(state.get("pid", 0))):
        click.echo("not running")
        sys.exit(1)
    _print_endpoints(state)
