"""`kubestep local up|down|status|env`: the embedded AWS emulator with the management service
deployed into it.

The runtime runs from a kubestep checkout (it deploys the checkout's CDK app; `kubestep.checkout`).
`local up` needs the `local` extra (moto, the CDK); `down`, `status` and `env` only read
`$KUBESTEP_HOME` and signal the runtime's process, so they work without it."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import click

from kubestep import checkout
from kubestep.cli.contexts import LOCAL
from kubestep.cli.errors import InputError
from kubestep.cli.options import DURATION, TIME_SCALE, output_option
from kubestep.cli.output import dumps
from kubestep.cli.target import home, local_state_file, read_local_state

DEFAULT_TIME_SCALE = 0.05  # a 20 s boot takes 1 s; Retry intervals shrink alike
# kubestep_local.latency.PROFILES (named here: the plain CLI install has no kubestep_local).
LATENCY_PROFILES = ("instant", "realistic", "slow")
# What the embedded runtime imports (module -> distribution), all from the `local` extra.
LOCAL_RUNTIME_MODULES = {
    "moto": "moto[server]",
    "aws_cdk": "aws-cdk-lib",
    "cdk_nag": "cdk-nag",
    "constructs": "constructs",
    "aws_lambda_powertools": "aws-lambda-powertools",
}
# The emulator's fixed account and dummy credentials (it verifies no signature).
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def require_checkout(command: str) -> Path:
    """The checkout the local runtime runs from (made importable), or exit with one line."""
    root = checkout.local_runtime_importable()
    if root is None:
        installed = Path(checkout.__file__).resolve().parent
        _fail(
            f"`kubestep {command}` needs the local runtime, which runs from a kubestep checkout (it deploys the "
            f"checkout's CDK app), and this kubestep is installed from a wheel ({installed}): {checkout.INSTALL_LOCAL}"
        )
    return root


def require_local_runtime(command: str) -> None:
    """Exit with one line naming the `local` extra unless the runtime's packages are installed."""
    root = require_checkout(command)
    missing = []
    for module, distribution in LOCAL_RUNTIME_MODULES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(distribution)
    if missing:
        _fail(
            f"`kubestep {command}` needs the local runtime's packages ({', '.join(missing)}): "
            f"{checkout.local_install_hint(root)}"
        )


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie, ended but not yet reaped by its parent, does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): kill(0) is all we know
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def running_runtime() -> dict[str, Any] | None:
    """Who holds this home: the runtime's lock information, or a live pid in local.json."""
    from kubestep_local.home import running_runtime as lock_holder

    info = lock_holder(home())
    if info is not None:
        state = read_local_state() or {}
        if state.get("pid") == info.get("pid"):
            info = {**info, **{k: state[k] for k in ("endpoint_url", "api_url") if k in state}}
        return info
    state = read_local_state()
    if state and _alive(int(state.get("pid", 0))):
        return {**state, "home": str(home())}
    return None


def _print_endpoints(state: dict) -> None:
    click.echo(f'AWS endpoint:  {state["endpoint_url"]}   (`eval "$(kubestep local env)"` for boto3 / the AWS CLI)')
    click.echo(f"API endpoint:  {state['api_url']}")
    click.echo(f"Region:        {state['region']}")
    click.echo(f"Context:       {LOCAL}   (`kubestep config use-context {LOCAL}`; it follows the runtime's endpoints)")
    click.echo(f"State file:    {local_state_file()}")


def _names(names: list[str] | None) -> str:
    return ", ".join(names) if names else "none"


def _lost_operations(report: dict) -> None:
    """Operations started after the last snapshot of a runtime that crashed: their work is gone."""
    lost = report.get("lostOperations") or []
    if not lost:
        return
    named = ", ".join(
        f"{entry.get('name')} ({entry.get('stateMachine')}"
        + (f" of cluster {entry['cluster']}" if entry.get("cluster") else "")
        + f", started {entry.get('startedAt')})"
        for entry in lost
    )
    click.echo(
        f"warning: the previous local runtime stopped without saving after these operations started; "
        f"what they did is lost: {named}",
        err=True,
    )


