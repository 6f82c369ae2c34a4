"""The instances' own AWS calls, through the IAM check: the real rendered bootstrap script runs in
the sandbox (tests/bootstrap/harness.py) for the replica that initialises, a replica that joins,
a replacement after the cluster is initialised and a node; every `aws` command line it ran is
turned into the API call the CLI makes (tests/iam/cli.py) and evaluated as the cluster's
instance role would be: its policy (kubestep/iam_policies.py) within the stack's permissions
boundary, plus what AWS authorizes beyond each call (the state table's and the secrets'
customer-managed key, through the key policy of the synthesized template).

The emulator enforces none of this (moto ignores IAM and KMS); on AWS a missing grant here is an
instance that never reports, and a health gate that waits for it until its deadline."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from typing import Any

import pytest

from infra.instance_roles import role_path
from kubestep import iam_policies
from kubestep.bootstrap import BootstrapParams, components
from kubestep.store import keys
from tests.bootstrap.conftest import CONTROL_PLANE_SECRET, NODE_SECRET, QUEUE, SECRETS, control_plane, node
from tests.bootstrap.harness import FIXTURES, Run, Sandbox
from tests.iam.checker import CheckResult, check
from tests.iam.cli import call_record
from tests.iam.requests import Ledger
from tests.iam.template import Environment, Resolver, managed_policy_statements

ACCOUNT = "123456789012"
REGION = "us-east-1"
UID = "abcd1234"
INSTANCES = {
    0: "i-0aaaaaaaaaaaaaaa0",
    1: "i-0aaaaaaaaaaaaaaa1",
    2: "i-0aaaaaaaaaaaaaaa2",
    "node": "i-0bbbbbbbbbbbbbbb1",
}


@pytest.fixture(scope="module", autouse=True)
def calico_fixture_checksum():
    # The stubbed download serves an excerpt of the pinned manifest; pin the excerpt's checksum.
    digest = hashlib.sha256((FIXTURES / "calico-vxlan-excerpt.yaml").read_bytes()).hexdigest()
    original = components.calico_manifest
    components.calico_manifest = lambda minor: (original(minor)[0], digest)
    yield
    components.calico_manifest = original


class Stack:
    """What the synthesized template says about the service: its name, table, key and boundary."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.resolver = Resolver(template, Environment(ACCOUNT, REGION))
        resources = template["Resources"]
        table = next(k for k, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table")
        key = next(k for k, r in resources.items() if r["Type"] == "AWS::KMS::Key")
        boundary = next(
            k
            for k, r in resources.items()
            if r["Type"] == "AWS::IAM::ManagedPolicy"
            and str(self.resolver.resolve(r["Properties"]["ManagedPolicyName"])).endswith("-instance-boundary")
        )
        self.table_arn = self.resolver.get_att(table, "Arn")
        self.table_name = self.table_arn.rsplit("/", 1)[1]
        self.key_arn = self.resolver.get_att(key, "Arn")
        self.key_policy = self.resolver.resolve(resources[key]["Properties"]["KeyPolicy"]["Statement"])
        self.boundary_arn = self.resolver.ref(boundary)
        self.boundary = managed_policy_statements(template, self.resolver, "-instance-boundary")
        self.service = self.table_name.removesuffix("-kubestep")

    def facts(self, **changes: Any) -> iam_policies.ClusterFacts:
        return iam_policies.ClusterFacts(
            **{
                "account": iam_policies.Account("aws", REGION, ACCOUNT),
                "service": self.service,
                "uid": UID,
                "table_arn": self.table_arn,
                "service_kms_key_arn": self.key_arn,
                "control_plane_secret_arn": CONTROL_PLANE_SECRET,
                "node_secret_arn": NODE_SECRET,
                "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
                "dns_domain": "svc.kubestep.internal",
                "node_termination_queue_arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE.rsplit('/', 1)[1]}",
                **changes,
            }
        )

    def ledger(self, control_plane_policy: dict, node_policy: dict) -> Ledger:
        ledger = Ledger(ACCOUNT)
        owned = {"gke:management-service": self.service, "gke:cluster-uid": UID}
        for role, document in (("controlplane", control_plane_policy), ("node", node_policy)):
            name = f"gke-{UID}-{role}"
            ledger.role_paths[name] = role_path(self.service, REGION)
            ledger.role_policies[name] = document["Statement"]
            ledger.role_boundaries[name] = self.boundary_arn
        ledger.managed_policies[self.boundary_arn] = self.boundary
        ledger.table_keys[self.table_name] = self.key_arn
        ledger.key_policies[self.key_arn] = self.key_policy
        for secret in (CONTROL_PLANE_SECRET, NODE_SECRET):
            ledger.secret_keys[secret.split(":secret:", 1)[1]] = self.key_arn
            ledger.tags[secret] = owned
        for index in (0, 1, 2):
            ledger.tags[f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-0123456789abcdef{index}"] = owned
        for instance in INSTANCES.values():
            ledger.tags[self.instance_arn(instance)] = owned
        return ledger

    @staticmethod
    def instance_arn(instance_id: str) -> str:
        return f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance_id}"


@pytest.fixture(scope="module")
def stack(synthesized_template) -> Stack:
    return Stack(synthesized_template)


def _metadata(instance_id: str, index: int) -> dict[str, str]:
    return {
        "instance-id": instance_id,
        "local-ipv4": f"10.0.1.{10 + index}",
        "local-hostname": f"ip-10-0-1-{10 + index}.ec2.internal",
        "placement/availability-zone": "us-east-1a",
    }


def _replica(base, stack: Stack, index: int, state: dict | None = None) -> Sandbox:
    params = dataclasses.replace(control_plane(index), table=stack.table_name)
    box = Sandbox(
        base,
        params,
        {"secrets": SECRETS, "filesystem": None, "state": state or {}, "metadata": _metadata(INSTANCES[index], index)},
    )
    link = box.file(f"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef{index}")
    link.parent.mkdir(parents=True)
    box.file("/dev/nvme1n1").write_text("")
    link.symlink_to(box.file("/dev/nvme1n1"))
    return box


def _node(base, stack: Stack, params: BootstrapParams | None = None) -> Sandbox:
    params = dataclasses.replace(params or node(), table=stack.table_name)
    return Sandbox(base, params, {"secrets": SECRETS, "metadata": _metadata(INSTANCES["node"], 9)})


def _records(run: Run, role: str, instance_id: str) -> list:
    assert run.returncode == 0, run.stderr
    return [
        call_record(args, role_name=f"gke-{UID}-{role}", source_instance_arn=Stack.instance_arn(instance_id))
        for args in run.commands("aws")
    ]


def _check(stack: Stack, records: Iterable, control_plane_policy: dict, node_policy: dict) -> CheckResult:
    return check(list(records), {}, stack.ledger(control_plane_policy, node_policy))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, stack):
    """Replica 0 initialises, replica 1 joins (the registry and etcd as replica 0 left them), a
    node joins: every `aws` call each made, as (role, records)."""
    first = _replica(tmp_path_factory.mktemp("replica-0"), stack, 0)
    records = {"replica-0": _records(first.run(), "controlplane", INSTANCES[0])}
    shared = {"items": first.dynamodb_items(), "members": first.etcd_members()}
    joining = _replica(tmp_path_factory.mktemp("replica-1"), stack, 1, shared)
    records["replica-1"] = _records(joining.run(), "controlplane", INSTANCES[1])
    records["node"] = _records(_node(tmp_path_factory.mktemp("node"), stack).run(), "node", INSTANCES["node"])
    return first, records


