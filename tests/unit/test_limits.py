"""Input that would fail late or starve the management service is refused before anything is
created, naming the field and the rule (issue 7, defect 4)."""

from __future__ import annotations

import copy

import boto3
import pytest

from kubestep.errors import InvalidSpec
from kubestep.store import NetworkRecord
from kubestep.validation import parse_create_request
from kubestep.workflows.cluster_steps import check_references

from .conftest import EXAMPLES, configure, load_service
from .test_steps_in_process import ha_request

SERVICE = load_service(EXAMPLES / "management-service.yaml")


def problems(request: dict) -> dict[str, str]:
    with pytest.raises(InvalidSpec) as info:
        parse_create_request(SERVICE, request)
    return dict(info.value.problems)


def changed(path: str, value) -> dict:
    request = copy.deepcopy(ha_request())
    node = request
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = value
    return request


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        ("cluster.spec.controlPlane.version", "1.032.4", "cluster.spec.controlPlane.version", "leading zeros"),
        (
            "cluster.spec.controlPlane.version",
            "1.35.99999999999999999999",
            "cluster.spec.controlPlane.version",
            "1.MINOR",
        ),
        (
            "cluster.spec.controlPlane.version",
            "1.35.999",
            "cluster.spec.controlPlane.version",
            "not a published release",
        ),
        ("cluster.spec.controlPlane.version", "1.29.1", "cluster.spec.controlPlane.version", "not supported"),
        (
            "cluster.spec.controlPlane.instanceType",
            "nope.nope",
            "cluster.spec.controlPlane.instanceType",
            "not an EC2 instance type",
        ),
        (
            "cluster.spec.networking.podAddressCIDRBlocks",
            ["10.200.0.0/32"],
            "cluster.spec.networking.podAddressCIDRBlocks",
            "too small",
        ),
        (
            "cluster.spec.networking.serviceAddressCIDRBlocks",
            ["10.96.0.0/30"],
            "cluster.spec.networking.serviceAddressCIDRBlocks",
            "10th address",
        ),
        (
            "cluster.spec.networking.serviceAddressCIDRBlocks",
            ["10.0.0.0/8"],
            "cluster.spec.networking.serviceAddressCIDRBlocks",
            "/12",
        ),
    ],
)
def test_versions_types_and_ranges(path, value, field, words):
    found = problems(changed(path, value))
    assert field in found and words in found[field], found


def test_a_thousand_node_pool_does_not_fit_the_pod_range_or_one_operation():
    request = ha_request()
    request["nodePools"][0]["spec"].update(minNodeCount=1000, maxNodeCount=1000)
    found = problems(request)
    assert "holds 256 nodes" in found["cluster.spec.networking.podAddressCIDRBlocks"]
    assert "at most 100 instances" in found["nodePools[1].spec.minNodeCount"] or any(
        "at most 100 instances" in rule for rule in found.values()
    )


def test_labels_and_taints_beyond_the_tag_limit():
    request = ha_request()
    spec = request["nodePools"][0]["spec"]
    spec["labels"] = {f"l{i}": "x" for i in range(60)}
    spec["taints"] = [{"key": f"t{i}", "value": "x", "effect": "NoSchedule"} for i in range(10)]
    found = problems(request)
    assert "AWS allows 50" in found["nodePools[0].spec"]


def test_a_large_but_legal_request_passes():
    request = ha_request()
    spec = request["nodePools"][0]["spec"]
    spec["labels"] = {f"l{i}": "x" for i in range(20)}
    spec.update(minNodeCount=40, maxNodeCount=200)
    assert parse_create_request(SERVICE, request).node_pools[0].spec.max_node_count == 200


def test_referenced_ids_must_exist(aws, monkeypatch):
    settings = configure(monkeypatch, SERVICE)
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    other_vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    elsewhere = ec2.create_security_group(GroupName="x", Description="x", VpcId=other_vpc)["GroupId"]
    request = ha_request()
    cp = request["cluster"]["spec"]["controlPlane"]
    cp.update(instanceType="m5.64xlarge", securityGroupIDs=["sg-0123456789abcdef0", elsewhere], keyName="nobody")
    request["nodePools"][0]["spec"]["iamInstanceProfile"] = "no-such-profile"
    parsed = parse_create_request(SERVICE, request)
    with pytest.raises(InvalidSpec) as info:
        check_references(settings, NetworkRecord(status="READY", vpc_id=vpc), parsed)
    found = dict(info.value.problems)
    assert "m5.64xlarge does not exist" in found["cluster.spec.controlPlane.instanceType"]
    assert "does not exist" in found["cluster.spec.controlPlane.securityGroupIDs[0]"]
    assert "not the cluster's VPC" in found["cluster.spec.controlPlane.securityGroupIDs[1]"]
    assert "key pair 'nobody'" in found["cluster.spec.controlPlane.keyName"]
    assert "no-such-profile" in found["nodePools[0].spec.iamInstanceProfile"]
    # And a request naming only what exists passes.
    check_references(settings, NetworkRecord(status="READY", vpc_id=vpc), parse_create_request(SERVICE, ha_request()))
