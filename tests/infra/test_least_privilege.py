"""Least privilege, proven on the synthesized template (issue 9 acceptance 6, issue 11 acceptance 5).

- The resource-level IAM check (tests/iam) fails when a function calls an action or a resource its
  role does not grant: each case below is a call a handler could make by mistake, and its correct
  twin passes.
- Per-cluster isolation: each cluster's instance-role policies (kubestep/iam_policies.py)
  intersected with the stack's permissions boundary (as IAM does) keep cluster A's nodes away
  from B's secrets and A's control-plane secret, A's volumes and DNS names away from B, and A's
  report items away from B's; and allow what each role needs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from infra.instance_roles import role_path
from kubestep import backups, iam_policies
from kubestep.bootstrap import bundle
from kubestep.store import keys
from kubestep_local.recorder import CallRecord
from tests.iam.checker import check
from tests.iam.evaluator import Request, evaluate, statements_of
from tests.iam.requests import OPAQUE_ID, Ledger, authorizations, dependent_actions_needing_review
from tests.iam.template import (
    Environment,
    Resolver,
    function_policies,
    managed_policy_statements,
    named_role_policies,
    role_policies,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def resolver(synthesized_template: dict[str, Any]) -> Resolver:
    return Resolver(synthesized_template, Environment(ACCOUNT, REGION))


@pytest.fixture(scope="module")
def policies(synthesized_template, resolver):
    return function_policies(synthesized_template, resolver)


@pytest.fixture(scope="module")
def cluster_tasks(policies) -> str:
    (name,) = [n for n in policies if n.endswith("-cluster-tasks")]
    return name


@pytest.fixture(scope="module")
def service(cluster_tasks) -> str:
    return cluster_tasks.removesuffix("-cluster-tasks")


def _call(function: str, action: str, params: dict, response: dict | None = None) -> CallRecord:
    service, operation = action.split(":")
    return CallRecord(function, "op-1", None, action, service, operation, REGION, params, response)


def _findings(policies, calls: list[CallRecord], ledger: Ledger | None = None) -> list[str]:
    result = check(calls, policies, ledger or Ledger(ACCOUNT))
    return [str(f) for f in result.findings]


def _owned_tags(service: str, uid: str = "u1") -> list[dict[str, str]]:
    return [{"Key": "gke:management-service", "Value": service}, {"Key": "gke:cluster-uid", "Value": uid}]


# ------------------------------------------------------------------ the check can fail


def test_a_call_on_another_services_table_fails_the_check(policies, cluster_tasks, service):
    own = _call(
        cluster_tasks,
        "dynamodb:GetItem",
        {"TableName": f"{service}-kubestep", "Key": {"pk": "NETWORK", "sk": "NETWORK"}},
    )
    other = _call(
        cluster_tasks, "dynamodb:GetItem", {"TableName": "other-kubestep", "Key": {"pk": "NETWORK", "sk": "NETWORK"}}
    )
    assert _findings(policies, [own]) == []
    (finding,) = _findings(policies, [other])
    assert "table/other-kubestep" in finding and "no identity-policy statement allows it" in finding


def test_a_role_created_without_the_boundary_fails_the_check(policies, cluster_tasks, resolver, service):
    boundary = resolver.ref(next(k for k, r in resolver.resources.items() if r["Type"] == "AWS::IAM::ManagedPolicy"))
    params = {"RoleName": "gke-u1-node", "Path": role_path(service, REGION), "Tags": _owned_tags(service)}
    assert (
        _findings(policies, [_call(cluster_tasks, "iam:CreateRole", {**params, "PermissionsBoundary": boundary})]) == []
    )
    findings = _findings(policies, [_call(cluster_tasks, "iam:CreateRole", params)])
    assert any("iam:CreateRole on arn:aws:iam::123456789012:role/kubestep/" in f for f in findings), findings
    # ... and outside the service's path, even with the boundary.
    elsewhere = {**params, "Path": "/", "PermissionsBoundary": boundary}
    assert _findings(policies, [_call(cluster_tasks, "iam:CreateRole", elsewhere)])


def test_tagging_an_existing_resource_fails_the_check_tagging_on_create_passes(policies, cluster_tasks, service):
    create = _call(
        cluster_tasks,
        "ec2:CreateVolume",
        {
            "AvailabilityZone": "us-east-1a",
            "Size": 8,
            "TagSpecifications": [{"ResourceType": "volume", "Tags": _owned_tags(service)}],
        },
        {"VolumeId": "vol-1"},
    )
    assert _findings(policies, [create]) == []
    # Claiming someone's volume by tagging it as the service's (the bypass of every tag condition).
    claim = _call(cluster_tasks, "ec2:CreateTags", {"Resources": ["vol-2"], "Tags": _owned_tags(service)})
    (finding,) = _findings(policies, [claim])
    assert "ec2:CreateTags on arn:aws:ec2:us-east-1:123456789012:volume/vol-2" in finding
    # A create without the service's tag is refused too.
    untagged = _call(
        cluster_tasks, "ec2:CreateVolume", {"AvailabilityZone": "us-east-1a", "Size": 8}, {"VolumeId": "vol-3"}
    )
    assert _findings(policies, [untagged])


def test_deleting_what_the_service_did_not_create_fails_the_check(policies, cluster_tasks, service):
    ledger = Ledger(ACCOUNT)
    ledger.tags[f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-ours"] = {"gke:management-service": service}
    ledger.tags[f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-theirs"] = {"team": "data"}
    ours = _call(cluster_tasks, "ec2:DeleteVolume", {"VolumeId": "vol-ours"})
    theirs = _call(cluster_tasks, "ec2:DeleteVolume", {"VolumeId": "vol-theirs"})
    assert _findings(policies, [ours], ledger) == []
    (finding,) = _findings(policies, [theirs], ledger)
    assert "volume/vol-theirs" in finding


def test_a_group_launching_from_a_foreign_launch_template_fails_the_check(policies, cluster_tasks, service):
    ledger = Ledger(ACCOUNT)
    ledger.tags[f"arn:aws:ec2:{REGION}:{ACCOUNT}:launch-template/lt-ours"] = {"gke:management-service": service}
    group = {
        "AutoScalingGroupName": "gke-u1-np-a",
        "MinSize": 1,
        "MaxSize": 1,
        "VPCZoneIdentifier": "subnet-1",
        "Tags": [{**t, "ResourceId": "gke-u1-np-a", "PropagateAtLaunch": True} for t in _owned_tags(service)],
    }
    ours = _call(
        cluster_tasks,
        "autoscaling:CreateAutoScalingGroup",
        {**group, "LaunchTemplate": {"LaunchTemplateId": "lt-ours"}},
    )
    assert _findings(policies, [ours], ledger) == []
    theirs = _call(
        cluster_tasks, "autoscaling:CreateAutoScalingGroup", {**group, "LaunchTemplate": {"LaunchTemplateId": "lt-x"}}
    )
    (finding,) = _findings(policies, [theirs], ledger)
    assert "ec2:RunInstances on arn:aws:ec2:us-east-1:123456789012:launch-template/lt-x" in finding


def _scheduler_role(resolver: Resolver, service: str) -> tuple[str, str]:
    """(name, ARN) of the Scheduler role as the template makes it (under its path)."""
    path = f"/kubestep/{service}/{REGION}/scheduler/"
    (logical_id,) = [
        k
        for k, r in resolver.resources.items()
        if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("Path") == path
    ]
    name = resolver.ref(logical_id)
    return name, f"arn:aws:iam::{ACCOUNT}:role{path}{name}"


def _create_schedule(api: str, service: str, role_arn: str, machine: str, name: str | None = None) -> CallRecord:
    name = name or f"{service}-upgrade-0a1b2c3d"
    return _call(
        api,
        "scheduler:CreateSchedule",
        {
            "Name": name,
            "GroupName": "default",
            "ScheduleExpression": "at(2026-12-05T03:30:00)",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "DELETE",
            "Target": {
                "Arn": "arn:aws:scheduler:::aws-sdk:sfn:startExecution",
                "RoleArn": role_arn,
                "Input": json.dumps(
                    {"stateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{service}-{machine}"}
                ),
            },
        },
        {"ScheduleArn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{name}"},
    )


def test_a_schedule_hands_scheduler_only_its_role_which_starts_only_upgrades(
    synthesized_template, resolver, policies, service
):
    api = f"{service}-api"
    roles = named_role_policies(synthesized_template, resolver)
    _, scheduler_role = _scheduler_role(resolver, service)

    def findings(call: CallRecord) -> list[str]:
        return [str(f) for f in check([call], policies, Ledger(ACCOUNT), roles=roles).findings]

    assert findings(_create_schedule(api, service, scheduler_role, "UpdateCluster")) == []
    # A schedule that would delete a cluster: the Scheduler role may not start DeleteCluster.
    (finding,) = findings(_create_schedule(api, service, scheduler_role, "DeleteCluster"))
    assert f"states:StartExecution on arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{service}-DeleteCluster" in finding
    # Handing Scheduler a cluster's instance role: the API may not pass it.
    instance_role = f"arn:aws:iam::{ACCOUNT}:role{role_path(service, REGION)}gke-u1-controlplane"
    passed = findings(_create_schedule(api, service, instance_role, "UpdateCluster"))
    assert any(f"iam:PassRole on {instance_role}" in f for f in passed), passed
    # A schedule not named as the service's.
    (named,) = findings(_create_schedule(api, service, scheduler_role, "UpdateCluster", name="other-upgrade-1"))
    assert "scheduler:CreateSchedule" in named and "schedule/default/other-upgrade-1" in named


def test_cluster_tasks_manage_the_instance_roles_under_the_path_not_the_scheduler_role(
    resolver, policies, cluster_tasks, service
):
    name, _ = _scheduler_role(resolver, service)
    ledger = Ledger(ACCOUNT)
    ledger.role_paths["gke-u1-node"] = role_path(service, REGION)
    ledger.role_paths[name] = f"/kubestep/{service}/{REGION}/scheduler/"
    for action, params in (
        ("iam:DeleteRolePolicy", {"PolicyName": "p"}),
        ("iam:DeleteRole", {}),
        ("iam:ListRolePolicies", {}),
    ):
        assert _findings(policies, [_call(cluster_tasks, action, {"RoleName": "gke-u1-node", **params})], ledger) == []
        (finding,) = _findings(policies, [_call(cluster_tasks, action, {"RoleName": name, **params})], ledger)
        assert f"/kubestep/{service}/{REGION}/scheduler/{name}" in finding


def test_completing_a_lifecycle_action_only_on_the_services_groups(policies, cluster_tasks, service):
    ledger = Ledger(ACCOUNT)
    group = "autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName"
    ledger.tags[f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:{group}/gke-u1-np-a"] = {"gke:management-service": service}
    ledger.tags[f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:{group}/gke-u2-np-a"] = {"gke:management-service": "other"}
    params = {"LifecycleHookName": "kubestep-drain", "InstanceId": "i-1", "LifecycleActionResult": "CONTINUE"}
    own = _call(cluster_tasks, "autoscaling:CompleteLifecycleAction", {**params, "AutoScalingGroupName": "gke-u1-np-a"})
    other = _call(
        cluster_tasks, "autoscaling:CompleteLifecycleAction", {**params, "AutoScalingGroupName": "gke-u2-np-a"}
    )
    assert _findings(policies, [own], ledger) == []
    (finding,) = _findings(policies, [other], ledger)
    assert "gke-u2-np-a" in finding


def test_repair_changes_only_the_services_groups_and_listeners(policies, cluster_tasks, service):
    ledger = Ledger(ACCOUNT)
    group = f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:00000000-0000-0000-0000-000000000000"
    listener = (
        f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener/net/gke-u1-cp/50dc6c495c0c9188/f2f7dc8efc522ab2"
    )
    ledger.tags[f"{group}:autoScalingGroupName/gke-u1-cp-0"] = {"gke:management-service": service}
    ledger.tags[listener] = {"gke:management-service": service}
    target_group = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/gke-u1-cp-6443/73e2d6bc24d8a067"

    def attach(name: str) -> CallRecord:
        return _call(
            cluster_tasks,
            "autoscaling:AttachLoadBalancerTargetGroups",
            {"AutoScalingGroupName": name, "TargetGroupARNs": [target_group]},
        )

    def point(arn: str) -> CallRecord:
        forward = [{"Type": "forward", "TargetGroupArn": target_group}]
        return _call(
            cluster_tasks, "elasticloadbalancing:ModifyListener", {"ListenerArn": arn, "DefaultActions": forward}
        )

    assert _findings(policies, [attach("gke-u1-cp-0"), point(listener)], ledger) == []
    # Someone else's group and listener (not tagged as the service's).
    other_listener = listener.replace("gke-u1-cp", "gke-u9-cp")
    ledger.tags[other_listener] = {"team": "web"}
    findings = _findings(policies, [attach("gke-u9-cp-0"), point(other_listener)], ledger)
    assert len(findings) == 2 and "gke-u9-cp-0" in findings[0] and other_listener in findings[1], findings


def test_a_kept_etcd_volume_is_marked_retained_only_with_that_tag_key_and_only_if_the_services(
    policies, cluster_tasks, service
):
    ledger = Ledger(ACCOUNT)
    ledger.tags[f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-ours"] = {"gke:management-service": service}
    ledger.tags[f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-theirs"] = {"team": "data"}

    def tag(volume: str, key: str) -> CallRecord:
        return _call(cluster_tasks, "ec2:CreateTags", {"Resources": [volume], "Tags": [{"Key": key, "Value": "op-1"}]})

    assert _findings(policies, [tag("vol-ours", "gke:retained-by")], ledger) == []
    (theirs,) = _findings(policies, [tag("vol-theirs", "gke:retained-by")], ledger)
    assert "volume/vol-theirs" in theirs
    (other_key,) = _findings(policies, [tag("vol-ours", "gke:cluster-uid")], ledger)
    assert "volume/vol-ours" in other_key


def test_what_an_attempt_made_although_fault_injection_lost_its_answer_is_known_to_the_check(
    resolver, policies, cluster_tasks, service
):
    """A CreateRole that took effect, its answer lost, resent (EntityAlreadyExists): the role's
    path comes from the lost answer (kubestep_local/faults.py ``lost-response``), so the calls
    on it afterwards are checked against the role under the service's path."""
    boundary = resolver.ref(next(k for k, r in resolver.resources.items() if r["Type"] == "AWS::IAM::ManagedPolicy"))
    path = role_path(service, REGION)
    params = {"RoleName": "gke-u1-node", "Path": path, "Tags": _owned_tags(service), "PermissionsBoundary": boundary}
    made = {"Role": {"RoleName": "gke-u1-node", "Path": path, "Arn": f"arn:aws:iam::{ACCOUNT}:role{path}gke-u1-node"}}
    create = CallRecord(
        cluster_tasks,
        "op-1",
        None,
        "iam:CreateRole",
        "iam",
        "CreateRole",
        REGION,
        params,
        None,
        error="EntityAlreadyExists",
        lost_responses=(made,),
    )
    delete = _call(cluster_tasks, "iam:DeleteRole", {"RoleName": "gke-u1-node"})
    assert _findings(policies, [create, delete]) == []
    # Without the lost answer the check knows no such role under the path: a role at `/`.
    forgot = replace(create, lost_responses=())
    (finding,) = _findings(policies, [forgot, delete])
    assert "iam:DeleteRole on arn:aws:iam::123456789012:role/gke-u1-node" in finding


