"""The workflows' rendered ASL run by a small in-process interpreter against in-process moto:
fast feedback on the domain logic, in the very order the declarations render (the workflow
tests run the same definitions through moto's real ASL interpreter)."""

from __future__ import annotations

import boto3
import pytest
import yaml

from kubestep.store import Store
from kubestep_local import existing_vpc

from .asl_runner import ExecutionFailed, Interpreter
from .conftest import EXAMPLES, configure, load_service


def provision(settings, store):
    run = Interpreter("ProvisionNetwork", settings, store).run({}, "provision-network")
    assert run.entered[-1] == "Provisioned"
    return run


def report_all(settings, store: Store, uid: str) -> None:
    """Play every instance's part: write an `ok` bootstrap report."""
    asg = boto3.client("autoscaling")
    for group in asg.describe_auto_scaling_groups()["AutoScalingGroups"]:
        tags = {t["Key"]: t["Value"] for t in group["Tags"]}
        if tags.get("gke:cluster-uid") != uid:
            continue
        for inst in group["Instances"]:
            if tags["gke:role"] == "control-plane":
                members = store.etcd.config(tags["gke:cluster"]).members
                checks = {"etcdMembers": members, "etcdHealthy": True, "apiserverReady": True}
                replica = int(tags["gke:replica"])
            else:
                # Ready and initialised by the cloud controller manager (providerID set, taint gone).
                provider = f"aws:///{inst['AvailabilityZone']}/{inst['InstanceId']}"
                checks = {"nodeReady": True, "nodeInitialized": True, "providerID": provider}
                replica = None
            arn = settings.account.arn("ec2", f"instance/{inst['InstanceId']}")
            store.reports.write(
                uid, status="ok", instance_id=inst["InstanceId"], replica=replica, instance_arn=arn, checks=checks
            )


def create(settings, store, request, name="create-op1"):
    def report(payload):
        record = store.clusters.get(payload["clusterName"])
        report_all(settings, store, record.uid)

    hooks = {"CheckReplicaHealth": report, "CheckNodePoolHealth": report}
    return Interpreter("CreateCluster", settings, store, hooks=hooks).run(request, name)


# The console path: an execution's input names the administrators (nothing proves who started it).
ADMIN = "arn:aws:iam::123456789012:role/platform/Admin"


def ha_request():
    docs = list(yaml.safe_load_all((EXAMPLES / "cluster-ha.yaml").read_text()))
    docs[0]["spec"]["authentication"] = {"awsIAM": {"adminIdentityARNs": [ADMIN]}}
    return {"cluster": docs[0], "nodePools": docs[1:]}


def test_create_and_delete_ha_cluster_in_process(monkeypatch, store):
    settings = configure(monkeypatch, load_service(EXAMPLES / "management-service.yaml"))
    provision(settings, store)
    run = create(settings, store, ha_request())
    assert run.entered[-1] == "Created"
    record = store.clusters.require("prod")
    assert record.phase == "RUNNING" and record.endpoint
    assert [m.index for m in store.etcd.members("prod")] == [0, 1, 2]
    assert store.locks.get("prod") is None
    assert store.operations.get("create-op1").status == "SUCCEEDED"

    delete = Interpreter("DeleteCluster", settings, store).run({"clusterName": "prod"}, "delete-op2")
    assert delete.entered[-1] == "Deleted"
    assert store.clusters.get("prod") is None
    assert store.clusters.owner_of_uid(record.uid) is None
    assert [e.reason for e in store.events.list("prod")][-1] == "Deleted"


def test_identity_fields_in_the_input_are_refused(monkeypatch, store):
    settings = configure(monkeypatch, load_service(EXAMPLES / "management-service.yaml"))
    provision(settings, store)
    with pytest.raises(ExecutionFailed) as info:
        create(settings, store, {**ha_request(), "uid": "abcdefgh", "operationId": "create-x-1"})
    assert info.value.error == "InvalidSpec" and "uid" in info.value.cause and "operationId" in info.value.cause


def test_existing_vpc_with_one_subnet_puts_three_replicas_in_it(monkeypatch, store):
    from kubestep.models import AWSManagementService

    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.50.1.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    # What preflight asks of an existing VPC: DNS hostnames on, and a way out.
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    existing_vpc.ensure_egress(ec2, vpc, subnet)
    manifest = yaml.safe_load((EXAMPLES / "management-service-existing-vpc.yaml").read_text())
    manifest["spec"]["existingVPC"] = {"vpcID": vpc, "subnetIDs": [subnet]}
    settings = configure(monkeypatch, AWSManagementService.model_validate(manifest))
    run = provision(settings, store)
    assert "EnsureVpc" not in run.entered and "ValidateExistingNetwork" in run.entered
    request = ha_request()
    del request["cluster"]["spec"]["controlPlane"]["availabilityZones"]
    request["nodePools"] = request["nodePools"][:1]
    del request["nodePools"][0]["spec"]["availabilityZone"]
    create(settings, store, request)
    uid = store.clusters.require("prod").uid
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


def test_zone_ids_name_the_same_zones_in_the_network_and_the_cluster(monkeypatch, store):
    """A manifest may name zones by ID (use1-az1: the same physical zone in every account; names
    are shuffled per account). Subnets are made by ID; volumes (CreateVolume takes a name) go
    in the zone AWS put the subnets in."""
    from kubestep.models import AWSManagementService

    ids = {z["ZoneName"]: z["ZoneId"] for z in boto3.client("ec2").describe_availability_zones()["AvailabilityZones"]}
    manifest = yaml.safe_load((EXAMPLES / "management-service.yaml").read_text())
    names = manifest["spec"]["dedicatedVPC"]["availabilityZones"]
    # Reversed, so a zone ID read as a name (or the other way round) would land elsewhere.
    chosen = [ids[n] for n in reversed(names)]
    manifest["spec"]["dedicatedVPC"]["availabilityZones"] = chosen
    settings = configure(monkeypatch, AWSManagementService.model_validate(manifest))
    provision(settings, store)
    request = ha_request()
    request["cluster"]["spec"]["controlPlane"]["availabilityZones"] = chosen
    for pool in request["nodePools"]:
        pool["spec"]["availabilityZone"] = chosen[0]
    assert create(settings, store, request).entered[-1] == "Created"
    ec2 = boto3.client("ec2")
    network = store.network.get()
    for zone_id in chosen:
        entry = network.zones[zone_id]
        subnet = ec2.describe_subnets(SubnetIds=[entry.private_subnet_id])["Subnets"][0]
        assert subnet["AvailabilityZoneId"] == zone_id and entry.zone_name == subnet["AvailabilityZone"]
    for member in store.etcd.members("prod"):
        volume = ec2.describe_volumes(VolumeIds=[member.volume_id])["Volumes"][0]
        assert ids[volume["AvailabilityZone"]] == member.zone == chosen[member.index]


def test_zone_ids_of_another_region_are_refused():
    from pydantic import ValidationError

    from kubestep.models import AWSManagementService

    manifest = yaml.safe_load((EXAMPLES / "management-service.yaml").read_text())
    manifest["spec"]["dedicatedVPC"]["availabilityZones"] = ["use1-az1", "usw2-az1", "use1-az3"]
    with pytest.raises(ValidationError) as info:
        AWSManagementService.model_validate(manifest)
    assert "['usw2-az1'] are not in region us-east-1" in str(info.value)
