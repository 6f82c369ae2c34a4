"""The embedded local runtime: emulator + Lambda seam + time scale + stand-ins, in one object.

    with LocalRuntime(port=0, api_port=0, time_scale=0.02) as rt:
        outputs = rt.deploy()          # synthesize infra/, deploy it into moto
        rt.provision_network()         # the management network, once
        sfn = rt.boto3_client("stepfunctions")
        ...

``serve_forever()`` is what ``kubestep local up`` runs (``python -m kubestep_local``).
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from kubestep_local import moto_fixes
from kubestep_local.apigw import ApiGatewayServer
from kubestep_local.deploy import deploy_template, stack_region
from kubestep_local.events import EventBridgeStandIn
from kubestep_local.instances import InstanceSimulator
from kubestep_local.lambda_seam import DEFAULT_POOL_SIZE, LambdaSeam
from kubestep_local.server import ACCOUNT_ID, EmulatorServer, iter_backends
from kubestep_local.synth import cached_synthesize, synthesize
from kubestep_local.time_scale import TimeScale

LOG = logging.getLogger(__name__)

STATE_FILE = "local.json"
PROVISION_NETWORK_EXECUTION = "provision-network"


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


_ACTIVE: LocalRuntime | None = None
_ACTIVE_LOCK = threading.Lock()


def active_runtime() -> LocalRuntime | None:
    """The runtime running in this process, if any."""
    return _ACTIVE


def default_home() -> Path:
    return Path(os.environ.get("KUBESTEP_HOME", "~/.kubestep")).expanduser()


class LocalRuntime:
    """moto on loopback with everything kubestep needs to run its workflows without AWS."""

    def __init__(
        self,
        port: int = 4566,
        api_port: int = 8080,
        time_scale: float = 1.0,
        home: Path | str | None = None,
        manifest_path: Path | str | None = None,
        boot_delay_seconds: float = 20.0,
        *,
        region: str | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        scheduled_rules: bool = True,
        synth_cache: bool = True,
        prewarm: bool = True,
        quiet: bool = True,
        reset: bool = True,
    ) -> None:
        self.home = Path(home).expanduser() if home is not None else default_home()
        self.manifest_path = Path(manifest_path) if manifest_path else None
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.pool_size = pool_size
        self.synth_cache = synth_cache
        self.prewarm = prewarm
        self.quiet = quiet
        self.reset = reset
        self.time_scale = TimeScale(time_scale)
        self.server = EmulatorServer(port=port, quiet=quiet)
        self._api_port = api_port
        self._boot_delay = boot_delay_seconds
        self._scheduled_rules = scheduled_rules
        self._seam: LambdaSeam | None = None
        self._simulator: InstanceSimulator | None = None
        self._events: EventBridgeStandIn | None = None
        self._api: ApiGatewayServer | None = None
        self._outputs: dict[str, str] = {}
        self._stack_name: str | None = None
        self._started = False
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.timings: dict[str, float] = {}

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> LocalRuntime:
        global _ACTIVE
        if self._started:
            return self
        with _ACTIVE_LOCK:
            # moto's backends and the patches are process-wide: one runtime per process.
            if _ACTIVE is not None and _ACTIVE is not self:
                raise RuntimeError("another LocalRuntime is running in this process; stop it first")
            _ACTIVE = self
        started = time.monotonic()
        if self.reset:
            # A fresh emulator: a previous runtime in this process left its resources in moto.
            from moto.moto_api._internal.models import moto_api_backend

            moto_api_backend.reset()
        # This run's function logs only (they are appended per invocation).
        for stale in (self.home / "local" / "logs").glob("*.log"):
            with contextlib.suppress(OSError):
                stale.unlink()
        self.server.start()
        try:
            self.time_scale.install()
            moto_fixes.install()
            self._seam = LambdaSeam(
                self.server.endpoint_url,
                workdir=self._lambda_workdir(),
                pool_size=self.pool_size,
                log_dir=self.home / "local" / "logs",
                # Lets domain code scale its own deadlines like the interpreter's waits.
                extra_env={"KUBESTEP_LOCAL_TIME_SCALE": repr(self.time_scale.scale)},
            )
            self._seam.install()
            self._simulator = InstanceSimulator(
                self.server.endpoint_url, time_scale=self.time_scale, boot_delay_seconds=self._boot_delay
            )
            self._simulator.start()
            self._events = EventBridgeStandIn(
                self.server.endpoint_url, time_scale=self.time_scale, scheduled_rules=self._scheduled_rules
            )
            self._events.start()
            self._api = ApiGatewayServer(
                self.server.endpoint_url,
                port=self._api_port,
                region=self.region,
                function_name=self._api_function_name,
            )
            self._api.start()
        except BaseException:
            self._started = True
            self.stop()
            raise
        self._started = True
        self.timings["start"] = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Stop everything this runtime started (threads, workers, the server)."""
        global _ACTIVE
        if not self._started:
            return
        for part in (self._api, self._events, self._simulator):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()
        self._abort_running_executions()
        if self._seam is not None:
            self._seam.close()
            shutil.rmtree(self._seam.workdir, ignore_errors=True)
        self.time_scale.uninstall()
        moto_fixes.uninstall()
        self.server.stop()
        self._api = self._events = self._simulator = self._seam = None
        self._clients.clear()
        self._started = False
        with _ACTIVE_LOCK:
            if _ACTIVE is self:
                _ACTIVE = None

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

    def _abort_running_executions(self) -> None:
        """Stop executions still running, so their interpreter threads end with the runtime."""
        from datetime import UTC, datetime

        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        for _account, _region, backend in iter_backends(stepfunctions_parser_backends):
            for machine in list(backend.state_machines):
                for execution in list(machine.executions):
                    if getattr(execution.exec_status, "value", None) != "RUNNING":
                        continue
                    with contextlib.suppress(Exception):
                        execution.stop(datetime.now(UTC), error="States.Runtime", cause="local runtime stopped")

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
        if self._api is None:
            raise RuntimeError("runtime not started")
        return self._api.url + "/"

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
    def synthesize(self) -> Path:
        """Synthesize the project's CDK app (``infra.app.synthesize``), cached by source hash."""
        cache = self.home / "local" / "cdk.out"
        if self.synth_cache:
            return cached_synthesize(cache, self.manifest_path)
        cache.mkdir(parents=True, exist_ok=True)
        return synthesize(cache / "latest", self.manifest_path)

    def deploy(self, template_path: Path | str | None = None) -> dict[str, str]:
        """Synthesize (unless a template is given) and deploy into the emulator; returns outputs."""
        self.start()
        started = time.monotonic()
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
        self._clients.clear()
        self.simulator.table_name = self._outputs.get("TableName")
        self.api.region = self.region
        self.api._lambda = None
        if self.prewarm:
            self._prewarm()
        return self.outputs

    def _prewarm(self) -> None:
        """Start one warm worker per deployed function in the background (cold starts off the
        critical path of the first workflow)."""
        from moto.awslambda.models import lambda_backends

        functions = []
        for account, region, backend in iter_backends(lambda_backends):
            if account != ACCOUNT_ID or region != self.region:
                continue
            with contextlib.suppress(Exception):
                functions.extend(backend.list_functions())
        self.seam.prewarm(functions, workers=1)

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
        """Wait until the execution leaves RUNNING; returns ``DescribeExecution``."""
        sfn = self.boto3_client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
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
            if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
        if not wait:
            return sfn.describe_execution(executionArn=execution_arn)
        description = self.wait_execution(execution_arn, timeout)
        if description["status"] != "SUCCEEDED":
            raise ExecutionFailed(description)
        return description

    def stats(self) -> dict[str, ExecutionStats]:
        """Per execution: state transitions (history), Lambda invocations and AWS API calls."""
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        invocations: dict[str, int] = {}
        calls: dict[str, int] = {}
        for invocation in self.seam.invocations():
            if invocation.execution_arn:
                invocations[invocation.execution_arn] = invocations.get(invocation.execution_arn, 0) + 1
        for record in self.seam.call_records():
            if record.execution_arn:
                calls[record.execution_arn] = calls.get(record.execution_arn, 0) + 1
        out: dict[str, ExecutionStats] = {}
        for _account, _region, backend in iter_backends(stepfunctions_parser_backends):
            for machine in list(backend.state_machines):
                for execution in list(machine.executions):
                    arn = execution.exec_arn
                    try:
                        events = backend.get_execution_history(arn)["events"]
                    except Exception:  # noqa: BLE001 - an execution that never started
                        events = []
                    transitions = sum(1 for e in events if str(e.get("type", "")).endswith("StateEntered"))
                    out[arn] = ExecutionStats(
                        execution_arn=arn,
                        name=execution.name,
                        state_machine_arn=execution.state_machine_arn,
                        status=getattr(execution.exec_status, "value", str(execution.exec_status)),
                        state_transitions=transitions,
                        lambda_invocations=invocations.get(arn, 0),
                        aws_api_calls=calls.get(arn, 0),
                    )
        return out

    # -- the CLI's handle ---------------------------------------------------------------------------
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
            "time_scale": self.time_scale.scale,
        }
        tmp = self.state_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)
        return self.state_file

    def remove_state_file(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            state = json.loads(self.state_file.read_text())
            if state.get("pid") == os.getpid():
                self.state_file.unlink()


def serve_forever(
    port: int = 4566,
    api_port: int = 8080,
    time_scale: float = 1.0,
    boot_delay_seconds: float = 20.0,
    home: Path | str | None = None,
    manifest_path: Path | str | None = None,
    provision_network: bool = True,
    ready: Any = print,
    template_path: Path | str | None = None,
) -> None:
    """Start, deploy, provision the network, write the state file; run until SIGTERM/SIGINT."""
    stop = threading.Event()

    def _signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    runtime = LocalRuntime(
        port=port,
        api_port=api_port,
        time_scale=time_scale,
        home=home,
        manifest_path=manifest_path,
        boot_delay_seconds=boot_delay_seconds,
    )
    try:
        runtime.start()
        runtime.deploy(template_path)
        if provision_network and not stop.is_set():
            runtime.provision_network()
        runtime.write_state_file()
        if ready:
            ready(
                json.dumps(
                    {
                        "ready": True,
                        **json.loads(runtime.state_file.read_text()),
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


def stats_as_dicts(stats: dict[str, ExecutionStats]) -> dict[str, dict[str, Any]]:
    return {arn: asdict(s) for arn, s in stats.items()}