def test_a_call_fault_injection_refused_itself_is_counted_not_evaluated(policies, cluster_tasks):
    """An injected `error` never reached the emulator (a simulated denial): the check counts it and
    evaluates every other call; the same call refused by the emulator is evaluated."""
    params = {"QueueUrl": "https://q/123456789012/gke-u1-x", "MessageBody": "m"}
    injected = CallRecord(
        cluster_tasks,
        "op-1",
        None,
        "sqs:SendMessage",
        "sqs",
        "SendMessage",
        REGION,
        params,
        error="AccessDenied",
        error_injected=True,
    )
    result = check([injected], policies, Ledger(ACCOUNT))
    assert result.findings == [] and result.injected_errors == 1 and result.checked == 0
    refused = CallRecord(
        cluster_tasks, "op-1", None, "sqs:SendMessage", "sqs", "SendMessage", REGION, params, error="AccessDenied"
    )
    assert len(check([refused], policies, Ledger(ACCOUNT)).findings) == 1


def test_an_action_no_statement_grants_fails_the_check(policies, cluster_tasks):
    (finding,) = _findings(
        policies,
        [_call(cluster_tasks, "sqs:SendMessage", {"QueueUrl": "https://q/123456789012/gke-u1-x", "MessageBody": "m"})],
    )
    assert "sqs:SendMessage" in finding


