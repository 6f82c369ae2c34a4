"""Who administers a cluster, through the API: a create names its caller when the manifest names
no one (API Gateway's IAM-authorised caller, an assumed-role session as its role), the view
shows it, and PATCH changes it in place."""

from __future__ import annotations

import pytest

from kubestep.store import Store
from tests.api.conftest import example_body, execution_input, executions, register_running
from tests.api.helpers import ACCOUNT, call

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

ROLE_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/ci-pipeline"
FIELD = "cluster.spec.authentication.awsIAM.adminIdentityARNs"


def admins(body: dict) -> list[str]:
    return body["cluster"]["spec"]["authentication"]["awsIAM"]["adminIdentityARNs"]


def test_a_create_naming_no_admins_makes_its_caller_the_admin(api: Store) -> None:
    answer = call("POST", "/v1/clusters", body=example_body(), caller=ROLE_SESSION)
    assert answer.status == 202, answer.text
    [execution] = executions("CreateCluster")
    started = execution_input(execution["executionArn"])
    assert admins(started) == [f"arn:aws:iam::{ACCOUNT}:role/Deployer"]
    # The API's own record says who asked: the create copies it onto the cluster record.
    assert api.operations.get(answer.json["id"]).parameters == {"caller": ROLE_SESSION}


def test_a_dry_run_shows_the_admin_it_would_default_to(api: Store) -> None:
    answer = call(
        "POST", "/v1/clusters", body=example_body(), query={"dryRun": "true"}, caller=f"arn:aws:iam::{ACCOUNT}:user/bob"
    )
    assert answer.status == 200, answer.text
    assert answer.json["cluster"]["spec"]["authentication"]["awsIAM"]["adminIdentityARNs"] == [
        f"arn:aws:iam::{ACCOUNT}:user/bob"
    ]
    assert executions("CreateCluster") == []


def test_a_caller_that_cannot_be_mapped_must_name_the_admins(api: Store) -> None:
    answer = call("POST", "/v1/clusters", body=example_body(), caller=f"arn:aws:iam::{ACCOUNT}:root")
    assert answer.status == 400, answer.text
    [detail] = answer.error["details"]
    assert detail["field"] == FIELD and "root" in detail["rule"]
    assert executions("CreateCluster") == [] and api.locks.get("prod") is None


def test_an_assumed_role_session_arn_in_the_manifest_is_refused_naming_the_role(api: Store) -> None:
    body = example_body()
    body["cluster"]["spec"]["authentication"] = {"awsIAM": {"adminIdentityARNs": [ROLE_SESSION]}}
    answer = call("POST", "/v1/clusters", body=body)
    assert answer.status == 400, answer.text
    rules = {d["field"]: d["rule"] for d in answer.error["details"]}
    assert f"arn:aws:iam::{ACCOUNT}:role/Deployer" in rules[f"{FIELD}[0]"]


def test_patch_changes_the_admins_in_place(api: Store) -> None:
    register_running(api)
    new = [f"arn:aws:iam::{ACCOUNT}:role/platform/Admin"]
    dry = call(
        "PATCH",
        "/v1/clusters/prod",
        body={"authentication": {"awsIAM": {"adminIdentityARNs": new}}},
        query={"dryRun": "true"},
    )
    assert dry.status == 200, dry.text
    assert dry.json["rolls"] is False and any("adminIdentityARNs" in line for line in dry.json["changes"])
    answer = call("PATCH", "/v1/clusters/prod", body={"authentication": {"awsIAM": {"adminIdentityARNs": new}}})
    assert answer.status == 202, answer.text
    [execution] = executions("UpdateCluster")
    assert execution_input(execution["executionArn"])["authentication"]["awsIAM"]["adminIdentityARNs"] == new


def test_patch_refuses_an_empty_admin_list(api: Store) -> None:
    body = example_body()
    body["cluster"]["spec"]["authentication"] = {"awsIAM": {"adminIdentityARNs": [f"arn:aws:iam::{ACCOUNT}:user/x"]}}
    register_running(api, body)
    answer = call("PATCH", "/v1/clusters/prod", body={"authentication": {"awsIAM": {"adminIdentityARNs": []}}})
    assert answer.status == 400, answer.text
    assert [d["field"] for d in answer.error["details"]] == ["authentication.awsIAM.adminIdentityARNs"]
    assert executions("UpdateCluster") == []


def test_the_view_shows_the_admins_and_the_creator(api: Store) -> None:
    body = example_body()
    body["cluster"]["spec"]["authentication"] = {"awsIAM": {"adminIdentityARNs": [f"arn:aws:iam::{ACCOUNT}:user/x"]}}
    register_running(api, body)
    api.clusters.update("prod", creator=ROLE_SESSION)
    view = call("GET", "/v1/clusters/prod").json["status"]
    assert view["admins"]["identityARNs"] == [f"arn:aws:iam::{ACCOUNT}:user/x"]
    assert view["admins"]["creator"] == ROLE_SESSION
    assert view["admins"]["generation"] is None  # nothing published yet (the create's step does)
    listed = call("GET", "/v1/clusters").json["items"][0]["status"]["admins"]
    assert "generation" not in listed  # the list reads no administrators item
