"""Everything the local runtime knows about moto's internals, in one module.

The runtime patches moto and reads its backends directly (in-process). Those are moto's private
parts, verified against one moto release: importing this module asserts that release, and every
other module of ``kubestep_local`` goes through the functions below instead of importing moto.
``tests/local/test_seam_guard.py`` checks the call sites patched here against moto's source.

What is here:

- the version pin (``check_moto_version``);
- the emulator's HTTP server (``start_server``), with a state gate around requests;
- process-wide patches, each reversible through a ``PatchSet``: the Step Functions backend
  binding, fixes for interpreter bugs, the ASL wait/retry time scale, the Lambda invocation
  seam, the execution-end hook;
- read access to backends as plain data (``FunctionInfo``, ``ExecutionInfo``, ...);
- state snapshots: pickling every backend in use, and restoring them into a fresh emulator.

moto itself is imported lazily (importing it costs about a second), so importing this module is
cheap and works without moto to report a clear error.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import importlib
import io
import json
import logging
import os
import pickle
import sys
import threading
import urllib.request
import uuid
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

from kubestep.checkout import local_install_hint

LOG = logging.getLogger(__name__)

PINNED_MOTO_VERSION = "5.2.5"
ACCOUNT_ID = "123456789012"  # moto's default account
# Attribution of Lambda invocations to the Step Functions execution that made them.
EXECUTION_HEADER = "x-kubestep-execution-arn"
# Loggers of moto's that are noisy at their default levels: werkzeug logs one INFO line per
# request; the interpreter logs expected task failures (ResourcePending retries) at ERROR with
# the whole state's repr, which the execution history holds anyway.
NOISY_LOGGERS = {
    "werkzeug": logging.WARNING,
    "moto.stepfunctions.parser.asl.component.eval_component": logging.CRITICAL,
}
_MISSING = object()


class MotoVersionError(RuntimeError):
    """moto is missing, or not the release this module's patches are verified against."""


def check_moto_version() -> str:
    """Return the installed moto version; raise MotoVersionError unless it is the pinned one."""
    try:
        installed = version("moto")
    except PackageNotFoundError:
        raise MotoVersionError(
            f"moto is not installed: the local runtime needs the `local` extra ({local_install_hint()})"
        ) from None
    if installed != PINNED_MOTO_VERSION:
        raise MotoVersionError(
            f"the local runtime patches moto's internals and is verified against moto {PINNED_MOTO_VERSION} "
            f"only; moto {installed} is installed (pip install 'moto[server]=={PINNED_MOTO_VERSION}')"
        )
    return installed


check_moto_version()


# ------------------------------------------------------------------------------------------------
# Reversible patches
# ------------------------------------------------------------------------------------------------
class PatchSet:
    """Attribute replacements and other process-wide changes, undone in reverse order."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def __bool__(self) -> bool:
        return bool(self._undo)

    def set(self, owner: Any, name: str, value: Any) -> Any:
        """``setattr(owner, name, value)``; returns the attribute as it was (raw, from ``vars``,
        so a staticmethod stays a staticmethod when it is put back)."""
        original = vars(owner).get(name, _MISSING)

        def undo() -> None:
            if original is _MISSING:
                with contextlib.suppress(AttributeError):
                    delattr(owner, name)
            else:
                setattr(owner, name, original)

        setattr(owner, name, value)
        self._undo.append(undo)
        return getattr(owner, name) if original is _MISSING else original

    def set_env(self, name: str, value: str) -> None:
        original = os.environ.get(name)

        def undo() -> None:
            if original is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = original

        os.environ[name] = value
        self._undo.append(undo)

    def on_undo(self, action: Callable[[], None]) -> None:
        self._undo.append(action)

    def undo(self) -> None:
        while self._undo:
            action = self._undo.pop()
            try:
                action()
            except Exception:  # noqa: BLE001 - undo the rest regardless
                LOG.exception("undoing a moto patch failed")


# ------------------------------------------------------------------------------------------------
# The state gate: requests that may change moto's state, against snapshots
# ------------------------------------------------------------------------------------------------
class StateGate:
    """A readers-writer lock, writer first: requests hold it shared, a snapshot exclusively.

    Lambda invocations are not gated (``gated_path``): an invocation request lasts as long as the
    handler, whose own requests to the emulator must pass while a snapshot waits.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._writer = False
        self._waiting_writers = 0
        self.requests = 0  # gated requests finished so far (a snapshot is due when it moved)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self.requests += 1
                if not self._active:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self, timeout: float | None = None) -> Iterator[bool]:
        """Yields True when held; False when requests in flight did not end within ``timeout``."""
        with self._cond:
            self._waiting_writers += 1
            try:
                acquired = self._cond.wait_for(lambda: not self._writer and not self._active, timeout)
            finally:
                self._waiting_writers -= 1
            if acquired:
                self._writer = True
            else:
                self._cond.notify_all()
        try:
            yield acquired
        finally:
            if acquired:
                with self._cond:
                    self._writer = False
                    self._cond.notify_all()


GATE = StateGate()
# moto's backends are not thread-safe (a describe iterating a dict another request's thread is
# changing fails with "dictionary changed size during iteration", a 500): requests that change or
# read backends run one at a time (the GIL runs one at a time anyway). Lambda invocations do not
# take it: their handlers' own requests must pass while they run.
REQUEST_LOCK = threading.RLock()


def gated_path(method: str, path: str) -> bool:
    """Whether a request to the emulator takes the state gate (all but Lambda Invoke)."""
    return not (method == "POST" and path.startswith("/2015-03-31/functions/") and path.endswith("/invocations"))


# ------------------------------------------------------------------------------------------------
# The HTTP server
# ------------------------------------------------------------------------------------------------
class ServerHandle:
    """moto's WSGI application on a werkzeug server, serving in a daemon thread."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()


def start_server(host: str, port: int, gate: StateGate = GATE) -> ServerHandle:
    """Bind ``host:port`` in the calling thread (so a port in use raises OSError at once) and serve
    moto there. moto's ``ThreadedMotoServer`` binds inside its thread and waits forever when the
    port is taken (moto/moto_server/threaded_moto_server.py:24-41), so it is not used."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if not gated_path(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")):
            return moto_app(environ, start_response)
        with gate.shared(), REQUEST_LOCK:
            # Materialize the body inside the gate: the backend call happens in here.
            return list(moto_app(environ, start_response))

    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="kubestep-local-moto", daemon=True)
    thread.start()
    return ServerHandle(server, thread)


