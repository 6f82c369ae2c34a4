"""CreateCluster and DeleteCluster through the real ASL and handlers in the emulator."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json

import pytest

from kubestep import inventory, naming
from kubestep.bootstrap import bundle

from .conftest import ha_request


def run(runtime, workflow, payload, name):
    return runtime.run_execution(workflow, payload, name=name, check=False, timeout=300)


def tags(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


@pytest.fixture(scope="module")
def ha_cluster(runtime, store):
    result = run(runtime, "CreateCluster", ha_request("prod"), "create-prod-1")
    assert result["status"] == "SUCCEEDED", result.get("cause")
    return store.clusters.get("prod")


def test_network_has_three_public_three_private_subnets_and_three_nat_gateways(runtime, store):
    network = store.network.get()
    assert network.status == "READY"
    ec2 = runtime.boto3_client("ec2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [network.vpc_id]}])["Subnets"]
    roles = sorted(tags(s)["gke:network-role"].split("-")[0] for s in subnets)
    assert roles == ["private"] * 3 + ["public"] * 3
    assert len({s["AvailabilityZone"] for s in subnets}) == 3
    nats = ec2.describe_nat_gateways(Filter=[{"Name": "vpc-id", "Values": [network.vpc_id]}])["NatGateways"]
    assert len([n for n in nats if n["State"] == "available"]) == 3
    public = {z.public_subnet_id for z in network.zones.values()}
    assert {n["SubnetId"] for n in nats} == public


def test_ha_cluster_is_running_with_the_nlb_dns_as_endpoint(ha_cluster, runtime):
    assert ha_cluster.phase == "RUNNING"
    lb = runtime.boto3_client("elbv2").describe_load_balancers(Names=[naming.load_balancer(ha_cluster.uid)])
    assert ha_cluster.endpoint == lb["LoadBalancers"][0]["DNSName"]


def test_internal_nlb_in_private_subnets_with_security_group(ha_cluster, runtime, store):
    elbv2 = runtime.boto3_client("elbv2")
    lb = elbv2.describe_load_balancers(Names=[naming.load_balancer(ha_cluster.uid)])["LoadBalancers"][0]
    assert lb["Scheme"] == "internal" and lb["Type"] == "network"
    assert lb["SecurityGroups"], "the NLB needs a security group at creation"
    private = {z.private_subnet_id for z in store.network.get().zones.values()}
    assert {z["SubnetId"] for z in lb["AvailabilityZones"]} == private
    attrs = {
        a["Key"]: a["Value"]
        for a in elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]
    }
    assert attrs["load_balancing.cross_zone.enabled"] == "true"
    listeners = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert [(li["Protocol"], li["Port"]) for li in listeners] == [("TCP", 443)]
    tg = elbv2.describe_target_groups(Names=[naming.target_group(ha_cluster.uid)])["TargetGroups"][0]
    assert listeners[0]["DefaultActions"][0]["TargetGroupArn"] == tg["TargetGroupArn"]
    assert (tg["Protocol"], tg["Port"]) == ("TCP", 6443)
    assert (tg["HealthCheckProtocol"], tg["HealthCheckPath"], tg["HealthCheckPort"]) == ("HTTPS", "/readyz", "6443")
    tg_attrs = {
        a["Key"]: a["Value"]
        for a in elbv2.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])["Attributes"]
    }
    assert tg_attrs["preserve_client_ip.enabled"] == "false"
    assert tg_attrs["deregistration_delay.timeout_seconds"] == "30"


def test_a_cluster_on_the_service_subnets_tags_none_of_them(ha_cluster, runtime, store):
    # The AWS cloud controller manager finds a subnet with no kubernetes.io/cluster/ tag for every
    # cluster (kubernetes/cloud-provider-aws, pkg/providers/v1/aws.go findSubnets); a tag per
    # cluster would cap a network at ~46 clusters (EC2: 50 tags per resource) for nothing.
    network = store.network.get()
    subnets = runtime.boto3_client("ec2").describe_subnets(Filters=[{"Name": "vpc-id", "Values": [network.vpc_id]}])
    assert [s["SubnetId"] for s in subnets["Subnets"] if naming.k8s_cluster_tag(ha_cluster.uid) in tags(s)] == []


def test_three_control_plane_asgs_in_three_zones_with_etcd_volumes_alongside(ha_cluster, runtime):
    uid = ha_cluster.uid
    found = inventory.cluster_resources(uid, runtime.boto3_client)
    tg_arn = ha_cluster.resources["target-group"].id
    cp = sorted((g for g in found["autoScalingGroups"] if g["role"] == "control-plane"), key=lambda g: g["name"])
    assert [g["name"] for g in cp] == [naming.replica(uid, i) for i in range(3)]
    for group in cp:
        assert (group["min"], group["max"], group["healthCheck"]) == (1, 1, "EC2")
        assert group["targetGroups"] == [tg_arn]
    zones = [g["zones"][0] for g in cp]
    assert len(set(zones)) == 3
    etcd = {v["zone"]: v for v in found["volumes"] if v["role"] == "etcd"}
    assert sorted(etcd) == sorted(zones)
    assert all(v["encrypted"] and v["size"] == 8 and v["type"] == "gp3" for v in etcd.values())


def test_node_pool_asgs_follow_the_spec(ha_cluster, runtime):
    found = inventory.cluster_resources(ha_cluster.uid, runtime.boto3_client)
    pools = {g["name"]: g for g in found["autoScalingGroups"] if g["role"] == "node"}
    uid = ha_cluster.uid
    assert (pools[naming.node_pool(uid, "general")]["min"], pools[naming.node_pool(uid, "general")]["max"]) == (2, 6)
    assert (pools[naming.node_pool(uid, "batch")]["min"], pools[naming.node_pool(uid, "batch")]["max"]) == (0, 10)
    asg = runtime.boto3_client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[naming.node_pool(uid, "batch")]
    )["AutoScalingGroups"][0]
    t = tags(asg)
    assert t["k8s.io/cluster-autoscaler/enabled"] == "true"
    assert t["k8s.io/cluster-autoscaler/node-template/taint/dedicated"] == "batch:NoSchedule"
    assert t["k8s.io/cluster-autoscaler/node-template/label/workload"] == "batch"


def test_every_launch_template_requires_imdsv2_and_encrypts_volumes(ha_cluster, runtime):
    ec2 = runtime.boto3_client("ec2")
    found = inventory.cluster_resources(ha_cluster.uid, runtime.boto3_client)
    assert len(found["launchTemplates"]) == 5
    secrets = runtime.boto3_client("secretsmanager")
    values = []
    for name in (naming.control_plane_secret(ha_cluster.uid), naming.node_secret(ha_cluster.uid)):
        secret = json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])
        values += [v for v in secret.values() if isinstance(v, str)]
        values += [t["token"] for t in secret.get("tokens", [])]  # every join token still accepted
    images = set(ha_cluster.images.values())
    s3 = runtime.boto3_client("s3")
    for template in found["launchTemplates"]:
        data = ec2.describe_launch_template_versions(LaunchTemplateId=template["id"])["LaunchTemplateVersions"][0][
            "LaunchTemplateData"
        ]
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
        assert data["ImageId"] in images, "the image is pinned, not resolved at launch"
        assert data["IamInstanceProfile"]["Arn"].split("/")[-1] in (
            naming.instance_role(ha_cluster.uid, "control-plane"),
            naming.instance_role(ha_cluster.uid, "node"),
        )
        assert data["BlockDeviceMappings"] and all(b["Ebs"]["Encrypted"] for b in data["BlockDeviceMappings"])
        user_data = gzip.decompress(base64.b64decode(data["UserData"])).decode()
        assert user_data.startswith("#cloud-config")
        # The user-data names the instance's bootstrap bundle; the instance checks its digest.
        ref = bundle.reference(data["UserData"])
        assert ref is not None and ref.key == bundle.object_key(ha_cluster.uid, ref.sha256)
        packed = s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
        assert hashlib.sha256(packed).hexdigest() == ref.sha256
        shipped = user_data + "".join(bundle.unpack(packed).values())
        assert ha_cluster.ca_cert_hash in shipped
        # The secrets' values stay in Secrets Manager: user-data and bundle name the secrets only.
        assert naming.node_secret(ha_cluster.uid) in shipped
        for value in values:
            for line in value.splitlines()[1:2] or [value]:  # a PEM's first body line, or the value
                assert line not in shipped


def test_the_cluster_ca_is_public_and_pinned(ha_cluster):
    from kubestep import pki

    assert ha_cluster.cluster_ca_certificate.startswith("-----BEGIN CERTIFICATE-----")
    assert ha_cluster.ca_cert_hash == pki.ca_cert_hash(ha_cluster.cluster_ca_certificate)


def test_etcd_members_are_one_item_each(ha_cluster, store):
    members = store.etcd.members("prod")
    assert [m.index for m in members] == [0, 1, 2]
    assert all(m.volume_id and m.asg_name and m.instance_id for m in members)
    assert store.etcd.config("prod").members == 3


def test_rerunning_create_creates_nothing_new(ha_cluster, runtime, store):
    before = inventory.cluster_resources(ha_cluster.uid, runtime.boto3_client)
    result = run(runtime, "CreateCluster", ha_request("prod"), "create-prod-rerun")
    assert result["status"] == "SUCCEEDED", result.get("cause")
    after = inventory.cluster_resources(ha_cluster.uid, runtime.boto3_client)
    assert {k: sorted(map(json.dumps, v)) for k, v in after.items() if k != "instances"} == {
        k: sorted(map(json.dumps, v)) for k, v in before.items() if k != "instances"
    }
    assert store.clusters.get("prod").phase == "RUNNING"
    assert store.clusters.get("prod").uid == ha_cluster.uid


def test_second_create_of_a_busy_cluster_is_refused(runtime, store):
    sfn = runtime.boto3_client("stepfunctions")
    first = runtime.start_execution("CreateCluster", ha_request("busy"), name="create-busy-1")
    # Wait until the first holds the lock.
    import time

    deadline = time.monotonic() + 60
    while store.locks.get("busy") is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = run(runtime, "CreateCluster", ha_request("busy"), "create-busy-2")
    assert second["status"] == "FAILED"
    assert second["error"] == "LockHeld"
    done = runtime.wait_execution(first, timeout=300)
    assert done["status"] == "SUCCEEDED", done.get("cause")
    record = store.clusters.get("busy")
    assert record.phase == "RUNNING"
    assert inventory.count(inventory.cluster_resources(record.uid, runtime.boto3_client)) > 0
    history = sfn.get_execution_history(executionArn=second["executionArn"])["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]
    assert entered == ["ValidateRequest", "AcquireLock"], "a refused lock must not compensate"
    assert run(runtime, "DeleteCluster", {"clusterName": "busy"}, "delete-busy")["status"] == "SUCCEEDED"


def test_delete_leaves_nothing_but_events_and_shared_network(ha_cluster, runtime, store):
    uid = ha_cluster.uid
    network = store.network.get()
    ec2 = runtime.boto3_client("ec2")
    # A cluster created while every cluster tagged the service's subnets: its delete takes the tag off.
    service_subnets = [s for z in network.zones.values() for s in (z.private_subnet_id, z.public_subnet_id)]
    ec2.create_tags(Resources=service_subnets, Tags=[{"Key": naming.k8s_cluster_tag(uid), "Value": "shared"}])
    result = run(runtime, "DeleteCluster", {"clusterName": "prod"}, "delete-prod-1")
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert inventory.count(inventory.cluster_resources(uid, runtime.boto3_client)) == 0
    assert store.clusters.get("prod") is None and store.etcd.members("prod") == []
    assert ec2.describe_vpcs(VpcIds=[network.vpc_id])["Vpcs"]
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [network.vpc_id]}])["Subnets"]:
        assert naming.k8s_cluster_tag(uid) not in tags(subnet)
    reasons = [e.reason for e in store.events.list("prod")]
    assert "ClusterRunning" in reasons and reasons[-1] == "Deleted"
    assert store.locks.get("prod") is None

    # Re-create at once under the same name: a new incarnation with a new uid.
    again = run(runtime, "CreateCluster", ha_request("prod"), "create-prod-2")
    assert again["status"] == "SUCCEEDED", again.get("cause")
    record = store.clusters.get("prod")
    assert record.uid != uid and record.phase == "RUNNING"
    assert run(runtime, "DeleteCluster", {"clusterName": "prod"}, "delete-prod-2")["status"] == "SUCCEEDED"