def test_no_function_role_grants_a_wildcard_action(policies):
    for function, role in policies.items():
        for statement in role.statements:
            actions = statement.get("Action", [])
            for action in actions if isinstance(actions, list) else [actions]:
                assert "*" not in action, f"{function}: {action}"


# ------------------------------------------------------------------ per-cluster isolation


@pytest.fixture(scope="module")
def boundary(synthesized_template, resolver) -> list[dict]:
    return managed_policy_statements(synthesized_template, resolver, "-instance-boundary")


def _facts(resolver: Resolver, service: str, uid: str) -> iam_policies.ClusterFacts:
    table = resolver.get_att(
        next(k for k, r in resolver.resources.items() if r["Type"] == "AWS::DynamoDB::Table"), "Arn"
    )
    key = resolver.get_att(next(k for k, r in resolver.resources.items() if r["Type"] == "AWS::KMS::Key"), "Arn")
    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:gke-{uid}"
    return iam_policies.ClusterFacts(
        account=iam_policies.Account("aws", REGION, ACCOUNT),
        service=service,
        uid=uid,
        table_arn=table,
        service_kms_key_arn=key,
        control_plane_secret_arn=f"{secret}-controlplane-Ab12Cd",
        node_secret_arn=f"{secret}-node-Ef34Gh",
        hosted_zone_id="Z0SERVICEZONE",
        dns_domain=f"{service}.kubestep.internal",
        node_termination_queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:gke-{uid}-node-termination",
    )