def enable_asl_execution(endpoint_url: str) -> None:
    """Turn on moto's ASL interpreter, through its documented config endpoint
    (moto/moto_api/_internal/responses.py:391-406)."""
    request = urllib.request.Request(
        f"{endpoint_url}/moto-api/config",
        data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        response.read()


@contextlib.contextmanager
def deterministic_ids(seed: int) -> Iterator[None]:
    """Ids moto generates inside the block depend on ``seed`` only (moto's own seedable
    random, moto/moto_api/_internal/__init__.py); afterwards they are random again."""
    from moto.moto_api._internal import mock_random

    mock_random.seed(seed)
    try:
        yield
    finally:
        mock_random.seed(int.from_bytes(os.urandom(8), "big"))


def reset_backends() -> None:
    """Forget every resource of every service (moto's own reset)."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


# ------------------------------------------------------------------------------------------------
# Process-wide patches
# ------------------------------------------------------------------------------------------------
def bind_step_functions(patches: PatchSet, port: int) -> None:
    """What real ASL execution needs besides the config switch."""
    import moto.stepfunctions.models as sfn_models
    from moto.core.config import default_user_config
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend, stepfunctions_parser_backends

    # The config switch (enable_asl_execution) lands in this dict; put it back as it was.
    saved_config = copy.deepcopy(default_user_config.get("stepfunctions", _MISSING))

    def restore_config() -> None:
        if saved_config is _MISSING:
            default_user_config.pop("stepfunctions", None)
        else:
            default_user_config["stepfunctions"] = saved_config

    patches.on_undo(restore_config)
    # The interpreter calls Lambda (and other services) at http://localhost:$MOTO_PORT
    # (moto/stepfunctions/parser/asl/utils/boto_client.py:20).
    patches.set_env("MOTO_PORT", str(port))
    # CloudFormation-created state machines must land in the executing (parser) backend. With
    # ``execute_state_machine`` the Step Functions API reads ``stepfunctions_parser_backends``
    # (moto/stepfunctions/responses.py:12-19), but AWS::StepFunctions::StateMachine's
    # CloudFormation hooks create/delete/update through the module global
    # ``moto.stepfunctions.models.stepfunctions_backends`` (moto/stepfunctions/models.py:291, 302,
    # 334), its only readers besides responses.py. Rebinding the global is enough; it must
    # happen before the deploy. responses.py binds the global at import (moto/stepfunctions/
    # responses.py:8), and the server imports it on the first Step Functions request: imported
    # first, it keeps the plain backends, which `mock_aws` uses after the runtime stops.
    import moto.stepfunctions.responses  # noqa: F401

    patches.set(sfn_models, "stepfunctions_backends", stepfunctions_parser_backends)
    # Unnamed executions get a UUID name, as on AWS: moto's executing backend formats the ARN
    # with ``name`` as given (moto/stepfunctions/parser/models.py:161-211), so a StartExecution
    # without a name yields ``...:<machine>:None`` and the second unnamed start collides.
    original_start = StepFunctionsParserBackend.start_execution

    def start_execution(self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any) -> Any:
        return original_start(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    patches.set(StepFunctionsParserBackend, "start_execution", start_execution)


def fix_interpreter_bugs(patches: PatchSet) -> None:
    """moto 5.2.5 bugs that real Step Functions and EC2 do not have; each has a test in tests/local.

    StopExecution while a Map iterates ends the execution FAILED instead of ABORTED: the
    iteration's abort carries the stop's error as a plain string (or None), and
    ``_construct_error_output_value`` calls ``.get`` on it (AttributeError); the Map's failure
    then overwrites the program's stopped state (``Environment.set_error`` does not check it,
    unlike ``set_ended``).

    DeleteNatGateway: AWS disassociates the gateway's Elastic IP (so it can be released) and
    deletes its network interface; moto keeps both forever and ReleaseAddress stays refused.

    Launch template versions made by CreateLaunchTemplateVersion cannot launch instances.

    PutEvents stops at the first scheduled rule of the bus (see below).
    """
    from moto.ec2.models.nat_gateways import NatGatewayBackend
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    original_set_error = Environment.set_error

    def set_error(self: Any, error: Any) -> None:
        if isinstance(self._program_state, ProgramStopped):
            return  # a stopped execution stays ABORTED, as on AWS
        original_set_error(self, error)

    patches.set(Environment, "set_error", set_error)
    original_construct = ExecutionState._construct_error_output_value

    def construct_error_output_value(failure_event: Any) -> Any:
        details = list(failure_event.event_details.values())
        if len(details) == 1 and not isinstance(details[0], dict):
            return {"Error": details[0] or "", "Cause": ""}
        return original_construct(failure_event)

    patches.set(ExecutionState, "_construct_error_output_value", staticmethod(construct_error_output_value))
    original_delete = NatGatewayBackend.delete_nat_gateway

    def delete_nat_gateway(self: Any, nat_gateway_id: str) -> Any:
        gateway = original_delete(self, nat_gateway_id)
        for address in getattr(gateway, "address_set", []):
            allocation = address.get("allocationId")
            for eip in self.address_by_allocation([allocation]) if allocation else []:
                if eip.eni is not None and eip.eni.id == address.get("networkInterfaceId"):
                    eip.eni = None
                    eip.instance = None
                    eip.association_id = None
        # AWS deletes the gateway's network interface too; moto keeps it, in the VPC's default
        # security group, so the VPC's deletion (which deletes that group) would be refused once
        # security groups check their interfaces (the latency model's patch).
        eni = getattr(gateway, "_eni", None)
        if eni is not None and eni.id in getattr(self, "enis", {}):
            self.delete_network_interface(eni.id)
        return gateway

    patches.set(NatGatewayBackend, "delete_nat_gateway", delete_nat_gateway)

    # CreateLaunchTemplateVersion stores UserData as the plain base64 text, CreateLaunchTemplate
    # as a Base64EncodedString; an Auto Scaling group launching from a later version then fails
    # moto's own type assertion (LaunchTemplateVersion.user_data). AWS stores both alike.
    from moto.core.types import Base64EncodedString
    from moto.ec2.models.launch_templates import LaunchTemplateVersion

    def user_data(self: Any) -> Any:
        value = self.data.get("UserData")
        return Base64EncodedString(value) if isinstance(value, str) else value

    patches.set(LaunchTemplateVersion, "user_data", property(user_data))

    # PutEvents offers every event to every rule of the bus; moto lets a scheduled rule (no event
    # pattern) match them all and then raises on its Step Functions or Lambda target, so no rule
    # after it gets the event. On AWS a scheduled rule never matches an event. Targets moto cannot
    # deliver (Lambda, Step Functions) are the EventBridge stand-in's (kubestep_local.events).
    from moto.events.models import Rule

    original_send = Rule.send_to_targets

    def send_to_targets(self: Any, event: Any, transform_input: bool = True) -> None:
        if self.scheduled_expression and not self.event_pattern.get_pattern():
            return
        deliverable = [t for t in self.targets if t["Arn"].split(":")[2] not in ("lambda", "states")]
        if len(deliverable) != len(self.targets):
            # A copy, so the rule the stand-in reads keeps all its targets.
            view = copy.copy(self)
            view.targets = deliverable
            original_send(view, event, transform_input)
            return
        original_send(self, event, transform_input)

    patches.set(Rule, "send_to_targets", send_to_targets)


def match_aws_semantics(patches: PatchSet) -> None:
    """Answers moto 5.2.5 gives differently from AWS where kubestep's idempotency depends on
    them; each has a test in tests/local/test_aws_semantics.py. A retried call (botocore resends
    a request whose response was lost) must meet AWS's answer, not a second resource:

    - CreateVolume ignores ``ClientToken``: AWS returns the volume the token made.
    - CreateLaunchTemplateVersion ignores ``ClientToken``: AWS returns the version the token made.
    - CreateLoadBalancer makes a second load balancer of the same name: AWS returns the one it
      has when the settings are the same (else ``DuplicateLoadBalancerName``).
    - CreateTargetGroup answers ``DuplicateTargetGroupName`` for the same settings: AWS returns
      the existing group.
    - CreateListener never sees a listener on the same port (it looks the port up among ARNs):
      AWS returns the same listener for the same settings, ``DuplicateListener`` otherwise.
    - RemoveRoleFromInstanceProfile of a role the profile does not hold crashes (500): AWS
      answers ``NoSuchEntity``.
    - CreateSecret of a name whose secret is scheduled for deletion answers
      ``ResourceExistsException``: AWS answers ``InvalidRequestException`` (the name is held
      until the deletion happens).
    """
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore
    from moto.elbv2.exceptions import DuplicateListenerError, DuplicateLoadBalancerName
    from moto.elbv2.models import ELBv2Backend
    from moto.iam.exceptions import NoSuchEntity
    from moto.iam.models import IAMBackend
    from moto.secretsmanager.exceptions import InvalidRequestException
    from moto.secretsmanager.models import SecretsManagerBackend

    original_create_volume = ElasticBlockStore.create_volume

    def create_volume(self: Any) -> Any:
        from moto.core.responses import ActionResult

        token = self._get_param("ClientToken")
        tokens = self.ec2_backend.__dict__.setdefault("_kubestep_volume_tokens", {})
        known = self.ec2_backend.volumes.get(tokens.get(token)) if token else None
        if known is not None:
            return ActionResult(known)
        result = original_create_volume(self)
        if token:
            created = max(self.ec2_backend.volumes.values(), key=lambda v: v.create_time, default=None)
            if created is not None:
                tokens[token] = created.id
        return result

    patches.set(ElasticBlockStore, "create_volume", create_volume)

    from moto.ec2.responses.launch_templates import LaunchTemplates

    original_create_version = LaunchTemplates.create_launch_template_version

    def create_launch_template_version(self: Any) -> Any:
        token = self._get_param("ClientToken")
        answers = self.ec2_backend.__dict__.setdefault("_kubestep_template_version_tokens", {})
        if token and token in answers:
            return answers[token]
        result = original_create_version(self)
        if token:
            answers[token] = result
        return result

    patches.set(LaunchTemplates, "create_launch_template_version", create_launch_template_version)

    original_create_lb = ELBv2Backend.create_load_balancer

    def create_load_balancer(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        existing = next((lb for lb in self.load_balancers.values() if lb.name == name), None)
        if existing is None:
            return original_create_lb(self, name, *args, **kwargs)
        same = (kwargs.get("scheme") or "internet-facing") == existing.scheme and (
            kwargs.get("loadbalancer_type") or "application"
        ) == existing.type
        if not same:
            raise DuplicateLoadBalancerName()
        return existing

    patches.set(ELBv2Backend, "create_load_balancer", create_load_balancer)

    original_create_tg = ELBv2Backend.create_target_group

    def create_target_group(self: Any, name: str, **kwargs: Any) -> Any:
        existing = next((tg for tg in self.target_groups.values() if tg.name == name), None)
        if existing is not None and (kwargs.get("protocol"), str(kwargs.get("port")), kwargs.get("vpc_id")) == (
            existing.protocol,
            str(existing.port),
            existing.vpc_id,
        ):
            return existing
        return original_create_tg(self, name, **kwargs)

    patches.set(ELBv2Backend, "create_target_group", create_target_group)

    original_create_listener = ELBv2Backend.create_listener

    def create_listener(self: Any, load_balancer_arn: str, protocol: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        balancer = self.load_balancers.get(load_balancer_arn)
        for listener in list(balancer.listeners.values()) if balancer is not None else []:
            if str(listener.port) != str(port):
                continue
            wanted = [(a.get("Type"), a.get("TargetGroupArn")) for a in kwargs.get("actions") or []]
            have = [(a.type, a.data.get("TargetGroupArn")) for a in listener.default_actions]
            if listener.protocol == protocol and wanted == have:
                return listener
            raise DuplicateListenerError()
        return original_create_listener(self, load_balancer_arn, protocol, port, *args, **kwargs)

    patches.set(ELBv2Backend, "create_listener", create_listener)

    original_remove_role = IAMBackend.remove_role_from_instance_profile

    def remove_role_from_instance_profile(self: Any, profile_name: str, role_name: str) -> None:
        profile = self.get_instance_profile(profile_name)
        if not any(role.name == role_name for role in profile.roles):
            raise NoSuchEntity(f"The role {role_name} is not in instance profile {profile_name}.")
        original_remove_role(self, profile_name, role_name)

    patches.set(IAMBackend, "remove_role_from_instance_profile", remove_role_from_instance_profile)

    original_create_secret = SecretsManagerBackend.create_secret

    def create_secret(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        existing = self.secrets.get(name) if name in self.secrets.keys() else None  # noqa: SIM118 - moto's store
        if existing is not None and getattr(existing, "deleted_date", None):
            raise InvalidRequestException(
                "You can't create this secret because a secret with this name is already scheduled for deletion."
            )
        return original_create_secret(self, name, *args, **kwargs)

    patches.set(SecretsManagerBackend, "create_secret", create_secret)


# Item operations whose results are plain data (no timestamps or blobs to format).
DYNAMODB_DATA_OPERATIONS = frozenset(
    ("dynamodb", op)
    for op in (
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    )
)


def fix_moto_performance(patches: PatchSet) -> None:
    """What moto 5.2.5 does on every request that costs more than the request (the emulator is one
    Python process: its CPU is the local runtime's bottleneck).

    It looks an EC2 resource's tags up by scanning every tag of every resource
    (``TaggedEC2Resource.get_tags`` -> ``describe_tags(filters={"resource-id": [id]})``, a regex
    per tag), so a describe with a tag filter costs resources x tags: with a few dozen clusters in
    the emulator, every kubestep step's describe took seconds. The same answer, looked up by id."""
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    def get_tags(self: Any) -> list[dict[str, str]]:
        resource_id = getattr(self, "id", None)
        if not resource_id:
            return []
        tags = dict.get(self.ec2_backend.tags, resource_id) or {}
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
        return [{"resource_id": resource_id, "key": k, "value": v, "resource_type": kind} for k, v in tags.items()]

    patches.set(TaggedEC2Resource, "get_tags", get_tags)

    # Per request, moto lists its own package directory (an isdir per service) to route the
    # request (moto_server/werkzeug_app.py get_backend_for_host), and inspects the response
    # class's members to find the action's method (core/responses.py call_action). Neither
    # changes while the process runs.
    from moto import backends
    from moto.core import responses

    # DynamoDB's item operations return dicts already in the wire format (moto's dynamo_to_dict);
    # the generic serializer still walks every attribute value against the output shape, which
    # was half of the emulator's time. Those results go out as they are.
    from moto.core.serialize import BaseJSONSerializer

    original_result = BaseJSONSerializer._serialize_result

    def _serialize_result(self: Any, resp: Any, result: Any) -> Any:
        model = self.operation_model
        if isinstance(result, dict) and (model.service_model.service_name, model.name) in DYNAMODB_DATA_OPERATIONS:
            return self._serialized_result_to_response(resp, result, model.output_shape, result)
        return original_result(self, resp, result)

    patches.set(BaseJSONSerializer, "_serialize_result", _serialize_result)

    modules = tuple(backends.list_of_moto_modules())
    patches.set(backends, "list_of_moto_modules", lambda: modules)
    patches.set(
        responses, "method_names_from_class", functools.lru_cache(maxsize=None)(responses.method_names_from_class)
    )


class LatencyHooks(Protocol):
    """What ``model_latency``'s patches ask the latency model (``kubestep_local.latency``)."""

    def delay(self, what: str) -> float:
        """Real seconds ``what`` stays in its intermediate state (0: settles at once)."""
        ...

    def models(self, what: str) -> bool:
        """Whether the profile models ``what`` at all (nothing is imposed by asking)."""
        ...

    def real(self, modelled_seconds: float) -> float:
        """Real seconds for modelled AWS seconds (the time scale)."""
        ...

    def later(self, seconds: float, action: Callable[[], None], what: str) -> None:
        """Run ``action`` (a state transition) after ``seconds`` real seconds."""
        ...

    def serving_since(self, instance_id: str) -> float | None:
        """Since when (``time.time()``) the instance answers its health check; None: not yet."""
        ...


def model_latency(patches: PatchSet, hooks: LatencyHooks) -> None:
    """Keep resources in AWS's intermediate states for as long as ``hooks.delay`` says.

    moto settles everything at once; on AWS a NAT gateway is ``pending`` for minutes, an NLB
    ``provisioning``, a volume ``creating``, an instance ``pending`` (its Auto Scaling instance
    ``Pending``) and ``shutting-down``, a deleted Auto Scaling group ``Delete in progress``, a
    NAT gateway ``deleting``; an NLB target is ``initial`` for its health check's threshold, then
    ``unhealthy`` until the instance serves its health check (here: its bootstrap report, from
    ``hooks.serving_since``) for that long; an NLB has a network interface per subnet that
    lingers after the NLB is deleted, so deleting its security group answers
    ``DependencyViolation`` meanwhile. Each patch wraps moto's own call and changes only the
    state the caller sees (or when moto's next step happens); with a delay of 0 moto's own
    behaviour is unchanged.
    """
    import time

    from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup
    from moto.ec2.exceptions import DependencyViolationError
    from moto.ec2.models.elastic_block_store import EBSBackend, Volume
    from moto.ec2.models.instances import Instance, InstanceBackend
    from moto.ec2.models.nat_gateways import NatGatewayBackend
    from moto.ec2.models.security_groups import SecurityGroupBackend
    from moto.elbv2.models import ELBv2Backend, FakeHealthStatus, FakeLoadBalancer, FakeTargetGroup

    def later(seconds: float, action: Callable[[], None], what: str) -> None:
        def gated() -> None:
            # A snapshot sees a transition whole or not at all; no request sees it half done.
            with GATE.shared(), REQUEST_LOCK:
                action()

        hooks.later(seconds, gated, what)

    # -- NAT gateways: pending -> available; deleting -> deleted
    original_create_nat = NatGatewayBackend.create_nat_gateway
    original_delete_nat = vars(NatGatewayBackend)["delete_nat_gateway"]

    def create_nat_gateway(self: Any, *args: Any, **kwargs: Any) -> Any:
        gateway = original_create_nat(self, *args, **kwargs)
        delay = hooks.delay("nat-gateway-pending")
        if delay:
            gateway.state = "pending"
            later(delay, lambda: _settle(gateway, "state", "pending", "available"), "nat-gateway-pending")
        return gateway

    def delete_nat_gateway(self: Any, nat_gateway_id: str) -> Any:
        gateway = original_delete_nat(self, nat_gateway_id)
        delay = hooks.delay("nat-gateway-deleting")
        if delay and gateway.state == "deleted":
            gateway.state = "deleting"
            later(delay, lambda: _settle(gateway, "state", "deleting", "deleted"), "nat-gateway-deleting")
        return gateway

    patches.set(NatGatewayBackend, "create_nat_gateway", create_nat_gateway)
    patches.set(NatGatewayBackend, "delete_nat_gateway", delete_nat_gateway)

    # -- NLBs: provisioning until due (moto activates on the first describe); ENIs per subnet
    original_create_lb = vars(ELBv2Backend)["create_load_balancer"]
    original_delete_lb = ELBv2Backend.delete_load_balancer
    original_activate = FakeLoadBalancer.activate

    def create_load_balancer(self: Any, *args: Any, **kwargs: Any) -> Any:
        known = set(self.load_balancers)
        balancer = original_create_lb(self, *args, **kwargs)
        if balancer.arn in known:
            return balancer  # an idempotent repeat (match_aws_semantics)
        delay = hooks.delay("load-balancer-provisioning")
        if delay:
            balancer._kubestep_active_at = time.time() + delay
        if balancer.type == "network" and hooks.models("load-balancer-interfaces-linger"):
            lb_id = balancer.arn.rsplit("/", 1)[-1]
            balancer._kubestep_enis = [
                self.ec2_backend.create_network_interface(
                    subnet,
                    private_ip_address=None,
                    group_ids=list(balancer.security_groups or []),
                    description=f"ELB net/{balancer.name}/{lb_id}",
                ).id
                for subnet in balancer.subnets
            ]
        return balancer

    def activate(self: Any) -> None:
        if time.time() >= getattr(self, "_kubestep_active_at", 0):
            original_activate(self)

    def delete_load_balancer(self: Any, arn: str) -> None:
        balancer = self.load_balancers.get(arn)
        original_delete_lb(self, arn)
        enis = list(getattr(balancer, "_kubestep_enis", ()))
        if not enis:
            return
        ec2 = self.ec2_backend

        def release() -> None:
            for eni_id in enis:
                with contextlib.suppress(Exception):
                    ec2.delete_network_interface(eni_id)

        delay = hooks.delay("load-balancer-interfaces-linger")
        if delay:
            later(delay, release, "load-balancer-interfaces-linger")
        else:
            release()

    patches.set(ELBv2Backend, "create_load_balancer", create_load_balancer)
    patches.set(ELBv2Backend, "delete_load_balancer", delete_load_balancer)
    patches.set(FakeLoadBalancer, "activate", activate)

    # -- security groups: refused while a network interface still uses them
    original_delete_sg = SecurityGroupBackend.delete_security_group

    def delete_security_group(self: Any, name: str | None = None, group_id: str | None = None) -> None:
        if group_id:
            for eni in list(getattr(self, "enis", {}).values()):
                if eni.instance is not None and eni.instance.state == "terminated":
                    continue  # moto keeps a terminated instance's interface; AWS deletes it
                if group_id in {g.id for g in eni._group_set}:
                    raise DependencyViolationError(f"resource {group_id} has a dependent object")
        return original_delete_sg(self, name=name, group_id=group_id)

    patches.set(SecurityGroupBackend, "delete_security_group", delete_security_group)

    # -- volumes: creating -> available
    original_create_volume = EBSBackend.create_volume
    original_status = Volume.status

    def create_volume(self: Any, *args: Any, **kwargs: Any) -> Any:
        volume = original_create_volume(self, *args, **kwargs)
        delay = hooks.delay("volume-creating")
        if delay:
            volume._kubestep_available_at = time.time() + delay
        return volume

    def status(self: Any) -> str:
        if time.time() < getattr(self, "_kubestep_available_at", 0):
            return "creating"
        return original_status.fget(self)

    patches.set(EBSBackend, "create_volume", create_volume)
    patches.set(Volume, "status", property(status))

    # -- instances: pending -> running (their Auto Scaling instance Pending -> InService);
    #    terminated after shutting-down
    original_run = InstanceBackend.run_instances
    original_terminate = Instance.terminate
    original_replace = FakeAutoScalingGroup.replace_autoscaling_group_instances

    def run_instances(self: Any, *args: Any, **kwargs: Any) -> Any:
        reservation = original_run(self, *args, **kwargs)
        delay = hooks.delay("instance-pending")
        if delay:
            for instance in reservation.instances:
                instance._state.name, instance._state.code = "pending", 0
                instance._kubestep_running_at = time.time() + delay
                later(delay, lambda i=instance: _instance_to(i, "pending", "running", 16), "instance-pending")
        return reservation

    def replace_instances(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original_replace(self, *args, **kwargs)
        for state in list(self.instance_states):
            due = getattr(state.instance, "_kubestep_running_at", None)
            if due and state.lifecycle_state == "InService" and state.instance.state == "pending":
                state.lifecycle_state = "Pending"
                later(
                    max(0.0, due - time.time()),
                    lambda s=state: _settle(s, "lifecycle_state", "Pending", "InService"),
                    "auto-scaling-instance-pending",
                )
        return result

    def terminate(self: Any) -> Any:
        previous = original_terminate(self)
        delay = hooks.delay("instance-shutting-down")
        if delay and self._state.name == "terminated" and previous.name != "terminated":
            self._state.name, self._state.code = "shutting-down", 32
            later(delay, lambda: _instance_to(self, "shutting-down", "terminated", 48), "instance-shutting-down")
        return previous

    patches.set(InstanceBackend, "run_instances", run_instances)
    patches.set(FakeAutoScalingGroup, "replace_autoscaling_group_instances", replace_instances)
    patches.set(Instance, "terminate", terminate)

    # -- Auto Scaling groups: Delete in progress, then gone (instances terminated then)
    original_delete_group = AutoScalingBackend.delete_auto_scaling_group

    def delete_auto_scaling_group(self: Any, group_name: str) -> None:
        group = self.autoscaling_groups.get(group_name)
        delay = hooks.delay("auto-scaling-group-deleting")
        if group is None or not delay:
            return original_delete_group(self, group_name)
        if getattr(group, "status", None) == "Delete in progress":
            return None

        def finish() -> None:
            if self.autoscaling_groups.get(group_name) is group:
                original_delete_group(self, group_name)

        group.status = "Delete in progress"
        later(delay, finish, "auto-scaling-group-deleting")
        return None

    patches.set(AutoScalingBackend, "delete_auto_scaling_group", delete_auto_scaling_group)

    # -- NLB targets: initial -> unhealthy until the instance serves -> healthy
    original_register = FakeTargetGroup.register
    original_health_for = FakeTargetGroup.health_for

    def register(self: Any, targets: list[dict[str, Any]]) -> None:
        # Auto Scaling registers an instance as it launches (pending); moto accepts only running.
        launching = [
            t for t in targets if getattr(self.ec2_backend.get_instance_by_id(t["Id"]), "state", "") == "pending"
        ]
        original_register(self, [t for t in targets if t not in launching])
        for target in launching:
            self.targets[target["Id"]] = {"Id": target["Id"], "Port": target.get("Port", self.port)}
            self.deregistered_targets.pop(target["Id"], None)
        stamps = self.__dict__.setdefault("_kubestep_registered", {})
        for target in targets:
            stamps.setdefault(target["Id"], time.time())

    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        health = original_health_for(self, target, ec2_backend)
        registered = getattr(self, "_kubestep_registered", {}).get(target["Id"])
        if health.status != "healthy" or registered is None or not hooks.models("target-health"):
            return health
        interval = float(self.health_check_interval_seconds or 30)
        healthy_after = hooks.real(interval * int(self.healthy_threshold_count or 5))
        unhealthy_after = hooks.real(interval * int(self.unhealthy_threshold_count or 2))
        now = time.time()
        # AWS runs a target's health checks only once its load balancer is active: a target
        # registered while the NLB provisions stays `initial` (Elb.RegistrationInProgress) until then.
        checks_from = max(registered, _load_balancers_active_at(self))
        serving = hooks.serving_since(target["Id"])
        if serving is not None and now >= max(serving, checks_from) + healthy_after:
            return health
        port, check_port = health.port, health.health_check_port
        if now < checks_from + unhealthy_after:
            reason = ("Elb.RegistrationInProgress", "Target registration is in progress")
            return FakeHealthStatus(target["Id"], port, check_port, "initial", *reason)
        return FakeHealthStatus(
            target["Id"], port, check_port, "unhealthy", "Target.FailedHealthChecks", "Health checks failed"
        )

    patches.set(FakeTargetGroup, "register", register)
    patches.set(FakeTargetGroup, "health_for", health_for)


def _load_balancers_active_at(target_group: Any) -> float:
    """When the target group's last load balancer became (or becomes) active; 0 if unmodelled."""
    from moto.elbv2.models import elbv2_backends

    backend = elbv2_backends[target_group.account_id][target_group.region_name]
    balancers = (backend.load_balancers.get(arn) for arn in target_group.load_balancer_arns)
    return max((getattr(lb, "_kubestep_active_at", 0.0) for lb in balancers if lb is not None), default=0.0)


def _settle(obj: Any, attribute: str, intermediate: str, final: str) -> None:
    """``obj.attribute = final`` unless something else changed it meanwhile."""
    if getattr(obj, attribute, None) == intermediate:
        setattr(obj, attribute, final)


def _instance_to(instance: Any, intermediate: str, name: str, code: int) -> None:
    if instance._state.name == intermediate:
        instance._state.name, instance._state.code = name, code


# (execution ARN or None, wall-clock start, end) of one scaled wait of the interpreter.
WaitObserver = Callable[["str | None", float, float], None]
# The execution whose retrier a thread of the interpreter evaluates (its Retry sleep follows).
_THREAD_EXECUTION = threading.local()


def scale_asl_waits(
    patches: PatchSet,
    real_seconds: Callable[[float], float],
    shutdown: threading.Event,
    on_wait: WaitObserver | None = None,
) -> None:
    """Scale what the interpreter sleeps in Retry intervals and Wait states.

    moto's interpreter really sleeps: ``time.sleep(interval_seconds)`` between retries
    (moto/stepfunctions/parser/asl/component/common/retry/retrier_decl.py:107) and
    ``env.program_state_event.wait(wait_seconds)`` in Wait states (.../state/wait/wait_function/
    wait_function.py:15-33, shared by Seconds, SecondsPath, Timestamp and TimestampPath). Exactly
    those two call sites change -- never the global ``time.sleep`` (moto's server, boto3 retries
    and the runtime's threads keep real time). ``shutdown`` ends retry sleeps early, so the
    interpreter threads of aborted executions do not outlive the runtime by a retry interval.
    ``on_wait`` hears of each scaled wait (what an execution's modelled time scales back up).
    """
    import time
    import types

    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    # retrier_decl does ``import time`` and calls ``time.sleep``: give that module its own
    # ``time`` whose sleep is scaled, leaving the real module untouched for everyone else.
    scaled_time = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("__")})

    def _sleep(seconds: float) -> None:
        started = time.time()
        shutdown.wait(real_seconds(seconds))
        if on_wait is not None:
            on_wait(getattr(_THREAD_EXECUTION, "arn", None), started, time.time())

    scaled_time.sleep = _sleep

    def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        started = time.time()
        deadline = time.monotonic() + real_seconds(wait_seconds)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                env.program_state_event.wait(remaining)
                # The event is set on any program state change; only an ended/stopped program
                # interrupts the wait (moto's own loop re-enters on the rest).
                if not env.is_running():
                    return
        finally:
            if on_wait is not None:
                arn = None
                with contextlib.suppress(Exception):
                    arn = env.states.context_object.context_object_data["Execution"]["Id"]
                on_wait(arn, started, time.time())

    patches.set(retrier_decl, "time", scaled_time)
    patches.set(WaitFunction, "_wait_interval", _wait_interval)
    # A Retry sleeps in the thread that evaluates the retrier: tell its sleep whose it is.
    original_retry = retrier_decl.RetrierDecl._eval_body

    @functools.wraps(original_retry)
    def _eval_body(self: Any, env: Any) -> Any:
        with contextlib.suppress(Exception):
            _THREAD_EXECUTION.arn = env.states.context_object.context_object_data["Execution"]["Id"]
        return original_retry(self, env)

    patches.set(retrier_decl.RetrierDecl, "_eval_body", _eval_body)


