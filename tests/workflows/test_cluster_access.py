"""Using a cluster after its create, and keeping it usable: the example manifest's cluster maps
its creator as admin, the admins change in place (no instance replaced), the health gate reads
the replicas' periodic reports (a slow third join still passes, nodes the cloud controller
manager never initialises do not), the upgrade planner rotates join tokens and warns before a
certificate expires, and `kubestep describe cluster` shows all of it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import yaml
from click.testing import CliRunner

from kubestep import inventory
from kubestep.api.client import ApiClient
from kubestep.cli.main import main

from .conftest import EXAMPLES, ha_request

ACCOUNT = "123456789012"
# Who the local API stand-in says signed an unsigned local call: the emulator's dummy credentials.
LOCAL_CALLER = f"arn:aws:iam::{ACCOUNT}:user/moto"


def run(runtime, workflow, payload, name, timeout=300):
    return runtime.run_execution(workflow, payload, name=name, check=False, timeout=timeout)


def example_body(name: str) -> dict:
    """examples/cluster-ha.yaml as it is (no admins named), under another name."""
    docs = list(yaml.safe_load_all((EXAMPLES / "cluster-ha.yaml").read_text()))
    docs[0]["metadata"]["name"] = name
    for pool in docs[1:]:
        pool["spec"]["clusterName"] = name
    return {"cluster": docs[0], "nodePools": docs[1:]}


def small(name: str, min_nodes: int = 0) -> dict:
    request = ha_request(name)
    request["cluster"]["spec"]["controlPlane"]["availabilityZones"] = ["us-east-1a"]
    pool = request["nodePools"][0]
    pool["spec"].update(minNodeCount=min_nodes, maxNodeCount=2, availabilityZone="us-east-1a")
    request["nodePools"] = [pool]
    return request


def until(condition, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} never held")


def replica_instances(runtime, uid: str) -> dict[str, list[str]]:
    groups = runtime.boto3_client("autoscaling").describe_auto_scaling_groups(
        Filters=[
            {"Name": "tag:gke:cluster-uid", "Values": [uid]},
            {"Name": "tag:gke:role", "Values": ["control-plane"]},
        ]
    )["AutoScalingGroups"]
    return {g["AutoScalingGroupName"]: sorted(i["InstanceId"] for i in g["Instances"]) for g in groups}


def template_versions(runtime, uid: str) -> dict[str, int]:
    templates = runtime.boto3_client("ec2").describe_launch_templates(
        Filters=[{"Name": "tag:gke:cluster-uid", "Values": [uid]}]
    )["LaunchTemplates"]
    return {t["LaunchTemplateName"]: t["LatestVersionNumber"] for t in templates}


def describe(runtime, name: str, tmp_path) -> str:
    env = {
        "KUBESTEP_API_URL": runtime.api_url,
        "KUBESTEP_CONTEXT": "",
        "KUBESTEP_HOME": str(tmp_path),
        "AWS_REGION": runtime.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    result = CliRunner().invoke(main, ["describe", "cluster", name], env=env, prog_name="kubestep")
    assert result.exit_code == 0, result.output
    return result.output


def test_the_example_manifest_maps_its_creator_and_admins_change_without_a_roll(runtime, store, tmp_path):
    api = ApiClient(runtime.api_url, sign=False)
    created = api.wait_operation(api.create_cluster(example_body("access"))["id"], timeout=600, poll=0.5)
    assert created["status"] == "SUCCEEDED", created
    record = store.clusters.get("access")
    uid = record.uid
    assert record.spec.spec.authentication.aws_iam.admin_identity_arns == [LOCAL_CALLER]
    assert record.creator == LOCAL_CALLER
    published = store.admins.get(uid)
    assert published is not None and (published.generation, published.user_arns) == (1, [LOCAL_CALLER])

    # Every replica's authenticator serves the published mapping (its periodic report says so).
    view = until(
        lambda: (v := api.get_cluster("access"))["status"]["admins"]["appliedBy"] == 3 and v,
        what="every replica serving generation 1",
    )
    status = view["status"]
    assert status["admins"]["identityARNs"] == [LOCAL_CALLER] and status["admins"]["creator"] == LOCAL_CALLER
    token = status["joinToken"]
    made = datetime.fromisoformat(token["createdAt"].replace("Z", "+00:00"))
    assert token["expiresAt"] == (made + timedelta(days=3)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    names = {c["name"]: c for c in status["certificates"]}
    assert {"apiserver", "etcd-server", "admin.conf", "ca"} <= set(names)
    assert 360 <= names["apiserver"]["daysLeft"] <= 365 and names["ca"]["daysLeft"] > 365
    text = describe(runtime, "access", tmp_path)
    for shown in ("Admins:", LOCAL_CALLER, "Created by:", "Admin mapping:", "served by 3/3", "Join token:"):
        assert shown in text, text
    assert "apiserver" in text and token["expiresAt"] in text and names["apiserver"]["expiresAt"] in text

    # New admins change in place: no replica replaced, no new launch template version.
    instances, versions = replica_instances(runtime, uid), template_versions(runtime, uid)
    admins = [LOCAL_CALLER, f"arn:aws:iam::{ACCOUNT}:role/platform/Admin"]
    change = {"authentication": {"awsIAM": {"adminIdentityARNs": admins}}}
    assert api.update_cluster("access", change, dry_run=True)["rolls"] is False
    updated = api.wait_operation(api.update_cluster("access", change)["id"], timeout=600, poll=0.5)
    assert updated["status"] == "SUCCEEDED", updated
    assert replica_instances(runtime, uid) == instances and template_versions(runtime, uid) == versions
    published = store.admins.get(uid)
    assert (published.generation, published.role_arns) == (2, [f"arn:aws:iam::{ACCOUNT}:role/Admin"])
    # Every replica's authenticator serves exactly the item's generation (each reads the item on
    # its report timer), and still no instance was replaced.
    until(
        lambda: (
            [r.checks.get("adminsGeneration") for r in store.reports.replicas(uid).values()]
            == [published.generation] * 3
        ),
        what="every replica serving generation 2",
    )
    assert not any("adminsError" in r.checks for r in store.reports.replicas(uid).values())
    assert replica_instances(runtime, uid) == instances
    assert api.get_cluster("access")["status"]["admins"]["appliedBy"] == 3
    assert "ClusterAdminsPublished" in [e.reason for e in store.events.list("access")]

    deleted = api.wait_operation(api.delete_cluster("access")["id"], timeout=600, poll=0.5)
    assert deleted["status"] == "SUCCEEDED", deleted
    assert store.admins.get(uid) is None
    assert inventory.count(inventory.cluster_resources(uid, runtime.boto3_client)) == 0


def test_a_console_create_naming_no_admins_is_refused_before_anything_is_made(runtime, store):
    body = example_body("nobody")
    result = run(runtime, "CreateCluster", body, "create-nobody-1")
    assert (result["status"], result["error"]) == ("FAILED", "InvalidSpec")
    assert "cluster.spec.authentication.awsIAM.adminIdentityARNs" in result["cause"]
    assert store.clusters.get("nobody") is None and store.locks.get("nobody") is None


def test_a_slow_third_replica_still_passes_the_gate(runtime, store):
    """The third replica joins minutes after the others: the first two replicas' reports say 2
    of 3 members until it does, and the gate waits (it used to fail the create at once)."""
    runtime.simulator.delay_boot("slowjoin", replica=2, seconds=240)
    try:
        result = run(runtime, "CreateCluster", ha_request("slowjoin"), "create-slowjoin-1", timeout=600)
    finally:
        runtime.simulator.clear_failures()
    assert result["status"] == "SUCCEEDED", result.get("cause")
    pages = runtime.boto3_client("stepfunctions").get_paginator("get_execution_history")
    causes = [
        str(details.get("cause", ""))
        for page in pages.paginate(executionArn=result["executionArn"])
        for event in page["events"]
        for key, details in event.items()
        if key.endswith("FailedEventDetails")
    ]
    assert any("of 3 members (etcdMembers)" in c for c in causes), "the gate never saw the third member missing"
    record = store.clusters.get("slowjoin")
    assert record.phase == "RUNNING"
    assert run(runtime, "DeleteCluster", {"clusterName": "slowjoin"}, "delete-slowjoin")["status"] == "SUCCEEDED"


def test_nodes_the_cloud_controller_manager_never_initialises_fail_the_create_naming_the_check(runtime, store):
    runtime.simulator.stall_cloud_controller("noccm")
    try:
        result = run(runtime, "CreateCluster", small("noccm", min_nodes=1), "create-noccm-1", timeout=600)
    finally:
        runtime.simulator.resume_cloud_controller()
    assert (result["status"], result["error"]) == ("FAILED", "ResourceTimeout"), result.get("cause")
    assert "cloud controller manager has not initialised its Node" in result["cause"]
    assert "providerID" in result["cause"]
    record = store.clusters.get("noccm")
    assert record.phase == "ERROR"
    warnings = [e.message for e in store.events.list("noccm") if e.type == "Warning"]
    assert any("cloud controller manager" in m for m in warnings), warnings
    assert inventory.count(inventory.cluster_resources(record.uid, runtime.boto3_client)) == 0
    assert run(runtime, "DeleteCluster", {"clusterName": "noccm"}, "delete-noccm")["status"] == "SUCCEEDED"


def test_the_planner_rotates_join_tokens_daily_and_warns_before_certificates_expire(runtime, store):
    assert run(runtime, "CreateCluster", small("rotate"), "create-rotate-1")["status"] == "SUCCEEDED"
    record = store.clusters.get("rotate")
    secrets = runtime.boto3_client("secretsmanager")
    arn = record.resources["node-secret"].id

    def tokens() -> list[dict]:
        return json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])["tokens"]

    [first] = tokens()
    now = datetime.now(UTC)
    tick = runtime.tick(now + timedelta(hours=25))
    assert tick.planner_status == "SUCCEEDED"
    after = tokens()
    assert len(after) == 2 and after[1] == first and after[0]["token"] != first["token"]
    token = store.clusters.get("rotate").join_token
    assert token.accepted == 2 and token.created_at == after[0]["createdAt"]
    assert "JoinTokenRotated" in [e.reason for e in store.events.list("rotate")]
    # No value in the execution's history.
    history = json.dumps(
        runtime.boto3_client("stepfunctions").get_execution_history(
            executionArn=tick.planner_execution, maxResults=1000
        )["events"],
        default=str,
    )
    assert first["token"] not in history and after[0]["token"] not in history

    # The planner fires again within the day: nothing more.
    assert runtime.tick(now + timedelta(hours=26)).planner_status == "SUCCEEDED"
    assert tokens() == after

    # 340 days on, the replicas' year-long certificates are within 30 days of expiring.
    assert runtime.tick(now + timedelta(days=340)).planner_status == "SUCCEEDED"
    expiring = [e for e in store.events.list("rotate") if e.reason == "CertificateExpiring"]
    assert expiring and all(e.type == "Warning" for e in expiring)
    assert any("certificate apiserver of control-plane replica 0" in e.message for e in expiring)
    assert run(runtime, "DeleteCluster", {"clusterName": "rotate"}, "delete-rotate")["status"] == "SUCCEEDED"
