"""Draining nodes without the Lambdas reaching into the cluster: each node pool's Auto Scaling
group has a termination lifecycle hook; EventBridge routes the cluster's lifecycle events
(`EC2 Instance-terminate Lifecycle Action` for its own groups only) to the cluster's own SQS
queue; the AWS Node Termination Handler, installed by the bootstrap in queue mode on the
control plane, drains the node and completes the lifecycle action. One queue per cluster: the
handler drops (and deletes) messages for instances of other clusters.

(aws-node-termination-handler's queue-processor setup: docs/queue-processor.md.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from kubestep import naming
from kubestep.aws import client
from kubestep.aws.errors import Kind, is_not_found
from kubestep.flow.steps import step
from kubestep.resources.context import ClusterContext
from kubestep.resources.kind import MISSING, DeleteStep, Found, ResourceKind, Scope
from kubestep.store import Resource

LIFECYCLE_EVENT = "EC2 Instance-terminate Lifecycle Action"
# How long a node may take to drain before Auto Scaling goes on without the handler.
# Longer than the roll's drain deadline (node_pool_rollout.DRAIN_DEADLINE), so the roll warns first.
HEARTBEAT_TIMEOUT_SECONDS = 900


def queue_url(ctx: ClusterContext) -> str:
    """The queue's URL in the form AWS gives it (the instances reach the real endpoint)."""
    account = ctx.settings.account
    suffix = "amazonaws.com.cn" if account.partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{account.region}.{suffix}/{account.account}/{naming.termination_queue(ctx.uid)}"


def queue_arn(ctx: ClusterContext) -> str:
    return ctx.settings.account.arn("sqs", naming.termination_queue(ctx.uid))


def _pattern(uid: str) -> dict:
    return {
        "source": ["aws.autoscaling"],
        "detail-type": [LIFECYCLE_EVENT],
        "detail": {"AutoScalingGroupName": [{"prefix": naming.node_pool(uid, "")}]},
    }


def _queue_as_wanted(sqs: Any, name: str, attributes: dict[str, str]) -> str | None:
    """The queue's URL if it exists with these attributes (a re-run keeps it), else None."""
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except Exception as exc:
        if is_not_found(exc, Kind.QUEUE):
            return None
        raise
    have = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(attributes))["Attributes"]
    same = all(
        json.loads(have.get(k) or "null") == json.loads(v) if k == "Policy" else have.get(k) == v
        for k, v in attributes.items()
    )
    return url if same else None


def _rule_as_wanted(events: Any, name: str, pattern: dict) -> bool:
    try:
        rule = events.describe_rule(Name=name)
    except Exception as exc:
        if is_not_found(exc, Kind.EVENT_RULE):
            return False
        raise
    return rule.get("State") == "ENABLED" and json.loads(rule.get("EventPattern") or "null") == pattern


@step(creates=True)
def ensure_termination_queue(ctx: ClusterContext) -> dict:
    """The cluster's queue of node-termination messages and the EventBridge rule that fills it."""
    sqs = client("sqs", ctx.settings.region)
    events = client("events", ctx.settings.region)
    name = naming.termination_queue(ctx.uid)
    rule_name = naming.termination_rule(ctx.uid)
    rule_arn = ctx.settings.account.arn("events", f"rule/{rule_name}")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ClusterLifecycleEvents",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn(ctx),
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }
    attributes = {"SqsManagedSseEnabled": "true", "MessageRetentionPeriod": "3600", "Policy": json.dumps(policy)}
    url = _queue_as_wanted(sqs, name, attributes)
    if url is None:  # CreateQueue is idempotent for the same name and attributes
        url = sqs.create_queue(QueueName=name, Attributes=attributes, tags=ctx.tags(Name=name))["QueueUrl"]
    if ctx.resource_id(Resource.TERMINATION_QUEUE) != queue_arn(ctx):
        ctx.record_resource(Resource.TERMINATION_QUEUE, queue_arn(ctx))
    if not _rule_as_wanted(events, rule_name, _pattern(ctx.uid)):
        events.put_rule(
            Name=rule_name,
            EventPattern=json.dumps(_pattern(ctx.uid)),
            State="ENABLED",
            Description=f"kubestep cluster {ctx.name}: node-termination lifecycle events to its queue",
            Tags=naming.ec2_tags(ctx.tags(Name=rule_name)),
        )
    targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]
    if not any(t["Id"] == "termination-queue" and t["Arn"] == queue_arn(ctx) for t in targets):
        events.put_targets(Rule=rule_name, Targets=[{"Id": "termination-queue", "Arn": queue_arn(ctx)}])
    if ctx.resource_id(Resource.TERMINATION_RULE) != rule_arn:
        ctx.record_resource(Resource.TERMINATION_RULE, rule_arn)
    return {"queue": url}


def ensure_drain_hook(ctx: ClusterContext, group_name: str) -> None:
    """The node pool group's termination lifecycle hook (put only when missing or different)."""
    hooks = ctx.autoscaling.describe_lifecycle_hooks(
        AutoScalingGroupName=group_name, LifecycleHookNames=[naming.DRAIN_HOOK]
    )["LifecycleHooks"]
    wanted = ("autoscaling:EC2_INSTANCE_TERMINATING", HEARTBEAT_TIMEOUT_SECONDS, "CONTINUE")
    if any((h["LifecycleTransition"], h.get("HeartbeatTimeout"), h.get("DefaultResult")) == wanted for h in hooks):
        return
    ctx.autoscaling.put_lifecycle_hook(
        LifecycleHookName=naming.DRAIN_HOOK,
        AutoScalingGroupName=group_name,
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=HEARTBEAT_TIMEOUT_SECONDS,
        DefaultResult="CONTINUE",
    )