@dataclass(frozen=True)
class FunctionInfo:
    """A deployed Lambda function, as the worker pool needs it."""

    name: str
    arn: str
    account: str
    region: str
    handler: str
    runtime: str
    version: str
    memory_mb: int
    timeout_seconds: float
    log_group: str
    code_sha256: str
    environment: dict[str, str]
    code_zip: bytes = field(repr=False, compare=False)


def _function_info(fn: Any) -> FunctionInfo:
    return FunctionInfo(
        name=fn.function_name,
        arn=fn.function_arn,
        account=fn.account_id,
        region=fn.region,
        handler=fn.handler,
        runtime=fn.run_time,
        version=str(fn.version),
        memory_mb=int(fn.memory_size or 128),
        timeout_seconds=float(fn.timeout or 3),
        log_group=fn.logs_group_name,
        code_sha256=fn.code_sha_256,
        environment={str(k): str(v) for k, v in (fn.environment_vars or {}).items()},
        code_zip=fn.code_bytes,
    )


# (function, event, execution ARN or None) -> (payload, errored, logs)
LambdaRunner = Callable[[FunctionInfo, Any, "str | None"], tuple[str, bool, str]]


class InvocationRefused(Exception):
    """A LambdaRunner refuses an invocation: the Invoke call itself fails, as when the Lambda
    service answers ``ServiceException`` (HTTP 500); Step Functions reports
    ``Lambda.<code>``."""

    def __init__(self, code: str = "ServiceException", message: str = "Lambda was unable to run the function") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def route_lambda_invocations(patches: PatchSet, runner: LambdaRunner) -> None:
    """Run every Lambda invocation through ``runner`` instead of moto's Docker path.

    moto executes Lambda code only in Docker. ``LambdaFunction._invoke_lambda(self, event) ->
    (payload, errored, logs)`` (moto/awslambda/models.py:981) is where every invocation passes --
    boto3 ``lambda.invoke``, the Step Functions interpreter, the EventBridge and API Gateway
    stand-ins. The Step Functions interpreter's Lambda client sends the execution ARN in a header,
    so each invocation can be attributed to the execution that made it.
    """
    from moto.awslambda.models import LambdaFunction
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    tls = threading.local()
    original_invoke = LambdaFunction.invoke
    original_integration = lambda_eval_utils.execute_lambda_function_integration
    original_client_for = lambda_eval_utils.boto_client_for

    def _invoke_lambda(fn: Any, event: Any = None) -> tuple[str, bool, str]:
        try:
            return runner(_function_info(fn), event, getattr(tls, "execution_arn", None))
        except InvocationRefused as exc:
            from moto.awslambda.exceptions import LambdaClientError

            error = LambdaClientError(exc.code, exc.message)
            error.code = 500  # a service error, as Lambda answers it
            raise error from None

    def invoke(fn: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
        # moto parses the body before _invoke_lambda; keep the caller's execution ARN.
        tls.execution_arn = request_headers.get(EXECUTION_HEADER) if request_headers else None
        try:
            result = original_invoke(fn, body, request_headers, response_headers)
        finally:
            tls.execution_arn = None
        # moto says "Handled"; AWS reports a raised exception as "Unhandled".
        if response_headers.get("x-amz-function-error") == "Handled":
            response_headers["x-amz-function-error"] = "Unhandled"
        return result

    def integration(env: Any, *args: Any, **kwargs: Any) -> Any:
        # Runs in the interpreter's thread: remember which execution is invoking.
        try:
            tls.sfn_execution = env.states.context_object.context_object_data["Execution"]["Id"]
        except Exception:  # noqa: BLE001 - attribution is best effort
            tls.sfn_execution = None
        try:
            return original_integration(env, *args, **kwargs)
        finally:
            tls.sfn_execution = None

    # One client per region and service (moto makes a new boto3 client for every invocation,
    # milliseconds of CPU each); the header comes from the invoking thread at send time.
    clients: dict[tuple[Any, ...], Any] = {}
    clients_lock = threading.Lock()

    def _add_header(request: Any, **_: Any) -> None:
        execution_arn = getattr(tls, "sfn_execution", None)
        if execution_arn:
            request.headers[EXECUTION_HEADER] = execution_arn

    def boto_client_for(region: Any, service: Any, state_credentials: Any = None) -> Any:
        key = (region, service, repr(state_credentials))
        with clients_lock:
            client = clients.get(key)
            if client is None:
                client = original_client_for(region=region, service=service, state_credentials=state_credentials)
                client.meta.events.register("before-sign.lambda.Invoke", _add_header)
                clients[key] = client
        return client

    patches.set(LambdaFunction, "_invoke_lambda", _invoke_lambda)
    patches.set(LambdaFunction, "invoke", invoke)
    patches.set(lambda_eval_utils, "execute_lambda_function_integration", integration)
    patches.set(lambda_eval_utils, "boto_client_for", boto_client_for)


def on_execution_start(patches: PatchSet, callback: Callable[[str, Any], None]) -> None:
    """Call ``callback(execution_arn, input)`` after each StartExecution of the executing backend
    has created its execution, before the request answers. Patch after ``bind_step_functions``
    (the server's) and undo before it: the patches stack."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution

    def start_execution(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        execution = original(self, state_machine_arn, *args, **kwargs)
        callback(execution.exec_arn, execution.input_data)
        return execution

    patches.set(StepFunctionsParserBackend, "start_execution", start_execution)


def on_execution_end(patches: PatchSet, callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever a Step Functions execution ends (after its status is set)."""
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    original = BaseExecutionWorkerCommunication.terminated

    def terminated(comm: Any) -> None:
        original(comm)
        callback()

    patches.set(BaseExecutionWorkerCommunication, "terminated", terminated)


# ------------------------------------------------------------------------------------------------
# Reading backends
# ------------------------------------------------------------------------------------------------
def _iter_backends(backend_dict: Any) -> list[tuple[str, str, Any]]:
    """(account, region, backend) for every backend moto has created so far.

    Plain ``dict`` access: ``BackendDict.__getitem__`` would create backends as a side effect,
    and iterating a live dict races with moto's request threads.
    """
    out = []
    for account, per_region in list(dict.items(backend_dict)):
        for region, backend in list(dict.items(per_region)):
            out.append((account, region, backend))
    return out


def lambda_functions(account: str | None = None, region: str | None = None) -> list[FunctionInfo]:
    from moto.awslambda.models import lambda_backends

    functions = []
    for acc, reg, backend in _iter_backends(lambda_backends):
        if (account is None or acc == account) and (region is None or reg == region):
            with contextlib.suppress(Exception):
                functions.extend(_function_info(fn) for fn in backend.list_functions())
    return functions


def append_function_log(function: FunctionInfo, text: str) -> None:
    """Write one invocation's log lines to the function's CloudWatch log group, as Lambda does."""
    from moto.awslambda.models import lambda_backends

    with GATE.shared(), REQUEST_LOCK:
        per_account = dict.get(lambda_backends, function.account)
        backend = dict.get(per_account, function.region) if per_account is not None else None
        if backend is None:
            return
        fn = backend.get_function(function.arn)
        fn.logs_backend.ensure_log_group(fn.logs_group_name)
        fn.save_logs(text)


@dataclass(frozen=True)
class ExecutionInfo:
    """A Step Functions execution of the executing backend."""

    arn: str
    name: str
    state_machine_arn: str
    account: str
    region: str
    status: str
    start_date: datetime | None
    stop_date: datetime | None
    input: Any
    output: Any
    error: str | None
    cause: str | None


def _status(execution: Any) -> str:
    return str(getattr(execution.exec_status, "value", execution.exec_status))


def _step_functions_executions() -> list[tuple[str, str, Any, Any]]:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    out = []
    for account, region, backend in _iter_backends(stepfunctions_parser_backends):
        for machine in list(backend.state_machines):
            for execution in list(getattr(machine, "executions", [])):
                out.append((account, region, backend, execution))
    return out


def executions() -> list[ExecutionInfo]:
    return [
        ExecutionInfo(
            arn=execution.exec_arn,
            name=execution.name,
            state_machine_arn=execution.state_machine_arn,
            account=account,
            region=region,
            status=_status(execution),
            start_date=execution.start_date,
            stop_date=execution.stop_date,
            input=execution.input_data,
            output=execution.output,
            error=execution.error,
            cause=execution.cause,
        )
        for account, region, _backend, execution in _step_functions_executions()
    ]


def execution_status(execution_arn: str) -> str | None:
    """An execution's status (None if the executing backend has no such execution)."""
    for _account, _region, _backend, execution in _step_functions_executions():
        if execution.exec_arn == execution_arn:
            return _status(execution)
    return None


def execution_history(execution_arn: str) -> list[dict[str, Any]]:
    """``GetExecutionHistory``'s events ([] for an execution that never started)."""
    for _account, _region, backend, execution in _step_functions_executions():
        if execution.exec_arn == execution_arn:
            with contextlib.suppress(Exception):
                return list(backend.get_execution_history(execution_arn)["events"])
            return []
    raise KeyError(execution_arn)


def stop_execution(execution_arn: str, error: str, cause: str) -> bool:
    """StopExecution of one RUNNING execution (from inside the runtime, e.g. a dying worker)."""
    for _account, _region, _backend, execution in _step_functions_executions():
        if execution.exec_arn == execution_arn and _status(execution) == "RUNNING":
            execution.stop(datetime.now(UTC), error=error, cause=cause)
            return True
    return False


def stop_running_executions(error: str, cause: str) -> list[str]:
    """StopExecution for every RUNNING execution; returns their ARNs."""
    stopped = []
    for _account, _region, _backend, execution in _step_functions_executions():
        if _status(execution) != "RUNNING":
            continue
        with contextlib.suppress(Exception):
            execution.stop(datetime.now(UTC), error=error, cause=cause)
            stopped.append(execution.exec_arn)
    return stopped


@dataclass(frozen=True)
class AutoScalingGroupInfo:
    name: str
    account: str
    region: str
    tags: dict[str, str]
    instance_ids: list[str]


def autoscaling_groups() -> list[AutoScalingGroupInfo]:
    from moto.autoscaling.models import autoscaling_backends

    groups = []
    for account, region, backend in _iter_backends(autoscaling_backends):
        for group in list(backend.autoscaling_groups.values()):
            tags = {t.get("Key") or t.get("key"): t.get("Value") or t.get("value") for t in group.tags}
            groups.append(
                AutoScalingGroupInfo(
                    name=group.name,
                    account=account,
                    region=region,
                    tags=tags,
                    instance_ids=[state.instance.id for state in list(group.instance_states)],
                )
            )
    return groups


def instance_running(region: str, instance_id: str) -> bool:
    """Whether an EC2 instance exists and is pending or running."""
    from moto.ec2.models import ec2_backends

    for _account, backend_region, backend in _iter_backends(ec2_backends):
        if backend_region != region:
            continue
        with contextlib.suppress(Exception):
            instance = backend.get_instance(instance_id)
            return instance.state not in ("terminated", "shutting-down", "stopped", "stopping")
    return False


def instance_user_data(region: str, instance_id: str) -> str | None:
    """The user-data an EC2 instance was launched with (base64, as given), None if unknown."""
    from moto.ec2.models import ec2_backends

    for _account, backend_region, backend in _iter_backends(ec2_backends):
        if backend_region != region:
            continue
        with contextlib.suppress(Exception):
            data = backend.get_instance(instance_id).user_data
            if isinstance(data, list | tuple):  # moto keeps RunInstances' UserData as a one-item list
                data = data[0] if data else None
            if data is None:
                return None
            # bytes, str, or moto's Base64EncodedString (whose str() is the encoded text)
            return data.decode() if isinstance(data, bytes) else str(data)
    return None


def instance_state(region: str, instance_id: str) -> str | None:
    """An EC2 instance's state name (None if there is no such instance)."""
    from moto.ec2.models import ec2_backends

    for _account, backend_region, backend in _iter_backends(ec2_backends):
        if backend_region != region:
            continue
        with contextlib.suppress(Exception):
            return str(backend.get_instance(instance_id).state)
    return None


@dataclass(frozen=True)
class RuleInfo:
    """An EventBridge rule with its targets and (for event rules) its pattern matcher."""

    name: str
    arn: str
    account: str
    region: str
    bus: str
    state: str
    schedule_expression: str | None
    targets: list[dict[str, Any]]
    _pattern: Any = field(repr=False, compare=False)

    def matches(self, event: dict[str, Any]) -> bool:
        """moto's own EventBridge pattern matcher."""
        return bool(self._pattern.matches_event(event))


def event_rules(account: str | None = None, region: str | None = None, bus: str | None = None) -> list[RuleInfo]:
    from moto.events.models import events_backends

    rules = []
    for acc, reg, backend in _iter_backends(events_backends):
        if (account is not None and acc != account) or (region is not None and reg != region):
            continue
        for bus_name, event_bus in list(backend.event_buses.items()):
            if bus is not None and bus_name != bus:
                continue
            for rule in list(event_bus.rules.values()):
                rules.append(
                    RuleInfo(
                        name=rule.name,
                        arn=rule.arn,
                        account=acc,
                        region=reg,
                        bus=bus_name,
                        state=rule.state,
                        schedule_expression=rule.scheduled_expression,
                        targets=[dict(t) for t in rule.targets],
                        _pattern=rule.event_pattern,
                    )
                )
    return rules


def render_input_transformer(transformer: dict[str, Any], event: dict[str, Any]) -> Any:
    """A target's InputTransformer applied to an event, by moto's EventBridge implementation."""
    from moto.events.utils import EventTemplateParser

    return EventTemplateParser.parse(
        input_template=transformer.get("InputTemplate"),
        input_paths_map=transformer.get("InputPathsMap", {}),
        event=event,
    )


# ------------------------------------------------------------------------------------------------
# State snapshots
# ------------------------------------------------------------------------------------------------
SNAPSHOT_FORMAT = 1
_BLOB_BYTES = 64 * 1024
ABORTED_ON_RESTORE_ERROR = "States.Runtime"
ABORTED_ON_RESTORE_CAUSE = (
    "the local runtime stopped while this execution ran (kubestep local down, or a crash); "
    "running executions do not survive a restart"
)


class SnapshotError(RuntimeError):
    """The emulator's state could not be saved or restored."""


@dataclass
class RestoredState:
    saved_at: str
    extra: dict[str, Any]
    aborted_executions: list[str]


def _backend_dicts() -> list[tuple[tuple[str, str], Any]]:
    """((module, attribute), BackendDict) of every service moto has state for."""
    from moto.core.base_backend import BackendDict

    found = []
    for backend_dict in list(BackendDict._instances):
        module = sys.modules.get(backend_dict.backend.__module__)
        name = next((k for k, v in vars(module).items() if v is backend_dict), None) if module else None
        if name is None:
            # Not reachable under its own module's name (the Step Functions binding rebinds one),
            # so nothing reads it either.
            continue
        found.append(((module.__name__, name), backend_dict))
    return found


def _resolve_backend_dict(key: tuple[str, str]) -> Any:
    module, name = key
    return getattr(importlib.import_module(module), name)


# Named stand-ins for the lambdas moto uses as defaultdict factories (lambdas do not pickle),
# e.g. moto/ssm/models.py ``defaultdict(lambda: defaultdict(dict))``, moto/awslambda/models.py
# ``defaultdict(lambda: {})``.
def _defaultdict_of_dict() -> defaultdict[Any, Any]:
    return defaultdict(dict)


def _named_factory(factory: Callable[[], Any]) -> Callable[[], Any]:
    """A picklable factory that makes what ``factory`` (a lambda) makes."""
    sample = factory()
    if type(sample) in (dict, list, set) and not sample:
        return type(sample)
    if isinstance(sample, defaultdict) and not sample and sample.default_factory is dict:
        return _defaultdict_of_dict
    raise SnapshotError(f"cannot snapshot a defaultdict of {factory.__qualname__} (makes {sample!r})")


def _rebuild_defaultdict(
    cls: type, factory: Callable[[], Any] | None, state: dict[str, Any], items: dict[Any, Any]
) -> defaultdict[Any, Any]:
    # Without calling cls.__init__: subclasses (moto's ParameterDict) take other arguments.
    out = cls.__new__(cls)
    defaultdict.__init__(out, factory)
    if state:
        out.__dict__.update(state)
    dict.update(out, items)
    return out


def _rebuild_weak_value_dict(items: dict[Any, Any]) -> weakref.WeakValueDictionary[Any, Any]:
    return weakref.WeakValueDictionary(items)


def _rebuild_event(flag: bool) -> threading.Event:
    event = threading.Event()
    if flag:
        event.set()
    return event


def _load_private_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_private_key(der, password=None)


def _load_public_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_public_key(der)


class _FrozenEventManager:
    def __init__(self, history: list[dict[str, Any]]) -> None:
        self._history = history

    def get_event_history(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._history)


class _FrozenEnvironment:
    def __init__(self, history: list[dict[str, Any]]) -> None:
        self.event_manager = _FrozenEventManager(history)

    def is_running(self) -> bool:
        return False


class _FrozenWorker:
    """Stands in for the worker of an execution restored from a snapshot: its history, no thread."""

    def __init__(self, history: list[dict[str, Any]]) -> None:
        self.env = _FrozenEnvironment(history)

    def stop(self, stop_date: Any = None, error: Any = None, cause: Any = None) -> None:
        return None  # nothing runs


_restore_context = threading.local()


def _rebuild_execution(cls: type, state: dict[str, Any], history: list[dict[str, Any]]) -> Any:
    from moto.stepfunctions.parser.api import ExecutionStatus

    execution = cls.__new__(cls)
    execution.__dict__.update(state)
    if execution.exec_status in (None, ExecutionStatus.RUNNING):
        # Its interpreter thread is gone: it ends ABORTED, and the execution-status event that
        # follows lets the management service release what the run held, as for StopExecution.
        now = datetime.now(UTC)
        execution.exec_status = ExecutionStatus.ABORTED
        execution.stop_date = now
        execution.error = ABORTED_ON_RESTORE_ERROR
        execution.cause = ABORTED_ON_RESTORE_CAUSE
        last = history[-1]["id"] if history else 0
        history.append(
            {
                "timestamp": now,
                "type": "ExecutionAborted",
                "id": last + 1,
                "previousEventId": last,
                "executionAbortedEventDetails": {
                    "error": ABORTED_ON_RESTORE_ERROR,
                    "cause": ABORTED_ON_RESTORE_CAUSE,
                },
            }
        )
        aborted = getattr(_restore_context, "aborted", None)
        if aborted is not None:
            aborted.append(execution.exec_arn)
    execution.exec_worker = _FrozenWorker(history)
    return execution


class _StatePickler(pickle.Pickler):
    """Pickles moto backends: live BackendDicts by reference, what cannot be pickled by rebuild."""

    def __init__(self, file: io.BytesIO, dicts: list[tuple[tuple[str, str], Any]]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.blobs: dict[bytes, bytes] = {}
        self._dict_keys = {id(d): key for key, d in dicts}
        self._account_keys = {
            id(per_account): (key, account) for key, d in dicts for account, per_account in dict.items(d)
        }
        from moto.stepfunctions.parser.backend.execution import Execution

        self._execution_type = Execution
        self._lock_types = (type(threading.Lock()), type(threading.RLock()))

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) is bytes and len(obj) >= _BLOB_BYTES:
            # Code zips: the same asset is in S3 and in each function; stored once.
            digest = hashlib.sha256(obj).digest()
            self.blobs.setdefault(digest, obj)
            return ("blob", digest)
        key = self._dict_keys.get(id(obj))
        if key is not None:
            return ("backends", key)
        account = self._account_keys.get(id(obj))
        if account is not None:
            return ("account", *account)
        return None

    def reducer_override(self, obj: Any) -> Any:  # noqa: PLR0911 - one case per kind
        if isinstance(obj, self._lock_types):
            return type(obj), ()
        if isinstance(obj, threading.Condition):
            return threading.Condition, ()
        if isinstance(obj, threading.Event):
            return _rebuild_event, (obj.is_set(),)
        if isinstance(obj, threading.Thread):
            raise SnapshotError(f"cannot snapshot a thread ({obj.name}) held by moto's state")
        if isinstance(obj, self._execution_type):
            state = {k: v for k, v in vars(obj).items() if k != "exec_worker"}
            worker = obj.exec_worker
            env = getattr(worker, "env", None)
            history = env.event_manager.get_event_history() if env is not None else []
            return _rebuild_execution, (type(obj), state, history)
        if isinstance(obj, weakref.WeakValueDictionary):
            return _rebuild_weak_value_dict, (dict(obj.items()),)
        if isinstance(obj, defaultdict) and (
            type(obj) is not defaultdict or getattr(obj.default_factory, "__name__", "") == "<lambda>"
        ):
            factory = obj.default_factory
            if getattr(factory, "__name__", "") == "<lambda>":
                factory = _named_factory(factory)
            return _rebuild_defaultdict, (type(obj), factory, dict(getattr(obj, "__dict__", {})), dict(obj))
        return self._reduce_key(obj)

    @staticmethod
    def _reduce_key(obj: Any) -> Any:
        # KMS keys and CloudFormation's references to them hold cryptography key objects.
        module = type(obj).__module__
        if not module.startswith("cryptography"):
            return NotImplemented
        from cryptography.hazmat.primitives import serialization

        if hasattr(obj, "private_bytes"):
            der = obj.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            return _load_private_key, (der,)
        if hasattr(obj, "public_bytes"):
            der = obj.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            return _load_public_key, (der,)
        return NotImplemented


class _StateUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, blobs: dict[bytes, bytes]) -> None:
        super().__init__(file)
        self._blobs = blobs

    def persistent_load(self, pid: Any) -> Any:
        kind = pid[0]
        if kind == "blob":
            return self._blobs[pid[1]]
        if kind == "backends":
            return _resolve_backend_dict(tuple(pid[1]))
        if kind == "account":
            return _resolve_backend_dict(tuple(pid[1]))[pid[2]]
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")