class Clusters:
    """Two clusters of one service, their resources as the ledger knows them (tags)."""

    def __init__(self, resolver: Resolver, service: str) -> None:
        self.a, self.b = _facts(resolver, service, "aaaa1111"), _facts(resolver, service, "bbbb2222")
        self.table_name = self.a.table_arn.rsplit("/", 1)[1]
        self.ledger = Ledger(ACCOUNT)
        for facts in (self.a, self.b):
            tags = {"gke:management-service": service, "gke:cluster-uid": facts.uid}
            for arn in (facts.control_plane_secret_arn, facts.node_secret_arn):
                self.ledger.tags[arn] = tags
            self.ledger.tags[self.volume(facts)] = tags
            self.ledger.tags[self.instance(facts)] = tags

    def volume(self, facts) -> str:
        return f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-{facts.uid}"

    def instance(self, facts) -> str:
        return f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-{facts.uid}"

    def allowed(
        self, document: dict, boundary: list[dict], action: str, params: dict, instance_arn: str | None = None
    ) -> bool:
        """The call by an instance (`instance_arn`: its requests' ec2:SourceInstanceARN) whose role
        has `document` within `boundary`: its own action (the keys' uses aside)."""
        service, operation = action.split(":")
        record = CallRecord("instance", None, None, action, service, operation, REGION, params, None)
        auths = [a for a in authorizations(self.ledger, record) if a.request.action == action]
        assert auths and not any(a.unresolved for a in auths)
        principal = {"ec2:SourceInstanceARN": instance_arn} if instance_arn else {}
        return all(
            evaluate(
                replace(a.request, context={**principal, **a.request.context}), statements_of(document), boundary
            ).allowed
            for a in auths
        )


@pytest.fixture(scope="module")
def clusters(resolver, service) -> Clusters:
    return Clusters(resolver, service)


def test_a_node_reads_its_own_join_token_only(clusters, boundary):
    node_a = iam_policies.node_policy(clusters.a)
    read = "secretsmanager:GetSecretValue"
    assert clusters.allowed(node_a, boundary, read, {"SecretId": clusters.a.node_secret_arn})
    assert not clusters.allowed(node_a, boundary, read, {"SecretId": clusters.a.control_plane_secret_arn})
    assert not clusters.allowed(node_a, boundary, read, {"SecretId": clusters.b.node_secret_arn})
    assert not clusters.allowed(node_a, boundary, read, {"SecretId": clusters.b.control_plane_secret_arn})


def test_a_control_plane_reads_its_own_cluster_secrets_only(clusters, boundary):
    cp_a = iam_policies.control_plane_policy(clusters.a)
    read = "secretsmanager:GetSecretValue"
    assert clusters.allowed(cp_a, boundary, read, {"SecretId": clusters.a.control_plane_secret_arn})
    assert clusters.allowed(cp_a, boundary, read, {"SecretId": clusters.a.node_secret_arn})
    assert not clusters.allowed(cp_a, boundary, read, {"SecretId": clusters.b.control_plane_secret_arn})


def _item(clusters: Clusters, pk: str, sk: str, **attributes: Any) -> dict:
    item = {"pk": pk, "sk": sk, "status": "ok", "instanceId": "i-1", "reportedAt": "2026-12-05T00:00:00Z", **attributes}
    return {"TableName": clusters.table_name, "Item": item}


def _node_report(clusters: Clusters, facts, instance: str, **attributes: Any) -> dict:
    pk = keys.node_report_pk(facts.uid, clusters.instance(facts).replace(f"i-{facts.uid}", instance))
    return _item(clusters, pk, keys.node_report_sk(instance), **attributes)


def test_a_node_writes_its_own_report_and_nothing_else(clusters, boundary):
    """A node's role reaches one item: its own report, under the partition named by its own
    instance ARN (`${ec2:SourceInstanceARN}`). It cannot forge another node's report, a replica's
    report (the health gate), or the init claim (which would make a later empty-volume replica
    run `kubeadm init` on a running cluster), nor write attributes a report does not have."""
    a = clusters.a
    node_a = iam_policies.node_policy(a)
    me = clusters.instance(a).replace(f"i-{a.uid}", "i-0node1")
    put = "dynamodb:PutItem"
    assert clusters.allowed(node_a, boundary, put, _node_report(clusters, a, "i-0node1"), me)
    assert not clusters.allowed(node_a, boundary, put, _node_report(clusters, a, "i-0node2"), me)
    assert not clusters.allowed(node_a, boundary, put, _node_report(clusters, clusters.b, "i-0node1"), me)
    replica = _item(clusters, keys.bootstrap_pk(a.uid), keys.replica_report_sk(0))
    assert not clusters.allowed(node_a, boundary, put, replica, me)
    claim = _item(clusters, keys.init_claim_pk(a.uid), keys.INIT_CLAIM_SK)
    assert not clusters.allowed(node_a, boundary, put, claim, me)
    reset = {
        "TableName": clusters.table_name,
        "Key": {"pk": keys.init_claim_pk(a.uid), "sk": keys.INIT_CLAIM_SK},
        "UpdateExpression": "REMOVE initializedAt",
    }
    assert not clusters.allowed(node_a, boundary, "dynamodb:UpdateItem", reset, me)
    # An attribute a report does not have (a node listing itself in an index of the table).
    indexed = _node_report(clusters, a, "i-0node1", gsi1pk="CLUSTERS")
    assert not clusters.allowed(node_a, boundary, put, indexed, me)
    # Not an instance's credentials: the policy variable has no value, the statement no effect.
    assert not clusters.allowed(node_a, boundary, put, _node_report(clusters, a, "i-0node1"))


