"""The task functions in the state machines' order against in-process moto: fast feedback on
the domain logic (the workflow tests run the same through the real ASL)."""

from __future__ import annotations

import yaml

from kubestep.errors import ResourcePending
from kubestep.workflows import cluster as cluster_tasks
from kubestep.workflows import network as network_tasks

from .conftest import EXAMPLES, configure, load_service


def run(tasks, name, event, settings, registry, *, retries=50):
    for _ in range(retries):
        try:
            return tasks[name](event, settings, registry)
        except ResourcePending:
            continue
    raise AssertionError(f"{name} stayed pending")


def provision(settings, registry):
    ev = {"operationId": "provision-network", "executionArn": None}
    for step in ["BeginProvision", "EnsureVpc", "EnsureInternetGateway", "EnsureSubnets"]:
        run(network_tasks.TASKS, step, ev, settings, registry)
    for zone in settings.service.zones:
        run(network_tasks.TASKS, "EnsureNatGateway", {**ev, "zone": zone}, settings, registry)
    for step in [
        "CheckNatGateways",
        "EnsureRouteTables",
        "EnsureVpcEndpoints",
        "MarkNetworkReady",
        "FinishNetworkOperation",
    ]:
        run(network_tasks.TASKS, step, ev, settings, registry)


def report_all(registry, settings, uid):
    import boto3

    from kubestep.bootstrap_report import record_report

    asg = boto3.client("autoscaling")
    for group in asg.describe_auto_scaling_groups()["AutoScalingGroups"]:
        tags = {t["Key"]: t["Value"] for t in group["Tags"]}
        for inst in group["Instances"]:
            key = (
                f"REPLICA#{tags['gke:replica']}"
                if tags["gke:role"] == "control-plane"
                else f"NODE#{inst['InstanceId']}"
            )
            record_report(settings.table_name, uid, tags["gke:role"], key, "ok", inst["InstanceId"])


def create(settings, registry, request):
    T = cluster_tasks.TASKS
    v = T["ValidateCreateRequest"]({"request": request, "executionName": "op1"}, settings, registry)
    ctx = {"clusterName": v["clusterName"], "operationId": v["operationId"]}
    lock = T["AcquireCreateLock"](
        {"request": request, "operationId": "op1", "executionArn": "arn:x"}, settings, registry
    )
    for step in [
        "EnsureSecurityGroups",
        "TagSubnets",
        "EnsureLoadBalancer",
        "CheckLoadBalancerActive",
        "EnsureBootstrapSecret",
    ]:
        run(T, step, ctx, settings, registry)
    replicas = T["PlanReplicas"](ctx, settings, registry)["replicas"]
    assert replicas == [0, 1, 2]
    for r in replicas:
        for step in ["EnsureEtcdVolume", "EnsureReplicaLaunchTemplate", "EnsureReplicaGroup"]:
            run(T, step, {**ctx, "replica": r}, settings, registry)
    report_all(registry, settings, lock["uid"])
    for r in replicas:
        run(T, "CheckReplicaHealth", {**ctx, "replica": r}, settings, registry)
    pools = T["ListNodePools"](ctx, settings, registry)["nodePools"]
    for p in pools:
        for step in ["EnsureNodePoolLaunchTemplate", "EnsureNodePoolGroup"]:
            run(T, step, {**ctx, "nodePool": p}, settings, registry)
    report_all(registry, settings, lock["uid"])
    for p in pools:
        run(T, "CheckNodePoolHealth", {**ctx, "nodePool": p}, settings, registry)
    out = T["MarkClusterRunning"](ctx, settings, registry)
    assert out["phase"] == "RUNNING" and out["endpoint"]
    T["ReleaseClusterLock"](ctx, settings, registry)
    return lock["uid"]


def test_create_and_delete_ha_cluster_in_process(monkeypatch, registry):
    settings = configure(monkeypatch, load_service(EXAMPLES / "management-service.yaml"))
    provision(settings, registry)
    docs = list(yaml.safe_load_all((EXAMPLES / "cluster-ha.yaml").read_text()))
    create(settings, registry, {"cluster": docs[0], "nodePools": docs[1:]})
    T = cluster_tasks.TASKS
    d = T["ValidateDeleteRequest"]({"request": {"clusterName": "prod"}, "executionName": "op2"}, settings, registry)
    dctx = {"clusterName": "prod", "operationId": d["operationId"]}
    T["AcquireDeleteLock"]({**dctx, "executionArn": "arn:y"}, settings, registry)
    for step in [
        "DeleteNodePoolGroups",
        "DeleteControlPlaneGroups",
        "CheckInstancesGone",
        "DeleteEtcdVolumes",
        "DeleteLoadBalancer",
        "DeleteTargetGroup",
        "DeleteLaunchTemplates",
        "DeleteSecurityGroups",
        "DeleteKubernetesResources",
        "UntagSubnets",
        "DeleteBootstrapSecret",
        "DeleteClusterRecord",
    ]:
        run(T, step, {**dctx, "scope": "cluster"}, settings, registry)
    assert registry.get_cluster("prod") is None
    assert [e["reason"] for e in registry.list_events("prod")][-1] == "Deleted"


def test_existing_vpc_with_one_subnet_puts_three_replicas_in_it(monkeypatch, registry):
    import boto3

    from kubestep.models import AWSManagementService

    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.50.1.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    manifest = yaml.safe_load((EXAMPLES / "management-service-existing-vpc.yaml").read_text())
    manifest["spec"]["existingVPC"] = {"vpcID": vpc, "subnetIDs": [subnet]}
    settings = configure(monkeypatch, AWSManagementService.model_validate(manifest))
    ev = {"operationId": "provision-network", "executionArn": None}
    for step in ["BeginProvision", "ValidateExistingNetwork", "MarkNetworkReady", "FinishNetworkOperation"]:
        network_tasks.TASKS[step](ev, settings, registry)
    docs = list(yaml.safe_load_all((EXAMPLES / "cluster-ha.yaml").read_text()))
    cluster = docs[0]
    del cluster["spec"]["controlPlane"]["availabilityZones"]
    pool = docs[1]
    del pool["spec"]["availabilityZone"]
    uid = create(settings, registry, {"cluster": cluster, "nodePools": [pool]})
    groups = boto3.client("autoscaling").describe_auto_scaling_groups(
        Filters=[
            {"Name": "tag:gke:cluster-uid", "Values": [uid]},
            {"Name": "tag:gke:role", "Values": ["control-plane"]},
        ]
    )["AutoScalingGroups"]
    assert len(groups) == 3
    assert {g["VPCZoneIdentifier"] for g in groups} == {subnet}
    volumes = boto3.client("ec2").describe_volumes(
        Filters=[{"Name": "tag:gke:cluster-uid", "Values": [uid]}, {"Name": "tag:gke:role", "Values": ["etcd"]}]
    )["Volumes"]
    assert sorted(v["AvailabilityZone"] for v in volumes) == ["us-east-1b"] * 3
    lb = boto3.client("elbv2").describe_load_balancers()["LoadBalancers"][0]
    assert [z["SubnetId"] for z in lb["AvailabilityZones"]] == [subnet]