@step
def delete_termination_queue(ctx: ClusterContext, scope: str) -> dict:
    """The rule (targets first) and the queue."""
    sqs = client("sqs", ctx.settings.region)
    events = client("events", ctx.settings.region)
    rule_name = naming.termination_rule(ctx.uid)
    deleted = []
    try:
        tags = naming.tags_dict(
            events.list_tags_for_resource(ResourceARN=ctx.settings.account.arn("events", f"rule/{rule_name}"))["Tags"]
        )
        if ctx.owned(tags, scope):
            targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]
            if targets:
                events.remove_targets(Rule=rule_name, Ids=[t["Id"] for t in targets])
            events.delete_rule(Name=rule_name)
            deleted.append(rule_name)
    except Exception as exc:
        if not is_not_found(exc, Kind.EVENT_RULE):
            raise
    try:
        url = sqs.get_queue_url(QueueName=naming.termination_queue(ctx.uid))["QueueUrl"]
        if ctx.owned(sqs.list_queue_tags(QueueUrl=url).get("Tags", {}), scope):
            sqs.delete_queue(QueueUrl=url)
            deleted.append(naming.termination_queue(ctx.uid))
    except Exception as exc:
        if not is_not_found(exc, Kind.QUEUE):
            raise
    return {"deleted": deleted}


# ---------------------------------------------------------------- the kinds: queue and rule

NAME_PREFIX = "gke-"  # every cluster's queue and rule name starts so (naming.termination_queue)


def find_queues(scope: Scope, uid: str | None) -> Iterator[Found]:
    sqs = scope.clients("sqs")
    if uid:
        try:
            urls = [sqs.get_queue_url(QueueName=naming.termination_queue(uid))["QueueUrl"]]
        except Exception as exc:
            if not is_not_found(exc, Kind.QUEUE):
                raise
            urls = []
    else:
        pages = sqs.get_paginator("list_queues").paginate(QueueNamePrefix=NAME_PREFIX)
        urls = [url for page in pages for url in page.get("QueueUrls", [])]
    for url in urls:
        try:
            tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
            created = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["CreatedTimestamp"])["Attributes"]
        except Exception as exc:
            if is_not_found(exc, Kind.QUEUE):
                continue  # deleted since it was listed
            raise
        # Epoch seconds (AWS answers an integer; the emulator a float).
        when = datetime.fromtimestamp(float(created["CreatedTimestamp"]), UTC)
        found = scope.found(uid, url.rsplit("/", 1)[-1], tags, when, url=url)
        if found:
            yield found


def find_rules(scope: Scope, uid: str | None) -> Iterator[Found]:
    """EventBridge gives a rule no creation time: the sweep dates it by when it first saw it."""
    events = scope.clients("events")
    prefix = naming.termination_rule(uid) if uid else NAME_PREFIX
    rules = [r for page in events.get_paginator("list_rules").paginate(NamePrefix=prefix) for r in page["Rules"]]
    for rule in rules:
        try:
            tags = naming.tags_dict(events.list_tags_for_resource(ResourceARN=rule["Arn"])["Tags"])
        except Exception as exc:
            if is_not_found(exc, Kind.EVENT_RULE):
                continue
            raise
        found = scope.found(uid, rule["Name"], tags, arn=rule["Arn"])
        if found:
            yield found


def queue_drift(ctx: ClusterContext, found: dict[str, str]) -> dict[str, str]:
    if any(True for _ in find_queues(Scope(lambda s: client(s, ctx.settings.region)), ctx.uid)):
        return {}
    return {Resource.TERMINATION_QUEUE.value: MISSING}


def rule_drift(ctx: ClusterContext, found: dict[str, str]) -> dict[str, str]:
    """The rule, sending the cluster's lifecycle events to its queue."""
    events = client("events", ctx.settings.region)
    name = naming.termination_rule(ctx.uid)
    try:
        targets = events.list_targets_by_rule(Rule=name)["Targets"]
    except Exception as exc:
        if not is_not_found(exc, Kind.EVENT_RULE):
            raise
        return {Resource.TERMINATION_RULE.value: MISSING}
    if queue_arn(ctx) not in [t["Arn"] for t in targets]:
        return {Resource.TERMINATION_RULE.value: "does not send to the cluster's termination queue"}
    return {}


# One step deletes both: the rule (its targets first), then the queue it sends to.
RULES = ResourceKind(
    "eventRules",
    label="EventBridge rule",
    find=find_rules,
    ensure=("EnsureTerminationQueue",),
    delete=(DeleteStep(delete_termination_queue),),
    needs=("terminationQueues",),
    drift=rule_drift,
)
QUEUES = ResourceKind(
    "terminationQueues",
    label="SQS queue",
    find=find_queues,
    ensure=("EnsureTerminationQueue",),
    delete=(DeleteStep(delete_termination_queue),),
    drift=queue_drift,
)
