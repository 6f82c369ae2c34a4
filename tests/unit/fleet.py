"""A small fleet in in-process moto for ownership tests: the management service's network, small
clusters created through the rendered CreateCluster ASL (tests/unit/asl_runner.py, real
handlers, instances played by writing their bootstrap reports), the management API's handler
in this process (its state machines are Pass states, so what it starts changes nothing), and a
snapshot of everything one cluster owns, to prove an operation on another left it as it was."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from kubestep import inventory, naming
from kubestep.settings import Settings
from kubestep.store import ClusterRecord, Store
from tests.api.conftest import PASS, WORKFLOWS, _clear_caches
from tests.api.helpers import Answer, call

from .asl_runner import Interpreter, Run
from .conftest import EXAMPLES, TABLE, configure, create_bucket, create_table, load_service

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


def small_request(name: str, **pool_spec: Any) -> dict:
    """One replica in us-east-1a, one node pool `general` of one node: every step runs, cheaply."""
    docs = list(yaml.safe_load_all((EXAMPLES / "cluster-ha.yaml").read_text()))
    cluster, pool = docs[0], docs[1]
    cluster["metadata"]["name"] = name
    cluster["spec"]["controlPlane"]["availabilityZones"] = ["us-east-1a"]
    # Started as from the console, which must name the cluster's administrators.
    cluster["spec"]["authentication"] = {"awsIAM": {"adminIdentityARNs": [f"arn:aws:iam::{ACCOUNT}:role/Admin"]}}
    pool["spec"].update(clusterName=name, minNodeCount=1, maxNodeCount=2, **pool_spec)
    return {"cluster": cluster, "nodePools": [pool]}


def new_pool(cluster: str, name: str = "extra", **spec: Any) -> dict:
    pool = small_request(cluster)["nodePools"][0]
    pool["metadata"]["name"] = name
    pool["spec"].update(spec)
    return pool


def report_all(store: Store, uid: str, status: str = "ok") -> None:
    """Play every live instance of cluster `uid`: its bootstrap report (`ok` or `failed:<phase>`)."""
    asg = boto3.client("autoscaling", REGION)
    for group in asg.describe_auto_scaling_groups()["AutoScalingGroups"]:
        tags = {t["Key"]: t["Value"] for t in group["Tags"]}
        if tags.get("gke:cluster-uid") != uid:
            continue
        for inst in group["Instances"]:
            if inst["LifecycleState"].startswith("Terminat"):
                continue
            if tags["gke:role"] == "control-plane":
                members = store.etcd.config(tags["gke:cluster"]).members
                checks = {"etcdMembers": members, "etcdHealthy": True, "apiserverReady": True}
                replica = int(tags["gke:replica"])
            else:
                # Ready, and initialised by the cloud controller manager (what the node gate requires).
                provider = f"aws:///us-east-1a/{inst['InstanceId']}"
                checks, replica = {"nodeReady": True, "nodeInitialized": True, "providerID": provider}, None
            # A node writes its report under its own instance ARN (the only partition its role may write).
            arn = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{inst['InstanceId']}"
            store.reports.write(
                uid, status=status, instance_id=inst["InstanceId"], replica=replica, instance_arn=arn, checks=checks
            )


@dataclass
class Fleet:
    settings: Settings
    store: Store
    serial: Iterator[int] = field(default_factory=itertools.count)

    # ------------------------------------------------------------------ workflows (console)
    def run(self, workflow: str, execution_input: Any, name: str, hooks: dict | None = None) -> Run:
        return Interpreter(workflow, self.settings, self.store, hooks=hooks or self.healthy()).run(
            execution_input, name
        )

    def healthy(self) -> dict[str, Callable[[dict], None]]:
        """Hooks that play every instance as booting fine."""

        def report(payload: dict) -> None:
            record = self.store.clusters.get(payload["clusterName"])
            if record is not None:
                report_all(self.store, record.uid)

        return {name: report for name in ("CheckReplicaHealth", "CheckNodePoolHealth", "RollNodePool")}

    def create(self, name: str, request: dict | None = None) -> ClusterRecord:
        # Execution names are never reused (an operation id names one operation for good).
        run = self.run("CreateCluster", request or small_request(name), f"create-{name}-{next(self.serial)}")
        assert run.entered[-1] == "Created", run.entered
        return self.store.clusters.require(name)

    # ------------------------------------------------------------------ the API (in this process)
    def api(self, method: str, path: str, body: Any = None, **query: str) -> Answer:
        return call(method, path, body=body, query=query or None)

    # ------------------------------------------------------------------ what a cluster owns
    def snapshot(self, name: str, uid: str) -> dict:
        """Everything of cluster `name` (uid `uid`) an operation could change: its records, its
        lock and the name's schedules, its AWS resources and their launch template versions."""
        store = self.store
        record = store.clusters.get(name)
        resources = inventory.cluster_resources(uid, lambda service: boto3.client(service, REGION))
        ec2 = boto3.client("ec2", REGION)
        versions = {
            t["id"]: len(ec2.describe_launch_template_versions(LaunchTemplateId=t["id"])["LaunchTemplateVersions"])
            for t in resources["launchTemplates"]
        }
        iam = boto3.client("iam", REGION)
        profiles = sorted(
            p["InstanceProfileName"]
            for p in iam.list_instance_profiles()["InstanceProfiles"]
            if p["InstanceProfileName"].startswith(f"gke-{uid}-")
        )
        return json.loads(
            json.dumps(
                {
                    "record": record.to_item() if record and record.uid == uid else None,
                    "pools": [p.to_item() for p in store.node_pools.list(name)] if record and record.uid == uid else [],
                    "members": [m.to_item() for m in store.etcd.members(name)] if record and record.uid == uid else [],
                    "lock": store.locks.get(name).to_item() if store.locks.get(name) else None,
                    "schedules": [s.to_item() for s in store.schedules.list(name)],
                    "aws": resources,
                    "templateVersions": versions,
                    "profiles": profiles,
                },
                default=str,
                sort_keys=True,
            )
        )


