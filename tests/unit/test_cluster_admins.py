"""Who administers a cluster: the ARN rules of the manifest, the default a create through the API
takes (its caller, mapped as aws-iam-authenticator matches it), the rule that the console must
name them, and changing them in place (no roll)."""

from __future__ import annotations

import copy

import boto3
import pytest
import yaml

from kubestep import cluster_admins, lifecycle
from kubestep.bootstrap import authenticator_mapping
from kubestep.errors import InvalidSpec
from kubestep.models import AWSCluster, AWSNodePool, UpdateClusterRequest
from kubestep.operations import with_creator_as_admin
from kubestep.store import ClusterRecord, Store, keys
from kubestep.validation import ADMINS_FIELD, admins_problems, parse_create_request

from .conftest import EXAMPLES, load_service

SERVICE = load_service(EXAMPLES / "management-service.yaml")
ACCOUNT = "123456789012"


def example_request() -> dict:
    docs = list(yaml.safe_load_all((EXAMPLES / "cluster-ha.yaml").read_text()))
    return {"cluster": docs[0], "nodePools": docs[1:]}


def admins_of(body: dict) -> list[str]:
    return body["cluster"]["spec"]["authentication"]["awsIAM"]["adminIdentityARNs"]


# ---------------------------------------------------------------- what the authenticator matches


@pytest.mark.parametrize(
    ("caller", "admin"),
    [
        # STS names a session by the role's name only; the authenticator matches role/<name>.
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice@example.com", f"arn:aws:iam::{ACCOUNT}:role/Admin"),
        (f"arn:aws-cn:sts::{ACCOUNT}:assumed-role/Ops/botocore-session-1", f"arn:aws-cn:iam::{ACCOUNT}:role/Ops"),
        (f"arn:aws:iam::{ACCOUNT}:user/platform/bob", f"arn:aws:iam::{ACCOUNT}:user/platform/bob"),
    ],
)
def test_the_caller_becomes_the_admin_the_authenticator_matches(caller, admin):
    assert cluster_admins.caller_admin(caller) == admin
    assert cluster_admins.matches([admin], caller)


