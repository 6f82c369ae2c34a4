"""Manifest validation: defaults a user expects, and errors that name the field and the rule."""

from __future__ import annotations

import copy

import pytest
import yaml

from kubestep.errors import InvalidSpec
from kubestep.models import AWSCluster, AWSManagementService, AWSNodePool, CreateClusterRequest
from kubestep.validation import parse, parse_create_request

from .conftest import EXAMPLES, load_service

SERVICE = load_service(EXAMPLES / "management-service.yaml")
DOCS = list(yaml.safe_load_all((EXAMPLES / "cluster-ha.yaml").read_text()))


def request(**changes) -> dict:
    body = {"cluster": copy.deepcopy(DOCS[0]), "nodePools": copy.deepcopy(DOCS[1:])}
    for path, value in changes.items():
        target = body
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        target[keys[-1]] = value
    return body


def problems(body) -> dict[str, str]:
    with pytest.raises(InvalidSpec) as info:
        parse_create_request(SERVICE, body)
    return dict(info.value.problems)


def test_examples_validate():
    for path in EXAMPLES.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            {"AWSManagementService": AWSManagementService, "AWSCluster": AWSCluster, "AWSNodePool": AWSNodePool}[
                doc["kind"]
            ].model_validate(doc)
    parse_create_request(SERVICE, request())


def test_defaults_match_what_users_expect():
    cluster = AWSCluster.model_validate({"metadata": {"name": "c"}, "spec": {"controlPlane": {"version": "1.35.4"}}})
    cp = cluster.spec.control_plane
    assert (cp.instance_type, cp.root_volume.size_gib, cp.root_volume.volume_type) == ("m5.large", 32, "gp3")
    assert (cp.etcd.main_volume.size_gib, cp.etcd.main_volume.volume_type) == (8, "gp3")
    assert CreateClusterRequest.model_validate({"cluster": DOCS[0]}).rollback_on_failure is True


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"cluster__metadata__name": "Prod"}, "cluster.metadata.name", "is not valid: lower-case letters, digits"),
        ({"cluster__metadata__name": "a" * 41}, "cluster.metadata.name", "at most 40"),
        ({"cluster__spec__controlPlane__version": "1.35"}, "cluster.spec.controlPlane.version", "1.MINOR.PATCH"),
        ({"cluster__spec__controlPlane__version": "1.20.1"}, "cluster.spec.controlPlane.version", "not supported"),
        (
            {"cluster__spec__networking__podAddressCIDRBlocks": ["10.0.0.1/16"]},
            "cluster.spec.networking.podAddressCIDRBlocks",
            "host bits",
        ),
        (
            {"cluster__spec__networking__serviceAddressCIDRBlocks": ["192.168.10.0/24"]},
            "cluster.spec.networking",
            "overlaps",
        ),
        (
            {"cluster__spec__networking__podAddressCIDRBlocks": ["10.0.128.0/17"]},
            "cluster.spec.networking.podAddressCIDRBlocks",
            "overlaps the VPC",
        ),
        (
            {"cluster__spec__controlPlane__availabilityZones": ["us-east-1a", "us-east-1z"]},
            "cluster.spec.controlPlane.availabilityZones",
            "not zones of the management service",
        ),
        (
            {"cluster__spec__controlPlane__availabilityZones": ["us-east-1a", "us-east-1b"]},
            "cluster.spec.controlPlane.availabilityZones",
            "quorum",
        ),
        (
            {"cluster__spec__controlPlane__subnetIDs": ["subnet-0123456789abcdef0"]},
            "cluster.spec.controlPlane",
            "not both",
        ),
        (
            {"cluster__spec__controlPlane__rootVolume": {"sizeGiB": 10, "volumeType": "io2"}},
            "cluster.spec.controlPlane.rootVolume",
            "iops is required",
        ),
        ({"cluster__spec__controlPlane__tags": {"gke:cluster": "x"}}, "cluster.spec.controlPlane.tags", "reserves"),
        (
            {"cluster__spec__controlPlane__instanceTyp": "m5.large"},
            "cluster.spec.controlPlane.instanceTyp",
            "not a known field",
        ),
        ({"nodePools__0__spec__minNodeCount": 7}, "nodePools[0].spec", "must be <= maxNodeCount"),
        ({"nodePools__1__spec__version": "1.29.1"}, "nodePools[1].spec.version", "not supported"),
        ({"nodePools__1__spec__version": "1.36.1"}, "nodePools[1].spec.version", "newer than the control plane"),
        ({"nodePools__0__spec__clusterName": "other"}, "nodePools[0].spec.clusterName", "must be 'prod'"),
        (
            {"nodePools__0__spec__taints": [{"key": "a", "effect": "Sometimes"}]},
            "nodePools[0].spec.taints[0].effect",
            "must be",
        ),
    ],
)
def test_bad_input_names_the_field_and_the_rule(changes, field, rule):
    found = problems(request(**changes))
    assert field in found, found
    assert rule in found[field], found


def test_every_bad_field_is_reported_at_once():
    found = problems(
        request(
            cluster__metadata__name="X", cluster__spec__controlPlane__version="2", nodePools__0__spec__maxNodeCount=0
        )
    )
    assert {"cluster.metadata.name", "cluster.spec.controlPlane.version", "nodePools[0].spec.maxNodeCount"} <= set(
        found
    )


def test_node_pool_skew_two_minors_at_most():
    body = request(cluster__spec__controlPlane__version="1.37.0", nodePools__0__spec__version="1.34.2")
    assert "more than 2 minor" in problems(body)["nodePools[0].spec.version"]
    body = request(
        cluster__spec__controlPlane__version="1.37.0",
        nodePools__0__spec__version="1.35.2",
        nodePools__1__spec__version="1.37.0",
    )
    parse_create_request(SERVICE, body)


def test_duplicate_node_pool_names():
    body = request()
    body["nodePools"][1]["metadata"]["name"] = "general"
    assert "unique" in " ".join(problems(body).values())


def test_management_service_rules():
    base = yaml.safe_load((EXAMPLES / "management-service.yaml").read_text())
    bad = copy.deepcopy(base)
    bad["spec"]["dedicatedVPC"]["privateSubnetCIDRBlocks"] = ["10.0.0.0/19", "10.1.32.0/19", "10.0.64.0/19"]
    with pytest.raises(InvalidSpec) as info:
        parse(AWSManagementService, bad)
    assert "not inside vpcCIDRBlock" in str(info.value)
    both = copy.deepcopy(base)
    both["spec"]["existingVPC"] = {"vpcID": "vpc-0123456789abcdef0", "subnetIDs": ["subnet-0123456789abcdef0"]}
    with pytest.raises(InvalidSpec, match="exactly one of dedicatedVPC or existingVPC"):
        parse(AWSManagementService, both)
    long = copy.deepcopy(base)
    long["metadata"]["name"] = "a" * 25
    with pytest.raises(InvalidSpec, match="at most 24"):
        parse(AWSManagementService, long)


def test_existing_vpc_placement_rules():
    service = load_service(EXAMPLES / "management-service-existing-vpc.yaml")
    body = request()
    with pytest.raises(InvalidSpec) as info:
        parse_create_request(service, body)
    assert "existing VPC" in dict(info.value.problems)["cluster.spec.controlPlane.availabilityZones"]
    del body["cluster"]["spec"]["controlPlane"]["availabilityZones"]
    for pool in body["nodePools"]:
        del pool["spec"]["availabilityZone"]
    parse_create_request(service, body)
