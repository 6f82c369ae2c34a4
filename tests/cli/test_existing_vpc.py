"""Issue 11, the existing-VPC case end to end, as a user runs it: `kubestep local up
--existing-vpc` makes a stand-in VPC with one private subnet (someone else's: their tags, nothing
of kubestep's) and deploys an existing-VPC management service over it; a cluster there gets its
three replicas in that one subnet; deleting the cluster and deprovisioning the network leave the
VPC and the subnet exactly as they were, tags included."""

from __future__ import annotations

import os
import shutil
import time

import yaml

from kubestep import inventory

from .test_cli_local import ROOT, SHARED_HOME, _endpoint, _up, clients, kubestep

HOME = SHARED_HOME / f"existing-vpc-{os.getpid()}"


def _snapshot(ec2, vpc_id: str) -> dict:
    """What a person sees of their VPC: its attributes, its subnets with their tags."""
    vpc = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    tags = lambda r: sorted((t["Key"], t["Value"]) for t in r.get("Tags", []))  # noqa: E731
    return {
        "vpc": (vpc["CidrBlock"], vpc["State"], tags(vpc)),
        "subnets": sorted((s["SubnetId"], s["CidrBlock"], s["AvailabilityZone"], tuple(tags(s))) for s in subnets),
    }


def test_a_cluster_in_an_existing_vpc_leaves_it_as_it_was(tmp_path):
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    up = _up(HOME, "--existing-vpc")
    assert up.returncode == 0, up.stderr + up.stdout
    try:
        make = clients(_endpoint(up.stdout))
        ec2 = make("ec2")
        vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:owner", "Values": ["network-team"]}])["Vpcs"][0]
        before = _snapshot(ec2, vpc["VpcId"])
        assert len(before["subnets"]) == 1
        subnet_id = before["subnets"][0][0]

        docs = list(yaml.safe_load_all((ROOT / "examples" / "cluster-ha.yaml").read_text()))
        cluster, pool = docs[0], docs[1]
        cluster["metadata"]["name"] = "shared-prod"
        del cluster["spec"]["controlPlane"]["availabilityZones"]  # one subnet: all replicas in it
        pool["spec"]["clusterName"] = "shared-prod"
        pool["spec"].pop("availabilityZone", None)
        manifest = tmp_path / "cluster.yaml"
        manifest.write_text(yaml.safe_dump_all([cluster, pool], sort_keys=False))
        applied = kubestep("apply", "-f", str(manifest), "--wait", home=HOME)
        assert applied.returncode == 0, applied.stderr + applied.stdout
        listed = kubestep("get", "cluster", "shared-prod", "-o", "json", home=HOME)
        uid = yaml.safe_load(listed.stdout)["metadata"]["uid"]
        groups = make("autoscaling").describe_auto_scaling_groups(
            Filters=[
                {"Name": "tag:gke:cluster-uid", "Values": [uid]},
                {"Name": "tag:gke:role", "Values": ["control-plane"]},
            ]
        )["AutoScalingGroups"]
        assert len(groups) == 3 and {g["VPCZoneIdentifier"] for g in groups} == {subnet_id}

        deleted = kubestep("delete", "cluster", "shared-prod", "--wait", home=HOME)
        assert deleted.returncode == 0, deleted.stderr + deleted.stdout
        assert inventory.count(inventory.cluster_resources(uid, make)) == 0
        sfn = make("stepfunctions")
        machine = next(
            m["stateMachineArn"]
            for m in sfn.list_state_machines()["stateMachines"]
            if m["name"].endswith("-DeprovisionNetwork")
        )
        arn = sfn.start_execution(stateMachineArn=machine, name="deprovision-existing", input="{}")["executionArn"]
        deadline = time.monotonic() + 300
        while (status := sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING":
            assert time.monotonic() < deadline, "DeprovisionNetwork still running"
            time.sleep(0.5)
        assert status == "SUCCEEDED", sfn.describe_execution(executionArn=arn).get("cause")
        assert _snapshot(ec2, vpc["VpcId"]) == before
    finally:
        down = kubestep("local", "down", home=HOME, timeout=120)
        assert down.returncode == 0, down.stderr
        shutil.rmtree(HOME, ignore_errors=True)