def snapshot_state(extra: dict[str, Any] | None = None, *, timeout: float = 10.0) -> bytes:
    """Every backend's state as bytes, taken while no request changes it.

    ``extra`` (picklable) travels with it: the stand-ins' own bookkeeping. Raises SnapshotError
    when requests in flight do not end within ``timeout`` or something cannot be pickled.
    """
    with GATE.exclusive(timeout) as held:
        if not held:
            raise SnapshotError(f"requests to the emulator did not pause within {timeout:.0f}s")
        dicts = _backend_dicts()
        payload = {
            "format": SNAPSHOT_FORMAT,
            "moto": PINNED_MOTO_VERSION,
            "python": list(sys.version_info[:2]),
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "backends": {key: {acc: dict(dict.items(per)) for acc, per in dict.items(d)} for key, d in dicts},
            "extra": extra or {},
        }
        buffer = io.BytesIO()
        try:
            pickler = _StatePickler(buffer, dicts)
            pickler.dump(payload)
        except SnapshotError:
            raise
        except Exception as exc:
            raise SnapshotError(f"{type(exc).__name__}: {exc}") from exc
    # The blobs first: loading the payload resolves them.
    out = io.BytesIO()
    pickle.dump(pickler.blobs, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(buffer.getvalue())
    return out.getvalue()


def restore_state(data: bytes) -> RestoredState:
    """Load a snapshot into moto (after ``reset_backends``, before anything is deployed).

    Executions that were RUNNING come back ABORTED (their interpreter threads are gone).
    """
    aborted: list[str] = []
    _restore_context.aborted = aborted
    try:
        stream = io.BytesIO(data)
        blobs = pickle.load(stream)
        payload = _StateUnpickler(stream, blobs).load()
    except Exception as exc:
        raise SnapshotError(f"unreadable snapshot: {type(exc).__name__}: {exc}") from exc
    finally:
        _restore_context.aborted = None
    if payload.get("format") != SNAPSHOT_FORMAT or payload.get("moto") != PINNED_MOTO_VERSION:
        raise SnapshotError(
            f"snapshot of format {payload.get('format')} / moto {payload.get('moto')}; "
            f"this runtime reads format {SNAPSHOT_FORMAT} / moto {PINNED_MOTO_VERSION}"
        )
    for key, accounts in payload["backends"].items():
        backend_dict = _resolve_backend_dict(tuple(key))
        for account, regions in accounts.items():
            per_account = backend_dict[account]  # creates it (and registers the dict for reset)
            for region, backend in regions.items():
                dict.__setitem__(per_account, region, backend)
    return RestoredState(saved_at=payload["saved_at"], extra=payload.get("extra") or {}, aborted_executions=aborted)


# ---------------------------------------------------------------- public parameters AWS publishes

UBUNTU_IMAGE_NAMES = {
    "amd64": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20261120",
    "arm64": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20261120",
}


def publish_ubuntu_images(account_id: str, region: str) -> dict[str, str]:
    """Canonical publishes Ubuntu 24.04's image ids in public SSM parameters
    (/aws/service/canonical/...); moto has neither those parameters nor the images, and
    refuses PutParameter under /aws/. Register an image per architecture and publish its id
    where Canonical does, as AWS would answer."""

    from moto.ec2.models import ec2_backends
    from moto.ssm.models import Parameter, ParameterDict, ssm_backends

    from kubestep.resources.images import UBUNTU_PARAMETER

    ec2 = ec2_backends[account_id][region]
    parameters: ParameterDict = ssm_backends[account_id][region]._parameters
    published = {}
    for arch, image_name in UBUNTU_IMAGE_NAMES.items():
        name = UBUNTU_PARAMETER.format(arch=arch)
        existing = dict.get(parameters, name)
        if existing:
            published[arch] = existing[-1].value
            continue
        ami = ec2.register_image(name=image_name, description=f"Canonical, Ubuntu, 24.04, {arch} noble image")
        ami.architecture = "x86_64" if arch == "amd64" else "arm64"
        super(ParameterDict, parameters).__getitem__(name).append(
            Parameter(
                account_id=account_id,
                name=name,
                value=ami.id,
                parameter_type="String",
                description=None,
                allowed_pattern=None,
                keyid=None,
                last_modified_date=datetime.now(UTC),
                version=1,
                data_type="aws:ec2:image",
            )
        )
        published[arch] = ami.id
    return published


# ---------------------------------------------------------------- Auto Scaling lifecycle hooks


@dataclass
class PendingLifecycleAction:
    """An instance in Terminating:Wait until its lifecycle action completes (or times out)."""

    token: str
    account: str
    region: str
    group: str
    hook: str
    instance_id: str
    heartbeat_timeout: int
    default_result: str
    started: float


_LIFECYCLE: dict[str, PendingLifecycleAction] = {}
_LIFECYCLE_LOCK = threading.Lock()


def pending_lifecycle_actions() -> list[PendingLifecycleAction]:
    with _LIFECYCLE_LOCK:
        return list(_LIFECYCLE.values())


def _finish_termination(action: PendingLifecycleAction) -> None:
    from moto.autoscaling.models import autoscaling_backends

    backend = autoscaling_backends[action.account][action.region]
    group = backend.autoscaling_groups.get(action.group)
    if group is not None:
        group.instance_states = [s for s in group.instance_states if s.instance.id != action.instance_id]
    with contextlib.suppress(Exception):
        backend.ec2_backend.terminate_instances([action.instance_id])


def complete_lifecycle_action_for(token_or_instance: str, result: str = "CONTINUE") -> bool:
    """Complete a pending termination (what CompleteLifecycleAction does); True if one matched."""
    with _LIFECYCLE_LOCK:
        action = _LIFECYCLE.pop(token_or_instance, None)
        if action is None:
            match = [t for t, a in _LIFECYCLE.items() if a.instance_id == token_or_instance]
            action = _LIFECYCLE.pop(match[0]) if match else None
    if action is None:
        return False
    _finish_termination(action)
    return True


def expire_lifecycle_actions(now: float, real_seconds: Callable[[float], float]) -> list[str]:
    """Auto Scaling's heartbeat timeout: past it, the default result applies (for a terminating
    hook, CONTINUE and ABANDON both terminate the instance)."""
    expired = []
    for action in pending_lifecycle_actions():
        due = now - action.started >= real_seconds(action.heartbeat_timeout)
        if due and complete_lifecycle_action_for(action.token, action.default_result):
            expired.append(action.instance_id)
    return expired


def emulate_lifecycle_hooks(patches: PatchSet) -> None:
    """moto 5.2.5 ignores lifecycle hooks and has no CompleteLifecycleAction: an instance of a
    group with a termination hook goes to `Terminating:Wait`, Auto Scaling sends the
    `EC2 Instance-terminate Lifecycle Action` event to EventBridge (rules route it on, e.g. to a
    queue), and the instance terminates when its action completes or its heartbeat times out."""
    import time as _time

    from moto.autoscaling.models import AutoScalingBackend, TerminateInstanceActivity
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.events.models import events_backends

    original_terminate = AutoScalingBackend.terminate_instance

    def terminate_instance(self: Any, instance_id: str, should_decrement: bool) -> Any:
        state = next(
            (s for g in self.autoscaling_groups.values() for s in g.instance_states if s.instance.id == instance_id),
            None,
        )
        group = getattr(state.instance, "autoscaling_group", None) if state is not None else None
        hooks = [
            h
            for h in (self.describe_lifecycle_hooks(group.name) if group is not None else [])
            if h.lifecycle_transition == "autoscaling:EC2_INSTANCE_TERMINATING"
        ]
        if state is None:
            # moto's own lookup raises StopIteration (a 500); AWS answers a ValidationError, e.g.
            # to a resent terminate whose first call already took the instance out of its group.
            from moto.autoscaling.exceptions import ValidationError

            raise ValidationError(f"Instance Id not found - No managed instance found for instance ID: {instance_id}")
        if not hooks or group is None:
            return original_terminate(self, instance_id, should_decrement)
        if state.lifecycle_state == "Terminating:Wait":
            return TerminateInstanceActivity(state.instance, group.desired_capacity)
        hook = hooks[0]
        token = str(uuid.uuid4())
        original_size = group.desired_capacity
        state.lifecycle_state = "Terminating:Wait"
        action = PendingLifecycleAction(
            token=token,
            account=self.account_id,
            region=self.region_name,
            group=group.name,
            hook=hook.name,
            instance_id=instance_id,
            heartbeat_timeout=int(hook.heartbeat_timeout or 3600),
            default_result=hook.default_result or "ABANDON",
            started=_time.monotonic(),
        )
        with _LIFECYCLE_LOCK:
            _LIFECYCLE[token] = action
        if should_decrement:
            group.desired_capacity = (group.desired_capacity or 0) - 1
        # Only InService instances count for moto's capacity: without a decrement, a
        # replacement launches while this one waits (as on AWS).
        group.set_desired_capacity(group.desired_capacity)
        detail = {
            "LifecycleActionToken": token,
            "AutoScalingGroupName": group.name,
            "LifecycleHookName": hook.name,
            "EC2InstanceId": instance_id,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        }
        with contextlib.suppress(Exception):
            events_backends[self.account_id][self.region_name].put_events(
                [
                    {
                        "Source": "aws.autoscaling",
                        "DetailType": "EC2 Instance-terminate Lifecycle Action",
                        "Detail": json.dumps(detail),
                        "Resources": [group.arn],
                    }
                ]
            )
        return TerminateInstanceActivity(state.instance, original_size)

    patches.set(AutoScalingBackend, "terminate_instance", terminate_instance)

    def complete_lifecycle_action(self: Any) -> str:
        token = self._get_param("LifecycleActionToken") or self._get_param("InstanceId")
        complete_lifecycle_action_for(token, self._get_param("LifecycleActionResult") or "CONTINUE")
        return (
            '<CompleteLifecycleActionResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">'
            "<CompleteLifecycleActionResult/><ResponseMetadata><RequestId>"
            f"{uuid.uuid4()}</RequestId></ResponseMetadata></CompleteLifecycleActionResponse>"
        )

    patches.set(AutoScalingResponse, "complete_lifecycle_action", complete_lifecycle_action)
    patches.on_undo(lambda: _LIFECYCLE.clear())