def test_the_instances_calls_are_what_the_check_evaluates(cluster):
    _, records = cluster
    actions = {r.action for calls in records.values() for r in calls}
    assert {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "secretsmanager:GetSecretValue"} <= actions
    assert {"ec2:AttachVolume", "route53:ChangeResourceRecordSets"} <= actions
    assert {r.action for r in records["node"]} == {"secretsmanager:GetSecretValue", "dynamodb:PutItem"}


def test_every_call_of_the_initialising_replica_a_joining_replica_and_a_node_is_granted(cluster, stack):
    """Replica 0's init claim, its reads of the claim, `initialized`, its report; replica 1's read
    of the claim and its report; the node's report: each with the table's key through DynamoDB
    and the secrets' through Secrets Manager, within the boundary and the key policy."""
    _, records = cluster
    facts = stack.facts()
    result = _check(
        stack,
        (r for calls in records.values() for r in calls),
        iam_policies.control_plane_policy(facts),
        iam_policies.node_policy(facts),
    )
    assert result.checked > sum(len(calls) for calls in records.values())  # the keys' uses too
    assert not result.findings, result.summary()


def test_without_the_tables_key_the_instances_cannot_report(cluster, stack):
    """The same calls against policies without the key statements fail the check: the stand-in
    models DynamoDB's use of the customer-managed key, which the emulator does not enforce."""
    _, records = cluster
    facts = stack.facts()

    def without_keys(document: dict) -> dict:
        return {**document, "Statement": [s for s in document["Statement"] if "kms:Encrypt" not in s["Action"]]}

    result = _check(
        stack,
        records["node"],
        without_keys(iam_policies.control_plane_policy(facts)),
        without_keys(iam_policies.node_policy(facts)),
    )
    failed = {f.authorization.request.action for f in result.findings}
    assert {"kms:Encrypt", "kms:GenerateDataKey"} <= failed, result.summary()


def test_a_key_policy_without_the_account_statement_refuses_the_instances(cluster, stack):
    _, records = cluster
    facts = stack.facts()
    ledger = stack.ledger(iam_policies.control_plane_policy(facts), iam_policies.node_policy(facts))
    ledger.key_policies[stack.key_arn] = [
        s for s in stack.key_policy if not str(s.get("Principal")).endswith(":root'}")
    ]
    result = check(records["node"], {}, ledger)
    assert any(f.reason == "the key policy allows neither the caller nor its account" for f in result.findings)


def test_a_replacement_after_initialisation_only_reads_the_final_claim(tmp_path, cluster, stack):
    """Once the cluster is initialised its control-plane role may only read the init claim; a
    replica with an empty volume that boots then (a replacement) never writes it, and joins."""
    first, _ = cluster
    shared = {"items": first.dynamodb_items(), "members": first.etcd_members()}
    replacement = _replica(tmp_path, stack, 2, shared)
    run = replacement.run()
    records = _records(run, "controlplane", INSTANCES[2])
    assert not run.kubeadm("init", "--config") and run.kubeadm("join")
    sealed = stack.facts(initialized=True)
    result = _check(stack, records, iam_policies.control_plane_policy(sealed), iam_policies.node_policy(sealed))
    assert not result.findings, result.summary()
    claim = keys.init_claim_pk(UID)
    assert not [r for r in records if r.action != "dynamodb:GetItem" and claim in str(r.params)]


def test_the_node_report_key_is_the_one_the_store_reads(cluster):
    _, records = cluster
    (report,) = [r for r in records["node"] if r.action == "dynamodb:PutItem"]
    item = report.params["Item"]
    assert item["sk"]["S"] == keys.node_report_sk(INSTANCES["node"])
    assert item["pk"]["S"] == keys.node_report_pk(UID, Stack.instance_arn(INSTANCES["node"]))