def test_a_replica_claims_init_until_the_cluster_is_initialised_then_only_reads_the_claim(clusters, boundary):
    """The control-plane role writes the replicas' reports and, until the cluster is initialised,
    the init claim (the conditional claim, then `initialized`). Once initialised (the management
    service puts the role's policy again after the health gate), the claim is final: no replica
    can overwrite or reset it, only read it; a replica report still goes through."""
    a = clusters.a
    key = {"pk": keys.init_claim_pk(a.uid), "sk": keys.INIT_CLAIM_SK}
    attributes = {"status": "initializing", "replica": 0, "instanceId": "i-1", "claimedAt": "t"}
    claim = {"TableName": clusters.table_name, "Item": {**key, **attributes}}
    mark = {
        "TableName": clusters.table_name,
        "Key": key,
        "UpdateExpression": "SET #s = :s, initializedAt = :t",
        "ExpressionAttributeNames": {"#s": "status"},
    }
    read = {"TableName": clusters.table_name, "Key": key}
    report = _item(clusters, keys.bootstrap_pk(a.uid), keys.replica_report_sk(1))
    claiming = iam_policies.control_plane_policy(a)
    for action, params in (("dynamodb:PutItem", claim), ("dynamodb:UpdateItem", mark), ("dynamodb:GetItem", read)):
        assert clusters.allowed(claiming, boundary, action, params), action
    assert clusters.allowed(claiming, boundary, "dynamodb:PutItem", report)
    initialised = iam_policies.control_plane_policy(replace(a, initialized=True))
    assert not clusters.allowed(initialised, boundary, "dynamodb:PutItem", claim)
    assert not clusters.allowed(initialised, boundary, "dynamodb:UpdateItem", mark)
    assert clusters.allowed(initialised, boundary, "dynamodb:GetItem", read)
    assert clusters.allowed(initialised, boundary, "dynamodb:PutItem", report)
    # The replicas' partition holds reports only: the claim is not reachable through it, and a
    # replica writes neither nodes' reports nor another cluster's items.
    assert not clusters.allowed(claiming, boundary, "dynamodb:PutItem", _node_report(clusters, a, "i-0node1"))
    other = _item(clusters, keys.bootstrap_pk(clusters.b.uid), keys.replica_report_sk(0))
    assert not clusters.allowed(claiming, boundary, "dynamodb:PutItem", other)
    service_item = _item(clusters, "NETWORK", "NETWORK")
    assert not clusters.allowed(claiming, boundary, "dynamodb:PutItem", service_item)


def test_a_replica_takes_and_finishes_version_claims_for_the_clusters_life_and_a_node_never(clusters, boundary):
    """The once-per-version claims (`UPGRADE#<v>`, `ADDONS#<v>`) have their own partition: the
    control-plane role takes them (a conditional put), marks them done and reads them, before and
    after the init claim is sealed (upgrades come later), with a claim's attributes only. A node
    writes none; a replica cannot put a claim into the reports' partition (the attributes a report
    has not) nor into the sealed init partition, nor touch another cluster's claims."""
    a = clusters.a
    sk = keys.addons_claim_sk("1.37.1")
    key = {"pk": keys.version_claim_pk(a.uid), "sk": sk}
    attributes = {"status": "applying", "replica": 0, "instanceId": "i-1", "claimedAt": "t"}
    take = {
        "TableName": clusters.table_name,
        "Item": {**key, **attributes},
        "ConditionExpression": (
            "attribute_not_exists(pk) OR (#s = :busy AND (replica = :replica OR claimedAt < :stale))"
        ),
        "ExpressionAttributeNames": {"#s": "status"},
    }
    done = {
        "TableName": clusters.table_name,
        "Key": key,
        "UpdateExpression": "SET #s = :s, doneAt = :t",
        "ExpressionAttributeNames": {"#s": "status"},
    }
    read = {"TableName": clusters.table_name, "Key": key}
    calls = (("dynamodb:PutItem", take), ("dynamodb:UpdateItem", done), ("dynamodb:GetItem", read))
    for initialized in (False, True):
        policy = iam_policies.control_plane_policy(replace(a, initialized=initialized))
        for action, params in calls:
            assert clusters.allowed(policy, boundary, action, params), (initialized, action)
    claiming = iam_policies.control_plane_policy(a)
    # Only a claim's attributes there (not a report's `checks`, not an index key).
    report_like = {**take, "Item": {**take["Item"], "checks": {}}}
    assert not clusters.allowed(claiming, boundary, "dynamodb:PutItem", report_like)
    # A claim in the reports' partition, or in the init claim's once sealed: refused.
    in_reports = {**take, "Item": {**take["Item"], "pk": keys.bootstrap_pk(a.uid)}}
    assert not clusters.allowed(claiming, boundary, "dynamodb:PutItem", in_reports)
    sealed = iam_policies.control_plane_policy(replace(a, initialized=True))
    in_init = {**take, "Item": {**take["Item"], "pk": keys.init_claim_pk(a.uid)}}
    assert not clusters.allowed(sealed, boundary, "dynamodb:PutItem", in_init)
    other = {**take, "Item": {**take["Item"], "pk": keys.version_claim_pk(clusters.b.uid)}}
    assert not clusters.allowed(claiming, boundary, "dynamodb:PutItem", other)
    node_a = iam_policies.node_policy(a)
    me = clusters.instance(a).replace(f"i-{a.uid}", "i-0node1")
    for action, params in calls:
        assert not clusters.allowed(node_a, boundary, action, params, me), action


def test_a_control_plane_attaches_only_its_own_clusters_volumes(clusters, boundary):
    cp_a = iam_policies.control_plane_policy(clusters.a)
    own = {"VolumeId": f"vol-{clusters.a.uid}", "InstanceId": f"i-{clusters.a.uid}", "Device": "/dev/xvdf"}
    other = {"VolumeId": f"vol-{clusters.b.uid}", "InstanceId": f"i-{clusters.a.uid}", "Device": "/dev/xvdf"}
    assert clusters.allowed(cp_a, boundary, "ec2:AttachVolume", own)
    assert not clusters.allowed(cp_a, boundary, "ec2:AttachVolume", other)
    # Nodes attach no volume at all.
    assert not clusters.allowed(iam_policies.node_policy(clusters.a), boundary, "ec2:AttachVolume", own)


def _record(name: str) -> dict:
    return {
        "HostedZoneId": "Z0SERVICEZONE",
        "ChangeBatch": {
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": "A",
                        "TTL": 30,
                        "ResourceRecords": [{"Value": "10.0.0.5"}],
                    },
                }
            ]
        },
    }


