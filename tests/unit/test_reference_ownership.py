"""Every reference a request carries belongs to the cluster incarnation it is for. Over every
operation that takes one (the API and the console's execution input alike) and every reference
field it accepts: a value that belongs to another cluster, or to an earlier incarnation of the
same name, is refused naming the field, and nothing of any cluster changes. Values that are the
account's own, or the cluster's own, still pass (the rule refuses what it must, not everything).

Run in process: the rendered ASL of each workflow with its real handlers (tests/unit/asl_runner.py)
and the management API's handler."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from kubestep import naming, versions
from kubestep.store import Resource

from .asl_runner import ExecutionFailed
from .fleet import REGION, Fleet, fleet, new_pool, small_request


@dataclass(frozen=True)
class Case:
    """One operation given one foreign value in one reference field."""

    operation: str
    field: str  # the field the refusal must name
    value: str
    owner: str  # whose the value is, for the test's id

    @property
    def id(self) -> str:
        return f"{self.operation}:{self.field}={self.owner}"


def _set(data: dict, path: str, value: Any) -> dict:
    """`data` with `value` at a dotted path (`a.b[0].c`; `[0]` of a missing list makes one)."""
    out = copy.deepcopy(data)
    node: Any = out
    parts = path.replace("[", ".[").split(".")
    for part, following in zip(parts, parts[1:] + [None], strict=True):
        if following is None:
            if part.startswith("["):
                node.append(value)
            else:
                node[part] = value
            break
        if part.startswith("["):
            index = int(part[1:-1])
            node = node[index]
        else:
            node = node.setdefault(part, [] if following.startswith("[") else {})
    return out


# Operation -> (reference kind, the field it goes in). Node pools of gamma are "general".
FIELDS = {
    "CreateCluster": [
        ("profile", "cluster.spec.controlPlane.iamInstanceProfile"),
        ("profile", "nodePools[0].spec.iamInstanceProfile"),
        ("group", "cluster.spec.controlPlane.securityGroupIDs[0]"),
        ("group", "nodePools[0].spec.securityGroupIDs[0]"),
        ("subnet", "cluster.spec.networking.serviceLoadBalancerSubnetIDs[0]"),
    ],
    "CreateNodePool": [("profile", "nodePool.spec.iamInstanceProfile"), ("group", "nodePool.spec.securityGroupIDs[0]")],
    "UpdateNodePool": [("profile", "changes.iamInstanceProfile"), ("group", "changes.securityGroupIDs[0]")],
    "UpdateCluster": [("profile", "controlPlane.iamInstanceProfile"), ("group", "controlPlane.securityGroupIDs[0]")],
}


def console_input(case: Case) -> tuple[str, dict]:
    """The execution input a console user would type for `case`."""
    if case.operation == "CreateCluster":
        return "CreateCluster", _set(small_request("delta"), case.field, case.value)
    if case.operation == "CreateNodePool":
        body = {"clusterName": "gamma", "nodePool": new_pool("gamma")}
        return "CreateNodePool", _set(body, case.field, case.value)
    if case.operation == "UpdateNodePool":
        return "UpdateNodePool", _set(
            {"clusterName": "gamma", "nodePool": "general", "changes": {}}, case.field, case.value
        )
    return "UpdateCluster", _set({"clusterName": "gamma"}, case.field, case.value)


def api_call(case: Case) -> tuple[str, str, dict]:
    """The same through the API: (method, path, body)."""
    _, body = console_input(case)
    if case.operation == "CreateCluster":
        return "POST", "/v1/clusters", body
    if case.operation == "CreateNodePool":
        return "POST", "/v1/clusters/gamma/nodepools", body["nodePool"]
    if case.operation == "UpdateNodePool":
        return "PATCH", "/v1/clusters/gamma/nodepools/general", body["changes"]
    return "PATCH", "/v1/clusters/gamma", {k: v for k, v in body.items() if k != "clusterName"}


def _kubernetes_group(world: Fleet, uid: str) -> str:
    """A security group Kubernetes made for cluster `uid` (a Service load balancer's)."""
    ec2 = boto3.client("ec2", REGION)
    vpc = world.store.network.get().vpc_id
    group = ec2.create_security_group(GroupName=f"k8s-elb-{uid}", Description="k8s", VpcId=vpc)["GroupId"]
    ec2.create_tags(Resources=[group], Tags=naming.ec2_tags({naming.k8s_cluster_tag(uid): "owned"}))
    return group


def _owned_subnet(world: Fleet, uid: str) -> str:
    ec2 = boto3.client("ec2", REGION)
    vpc = world.store.network.get().vpc_id
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.250.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    ec2.create_tags(Resources=[subnet["SubnetId"]], Tags=naming.ec2_tags({naming.k8s_cluster_tag(uid): "owned"}))
    return subnet["SubnetId"]


def _leftover_profile(uid: str) -> str:
    """A node profile of an earlier incarnation that its delete did not take (made by hand here)."""
    name = naming.instance_role(uid, naming.ROLE_NODE)
    boto3.client("iam", REGION).create_instance_profile(InstanceProfileName=name, Path="/kubestep/unit/")
    return name


def _at() -> str:
    return (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def world():
    with pytest.MonkeyPatch.context() as monkeypatch, fleet(monkeypatch) as world:
        earlier = world.create("gamma")
        gone = world.run("DeleteCluster", {"clusterName": "gamma", "keepEtcdVolumes": True}, "delete-gamma-earlier")
        assert gone.entered[-1] == "Deleted"
        prod = world.create("prod")
        gamma = world.create("gamma")
        upgrade = world.api("POST", "/v1/clusters/prod/upgrade", {"version": _next_minor(), "at": _at()})
        assert upgrade.status == 201, upgrade.text
        foreign = {
            "profile": [
                ("prod's control-plane profile", naming.instance_role(prod.uid, naming.ROLE_CONTROL_PLANE)),
                ("prod's node profile (ARN)", prod.resource_id(Resource.NODE_PROFILE)),
                ("an earlier gamma's profile", _leftover_profile(earlier.uid)),
            ],
            "group": [
                ("prod's load balancer group", prod.resource_id(Resource.SG_LB)),
                ("prod's control-plane group", prod.resource_id(Resource.SG_CONTROL_PLANE)),
                ("prod's nodes group", prod.resource_id(Resource.SG_NODES)),
                ("a group Kubernetes made for prod", _kubernetes_group(world, prod.uid)),
            ],
            "subnet": [("a subnet prod owns", _owned_subnet(world, prod.uid))],
        }
        yield {
            "world": world,
            "prod": prod,
            "gamma": gamma,
            "earlier": earlier,
            "schedule": upgrade.json["id"],
            "foreign": foreign,
        }


def _next_minor() -> str:
    return versions.catalog().minors[36].default_version


def _cases(foreign: dict[str, list[tuple[str, str]]]) -> list[Case]:
    return [
        Case(operation, field, value, owner)
        for operation, fields in FIELDS.items()
        for kind, field in fields
        for owner, value in foreign[kind]
    ]


def _snapshots(world: Fleet, fixture: dict) -> dict:
    return {name: world.snapshot(name, fixture[name].uid) for name in ("prod", "gamma")}


def _refused_by_the_api(world: Fleet, case: Case) -> list[str]:
    method, path, body = api_call(case)
    failures = []
    for query in ({"dryRun": "true"}, {}):
        answer = world.api(method, path, body, **query)
        if answer.status != 400 or answer.error["code"] != "InvalidSpec":
            failures.append(f"{case.id} through the API {query}: {answer.status} {answer.text[:300]}")
            continue
        rules = {d["field"]: d["rule"] for d in answer.error["details"]}
        if "may use only its own" not in rules.get(case.field, ""):
            failures.append(f"{case.id} through the API: no refusal naming {case.field}: {rules}")
    return failures


def _refused_by_the_console(world: Fleet, case: Case, index: int) -> list[str]:
    workflow, execution_input = console_input(case)
    try:
        run = world.run(workflow, execution_input, f"console-{index}")
    except ExecutionFailed as failed:
        if failed.error == "InvalidSpec" and case.field in failed.cause and "may use only its own" in failed.cause:
            return []
        return [f"{case.id} from the console failed otherwise: {failed.error} {failed.cause[:300]}"]
    return [f"{case.id} from the console was accepted: {run.entered[-1]}"]


def test_every_operation_refuses_every_reference_another_incarnation_owns(world) -> None:
    fleet_ = world["world"]
    before = _snapshots(fleet_, world)
    cases = _cases(world["foreign"])
    # Creates: 2 profile fields x 3 values, 2 group fields x 4, a subnet; each other operation 3 + 4.
    assert len(cases) == 15 + 3 * 7
    failures: list[str] = []
    for index, case in enumerate(cases):
        failures += _refused_by_the_api(fleet_, case)
        failures += _refused_by_the_console(fleet_, case, index)
    assert failures == [], "\n".join(failures)
    assert _snapshots(fleet_, world) == before, "an operation changed a cluster it refused to act on"
    assert fleet_.store.clusters.get("delta") is None
    sfn = boto3.client("stepfunctions", REGION)
    for machine in sfn.list_state_machines()["stateMachines"]:
        started = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
        assert started == [], f"{machine['name']} started {started}"


def test_a_clusters_own_and_the_accounts_own_references_pass(world) -> None:
    """The rule refuses what belongs to others, not everything: gamma's own node profile for a
    new pool of gamma, a profile and a security group the account made itself."""
    fleet_, gamma = world["world"], world["gamma"]
    iam, ec2 = boto3.client("iam", REGION), boto3.client("ec2", REGION)
    iam.create_instance_profile(InstanceProfileName="team-nodes")
    vpc = fleet_.store.network.get().vpc_id
    group = ec2.create_security_group(GroupName="team-ssh", Description="team", VpcId=vpc)["GroupId"]
    own = naming.instance_role(gamma.uid, naming.ROLE_NODE)
    pool = new_pool("gamma", iamInstanceProfile=own, securityGroupIDs=[gamma.resource_id(Resource.SG_NODES)])
    answers = [
        fleet_.api("POST", "/v1/clusters/gamma/nodepools", pool, dryRun="true"),
        fleet_.api(
            "PATCH", "/v1/clusters/gamma/nodepools/general", {"iamInstanceProfile": "team-nodes"}, dryRun="true"
        ),
        fleet_.api("PATCH", "/v1/clusters/gamma", {"controlPlane": {"securityGroupIDs": [group]}}, dryRun="true"),
    ]
    assert [a.status for a in answers] == [200, 200, 200], [a.text for a in answers]
    # Its own control-plane profile is not for its nodes (a node would read the CA keys).
    cp_profile = naming.instance_role(gamma.uid, naming.ROLE_CONTROL_PLANE)
    refused = fleet_.api("PATCH", "/v1/clusters/gamma/nodepools/general", {"iamInstanceProfile": cp_profile})
    assert refused.status == 400 and "node instances use" in refused.error["details"][0]["rule"], refused.text


def test_a_schedule_id_is_not_accepted_from_the_console(world) -> None:
    """A console start of one cluster's update can neither name another cluster's schedule nor
    take a schedule's execution name: the schedule stays pending, untouched."""
    fleet_, schedule_id = world["world"], world["schedule"]
    before = fleet_.store.schedules.get(schedule_id)
    upgrade = {"clusterName": "gamma", "controlPlane": {"version": _next_minor()}}
    with pytest.raises(ExecutionFailed) as named:
        fleet_.run("UpdateCluster", {**upgrade, "scheduleId": schedule_id}, "console-update-gamma")
    assert named.value.error == "InvalidSpec" and "scheduleId" in named.value.cause
    with pytest.raises(ExecutionFailed) as taken:
        fleet_.run("UpdateCluster", {**upgrade, "scheduleId": schedule_id}, f"sched-{schedule_id}")
    assert taken.value.error == "InvalidSpec" and "executionName" in taken.value.cause
    with pytest.raises(ExecutionFailed) as without:
        fleet_.run("UpdateCluster", upgrade, f"sched-{schedule_id}")
    assert without.value.error == "InvalidSpec"
    assert fleet_.store.schedules.get(schedule_id) == before
    assert before.state == "SCHEDULED" and before.outcome is None
    assert fleet_.store.clusters.get("gamma").version == world["gamma"].version
    assert fleet_.store.operations.get("console-update-gamma") is None


def test_reserved_names_are_refused_and_a_new_incarnation_leaves_the_earlier_ones_volumes(world) -> None:
    fleet_, earlier, gamma = world["world"], world["earlier"], world["gamma"]
    for name in ("network", "orphans"):
        answer = fleet_.api("POST", "/v1/clusters", small_request(name), dryRun="true")
        assert answer.status == 400 and "cluster.metadata.name" in answer.fields, answer.text
        with pytest.raises(ExecutionFailed) as refused:
            fleet_.run("CreateCluster", small_request(name), f"create-{name}")
        assert refused.value.error == "InvalidSpec" and "is reserved" in refused.value.cause
    ec2 = boto3.client("ec2", REGION)
    kept = ec2.describe_volumes(Filters=[{"Name": "tag:gke:cluster-uid", "Values": [earlier.uid]}])["Volumes"]
    assert kept and all(naming.TAG_RETAINED_BY in naming.tags_dict(v.get("Tags")) for v in kept)
    assert all(v["State"] == "available" for v in kept), "the new gamma attached the earlier gamma's volume"
    assert {m.volume_id for m in fleet_.store.etcd.members("gamma")}.isdisjoint({v["VolumeId"] for v in kept})
    assert gamma.uid != earlier.uid


NONEXISTENT = {
    "securityGroupIDs": ["sg-0123456789abcdef0"],
    "iamInstanceProfile": "no-such-profile",
    "keyName": "no-such-key",
    "imageID": "ami-0123456789abcdef0",
}


@pytest.mark.parametrize("field", sorted(NONEXISTENT))
def test_updates_run_the_preflight_creates_run(world, field: str) -> None:
    """A PATCH of a cluster or a node pool naming what does not exist is refused at once (dry run
    and real, API and console), as a create naming it is."""
    fleet_ = world["world"]
    value = NONEXISTENT[field]
    named = f"{field}[0]" if isinstance(value, list) else field
    for path, body, shown in (
        ("/v1/clusters/gamma", {"controlPlane": {field: value}}, f"controlPlane.{named}"),
        ("/v1/clusters/gamma/nodepools/general", {field: value}, f"changes.{named}"),
    ):
        for query in ({"dryRun": "true"}, {}):
            answer = fleet_.api("PATCH", path, body, **query)
            assert answer.status == 400 and shown in answer.fields, (path, query, answer.text)
            assert "does not exist" in {d["field"]: d["rule"] for d in answer.error["details"]}[shown]
    with pytest.raises(ExecutionFailed) as refused:
        fleet_.run("UpdateCluster", {"clusterName": "gamma", "controlPlane": {field: value}}, f"console-{field}")
    assert refused.value.error == "InvalidSpec" and "does not exist" in refused.value.cause
    with pytest.raises(ExecutionFailed) as pool:
        changes = {"clusterName": "gamma", "nodePool": "general", "changes": {field: value}}
        fleet_.run("UpdateNodePool", changes, f"console-pool-{field}")
    assert pool.value.error == "InvalidSpec" and "does not exist" in pool.value.cause
