"""Everything the local runtime knows about moto's internals, in one package, a module per AWS
service.

The runtime patches moto and reads its backends directly (in-process). Those are moto's private
parts, verified against one moto release: importing this package asserts that release, and
every other module of ``kubestep_local`` goes through the names below instead of importing moto.
``tests/local/test_seam_guard.py`` checks the call sites patched here against moto's source.

What is here:

- the version pin (``check_moto_version``), reversible patches (``PatchSet``) and the state gate
  (``core``);
- the emulator's HTTP server (``server``) and its route to moto's response classes around Flask
  (``direct_dispatch``);
- per service (``stepfunctions``, ``awslambda``, ``ec2``, ``elbv2``, ``autoscaling``,
  ``events``, ``iam``, ``s3``, ``secretsmanager``, ``dynamodb``, ``ssm``): each patch, named for what
  it makes moto do as AWS does, saying the moto behaviour it corrects and the AWS documentation
  it follows; and read access to that service's backend as plain data (``FunctionInfo``,
  ``ExecutionInfo``, ...);
- the groups of patches the runtime applies (below): bugs, AWS's answers to a resent call,
  speed, and AWS's intermediate states (``model_latency``);
- state snapshots (``snapshots``).

moto itself is imported lazily (importing it costs about a second), so importing this package
is cheap and works without moto to report a clear error.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from kubestep.checkout import local_install_hint
from kubestep_local.moto_compat import (
    autoscaling,
    dynamodb,
    ec2,
    elbv2,
    events,
    iam,
    secretsmanager,
    server,
    stepfunctions,
)
from kubestep_local.moto_compat.autoscaling import (
    AutoScalingGroupInfo,
    PendingLifecycleAction,
    autoscaling_groups,
    complete_lifecycle_action_for,
    emulate_lifecycle_hooks,
    expire_lifecycle_actions,
    pending_lifecycle_actions,
)
from kubestep_local.moto_compat.awslambda import (
    EXECUTION_HEADER,
    FunctionInfo,
    InvocationRefused,
    LambdaRunner,
    append_function_log,
    lambda_functions,
    route_lambda_invocations,
)
from kubestep_local.moto_compat.core import (
    ACCOUNT_ID,
    GATE,
    PINNED_MOTO_VERSION,
    REQUEST_LOCK,
    PatchSet,
    StateGate,
    gated_path,
)
from kubestep_local.moto_compat.dynamodb import DYNAMODB_DATA_OPERATIONS
from kubestep_local.moto_compat.ec2 import instance_running, instance_state, instance_user_data, instance_zone
from kubestep_local.moto_compat.elbv2 import keep_load_balancers_provisioning
from kubestep_local.moto_compat.events import RuleInfo, event_rules, render_input_transformer
from kubestep_local.moto_compat.latency import LatencyHooks, gated
from kubestep_local.moto_compat.server import (
    NOISY_LOGGERS,
    ServerHandle,
    deterministic_ids,
    enable_asl_execution,
    reset_backends,
    start_server,
)
from kubestep_local.moto_compat.snapshots import (
    ABORTED_ON_RESTORE_CAUSE,
    ABORTED_ON_RESTORE_ERROR,
    SNAPSHOT_FORMAT,
    RestoredState,
    SnapshotError,
    restore_state,
    snapshot_state,
)
from kubestep_local.moto_compat.ssm import UBUNTU_IMAGE_NAMES, publish_ubuntu_images
from kubestep_local.moto_compat.stepfunctions import (
    ExecutionInfo,
    WaitObserver,
    bind_step_functions,
    execution_history,
    execution_status,
    executions,
    on_execution_end,
    on_execution_start,
    scale_asl_waits,
    stop_execution,
    stop_running_executions,
)


class MotoVersionError(RuntimeError):
    """moto is missing, or not the release this package's patches are verified against."""


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


def fix_interpreter_bugs(patches: PatchSet) -> None:
    """moto 5.2.5 bugs that real Step Functions, EC2 and EventBridge do not have; each has a
    test in tests/local."""
    stepfunctions.keep_stopped_executions_aborted(patches)
    stepfunctions.fail_executions_whose_map_iteration_was_aborted(patches)
    ec2.release_nat_gateway_addresses(patches)
    ec2.store_template_versions_alike(patches)
    events.scheduled_rules_match_no_events(patches)


def match_aws_semantics(patches: PatchSet) -> None:
    """Answers moto 5.2.5 gives differently from AWS where kubestep's idempotency depends on
    them; each has a test in tests/local/test_aws_semantics.py. A retried call (botocore resends
    a request whose response was lost) must meet AWS's answer, not a second resource."""
    ec2.create_volume_once_per_token(patches)
    ec2.create_template_version_once_per_token(patches)
    elbv2.create_load_balancer_once(patches)
    elbv2.create_target_group_once(patches)
    elbv2.create_listener_once(patches)
    iam.remove_absent_role_answers_no_such_entity(patches)
    secretsmanager.name_scheduled_for_deletion_is_invalid_request(patches)