def test_a_control_plane_changes_only_its_own_clusters_dns_names(clusters, boundary):
    cp_a = iam_policies.control_plane_policy(clusters.a)
    domain = clusters.a.dns_domain
    change = "route53:ChangeResourceRecordSets"
    assert clusters.allowed(cp_a, boundary, change, _record(f"cp-0.{clusters.a.uid}.{domain}"))
    assert not clusters.allowed(cp_a, boundary, change, _record(f"cp-0.{clusters.b.uid}.{domain}"))
    assert not clusters.allowed(cp_a, boundary, change, _record(f"api.{domain}"))
    assert not clusters.allowed(
        iam_policies.node_policy(clusters.a), boundary, change, _record(f"cp-0.{clusters.a.uid}.{domain}")
    )


def test_the_boundary_caps_a_policy_that_grants_more(clusters, boundary):
    """A per-cluster policy widened by mistake still cannot read another service's secrets or
    write outside the bootstrap partitions: the boundary intersects it."""
    wide = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "dynamodb:PutItem"], "Resource": "*"}
        ],
    }
    foreign_secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:gke-cccc3333-node-Zz99Yy"
    clusters.ledger.tags[foreign_secret] = {"gke:management-service": "another"}
    assert not clusters.allowed(wide, boundary, "secretsmanager:GetSecretValue", {"SecretId": foreign_secret})
    item = {"TableName": clusters.table_name, "Item": {"pk": "CLUSTER#x", "sk": "CLUSTER"}}
    assert not clusters.allowed(wide, boundary, "dynamodb:PutItem", item)


def _backup_bucket(resolver: Resolver) -> str:
    bucket = next(k for k, r in resolver.resources.items() if r["Type"] == "AWS::S3::Bucket")
    return resolver.ref(bucket)


def _every_authorization_allowed(clusters: Clusters, document: dict, boundary: list[dict], action: str, params: dict):
    """The call and what AWS authorizes with it (the object's tags, the bucket key through S3),
    each evaluated as IAM would for the role within the boundary."""
    service, operation = action.split(":")
    record = CallRecord("instance", None, None, action, service, operation, REGION, params, None)
    auths = authorizations(clusters.ledger, record)
    assert auths and not any(a.unresolved for a in auths)
    return {a.request.action: evaluate(a.request, statements_of(document), boundary).allowed for a in auths}


def test_a_control_plane_backs_up_to_and_restores_from_its_own_clusters_prefix_only(clusters, boundary, resolver):
    """The leader uploads a snapshot with its retention tag (the object, its tags and the bucket
    key's data key through S3); a restore downloads it. Another cluster's prefix, the bucket's
    root and a node are refused."""
    bucket = _backup_bucket(resolver)
    key = next(k for k, r in resolver.resources.items() if r["Type"] == "AWS::KMS::Key")
    clusters.ledger.bucket_keys[bucket] = resolver.get_att(key, "Arn")
    cp_a = iam_policies.control_plane_policy(replace(clusters.a, backup_bucket=bucket))
    node_a = iam_policies.node_policy(replace(clusters.a, backup_bucket=bucket))

    def upload(uid: str) -> dict:
        return {
            "Bucket": bucket,
            "Key": backups.object_key(uid, "20261205T101500Z"),
            "Tagging": "kubestep-retention-days=7",
        }

    granted = _every_authorization_allowed(clusters, cp_a, boundary, "s3:PutObject", upload(clusters.a.uid))
    assert granted == {"s3:PutObject": True, "s3:PutObjectTagging": True, "kms:GenerateDataKey": True}
    download = {"Bucket": bucket, "Key": backups.object_key(clusters.a.uid, "20261205T101500Z")}
    assert _every_authorization_allowed(clusters, cp_a, boundary, "s3:GetObject", download) == {
        "s3:GetObject": True,
        "kms:Decrypt": True,
    }
    other = _every_authorization_allowed(clusters, cp_a, boundary, "s3:PutObject", upload(clusters.b.uid))
    assert not other["s3:PutObject"] and not other["s3:PutObjectTagging"]
    root = {"Bucket": bucket, "Key": "backups/snapshot.db"}
    assert not _every_authorization_allowed(clusters, cp_a, boundary, "s3:PutObject", root)["s3:PutObject"]
    from_b = {"Bucket": bucket, "Key": backups.object_key(clusters.b.uid, "20261205T101500Z")}
    assert not _every_authorization_allowed(clusters, cp_a, boundary, "s3:GetObject", from_b)["s3:GetObject"]
    assert not any(
        _every_authorization_allowed(clusters, node_a, boundary, "s3:PutObject", upload(clusters.a.uid)).values()
    )


def test_the_backup_key_is_granted_only_through_s3(clusters, boundary, resolver):
    """The bucket key's data key, asked for directly (not by S3 on the instance's behalf), is refused."""
    bucket = _backup_bucket(resolver)
    key_arn = resolver.get_att(next(k for k, r in resolver.resources.items() if r["Type"] == "AWS::KMS::Key"), "Arn")
    cp_a = iam_policies.control_plane_policy(replace(clusters.a, backup_bucket=bucket))
    direct = Request("kms:GenerateDataKey", key_arn, {})
    via_s3 = Request("kms:GenerateDataKey", key_arn, {"kms:ViaService": f"s3.{REGION}.amazonaws.com"})
    assert evaluate(via_s3, statements_of(cp_a), boundary).allowed
    assert not evaluate(direct, statements_of(cp_a), boundary).allowed


def test_instances_read_their_own_clusters_bootstrap_bundles_only(clusters, boundary, resolver):
    """A replica's and a node's loader download their cluster's bundle (the object and the bucket
    key's decrypt through S3); another cluster's bundle, a backup's prefix for a node, and any
    write of a bundle are refused."""
    bucket = _backup_bucket(resolver)
    key = next(k for k, r in resolver.resources.items() if r["Type"] == "AWS::KMS::Key")
    clusters.ledger.bucket_keys[bucket] = resolver.get_att(key, "Arn")
    facts = replace(clusters.a, backup_bucket=bucket)
    documents = {"control plane": iam_policies.control_plane_policy(facts), "node": iam_policies.node_policy(facts)}

    def get(uid: str) -> dict:
        return {"Bucket": bucket, "Key": bundle.object_key(uid, "ab" * 32)}

    for role, document in documents.items():
        own = _every_authorization_allowed(clusters, document, boundary, "s3:GetObject", get(clusters.a.uid))
        assert own == {"s3:GetObject": True, "kms:Decrypt": True}, role
        other = _every_authorization_allowed(clusters, document, boundary, "s3:GetObject", get(clusters.b.uid))
        assert not other["s3:GetObject"], role
        write = _every_authorization_allowed(clusters, document, boundary, "s3:PutObject", get(clusters.a.uid))
        assert not write["s3:PutObject"], role
    backup = {"Bucket": bucket, "Key": backups.object_key(clusters.a.uid, "20261205T101500Z")}
    assert not _every_authorization_allowed(clusters, documents["node"], boundary, "s3:GetObject", backup)[
        "s3:GetObject"
    ]