@contextmanager
def fleet(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    """The management service of examples/management-service.yaml, its network provisioned."""
    for key, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_SERVICE_NAME": "kubestep",
        "POWERTOOLS_METRICS_NAMESPACE": "kubestep",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    _clear_caches()
    from kubestep_local import moto_compat

    # The emulator's corrections of moto (launch templates' later versions launch, resent calls
    # meet AWS's answers), as the embedded runtime applies them; and its performance patches (the
    # same answers, tests/local/test_moto_speed.py): without them moto's generic serializer
    # walking every DynamoDB item was about half of a fleet module's CPU.
    patches = moto_compat.PatchSet()
    moto_compat.fix_interpreter_bugs(patches)
    moto_compat.match_aws_semantics(patches)
    moto_compat.fix_moto_performance(patches)
    with mock_aws():
        create_table()
        create_bucket()
        moto_compat.publish_ubuntu_images("123456789012", REGION)
        sfn = boto3.client("stepfunctions", REGION)
        for workflow in WORKFLOWS:
            sfn.create_state_machine(
                name=f"unit-{workflow}", definition=PASS, roleArn="arn:aws:iam::123456789012:role/unit-sfn"
            )
        settings = configure(monkeypatch, load_service(EXAMPLES / "management-service.yaml"))
        store = Store.for_table(TABLE)
        provisioned = Interpreter("ProvisionNetwork", settings, store).run({}, "provision-network")
        assert provisioned.entered[-1] == "Provisioned"
        try:
            yield Fleet(settings, store)
        finally:
            patches.undo()
    _clear_caches()


def tag(resource_id: str, **tags: str) -> None:
    boto3.client("ec2", REGION).create_tags(Resources=[resource_id], Tags=naming.ec2_tags(tags))