def fix_moto_performance(patches: PatchSet) -> None:
    """What moto 5.2.5 does on every request that costs more than the request (the emulator is
    one Python process: its CPU is the local runtime's bottleneck). The answers stay the same."""
    ec2.look_tags_up_by_id(patches)
    ec2.list_instances_without_copies(patches)
    dynamodb.send_items_as_built(patches)
    dynamodb.roll_back_only_touched_items(patches)
    dynamodb.copy_updated_items_only_for_streams(patches)
    dynamodb.parse_each_update_expression_once(patches)
    dynamodb.traverse_update_trees_by_node_type(patches)
    dynamodb.search_update_trees_by_node_type(patches)
    dynamodb.check_each_update_text_once(patches)
    dynamodb.lex_each_condition_expression_once(patches)
    dynamodb.query_only_matching_items(patches)
    dynamodb.build_item_json_in_one_pass(patches)
    dynamodb.read_old_image_without_a_copy(patches)
    dynamodb.size_items_in_one_pass(patches)
    dynamodb.project_only_the_named_attributes(patches)
    dynamodb.build_items_in_one_pass(patches)
    server.cache_request_routing(patches)
    server.draw_random_strings_without_choice(patches)
    server.skip_debug_form_wrapping(patches)
    server.look_attribute_aliases_up_once(patches)
    server.find_response_transformers_once(patches)
    server.read_plain_dict_members_directly(patches)
    server.validate_xml_names_once(patches)
    server.parse_query_parameters_from_a_dict(patches)
    server.parse_each_timestamp_text_once(patches)
    stepfunctions.parse_each_definition_once(patches)
    stepfunctions.compile_json_paths_once(patches)


def model_latency(patches: PatchSet, hooks: LatencyHooks) -> None:
    """Keep resources in AWS's intermediate states for as long as ``hooks.delay`` says: moto
    settles everything at once. Each patch wraps moto's own call (after the groups above) and
    changes only the state the caller sees, or when moto's next step happens; with a delay of 0
    moto's own behaviour is unchanged."""
    later = gated(hooks)
    ec2.nat_gateways_take_time(patches, hooks, later)
    elbv2.load_balancers_take_time(patches, hooks, later)
    ec2.security_groups_wait_for_interfaces(patches)
    ec2.volumes_take_time(patches, hooks)
    ec2.instances_take_time(patches, hooks, later)
    autoscaling.group_instances_take_time(patches, later)
    autoscaling.groups_take_time_to_delete(patches, hooks, later)
    elbv2.targets_take_time(patches, hooks)


__all__ = [
    "ABORTED_ON_RESTORE_CAUSE",
    "ABORTED_ON_RESTORE_ERROR",
    "ACCOUNT_ID",
    "DYNAMODB_DATA_OPERATIONS",
    "EXECUTION_HEADER",
    "GATE",
    "NOISY_LOGGERS",
    "PINNED_MOTO_VERSION",
    "REQUEST_LOCK",
    "SNAPSHOT_FORMAT",
    "UBUNTU_IMAGE_NAMES",
    "AutoScalingGroupInfo",
    "ExecutionInfo",
    "FunctionInfo",
    "InvocationRefused",
    "LambdaRunner",
    "LatencyHooks",
    "MotoVersionError",
    "PatchSet",
    "PendingLifecycleAction",
    "RestoredState",
    "RuleInfo",
    "ServerHandle",
    "SnapshotError",
    "StateGate",
    "WaitObserver",
    "append_function_log",
    "autoscaling_groups",
    "bind_step_functions",
    "check_moto_version",
    "complete_lifecycle_action_for",
    "deterministic_ids",
    "emulate_lifecycle_hooks",
    "enable_asl_execution",
    "event_rules",
    "execution_history",
    "execution_status",
    "executions",
    "expire_lifecycle_actions",
    "fix_interpreter_bugs",
    "fix_moto_performance",
    "gated_path",
    "instance_running",
    "instance_state",
    "instance_user_data",
    "instance_zone",
    "keep_load_balancers_provisioning",
    "lambda_functions",
    "match_aws_semantics",
    "model_latency",
    "on_execution_end",
    "on_execution_start",
    "pending_lifecycle_actions",
    "publish_ubuntu_images",
    "render_input_transformer",
    "reset_backends",
    "restore_state",
    "route_lambda_invocations",
    "scale_asl_waits",
    "snapshot_state",
    "start_server",
    "stop_execution",
    "stop_running_executions",
]
