"""The embedded local runtime: emulator + Lambda seam + time scale + stand-ins, in one object.

    with LocalRuntime(RuntimeConfig(port=0, api_port=0, time_scale=0.02)) as rt:
        outputs = rt.deploy()          # synthesize infra/, deploy it into moto
        rt.provision_network()         # the management network, once
        sfn = rt.boto3_client("stepfunctions")
        ...

``serve_forever()`` is what ``kubestep local up`` runs (``python -m kubestep_local``): a
*persistent* runtime, which owns its home and keeps the emulator's state across restarts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from kubestep import files
from kubestep.aws.errors import Kind, is_already_exists
from kubestep_local import moto_compat
from kubestep_local.apigw import ApiGatewayServer
from kubestep_local.backup_tick import fire_due_backups
from kubestep_local.deploy import deploy_template, stack_region
from kubestep_local.events import EventBridgeStandIn
from kubestep_local.faults import ENV_VAR as FAULTS_ENV_VAR
from kubestep_local.faults import Fault, FaultPlan, Invocation
from kubestep_local.home import STATE_FILE, HomeLock, default_home
from kubestep_local.instance_faults import InstanceFaultInbox
from kubestep_local.instances import InstanceSimulator
from kubestep_local.lambda_seam import LambdaSeam
from kubestep_local.latency import PROFILE_NAMES, LatencyModel
from kubestep_local.modelled_time import modelled_time
from kubestep_local.moto_compat import ACCOUNT_ID, FunctionInfo
from kubestep_local.moto_compat import s3 as bucket_policies
from kubestep_local.moto_compat.autoscaling_health import emulate_health_replacement
from kubestep_local.recorder import CallRecorder
from kubestep_local.scheduler import SchedulerClock, Tick, kubestep_outcomes, tick
from kubestep_local.server import EmulatorServer, PortInUse, port_available
from kubestep_local.state import StateStore
from kubestep_local.synth import cached_synthesize, synthesize
from kubestep_local.time_scale import TimeScale
from kubestep_local.worker_pool import DEFAULT_POOL_SIZE, WorkerPools

LOG = logging.getLogger(__name__)

PROVISION_NETWORK_EXECUTION = "provision-network"
STOPPED_ERROR = "States.Runtime"
STOPPED_CAUSE = "local runtime stopped"
# Seconds between an execution starting or ending and the snapshot it triggers: its first steps
# (the record a create registers) land in the snapshot; several at once make one.
OPERATION_SNAPSHOT_DELAY = 1.0


class ExecutionFailed(RuntimeError):
    """A workflow execution the runtime waited for did not succeed."""

    def __init__(self, description: dict[str, Any]) -> None:
        self.description = description
        super().__init__(
            f"{description.get('name')} {description.get('status')}: "
            f"{description.get('error')}: {description.get('cause')}"
        )


@dataclass(frozen=True)
class ExecutionStats:
    execution_arn: str
    name: str
    state_machine_arn: str
    status: str
    state_transitions: int
    lambda_invocations: int
    aws_api_calls: int


@dataclass(frozen=True)
class RuntimeConfig:
    """How a LocalRuntime runs. Every field has a default; ports 0 pick free ones."""

    port: int = 4566
    """The emulator's port: AWS_ENDPOINT_URL for boto3 and the AWS CLI."""
    api_port: int = 8080
    """The management API stand-in's port."""
    time_scale: float = 1.0
    """Factor for Wait states, Retry intervals, simulated boots and handlers' own deadlines."""
    boot_delay_seconds: float = 20.0
    """Simulated instance boot, in workflow seconds (scaled by ``time_scale``)."""
    home: Path | None = None
    """State directory; default ``$KUBESTEP_HOME`` or ``~/.kubestep``."""
    manifest_path: Path | None = None
    """AWSManagementService manifest to synthesize (default: cdk.json's)."""
    region: str | None = None
    """Default region; else AWS_REGION, AWS_DEFAULT_REGION, us-east-1 (the stack's wins on deploy)."""
    pool_size: int = DEFAULT_POOL_SIZE
    """Warm workers per function at most (concurrent invocations of one function)."""
    scheduled_rules: bool = True
    """Fire EventBridge rate() rules."""
    synth_cache: bool = True
    """Reuse a synthesized assembly of the same sources."""
    prewarm: bool = True
    """Start one worker per function after deploying."""
    quiet: bool = True
    """Silence moto's per-request and expected-failure logging."""
    reset: bool = True
    """Start from an empty emulator (a previous runtime in this process leaves state in moto)."""
    persistent: bool = False
    """The home's runtime: hold ``$KUBESTEP_HOME/local.lock``, restore the saved emulator state at
    start, save it at intervals and at stop (``kubestep local up``)."""
    snapshot_interval: float = 30.0
    """Seconds between state snapshots of a persistent runtime (taken only after requests)."""
    extra_function_env: dict[str, str] = field(default_factory=dict)
    """Local-only environment variables for every function."""
    latency: str = "instant"
    """The latency model's profile (``kubestep_local.latency``): instant, realistic, slow. Can be
    changed while the runtime runs (``LocalRuntime.set_latency``)."""
    existing_vpc: bool = False
    """Make a stand-in "existing" VPC with one private subnet first and deploy an existing-VPC
    management service over it (``kubestep_local.existing_vpc``); ``manifest_path`` is ignored."""
    start_from: Path | None = None
    """Start from an emulator state ``LocalRuntime.snapshot`` wrote (a deployed stack with its
    network, say) instead of an empty emulator: ``deploy()`` finds the stack in place and
    ``provision_network()`` the network's execution; a fraction of a second instead of seconds."""

    def __post_init__(self) -> None:
        for name in ("home", "manifest_path", "start_from"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value).expanduser())
        for name in ("port", "api_port"):
            value = getattr(self, name)
            if not 0 <= value <= 65535:
                raise ValueError(f"RuntimeConfig.{name}: must be 0..65535 (got {value})")
        if self.port and self.port == self.api_port:
            raise ValueError(f"RuntimeConfig.port and api_port: must differ (both {self.port})")
        if self.time_scale < 0:
            raise ValueError(f"RuntimeConfig.time_scale: must be >= 0 (got {self.time_scale})")
        if self.pool_size < 1:
            raise ValueError(f"RuntimeConfig.pool_size: must be >= 1 (got {self.pool_size})")
        if self.snapshot_interval <= 0:
            raise ValueError(f"RuntimeConfig.snapshot_interval: must be > 0 (got {self.snapshot_interval})")
        if self.latency not in PROFILE_NAMES:
            raise ValueError(f"RuntimeConfig.latency: must be one of {', '.join(PROFILE_NAMES)} (got {self.latency!r})")
        if self.persistent and not self.reset:
            raise ValueError("RuntimeConfig.persistent: needs reset=True (saved state loads into a fresh emulator)")
        if self.start_from is not None and (self.persistent or not self.reset):
            raise ValueError("RuntimeConfig.start_from: needs reset=True and persistent=False (not the home's state)")

    def resolved_home(self) -> Path:
        return self.home if self.home is not None else default_home()