@pytest.mark.parametrize(
    "caller",
    [f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:sts::{ACCOUNT}:federated-user/carol", None, ""],
)
def test_a_caller_that_cannot_be_mapped_as_admin_is_refused(caller):
    with pytest.raises(cluster_admins.NotAnAdminIdentity):
        cluster_admins.caller_admin(caller)


def test_a_role_is_mapped_by_its_name_so_its_sessions_match_whatever_its_path():
    with_path = f"arn:aws:iam::{ACCOUNT}:role/teams/platform/Admin"
    mapping = cluster_admins.mapping([with_path, f"arn:aws:iam::{ACCOUNT}:user/ops/dave"])
    assert mapping.role_arns == (f"arn:aws:iam::{ACCOUNT}:role/Admin",)
    assert mapping.user_arns == (f"arn:aws:iam::{ACCOUNT}:user/ops/dave",)
    assert cluster_admins.matches([with_path], f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/session")
    assert not cluster_admins.matches([with_path], f"arn:aws:sts::{ACCOUNT}:assumed-role/Other/session")
    # One role under two spellings (ARNs compare without case) is mapped once.
    twice = cluster_admins.mapping([with_path, f"arn:aws:iam::{ACCOUNT}:role/admin"])
    assert len(twice.role_arns) == 1


@pytest.mark.parametrize(
    ("arn", "says"),
    [
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/me", f"name the role: arn:aws:iam::{ACCOUNT}:role/Admin"),
        (f"arn:aws:iam::{ACCOUNT}:root", "not an IAM user or role ARN"),
        (f"arn:aws:iam::{ACCOUNT}:group/admins", "not an IAM user or role ARN"),
        ("arn:aws:iam::12345:user/short-account", "not an IAM user or role ARN"),
        (f"arn:aws:s3:::{ACCOUNT}-bucket", "not an IAM user or role ARN"),
    ],
)
def test_the_manifest_refuses_what_cannot_name_an_admin(arn, says):
    body = example_request()
    body["cluster"]["spec"]["authentication"] = {"awsIAM": {"adminIdentityARNs": [arn]}}
    with pytest.raises(InvalidSpec) as info:
        parse_create_request(SERVICE, body)
    fields = dict(info.value.problems)
    assert says in fields[f"{ADMINS_FIELD}[0]"]


def test_admins_must_be_unique_and_a_stored_record_keeps_what_it_has():
    arn = f"arn:aws:iam::{ACCOUNT}:role/Admin"
    body = example_request()
    body["cluster"]["spec"]["authentication"] = {"awsIAM": {"adminIdentityARNs": [arn, arn]}}
    with pytest.raises(InvalidSpec, match="must be unique"):
        parse_create_request(SERVICE, body)
    # A record stored before the rule existed stays readable.
    cluster = copy.deepcopy(body["cluster"])
    cluster["spec"]["authentication"]["awsIAM"]["adminIdentityARNs"] = [f"arn:aws:sts::{ACCOUNT}:assumed-role/A/s"]
    record = ClusterRecord.from_item({"name": "prod", "uid": "abcd1234", "spec": cluster, "version": "1.35.4"})
    assert record is not None and record.spec.spec.authentication.aws_iam.admin_identity_arns


# ---------------------------------------------------------------- the default and the console


def test_an_api_create_without_admins_gets_its_caller_and_keeps_named_ones():
    caller = f"arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/ci-run-7"
    filled = with_creator_as_admin(example_request(), caller)
    assert admins_of(filled) == [f"arn:aws:iam::{ACCOUNT}:role/Deployer"]
    assert admins_problems(parse_create_request(SERVICE, filled)) == []
    named = example_request()
    named["cluster"]["spec"]["authentication"] = {"awsIAM": {"adminIdentityARNs": [f"arn:aws:iam::{ACCOUNT}:user/x"]}}
    assert admins_of(with_creator_as_admin(named, caller)) == [f"arn:aws:iam::{ACCOUNT}:user/x"]


def test_an_api_create_by_the_root_user_must_name_its_admins():
    with pytest.raises(InvalidSpec) as info:
        with_creator_as_admin(example_request(), f"arn:aws:iam::{ACCOUNT}:root")
    [(field, rule)] = info.value.problems
    assert field == ADMINS_FIELD and "root" in rule and "name the cluster's administrators" in rule


def test_a_console_create_naming_no_admins_is_refused_naming_the_field():
    request = parse_create_request(SERVICE, example_request())  # the manifest itself is valid
    [(field, rule)] = admins_problems(request)
    assert field == ADMINS_FIELD and "console" in rule


# ---------------------------------------------------------------- in place, no roll


def stored_cluster(admins: list[str]) -> AWSCluster:
    cluster = example_request()["cluster"]
    cluster["spec"]["authentication"] = {"awsIAM": {"adminIdentityARNs": admins}}
    return AWSCluster.model_validate(cluster)


def test_applying_the_manifest_a_cluster_was_created_from_changes_nothing():
    creator = f"arn:aws:iam::{ACCOUNT}:user/moto"
    stored = stored_cluster([creator])
    wanted = AWSCluster.model_validate(example_request()["cluster"])  # names no admins
    assert lifecycle.cluster_manifest_changes(stored, wanted) == (None, [])


def test_new_admins_in_a_manifest_update_in_place():
    stored = stored_cluster([f"arn:aws:iam::{ACCOUNT}:user/moto"])
    new = [f"arn:aws:iam::{ACCOUNT}:role/platform/Admin", f"arn:aws:iam::{ACCOUNT}:user/moto"]
    request, fixed = lifecycle.cluster_manifest_changes(stored, stored_cluster(new))
    assert fixed == [] and request is not None
    assert request.authentication is not None and request.authentication.aws_iam.admin_identity_arns == new
    assert request.control_plane.model_dump(exclude_none=True) == {}
    pools = [AWSNodePool.model_validate(d) for d in example_request()["nodePools"]]
    plan = lifecycle.plan_cluster_change(SERVICE, stored, pools, request)
    assert plan.rolls is False  # the replicas are not replaced
    assert plan.target.spec.authentication.aws_iam.admin_identity_arns == new
    assert plan.changes and all(c.path.startswith("authentication.awsIAM.adminIdentityARNs") for c in plan.changes)


def test_an_update_cannot_leave_a_cluster_without_admins():
    stored = stored_cluster([f"arn:aws:iam::{ACCOUNT}:user/moto"])
    request = UpdateClusterRequest.model_validate(
        {"clusterName": "prod", "authentication": {"awsIAM": {"adminIdentityARNs": []}}}
    )
    with pytest.raises(InvalidSpec) as info:
        lifecycle.plan_cluster_change(SERVICE, stored, [], request)
    assert "authentication.awsIAM.adminIdentityARNs" in dict(info.value.problems)


def test_the_admins_item_changes_generation_only_when_the_mapping_does(store: Store):
    first = cluster_admins.mapping([f"arn:aws:iam::{ACCOUNT}:role/a/Admin"])
    item, changed = store.admins.publish("abcd1234", first)
    assert (item.generation, changed, item.role_arns) == (1, True, [f"arn:aws:iam::{ACCOUNT}:role/Admin"])
    again, changed = store.admins.publish("abcd1234", first)
    assert (again.generation, changed) == (1, False)
    second = cluster_admins.mapping([f"arn:aws:iam::{ACCOUNT}:user/moto"])
    moved, changed = store.admins.publish("abcd1234", second)
    assert (moved.generation, changed, moved.user_arns) == (2, True, [f"arn:aws:iam::{ACCOUNT}:user/moto"])
    assert store.admins.get("abcd1234") == moved


def test_the_replicas_serve_the_item_as_the_authenticator_matches_callers(store: Store):
    """The item as a replica's AWS CLI reads it (DynamoDB JSON), through the one rendering: a
    role by its path-less ARN with its sessions as users, a user as itself, the generation as the
    DynamicFile's Version; every identity in the cluster-admins group the add-ons bind."""
    arns = [f"arn:aws:iam::{ACCOUNT}:role/platform/Admin", f"arn:aws:iam::{ACCOUNT}:user/team/alice"]
    published, _ = store.admins.publish("u1", cluster_admins.mapping(arns))
    key = {"pk": {"S": keys.cluster_access_pk("u1")}, "sk": {"S": keys.ADMINS_SK}}
    raw = boto3.client("dynamodb", region_name="us-east-1").get_item(TableName=store.table.name, Key=key)["Item"]
    served = authenticator_mapping.render(raw)
    role = f"arn:aws:iam::{ACCOUNT}:role/Admin"
    assert served == {
        "Version": str(published.generation),
        "mapRoles": [{"rolearn": role, "username": role + "/{{SessionName}}", "groups": ["kubestep:cluster-admins"]}],
        "mapUsers": [{"userarn": arns[1], "username": arns[1], "groups": ["kubestep:cluster-admins"]}],
        "mapAccounts": [],
    }
    assert all(
        cluster_admins.matches(arns, caller) for caller in (f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/s", arns[1])
    )
    assert authenticator_mapping.render({}) is None  # no item: nothing to serve