def test_the_cluster_tasks_write_and_delete_bundles_only_under_the_bootstrap_prefix(policies, cluster_tasks, resolver):
    bucket = _backup_bucket(resolver)
    key = next(k for k, r in resolver.resources.items() if r["Type"] == "AWS::KMS::Key")
    ledger = Ledger(ACCOUNT)
    ledger.bucket_keys[bucket] = resolver.get_att(key, "Arn")
    bundle_key = bundle.object_key("u1", "ab" * 32)
    calls = [
        # HeadObject and ListObjectsV2, as the recorder names them (their IAM actions).
        _call(cluster_tasks, "s3:GetObject", {"Bucket": bucket, "Key": bundle_key}),
        _call(cluster_tasks, "s3:PutObject", {"Bucket": bucket, "Key": bundle_key}),
        _call(cluster_tasks, "s3:ListBucket", {"Bucket": bucket, "Prefix": bundle.cluster_prefix("u1")}),
        _call(cluster_tasks, "s3:DeleteObject", {"Bucket": bucket, "Key": bundle_key}),
    ]
    assert _findings(policies, calls, ledger) == []
    backup = backups.object_key("u1", "20261205T101500Z")
    for action in ("s3:PutObject", "s3:DeleteObject"):
        assert _findings(policies, [_call(cluster_tasks, action, {"Bucket": bucket, "Key": backup})], ledger)
    listing = _call(cluster_tasks, "s3:ListBucket", {"Bucket": bucket, "Prefix": "backups/"})
    assert _findings(policies, [listing], ledger)


# ------------------------------------------------------------------ what a call implies


def _instance_role_calls(cluster_tasks: str, resolver: Resolver, service: str, uid: str) -> list[CallRecord]:
    """ClusterTasks making a cluster's node role and profile as kubestep does."""
    boundary = resolver.ref(next(k for k, r in resolver.resources.items() if r["Type"] == "AWS::IAM::ManagedPolicy"))
    path = role_path(service, REGION)
    name = f"gke-{uid}-node"
    tags = _owned_tags(service, uid)
    return [
        _call(
            cluster_tasks,
            "iam:CreateRole",
            {"RoleName": name, "Path": path, "Tags": tags, "PermissionsBoundary": boundary},
            {"Role": {"RoleName": name, "Path": path, "Arn": f"arn:aws:iam::{ACCOUNT}:role{path}{name}"}},
        ),
        _call(
            cluster_tasks,
            "iam:CreateInstanceProfile",
            {"InstanceProfileName": name, "Path": path, "Tags": tags},
            {"InstanceProfile": {"Arn": f"arn:aws:iam::{ACCOUNT}:instance-profile{path}{name}"}},
        ),
        _call(cluster_tasks, "iam:AddRoleToInstanceProfile", {"InstanceProfileName": name, "RoleName": name}),
    ]


def _launch_template(cluster_tasks: str, service: str, uid: str, profile_uid: str, template_id: str) -> CallRecord:
    """A node pool's launch template as kubestep makes it (resources/instances.py): the instance
    and volume tags of the cluster `uid`, the instance profile of the cluster `profile_uid`."""
    tags = _owned_tags(service, uid)
    profile = f"arn:aws:iam::{ACCOUNT}:instance-profile{role_path(service, REGION)}gke-{profile_uid}-node"
    data = {
        "ImageId": "ami-0123456789abcdef0",
        "InstanceType": "m5.large",
        "IamInstanceProfile": {"Arn": profile},
        "SecurityGroupIds": ["sg-1"],
        "BlockDeviceMappings": [{"DeviceName": "/dev/sda1", "Ebs": {"Encrypted": True, "VolumeSize": 20}}],
        "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}],
    }
    return _call(
        cluster_tasks,
        "ec2:CreateLaunchTemplate",
        {
            "LaunchTemplateName": f"gke-{uid}-np-a",
            "LaunchTemplateData": data,
            "TagSpecifications": [{"ResourceType": "launch-template", "Tags": tags}],
        },
        {"LaunchTemplate": {"LaunchTemplateId": template_id, "LaunchTemplateName": f"gke-{uid}-np-a"}},
    )


def _group(cluster_tasks: str, service: str, uid: str, template_id: str, operation: str = "Create") -> CallRecord:
    params: dict[str, Any] = {
        "AutoScalingGroupName": f"gke-{uid}-np-a",
        "LaunchTemplate": {"LaunchTemplateId": template_id, "Version": "$Latest"},
        "MinSize": 1,
        "MaxSize": 3,
    }
    if operation == "Create":
        params["VPCZoneIdentifier"] = "subnet-1"
        params["Tags"] = [
            {**t, "ResourceId": f"gke-{uid}-np-a", "ResourceType": "auto-scaling-group", "PropagateAtLaunch": False}
            for t in _owned_tags(service, uid)
        ]
    return _call(cluster_tasks, f"autoscaling:{operation}AutoScalingGroup", params)