_ACTIVE: LocalRuntime | None = None
_ACTIVE_LOCK = threading.Lock()


class LocalRuntime:
    """moto on loopback with everything kubestep needs to run its workflows without AWS."""

    def __init__(self, config: RuntimeConfig | None = None) -> None:
        self.config = config or RuntimeConfig()
        self.home = self.config.resolved_home()
        self.region = (
            self.config.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        )
        self.time_scale = TimeScale(self.config.time_scale)
        self.server = EmulatorServer(port=self.config.port, quiet=self.config.quiet)
        self.recorder = CallRecorder()
        self.store = StateStore(self.home)
        self.latency = LatencyModel(self.time_scale, self.config.latency)
        # Fault injection: the plan every Lambda worker reads (kubestep_local/faults.py).
        self.faults = FaultPlan(self.home / "local" / f"faults-{os.getpid()}.json")
        self.timings: dict[str, float] = {}
        # What the start did with the saved state (persistent runtimes): see ``restore_report``.
        self.restore_report: dict[str, Any] | None = None
        self._home_lock = HomeLock(self.home)
        self._patches = moto_compat.PatchSet()
        self._seam: LambdaSeam | None = None
        self._simulator: InstanceSimulator | None = None
        self._events: EventBridgeStandIn | None = None
        self._scheduler_clock: SchedulerClock | None = None
        self._fault_inbox: InstanceFaultInbox | None = None
        self._api: ApiGatewayServer | None = None
        self._outputs: dict[str, str] = {}
        self._started = False
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._restored_extra: dict[str, Any] = {}
        self._manifest_override: Path | None = None
        self._snapshots: threading.Thread | None = None
        self._stop_snapshots = threading.Event()
        self._snapshot_lock = threading.Lock()
        self._requests_at_snapshot = -1
        # Set when an execution starts or ends: the snapshot loop saves soon, not in 30 s.
        self._operation_changed = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> LocalRuntime:
        """Start the emulator and the stand-ins (nothing is deployed yet).

        Raises PortInUse (naming the port) before anything starts if a port is taken, and
        home.RuntimeBusy (naming the other runtime) when a persistent runtime already holds the
        home."""
        global _ACTIVE
        if self._started:
            return self
        with _ACTIVE_LOCK:
            # moto's backends and the patches are process-wide: one runtime per process.
            if _ACTIVE is not None and _ACTIVE is not self:
                raise RuntimeError("another LocalRuntime is running in this process; stop it first")
            _ACTIVE = self
        started = time.monotonic()
        try:
            self._check_ports()
            if self.config.persistent:
                self._home_lock.acquire(self._lock_info("starting"))
            if self.config.reset:
                # A fresh emulator: a previous runtime in this process left its resources in moto.
                moto_compat.reset_backends()
            if self.config.persistent:
                self._restore()
            elif self.config.start_from is not None:
                self._restored_extra = moto_compat.restore_state(self.config.start_from.read_bytes()).extra
            # This run's function logs only (they are appended per invocation).
            for stale in (self.home / "local" / "logs").glob("*.log"):
                with contextlib.suppress(OSError):
                    stale.unlink()
            self._start_parts()
        except BaseException:
            self._started = True
            self.stop()
            raise
        self._started = True
        self.timings["start"] = time.monotonic() - started
        return self

    def _check_ports(self) -> None:
        """Fail fast, naming the port, before anything is started or deployed."""
        if not port_available(self.config.port):
            raise PortInUse(self.config.port, "the AWS endpoint", "--port")
        if not port_available(self.config.api_port):
            raise PortInUse(self.config.api_port, "the management API", "--api-port")

    def _start_parts(self) -> None:
        self.server.start()
        self.time_scale.install()
        moto_compat.fix_interpreter_bugs(self._patches)
        moto_compat.match_aws_semantics(self._patches)
        bucket_policies.deploy_bucket_policies()
        bucket_policies.deploy_bucket_versioning(self._patches)
        bucket_policies.evaluate_bucket_policies_as_aws(self._patches)
        moto_compat.fix_moto_performance(self._patches)
        Path(self.faults.path).parent.mkdir(parents=True, exist_ok=True)
        self.faults.clear()
        self.latency.start()
        moto_compat.emulate_lifecycle_hooks(self._patches)
        emulate_health_replacement(self._patches, self.time_scale.seconds)
        pools = WorkerPools(
            self.server.endpoint_url,
            pool_size=self.config.pool_size,
            workdir=self._lambda_workdir(),
            log_dir=self.home / "local" / "logs",
            # Lets domain code scale its own deadlines like the interpreter's waits.
            extra_env={
                "KUBESTEP_LOCAL_TIME_SCALE": repr(self.time_scale.scale),
                FAULTS_ENV_VAR: self.faults.path,
                "KUBESTEP_LOCAL_CLOCK": "1",
                **self.config.extra_function_env,
            },
        )
        self._seam = LambdaSeam(pools, self.recorder, log_dir=self.home / "local" / "logs", interceptors=[self])
        self._seam.install()
        self._simulator = InstanceSimulator(
            self.server.endpoint_url,
            time_scale=self.time_scale,
            boot_delay_seconds=self.config.boot_delay_seconds,
            boot_model=lambda: self.latency.profile.boot,
            on_report=self._reported,
            recorder=self.recorder,
        )
        self._simulator.mark_booted(set(self._restored_extra.get("booted", ())))
        self._simulator.start()
        # `kubestep local fault`, from the user's shell: instance faults for watching auto-repair.
        self._fault_inbox = InstanceFaultInbox(self.home, self._simulator)
        self._fault_inbox.start()
        self._events = EventBridgeStandIn(
            self.server.endpoint_url, time_scale=self.time_scale, scheduled_rules=self.config.scheduled_rules
        )
        self._events.mark_delivered(set(self._restored_extra.get("delivered", ())))
        self._events.start()
        if self.config.scheduled_rules:
            self._scheduler_clock = SchedulerClock(self.boto3_client)
            self._scheduler_clock.start()
        self._api = ApiGatewayServer(
            self.server.endpoint_url,
            port=self.config.api_port,
            region=self.region,
            function_name=self._api_function_name,
        )
        self._api.start()
        if self.config.persistent:
            moto_compat.on_execution_start(self._patches, self._journal_start)
            self._home_lock.update(self._lock_info("starting"))
            self._stop_snapshots.clear()
            self._snapshots = threading.Thread(target=self._snapshot_loop, name="kubestep-local-snapshots", daemon=True)
            self._snapshots.start()

    def stop(self) -> None:
        """Stop everything this runtime started (threads, workers, the server). A persistent
        runtime saves the emulator's state first."""
        global _ACTIVE
        if not self._started:
            return
        names = self.cluster_names() if self.config.persistent and self._api is not None else None
        self._stop_snapshots.set()
        if self._snapshots is not None:
            self._snapshots.join(timeout=30)
            self._snapshots = None
        for part in (self._api, self._fault_inbox, self._events, self._simulator, self._scheduler_clock):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()
        if self._seam is not None:
            if self.config.persistent:
                # Before the running executions are stopped: they come back ABORTED from the
                # snapshot, with a cause that says why.
                self.save_state(names)
            moto_compat.stop_running_executions(STOPPED_ERROR, STOPPED_CAUSE)
        # Wakes retry sleeps, so the stopped executions' threads end now.
        self.time_scale.uninstall()
        self.latency.stop()
        if self._seam is not None:
            self._wait_executions_ended(5.0)
            self._seam.close()
            shutil.rmtree(self._seam.pools.workdir, ignore_errors=True)
        self._patches.undo()
        self.server.stop()
        with contextlib.suppress(OSError):
            os.unlink(self.faults.path)
        self._home_lock.release()
        self._api = self._events = self._simulator = self._seam = self._scheduler_clock = None
        self._fault_inbox = None
        self._clients.clear()
        self._started = False
        with _ACTIVE_LOCK:
            if _ACTIVE is self:
                _ACTIVE = None

    @staticmethod
    def _wait_executions_ended(timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(e.status == "RUNNING" for e in moto_compat.executions()):
                return
            time.sleep(0.05)

    def _lambda_workdir(self) -> Path:
        """``$KUBESTEP_HOME/local/lambda-<pid>`` for extracted code; sweeps those of dead runtimes
        (a SIGKILLed runtime cannot clean up after itself)."""
        root = self.home / "local"
        for stale in root.glob("lambda-*"):
            pid = stale.name.removeprefix("lambda-")
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(stale, ignore_errors=True)
            except PermissionError:
                pass
        workdir = root / f"lambda-{os.getpid()}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        return workdir

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- properties ------------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url

    @property
    def api_url(self) -> str:
        return self.api.url + "/"

    @property
    def outputs(self) -> dict[str, str]:
        return dict(self._outputs)

    @property
    def service_name(self) -> str | None:
        return self._outputs.get("ServiceName")

    @property
    def seam(self) -> LambdaSeam:
        if self._seam is None:
            raise RuntimeError("runtime not started")
        return self._seam

    @property
    def workers(self) -> WorkerPools:
        return self.seam.pools

    @property
    def simulator(self) -> InstanceSimulator:
        if self._simulator is None:
            raise RuntimeError("runtime not started")
        return self._simulator

    @property
    def events(self) -> EventBridgeStandIn:
        if self._events is None:
            raise RuntimeError("runtime not started")
        return self._events

    @property
    def api(self) -> ApiGatewayServer:
        if self._api is None:
            raise RuntimeError("runtime not started")
        return self._api

    def _api_function_name(self) -> str | None:
        service = self.service_name
        return f"{service}-api" if service else None

    # -- deploy ------------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path | None:
        """The AWSManagementService manifest deployed (the stand-in's with ``existing_vpc``)."""
        return self._manifest_override or self.config.manifest_path

    def synthesize(self) -> Path:
        """Synthesize the project's CDK app (``infra.app.synthesize``), cached by source hash."""
        cache = self.home / "local" / "cdk.out"
        if self.config.synth_cache:
            return cached_synthesize(cache, self.manifest_path)
        cache.mkdir(parents=True, exist_ok=True)
        return synthesize(cache / "latest", self.manifest_path)

    def make_existing_vpc(self) -> tuple[str, str]:
        """The stand-in "existing" VPC and subnet (made once), and its management service's manifest."""
        from kubestep_local import existing_vpc

        vpc_id, subnet_id = existing_vpc.ensure_stand_in(self.boto3_client("ec2"), self.region)
        self._manifest_override = existing_vpc.write_manifest(self.home / "local", self.region, vpc_id, subnet_id)
        return vpc_id, subnet_id

    def deploy(self, template_path: Path | str | None = None) -> dict[str, str]:
        """Synthesize (unless a template is given) and deploy into the emulator; returns outputs.

        After a restore the stack exists already: it is updated only if the template changed."""
        self.start()
        started = time.monotonic()
        if self.config.existing_vpc and self._manifest_override is None:
            self.make_existing_vpc()
        if template_path is None:
            template_path = self.synthesize()
            self.timings["synth"] = time.monotonic() - started
        template_path = Path(template_path)
        self.region = stack_region(template_path, self.region)
        deployed = time.monotonic()
        self._outputs = deploy_template(
            template_path,
            self.endpoint_url,
            region=self.region,
            cache_dir=self.home / "local" / "asset-zips",
        )
        self.timings["deploy"] = time.monotonic() - deployed
        moto_compat.publish_ubuntu_images(ACCOUNT_ID, self.region)
        self._clients.clear()
        self.simulator.table_name = self._outputs.get("TableName")
        self.api.region = self.region
        self.api._lambda = None
        if self.config.prewarm:
            self.workers.prewarm(moto_compat.lambda_functions(ACCOUNT_ID, self.region), workers=1)
        return self.outputs

    # -- the clock -----------------------------------------------------------------------------------
    def tick(self, at: datetime | None = None, *, backups: bool = False) -> Tick:
        """Fire, as of `at` (default now), the upgrade planner's rule and the one-time schedules
        that are due, and with `backups` the etcd backups due too, as `kubestep local tick --at
        TIME` does (off by default: tests that play upgrade times leave backups to the timers)."""
        at = at or datetime.now(UTC)
        service = self.service_name
        planner = self.state_machine_arn("PlanUpgrades") if "PlanUpgradesStateMachineArn" in self._outputs else None
        rule_arn = f"arn:aws:events:{self.region}:{ACCOUNT_ID}:rule/{service}-plan-upgrades"
        has_api = bool(self._api_function_name())
        return tick(
            self.boto3_client,
            at,
            planner_arn=planner,
            rule_arn=rule_arn,
            account=ACCOUNT_ID,
            region=self.region,
            outcome_of=kubestep_outcomes(self.api_url) if has_api else None,
            fire_backups=(lambda moment: fire_due_backups(self.api_url, moment)) if has_api and backups else None,
        )

    # -- AWS clients --------------------------------------------------------------------------------
    def boto3_client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client for the emulator (cached per service and region)."""
        region = region or self.region
        key = (service, region)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = boto3.client(
                    service,
                    endpoint_url=self.endpoint_url,
                    region_name=region,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                    config=Config(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=900),
                )
                self._clients[key] = client
            return client

    # -- executions -----------------------------------------------------------------------------------
    def state_machine_arn(self, workflow: str) -> str:
        """ARN of ``<svc>-<workflow>`` (from the ``<Workflow>StateMachineArn`` output if present)."""
        if workflow.startswith("arn:"):
            return workflow
        output = self._outputs.get(f"{workflow}StateMachineArn")
        if output:
            return output
        service = self.service_name
        if not service:
            raise RuntimeError("not deployed: no ServiceName output")
        return f"arn:aws:states:{self.region}:{ACCOUNT_ID}:stateMachine:{service}-{workflow}"

    def start_execution(self, workflow: str, execution_input: Any = None, name: str | None = None) -> str:
        sfn = self.boto3_client("stepfunctions")
        kwargs: dict[str, Any] = {
            "stateMachineArn": self.state_machine_arn(workflow),
            "input": json.dumps({} if execution_input is None else execution_input),
        }
        if name:
            kwargs["name"] = name
        return sfn.start_execution(**kwargs)["executionArn"]

    def wait_execution(self, execution_arn: str, timeout: float = 600.0, poll: float = 0.05) -> dict[str, Any]:
        """Wait until the execution leaves RUNNING; returns ``DescribeExecution``.

        Polls the executing backend in process (no request to the emulator each time: a dozen
        waiting callers would otherwise keep it busy answering DescribeExecution)."""
        sfn = self.boto3_client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            status = moto_compat.execution_status(execution_arn)
            if status not in (None, "RUNNING"):
                return sfn.describe_execution(executionArn=execution_arn)
            if status is None:  # not visible in process (e.g. another process's emulator): ask
                description = sfn.describe_execution(executionArn=execution_arn)
                if description["status"] != "RUNNING":
                    return description
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout} s")
            time.sleep(poll)

    def run_execution(
        self,
        workflow: str,
        execution_input: Any = None,
        name: str | None = None,
        *,
        timeout: float = 600.0,
        check: bool = True,
    ) -> dict[str, Any]:
        """Start, wait, and (with ``check``) raise ExecutionFailed unless SUCCEEDED."""
        description = self.wait_execution(self.start_execution(workflow, execution_input, name), timeout)
        if check and description["status"] != "SUCCEEDED":
            raise ExecutionFailed(description)
        return description

    def provision_network(
        self, wait: bool = True, timeout: float = 900.0, name: str = PROVISION_NETWORK_EXECUTION
    ) -> dict[str, Any]:
        """Run ``<svc>-ProvisionNetwork`` under its fixed execution name ``provision-network``.

        Re-running is fine: an existing execution of that name is reused (waited for) instead of
        failing with ``ExecutionAlreadyExists``.
        """
        arn = self.state_machine_arn("ProvisionNetwork")
        sfn = self.boto3_client("stepfunctions")
        execution_arn = arn.replace(":stateMachine:", ":execution:") + f":{name}"
        try:
            execution_arn = sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"]
        except ClientError as exc:
            if not is_already_exists(exc, Kind.EXECUTION):
                raise
        if not wait:
            return sfn.describe_execution(executionArn=execution_arn)
        description = self.wait_execution(execution_arn, timeout)
        if description["status"] != "SUCCEEDED":
            raise ExecutionFailed(description)
        return description

    def stats(self) -> dict[str, ExecutionStats]:
        """Per execution: state transitions (history), Lambda invocations and AWS API calls."""
        invocations, calls = self.recorder.per_execution()
        out: dict[str, ExecutionStats] = {}
        for execution in moto_compat.executions():
            try:
                events = moto_compat.execution_history(execution.arn)
            except KeyError:
                events = []
            transitions = sum(1 for e in events if str(e.get("type", "")).endswith("StateEntered"))
            out[execution.arn] = ExecutionStats(
                execution_arn=execution.arn,
                name=execution.name,
                state_machine_arn=execution.state_machine_arn,
                status=execution.status,
                state_transitions=transitions,
                lambda_invocations=invocations.get(execution.arn, 0),
                aws_api_calls=calls.get(execution.arn, 0),
            )
        return out

    # -- latency model, fault injection, modelled time --------------------------------------------
    def set_latency(self, profile: str) -> None:
        """Switch the latency model's profile (instant, realistic, slow) while the runtime runs."""
        self.latency.set_profile(profile)

    def set_time_scale(self, scale: float) -> None:
        """Change the time scale while the runtime runs (between operations: one in flight would
        mix two scales). The interpreter's waits, the instance simulator and the latency model
        read it at once; each function gets it with its next workers (its pool is replaced)."""
        self.time_scale.scale = scale
        self.workers.extra_env["KUBESTEP_LOCAL_TIME_SCALE"] = repr(self.time_scale.scale)

    def modelled_time(self, execution_arn: str) -> dict[str, Any]:
        """How long the execution would have taken on AWS: per branch of its history, Lambda run
        time as measured, every wait (Retry backoff, Wait states: what polls AWS's intermediate
        states and the instances' boots) divided by the time scale (``modelled_time``)."""
        execution = next((e for e in moto_compat.executions() if e.arn == execution_arn), None)
        if execution is None or execution.start_date is None:
            raise KeyError(execution_arn)
        now = None if execution.stop_date else time.time()
        return modelled_time(moto_compat.execution_history(execution_arn), self.time_scale.scale, now)

    # LambdaSeam interceptor: Lambda-level faults, and when each invocation ran.
    def before_invoke(self, fn: FunctionInfo, event: Any, execution_arn: str | None) -> None:
        fault = self.faults.take(Invocation.from_event(fn.name, event), None, kinds=("service-exception",))
        if fault is not None:
            raise moto_compat.InvocationRefused(
                fault.code or "ServiceException", f"kubestep fault injection ({fault.kind} {fault.id})"
            )

    def after_invoke(
        self,
        fn: FunctionInfo,
        event: Any,
        execution_arn: str | None,
        started_at: float,
        duration: float,
        died: bool,
    ) -> None:
        if died and execution_arn and self._crashed_with_abort(fn, event, started_at):
            # The management service itself died here: the execution stops before its Catch
            # could see the failed task (what StopExecution does on AWS).
            moto_compat.stop_execution(execution_arn, "States.Runtime", "the Lambda worker died (fault injection)")

    def _crashed_with_abort(self, fn: FunctionInfo, event: Any, since: float) -> bool:
        invocation = Invocation.from_event(fn.name, event)
        aborting = {f.id for f in self.faults.faults() if f.kind == "crash" and f.abort}
        return any(
            f.id in aborting
            and f.at >= since
            and (f.operation_id, f.task) == (invocation.operation_id, invocation.task)
            for f in self.faults.firings()
        )

    def _reported(self, report: Any) -> None:
        if report.status == "ok":
            self.latency.mark_serving(report.instance_id)

    def inject(self, *faults: Fault) -> list[Fault]:
        """Turn faults on (``kubestep_local.faults.Fault``); ``self.faults.remove``/``clear`` off."""
        return self.faults.add(*faults)

    # -- keeping state (persistent runtimes) ----------------------------------------------------
    def cluster_names(self) -> list[str] | None:
        """Names of the clusters the management API lists (None if it cannot answer)."""
        if self._api is None or not self._api_function_name():
            return None
        from kubestep.api.client import ApiClient

        try:
            clusters = ApiClient(self.api_url, sign=False, timeout=30).list_clusters()
            return sorted(c["metadata"]["name"] for c in clusters)
        except Exception as exc:  # noqa: BLE001 - best effort: names only make messages better
            LOG.debug("listing clusters failed: %s", exc)
            return None

    def _bookkeeping(self) -> dict[str, Any]:
        """What the stand-ins did that travels with a snapshot (nothing announced or booted twice)."""
        return {
            "delivered": sorted(self._events.delivered()) if self._events else [],
            "booted": sorted(self._simulator.booted()) if self._simulator else [],
        }

    def snapshot(self, path: Path) -> Path:
        """Write the emulator's state to `path` (atomically), for ``RuntimeConfig.start_from``."""
        data = moto_compat.snapshot_state(self._bookkeeping())
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_bytes(data)
        os.replace(partial, path)
        return path

    def save_state(self, clusters: list[str] | None = None) -> dict[str, Any]:
        """Save the emulator's state under the home now; returns the state summary."""
        with self._snapshot_lock:
            requests = moto_compat.GATE.requests
            began = time.time()
            extra = self._bookkeeping()
            try:
                snapshot = moto_compat.snapshot_state(extra)
            except moto_compat.SnapshotError as exc:
                LOG.warning("saving the emulator's state failed: %s", exc)
                return self.store.record_failure(str(exc), clusters)
            self._requests_at_snapshot = requests
            summary = self.store.save(snapshot, clusters)
            self.store.trim_journal(before=began)  # what started before the snapshot is in it
            self.timings["last_snapshot_bytes"] = float(len(snapshot))
            return summary

    def discard_saved_state(self) -> dict[str, Any] | None:
        """Delete the state a previous runtime of this home saved (before ``start``); returns its
        summary. Raises home.RuntimeBusy if a runtime holds the home: its state is not ours."""
        if self._started:
            raise RuntimeError("discard_saved_state: the runtime is running")
        self._home_lock.acquire(self._lock_info("starting"))
        try:
            return self.store.discard() or {}
        finally:
            self._home_lock.release()

    def _journal_start(self, execution_arn: str, execution_input: Any) -> None:
        """An execution started (before StartExecution answers): one journal line, and a snapshot soon."""
        machine, _, name = execution_arn.split(":execution:", 1)[-1].partition(":")
        entry = {"at": time.time(), "execution": execution_arn, "name": name, "stateMachine": machine}
        cluster = _cluster_named_in(execution_input)
        if cluster:
            entry["cluster"] = cluster
        try:
            self.store.journal(entry)
        except OSError as exc:  # the start must not fail for it; the next snapshot covers it
            LOG.warning("writing the operation journal failed: %s", exc)
        self._operation_changed.set()

    def _snapshot_loop(self) -> None:
        """Save every `snapshot_interval` seconds in which requests reached the emulator, and soon
        after an execution starts (its first steps recorded) or ends: a crash then loses at most
        what an operation did since its last start or end."""
        last = time.monotonic()
        running: set[str] = set()
        while not self._stop_snapshots.wait(0.5):
            try:
                now_running = {e.arn for e in moto_compat.executions() if e.status == "RUNNING"}
            except RuntimeError:  # a backend changed while it was read: look again next time
                continue
            if running - now_running:
                self._operation_changed.set()
            running = now_running
            due = time.monotonic() - last >= self.config.snapshot_interval
            if not self._operation_changed.is_set() and not due:
                continue
            if moto_compat.GATE.requests == self._requests_at_snapshot:
                last = time.monotonic()
                continue  # nothing reached the emulator since the last snapshot
            if self._operation_changed.is_set():
                self._stop_snapshots.wait(OPERATION_SNAPSHOT_DELAY)  # let its first steps land
            self._operation_changed.clear()
            last = time.monotonic()
            try:
                self.save_state(self.cluster_names())
            except Exception:  # noqa: BLE001 - the next interval tries again
                LOG.exception("periodic snapshot failed")

    def _restore(self) -> None:
        """Load the saved state into the (fresh) emulator; say what happened in restore_report."""
        data = self.store.load()
        summary = self.store.summary() or {}
        if data is None:
            lost = self._lost_operations()
            if lost:
                self.restore_report = {"restored": False, "nothingSaved": True, "lostOperations": lost}
            return
        started = time.monotonic()
        try:
            restored = moto_compat.restore_state(data)
        except moto_compat.SnapshotError as exc:
            moto_compat.reset_backends()  # nothing half-loaded
            aside = self.store.set_aside()
            self.restore_report = {
                "restored": False,
                "error": str(exc),
                "lostClusters": summary.get("clusters"),
                "setAside": str(aside) if aside else None,
                "lostOperations": self._lost_operations(),
            }
            LOG.warning("the saved emulator state could not be restored: %s", exc)
            return
        self._restored_extra = restored.extra
        last_error = summary.get("lastError") or None
        self.restore_report = {
            "restored": True,
            "savedAt": restored.saved_at,
            "clusters": summary.get("clusters"),
            "abortedExecutions": [arn.rsplit(":", 1)[-1] for arn in restored.aborted_executions],
            # The last save failed: whatever changed after savedAt is not in this state.
            "lastError": last_error,
            # Started after the snapshot, before a crash: what they did is not in this state.
            "lostOperations": self._lost_operations(),
        }
        self._requests_at_snapshot = moto_compat.GATE.requests
        self.timings["restore"] = time.monotonic() - started

    def _lost_operations(self) -> list[dict[str, Any]]:
        """Journal entries whose execution the restored emulator does not hold; the journal is
        then emptied (this start reported them)."""
        held = {e.arn for e in moto_compat.executions()}
        lost = [
            {k: entry[k] for k in ("name", "stateMachine", "cluster") if k in entry}
            | {"startedAt": datetime.fromtimestamp(float(entry.get("at", 0)), UTC).isoformat(timespec="seconds")}
            for entry in self.store.journal_entries()
            if entry.get("execution") not in held
        ]
        self.store.trim_journal(before=float("inf"))
        return lost

    # -- the CLI's handle ---------------------------------------------------------------------------
    def _lock_info(self, phase: str) -> dict[str, Any]:
        info: dict[str, Any] = {"phase": phase, "port": self.config.port, "api_port": self.config.api_port}
        if self._api is not None and self.server.port:
            info.update(endpoint_url=self.endpoint_url, api_url=self.api_url)
        return info

    @property
    def state_file(self) -> Path:
        return self.home / STATE_FILE

    def write_state_file(self) -> Path:
        """``$KUBESTEP_HOME/local.json``: how the CLI finds this runtime."""
        self.home.mkdir(parents=True, exist_ok=True)
        state = {
            "endpoint_url": self.endpoint_url,
            "api_url": self.api_url,
            "region": self.region,
            "outputs": self.outputs,
            "pid": os.getpid(),
            "home": str(self.home),
            "time_scale": self.time_scale.scale,
            "persistent": self.config.persistent,
        }
        files.replace_file(self.state_file, json.dumps(state, indent=2), what="local runtime state file")
        self._home_lock.update(self._lock_info("ready"))
        return self.state_file

    def remove_state_file(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            state = json.loads(self.state_file.read_text())
            if state.get("pid") == os.getpid():
                self.state_file.unlink()


def serve_forever(
    config: RuntimeConfig,
    *,
    ready: Any = print,
    template_path: Path | str | None = None,
    provision_network: bool = True,
    fresh: bool = False,
) -> None:
    """Start, deploy, provision the network, write the state file; run until SIGTERM/SIGINT.

    ``ready`` gets one JSON line when the runtime serves: endpoints, outputs, timings and
    ``restore`` (what became of the saved state). ``fresh`` discards the saved state first."""
    stop = threading.Event()

    def _signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    runtime = LocalRuntime(config)
    try:
        discarded = runtime.discard_saved_state() if fresh else None
        runtime.start()
        runtime.deploy(template_path)
        if provision_network and not stop.is_set():
            runtime.provision_network()
        runtime.write_state_file()
        if ready:
            report = runtime.restore_report
            if discarded is not None:
                report = {"restored": False, "discarded": True, "lostClusters": discarded.get("clusters")}
            ready(
                json.dumps(
                    {
                        "ready": True,
                        **json.loads(runtime.state_file.read_text()),
                        "restore": report,
                        "timings": {k: round(v, 3) for k, v in runtime.timings.items()},
                    }
                )
            )
        while not stop.wait(1.0):
            pass
    finally:
        runtime.remove_state_file()
        runtime.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _cluster_named_in(execution_input: Any) -> str | None:
    """The cluster an execution works on, from its input as kubestep's API writes it
    (`clusterName`, or a create's `cluster.metadata.name`); None for other inputs."""
    try:
        data = json.loads(execution_input) if isinstance(execution_input, str) else execution_input
    except ValueError:
        return None
    for candidate in (data, (data or {}).get("request") if isinstance(data, dict) else None):
        if not isinstance(candidate, dict):
            continue
        if isinstance(candidate.get("clusterName"), str):
            return candidate["clusterName"]
        cluster = candidate.get("cluster")
        metadata = cluster.get("metadata") if isinstance(cluster, dict) else None
        if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
            return metadata["name"]
    return None
