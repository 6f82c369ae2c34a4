"""The instances' own AWS calls, through the IAM check: the real rendered bootstrap script runs in
the sandbox (tests/bootstrap/harness.py) for the replica that initialises, a replica that joins,
a replacement after the cluster is initialised and a node, then in its timers' modes once the
cluster is initialised (the periodic report of a replica and of a node, the join-token refresh,
the certificate renewal) and for an upgrade (the once-per-version claims); every `aws` command
line it ran is
turned into the API call the CLI makes (tests/iam/cli.py) and evaluated as the cluster's
instance role would be: its policy (kubestep/iam_policies.py) within the stack's permissions
boundary, plus what AWS authorizes beyond each call (the state table's and the secrets'
customer-managed key, through the key policy of the synthesized template).

The emulator enforces none of this (moto ignores IAM and KMS); on AWS a missing grant here is an
instance that never reports, and a health gate that waits for it until its deadline."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from typing import Any

import pytest

from infra.instance_roles import role_path
from kubestep import iam_policies
from kubestep.bootstrap import BootstrapParams, components
from kubestep.store import keys
from kubestep.store.reports import INIT_CLAIM_ATTRIBUTES, REPORT_ATTRIBUTES, VERSION_CLAIM_ATTRIBUTES
from tests.bootstrap.conftest import (
    CONTROL_PLANE_SECRET,
    NODE_SECRET,
    QUEUE,
    SECRETS,
    admins_item,
    backup_policy_item,
    control_plane,
    node,
)
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
    # The stubbed download serves a small manifest in the pinned one's shape; pin its checksum.
    digest = hashlib.sha256((FIXTURES / "calico-vxlan-standin.yaml").read_bytes()).hexdigest()
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
        bucket = next(k for k, r in resources.items() if r["Type"] == "AWS::S3::Bucket")
        self.bucket = str(self.resolver.ref(bucket))
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


def _replica(
    base, stack: Stack, index: int, state: dict | None = None, *, data_on_volume: bool = False, **scenario: Any
) -> Sandbox:
    params = dataclasses.replace(control_plane(index, **scenario.pop("params", {})), table=stack.table_name)
    box = Sandbox(
        base,
        params,
        {
            "secrets": SECRETS,
            "filesystem": "ext4" if data_on_volume else None,
            "state": state or {},
            "metadata": _metadata(INSTANCES[index], index),
            **scenario,
        },
    )
    link = box.file(f"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef{index}")
    link.parent.mkdir(parents=True)
    box.file("/dev/nvme1n1").write_text("")
    link.symlink_to(box.file("/dev/nvme1n1"))
    if data_on_volume:
        box.file("/var/lib/kubestep/etcd-volume/data/member/snap").mkdir(parents=True)
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
def booted(tmp_path_factory, stack):
    """Replica 0 initialises, replica 1 joins (the registry and etcd as replica 0 left them), a
    node joins: their sandboxes, and every `aws` call each made."""
    first = _replica(tmp_path_factory.mktemp("replica-0"), stack, 0, {"items": admins_item(uid=UID)})
    records = {"replica-0": _records(first.run(), "controlplane", INSTANCES[0])}
    shared = {"items": first.dynamodb_items(), "members": first.etcd_members()}
    joining = _replica(tmp_path_factory.mktemp("replica-1"), stack, 1, shared)
    records["replica-1"] = _records(joining.run(), "controlplane", INSTANCES[1])
    worker = _node(tmp_path_factory.mktemp("node"), stack)
    records["node"] = _records(worker.run(), "node", INSTANCES["node"])
    return {"replica-0": first, "replica-1": joining, "node": worker}, records


@pytest.fixture(scope="module")
def cluster(booted):
    """The initialising replica's sandbox, and the boots' calls by instance."""
    boxes, records = booted
    return boxes["replica-0"], records


def _loader_downloads(base, stack: Stack, params: BootstrapParams, instance_id: str) -> tuple[Sandbox, list]:
    """The loader's download of the instance's bundle, as the call its role makes."""
    box = Sandbox(
        base,
        dataclasses.replace(params, table=stack.table_name),
        {"secrets": SECRETS, "metadata": _metadata(instance_id, 9)},
        via_loader=True,
        bundle_bucket=stack.bucket,
    )
    run = box.run("/usr/local/sbin/kubestep-loader")
    role = "controlplane" if params.is_control_plane else "node"
    downloads = [a for a in run.commands("aws") if a[:2] == ["s3api", "get-object"]]
    assert len(downloads) == 1
    records = [call_record(args, role_name=f"gke-{UID}-{role}", source_instance_arn=None) for args in downloads]
    return box, records


def test_each_instance_role_downloads_its_own_clusters_bundle_and_not_another(tmp_path, stack):
    """The loader's GetObject and the bucket key's decrypt through S3 are granted to a replica and
    a node of the cluster; the same policies for another incarnation are refused both."""
    for name, params, instance in (("replica", control_plane(0), INSTANCES[0]), ("node", node(), INSTANCES["node"])):
        box, records = _loader_downloads(tmp_path / name, stack, params, instance)
        assert records[0].params == {"Bucket": box.bundle_ref.bucket, "Key": box.bundle_ref.key}
        for uid, allowed in ((UID, True), ("other123", False)):
            facts = stack.facts(uid=uid, backup_bucket=box.bundle_ref.bucket)
            ledger = stack.ledger(iam_policies.control_plane_policy(facts), iam_policies.node_policy(facts))
            ledger.bucket_keys[box.bundle_ref.bucket] = stack.key_arn
            result = check(records, {}, ledger)
            assert result.checked == 2  # the object and the key
            assert (not result.findings) is allowed, (name, uid, result.summary())


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


def _admins_reads(records: Iterable) -> list:
    key = {"pk": {"S": keys.cluster_access_pk(UID)}, "sk": {"S": keys.ADMINS_SK}}
    return [r for r in records if r.params.get("Key") == key]


def test_the_replicas_read_the_administrators_item_and_the_node_never(cluster, maintenance):
    """Each replica reads its cluster's administrators item (GetItem, by its key) when it boots
    and on every report; a node never does."""
    _, records = cluster
    _, _, timers = maintenance
    for calls in (records["replica-0"], records["replica-1"], timers["replica-report"]):
        assert [r.action for r in _admins_reads(calls)] == ["dynamodb:GetItem"]
    assert not _admins_reads(records["node"] + timers["node-report"])


def test_without_the_administrators_grant_a_replica_cannot_read_them(cluster, stack):
    """The read is what the ClusterAdministrators statement grants: the replicas' other items
    (their partitions, their attributes) grant none of it."""
    _, records = cluster
    facts = stack.facts(initialized=True)
    policy = iam_policies.control_plane_policy(facts)
    without = {**policy, "Statement": [s for s in policy["Statement"] if s.get("Sid") != "ClusterAdministrators"]}
    assert len(without["Statement"]) == len(policy["Statement"]) - 1
    reads = _admins_reads(records["replica-0"])
    assert not _check(stack, reads, policy, iam_policies.node_policy(facts)).findings
    refused = _check(stack, reads, without, iam_policies.node_policy(facts)).findings
    assert {f.authorization.request.action for f in refused} == {"dynamodb:GetItem"}
    # The permissions boundary must allow it too.
    narrow = stack.ledger(policy, iam_policies.node_policy(facts))
    boundary = [s for s in stack.boundary if s.get("Sid") != "ClusterAccessRead"]
    assert len(boundary) == len(stack.boundary) - 1
    narrow.managed_policies[stack.boundary_arn] = boundary
    assert {f.authorization.request.action for f in check(reads, {}, narrow).findings} == {"dynamodb:GetItem"}


def test_a_node_role_may_not_read_the_administrators_item(cluster, stack):
    """The same read, made by a node with the node role, is denied: a node learns nothing the
    management service tells the control plane."""
    _, records = cluster
    (read,) = _admins_reads(records["replica-0"])
    args = ["dynamodb", "get-item", "--region", REGION, "--table-name", stack.table_name, "--key"]
    as_node = call_record(
        [*args, json.dumps(read.params["Key"])],
        role_name=f"gke-{UID}-node",
        source_instance_arn=Stack.instance_arn(INSTANCES["node"]),
    )
    assert as_node.params["Key"] == read.params["Key"]
    facts = stack.facts()
    result = _check(stack, [as_node], iam_policies.control_plane_policy(facts), iam_policies.node_policy(facts))
    assert {f.authorization.request.action for f in result.findings} == {"dynamodb:GetItem"}, result.summary()


def test_the_node_report_key_is_the_one_the_store_reads(cluster):
    _, records = cluster
    (report,) = [r for r in records["node"] if r.action == "dynamodb:PutItem"]
    item = report.params["Item"]
    assert item["sk"]["S"] == keys.node_report_sk(INSTANCES["node"])
    assert item["pk"]["S"] == keys.node_report_pk(UID, Stack.instance_arn(INSTANCES["node"]))


# ---------------------------------------------------------------- after initialisation: timers, upgrades

SCRIPT = "/usr/local/sbin/kubestep-bootstrap"
UPGRADE_TO = "1.36.5"


def _started_members() -> list[dict[str, str]]:
    """Every replica a started voting etcd member (the stub's membership records)."""
    names = [control_plane(i).replica_name for i in range(3)]
    return [
        {
            "id": f"{0x1000 + i:x}",
            "status": "started",
            "name": n,
            "peer": f"https://{n}:2380",
            "client": f"https://{n}:2379",
        }
        for i, n in enumerate(names)
    ]


@pytest.fixture(scope="module")
def maintenance(tmp_path_factory, stack, booted):
    """Once the cluster is initialised (its init claim sealed), what the instances' timers run:
    the periodic report of a replica and of a node, a replica's join-token refresh and
    certificate renewal; then an upgrade: replica 2 restarts at a newer version than the
    cluster's, so its boot claims and runs `kubeadm upgrade apply` and then the add-ons, and its
    next periodic report finds the add-ons claim done (a conditional put refused, then a read)."""
    boxes, _ = booted
    runs = {
        "replica-report": (boxes["replica-0"].run(SCRIPT, "report"), "controlplane", INSTANCES[0]),
        "refresh-tokens": (boxes["replica-0"].run(SCRIPT, "refresh-tokens"), "controlplane", INSTANCES[0]),
        "renew-certificates": (boxes["replica-0"].run(SCRIPT, "renew-certificates"), "controlplane", INSTANCES[0]),
        "node-report": (boxes["node"].run(SCRIPT, "report"), "node", INSTANCES["node"]),
    }
    state = {"items": boxes["replica-0"].dynamodb_items(), "members": _started_members()}
    older = control_plane(0).version
    upgrading = _replica(
        tmp_path_factory.mktemp("upgrade"),
        stack,
        2,
        state,
        data_on_volume=True,
        params={"version": UPGRADE_TO},
        cluster_version=older,
        addons_version=older,
    )
    runs["upgrade-boot"] = (upgrading.run(), "controlplane", INSTANCES[2])
    runs["upgrade-report"] = (upgrading.run(SCRIPT, "report"), "controlplane", INSTANCES[2])
    records = {name: _records(run, role, instance) for name, (run, role, instance) in runs.items()}
    return upgrading, {name: run for name, (run, _, _) in runs.items()}, records


def _version_claim_calls(records: Iterable) -> list:
    partition = keys.version_claim_pk(UID)
    return [
        r for r in records if (r.params.get("Item") or r.params.get("Key") or {}).get("pk", {}).get("S") == partition
    ]


def test_the_timers_and_the_upgrade_make_the_calls_the_check_evaluates(maintenance):
    """What the check below evaluates is what the modes do: the reports (the node's in its own
    partition, from the timer), the token refresh's read of the node secret, and every kind of
    call on the version claims."""
    upgrading, runs, records = maintenance
    for name, run in runs.items():
        assert run.returncode == 0, (name, run.stderr)
    (node_report,) = [r for r in records["node-report"] if r.action == "dynamodb:PutItem"]
    arn = Stack.instance_arn(INSTANCES["node"])
    assert node_report.params["Item"]["pk"]["S"] == keys.node_report_pk(UID, arn)
    assert node_report.params["Item"]["source"]["S"] == "timer"
    assert {r.action for r in records["node-report"]} == {"dynamodb:PutItem"}
    (read,) = records["refresh-tokens"]
    assert read.action == "secretsmanager:GetSecretValue" and read.params["SecretId"] == NODE_SECRET
    upgrade = _version_claim_calls(records["upgrade-boot"])
    assert [(r.action, r.params.get("Item", r.params.get("Key"))["sk"]["S"]) for r in upgrade] == [
        ("dynamodb:PutItem", keys.upgrade_claim_sk(UPGRADE_TO)),
        ("dynamodb:UpdateItem", keys.upgrade_claim_sk(UPGRADE_TO)),
        ("dynamodb:PutItem", keys.addons_claim_sk(UPGRADE_TO)),
        ("dynamodb:UpdateItem", keys.addons_claim_sk(UPGRADE_TO)),
    ]
    assert {r.action for r in _version_claim_calls(records["upgrade-report"])} == {
        "dynamodb:PutItem",
        "dynamodb:GetItem",
    }
    # Where the store reads them, done.
    items = upgrading.dynamodb_items()
    for sk, done in ((keys.upgrade_claim_sk(UPGRADE_TO), "upgraded"), (keys.addons_claim_sk(UPGRADE_TO), "applied")):
        assert items[f"{keys.version_claim_pk(UID)}|{sk}"]["status"]["S"] == done


def test_the_leaders_backup_is_granted_its_own_prefix_and_records_only(booted, stack):
    """The backup timer on the etcd leader: the policy item and `LATEST` read, the snapshot
    uploaded with its retention tag (the object, its tags and the bucket key's data key through
    S3), the record and `LATEST` written. Another incarnation's policies refuse the upload and
    the records."""
    boxes, _ = booted
    box = boxes["replica-0"]
    state = json.loads(box.state.read_text())
    state["items"].update(backup_policy_item(stack.bucket, UID))
    box.state.write_text(json.dumps(state))
    run = box.run(SCRIPT, "backup")
    records = _records(run, "controlplane", INSTANCES[0])
    assert [r.action for r in records] == [
        "dynamodb:GetItem",
        "dynamodb:GetItem",
        "s3:PutObject",
        "dynamodb:PutItem",
        "dynamodb:PutItem",
    ], run.stderr
    assert records[2].params["Key"].startswith(f"backups/{UID}/") and records[2].params["Tagging"]
    for uid, allowed in ((UID, True), ("other123", False)):
        facts = stack.facts(uid=uid, backup_bucket=stack.bucket, initialized=True)
        ledger = stack.ledger(iam_policies.control_plane_policy(facts), iam_policies.node_policy(facts))
        ledger.bucket_keys[stack.bucket] = stack.key_arn
        result = check(records, {}, ledger)
        assert result.checked > len(records)  # the tags and the key too
        assert (not result.findings) is allowed, (uid, result.summary())


def test_every_call_of_the_timers_and_an_upgrade_is_granted_after_initialisation(maintenance, stack):
    """The sealed control-plane policy (the init claim read-only) still lets a replica take and
    finish the version claims, report and refresh the join tokens; the node still reports."""
    _, _, records = maintenance
    sealed = stack.facts(initialized=True)
    everything = [r for calls in records.values() for r in calls]
    result = _check(stack, everything, iam_policies.control_plane_policy(sealed), iam_policies.node_policy(sealed))
    assert result.checked > len(everything)
    assert not result.findings, result.summary()


def test_without_the_version_claims_grant_an_upgrade_is_refused(maintenance, stack):
    """The same upgrade against a control-plane policy without its version-claims statement: every
    claim call fails the check (the replicas' reports and the sealed init claim grant none of it)."""
    _, _, records = maintenance
    sealed = stack.facts(initialized=True)
    policy = iam_policies.control_plane_policy(sealed)
    without = {**policy, "Statement": [s for s in policy["Statement"] if s.get("Sid") != "VersionClaims"]}
    assert len(without["Statement"]) == len(policy["Statement"]) - 1
    claims = _version_claim_calls(records["upgrade-boot"] + records["upgrade-report"])
    result = _check(stack, claims, without, iam_policies.node_policy(sealed))
    refused = {f.authorization.request.action for f in result.findings}
    assert refused == {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"}, result.summary()


def test_a_boundary_without_the_version_claims_attributes_refuses_an_upgrade(maintenance, stack):
    """The permissions boundary caps the role: were a version claim's own attribute (`doneAt`,
    which no report or init claim has) missing from its `dynamodb:Attributes`, the role's grant
    would not be enough to mark an upgrade step done."""
    _, _, records = maintenance
    sealed = stack.facts(initialized=True)
    only_claims = set(VERSION_CLAIM_ATTRIBUTES) - set(REPORT_ATTRIBUTES) - set(INIT_CLAIM_ATTRIBUTES)
    assert only_claims == {"doneAt"}

    def narrowed(statement: dict) -> dict:
        condition = statement.get("Condition", {}).get("ForAllValues:StringEquals", {})
        if "dynamodb:Attributes" not in condition or statement.get("Sid") == "BackupRecords":
            return statement  # the backup records' statement names no claim attribute
        kept = [a for a in condition["dynamodb:Attributes"] if a not in only_claims]
        assert len(kept) == len(condition["dynamodb:Attributes"]) - len(only_claims)
        equals = {**condition, "dynamodb:Attributes": kept}
        return {**statement, "Condition": {**statement["Condition"], "ForAllValues:StringEquals": equals}}

    granted = stack.ledger(iam_policies.control_plane_policy(sealed), iam_policies.node_policy(sealed))
    narrow = stack.ledger(iam_policies.control_plane_policy(sealed), iam_policies.node_policy(sealed))
    narrow.managed_policies[stack.boundary_arn] = [narrowed(s) for s in stack.boundary]
    claims = _version_claim_calls(records["upgrade-boot"])
    assert not check(claims, {}, granted).findings
    refused = {f.authorization.request.action for f in check(claims, {}, narrow).findings}
    assert refused == {"dynamodb:UpdateItem"}