def _cluster_ledger(service: str) -> Ledger:
    ledger = Ledger(ACCOUNT)
    ledger.tags[f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-1"] = {"gke:management-service": service}
    ledger.tags[f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-1"] = {"gke:management-service": service}
    return ledger


def test_a_group_launching_from_its_tagged_launch_template_is_granted(policies, cluster_tasks, resolver, service):
    """Amazon EC2 Auto Scaling User Guide, "Amazon EC2 Auto Scaling API permissions": creating or
    updating a group with a launch template that carries tags needs ec2:CreateTags for what
    RunInstances creates (ec2:CreateAction = RunInstances), ec2:RunInstances and iam:PassRole;
    AddRoleToInstanceProfile passes the role too (IAM API Reference)."""
    calls = [
        *_instance_role_calls(cluster_tasks, resolver, service, "u1"),
        _launch_template(cluster_tasks, service, "u1", "u1", "lt-1"),
        _group(cluster_tasks, service, "u1", "lt-1"),
        _group(cluster_tasks, service, "u1", "lt-1", "Update"),
    ]
    ledger = _cluster_ledger(service)
    ledger.tags[
        f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:{OPAQUE_ID}:autoScalingGroupName/gke-u1-np-a"
    ] = {"gke:management-service": service}
    result = check(calls, policies, ledger)
    assert not result.findings, result.summary()
    implied = {a.request.action for c in calls for a in authorizations(_cluster_ledger(service), c) if a.implied_by}
    assert {"ec2:CreateTags", "ec2:RunInstances", "iam:PassRole", "iam:CreateServiceLinkedRole"} <= implied


def test_a_launch_template_of_one_cluster_cannot_launch_with_another_clusters_instance_profile(
    policies, cluster_tasks, resolver, service
):
    """PassRole of a cluster's role only into that cluster's launches: RunInstances (which Auto
    Scaling authorizes as the group's creator) refuses an instance whose profile is a kubestep
    profile of another uid than the launch's own `gke:cluster-uid` tag."""
    calls = [
        *_instance_role_calls(cluster_tasks, resolver, service, "uaaa"),
        *_instance_role_calls(cluster_tasks, resolver, service, "ubbb"),
        _launch_template(cluster_tasks, service, "uaaa", "uaaa", "lt-own"),
        _group(cluster_tasks, service, "uaaa", "lt-own"),
    ]
    assert _findings(policies, calls, _cluster_ledger(service)) == []
    borrowed = [
        *calls[:6],
        _launch_template(cluster_tasks, service, "uaaa", "ubbb", "lt-borrowed"),
        _group(cluster_tasks, service, "uaaa", "lt-borrowed"),
    ]
    findings = _findings(policies, borrowed, _cluster_ledger(service))
    assert any(f"ec2:RunInstances on arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*" in f for f in findings), findings


def test_an_encrypted_launch_under_the_service_key_is_allowed_to_the_auto_scaling_service_linked_role(
    synthesized_template, resolver, policies, cluster_tasks, service
):
    """Amazon EC2 Auto Scaling User Guide, "Required AWS KMS key policy for use with encrypted
    volumes": the key policy must let AWSServiceRoleForAutoScaling use the key and create grants
    for AWS resources (no identity policy can), else launches fail with Client.InternalError."""
    key_id = next(k for k, r in resolver.resources.items() if r["Type"] == "AWS::KMS::Key")
    key = resolver.get_att(key_id, "Arn")
    key_policy = resolver.resolve(resolver.resources[key_id]["Properties"]["KeyPolicy"]["Statement"])
    template = _launch_template(cluster_tasks, service, "u1", "u1", "lt-1")
    template.params["LaunchTemplateData"]["BlockDeviceMappings"][0]["Ebs"]["KmsKeyId"] = key
    calls = [
        *_instance_role_calls(cluster_tasks, resolver, service, "u1"),
        template,
        _group(cluster_tasks, service, "u1", "lt-1"),
    ]

    def findings(statements: list[dict]) -> list[str]:
        ledger = _cluster_ledger(service)
        ledger.key_policies[key] = statements
        return [str(f) for f in check(calls, policies, ledger).findings if "AWSServiceRoleForAutoScaling" in f.reason]

    assert findings(key_policy) == []
    without = [s for s in key_policy if "AutoScaling" not in str(s.get("Sid", ""))]
    assert len(without) == len(key_policy) - 2
    assert any("kms:CreateGrant" in f for f in findings(without)), findings(without)


def test_every_dependent_action_of_every_granted_action_is_reviewed(synthesized_template, resolver):
    """Every action any role of the template (and any instance role) may call: each dependent
    action the Service Authorization Reference lists for it is modelled by the check or ruled out
    with the reason (tests/iam/requests.py DEPENDENT_ACTIONS)."""
    actions = set(iam_policies.boundary_actions())
    for role in role_policies(synthesized_template, resolver).values():
        for statement in [*role.statements, *(role.boundary or [])]:
            granted = statement.get("Action", [])
            actions |= set(granted if isinstance(granted, list) else [granted])
    assert "autoscaling:CreateAutoScalingGroup" in actions and "iam:AddRoleToInstanceProfile" in actions
    assert not dependent_actions_needing_review(actions)


def test_only_cluster_tasks_deletes_backup_versions_and_only_under_the_backups_prefix(
    policies, cluster_tasks, resolver
):
    """DeleteCluster with deleteBackups lists one incarnation's versions and deletes them
    (kubestep/backup_deletion.py): granted to ClusterTasks on the backups prefix; the same calls
    outside it, or made by any other function, fail the check."""
    bucket = _backup_bucket(resolver)
    prefix = backups.cluster_prefix("u1")
    key = backups.object_key("u1", "20261205T101500Z")

    def calls(function: str, list_prefix: str, delete_key: str) -> list[CallRecord]:
        return [
            _call(function, "s3:ListObjectVersions", {"Bucket": bucket, "Prefix": list_prefix}),
            _call(
                function,
                "s3:DeleteObjects",
                {"Bucket": bucket, "Delete": {"Objects": [{"Key": delete_key, "VersionId": "v1"}], "Quiet": True}},
            ),
        ]

    assert _findings(policies, calls(cluster_tasks, prefix, key)) == []
    outside = _findings(policies, calls(cluster_tasks, "other/", "other/u1.db"))
    assert len(outside) == 2 and "s3:ListBucketVersions" in outside[0] and "s3:DeleteObjectVersion" in outside[1]
    for function in policies:
        if function != cluster_tasks:
            found = _findings(policies, calls(function, prefix, key))
            assert len(found) == 2, f"{function} may delete backups: {found}"