def _print_restore(report: dict | None) -> None:
    """What became of the state the previous runtime left (one or two lines)."""
    if not report:
        return
    _lost_operations(report)
    if report.get("nothingSaved"):
        return
    if report.get("restored"):
        clusters = report.get("clusters")
        click.echo(
            f"Restored:      the emulator's state saved at {report.get('savedAt')} "
            f"(clusters: {_names(clusters) if clusters is not None else 'unknown'})"
        )
        if report.get("abortedExecutions"):
            click.echo(
                f"               running operations could not survive the restart and ended ABORTED: "
                f"{', '.join(report['abortedExecutions'])}"
            )
        if report.get("lastError"):
            click.echo(
                f"warning: saving the state failed after that ({report['lastError'].get('error')}); "
                "later changes were lost",
                err=True,
            )
    elif report.get("discarded"):
        click.echo(f"Discarded:     the saved state (--fresh); clusters lost: {_names(report.get('lostClusters'))}")
    else:
        click.echo(
            f"warning: the previous local runtime held clusters {_names(report.get('lostClusters'))}; "
            f"they were lost: its saved state could not be restored ({report.get('error')})",
            err=True,
        )


@click.group()
def local() -> None:
    """The embedded local runtime (no AWS account needed)."""


@local.command("up")
@click.option("--port", default=4566, show_default=True, help="Emulator port (0: any free port).")
@click.option("--api-port", default=8080, show_default=True, help="Management API port (0: any free port).")
@click.option(
    "--time-scale",
    type=TIME_SCALE,
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
@click.option("--fresh", is_flag=True, help="Discard the state the previous runtime saved; start empty.")
@click.option("--detach", is_flag=True, help="Run in the background; `kubestep local down` stops it.")
@click.option(
    "--timeout", type=DURATION, default="10m", show_default=True, help="How long to wait for start-up with --detach."
)
@click.option(
    "--latency",
    type=click.Choice(LATENCY_PROFILES),
    default="instant",
    show_default=True,
    help="How long AWS keeps resources in their intermediate states (NAT gateways pending, NLBs "
    "provisioning, ...), compressed by --time-scale.",
)
@click.option(
    "--existing-vpc",
    is_flag=True,
    help="First make a stand-in existing VPC with one private subnet, then deploy an existing-VPC "
    "management service over it (instead of --manifest's).",
)
def local_up(
    port: int,
    api_port: int,
    time_scale: float,
    manifest: str | None,
    fresh: bool,
    detach: bool,
    timeout: float,
    latency: str,
    existing_vpc: bool,
) -> None:
    """Start the emulator, deploy the management service, provision its network; print the AWS
    and API endpoints and record them in $KUBESTEP_HOME/local.json (the context `local` reads
    them). The emulator's state (clusters and their AWS resources) is saved when it stops, every
    30 s while it is used and within seconds of each operation's start and end, and comes back
    with the next `local up` (--fresh starts empty); after a crash it names every operation the
    saved state does not hold.
    One runtime per $KUBESTEP_HOME: exit 1 naming the running one, or the port in use."""
    require_local_runtime("local up")
    from kubestep_local.home import describe_runtime
    from kubestep_local.server import port_available

    running = running_runtime()
    if running:
        _fail(f"a local runtime is already running ({describe_runtime(running)}); `kubestep local down` stops it")
    for number, what, option in ((port, "the AWS endpoint", "--port"), (api_port, "the management API", "--api-port")):
        if not port_available(number):
            _fail(f"port {number} ({what}) is in use; pick another with {option} (0 picks a free one)")
    if port and port == api_port:
        _fail(f"--port and --api-port must differ (both {port})")
    args = ["--port", str(port), "--api-port", str(api_port), "--time-scale", str(time_scale)]
    if manifest:
        args += ["--manifest", manifest]
    if fresh:
        args.append("--fresh")
    args += ["--latency", latency]
    if existing_vpc:
        args.append("--existing-vpc")
    if not detach:
        from kubestep_local.home import RuntimeBusy
        from kubestep_local.runtime import RuntimeConfig, serve_forever
        from kubestep_local.server import PortInUse

        def ready(line: str) -> None:
            state = json.loads(line)
            _print_endpoints(state)
            _print_restore(state.get("restore"))
            _warn_stale_exports(state)
            click.echo("ready; Ctrl-C stops it (and saves its state)")

        config = RuntimeConfig(
            port=port,
            api_port=api_port,
            time_scale=time_scale,
            manifest_path=Path(manifest) if manifest else None,
            home=home(),
            persistent=True,
            latency=latency,
            existing_vpc=existing_vpc,
        )
        try:
            serve_forever(config, ready=ready, fresh=fresh)
        except (PortInUse, RuntimeBusy) as exc:
            _fail(str(exc))
        return
    log_dir = home() / "local"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "runtime.log"
    log_start = log_path.stat().st_size if log_path.exists() else 0
    with open(log_path, "ab") as log:
        root = require_checkout("local up")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        process = subprocess.Popen(
            [sys.executable, "-m", "kubestep_local", "--home", str(home()), *args],
            env=env,
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
            exited = f"the local runtime exited with {process.returncode}; see {log_path}"
            _fail(_runtime_error(log_path, log_start) or exited)
    if not line.startswith(b"{"):
        process.terminate()
        _fail(f"the local runtime did not start within {timeout:.0f}s; see {log_path}")
    state = json.loads(line)
    _print_endpoints(state)
    _print_restore(state.get("restore"))
    _warn_stale_exports(state)
    click.echo(f"running in the background (pid {process.pid}, log {log_path}); `kubestep local down` stops it")


def _runtime_error(log_path: Path, start: int) -> str | None:
    """The runtime's own one-line error (``error: ...``) from what it logged since ``start``."""
    try:
        with open(log_path, "rb") as log:
            log.seek(start)
            lines = log.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else None


def _cluster_names(state: dict) -> list[str] | None:
    from kubestep.api.client import ApiClient

    try:
        clusters = ApiClient(state["api_url"], sign=False, timeout=20).list_clusters()
        return sorted(c["metadata"]["name"] for c in clusters)
    except Exception:  # noqa: BLE001 - the names only make the messages better
        return None


@local.command("down")
@click.option("--timeout", type=DURATION, default="1m", show_default=True, help="How long to wait for a clean stop.")
@click.option("--force", is_flag=True, help="Stop without asking, also when clusters would be lost.")
def local_down(timeout: float, force: bool) -> None:
    """Stop the local runtime. Its state is saved and comes back with `kubestep local up`; a
    runtime that keeps none (`demo --keep`) asks first (--force in scripts)."""
    require_checkout("local down")
    from kubestep_local.home import describe_runtime
    from kubestep_local.state import StateStore

    running = running_runtime()
    state = read_local_state() or {}
    if not running:
        local_state_file().unlink(missing_ok=True)
        click.echo("the local runtime is not running")
        return
    pid = int(running.get("pid") or state.get("pid") or 0)
    store = StateStore(home())
    clusters = _cluster_names(state) if state.get("api_url") else None
    at_risk = None
    if not state.get("persistent", True):
        at_risk = "this runtime does not keep its state (kubestep demo --keep)"
    elif (store.summary() or {}).get("lastError"):
        at_risk = f"saving its state is failing ({store.summary()['lastError'].get('error')})"
    if at_risk and clusters and not force:
        message = f"the local runtime holds clusters {_names(clusters)}; {at_risk}: stopping it loses them"
        if not sys.stdin.isatty():
            _fail(f"{message}; pass --force to stop it anyway")
        click.echo(f"warning: {message}", err=True)
        if not click.confirm("Stop it anyway?", default=False):
            _fail("not stopped")
    if not _alive(pid):
        _fail(f"the local runtime's lock is held but its pid is unknown ({describe_runtime(running)})")
    # The last periodic save may fall in the same second as the final one: compare saves, not savedAt.
    saved_before = store.save_mark()
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    killed = False
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        killed = True
    local_state_file().unlink(missing_ok=True)
    summary = store.summary() or {}
    if not state.get("persistent", True):
        click.echo(f"stopped; clusters lost: {_names(clusters)}")
    elif not killed and store.save_mark() not in (None, saved_before) and not summary.get("lastError"):
        click.echo(
            f"stopped; its state is saved (clusters: {_names(summary.get('clusters'))}) and comes back with "
            "`kubestep local up` (`--fresh` starts empty)"
        )
    elif summary.get("savedAt"):
        click.echo(
            f"warning: stopped{' forcibly' if killed else ''}; the state saved at {summary['savedAt']} comes back "
            "with `kubestep local up`; later changes are lost",
            err=True,
        )
    else:
        click.echo(f"warning: stopped; no state was saved; clusters lost: {_names(clusters)}", err=True)


@local.command("status")
def local_status() -> None:
    """Is the local runtime running, and where."""
    require_checkout("local status")
    from kubestep_local.home import describe_runtime
    from kubestep_local.state import StateStore

    running = running_runtime()
    summary = StateStore(home()).summary()
    saved = (
        f"saved at {summary.get('savedAt')} (clusters: {_names(summary.get('clusters'))})"
        if summary and summary.get("savedAt")
        else "none"
    )
    if not running:
        click.echo("not running")
        click.echo(f"Saved state:   {saved}")
        sys.exit(1)
    state = read_local_state()
    if state and state.get("pid") == running.get("pid"):
        _print_endpoints(state)
    else:
        click.echo(f"starting ({describe_runtime(running)})")
    click.echo(f"Process:       pid {running.get('pid')}, home {home()}")
    click.echo(f"Saved state:   {saved}")


def environment(state: dict) -> dict[str, str]:
    """What the shell needs to use the runtime with the AWS CLI, boto3 and kubestep. kubestep
    gets the context `local` rather than the API's URL: it reads the runtime's endpoints from
    $KUBESTEP_HOME each time, so the shell keeps working after the runtime restarts elsewhere."""
    return {
        "AWS_ENDPOINT_URL": state["endpoint_url"],
        "AWS_REGION": state["region"],
        "AWS_DEFAULT_REGION": state["region"],
        **DUMMY_CREDENTIALS,
        "KUBESTEP_CONTEXT": LOCAL,
    }


# What `local env --unset` undoes: its exports, and the API URL earlier releases exported.
ENVIRONMENT_NAMES = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", *DUMMY_CREDENTIALS, "KUBESTEP_CONTEXT")


def _stale_exports(state: dict) -> list[str]:
    """This shell's exports that point at another local runtime's loopback endpoints (an earlier
    `eval "$(kubestep local env)"` before a restart on other ports)."""
    stale = []
    for name, now in (("AWS_ENDPOINT_URL", state["endpoint_url"]), ("KUBESTEP_API_URL", state["api_url"])):
        value = os.environ.get(name) or ""
        host = urlsplit(value).hostname
        if host in ("127.0.0.1", "localhost") and value.rstrip("/") != now.rstrip("/"):
            stale.append(f"{name}={value}")
    return stale


def _warn_stale_exports(state: dict) -> None:
    stale = _stale_exports(state)
    if stale:
        click.echo(
            f"warning: this shell's {', '.join(stale)} point at an earlier local runtime: "
            'eval "$(kubestep local env)" again (kubestep itself follows: KUBESTEP_CONTEXT=local)',
            err=True,
        )


@local.command("env")
@click.option("--unset", is_flag=True, help="Print the commands that undo the exports.")
def local_env(unset: bool) -> None:
    """Shell exports for the running local runtime: `eval "$(kubestep local env)"`.

    The AWS CLI and boto3 then talk to the emulator (endpoint, region, dummy credentials), and
    kubestep to its management API through the context `local`, which follows the runtime when it
    restarts on other ports (the AWS CLI's endpoint does not: `local up` says when to eval again)."""
    if unset:
        click.echo(f"unset {' '.join([*ENVIRONMENT_NAMES, 'KUBESTEP_API_URL'])}")
        return
    require_checkout("local env")
    running = running_runtime()
    state = read_local_state()
    if not running or not state or state.get("pid") != running.get("pid"):
        _fail("the local runtime is not running (or still starting): `kubestep local up --detach` first")
    for name, value in environment(state).items():
        click.echo(f"export {name}={shlex.quote(value)}")


@local.command("tick")
@click.option(
    "--at",
    "at",
    metavar="TIME",
    help="The moment to play (ISO 8601 with a zone, e.g. 2026-12-05T03:30:00Z); default now.",
)
@output_option(("text", "json", "yaml"))
def local_tick(at: str | None, fmt: str) -> None:
    """Fire what is due as of TIME: each RUNNING cluster's etcd backup when one is due by then
    (the newest an interval old, or none: asked for and taken by its etcd leader, as its report
    timer would have), then the scheduled upgrades: the upgrade planner's EventBridge rule (with
    the scheduled event's time TIME, which the local runtime's planner honours) and every one-off
    upgrade schedule due by TIME, earliest first, each with the outcome its schedule recorded
    (started, or skipped: why). On AWS, the instances' timers and EventBridge do this on their own.

    \b
    Examples:
      kubestep local tick --at 2026-12-05T03:30:00Z     # inside a 03:00 maintenance window
      kubestep local tick                                # now: due one-off schedules fire
      kubestep local tick --at 2026-12-06T12:00:00Z     # a day on: each cluster's backup is due
    """
    require_checkout("local tick")
    from datetime import UTC, datetime

    import boto3

    from kubestep import upgrades
    from kubestep.errors import InvalidSpec
    from kubestep_local.backup_tick import fire_due_backups
    from kubestep_local.moto_compat import ACCOUNT_ID
    from kubestep_local.scheduler import kubestep_outcomes, tick

    running = running_runtime()
    state = read_local_state()
    if not running or not state or state.get("pid") != running.get("pid"):
        _fail("the local runtime is not running (or still starting): `kubestep local up --detach` first")
    try:
        moment = upgrades.parse_time(at, "--at") if at else datetime.now(UTC)
    except InvalidSpec as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    region = state["region"]

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=state["endpoint_url"],
            region_name=region,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    outputs = state.get("outputs") or {}
    service = outputs.get("ServiceName", "")
    result = tick(
        client,
        moment,
        planner_arn=outputs.get("PlanUpgradesStateMachineArn"),
        rule_arn=f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{service}-plan-upgrades",
        account=ACCOUNT_ID,
        region=region,
        # Each schedule's own record says what it did (started, or skipped and why).
        outcome_of=kubestep_outcomes(state["api_url"]),
        fire_backups=lambda moment: fire_due_backups(state["api_url"], moment),
    )
    if fmt in ("json", "yaml"):
        click.echo(
            dumps(
                {
                    "at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "backups": [
                        {"cluster": b.cluster, "uid": b.uid, "outcome": b.outcome, "backupId": b.backup_id}
                        | ({"detail": b.detail} if b.detail else {})
                        for b in result.backups
                    ],
                    "planner": {"execution": result.planner_execution, "status": result.planner_status},
                    "decisions": result.decisions,
                    "schedules": [
                        {
                            "id": f.name,
                            "at": f.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "execution": f.execution_arn,
                            "outcome": f.outcome,
                        }
                        for f in result.fired
                    ],
                },
                fmt,
            ),
            nl=fmt == "json",
        )
        return
    click.echo(f"At {moment:%Y-%m-%dT%H:%M:%SZ}:")
    click.echo(f"  etcd backups: {sum(1 for b in result.backups if b.outcome == 'taken')} taken")
    for taken in result.backups:
        what = f"taken {taken.backup_id}" if taken.outcome == "taken" else taken.outcome
        click.echo(f"    {taken.cluster}: {what}" + (f" ({taken.detail})" if taken.detail else ""))
    click.echo(f"  upgrade planner: {result.planner_status or 'not deployed'}")
    for decision in result.decisions:
        what = decision["action"]
        more = f" (operation {decision['operationId']})" if decision.get("operationId") else ""
        click.echo(f"    {decision['clusterName']}: {what}: {decision['reason']}{more}")
    if not result.decisions and result.planner_status:
        click.echo("    no clusters")
    click.echo(f"  one-off schedules fired: {len(result.fired)}")
    for fired in result.fired:
        click.echo(f"    {fired.name} (due {fired.at:%Y-%m-%dT%H:%M:%SZ}): {fired.outcome}")


@local.group("fault")
def local_fault() -> None:
    """Make a running instance misbehave, to watch auto-repair (management.autoRepair) in the
    local runtime: a node's heartbeat stops, or a healthy replica fails; or make a cluster's boots
    hang, to watch an operation wait at its gate. `kubestep get operations
    -c CLUSTER` and `kubestep events CLUSTER` then show the repair."""


def _ask_runtime(request: dict[str, Any]) -> list[str]:
    """The running runtime applies `request`; the instances it affected, or exit with its reason."""
    require_checkout(f"local fault {request['kind']}")
    from kubestep_local.instance_faults import FaultRefused, ask

    if not running_runtime():
        _fail("the local runtime is not running: `kubestep local up --detach` first")
    try:
        return list(ask(home(), request)["instances"])
    except FaultRefused as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except TimeoutError as exc:
        _fail(str(exc))


NODE_ID = r"i-[0-9a-f]{8,17}"


@local_fault.command("node-heartbeat")
@click.argument("cluster")
@click.argument("node")
def local_fault_node_heartbeat(cluster: str, node: str) -> None:
    """NODE (an instance id) of CLUSTER stops writing its periodic report, as a hung or cut-off
    instance does. With auto-repair on for its pool, once the heartbeat is late the node is marked
    Unhealthy in its Auto Scaling group, which replaces it through the drain hook.

    \b
    Example:
      kubestep local fault node-heartbeat prod i-0123456789abcdef0
    """
    from kubestep.cli.kinds import check_name

    check_name("cluster", cluster)
    if not re.fullmatch(NODE_ID, node):
        raise InputError(f"NODE: {node[:80]!r} is not an EC2 instance id (i- and 8 or 17 hex digits)")
    [instance] = _ask_runtime({"kind": "node-heartbeat", "cluster": cluster, "node": node})
    click.echo(f"node {instance} of cluster {cluster}: heartbeat stopped (`kubestep local fault clear` restarts it)")


@local_fault.command("replica-fails")
@click.argument("cluster")
@click.argument("index", type=click.IntRange(min=0))
def local_fault_replica_fails(cluster: str, index: int) -> None:
    """Replica INDEX of CLUSTER, healthy until now, keeps reporting but its API server stops
    answering. With auto-repair on for the control plane, once it stays failed it is replaced
    through the replica-replacement path, keeping its etcd volume.

    \b
    Example:
      kubestep local fault replica-fails prod 1
    """
    from kubestep.cli.kinds import check_name

    check_name("cluster", cluster)
    [instance] = _ask_runtime({"kind": "replica-fails", "cluster": cluster, "replica": index})
    click.echo(f"replica {index} of cluster {cluster} ({instance}): failing (`kubestep local fault clear` heals it)")


@local_fault.command("boot-hangs")
@click.argument("cluster")
def local_fault_boot_hangs(cluster: str) -> None:
    """CLUSTER's instances still booting, and those launched from now on, hang in their bootstrap
    and never report, as an instance whose cloud-init stalls does: the create, roll or repair
    waits at its health gate (up to its timeout). The cluster may not exist yet: hang the boots,
    then apply it, to hold its create in flight.

    \b
    Example:
      kubestep local fault boot-hangs prod
    """
    from kubestep.cli.kinds import check_name

    check_name("cluster", cluster)
    _ask_runtime({"kind": "boot-hangs", "cluster": cluster})
    click.echo(f"cluster {cluster}: instances hang in boot (`kubestep local fault clear` lets them finish)")


@local_fault.command("clear")
def local_fault_clear() -> None:
    """Every instance reports as it should again (one already replaced stays replaced), and boots
    that hang finish."""
    _ask_runtime({"kind": "clear"})
    click.echo("instance faults cleared")
